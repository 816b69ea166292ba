//! The search: query parameters as Jaeger's query API takes them, parsed strictly, and the
//! filter and order they select traces by.
//!
//! Every parameter that is given but cannot be read is an error naming it; parameters the
//! explorer does not know are ignored, as Jaeger ignores them (clients such as Grafana send
//! their own).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lightstep_analysis::{Mode, SpanKind, Status, TraceId};

use crate::api::ApiError;
use crate::store::{StoredTrace, TraceStore};

/// The default number of traces a search returns.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The most a search returns.
pub(crate) const MAX_LIMIT: usize = 100_000;

/// A request's query string, decoded.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last non-empty value of `key` (an empty value counts as not given, as in Jaeger).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// `mode=robust|jaeger`, robust when not given.
    pub(crate) fn mode(&self) -> Result<Mode, ApiError> {
        match self.get("mode") {
            None | Some("robust") => Ok(Mode::Robust),
            Some("jaeger") => Ok(Mode::Jaeger),
            Some(other) => Err(ApiError::bad_param(
                "mode",
                format!("expected robust or jaeger, got `{other}`"),
            )),
        }
    }

    /// A non-negative integer parameter, `default` when not given.
    pub(crate) fn number(&self, key: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ApiError::bad_param(
                    key,
                    format!("expected a whole number from 0 to {max}, got `{text}`"),
                )),
            },
        }
    }
}

/// How search results are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sort {
    /// Newest first.
    Start,
    /// Longest first.
    Duration,
}

/// A search over the store.
#[derive(Debug)]
pub(crate) struct Search {
    service: Option<String>,
    operation: Option<String>,
    tags: Vec<(String, String)>,
    min_duration_ns: Option<u64>,
    max_duration_ns: Option<u64>,
    start_ns: Option<u64>,
    end_ns: Option<u64>,
    trace_ids: Vec<TraceId>,
    limit: usize,
    sort: Sort,
}

/// What a search found: the traces in order, at most the limit, and how many matched.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) traces: Vec<Arc<StoredTrace>>,
    pub(crate) matched: usize,
}

impl Search {
    /// Reads the parameters of Jaeger's `GET /api/traces`: `service`, `operation`, `tags` (a
    /// JSON object of strings) and `tag` (`key:value`, repeatable), `minDuration` and
    /// `maxDuration` (Go durations such as `1.5ms`), `start` and `end` (microseconds since the
    /// epoch), `lookback` (a Go duration, used only without `start`), `limit`, `traceID`
    /// (repeatable); and the explorer's `sort` (`start` or `duration`).
    pub(crate) fn parse(params: &Params) -> Result<Self, ApiError> {
        let mut tags = Vec::new();
        for tag in params.all("tag") {
            let Some((key, value)) = tag.split_once(':') else {
                return Err(ApiError::bad_param(
                    "tag",
                    format!("expected key:value, got `{tag}`"),
                ));
            };
            tags.push((key.to_owned(), value.to_owned()));
        }
        for json in params.all("tags") {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
                .map_err(|e| {
                    ApiError::bad_param(
                        "tags",
                        format!("expected a JSON object such as {{\"http.route\":\"/cart\"}}: {e}"),
                    )
                })?;
            for (key, value) in map {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => {
                        return Err(ApiError::bad_param(
                            "tags",
                            format!("the value of `{key}` must be a string, got {other}"),
                        ));
                    }
                };
                tags.push((key, value));
            }
        }
        let duration = |key: &str| -> Result<Option<u64>, ApiError> {
            params
                .get(key)
                .map(|text| {
                    parse_go_duration(text).ok_or_else(|| {
                        ApiError::bad_param(
                            key,
                            format!(
                                "expected a duration such as 250ms, 1.5s or 2m30s, got `{text}`"
                            ),
                        )
                    })
                })
                .transpose()
        };
        let micros = |key: &str| -> Result<Option<u64>, ApiError> {
            params
                .get(key)
                .map(|text| {
                    text.parse::<u64>()
                        .map(|us| us.saturating_mul(1000))
                        .map_err(|_| {
                            ApiError::bad_param(
                                key,
                                format!("expected microseconds since the Unix epoch, got `{text}`"),
                            )
                        })
                })
                .transpose()
        };
        let min_duration_ns = duration("minDuration")?;
        let max_duration_ns = duration("maxDuration")?;
        if let (Some(min), Some(max)) = (min_duration_ns, max_duration_ns)
            && max < min
        {
            return Err(ApiError::bad_param(
                "maxDuration",
                "must not be less than minDuration".to_owned(),
            ));
        }
        let lookback_ns = match params.get("lookback") {
            None | Some("custom") => None,
            Some(text) => Some(parse_go_duration(text).ok_or_else(|| {
                ApiError::bad_param(
                    "lookback",
                    format!("expected a duration such as 1h or custom, got `{text}`"),
                )
            })?),
        };
        let mut start_ns = micros("start")?;
        let end_ns = micros("end")?;
        if start_ns.is_none()
            && let Some(lookback) = lookback_ns
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            start_ns = Some(now.saturating_sub(lookback));
        }
        let limit = match params.number("limit", DEFAULT_LIMIT, MAX_LIMIT)? {
            0 => DEFAULT_LIMIT,
            n => n,
        };
        let sort = match params.get("sort") {
            None | Some("start") => Sort::Start,
            Some("duration") => Sort::Duration,
            Some(other) => {
                return Err(ApiError::bad_param(
                    "sort",
                    format!("expected start or duration, got `{other}`"),
                ));
            }
        };
        Ok(Self {
            service: params.get("service").map(str::to_owned),
            operation: params.get("operation").map(str::to_owned),
            tags,
            min_duration_ns,
            max_duration_ns,
            start_ns,
            end_ns,
            trace_ids: params.all("traceID").map(TraceId::parse).collect(),
            limit,
            sort,
        })
    }

    /// The traces of `store` that match, in order, at most the limit.
    pub(crate) fn run(&self, store: &TraceStore) -> Found {
        let mut traces: Vec<Arc<StoredTrace>> = store
            .all()
            .into_iter()
            .filter(|t| self.matches(t))
            .collect();
        let matched = traces.len();
        match self.sort {
            // `all` is newest arrival first; by start, ties keep that order.
            Sort::Start => traces.sort_by(|a, b| b.summary.start_ns.cmp(&a.summary.start_ns)),
            Sort::Duration => {
                traces.sort_by(|a, b| b.summary.duration_ns().cmp(&a.summary.duration_ns()))
            }
        }
        traces.truncate(self.limit);
        Found { traces, matched }
    }

    fn matches(&self, trace: &StoredTrace) -> bool {
        let summary = &trace.summary;
        if !self.trace_ids.is_empty() && !self.trace_ids.contains(&trace.trace.trace_id) {
            return false;
        }
        if let Some(service) = &self.service
            && !summary.services.iter().any(|(s, _)| **s == **service)
        {
            return false;
        }
        if let Some(operation) = &self.operation {
            let found = summary.operations.iter().any(|(s, o)| {
                **o == **operation && self.service.as_ref().is_none_or(|want| **s == **want)
            });
            if !found {
                return false;
            }
        }
        let duration = summary.duration_ns();
        if self.min_duration_ns.is_some_and(|min| duration < min)
            || self.max_duration_ns.is_some_and(|max| duration > max)
            || self.start_ns.is_some_and(|start| summary.start_ns < start)
            || self.end_ns.is_some_and(|end| summary.start_ns > end)
        {
            return false;
        }
        self.tags
            .iter()
            .all(|(key, value)| (0..trace.trace.spans.len()).any(|i| has_tag(trace, i, key, value)))
    }
}

/// Whether span `index` has the tag `key` with the text `value`: among its attributes, its
/// resource's, or the tags Jaeger derives from the span (`error`, `span.kind`,
/// `otel.status_code`), so that Jaeger UI's and Grafana's `error=true` finds failed spans.
pub(crate) fn has_tag(trace: &StoredTrace, index: usize, key: &str, value: &str) -> bool {
    let Some(span) = trace.trace.spans.get(index) else {
        return false;
    };
    let derived: Option<Cow<'_, str>> = match key {
        "error" if span.status() == Status::Error => Some("true".into()),
        "span.kind" if span.kind() != SpanKind::Unspecified => Some(span.kind().as_str().into()),
        "otel.status_code" => match span.status() {
            Status::Error => Some("ERROR".into()),
            Status::Ok => Some("OK".into()),
            _ => None,
        },
        _ => None,
    };
    if derived.is_some_and(|d| d == value) {
        return true;
    }
    let Some(details) = trace.details(index) else {
        return false;
    };
    details
        .attributes
        .iter()
        .chain(details.resource.iter())
        .any(|kv| &*kv.key == key && kv.value.to_text() == value)
}

/// A Go duration (`300ms`, `1.5h`, `2h45m`, `100us`): a sequence of decimal numbers each with a
/// unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); a bare `0` is zero. In nanoseconds.
pub(crate) fn parse_go_duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part = whole.checked_mul(unit_ns)?;
        if !fraction.is_empty() {
            // Digits beyond nanosecond precision are dropped, as Go does.
            let digits = &fraction[..fraction.len().min(18)];
            let scale = 10u128.pow(digits.len() as u32);
            part = part.checked_add(digits.parse::<u128>().ok()? * unit_ns / scale)?;
        }
        total = total.checked_add(part)?;
        rest = after;
    }
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (text, ns) in [
            ("0", 0),
            ("300ms", 300_000_000),
            ("1.5h", 5_400_000_000_000),
            ("2h45m", 9_900_000_000_000),
            ("100us", 100_000),
            ("100µs", 100_000),
            ("1.2ms", 1_200_000),
            (".5s", 500_000_000),
            ("1s500ms", 1_500_000_000),
            ("+7ns", 7),
        ] {
            assert_eq!(parse_go_duration(text), Some(ns), "{text}");
        }
        for text in [
            "",
            "1",
            "ms",
            "1x",
            "-1s",
            "1..2s",
            "1.s.",
            "99999999999999h",
        ] {
            assert_eq!(parse_go_duration(text), None, "{text}");
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, name) in [
            ("minDuration=fast", "minDuration"),
            ("maxDuration=1x", "maxDuration"),
            ("minDuration=2s&maxDuration=1s", "maxDuration"),
            ("limit=-1", "limit"),
            ("limit=1000001", "limit"),
            ("start=yesterday", "start"),
            ("end=1.5", "end"),
            ("tags=%7Bnope", "tags"),
            ("tags=%7B%22a%22%3A1%7D", "tags"),
            ("tag=novalue", "tag"),
            ("lookback=week", "lookback"),
            ("sort=name", "sort"),
        ] {
            let err = Search::parse(&Params::parse(Some(query))).unwrap_err();
            assert_eq!(err.status, http::StatusCode::BAD_REQUEST, "{query}");
            assert!(
                err.message.contains(&format!("`{name}`")),
                "{query}: {}",
                err.message
            );
        }
        let ok = Search::parse(&Params::parse(Some(
            "service=web&lookback=custom&limit=&tags=%7B%22a%22%3A%22b%22%7D&tag=c:d:e",
        )))
        .unwrap();
        assert_eq!(
            ok.tags,
            [("c".into(), "d:e".into()), ("a".into(), "b".into())]
        );
        assert_eq!(ok.limit, DEFAULT_LIMIT);
    }
}

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
use crate::jaeger::is_service;
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

/// The names a search's parameters go by in one API, and how its times are written.
struct Names {
    service: &'static str,
    operation: &'static str,
    /// A JSON object of strings.
    tags: &'static str,
    /// `key:value`, repeatable: Jaeger's v1 API only.
    tag: Option<&'static str>,
    min_duration: &'static str,
    max_duration: &'static str,
    start: &'static str,
    end: &'static str,
    /// Microseconds since the epoch (v1), or RFC 3339 (v3).
    rfc3339: bool,
    lookback: Option<&'static str>,
    limit: &'static str,
    trace_id: Option<&'static str>,
    sort: Option<&'static str>,
}

/// Jaeger's `GET /api/traces` and the explorer's own `GET /api/search`.
const V1: Names = Names {
    service: "service",
    operation: "operation",
    tags: "tags",
    tag: Some("tag"),
    min_duration: "minDuration",
    max_duration: "maxDuration",
    start: "start",
    end: "end",
    rfc3339: false,
    lookback: Some("lookback"),
    limit: "limit",
    trace_id: Some("traceID"),
    sort: Some("sort"),
};

/// Jaeger's `GET /api/v3/trace-summaries`, which Jaeger UI 2 searches with.
const V3: Names = Names {
    service: "query.serviceName",
    operation: "query.operationName",
    tags: "query.attributes",
    tag: None,
    min_duration: "query.durationMin",
    max_duration: "query.durationMax",
    start: "query.startTimeMin",
    end: "query.startTimeMax",
    rfc3339: true,
    lookback: None,
    limit: "query.searchDepth",
    trace_id: None,
    sort: None,
};

impl Search {
    /// Reads the parameters of Jaeger's `GET /api/traces`: `service`, `operation`, `tags` (a
    /// JSON object of strings) and `tag` (`key:value`, repeatable), `minDuration` and
    /// `maxDuration` (Go durations such as `1.5ms`), `start` and `end` (microseconds since the
    /// epoch), `lookback` (a Go duration, used only without `start`), `limit`, `traceID`
    /// (repeatable); and the explorer's `sort` (`start` or `duration`).
    pub(crate) fn parse(params: &Params) -> Result<Self, ApiError> {
        Self::parse_with(params, &V1)
    }

    /// Reads the parameters of Jaeger's `GET /api/v3/trace-summaries`: `query.serviceName`,
    /// `query.operationName`, `query.attributes` (a JSON object of strings, as Jaeger UI sends
    /// its tags), `query.durationMin` and `query.durationMax` (Go durations, or protobuf's
    /// `1.5s`), `query.startTimeMin` and `query.startTimeMax` (RFC 3339), `query.searchDepth`
    /// (the limit).
    pub(crate) fn parse_v3(params: &Params) -> Result<Self, ApiError> {
        Self::parse_with(params, &V3)
    }

    fn parse_with(params: &Params, names: &Names) -> Result<Self, ApiError> {
        let mut tags = Vec::new();
        for tag in names.tag.into_iter().flat_map(|key| params.all(key)) {
            let Some((key, value)) = tag.split_once(':') else {
                return Err(ApiError::bad_param(
                    "tag",
                    format!("expected key:value, got `{tag}`"),
                ));
            };
            tags.push((key.to_owned(), value.to_owned()));
        }
        for json in params.all(names.tags) {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
                .map_err(|e| {
                    ApiError::bad_param(
                        names.tags,
                        format!("expected a JSON object such as {{\"http.route\":\"/cart\"}}: {e}"),
                    )
                })?;
            for (key, value) in map {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => {
                        return Err(ApiError::bad_param(
                            names.tags,
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
        let time = |key: &str| -> Result<Option<u64>, ApiError> {
            params
                .get(key)
                .map(|text| {
                    if names.rfc3339 {
                        parse_rfc3339(text).ok_or_else(|| {
                            ApiError::bad_param(
                                key,
                                format!(
                                    "expected an RFC 3339 time such as 2026-12-07T16:40:38.481Z, got `{text}`"
                                ),
                            )
                        })
                    } else {
                        text.parse::<u64>()
                            .map(|us| us.saturating_mul(1000))
                            .map_err(|_| {
                                ApiError::bad_param(
                                    key,
                                    format!(
                                        "expected microseconds since the Unix epoch, got `{text}`"
                                    ),
                                )
                            })
                    }
                })
                .transpose()
        };
        let min_duration_ns = duration(names.min_duration)?;
        let max_duration_ns = duration(names.max_duration)?;
        if let (Some(min), Some(max)) = (min_duration_ns, max_duration_ns)
            && max < min
        {
            return Err(ApiError::bad_param(
                names.max_duration,
                format!("must not be less than {}", names.min_duration),
            ));
        }
        let lookback_ns = match names.lookback.and_then(|key| params.get(key)) {
            None | Some("custom") => None,
            Some(text) => Some(parse_go_duration(text).ok_or_else(|| {
                ApiError::bad_param(
                    "lookback",
                    format!("expected a duration such as 1h or custom, got `{text}`"),
                )
            })?),
        };
        let mut start_ns = time(names.start)?;
        let end_ns = time(names.end)?;
        if start_ns.is_none()
            && let Some(lookback) = lookback_ns
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            start_ns = Some(now.saturating_sub(lookback));
        }
        let limit = match params.number(names.limit, DEFAULT_LIMIT, MAX_LIMIT)? {
            0 => DEFAULT_LIMIT,
            n => n,
        };
        let sort = match names.sort.and_then(|key| params.get(key)) {
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
            service: params.get(names.service).map(str::to_owned),
            operation: params.get(names.operation).map(str::to_owned),
            tags,
            min_duration_ns,
            max_duration_ns,
            start_ns,
            end_ns,
            trace_ids: names
                .trace_id
                .into_iter()
                .flat_map(|key| params.all(key))
                .map(TraceId::parse)
                .collect(),
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
        // Jaeger's name for spans without a service name selects them too.
        if let Some(service) = &self.service
            && !summary.services.iter().any(|(s, _)| is_service(s, service))
        {
            return false;
        }
        if let Some(operation) = &self.operation {
            let found = summary.operations.iter().any(|(s, o, _)| {
                **o == **operation && self.service.as_ref().is_none_or(|want| is_service(s, want))
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

/// An RFC 3339 time (`2026-12-07T16:40:38.481Z`, `2026-12-07T17:40:38+01:00`; up to nine
/// digits of fraction) as nanoseconds since the Unix epoch; `None` for anything else, or a time
/// before the epoch. A time past what 64 bits of nanoseconds hold (the year 2554) is the last
/// one they hold: as a search bound, it selects the same traces.
pub(crate) fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut at = 19;
    let mut nanos = 0i64;
    if b[at] == b'.' {
        let start = at + 1;
        at = start;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let count = at - start;
        if count == 0 || count > 9 {
            return None;
        }
        nanos = digits(start..at)? * 10i64.pow(9 - count as u32);
    }
    let offset_s = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap(year) => 29,
        2 => 28,
        _ => return None,
    };
    // A leap second (60) is read as the second after.
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days since the epoch of a date in the proleptic Gregorian calendar.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    let seconds = u64::try_from(seconds).ok()?;
    let nanos = u64::try_from(nanos).ok()?;
    Some(
        seconds
            .checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(nanos))
            .unwrap_or(u64::MAX),
    )
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
    fn rfc3339_times() {
        for (text, ns) in [
            ("2026-12-07T16:40:38.481Z", Some(1_796_661_638_481_000_000)),
            (
                "2026-12-07T17:40:38.481+01:00",
                Some(1_796_661_638_481_000_000),
            ),
            ("1970-01-01T00:00:00Z", Some(0)),
            (
                "2000-02-29T23:59:59.999999999Z",
                Some(951_868_799_999_999_999),
            ),
            ("2024-12-31T23:59:59-00:30", Some(1_735_691_399_000_000_000)),
            ("2024-12-31t23:59:59z", Some(1_735_689_599_000_000_000)),
            ("9999-12-31T23:59:59Z", Some(u64::MAX)),
            ("1969-12-31T23:59:59Z", None),
            ("2023-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-12-07T24:00:00Z", None),
            ("2026-12-07T16:40:38.Z", None),
            ("2026-12-07T16:40:38.1234567890Z", None),
            ("2026-12-07T16:40:38", None),
            ("2026-12-07T16:40:38+0100", None),
            ("2026-12-07T16:40:38Zjunk", None),
            ("1796661638481", None),
            ("２026-12-07T16:40:38Z", None),
            ("", None),
        ] {
            assert_eq!(parse_rfc3339(text), ns, "{text}");
        }
    }

    #[test]
    fn v3_searches_name_their_own_parameters() {
        for (query, named) in [
            ("query.durationMin=fast", "query.durationMin"),
            (
                "query.durationMin=2s&query.durationMax=1s",
                "query.durationMax",
            ),
            ("query.startTimeMin=yesterday", "query.startTimeMin"),
            ("query.startTimeMax=1796661638481", "query.startTimeMax"),
            ("query.searchDepth=-1", "query.searchDepth"),
            ("query.attributes=%7Bnope", "query.attributes"),
        ] {
            let err = Search::parse_v3(&Params::parse(Some(query))).unwrap_err();
            assert_eq!(err.status, http::StatusCode::BAD_REQUEST, "{query}");
            assert!(
                err.message.contains(&format!("`{named}`")),
                "{query}: {}",
                err.message
            );
        }
        let search = Search::parse_v3(&Params::parse(Some(
            "query.serviceName=web&query.startTimeMin=2026-12-07T16:40:38.481Z&query.durationMin=1.5s&query.searchDepth=20&query.attributes=%7B%22a%22%3A%22b%22%7D",
        )))
        .unwrap();
        assert_eq!(search.service.as_deref(), Some("web"));
        assert_eq!(search.start_ns, Some(1_796_661_638_481_000_000));
        assert_eq!(search.min_duration_ns, Some(1_500_000_000));
        assert_eq!(search.limit, 20);
        assert_eq!(search.tags, [("a".to_owned(), "b".to_owned())]);
    }

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

//! Grafana Tempo's HTTP API.
//!
//! A trace is fetched from `GET /api/traces/{id}` (the default) or `GET /api/v2/traces/{id}`,
//! asking for OTLP protobuf (`Accept: application/protobuf`): exact, compact, and read without
//! a conversion. v1's protobuf is a `tempopb.Trace`, whose field 1 (`resourceSpans`, once
//! `batches`) is OTLP's `TracesData` on the wire; v2's is a `TraceByIDResponse` holding that
//! `Trace` in its field 1. An answer in JSON is read too (a proxy, or a version that does not
//! honour `Accept`): Tempo writes it with gogo's jsonpb, so v1 calls the spans `batches`, v2
//! wraps them in `trace`, and ids are base64 rather than OTLP JSON's hex; they are converted.
//!
//! A search is `GET /api/search` with `tags` (logfmt: `service.name=checkout name="GET /"`)
//! or a TraceQL `q`, and `minDuration`, `maxDuration`, `limit`, `start`, `end` (Unix
//! seconds). It answers with trace ids, each then fetched, a few at a time. Tenants of a
//! multi-tenant Tempo are named by the `X-Scope-OrgID` header ([`SourceBuilder::with_tenant`]).

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use lightstep_analysis::Trace;
use lightstep_analysis::read::Format;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::http::{Connection, Malformed, Prepare};
use crate::search::go_duration;
use crate::{Error, Search, SourceBuilder, TraceSource, Traces};

/// Which of Tempo's trace-by-id endpoints to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TempoApi {
    /// `/api/traces/{id}`, served by every Tempo.
    #[default]
    V1,
    /// `/api/v2/traces/{id}` (Tempo 2.5 or later).
    V2,
}

/// Grafana Tempo's HTTP API (`http://tempo:3200`).
///
/// ```no_run
/// # async fn run() -> Result<(), lightstep_query::Error> {
/// use lightstep_query::{Search, Tempo, TraceSource as _};
///
/// let tempo = Tempo::builder("https://tempo.example.com").with_tenant("team-a").build()?;
/// let mut traces = tempo.search(&Search::new().with_traceql("{ status = error }"));
/// while let Some(trace) = traces.next().await {
///     println!("{}", trace?.trace_id);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Tempo {
    connection: Arc<Connection>,
    api: TempoApi,
}

impl Tempo {
    /// A builder for the Tempo at `url` (the query frontend, or Tempo in monolithic mode).
    pub fn builder(url: impl Into<String>) -> SourceBuilder<Tempo> {
        SourceBuilder::new(url)
    }

    /// The search: trace ids, each then fetched.
    async fn search_ids(&self, search: Search) -> Result<Traces, Error> {
        let connection = &self.connection;
        let invalid = |reason: String| Error::InvalidSearch {
            store: connection.store.to_owned(),
            reason,
        };
        let window = search.window(connection.store, SystemTime::now())?;
        let mut params = Vec::new();
        match &search.traceql {
            Some(query) => {
                if search.service.is_some() || search.operation.is_some() || !search.tags.is_empty()
                {
                    return Err(invalid(
                        "Tempo takes a TraceQL query or a service, operation and tags, not both"
                            .into(),
                    ));
                }
                params.push(("q", query.clone()));
            }
            None => {
                let mut tags = Vec::new();
                if let Some(service) = &search.service {
                    tags.push(("service.name", service.as_str()));
                }
                if let Some(operation) = &search.operation {
                    tags.push(("name", operation.as_str()));
                }
                tags.extend(search.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                if !tags.is_empty() {
                    params.push(("tags", logfmt(&tags).map_err(invalid)?));
                }
            }
        }
        if let Some(min) = search.min_duration {
            params.push(("minDuration", go_duration(min)));
        }
        if let Some(max) = search.max_duration {
            params.push(("maxDuration", go_duration(max)));
        }
        params.push(("limit", search.limit.to_string()));
        params.push(("start", window.start_since_epoch().as_secs().to_string()));
        // Whole seconds: the end is rounded up so that the window holds what was asked.
        let end = window.end_since_epoch();
        let end_secs = end.as_secs() + u64::from(end.subsec_nanos() > 0);
        params.push(("end", end_secs.to_string()));
        let url = connection.url("/api/search", &params);
        let ids = connection.search_ids(&url, None, found_ids).await?;
        Ok(self.fetch_each(ids))
    }
}

impl SourceBuilder<Tempo> {
    /// Which trace-by-id endpoint to use (default [`TempoApi::V1`]).
    pub fn with_api(mut self, api: TempoApi) -> Self {
        self.tempo_api = api;
        self
    }

    /// The tenant of a multi-tenant Tempo: the `X-Scope-OrgID` header. Like every header
    /// value, it is kept secret and refused in plaintext to a host that is not loopback.
    pub fn with_tenant(self, tenant: impl Into<String>) -> Self {
        self.with_header("x-scope-orgid", tenant.into())
    }

    /// Checks the settings and builds the source.
    pub fn build(self) -> Result<Tempo, Error> {
        Ok(Tempo {
            connection: Arc::new(Connection::new("tempo", self.settings)?),
            api: self.tempo_api,
        })
    }
}

impl TraceSource for Tempo {
    fn name(&self) -> String {
        self.connection.name()
    }

    async fn fetch(&self, trace_id: &str) -> Result<Trace, Error> {
        let api = self.api;
        let path_of = |id: &str| match api {
            TempoApi::V1 => format!("/api/traces/{id}"),
            TempoApi::V2 => format!("/api/v2/traces/{id}"),
        };
        self.connection
            .fetch_trace(trace_id, path_of, "application/protobuf", |json| {
                trace_answer(api, json)
            })
            .await
    }

    fn search(&self, search: &Search) -> Traces {
        let this = self.clone();
        let search = search.clone();
        Traces::later(async move { this.search_ids(search).await })
    }

    fn concurrency(&self) -> usize {
        self.connection.concurrency
    }
}

/// Tags in logfmt, as Tempo's `tags` takes them: `key=value`, the value quoted when it must
/// be.
fn logfmt(tags: &[(&str, &str)]) -> Result<String, String> {
    let mut out = Vec::new();
    for (key, value) in tags {
        if key.is_empty()
            || key
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '=' | '"'))
        {
            return Err(format!(
                "the tag name {:?} cannot be written in Tempo's tags (logfmt)",
                key
            ));
        }
        let plain = !value.is_empty()
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '=' | '"' | '\\'));
        if plain {
            out.push(format!("{key}={value}"));
        } else {
            // A JSON string is a logfmt quoted value: `"` and `\` escaped, controls as `\n`.
            out.push(format!("{key}={}", Value::String((*value).to_owned())));
        }
    }
    Ok(out.join(" "))
}

/// How a trace's answer is read, given whether it came as JSON: its format, and what unwraps
/// its envelope.
pub(crate) fn trace_answer(api: TempoApi, json: bool) -> (Format, Prepare) {
    match (api, json) {
        (TempoApi::V1, false) => (Format::OtlpProto, Ok),
        (TempoApi::V2, false) => (Format::OtlpProto, v2_trace_field),
        (TempoApi::V1, true) => (Format::OtlpJson, json_v1),
        (TempoApi::V2, true) => (Format::OtlpJson, json_v2),
    }
}

/// The trace ids of a search answer: `{"traces": [{"traceID": ...}, ...], ...}`.
pub(crate) fn found_ids(
    connection: &Connection,
    url: &Url,
    body: &[u8],
) -> Result<Vec<String>, Error> {
    #[derive(Deserialize)]
    struct Found {
        #[serde(default)]
        traces: Vec<Summary>,
    }
    #[derive(Deserialize)]
    struct Summary {
        #[serde(rename = "traceID")]
        trace_id: String,
    }
    let found: Found = connection.json(url, body)?;
    Ok(found.traces.into_iter().map(|s| s.trace_id).collect())
}

/// v2's protobuf answer (`TraceByIDResponse`): its field 1, the `Trace`.
fn v2_trace_field(body: Vec<u8>) -> Result<Vec<u8>, Malformed> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let mut rest: &[u8] = &body;
    let malformed = |offset: usize, message: &str| Malformed {
        position: format!("byte {offset}"),
        message: message.to_owned(),
    };
    let mut trace = Vec::new();
    while !rest.is_empty() {
        let offset = body.len() - rest.len();
        let (tag, wire) = decode_key(&mut rest)
            .map_err(|_| malformed(offset, "expected a field of TraceByIDResponse"))?;
        let len = match wire {
            WireType::Varint => {
                decode_varint(&mut rest).map_err(|_| malformed(offset, "a varint is cut short"))?;
                continue;
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => usize::try_from(
                decode_varint(&mut rest).map_err(|_| malformed(offset, "a length is cut short"))?,
            )
            .unwrap_or(usize::MAX),
            _ => {
                return Err(malformed(
                    offset,
                    "groups are not used by TraceByIDResponse",
                ));
            }
        };
        if len > rest.len() {
            return Err(malformed(offset, "a field runs past the end of the body"));
        }
        let (value, after) = rest.split_at(len);
        if tag == 1 && wire == WireType::LengthDelimited {
            // Repeated occurrences of a message field merge: their bytes concatenate.
            trace.extend_from_slice(value);
        }
        rest = after;
    }
    Ok(trace)
}

/// v1's JSON answer: `{"batches": [...]}` with base64 ids.
fn json_v1(body: Vec<u8>) -> Result<Vec<u8>, Malformed> {
    let value: Value = serde_json::from_slice(&body).map_err(|e| Malformed::json(&e))?;
    otlp_json(value, &["batches", "resourceSpans"])
}

/// v2's JSON answer: `{"trace": {"resourceSpans": [...]}, ...}` with base64 ids.
fn json_v2(body: Vec<u8>) -> Result<Vec<u8>, Malformed> {
    let mut value: Value = serde_json::from_slice(&body).map_err(|e| Malformed::json(&e))?;
    let trace = value
        .get_mut("trace")
        .map(Value::take)
        .unwrap_or(Value::Null);
    otlp_json(trace, &["resourceSpans", "batches"])
}

/// OTLP JSON from Tempo's jsonpb: the resource spans under the first of `keys` found, ids
/// from base64 to hex. What the reader then reports as malformed is at a position in this
/// converted document.
fn otlp_json(mut value: Value, keys: &[&str]) -> Result<Vec<u8>, Malformed> {
    let spans = keys
        .iter()
        .find_map(|key| value.get_mut(*key).map(Value::take))
        .unwrap_or_else(|| Value::Array(Vec::new()));
    let mut resource_spans = spans;
    if let Some(list) = resource_spans.as_array_mut() {
        for resource in list {
            for scope_key in ["scopeSpans", "instrumentationLibrarySpans"] {
                let Some(scopes) = resource.get_mut(scope_key).and_then(Value::as_array_mut) else {
                    continue;
                };
                for scope in scopes {
                    let Some(spans) = scope.get_mut("spans").and_then(Value::as_array_mut) else {
                        continue;
                    };
                    for span in spans {
                        for field in ["traceId", "spanId", "parentSpanId"] {
                            hex_id(span.get_mut(field));
                        }
                        if let Some(links) = span.get_mut("links").and_then(Value::as_array_mut) {
                            for link in links {
                                hex_id(link.get_mut("traceId"));
                                hex_id(link.get_mut("spanId"));
                            }
                        }
                    }
                }
            }
        }
    }
    let mut document = serde_json::Map::new();
    document.insert("resourceSpans".into(), resource_spans);
    serde_json::to_vec(&Value::Object(document)).map_err(|e| Malformed::json(&e))
}

/// A base64 id (gogo jsonpb's `bytes`) as hex. A value that is not base64 of 8 or 16 bytes is
/// left as it is (hex already, or for the reader to judge).
fn hex_id(value: Option<&mut Value>) {
    let Some(value) = value else { return };
    let Some(text) = value.as_str() else { return };
    let is_hex =
        (text.len() == 16 || text.len() == 32) && text.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        return;
    }
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
        && (bytes.len() == 8 || bytes.len() == 16)
    {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        *value = Value::String(hex);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_what_it_must() {
        let tags = [
            ("service.name", "checkout"),
            ("name", "GET /cart"),
            ("note", "say \"hi\""),
        ];
        assert_eq!(
            logfmt(&tags).unwrap(),
            r#"service.name=checkout name="GET /cart" note="say \"hi\"""#
        );
        assert!(logfmt(&[("a b", "x")]).is_err());
    }

    #[test]
    fn base64_ids_become_hex() {
        let mut id = Value::String("W47/95gDgQPSabYzgT/HAA==".into());
        hex_id(Some(&mut id));
        assert_eq!(id, "5b8efff798038103d269b633813fc700");
        let mut hex = Value::String("eee19b7ec3c1b173".into());
        hex_id(Some(&mut hex));
        assert_eq!(hex, "eee19b7ec3c1b173");
    }
}

//! Traces in the JSON shapes of Jaeger's query API, so that Grafana's Jaeger data source and
//! Jaeger UI can read the explorer as a backend.
//!
//! The shapes follow Jaeger's UI model (`internal/uimodel` in jaegertracing/jaeger): a trace is
//! `{traceID, spans, processes, warnings}`, a span carries `references`, `tags` and `logs`
//! with microsecond times, and each process (a service and its resource) is listed once per
//! trace under a key `p1`, `p2`, ... Responses are wrapped as Jaeger wraps them:
//! `{data, total, limit, offset, errors}`.
//!
//! OTLP fields without a Jaeger field become tags, as OpenTelemetry's Jaeger translation names
//! them: `span.kind`, `otel.status_code`, `otel.status_description`, `error` (`true` on failed
//! spans), `otel.scope.name` and `otel.scope.version`. Events become logs (their name under
//! `event`), links become `FOLLOWS_FROM` references. Everything is serialized as it is
//! written, without building a copy of the trace in between.

use std::collections::HashMap;
use std::sync::Arc;

use lightstep_analysis::{ParentRelation, Span, SpanKind, Status};
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::store::{KeyValue, StoredTrace, Value};

/// The service Jaeger names spans whose resource has no `service.name` (as OpenTelemetry's
/// translation to Jaeger does): an empty name cannot be chosen in Jaeger UI nor addressed in
/// `/api/services/{service}/operations`.
pub(crate) const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// A service's name as Jaeger's API shows it.
pub(crate) fn jaeger_service(name: &str) -> &str {
    if name.is_empty() {
        NO_SERVICE_NAME
    } else {
        name
    }
}

/// Whether a service the store holds is the one a Jaeger API request names: by its name, and
/// for [`NO_SERVICE_NAME`] also the empty one (spans named so by Jaeger itself, in files
/// exported from it, and spans without a name are under it alike, as in Jaeger).
pub(crate) fn is_service(stored: &str, asked: &str) -> bool {
    stored == asked || (stored.is_empty() && asked == NO_SERVICE_NAME)
}

/// Integers beyond this lose precision in JavaScript: Jaeger writes them as strings.
const JS_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Jaeger's response envelope.
#[derive(Debug, Serialize)]
pub(crate) struct Envelope<T: Serialize> {
    pub(crate) data: T,
    pub(crate) total: usize,
    pub(crate) limit: usize,
    pub(crate) offset: usize,
    pub(crate) errors: Option<Vec<ErrorEntry>>,
}

impl<T: Serialize> Envelope<T> {
    pub(crate) fn new(data: T, total: usize) -> Self {
        Self {
            data,
            total,
            limit: 0,
            offset: 0,
            errors: None,
        }
    }
}

/// One error of an envelope.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorEntry {
    pub(crate) code: u16,
    pub(crate) msg: String,
}

/// One trace in Jaeger's shape.
#[derive(Debug)]
pub(crate) struct JaegerTrace<'a>(pub(crate) &'a StoredTrace);

/// Jaeger's traces, one after the other.
#[derive(Debug)]
pub(crate) struct JaegerTraces<'a>(pub(crate) &'a [Arc<StoredTrace>]);

impl Serialize for JaegerTraces<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for trace in self.0 {
            seq.serialize_element(&JaegerTrace(trace))?;
        }
        seq.end()
    }
}

/// A process: a service and the resource its spans were sent under.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ProcessKey<'a> {
    service: &'a str,
    /// The resource, by identity: spans sent together share it.
    resource: usize,
    host: Option<&'a str>,
}

impl<'a> JaegerTrace<'a> {
    /// Each span's process number, and the span index that first used each process.
    fn processes(&self) -> (Vec<u32>, Vec<usize>) {
        let trace = self.0;
        let mut keys: HashMap<ProcessKey<'a>, u32> = HashMap::new();
        let mut first = Vec::new();
        let ids = trace
            .trace
            .spans
            .iter()
            .enumerate()
            .map(|(i, span)| {
                let key = ProcessKey {
                    service: span.service(),
                    resource: trace
                        .details(i)
                        .map_or(0, |d| Arc::as_ptr(&d.resource) as usize),
                    host: span.host(),
                };
                *keys.entry(key).or_insert_with(|| {
                    first.push(i);
                    first.len() as u32
                })
            })
            .collect();
        (ids, first)
    }
}

impl Serialize for JaegerTrace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let trace = self.0;
        let (process_of, first_span) = self.processes();
        let mut out = serializer.serialize_struct("Trace", 4)?;
        out.serialize_field("traceID", &trace.summary.trace_id)?;
        out.serialize_field(
            "spans",
            &Spans {
                trace,
                process_of: &process_of,
            },
        )?;
        out.serialize_field(
            "processes",
            &Processes {
                trace,
                first_span: &first_span,
            },
        )?;
        out.serialize_field("warnings", &None::<()>)?;
        out.end()
    }
}

struct Spans<'a> {
    trace: &'a StoredTrace,
    process_of: &'a [u32],
}

impl Serialize for Spans<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let spans = &self.trace.trace.spans;
        let mut seq = serializer.serialize_seq(Some(spans.len()))?;
        for (i, span) in spans.iter().enumerate() {
            seq.serialize_element(&JaegerSpan {
                trace: self.trace,
                index: i,
                span,
                process: self.process_of.get(i).copied().unwrap_or(1),
            })?;
        }
        seq.end()
    }
}

struct JaegerSpan<'a> {
    trace: &'a StoredTrace,
    index: usize,
    span: &'a Span,
    process: u32,
}

impl Serialize for JaegerSpan<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = self.span;
        let mut out = serializer.serialize_struct("Span", 11)?;
        out.serialize_field("traceID", &self.trace.summary.trace_id)?;
        out.serialize_field("spanID", span.span_id())?;
        out.serialize_field("flags", &1)?;
        out.serialize_field("operationName", span.name())?;
        out.serialize_field(
            "references",
            &References {
                trace: self.trace,
                index: self.index,
            },
        )?;
        out.serialize_field("startTime", &(span.start_ns() / 1000))?;
        out.serialize_field("duration", &(span.duration_ns() / 1000))?;
        out.serialize_field(
            "tags",
            &SpanTags {
                trace: self.trace,
                index: self.index,
            },
        )?;
        out.serialize_field(
            "logs",
            &Logs {
                trace: self.trace,
                index: self.index,
            },
        )?;
        out.serialize_field("processID", &format!("p{}", self.process))?;
        out.serialize_field("warnings", &None::<()>)?;
        out.end()
    }
}

struct References<'a> {
    trace: &'a StoredTrace,
    index: usize,
}

impl Serialize for References<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = &self.trace.trace.spans[self.index];
        let mut seq = serializer.serialize_seq(None)?;
        if let Some(parent) = span.parent_id() {
            let kind = match span.relation() {
                ParentRelation::FollowsFrom => "FOLLOWS_FROM",
                _ => "CHILD_OF",
            };
            seq.serialize_element(&Reference {
                ref_type: kind,
                trace_id: &self.trace.summary.trace_id,
                span_id: parent.to_string(),
            })?;
        }
        for link in span.links() {
            seq.serialize_element(&Reference {
                ref_type: "FOLLOWS_FROM",
                trace_id: &link.trace_id.to_string(),
                span_id: link.span_id.to_string(),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Reference<'a> {
    #[serde(rename = "refType")]
    ref_type: &'static str,
    #[serde(rename = "traceID")]
    trace_id: &'a str,
    #[serde(rename = "spanID")]
    span_id: String,
}

/// A Jaeger key-value: `{key, type, value}`.
struct Tag<'a> {
    key: &'a str,
    value: TagValue<'a>,
}

enum TagValue<'a> {
    Str(&'a str),
    Owned(String),
    Bool(bool),
    Attribute(&'a Value),
}

impl Serialize for Tag<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("KeyValue", 3)?;
        out.serialize_field("key", self.key)?;
        match &self.value {
            TagValue::Str(s) => {
                out.serialize_field("type", "string")?;
                out.serialize_field("value", s)?;
            }
            TagValue::Owned(s) => {
                out.serialize_field("type", "string")?;
                out.serialize_field("value", s)?;
            }
            TagValue::Bool(b) => {
                out.serialize_field("type", "bool")?;
                out.serialize_field("value", b)?;
            }
            TagValue::Attribute(value) => match value {
                Value::Str(s) => {
                    out.serialize_field("type", "string")?;
                    out.serialize_field("value", &**s)?;
                }
                Value::Bool(b) => {
                    out.serialize_field("type", "bool")?;
                    out.serialize_field("value", b)?;
                }
                Value::Int(i) => {
                    out.serialize_field("type", "int64")?;
                    if (-JS_SAFE_INTEGER..=JS_SAFE_INTEGER).contains(i) {
                        out.serialize_field("value", i)?;
                    } else {
                        out.serialize_field("value", &i.to_string())?;
                    }
                }
                Value::Double(d) if d.is_finite() => {
                    out.serialize_field("type", "float64")?;
                    out.serialize_field("value", d)?;
                }
                Value::Bytes(_) => {
                    out.serialize_field("type", "binary")?;
                    out.serialize_field("value", &value.to_text())?;
                }
                // NaN and infinities have no JSON number; arrays and maps are JSON text, as
                // OpenTelemetry's Jaeger translation writes them.
                Value::Double(_) | Value::Array(_) | Value::Map(_) | Value::Empty => {
                    out.serialize_field("type", "string")?;
                    out.serialize_field("value", &value.to_text())?;
                }
            },
        }
        out.end()
    }
}

fn attribute_tags(attributes: &[KeyValue]) -> impl Iterator<Item = Tag<'_>> {
    attributes.iter().map(|kv| Tag {
        key: &kv.key,
        value: TagValue::Attribute(&kv.value),
    })
}

struct SpanTags<'a> {
    trace: &'a StoredTrace,
    index: usize,
}

impl Serialize for SpanTags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = &self.trace.trace.spans[self.index];
        let details = self.trace.details(self.index);
        let mut seq = serializer.serialize_seq(None)?;
        if let Some(details) = details {
            for tag in attribute_tags(&details.attributes) {
                seq.serialize_element(&tag)?;
            }
        }
        if span.kind() != SpanKind::Unspecified {
            seq.serialize_element(&Tag {
                key: "span.kind",
                value: TagValue::Str(span.kind().as_str()),
            })?;
        }
        match span.status() {
            Status::Error => {
                seq.serialize_element(&Tag {
                    key: "otel.status_code",
                    value: TagValue::Str("ERROR"),
                })?;
                seq.serialize_element(&Tag {
                    key: "error",
                    value: TagValue::Bool(true),
                })?;
            }
            Status::Ok => seq.serialize_element(&Tag {
                key: "otel.status_code",
                value: TagValue::Str("OK"),
            })?,
            _ => {}
        }
        if let Some(details) = details {
            if !details.status_message.is_empty() {
                seq.serialize_element(&Tag {
                    key: "otel.status_description",
                    value: TagValue::Str(&details.status_message),
                })?;
            }
            if !details.scope.name.is_empty() {
                seq.serialize_element(&Tag {
                    key: "otel.scope.name",
                    value: TagValue::Str(&details.scope.name),
                })?;
            }
            if !details.scope.version.is_empty() {
                seq.serialize_element(&Tag {
                    key: "otel.scope.version",
                    value: TagValue::Str(&details.scope.version),
                })?;
            }
        }
        seq.end()
    }
}

struct Logs<'a> {
    trace: &'a StoredTrace,
    index: usize,
}

impl Serialize for Logs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let events = self
            .trace
            .details(self.index)
            .map_or(&[][..], |d| &d.events[..]);
        let mut seq = serializer.serialize_seq(Some(events.len()))?;
        for event in events {
            seq.serialize_element(&Log { event })?;
        }
        seq.end()
    }
}

struct Log<'a> {
    event: &'a crate::store::Event,
}

impl Serialize for Log<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Log", 2)?;
        out.serialize_field("timestamp", &(self.event.time_ns / 1000))?;
        out.serialize_field("fields", &LogFields(self.event))?;
        out.end()
    }
}

struct LogFields<'a>(&'a crate::store::Event);

impl Serialize for LogFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        seq.serialize_element(&Tag {
            key: "event",
            value: TagValue::Str(&self.0.name),
        })?;
        for tag in attribute_tags(&self.0.attributes) {
            seq.serialize_element(&tag)?;
        }
        seq.end()
    }
}

struct Processes<'a> {
    trace: &'a StoredTrace,
    first_span: &'a [usize],
}

impl Serialize for Processes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.first_span.len()))?;
        for (k, &i) in self.first_span.iter().enumerate() {
            map.serialize_entry(
                &format!("p{}", k + 1),
                &Process {
                    trace: self.trace,
                    index: i,
                },
            )?;
        }
        map.end()
    }
}

struct Process<'a> {
    trace: &'a StoredTrace,
    index: usize,
}

impl Serialize for Process<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = &self.trace.trace.spans[self.index];
        let mut out = serializer.serialize_struct("Process", 2)?;
        out.serialize_field("serviceName", jaeger_service(span.service()))?;
        out.serialize_field(
            "tags",
            &ProcessTags {
                trace: self.trace,
                index: self.index,
            },
        )?;
        out.end()
    }
}

struct ProcessTags<'a> {
    trace: &'a StoredTrace,
    index: usize,
}

impl Serialize for ProcessTags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = &self.trace.trace.spans[self.index];
        let mut seq = serializer.serialize_seq(None)?;
        match self.trace.details(self.index) {
            Some(details) => {
                for tag in attribute_tags(&details.resource).filter(|t| t.key != "service.name") {
                    seq.serialize_element(&tag)?;
                }
            }
            None => {
                if let Some(host) = span.host() {
                    seq.serialize_element(&Tag {
                        key: "hostname",
                        value: TagValue::Owned(host.to_owned()),
                    })?;
                }
            }
        }
        seq.end()
    }
}

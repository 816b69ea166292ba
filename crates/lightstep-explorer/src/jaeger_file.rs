//! The details of spans in Jaeger JSON files: their tags, logs, `FOLLOWS_FROM` references and
//! process tags, which the analysis's reader leaves out.
//!
//! Read in a second pass over the file (small files only: see
//! [`DETAILED_FILE_BYTES`](crate::DETAILED_FILE_BYTES)) and matched to the spans the analysis's
//! reader made by trace and span id, in the file's order where an id is repeated. Anything
//! this pass does not understand only costs the details: the spans, and the errors of a file
//! that is wrong, are the analysis reader's.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use lightstep_analysis::{SpanId, Trace, TraceId};
use serde::Deserialize;

use crate::store::{Event, KeyValue, LinkDetails, Scope, SpanDetails, Value};

/// Tags the analysis model already holds, shown from it (the Jaeger API writes them back).
const MODELLED_TAGS: [&str; 3] = ["span.kind", "error", "otel.status_code"];

/// The details of a file's spans, by trace and span id, in the file's order.
#[derive(Debug, Default)]
pub(crate) struct JaegerDetails {
    spans: HashMap<(TraceId, SpanId), VecDeque<SpanDetails>>,
}

impl JaegerDetails {
    /// The details of every span of `text` (one or more Jaeger documents), or `None` if it is
    /// not Jaeger JSON this pass reads.
    pub(crate) fn read(text: &[u8]) -> Option<Self> {
        let mut details = Self::default();
        for document in serde_json::Deserializer::from_slice(text).into_iter::<Document<'_>>() {
            let document = document.ok()?;
            let traces = document
                .data
                .into_iter()
                .flatten()
                .chain(document.spans.map(|spans| JaegerTrace {
                    spans,
                    processes: document.processes.unwrap_or_default(),
                }));
            for trace in traces {
                details.add_trace(trace);
            }
        }
        (!details.spans.is_empty()).then_some(details)
    }

    fn add_trace(&mut self, trace: JaegerTrace<'_>) {
        let resources: HashMap<&str, Arc<Vec<KeyValue>>> = trace
            .processes
            .iter()
            .map(|(id, process)| (&**id, Arc::new(process.resource())))
            .collect();
        for span in &trace.spans {
            let resource = match (&span.process, span.process_id.as_deref()) {
                (Some(process), _) => Arc::new(process.resource()),
                (None, Some(id)) => resources.get(id).cloned().unwrap_or_default(),
                (None, None) => Arc::default(),
            };
            let key = (TraceId::parse(&span.trace_id), SpanId::parse(&span.span_id));
            self.spans
                .entry(key)
                .or_default()
                .push_back(span.details(resource));
        }
    }

    /// The details of `trace`'s spans in its order (empty when none are known), taken out.
    pub(crate) fn take(&mut self, trace: &Trace) -> Vec<SpanDetails> {
        let mut found = false;
        let details: Vec<SpanDetails> = trace
            .spans
            .iter()
            .map(|span| {
                let key = (trace.trace_id.clone(), span.span_id().clone());
                match self.spans.get_mut(&key).and_then(VecDeque::pop_front) {
                    Some(details) => {
                        found = true;
                        details
                    }
                    None => SpanDetails::default(),
                }
            })
            .collect();
        if found { details } else { Vec::new() }
    }
}

#[derive(Deserialize)]
struct Document<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<JaegerTrace<'a>>>,
    #[serde(borrow, default)]
    spans: Option<Vec<JaegerSpan<'a>>>,
    #[serde(borrow, default)]
    processes: Option<HashMap<Cow<'a, str>, Process<'a>>>,
}

#[derive(Deserialize)]
struct JaegerTrace<'a> {
    #[serde(borrow, default)]
    spans: Vec<JaegerSpan<'a>>,
    #[serde(borrow, default)]
    processes: HashMap<Cow<'a, str>, Process<'a>>,
}

#[derive(Deserialize)]
struct JaegerSpan<'a> {
    #[serde(borrow, rename = "traceID")]
    trace_id: Cow<'a, str>,
    #[serde(borrow, rename = "spanID")]
    span_id: Cow<'a, str>,
    #[serde(borrow, default)]
    tags: Vec<Tag<'a>>,
    #[serde(borrow, default)]
    logs: Vec<Log<'a>>,
    #[serde(borrow, default)]
    references: Vec<Reference<'a>>,
    #[serde(borrow, default, rename = "processID")]
    process_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    process: Option<Process<'a>>,
}

#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct Log<'a> {
    /// Microseconds since the epoch.
    #[serde(default)]
    timestamp: u64,
    #[serde(borrow, default)]
    fields: Vec<Tag<'a>>,
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow, rename = "refType")]
    ref_type: Cow<'a, str>,
    #[serde(borrow, rename = "traceID")]
    trace_id: Cow<'a, str>,
    #[serde(borrow, rename = "spanID")]
    span_id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Process<'a> {
    #[serde(borrow, default, rename = "serviceName")]
    service_name: Cow<'a, str>,
    #[serde(borrow, default)]
    tags: Vec<Tag<'a>>,
}

impl Process<'_> {
    /// The process as a resource: `service.name`, then its tags.
    fn resource(&self) -> Vec<KeyValue> {
        std::iter::once(KeyValue {
            key: "service.name".into(),
            value: Value::Str((*self.service_name).into()),
        })
        .chain(self.tags.iter().map(Tag::to_attribute))
        .collect()
    }
}

impl Tag<'_> {
    /// The tag as an attribute, typed by its `type` (Jaeger writes 64-bit integers as numbers
    /// or, past 2^53, as strings; binary values as base64 text, kept as text here).
    fn to_attribute(&self) -> KeyValue {
        let value = match (self.kind.as_deref(), &self.value) {
            (Some("bool"), serde_json::Value::Bool(b)) => Value::Bool(*b),
            (Some("int64"), v) => integer(v).map_or_else(|| text(v), Value::Int),
            (Some("float64"), serde_json::Value::Number(n)) => {
                n.as_f64().map_or_else(|| text(&self.value), Value::Double)
            }
            (_, v) => text(v),
        };
        KeyValue {
            key: (*self.key).into(),
            value,
        }
    }
}

fn integer(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::String(s) => Value::Str(s.as_str().into()),
        serde_json::Value::Null => Value::Empty,
        other => Value::Str(other.to_string().into()),
    }
}

impl JaegerSpan<'_> {
    fn details(&self, resource: Arc<Vec<KeyValue>>) -> SpanDetails {
        let tag = |key: &str| self.tags.iter().find(|t| t.key == key);
        let tag_text = |keys: &[&str]| {
            keys.iter()
                .find_map(|key| tag(key))
                .and_then(|t| t.value.as_str())
                .unwrap_or_default()
        };
        let scope = Scope {
            name: tag_text(&["otel.scope.name", "otel.library.name"]).into(),
            version: tag_text(&["otel.scope.version", "otel.library.version"]).into(),
            attributes: Vec::new(),
        };
        let shown_elsewhere = |key: &str| {
            MODELLED_TAGS.contains(&key)
                || matches!(
                    key,
                    "otel.status_description"
                        | "otel.scope.name"
                        | "otel.library.name"
                        | "otel.scope.version"
                        | "otel.library.version"
                )
        };
        SpanDetails {
            attributes: self
                .tags
                .iter()
                .filter(|t| !shown_elsewhere(&t.key))
                .map(Tag::to_attribute)
                .collect(),
            events: self
                .logs
                .iter()
                .map(|log| {
                    let name = log
                        .fields
                        .iter()
                        .find(|f| f.key == "event")
                        .and_then(|f| f.value.as_str())
                        .unwrap_or("log");
                    Event {
                        time_ns: log.timestamp.saturating_mul(1_000),
                        name: name.into(),
                        attributes: log
                            .fields
                            .iter()
                            .filter(|f| f.key != "event")
                            .map(Tag::to_attribute)
                            .collect(),
                    }
                })
                .collect(),
            links: self
                .references
                .iter()
                .filter(|r| r.ref_type == "FOLLOWS_FROM")
                .map(|r| LinkDetails {
                    trace_id: TraceId::parse(&r.trace_id),
                    span_id: SpanId::parse(&r.span_id),
                    attributes: Vec::new(),
                })
                .collect(),
            status_message: tag_text(&["otel.status_description"]).into(),
            resource,
            scope: Arc::new(scope),
        }
    }
}

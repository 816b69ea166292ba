//! The details of spans in Jaeger and Zipkin JSON files, which the analysis's readers leave
//! out: Jaeger's tags, logs, `FOLLOWS_FROM` references and process tags; Zipkin's tags,
//! annotations and endpoints.
//!
//! Read in a second pass over the file (small files only: see
//! [`DETAILED_FILE_BYTES`](crate::DETAILED_FILE_BYTES)) and matched to the spans the analysis's
//! reader made by trace and span id, in the file's order where an id is repeated. Anything
//! this pass does not understand only costs the details: the spans, and the errors of a file
//! that is wrong, are the analysis reader's.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use lightstep_analysis::{SpanId, SpanKind, Trace, TraceId};
use serde::Deserialize;

use crate::store::{Event, KeyValue, LinkDetails, Scope, SpanDetails, Value};

/// A field that may be `null` (or absent): its default then. Files written by hand or by other
/// tools say `"tags": null`; the analysis's readers take it, so this pass does too.
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A count of microseconds written as an integer, a float or a string of digits (0 otherwise).
fn micros<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Number(n) => n
            .as_u64()
            // Integral floats only, as the readers take them; saturating at u64::MAX.
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .unwrap_or(0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    })
}

/// Tags the analysis model already holds, shown from it (the Jaeger API writes them back).
const MODELLED_TAGS: [&str; 3] = ["span.kind", "error", "otel.status_code"];

/// The details of a file's spans, by trace and span id, in the file's order.
#[derive(Debug, Default)]
pub(crate) struct FileDetails {
    spans: HashMap<(TraceId, SpanId), VecDeque<Entry>>,
}

/// A span's details, with the kind and service the file gave it where they tell apart spans of
/// one id (Zipkin's client and server halves of a shared span, its fragments).
struct Entry {
    kind: Option<SpanKind>,
    service: Option<Box<str>>,
    details: SpanDetails,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("kind", &self.kind)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl FileDetails {
    /// The details of every span of `text` (Jaeger documents, or a Zipkin list of spans or of
    /// traces), or `None` if it is neither as this pass reads them.
    pub(crate) fn read(text: &[u8]) -> Option<Self> {
        let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
        let mut details = Self::default();
        if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            let spans = match serde_json::from_slice(text).ok()? {
                ZipkinList::Spans(spans) => spans,
                ZipkinList::Traces(traces) => traces.into_iter().flatten().collect(),
            };
            for span in &spans {
                // Zipkin ids are compared as the analysis's reader compares them: case aside.
                let entry = Entry {
                    kind: span.kind(),
                    service: span.service().map(Into::into),
                    details: span.details(),
                };
                details.add(
                    &span.trace_id.to_ascii_lowercase(),
                    &span.id.to_ascii_lowercase(),
                    entry,
                );
            }
            return (!details.spans.is_empty()).then_some(details);
        }
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
                details.add_jaeger(trace);
            }
        }
        (!details.spans.is_empty()).then_some(details)
    }

    /// The details of every span of an OTLP document (protobuf, JSON or JSON Lines), taken as
    /// the receiver takes an export; `None` if it does not decode as one.
    pub(crate) fn read_otlp(text: &[u8], json: bool) -> Option<Self> {
        let mut details = Self::default();
        for received in crate::store::receive_otlp(text, json)?.take_traces() {
            let Some((trace, spans)) = crate::store::received_to_parts(&received) else {
                continue;
            };
            for (span, span_details) in trace.spans.iter().zip(spans) {
                let key = (trace.trace_id.clone(), span.span_id().clone());
                details.spans.entry(key).or_default().push_back(Entry {
                    kind: Some(span.kind()),
                    service: Some(span.service().into()),
                    details: span_details,
                });
            }
        }
        (!details.spans.is_empty()).then_some(details)
    }

    /// How many spans' details are held.
    pub(crate) fn len(&self) -> usize {
        self.spans.values().map(VecDeque::len).sum()
    }

    /// Adds the details `other` holds, after those of this one.
    pub(crate) fn extend(&mut self, other: Self) {
        for (key, entries) in other.spans {
            self.spans.entry(key).or_default().extend(entries);
        }
    }

    fn add(&mut self, trace_id: &str, span_id: &str, entry: Entry) {
        let key = (TraceId::parse(trace_id), SpanId::parse(span_id));
        self.spans.entry(key).or_default().push_back(entry);
    }

    fn add_jaeger(&mut self, trace: JaegerTrace<'_>) {
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
            let entry = Entry {
                kind: None,
                service: None,
                details: span.details(resource),
            };
            self.add(&span.trace_id, &span.span_id, entry);
        }
    }

    /// The details of `trace`'s spans in its order (empty when none are known), taken out.
    pub(crate) fn take(&mut self, trace: &Trace) -> Vec<SpanDetails> {
        let found = self.take_found(trace);
        if found.is_empty() {
            return Vec::new();
        }
        let mut details = Vec::with_capacity(trace.spans.len());
        for (at, span_details) in found {
            details.resize_with(at, SpanDetails::default);
            details.push(span_details);
        }
        details.resize_with(trace.spans.len(), SpanDetails::default);
        details
    }

    /// The details of those of `trace`'s spans that are known, with each span's position,
    /// in the trace's order, taken out.
    pub(crate) fn take_found(&mut self, trace: &Trace) -> Vec<(usize, SpanDetails)> {
        if self.spans.is_empty() {
            return Vec::new();
        }
        trace
            .spans
            .iter()
            .enumerate()
            .filter_map(|(at, span)| Some((at, self.take_one(&trace.trace_id, span)?)))
            .collect()
    }

    /// The details of one span: among the entries of its id (or, for the server half the
    /// analysis's Zipkin reader names `<id>-server`, of `<id>`), the first of the same kind and
    /// service, else of the same kind, else one that gave no kind.
    fn take_one(
        &mut self,
        trace_id: &TraceId,
        span: &lightstep_analysis::Span,
    ) -> Option<SpanDetails> {
        let own = (trace_id.clone(), span.span_id().clone());
        let key = if self.spans.get(&own).is_some_and(|e| !e.is_empty()) {
            own
        } else {
            let id = span.span_id().to_string();
            (trace_id.clone(), SpanId::parse(id.strip_suffix("-server")?))
        };
        let entries = self.spans.get_mut(&key)?;
        let score = |entry: &Entry| match entry.kind {
            Some(kind) if kind != span.kind() => None,
            kind => Some(
                2 * u8::from(kind.is_some())
                    + u8::from(entry.service.as_deref() == Some(span.service())),
            ),
        };
        let (at, _) = entries
            .iter()
            .enumerate()
            .filter_map(|(at, entry)| score(entry).map(|score| (at, score)))
            // The first of the best.
            .max_by_key(|&(at, score)| (score, std::cmp::Reverse(at)))?;
        entries.remove(at).map(|entry| entry.details)
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
    #[serde(borrow, default, deserialize_with = "or_default")]
    spans: Vec<JaegerSpan<'a>>,
    #[serde(borrow, default, deserialize_with = "or_default")]
    processes: HashMap<Cow<'a, str>, Process<'a>>,
}

#[derive(Deserialize)]
struct JaegerSpan<'a> {
    #[serde(borrow, rename = "traceID")]
    trace_id: Cow<'a, str>,
    #[serde(borrow, rename = "spanID")]
    span_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "or_default")]
    tags: Vec<Tag<'a>>,
    #[serde(borrow, default, deserialize_with = "or_default")]
    logs: Vec<Log<'a>>,
    #[serde(borrow, default, deserialize_with = "or_default")]
    references: Vec<Reference<'a>>,
    #[serde(borrow, default, rename = "processID")]
    process_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    process: Option<Process<'a>>,
}

#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(borrow, default, deserialize_with = "or_default")]
    key: Cow<'a, str>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct Log<'a> {
    /// Microseconds since the epoch.
    #[serde(default, deserialize_with = "micros")]
    timestamp: u64,
    #[serde(borrow, default, deserialize_with = "or_default")]
    fields: Vec<Tag<'a>>,
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow, default, deserialize_with = "or_default", rename = "refType")]
    ref_type: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "or_default", rename = "traceID")]
    trace_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "or_default", rename = "spanID")]
    span_id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Process<'a> {
    #[serde(
        borrow,
        default,
        deserialize_with = "or_default",
        rename = "serviceName"
    )]
    service_name: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "or_default")]
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

/// A Zipkin v2 file: a list of spans, or a list of traces (lists of spans).
#[derive(Deserialize)]
#[serde(untagged)]
enum ZipkinList<'a> {
    #[serde(borrow)]
    Spans(Vec<ZipkinSpan<'a>>),
    #[serde(borrow)]
    Traces(Vec<Vec<ZipkinSpan<'a>>>),
}

#[derive(Deserialize)]
struct ZipkinSpan<'a> {
    #[serde(borrow, rename = "traceId")]
    trace_id: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "or_default")]
    tags: HashMap<Cow<'a, str>, serde_json::Value>,
    #[serde(borrow, default, deserialize_with = "or_default")]
    annotations: Vec<Annotation<'a>>,
    #[serde(borrow, default, rename = "localEndpoint")]
    local: Option<Endpoint<'a>>,
    #[serde(borrow, default, rename = "remoteEndpoint")]
    remote: Option<Endpoint<'a>>,
}

#[derive(Deserialize)]
struct Annotation<'a> {
    /// Microseconds since the epoch.
    #[serde(default, deserialize_with = "micros")]
    timestamp: u64,
    #[serde(borrow, default, deserialize_with = "or_default")]
    value: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Endpoint<'a> {
    #[serde(borrow, default, rename = "serviceName")]
    service_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ipv4: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ipv6: Option<Cow<'a, str>>,
    #[serde(default)]
    port: Option<serde_json::Value>,
}

impl Endpoint<'_> {
    /// The endpoint's fields as attributes named as Zipkin names them, under `prefix`
    /// (`localEndpoint.ipv4`, `remoteEndpoint.serviceName`, ...).
    fn attributes(&self, prefix: &str) -> Vec<KeyValue> {
        let text = |name: &str, value: &Option<Cow<'_, str>>| {
            value.as_ref().map(|v| KeyValue {
                key: format!("{prefix}.{name}").into(),
                value: Value::Str((**v).into()),
            })
        };
        [
            text("serviceName", &self.service_name),
            text("ipv4", &self.ipv4),
            text("ipv6", &self.ipv6),
            self.port.as_ref().and_then(integer).map(|port| KeyValue {
                key: format!("{prefix}.port").into(),
                value: Value::Int(port),
            }),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl ZipkinSpan<'_> {
    /// The service the analysis's reader takes the span to have run in.
    fn service(&self) -> Option<&str> {
        self.local.as_ref()?.service_name.as_deref()
    }

    /// The span's kind as the analysis's reader gives it (none given: unspecified).
    fn kind(&self) -> Option<SpanKind> {
        Some(match self.kind.as_deref() {
            Some("CLIENT") => SpanKind::Client,
            Some("SERVER") => SpanKind::Server,
            Some("PRODUCER") => SpanKind::Producer,
            Some("CONSUMER") => SpanKind::Consumer,
            _ => return None,
        })
    }

    fn details(&self) -> SpanDetails {
        let mut tags: Vec<(&str, &serde_json::Value)> =
            self.tags.iter().map(|(k, v)| (&**k, v)).collect();
        // A JSON object's keys have no order that survives a map: shown sorted.
        tags.sort_unstable_by_key(|(key, _)| *key);
        let mut attributes: Vec<KeyValue> = tags
            .into_iter()
            // Zipkin's `error` tag is the span's status and its message.
            .filter(|(key, _)| *key != "error")
            .map(|(key, value)| KeyValue {
                key: key.into(),
                value: text(value),
            })
            .collect();
        if let Some(remote) = &self.remote {
            attributes.extend(remote.attributes("remoteEndpoint"));
        }
        let resource = self
            .local
            .as_ref()
            .map(|local| local.attributes("localEndpoint"))
            .unwrap_or_default();
        SpanDetails {
            attributes,
            events: self
                .annotations
                .iter()
                .map(|a| Event {
                    time_ns: a.timestamp.saturating_mul(1_000),
                    name: (*a.value).into(),
                    attributes: Vec::new(),
                })
                .collect(),
            links: Vec::new(),
            status_message: self
                .tags
                .get("error")
                .and_then(serde_json::Value::as_str)
                .map_or_else(Box::default, Into::into),
            resource: Arc::new(resource),
            scope: Arc::default(),
        }
    }
}

//! JSON formats, read with serde visitors that hand traces over as soon as they are complete.
//!
//! One visitor looks at each document: an object is OTLP (`resourceSpans`) or Jaeger (`data`,
//! or `traceID`/`spans`/`processes`) whatever the order of its keys; an array is Zipkin. Keys
//! that no format uses (CRISP's `testing`, Jaeger's `total`) are skipped without being stored.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::zipkin::{self, ZipkinSpan};
use super::{Format, Grouper, Interner, ReadStats, end_from_micros, micros_to_nanos};
use crate::Error;
use crate::model::{Link, ParentRelation, Span, SpanId, SpanKind, Status, Trace, TraceId};

/// State shared by the visitors of one input.
struct Ctx<'a> {
    sink: &'a mut dyn FnMut(Trace) -> io::Result<()>,
    stats: &'a mut ReadStats,
    expected: Option<Format>,
    /// Set when the sink failed; the serde error that unwinds the parser is then replaced by it.
    sink_error: Option<io::Error>,
    /// Set when a document turned out to be of another format than the one asked for.
    wrong_format: Option<&'static str>,
    names: Interner,
    /// OTLP traces held across documents (JSON Lines).
    held: Held,
}

/// OTLP traces held across documents: one trace's spans are spread over several lines of a
/// JSON Lines file.
struct Held {
    traces: HashMap<TraceId, HeldTrace, foldhash::fast::RandomState>,
    spans: usize,
    limit: usize,
    /// Documents read so far: the clock for "received spans least recently".
    document: u64,
    /// Traces handed over before the end because of the limit (forgotten past a million).
    released: HashSet<TraceId, foldhash::fast::RandomState>,
}

struct HeldTrace {
    trace: Trace,
    first_seen: u64,
    last_seen: u64,
}

impl Held {
    fn new(limit: usize) -> Self {
        Self {
            traces: HashMap::default(),
            spans: 0,
            limit,
            document: 0,
            released: HashSet::default(),
        }
    }

    /// Takes one document's traces; returns the traces to hand over now to stay in the limit,
    /// least recently extended first.
    fn absorb(&mut self, traces: Vec<Trace>, split: &mut usize) -> Vec<Trace> {
        self.document += 1;
        let now = self.document;
        for trace in traces {
            self.spans += trace.spans.len();
            if self.released.remove(&trace.trace_id) {
                *split += 1;
            }
            match self.traces.get_mut(&trace.trace_id) {
                Some(held) => {
                    held.trace.spans.extend(trace.spans);
                    held.last_seen = now;
                }
                None => {
                    self.traces.insert(
                        trace.trace_id.clone(),
                        HeldTrace {
                            trace,
                            first_seen: now,
                            last_seen: now,
                        },
                    );
                }
            }
        }
        if self.spans <= self.limit {
            return Vec::new();
        }
        // Over the limit: release the least recently extended traces down to three quarters of
        // it, so that releasing (a sort of the held traces) happens once per many documents.
        let mut order: Vec<(u64, u64, TraceId)> = self
            .traces
            .iter()
            .map(|(id, held)| (held.last_seen, held.first_seen, id.clone()))
            .collect();
        order.sort_unstable_by_key(|&(last, first, _)| (last, first));
        let target = self.limit / 4 * 3;
        let mut out = Vec::new();
        for (_, _, id) in order {
            if self.spans <= target {
                break;
            }
            if let Some(held) = self.traces.remove(&id) {
                self.spans -= held.trace.spans.len();
                if self.released.len() >= 1_000_000 {
                    self.released.clear();
                }
                self.released.insert(id);
                out.push(held.trace);
            }
        }
        out
    }

    /// Everything still held, in order of first appearance.
    fn drain(&mut self) -> Vec<Trace> {
        let mut rest: Vec<HeldTrace> = self.traces.drain().map(|(_, held)| held).collect();
        rest.sort_unstable_by_key(|held| held.first_seen);
        self.spans = 0;
        rest.into_iter().map(|held| held.trace).collect()
    }
}

impl Ctx<'_> {
    fn claim<E: de::Error>(&mut self, found: Format) -> Result<(), E> {
        if let Some(expected) = self.expected
            && expected != found
        {
            self.wrong_format = Some(found.as_str());
            return Err(E::custom(format_args!(
                "expected {expected}, found {found}"
            )));
        }
        self.stats.format = Some(found);
        Ok(())
    }

    fn emit<E: de::Error>(&mut self, trace: Trace) -> Result<(), E> {
        self.stats.traces += 1;
        self.stats.spans += trace.spans.len();
        (self.sink)(trace).map_err(|err| {
            self.sink_error = Some(err);
            E::custom("stopped by the consumer")
        })
    }
}

pub(super) fn read<R: Read>(
    input: R,
    file: &Path,
    expected: Option<Format>,
    sink: &mut dyn FnMut(Trace) -> io::Result<()>,
    stats: &mut ReadStats,
) -> Result<(), Error> {
    let mut ctx = Ctx {
        sink,
        stats,
        expected,
        sink_error: None,
        wrong_format: None,
        names: Interner::default(),
        held: Held::new(super::HELD_SPANS),
    };
    let mut de = serde_json::Deserializer::from_reader(input);
    // Several documents may follow each other (JSON Lines); `end` succeeds only at the end.
    let mut outcome = loop {
        if let Err(err) = Document(&mut ctx).deserialize(&mut de) {
            break Err(err);
        }
        if de.end().is_ok() {
            break Ok(());
        }
    };
    // What is still held is handed over even when a later line is broken: nothing read is lost.
    if ctx.sink_error.is_none() {
        for trace in ctx.held.drain() {
            if let Err(err) = ctx.emit::<serde_json::Error>(trace) {
                outcome = Err(err);
                break;
            }
        }
    }
    match outcome {
        Ok(()) => Ok(()),
        Err(err) => {
            if let Some(source) = ctx.sink_error.take() {
                return Err(Error::Sink {
                    file: file.into(),
                    source,
                });
            }
            if let (Some(expected), Some(found)) = (expected, ctx.wrong_format) {
                return Err(Error::WrongFormat {
                    file: file.into(),
                    expected,
                    found,
                });
            }
            Err(json_error(file, &err))
        }
    }
}

fn json_error(file: &Path, err: &serde_json::Error) -> Error {
    // serde_json appends " at line L column C" to its message; the location goes in fields.
    let text = err.to_string();
    let message = match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    };
    // Messages quote input, which may hold line breaks; errors stay on one line.
    let message = message.replace('\n', "\\n").replace('\r', "\\r");
    let message = if err.is_eof() {
        format!("{message} (the input ends too early)")
    } else {
        message
    };
    Error::Json {
        file: file.into(),
        line: err.line(),
        column: err.column(),
        message,
    }
}

/// One JSON document.
struct Document<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerProcess {
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    tags: Option<Vec<JaegerTag>>,
}

#[derive(Deserialize)]
struct JaegerTag {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerRef {
    #[serde(default)]
    ref_type: String,
    #[serde(rename = "spanID", default)]
    span_id: String,
    #[serde(rename = "traceID", default)]
    trace_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerSpan {
    #[serde(rename = "traceID", default)]
    trace_id: Option<String>,
    #[serde(rename = "spanID", deserialize_with = "required_id")]
    span_id: String,
    #[serde(rename = "parentSpanID", default)]
    parent_span_id: Option<String>,
    #[serde(default)]
    operation_name: String,
    #[serde(default)]
    references: Option<Vec<JaegerRef>>,
    #[serde(default, deserialize_with = "unsigned")]
    start_time: u64,
    #[serde(default, deserialize_with = "signed")]
    duration: i64,
    #[serde(rename = "processID", default)]
    process_id: Option<String>,
    #[serde(default)]
    process: Option<JaegerProcess>,
    #[serde(default)]
    tags: Option<Vec<JaegerTag>>,
}

#[derive(Default, Deserialize)]
struct JaegerTrace {
    #[serde(rename = "traceID", default)]
    trace_id: Option<String>,
    #[serde(default)]
    spans: Option<Vec<JaegerSpan>>,
    #[serde(default)]
    processes: Option<HashMap<String, JaegerProcess>>,
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (OTLP or Jaeger) or array (Zipkin) of trace data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let mut otlp: Option<Grouper> = None;
        let mut jaeger_data = false;
        let mut legacy: Option<JaegerTrace> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resourceSpans" => {
                    ctx.claim(Format::OtlpJson)?;
                    let grouper = otlp.get_or_insert_with(Grouper::default);
                    map.next_value_seed(ResourceSpansList(ctx, grouper))?;
                }
                "data" => {
                    ctx.claim(Format::JaegerJson)?;
                    jaeger_data = true;
                    map.next_value_seed(JaegerData(ctx))?;
                }
                "traceID" => {
                    ctx.claim(Format::JaegerJson)?;
                    legacy.get_or_insert_with(JaegerTrace::default).trace_id = map.next_value()?;
                }
                "spans" => {
                    ctx.claim(Format::JaegerJson)?;
                    legacy.get_or_insert_with(JaegerTrace::default).spans = map.next_value()?;
                }
                "processes" => {
                    ctx.claim(Format::JaegerJson)?;
                    legacy.get_or_insert_with(JaegerTrace::default).processes = map.next_value()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(grouper) = otlp {
            let mut split = 0;
            let released = ctx.held.absorb(grouper.into_traces(), &mut split);
            ctx.stats.split_traces += split;
            for trace in released {
                ctx.emit(trace)?;
            }
        } else if let Some(trace) = legacy {
            let trace = convert_jaeger(trace, &mut ctx.names);
            ctx.emit(trace)?;
        } else if !jaeger_data {
            return Err(de::Error::custom(
                "no trace data: expected \"resourceSpans\" (OTLP), \"data\" or \"traceID\"/\"spans\" (Jaeger), or an array of spans (Zipkin)",
            ));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.0;
        ctx.claim(Format::ZipkinJson)?;
        let mut loose: Vec<ZipkinSpan> = Vec::new();
        while let Some(element) = seq.next_element::<ZipkinElement>()? {
            match element {
                ZipkinElement::Span(span) => loose.push(*span),
                ZipkinElement::Trace(spans) => {
                    for trace in zipkin::convert(spans, &mut ctx.names, ctx.stats) {
                        ctx.emit(trace)?;
                    }
                }
            }
        }
        for trace in zipkin::convert(loose, &mut ctx.names, ctx.stats) {
            ctx.emit(trace)?;
        }
        Ok(())
    }
}

enum ZipkinElement {
    Span(Box<ZipkinSpan>),
    Trace(Vec<ZipkinSpan>),
}

impl<'de> Deserialize<'de> for ZipkinElement {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ZipkinElementVisitor)
    }
}

struct ZipkinElementVisitor;

impl<'de> Visitor<'de> for ZipkinElementVisitor {
    type Value = ZipkinElement;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Zipkin span object or an array of spans")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ZipkinElement, A::Error> {
        let span = ZipkinSpan::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(ZipkinElement::Span(Box::new(span)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ZipkinElement, A::Error> {
        let mut spans = Vec::new();
        while let Some(span) = seq.next_element::<ZipkinSpan>()? {
            spans.push(span);
        }
        Ok(ZipkinElement::Trace(spans))
    }
}

/// Jaeger's `data`: an array of traces (or null), each handed over when complete.
struct JaegerData<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for JaegerData<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JaegerData<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of Jaeger traces")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(trace) = seq.next_element::<JaegerTrace>()? {
            let trace = convert_jaeger(trace, &mut self.0.names);
            self.0.emit(trace)?;
        }
        Ok(())
    }
}

fn tag_str(tags: &[JaegerTag], key: &str) -> Option<String> {
    let tag = tags.iter().find(|t| t.key == key)?;
    match &tag.value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn convert_jaeger(trace: JaegerTrace, names: &mut Interner) -> Trace {
    let trace_id = TraceId::parse(trace.trace_id.as_deref().unwrap_or(""));
    let processes = trace.processes.unwrap_or_default();
    let process_info: HashMap<&str, (Arc<str>, Option<Arc<str>>)> = processes
        .iter()
        .map(|(key, p)| {
            (
                key.as_str(),
                (names.get(&p.service_name), process_host(p, names)),
            )
        })
        .collect();
    let mut spans = Vec::new();
    for raw in trace.spans.unwrap_or_default() {
        let span_trace = raw
            .trace_id
            .as_deref()
            .map(TraceId::parse)
            .unwrap_or_else(|| trace_id.clone());
        let start = micros_to_nanos(raw.start_time);
        let end = end_from_micros(start, raw.duration);
        let mut span = Span::new(span_trace, SpanId::parse(&raw.span_id), start, end)
            .with_name(names.get(&raw.operation_name));
        let references = raw.references.unwrap_or_default();
        let mut refs = references.into_iter();
        match refs.next() {
            Some(first) if is_parent_ref(&first.ref_type) => {
                let relation = if first.ref_type.eq_ignore_ascii_case("FOLLOWS_FROM") {
                    ParentRelation::FollowsFrom
                } else {
                    ParentRelation::ChildOf
                };
                span = span
                    .with_parent(SpanId::parse(&first.span_id))
                    .with_relation(relation);
            }
            Some(first) => span = span.with_link(jaeger_link(&first, &trace_id)),
            None => {
                if let Some(parent) = raw.parent_span_id.as_deref().filter(|p| !p.is_empty()) {
                    span = span.with_parent(SpanId::parse(parent));
                }
            }
        }
        for other in refs {
            span = span.with_link(jaeger_link(&other, &trace_id));
        }
        let (service, host) = match raw
            .process_id
            .as_deref()
            .and_then(|id| process_info.get(id))
        {
            Some((service, host)) => (service.clone(), host.clone()),
            None => match &raw.process {
                Some(p) => (names.get(&p.service_name), process_host(p, names)),
                None => (names.get(""), None),
            },
        };
        span.set_service(service);
        span.set_host(host);
        let tags = raw.tags.unwrap_or_default();
        if let Some(kind) = tag_str(&tags, "span.kind") {
            span = span.with_kind(SpanKind::from_name(&kind));
        }
        if let Some(peer) = super::peer_from(
            span.kind(),
            &super::PEER_KEYS.map(|key| tag_str(&tags, key)),
        ) {
            span = span.with_peer(names.get(&peer));
        }
        let error = tag_str(&tags, "error").is_some_and(|v| v == "true")
            || tag_str(&tags, "otel.status_code").is_some_and(|v| v.eq_ignore_ascii_case("error"));
        if error {
            span = span.with_status(Status::Error);
        }
        spans.push(span);
    }
    Trace::new(trace_id, spans)
}

fn is_parent_ref(ref_type: &str) -> bool {
    ref_type.eq_ignore_ascii_case("CHILD_OF") || ref_type.eq_ignore_ascii_case("FOLLOWS_FROM")
}

fn jaeger_link(reference: &JaegerRef, trace_id: &TraceId) -> Link {
    Link {
        trace_id: reference
            .trace_id
            .as_deref()
            .map(TraceId::parse)
            .unwrap_or_else(|| trace_id.clone()),
        span_id: SpanId::parse(&reference.span_id),
    }
}

fn process_host(process: &JaegerProcess, names: &mut Interner) -> Option<Arc<str>> {
    let tags = process.tags.as_deref().unwrap_or_default();
    tag_str(tags, "hostname")
        .or_else(|| tag_str(tags, "ip"))
        .map(|h| names.get(&h))
}

// ---- OTLP JSON ----------------------------------------------------------------------------

/// `resourceSpans`: each entry's spans go into the document's grouper.
struct ResourceSpansList<'c, 'a, 'g>(&'c mut Ctx<'a>, &'g mut Grouper);

impl<'de> DeserializeSeed<'de> for ResourceSpansList<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResourceSpansList<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of OTLP ResourceSpans")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Self(ctx, grouper) = self;
        while seq
            .next_element_seed(ResourceSpans {
                names: &mut ctx.names,
                grouper,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct ResourceSpans<'n, 'g> {
    names: &'n mut Interner,
    grouper: &'g mut Grouper,
}

#[derive(Default, Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Option<Vec<KeyValue>>,
}

#[derive(Deserialize)]
struct KeyValue {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: Option<AnyValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyValue {
    #[serde(default)]
    string_value: Option<String>,
}

impl<'de> DeserializeSeed<'de> for ResourceSpans<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResourceSpans<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP ResourceSpans object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The resource may come after the spans; spans wait here until it is known.
        let mut spans: Vec<Span> = Vec::new();
        let mut resource = Resource::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resource" => resource = map.next_value::<Option<Resource>>()?.unwrap_or_default(),
                "scopeSpans" | "instrumentationLibrarySpans" => {
                    map.next_value_seed(ScopeSpansList {
                        names: self.names,
                        spans: &mut spans,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let attribute = |key: &str| {
            resource
                .attributes
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.as_ref()?.string_value.clone())
        };
        let service = self
            .names
            .get(attribute("service.name").as_deref().unwrap_or(""));
        let host = attribute("host.name")
            .or_else(|| attribute("host.id"))
            .or_else(|| attribute("service.instance.id"))
            .map(|h| self.names.get(&h));
        for mut span in spans {
            span.set_service(service.clone());
            span.set_host(host.clone());
            self.grouper.push(span);
        }
        Ok(())
    }
}

struct ScopeSpansList<'n, 's> {
    names: &'n mut Interner,
    spans: &'s mut Vec<Span>,
}

impl<'de> DeserializeSeed<'de> for ScopeSpansList<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScopeSpansList<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of OTLP ScopeSpans")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(ScopeSpans {
                names: self.names,
                spans: self.spans,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct ScopeSpans<'n, 's> {
    names: &'n mut Interner,
    spans: &'s mut Vec<Span>,
}

impl<'de> DeserializeSeed<'de> for ScopeSpans<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ScopeSpans<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP ScopeSpans object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "spans" {
                map.next_value_seed(OtlpSpans {
                    names: &mut *self.names,
                    spans: &mut *self.spans,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct OtlpSpans<'n, 's> {
    names: &'n mut Interner,
    spans: &'s mut Vec<Span>,
}

impl<'de> DeserializeSeed<'de> for OtlpSpans<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OtlpSpans<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of OTLP spans")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Converted one by one, so the raw form of only one span exists at a time.
        while let Some(raw) = seq.next_element::<OtlpSpan>()? {
            self.spans.push(raw.into_span(self.names));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtlpSpan {
    // A span without its ids cannot be placed in a trace: the error names the field and where.
    #[serde(deserialize_with = "required_id")]
    trace_id: String,
    #[serde(deserialize_with = "required_id")]
    span_id: String,
    #[serde(default)]
    parent_span_id: String,
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "otlp_kind")]
    kind: SpanKind,
    #[serde(default, deserialize_with = "unsigned")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "unsigned")]
    end_time_unix_nano: u64,
    #[serde(default)]
    status: Option<OtlpStatus>,
    #[serde(default)]
    links: Option<Vec<OtlpLink>>,
    #[serde(default)]
    attributes: PeerAttributes,
    #[serde(default, deserialize_with = "unsigned")]
    flags: u64,
}

/// Of a span's attributes, only the values of [`super::PEER_KEYS`]; the rest are skipped.
#[derive(Default)]
struct PeerAttributes([Option<String>; 5]);

#[derive(Deserialize)]
struct PeerAttribute {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: Option<PeerValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PeerValue {
    #[serde(default)]
    string_value: Option<String>,
    /// A number, or (as OTLP JSON writes 64-bit integers) a string of digits.
    #[serde(default)]
    int_value: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for PeerAttributes {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = PeerAttributes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of OTLP attributes")
            }

            fn visit_unit<E: de::Error>(self) -> Result<PeerAttributes, E> {
                Ok(PeerAttributes::default())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PeerAttributes, A::Error> {
                let mut values = PeerAttributes::default();
                while let Some(attribute) = seq.next_element::<PeerAttribute>()? {
                    let Some(i) = super::PEER_KEYS.iter().position(|k| *k == attribute.key) else {
                        continue;
                    };
                    values.0[i] =
                        attribute
                            .value
                            .and_then(|v| match (v.string_value, v.int_value) {
                                (Some(text), _) => Some(text),
                                (None, Some(serde_json::Value::String(digits))) => Some(digits),
                                (None, Some(serde_json::Value::Number(n))) => Some(n.to_string()),
                                _ => None,
                            });
                }
                Ok(values)
            }
        }
        deserializer.deserialize_any(List)
    }
}

#[derive(Deserialize)]
struct OtlpStatus {
    #[serde(default, deserialize_with = "otlp_status")]
    code: Status,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtlpLink {
    #[serde(default)]
    trace_id: String,
    #[serde(default)]
    span_id: String,
}

impl OtlpSpan {
    fn into_span(self, names: &mut Interner) -> Span {
        let mut span = Span::new(
            TraceId::parse(&self.trace_id),
            SpanId::parse(&self.span_id),
            self.start_time_unix_nano,
            self.end_time_unix_nano,
        )
        .with_name(names.get(&self.name))
        .with_kind(self.kind);
        if !self.parent_span_id.is_empty() {
            span = span.with_parent(SpanId::parse(&self.parent_span_id));
        }
        if let Some(status) = self.status {
            span = span.with_status(status.code);
        }
        for link in self.links.unwrap_or_default() {
            span = span.with_link(Link {
                trace_id: TraceId::parse(&link.trace_id),
                span_id: SpanId::parse(&link.span_id),
            });
        }
        if let Some(peer) = super::peer_from(span.kind(), &self.attributes.0) {
            span = span.with_peer(names.get(&peer));
        }
        // OTLP's span flags: bit 8 says whether bit 9 (the parent is remote) is known.
        if self.flags & 0x300 == 0x300 {
            span = span.with_remote_parent(true);
        }
        span
    }
}

// ---- scalar helpers -------------------------------------------------------------------------

/// An integer that may be written as a number or a string of digits. Numbers are taken as
/// serde_json parsed them: integers exactly as `u64`/`i64`; a float only when it is integral and
/// small enough (2^53) to be exact, so nothing is ever rounded.
struct IntVisitor {
    signed: bool,
}

const EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

impl Visitor<'_> for IntVisitor {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.signed {
            f.write_str("an integer (a number or a string of digits)")
        } else {
            f.write_str("a non-negative integer (a number or a string of digits)")
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(i128::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        if v < 0 && !self.signed {
            return Err(E::invalid_value(de::Unexpected::Signed(v), &self));
        }
        Ok(i128::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
        if v.fract() == 0.0 && v.abs() <= EXACT_FLOAT && (self.signed || v >= 0.0) {
            // Exact: integral and within the range where f64 holds every integer.
            Ok(v as i128)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        let parsed = if self.signed {
            v.parse::<i64>().map(i128::from).ok()
        } else {
            v.parse::<u64>().map(i128::from).ok()
        };
        parsed.ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_unit<E: de::Error>(self) -> Result<i128, E> {
        Ok(0)
    }
}

/// An id that must be present and not empty (a missing one is serde's "missing field").
pub(super) fn required_id<'de, D: de::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = String::deserialize(d)?;
    if id.is_empty() {
        return Err(de::Error::invalid_value(
            de::Unexpected::Str(""),
            &"a non-empty id",
        ));
    }
    Ok(id)
}

fn unsigned<'de, D: de::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = d.deserialize_any(IntVisitor { signed: false })?;
    u64::try_from(v).map_err(|_| de::Error::custom("integer out of range"))
}

fn signed<'de, D: de::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = d.deserialize_any(IntVisitor { signed: true })?;
    i64::try_from(v).map_err(|_| de::Error::custom("integer out of range"))
}

/// Optional microseconds (Zipkin), as an exact integer.
pub(super) fn optional_micros<'de, D: de::Deserializer<'de>>(
    d: D,
) -> Result<Option<u64>, D::Error> {
    let v = d.deserialize_any(IntVisitor { signed: false })?;
    u64::try_from(v)
        .map(Some)
        .map_err(|_| de::Error::custom("integer out of range"))
}

struct EnumVisitor {
    what: &'static str,
}

impl Visitor<'_> for EnumVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a number or a name", self.what)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

fn otlp_kind<'de, D: de::Deserializer<'de>>(d: D) -> Result<SpanKind, D::Error> {
    let text = d.deserialize_any(EnumVisitor {
        what: "a span kind",
    })?;
    Ok(match text.parse::<i64>() {
        Ok(n) => SpanKind::from_otlp(n),
        Err(_) => SpanKind::from_name(&text),
    })
}

fn otlp_status<'de, D: de::Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
    let text = d.deserialize_any(EnumVisitor {
        what: "a status code",
    })?;
    Ok(match text.as_str() {
        "1" | "STATUS_CODE_OK" | "OK" => Status::Ok,
        "2" | "STATUS_CODE_ERROR" | "ERROR" => Status::Error,
        _ => Status::Unset,
    })
}

#[cfg(test)]
mod tests {
    use super::super::read_traces;
    use super::*;

    fn read_all(input: &str, format: Option<Format>) -> Result<Vec<Trace>, Error> {
        let mut traces = Vec::new();
        read_traces(input.as_bytes(), Path::new("in.json"), format, |t| {
            traces.push(t);
            Ok(())
        })?;
        Ok(traces)
    }

    #[test]
    fn otlp_numbers_beyond_2_pow_53_are_exact() {
        let doc = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AB","spanId":"CD",
            "startTimeUnixNano":1544712660000000001,"endTimeUnixNano":"1544712661000000003"}]}],
            "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"late"}}]}}]}"#;
        let traces = read_all(doc, None).unwrap();
        let span = &traces[0].spans[0];
        assert_eq!(span.start_ns(), 1_544_712_660_000_000_001);
        assert_eq!(span.end_ns(), 1_544_712_661_000_000_003);
        assert_eq!(
            span.service(),
            "late",
            "a resource after its spans still names them"
        );
        assert_eq!(span.span_id(), &SpanId::parse("cd"));
    }

    #[test]
    fn fractional_timestamps_are_refused_with_a_location() {
        let doc =
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[\n{\"startTimeUnixNano\":1.5}]}]}]}";
        let err = read_all(doc, None).unwrap_err();
        match err {
            Error::Json {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!(line, 2);
                assert!(column > 1);
                assert!(message.contains("non-negative integer"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn spans_without_their_ids_are_refused_with_the_field_and_a_location() {
        let cases = [
            (
                "otlp",
                "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[\n{\"traceId\":\"ab\"}]}]}]}",
                "missing field `spanId`",
            ),
            (
                "otlp",
                "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[\n{\"traceId\":\"\",\"spanId\":\"01\"}]}]}]}",
                "expected a non-empty id",
            ),
            (
                "zipkin",
                "[\n{\"traceId\":\"ab\",\"name\":\"x\"}]",
                "missing field `id`",
            ),
            ("zipkin", "[\n{\"id\":\"01\"}]", "missing field `traceId`"),
            (
                "jaeger",
                "{\"data\":[{\"traceID\":\"ab\",\"spans\":[\n{\"spanID\":\"\"}]}]}",
                "expected a non-empty id",
            ),
        ];
        for (format, doc, expected) in cases {
            match read_all(doc, None).unwrap_err() {
                Error::Json { line, message, .. } => {
                    assert_eq!(line, 2, "{format}: {message}");
                    assert!(message.contains(expected), "{format}: {message}");
                }
                other => panic!("{format}: unexpected {other}"),
            }
        }
    }

    #[test]
    fn errors_quoting_line_breaks_stay_on_one_line() {
        let doc =
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"1\n2"}]}]}]}"#;
        let err = read_all(doc, None).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains(r"1\n2"), "{err}");
    }

    #[test]
    fn legacy_instrumentation_library_spans_and_string_enums_are_read() {
        let doc = r#"{"resourceSpans":[{"instrumentationLibrarySpans":[{"instrumentationLibrary":{"name":"x"},
            "spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"B7AD6B7169203331",
            "kind":"SPAN_KIND_CONSUMER","status":{"code":"STATUS_CODE_ERROR"},
            "startTimeUnixNano":"1","endTimeUnixNano":"2","links":[{"traceId":"01","spanId":"02"}]}]}]}]}"#;
        let traces = read_all(doc, Some(Format::OtlpJson)).unwrap();
        let span = &traces[0].spans[0];
        assert_eq!(span.kind(), SpanKind::Consumer);
        assert_eq!(span.status(), Status::Error);
        assert_eq!(span.span_id().to_string(), "b7ad6b7169203331");
        assert_eq!(span.links()[0].span_id, SpanId::from_u64(2));
    }

    #[test]
    fn a_trace_spread_over_json_lines_is_one_trace() {
        // The Collector's file exporter writes one batch per line: a trace's spans land on
        // several lines, interleaved with other traces.
        let span = |trace: &str, id: &str, parent: &str| {
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{trace}","spanId":"{id}","parentSpanId":"{parent}","startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#
            )
        };
        let input = [
            span("01", "03", "02"),
            span("05", "06", ""),
            span("01", "02", ""),
        ]
        .join("\n");
        let traces = read_all(&input, None).unwrap();
        let shape: Vec<(String, usize)> = traces
            .iter()
            .map(|t| (t.trace_id.to_string(), t.spans.len()))
            .collect();
        assert_eq!(
            shape,
            [
                ("0000000000000001".to_string(), 2),
                ("0000000000000005".to_string(), 1)
            ]
        );
    }

    #[test]
    fn held_traces_past_the_limit_go_least_recently_extended_first() {
        let t = |id: u128, spans: u64| {
            let trace_id = TraceId::from_u128(id);
            let spans = (0..spans)
                .map(|s| Span::new(trace_id.clone(), SpanId::from_u64(s + 1), 0, 1))
                .collect();
            Trace::new(trace_id, spans)
        };
        let mut held = Held::new(4);
        let mut split = 0;
        assert!(held.absorb(vec![t(1, 3)], &mut split).is_empty());
        let released = held.absorb(vec![t(2, 3)], &mut split);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].trace_id, TraceId::from_u128(1));
        // Trace 1 goes on after it was handed over: a second part, counted.
        assert!(held.absorb(vec![t(1, 1)], &mut split).is_empty());
        assert_eq!(split, 1);
        let rest: Vec<_> = held.drain().into_iter().map(|t| t.trace_id).collect();
        assert_eq!(rest, [TraceId::from_u128(2), TraceId::from_u128(1)]);
        assert_eq!(held.spans, 0);
    }

    #[test]
    fn a_named_format_must_match() {
        let err = read_all("[]", Some(Format::OtlpJson)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongFormat {
                    found: "zipkin-json",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn objects_without_trace_data_are_refused() {
        let err = read_all(r#"{"hello": 1}"#, None).unwrap_err().to_string();
        assert!(err.contains("resourceSpans"), "{err}");
        assert!(err.starts_with("in.json:1:"), "{err}");
    }

    #[test]
    fn sink_errors_stop_reading() {
        let doc = r#"{"data":[{"traceID":"1","spans":[]},{"traceID":"2","spans":[]}]}"#;
        let mut seen = 0;
        let err = read_traces(doc.as_bytes(), Path::new("x"), None, |_| {
            seen += 1;
            Err(io::Error::other("full"))
        })
        .unwrap_err();
        assert!(matches!(err, Error::Sink { .. }));
        assert_eq!(seen, 1);
    }

    #[test]
    fn jaeger_references_define_parent_and_relation() {
        let doc = r#"{"traceID":"t","processes":{"p1":{"serviceName":"svc","tags":[{"key":"hostname","value":"h1"}]}},
          "spans":[{"spanID":"a","startTime":10,"duration":-5,"processID":"p1"},
                   {"spanID":"b","startTime":10,"duration":5,"processID":"p1",
                    "references":[{"refType":"FOLLOWS_FROM","spanID":"a"},{"refType":"CHILD_OF","spanID":"z"}],
                    "tags":[{"key":"span.kind","value":"producer"},{"key":"error","value":true}]}]}"#;
        let traces = read_all(doc, Some(Format::JaegerJson)).unwrap();
        let spans = &traces[0].spans;
        assert_eq!(spans[0].start_ns(), 10_000);
        assert_eq!(spans[0].end_ns(), 5_000);
        assert_eq!(spans[0].service(), "svc");
        assert_eq!(spans[0].host(), Some("h1"));
        assert_eq!(spans[1].relation(), ParentRelation::FollowsFrom);
        assert_eq!(spans[1].links().len(), 1);
        assert_eq!(spans[1].kind(), SpanKind::Producer);
        assert_eq!(spans[1].status(), Status::Error);
    }
}

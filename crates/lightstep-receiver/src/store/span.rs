//! The span types the store hands out ([`ReceivedSpan`], [`Trace`], their ids) and what keeping
//! one costs: a span is held as its protobuf bytes with a shared [`Origin`] (resource, scope and
//! request), and both are charged to the store's byte budget.

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

use super::RequestInfo;

/// A 16-byte trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for TraceId {
    /// Lowercase hex, as W3C Trace Context and OTLP/JSON write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    /// Lowercase hex, as W3C Trace Context and OTLP/JSON write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// The resource, instrumentation scope and request a span was sent under: shared by the spans
/// of one `ScopeSpans`.
pub(super) struct Origin {
    /// Shared by every scope of one `ResourceSpans`: a large resource with many scopes must not
    /// be copied once per scope (a small request could otherwise hold many times its size).
    pub(super) resource: Arc<Resource>,
    pub(super) resource_schema_url: String,
    pub(super) scope: InstrumentationScope,
    pub(super) scope_schema_url: String,
    pub(super) request: Arc<RequestInfo>,
    /// What the store charges against its byte budget for keeping this origin, while it holds
    /// at least one of its spans: the encoded resource and scope, the request's headers and
    /// fixed overheads.
    pub(super) charge: usize,
    /// How many of its spans the store holds; changed under the store's lock only.
    pub(super) stored: AtomicUsize,
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin")
            .field("resource", &self.resource)
            .field("resource_schema_url", &self.resource_schema_url)
            .field("scope", &self.scope)
            .field("scope_schema_url", &self.scope_schema_url)
            .finish_non_exhaustive()
    }
}

/// One stored span with the resource, scope and request it arrived with.
///
/// The store keeps the span as the protobuf bytes it arrived in (checked at arrival to decode)
/// and decodes it on the first call to [`span`](Self::span) or anything that reads its fields;
/// ids are kept decoded. Cloning is cheap: the bytes, resource, scope and request are shared
/// (a decoded span is copied).
#[derive(Clone)]
pub struct ReceivedSpan {
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    pub(super) parent_span_id: Option<SpanId>,
    /// Shared by clones; an `Arc<[u8]>` is half the size of `Bytes` and clones without
    /// allocating.
    pub(super) encoded: Arc<[u8]>,
    pub(super) decoded: OnceLock<Box<Span>>,
    pub(super) origin: Arc<Origin>,
}

/// What the store charges per span beyond its encoded bytes: the `ReceivedSpan` itself, its
/// slot in the queue, the reference counts beside its bytes and the allocator's overhead.
pub(super) const SPAN_OVERHEAD: usize = std::mem::size_of::<ReceivedSpan>() + 32;

/// What the store charges per origin beyond its encoded resource and scope.
pub(super) const ORIGIN_OVERHEAD: usize =
    std::mem::size_of::<Origin>() + std::mem::size_of::<Resource>() + 64;

impl fmt::Debug for ReceivedSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Decoded for printing only: a span printed from inside the store stays encoded.
        let decoded;
        let span = match self.decoded.get() {
            Some(span) => &**span,
            None => {
                decoded = Span::decode(&self.encoded[..]).unwrap_or_default();
                &decoded
            }
        };
        f.debug_struct("ReceivedSpan")
            .field("span", span)
            .field("origin", &self.origin)
            .field("request", &self.origin.request)
            .finish()
    }
}

impl ReceivedSpan {
    /// The span exactly as it was sent, decoded on first use.
    pub fn span(&self) -> &Span {
        self.decoded.get_or_init(|| {
            // The bytes were checked to decode when they arrived; should that ever be wrong,
            // the ids still tell which span this was.
            Box::new(Span::decode(&self.encoded[..]).unwrap_or_else(|_| {
                Span {
                    trace_id: self.trace_id.0.to_vec(),
                    span_id: self.span_id.0.to_vec(),
                    parent_span_id: self
                        .parent_span_id
                        .map(|id| id.0.to_vec())
                        .unwrap_or_default(),
                    ..Span::default()
                }
            }))
        })
    }

    /// The span's protobuf encoding, as it arrived (a `Span` message).
    pub fn encoded_span(&self) -> &[u8] {
        &self.encoded
    }

    /// The span's name.
    pub fn name(&self) -> &str {
        &self.span().name
    }

    /// The span's trace id. The store only keeps spans whose ids are valid.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span's id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The parent span's id, or `None` for a root span.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent_span_id
    }

    /// The span attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&any_value::Value> {
        find_attribute(&self.span().attributes, key)
    }

    /// The span attribute `key` as a string, if it is one.
    pub fn str_attribute(&self, key: &str) -> Option<&str> {
        match self.attribute(key) {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// The resource the span was sent under (empty if the client sent none).
    pub fn resource(&self) -> &Resource {
        &self.origin.resource
    }

    /// The resource attribute `key`, if present.
    pub fn resource_attribute(&self, key: &str) -> Option<&any_value::Value> {
        find_attribute(&self.origin.resource.attributes, key)
    }

    /// The resource's `service.name`, if it is a string.
    pub fn service_name(&self) -> Option<&str> {
        match self.resource_attribute("service.name") {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// The instrumentation scope the span was sent under (empty if the client sent none).
    pub fn scope(&self) -> &InstrumentationScope {
        &self.origin.scope
    }

    /// The request the span arrived in: protocol, headers, peer address.
    pub fn request(&self) -> &RequestInfo {
        &self.origin.request
    }
}

fn find_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

/// The spans of one trace, in the order they arrived.
#[derive(Clone, Debug)]
pub struct Trace {
    pub(super) trace_id: TraceId,
    pub(super) spans: Vec<ReceivedSpan>,
}

impl Trace {
    /// The trace's id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The trace's spans, in arrival order.
    pub fn spans(&self) -> &[ReceivedSpan] {
        &self.spans
    }

    /// Consumes the trace, returning its spans in arrival order.
    pub fn into_spans(self) -> Vec<ReceivedSpan> {
        self.spans
    }

    /// The spans without a parent span id (a complete trace has exactly one).
    pub fn roots(&self) -> impl Iterator<Item = &ReceivedSpan> {
        self.spans.iter().filter(|s| s.parent_span_id().is_none())
    }

    /// The trace as one OTLP request: spans regrouped under their resource and scope, ready to
    /// re-send or to write as OTLP/JSON (`serde_json::to_string(&trace.to_otlp())` gives the
    /// `{"resourceSpans":[...]}` form).
    pub fn to_otlp(&self) -> ExportTraceServiceRequest {
        let mut out: Vec<ResourceSpans> = Vec::new();
        for s in &self.spans {
            let o = &s.origin;
            let rs_index = match out.iter().position(|rs| {
                rs.resource.as_ref() == Some(&*o.resource) && rs.schema_url == o.resource_schema_url
            }) {
                Some(i) => i,
                None => {
                    out.push(ResourceSpans {
                        resource: Some((*o.resource).clone()),
                        scope_spans: Vec::new(),
                        schema_url: o.resource_schema_url.clone(),
                    });
                    out.len() - 1
                }
            };
            let rs = &mut out[rs_index];
            let ss_index = match rs.scope_spans.iter().position(|ss| {
                ss.scope.as_ref() == Some(&o.scope) && ss.schema_url == o.scope_schema_url
            }) {
                Some(i) => i,
                None => {
                    rs.scope_spans.push(ScopeSpans {
                        scope: Some(o.scope.clone()),
                        spans: Vec::new(),
                        schema_url: o.scope_schema_url.clone(),
                    });
                    rs.scope_spans.len() - 1
                }
            };
            rs.scope_spans[ss_index].spans.push(s.span().clone());
        }
        ExportTraceServiceRequest {
            resource_spans: out,
        }
    }

    /// The trace as one OTLP/JSON object, `{"resourceSpans":[...]}`, on one line: the form
    /// OTLP JSON-lines files (and `lightstep dev --out`) use.
    pub fn to_otlp_json(&self) -> String {
        // Serializing prost structs to a string has no failure mode: no maps with non-string
        // keys, no I/O.
        serde_json::to_string(&self.to_otlp()).unwrap_or_default()
    }

    /// The trace as OTLP protobuf bytes. `ExportTraceServiceRequest` and `TracesData` share
    /// their encoding, so these bytes are also an OTLP protobuf trace file.
    pub fn to_otlp_protobuf(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.to_otlp())
    }
}

/// The memory decoded attributes hold beyond their encoding: two bytes on the wire can be a
/// whole `KeyValue` (or `AnyValue`) once decoded, so a resource or scope charged its encoding
/// alone could hold tens of times the store's byte budget.
pub(super) fn decoded_attributes_size(attributes: &Vec<KeyValue>) -> usize {
    attributes.capacity() * std::mem::size_of::<KeyValue>()
        + attributes
            .iter()
            .map(|kv| kv.key.capacity() + kv.value.as_ref().map_or(0, decoded_value_size))
            .sum::<usize>()
}

fn decoded_value_size(value: &AnyValue) -> usize {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.capacity(),
        Some(any_value::Value::BytesValue(b)) => b.capacity(),
        Some(any_value::Value::ArrayValue(array)) => {
            array.values.capacity() * std::mem::size_of::<AnyValue>()
                + array.values.iter().map(decoded_value_size).sum::<usize>()
        }
        Some(any_value::Value::KvlistValue(list)) => decoded_attributes_size(&list.values),
        _ => 0,
    }
}

impl ReceivedSpan {
    /// This span's share of the store's byte budget.
    pub(super) fn charge(&self) -> usize {
        SPAN_OVERHEAD + self.encoded.len()
    }
}

//! `ExportTraceServiceRequest` in protobuf, written field by field.
//!
//! A nested message's length comes before its content, and is only known once the content is
//! written: [`message`] reserves a guess of the length's size, writes the content, then moves it
//! by a byte or two when the guess was wrong (`lightstep_wire::encode`'s `begin_len` and
//! `end_len`). Field numbers are `lightstep_wire::schema`'s constants. The output is canonical protobuf (minimal
//! varints, default scalars omitted, fields in tag order, as prost writes them): the same bytes as prost's encoding
//! of what opentelemetry-proto's conversion builds.

use opentelemetry::trace::SpanId;
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use lightstep_wire::WireType;
use lightstep_wire::encode::{begin_len, end_len, put_key, put_varint};
use lightstep_wire::schema::{
    any_value as av, array_value, event, key_value, link, request, resource, resource_spans, scope,
    scope_spans, span as sp, status,
};

use super::{
    ScopeGroups, kind_number, nanos, span_flags, status_parts, trace_state_len, write_trace_state,
};

fn bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    put_key(out, field, WireType::LengthDelimited);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A string field, omitted when empty (proto3 default).
fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        bytes(out, field, s.as_bytes());
    }
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(out, field, WireType::Varint);
        put_varint(out, v);
    }
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(out, field, WireType::SixtyFourBit);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn fixed32(out: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        put_key(out, field, WireType::ThirtyTwoBit);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A nested message (always written, even when empty: its presence is information).
/// `guess` is the expected size in bytes of the length prefix.
fn message(out: &mut Vec<u8>, field: u32, guess: usize, body: impl FnOnce(&mut Vec<u8>)) {
    put_key(out, field, WireType::LengthDelimited);
    let at = begin_len(out, guess);
    body(out);
    end_len(out, at, guess);
}

fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => bytes(out, av::STRING_VALUE, s.as_str().as_bytes()),
        Value::Bool(b) => {
            put_key(out, av::BOOL_VALUE, WireType::Varint);
            out.push(u8::from(*b));
        }
        Value::I64(i) => {
            put_key(out, av::INT_VALUE, WireType::Varint);
            put_varint(out, *i as u64);
        }
        Value::F64(f) => {
            put_key(out, av::DOUBLE_VALUE, WireType::SixtyFourBit);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Array(array) => message(out, av::ARRAY_VALUE, 1, |out| match array {
            Array::Bool(items) => {
                for b in items {
                    message(out, array_value::VALUES, 1, |out| {
                        any_value(out, &Value::Bool(*b));
                    });
                }
            }
            Array::I64(items) => {
                for i in items {
                    message(out, array_value::VALUES, 1, |out| {
                        any_value(out, &Value::I64(*i));
                    });
                }
            }
            Array::F64(items) => {
                for f in items {
                    message(out, array_value::VALUES, 1, |out| {
                        any_value(out, &Value::F64(*f));
                    });
                }
            }
            Array::String(items) => {
                for s in items {
                    message(out, array_value::VALUES, 1, |out| {
                        bytes(out, av::STRING_VALUE, s.as_str().as_bytes());
                    });
                }
            }
            // A kind of array this version does not know: an empty array rather than a
            // panic (opentelemetry-proto would panic here).
            _ => {}
        }),
        // A kind of value this version does not know: an empty `AnyValue`.
        _ => {}
    }
}

fn attributes<'a>(out: &mut Vec<u8>, field: u32, kvs: impl IntoIterator<Item = &'a KeyValue>) {
    for kv in kvs {
        message(out, field, 1, |out| {
            string(out, key_value::KEY, kv.key.as_str());
            message(out, key_value::VALUE, 1, |out| any_value(out, &kv.value));
        });
    }
}

fn trace_state(out: &mut Vec<u8>, field: u32, state: &opentelemetry::trace::TraceState) {
    let len = trace_state_len(state);
    if len > 0 {
        put_key(out, field, WireType::LengthDelimited);
        put_varint(out, len as u64);
        write_trace_state(out, state);
    }
}

fn span(out: &mut Vec<u8>, span: &SpanData) {
    let cx = &span.span_context;
    bytes(out, sp::TRACE_ID, &cx.trace_id().to_bytes());
    bytes(out, sp::SPAN_ID, &cx.span_id().to_bytes());
    trace_state(out, sp::TRACE_STATE, cx.trace_state());
    if span.parent_span_id != SpanId::INVALID {
        bytes(out, sp::PARENT_SPAN_ID, &span.parent_span_id.to_bytes());
    }
    string(out, sp::NAME, &span.name);
    uint(out, sp::KIND, kind_number(&span.span_kind));
    fixed64(out, sp::START_TIME_UNIX_NANO, nanos(span.start_time));
    fixed64(out, sp::END_TIME_UNIX_NANO, nanos(span.end_time));
    attributes(out, sp::ATTRIBUTES, &span.attributes);
    uint(
        out,
        sp::DROPPED_ATTRIBUTES_COUNT,
        u64::from(span.dropped_attributes_count),
    );
    for e in span.events.iter() {
        message(out, sp::EVENTS, 1, |out| {
            fixed64(out, event::TIME_UNIX_NANO, nanos(e.timestamp));
            string(out, event::NAME, &e.name);
            attributes(out, event::ATTRIBUTES, &e.attributes);
            uint(
                out,
                event::DROPPED_ATTRIBUTES_COUNT,
                u64::from(e.dropped_attributes_count),
            );
        });
    }
    uint(
        out,
        sp::DROPPED_EVENTS_COUNT,
        u64::from(span.events.dropped_count),
    );
    for l in span.links.iter() {
        message(out, sp::LINKS, 1, |out| {
            let cx = &l.span_context;
            bytes(out, link::TRACE_ID, &cx.trace_id().to_bytes());
            bytes(out, link::SPAN_ID, &cx.span_id().to_bytes());
            trace_state(out, link::TRACE_STATE, cx.trace_state());
            attributes(out, link::ATTRIBUTES, &l.attributes);
            uint(
                out,
                link::DROPPED_ATTRIBUTES_COUNT,
                u64::from(l.dropped_attributes_count),
            );
            let flags = span_flags(cx.trace_flags().to_u8(), cx.is_remote());
            fixed32(out, link::FLAGS, flags);
        });
    }
    uint(
        out,
        sp::DROPPED_LINKS_COUNT,
        u64::from(span.links.dropped_count),
    );
    let (code, status_message) = status_parts(&span.status);
    message(out, sp::STATUS, 1, |out| {
        string(out, status::MESSAGE, status_message);
        uint(out, status::CODE, code);
    });
    fixed32(
        out,
        sp::FLAGS,
        span_flags(cx.trace_flags().to_u8(), span.parent_span_is_remote),
    );
}

/// Encodes batches for one resource. The resource's part of every request is encoded once.
#[derive(Debug, Clone)]
pub(crate) struct ProtoEncoder {
    /// `ResourceSpans.resource`, ready to copy.
    resource: Vec<u8>,
    /// `ResourceSpans.schema_url`.
    schema_url: String,
}

impl ProtoEncoder {
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut out = Vec::new();
        message(&mut out, resource_spans::RESOURCE, 2, |out| {
            for (k, v) in resource.iter() {
                message(out, resource::ATTRIBUTES, 1, |out| {
                    string(out, key_value::KEY, k.as_str());
                    message(out, key_value::VALUE, 1, |out| any_value(out, v));
                });
            }
        });
        Self {
            resource: out,
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }

    /// Appends the `ExportTraceServiceRequest` for `spans` to `out`.
    pub(crate) fn encode(&self, spans: &[SpanData], out: &mut Vec<u8>) {
        let groups = ScopeGroups::new(spans);
        message(out, request::RESOURCE_SPANS, 3, |out| {
            out.extend_from_slice(&self.resource);
            for (g, s) in groups.scopes.iter().enumerate() {
                message(out, resource_spans::SCOPE_SPANS, 3, |out| {
                    message(out, scope_spans::SCOPE, 1, |out| {
                        string(out, scope::NAME, s.name());
                        string(out, scope::VERSION, s.version().unwrap_or_default());
                        attributes(out, scope::ATTRIBUTES, s.attributes());
                    });
                    for i in groups.spans(g) {
                        message(out, scope_spans::SPANS, 2, |out| span(out, &spans[i]));
                    }
                    string(
                        out,
                        scope_spans::SCHEMA_URL,
                        s.schema_url().unwrap_or_default(),
                    );
                });
            }
            string(out, resource_spans::SCHEMA_URL, &self.schema_url);
        });
    }
}

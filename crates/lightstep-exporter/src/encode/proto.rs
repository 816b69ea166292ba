//! `ExportTraceServiceRequest` in protobuf, written field by field.
//!
//! A nested message's length comes before its content, and is only known once the content is
//! written: [`message`] reserves a guess of the length's size, writes the content, then moves it
//! by a byte or two when the guess was wrong. The output is canonical protobuf (minimal
//! varints, default scalars omitted, fields in tag order, as prost writes them): the same bytes as prost's encoding
//! of what opentelemetry-proto's conversion builds.

use opentelemetry::trace::SpanId;
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use super::{
    ScopeGroups, kind_number, nanos, span_flags, status_parts, trace_state_len, write_trace_state,
};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from((field << 3) | wire_type));
}

fn bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(out, field, LEN);
    varint(out, data.len() as u64);
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
        key(out, field, VARINT);
        varint(out, v);
    }
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, FIXED64);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn fixed32(out: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        key(out, field, FIXED32);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A nested message (always written, even when empty: its presence is information).
/// `guess` is the expected size in bytes of the length prefix.
fn message(out: &mut Vec<u8>, field: u32, guess: usize, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, field, LEN);
    let start = out.len();
    out.resize(start + guess, 0);
    let body_start = out.len();
    body(out);
    let len = out.len() - body_start;
    let need = varint_len(len as u64);
    if need != guess {
        if need > guess {
            out.resize(out.len() + need - guess, 0);
        }
        out.copy_within(body_start..body_start + len, start + need);
        out.truncate(start + need + len);
    }
    let mut v = len as u64;
    for slot in &mut out[start..start + need] {
        *slot = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    out[start + need - 1] &= 0x7f;
}

fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => bytes(out, 1, s.as_str().as_bytes()),
        Value::Bool(b) => {
            key(out, 2, VARINT);
            out.push(u8::from(*b));
        }
        Value::I64(i) => {
            key(out, 3, VARINT);
            varint(out, *i as u64);
        }
        Value::F64(f) => {
            key(out, 4, FIXED64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Array(array) => message(out, 5, 1, |out| match array {
            Array::Bool(items) => {
                for b in items {
                    message(out, 1, 1, |out| any_value(out, &Value::Bool(*b)));
                }
            }
            Array::I64(items) => {
                for i in items {
                    message(out, 1, 1, |out| any_value(out, &Value::I64(*i)));
                }
            }
            Array::F64(items) => {
                for f in items {
                    message(out, 1, 1, |out| any_value(out, &Value::F64(*f)));
                }
            }
            Array::String(items) => {
                for s in items {
                    message(out, 1, 1, |out| bytes(out, 1, s.as_str().as_bytes()));
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
            string(out, 1, kv.key.as_str());
            message(out, 2, 1, |out| any_value(out, &kv.value));
        });
    }
}

fn trace_state(out: &mut Vec<u8>, field: u32, state: &opentelemetry::trace::TraceState) {
    let len = trace_state_len(state);
    if len > 0 {
        key(out, field, LEN);
        varint(out, len as u64);
        write_trace_state(out, state);
    }
}

fn span(out: &mut Vec<u8>, span: &SpanData) {
    let cx = &span.span_context;
    bytes(out, 1, &cx.trace_id().to_bytes());
    bytes(out, 2, &cx.span_id().to_bytes());
    trace_state(out, 3, cx.trace_state());
    if span.parent_span_id != SpanId::INVALID {
        bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    string(out, 5, &span.name);
    uint(out, 6, kind_number(&span.span_kind));
    fixed64(out, 7, nanos(span.start_time));
    fixed64(out, 8, nanos(span.end_time));
    attributes(out, 9, &span.attributes);
    uint(out, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        message(out, 11, 1, |out| {
            fixed64(out, 1, nanos(event.timestamp));
            string(out, 2, &event.name);
            attributes(out, 3, &event.attributes);
            uint(out, 4, u64::from(event.dropped_attributes_count));
        });
    }
    uint(out, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        message(out, 13, 1, |out| {
            let cx = &link.span_context;
            bytes(out, 1, &cx.trace_id().to_bytes());
            bytes(out, 2, &cx.span_id().to_bytes());
            trace_state(out, 3, cx.trace_state());
            attributes(out, 4, &link.attributes);
            uint(out, 5, u64::from(link.dropped_attributes_count));
            fixed32(out, 6, span_flags(cx.trace_flags().to_u8(), cx.is_remote()));
        });
    }
    uint(out, 14, u64::from(span.links.dropped_count));
    let (code, status_message) = status_parts(&span.status);
    message(out, 15, 1, |out| {
        string(out, 2, status_message);
        uint(out, 3, code);
    });
    fixed32(
        out,
        16,
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
        message(&mut out, 1, 2, |out| {
            for (k, v) in resource.iter() {
                message(out, 1, 1, |out| {
                    string(out, 1, k.as_str());
                    message(out, 2, 1, |out| any_value(out, v));
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
        message(out, 1, 3, |out| {
            out.extend_from_slice(&self.resource);
            for (g, scope) in groups.scopes.iter().enumerate() {
                message(out, 2, 3, |out| {
                    message(out, 1, 1, |out| {
                        string(out, 1, scope.name());
                        string(out, 2, scope.version().unwrap_or_default());
                        attributes(out, 3, scope.attributes());
                    });
                    for i in groups.spans(g) {
                        message(out, 2, 2, |out| span(out, &spans[i]));
                    }
                    string(out, 3, scope.schema_url().unwrap_or_default());
                });
            }
            string(out, 3, &self.schema_url);
        });
    }
}

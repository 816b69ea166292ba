//! `ExportTraceServiceRequest` in OTLP/JSON, written field by field.
//!
//! The OTLP/JSON rules (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>):
//! camelCase field names, trace and span ids in lowercase hex, enums as numbers, 64-bit
//! integers (`intValue`, timestamps) as decimal strings, and the non-finite doubles as the
//! strings `"NaN"`, `"Infinity"` and `"-Infinity"` (serde's derive, which opentelemetry-otlp
//! uses, writes them as `null`). Default values are omitted, as protobuf's JSON mapping allows.
//! Field names are `lightstep_wire::schema`'s.

use std::io::Write as _;

use opentelemetry::trace::SpanId;
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use lightstep_wire::schema::{
    any_value::json as av, array_value::json as array_value, event::json as event,
    key_value::json as key_value, link::json as link, request::json as request,
    resource::json as resource, resource_spans::json as resource_spans, scope::json as scope,
    scope_spans::json as scope_spans, span::json as sp, status::json as status,
};

use super::{ScopeGroups, kind_number, nanos, span_flags, status_parts};

fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail, and serde_json escapes exactly as JSON requires.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    out.push(b'"');
}

fn number(out: &mut Vec<u8>, v: u64) {
    let _ = write!(out, "{v}");
}

fn quoted_number(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    let _ = write!(out, "\"{v}\"");
}

fn double(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
    } else {
        let _ = serde_json::to_writer(&mut *out, &f);
    }
}

/// Writes `"name":` preceded by a comma unless it is the object's first field.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    fn field(&mut self, name: &[u8]) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn string(&mut self, name: &[u8], value: &str) {
        if !value.is_empty() {
            string(self.field(name), value);
        }
    }

    fn number(&mut self, name: &[u8], value: u64) {
        if value != 0 {
            number(self.field(name), value);
        }
    }

    fn nanos(&mut self, name: &[u8], value: u64) {
        if value != 0 {
            quoted_number(self.field(name), value);
        }
    }

    /// An array field, omitted when empty.
    fn array<T>(
        &mut self,
        name: &[u8],
        items: impl IntoIterator<Item = T>,
        each: impl FnMut(&mut Vec<u8>, T),
    ) {
        let mut items = items.into_iter().peekable();
        if items.peek().is_some() {
            self.array_always(name, items, each);
        }
    }

    /// An array field, written even when empty.
    fn array_always<T>(
        &mut self,
        name: &[u8],
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Vec<u8>, T),
    ) {
        let out = self.field(name);
        out.push(b'[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            each(out, item);
        }
        out.push(b']');
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn any_value(out: &mut Vec<u8>, value: &Value) {
    let mut o = Object::open(out);
    match value {
        Value::String(s) => string(o.field(av::STRING_VALUE), s.as_str()),
        Value::Bool(b) => {
            o.field(av::BOOL_VALUE)
                .extend_from_slice(if *b { b"true" } else { b"false" })
        }
        Value::I64(i) => quoted_number(o.field(av::INT_VALUE), i),
        Value::F64(f) => double(o.field(av::DOUBLE_VALUE), *f),
        Value::Array(array) => {
            // `values` even when empty, and `key` even when empty below: optional in the
            // protobuf JSON mapping, but some OTLP/JSON readers (opentelemetry-proto's serde
            // among them) require them.
            let out = o.field(av::ARRAY_VALUE);
            let mut a = Object::open(out);
            match array {
                Array::Bool(items) => a.array_always(array_value::VALUES, items, |out, b| {
                    any_value(out, &Value::Bool(*b))
                }),
                Array::I64(items) => a.array_always(array_value::VALUES, items, |out, i| {
                    any_value(out, &Value::I64(*i))
                }),
                Array::F64(items) => a.array_always(array_value::VALUES, items, |out, f| {
                    any_value(out, &Value::F64(*f))
                }),
                Array::String(items) => a.array_always(array_value::VALUES, items, |out, s| {
                    let mut v = Object::open(out);
                    string(v.field(av::STRING_VALUE), s.as_str());
                    v.close();
                }),
                // A kind of array this version does not know: an empty array.
                _ => a.array_always(array_value::VALUES, [(); 0], |_, ()| {}),
            }
            a.close();
        }
        // A kind of value this version does not know: an empty value.
        _ => {}
    }
    o.close();
}

fn attributes<'a>(o: &mut Object<'_>, name: &[u8], kvs: impl IntoIterator<Item = &'a KeyValue>) {
    o.array(name, kvs, |out, kv| {
        let mut a = Object::open(out);
        string(a.field(key_value::KEY), kv.key.as_str());
        any_value(a.field(key_value::VALUE), &kv.value);
        a.close();
    });
}

fn trace_state(o: &mut Object<'_>, name: &[u8], state: &opentelemetry::trace::TraceState) {
    if super::trace_state_len(state) > 0 {
        string(o.field(name), &state.header());
    }
}

fn span(out: &mut Vec<u8>, span: &SpanData) {
    let cx = &span.span_context;
    let mut o = Object::open(out);
    hex(o.field(sp::TRACE_ID), &cx.trace_id().to_bytes());
    hex(o.field(sp::SPAN_ID), &cx.span_id().to_bytes());
    trace_state(&mut o, sp::TRACE_STATE, cx.trace_state());
    if span.parent_span_id != SpanId::INVALID {
        hex(o.field(sp::PARENT_SPAN_ID), &span.parent_span_id.to_bytes());
    }
    o.number(
        sp::FLAGS,
        u64::from(span_flags(
            cx.trace_flags().to_u8(),
            span.parent_span_is_remote,
        )),
    );
    o.string(sp::NAME, &span.name);
    o.number(sp::KIND, kind_number(&span.span_kind));
    o.nanos(sp::START_TIME_UNIX_NANO, nanos(span.start_time));
    o.nanos(sp::END_TIME_UNIX_NANO, nanos(span.end_time));
    attributes(&mut o, sp::ATTRIBUTES, &span.attributes);
    o.number(
        sp::DROPPED_ATTRIBUTES_COUNT,
        u64::from(span.dropped_attributes_count),
    );
    o.array(sp::EVENTS, span.events.iter(), |out, event| {
        let mut e = Object::open(out);
        e.nanos(event::TIME_UNIX_NANO, nanos(event.timestamp));
        e.string(event::NAME, &event.name);
        attributes(&mut e, event::ATTRIBUTES, &event.attributes);
        e.number(
            event::DROPPED_ATTRIBUTES_COUNT,
            u64::from(event.dropped_attributes_count),
        );
        e.close();
    });
    o.number(
        sp::DROPPED_EVENTS_COUNT,
        u64::from(span.events.dropped_count),
    );
    o.array(sp::LINKS, span.links.iter(), |out, link| {
        let cx = &link.span_context;
        let mut l = Object::open(out);
        hex(l.field(link::TRACE_ID), &cx.trace_id().to_bytes());
        hex(l.field(link::SPAN_ID), &cx.span_id().to_bytes());
        trace_state(&mut l, link::TRACE_STATE, cx.trace_state());
        attributes(&mut l, link::ATTRIBUTES, &link.attributes);
        l.number(
            link::DROPPED_ATTRIBUTES_COUNT,
            u64::from(link.dropped_attributes_count),
        );
        l.number(
            link::FLAGS,
            u64::from(span_flags(cx.trace_flags().to_u8(), cx.is_remote())),
        );
        l.close();
    });
    o.number(sp::DROPPED_LINKS_COUNT, u64::from(span.links.dropped_count));
    let (code, message) = status_parts(&span.status);
    let mut s = Object::open(o.field(sp::STATUS));
    s.string(status::MESSAGE, message);
    s.number(status::CODE, code);
    s.close();
    o.close();
}

/// Encodes batches for one resource as OTLP/JSON.
#[derive(Debug, Clone)]
pub(crate) struct JsonEncoder {
    /// `"resource":{...}`, ready to copy.
    resource: Vec<u8>,
    schema_url: String,
}

impl JsonEncoder {
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut out = Vec::new();
        let mut o = Object::open(&mut out);
        o.array(resource::ATTRIBUTES, resource.iter(), |out, (k, v)| {
            let mut a = Object::open(out);
            string(a.field(key_value::KEY), k.as_str());
            any_value(a.field(key_value::VALUE), v);
            a.close();
        });
        o.close();
        Self {
            resource: out,
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }

    /// Appends the `ExportTraceServiceRequest` for `spans` to `out`.
    pub(crate) fn encode(&self, spans: &[SpanData], out: &mut Vec<u8>) {
        let groups = ScopeGroups::new(spans);
        let mut request = Object::open(out);
        request.array(request::RESOURCE_SPANS, [()], |out, ()| {
            let mut rs = Object::open(out);
            rs.field(resource_spans::RESOURCE)
                .extend_from_slice(&self.resource);
            rs.array(
                resource_spans::SCOPE_SPANS,
                groups.scopes.iter().enumerate(),
                |out, (g, scope)| {
                    let mut ss = Object::open(out);
                    let mut sc = Object::open(ss.field(scope_spans::SCOPE));
                    sc.string(scope::NAME, scope.name());
                    sc.string(scope::VERSION, scope.version().unwrap_or_default());
                    attributes(&mut sc, scope::ATTRIBUTES, scope.attributes());
                    sc.close();
                    ss.array(scope_spans::SPANS, groups.spans(g), |out, i| {
                        span(out, &spans[i])
                    });
                    ss.string(
                        scope_spans::SCHEMA_URL,
                        scope.schema_url().unwrap_or_default(),
                    );
                    ss.close();
                },
            );
            rs.string(resource_spans::SCHEMA_URL, &self.schema_url);
            rs.close();
        });
        request.close();
    }
}

//! OTLP protobuf, decoded one `ResourceSpans` at a time.
//!
//! `TracesData` and `ExportTraceServiceRequest` both hold `repeated ResourceSpans
//! resource_spans = 1`, so they are the same on the wire. The top level is walked by hand so
//! that only one `ResourceSpans` is held in raw form at once, and so that an error can name the
//! byte offset of the field that failed. The messages below declare only the fields the
//! analysis uses; prost skips the rest.

use std::io::{self, BufRead, Read};
use std::path::Path;

use super::{Grouper, Interner, ReadStats};
use crate::Error;
use crate::model::{Link, Span, SpanId, SpanKind, Status, Trace, TraceId};

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
    /// The deprecated `instrumentation_library_spans`, same shape as `scope_spans`.
    #[prost(message, repeated, tag = "1000")]
    instrumentation_library_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Resource {
    #[prost(message, repeated, tag = "1")]
    attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct KeyValue {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AnyValue {
    #[prost(string, optional, tag = "1")]
    string_value: Option<String>,
    #[prost(int64, optional, tag = "3")]
    int_value: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<ProtoSpan>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoSpan {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    span_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    name: String,
    #[prost(int32, tag = "6")]
    kind: i32,
    #[prost(fixed64, tag = "7")]
    start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    end_time_unix_nano: u64,
    /// Read for the peer's name only (see `PEER_KEYS`).
    #[prost(message, repeated, tag = "9")]
    attributes: Vec<KeyValue>,
    #[prost(message, repeated, tag = "13")]
    links: Vec<ProtoLink>,
    #[prost(message, optional, tag = "15")]
    status: Option<ProtoStatus>,
    #[prost(fixed32, tag = "16")]
    flags: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoLink {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    span_id: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoStatus {
    #[prost(int32, tag = "3")]
    code: i32,
}

/// Whether a first byte can start an OTLP protobuf message: field 1, length-delimited.
pub(super) fn looks_like(first: u8) -> bool {
    first == 0x0a
}

/// Largest `ResourceSpans` accepted, so that a corrupt length cannot ask for all memory.
const MAX_MESSAGE: u64 = 1 << 31;

struct Cursor<R> {
    input: R,
    offset: u64,
}

impl<R: BufRead> Cursor<R> {
    fn byte(&mut self) -> io::Result<Option<u8>> {
        let buf = self.input.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.input.consume(1);
        self.offset += 1;
        Ok(Some(b))
    }

    /// A varint; `Ok(None)` at a clean end of input before its first byte.
    fn varint(&mut self) -> Result<Option<u64>, String> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(b) = self.byte().map_err(|e| e.to_string())? else {
                return if shift == 0 {
                    Ok(None)
                } else {
                    Err("the input ends inside a varint".into())
                };
            };
            if shift == 63 && b > 1 {
                return Err("varint longer than 64 bits".into());
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn bytes(&mut self, len: u64) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let read = (&mut self.input)
            .take(len)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        self.offset += read as u64;
        if (read as u64) < len {
            return Err(format!(
                "expected {len} bytes of message, the input ends after {read}"
            ));
        }
        Ok(out)
    }

    fn skip(&mut self, len: u64) -> Result<(), String> {
        let skipped = io::copy(&mut (&mut self.input).take(len), &mut io::sink())
            .map_err(|e| e.to_string())?;
        self.offset += skipped;
        if skipped < len {
            return Err(format!(
                "expected {len} bytes of field, the input ends after {skipped}"
            ));
        }
        Ok(())
    }
}

pub(super) fn read<R: BufRead>(
    input: R,
    file: &Path,
    sink: &mut dyn FnMut(Trace) -> io::Result<()>,
    stats: &mut ReadStats,
) -> Result<(), Error> {
    let mut cursor = Cursor { input, offset: 0 };
    let mut grouper = Grouper::default();
    let mut names = Interner::default();
    let fail = |offset: u64, message: String| Error::Protobuf {
        file: file.into(),
        offset,
        message,
    };
    loop {
        let field_start = cursor.offset;
        let Some(key) = cursor.varint().map_err(|m| fail(field_start, m))? else {
            break;
        };
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            2 => {
                let len = cursor
                    .varint()
                    .map_err(|m| fail(field_start, m))?
                    .ok_or_else(|| fail(field_start, "the input ends before a length".into()))?;
                if len > MAX_MESSAGE {
                    return Err(fail(
                        field_start,
                        format!("field length {len} is larger than 2 GiB"),
                    ));
                }
                if field != 1 {
                    cursor.skip(len).map_err(|m| fail(field_start, m))?;
                    continue;
                }
                let body = cursor.bytes(len).map_err(|m| fail(field_start, m))?;
                let message =
                    <ResourceSpans as prost::Message>::decode(body.as_slice()).map_err(|e| {
                        fail(
                            field_start,
                            format!("expected an OTLP ResourceSpans message: {e}"),
                        )
                    })?;
                add_resource(message, &mut grouper, &mut names)
                    .map_err(|m| fail(field_start, m))?;
            }
            0 => {
                cursor.varint().map_err(|m| fail(field_start, m))?;
            }
            1 => cursor.skip(8).map_err(|m| fail(field_start, m))?,
            5 => cursor.skip(4).map_err(|m| fail(field_start, m))?,
            other => {
                return Err(fail(
                    field_start,
                    format!(
                        "wire type {other} of field {field} is not valid here; expected an OTLP TracesData or ExportTraceServiceRequest"
                    ),
                ));
            }
        }
    }
    stats.format = Some(super::Format::OtlpProto);
    for trace in grouper.into_traces() {
        stats.traces += 1;
        stats.spans += trace.spans.len();
        sink(trace).map_err(|source| Error::Sink {
            file: file.into(),
            source,
        })?;
    }
    Ok(())
}

/// Adds one `ResourceSpans`; a span without its ids cannot be placed in a trace and fails
/// the whole message, named by its position in it.
fn add_resource(
    message: ResourceSpans,
    grouper: &mut Grouper,
    names: &mut Interner,
) -> Result<(), String> {
    let attribute = |key: &str| {
        message
            .resource
            .as_ref()?
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.string_value.clone())
    };
    let service = names.get(attribute("service.name").as_deref().unwrap_or(""));
    let host = attribute("host.name")
        .or_else(|| attribute("host.id"))
        .or_else(|| attribute("service.instance.id"))
        .map(|h| names.get(&h));
    for (k, scope) in message
        .scope_spans
        .into_iter()
        .chain(message.instrumentation_library_spans)
        .enumerate()
    {
        for (j, raw) in scope.spans.into_iter().enumerate() {
            for (field, id) in [("trace_id", &raw.trace_id), ("span_id", &raw.span_id)] {
                if id.is_empty() {
                    return Err(format!(
                        "span {j} of scope {k} in this ResourceSpans has no {field}"
                    ));
                }
            }
            let mut span = Span::new(
                TraceId::from_bytes(&raw.trace_id),
                SpanId::from_bytes(&raw.span_id),
                raw.start_time_unix_nano,
                raw.end_time_unix_nano,
            )
            .with_name(names.get(&raw.name))
            .with_kind(SpanKind::from_otlp(i64::from(raw.kind)));
            if !raw.parent_span_id.is_empty() {
                span = span.with_parent(SpanId::from_bytes(&raw.parent_span_id));
            }
            match raw.status.map(|s| s.code) {
                Some(1) => span = span.with_status(Status::Ok),
                Some(2) => span = span.with_status(Status::Error),
                _ => {}
            }
            for link in raw.links {
                span = span.with_link(Link {
                    trace_id: TraceId::from_bytes(&link.trace_id),
                    span_id: SpanId::from_bytes(&link.span_id),
                });
            }
            let peer = super::peer_from(
                span.kind(),
                &super::PEER_KEYS.map(|key| {
                    let value = raw
                        .attributes
                        .iter()
                        .find(|kv| kv.key == key)?
                        .value
                        .as_ref()?;
                    match (&value.string_value, value.int_value) {
                        (Some(text), _) => Some(text.clone()),
                        (None, Some(number)) => Some(number.to_string()),
                        (None, None) => None,
                    }
                }),
            );
            if let Some(peer) = peer {
                span = span.with_peer(names.get(&peer));
            }
            // OTLP's span flags: bit 8 says whether bit 9 (the parent is remote) is known.
            if raw.flags & 0x300 == 0x300 {
                span = span.with_remote_parent(true);
            }
            span.set_service(service.clone());
            span.set_host(host.clone());
            grouper.push(span);
        }
    }
    Ok(())
}

/// Encodes traces as an OTLP `TracesData`, for tests and fuzz seeds: one `ResourceSpans` per
/// span, carrying the span's service.
#[doc(hidden)]
pub fn encode_traces_data(spans: &[Span]) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct TracesData {
        #[prost(message, repeated, tag = "1")]
        resource_spans: Vec<ResourceSpans>,
    }
    let id_bytes = |text: String, width: usize| -> Vec<u8> {
        let padded = format!("{text:0>width$}");
        (0..padded.len() / 2)
            .filter_map(|i| u8::from_str_radix(padded.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    };
    let resource_spans = spans
        .iter()
        .map(|s| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        string_value: Some(s.service().into()),
                        int_value: None,
                    }),
                }],
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![ProtoSpan {
                    trace_id: id_bytes(s.trace_id().to_string(), 32),
                    span_id: id_bytes(s.span_id().to_string(), 16),
                    parent_span_id: s
                        .parent_id()
                        .map(|p| id_bytes(p.to_string(), 16))
                        .unwrap_or_default(),
                    name: s.name().into(),
                    kind: 0,
                    start_time_unix_nano: s.start_ns(),
                    end_time_unix_nano: s.end_ns(),
                    attributes: Vec::new(),
                    links: Vec::new(),
                    status: None,
                    flags: 0,
                }],
            }],
            instrumentation_library_spans: Vec::new(),
        })
        .collect();
    prost::Message::encode_to_vec(&TracesData { resource_spans })
}

#[cfg(test)]
mod tests {
    use super::super::{Format, read_traces};
    use super::*;

    fn sample() -> Vec<Span> {
        let t = TraceId::parse("5b8efff798038103d269b633813fc60c");
        vec![
            Span::new(
                t.clone(),
                SpanId::parse("eee19b7ec3c1b173"),
                1_544_712_660_000_000_001,
                1_544_712_661_000_000_000,
            )
            .with_service("a")
            .with_name("root"),
            Span::new(
                t,
                SpanId::parse("eee19b7ec3c1b174"),
                1_544_712_660_100_000_000,
                1_544_712_660_900_000_000,
            )
            .with_parent(SpanId::parse("eee19b7ec3c1b173"))
            .with_service("b")
            .with_name("child"),
        ]
    }

    #[test]
    fn round_trips_through_the_wire_format() {
        let bytes = encode_traces_data(&sample());
        let mut traces = Vec::new();
        let stats = read_traces(bytes.as_slice(), Path::new("t.pb"), None, |t| {
            traces.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(stats.format, Some(Format::OtlpProto));
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].spans, sample());
    }

    #[test]
    fn a_span_without_its_id_is_refused_at_its_message() {
        let first = encode_traces_data(&sample()[..1]);
        // A second ResourceSpans (field 1 of TracesData) whose one span has a trace id only.
        let span = ProtoSpan {
            trace_id: vec![1; 16],
            span_id: Vec::new(),
            parent_span_id: Vec::new(),
            name: "no id".into(),
            kind: 0,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: Vec::new(),
            links: Vec::new(),
            status: None,
            flags: 0,
        };
        let message = ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans { spans: vec![span] }],
            instrumentation_library_spans: Vec::new(),
        };
        let mut bytes = first.clone();
        let body = prost::Message::encode_to_vec(&message);
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut bytes);
        prost::encoding::encode_varint(body.len() as u64, &mut bytes);
        bytes.extend_from_slice(&body);
        let err = read_traces(bytes.as_slice(), Path::new("t.pb"), None, |_| Ok(())).unwrap_err();
        match err {
            Error::Protobuf {
                offset, message, ..
            } => {
                assert_eq!(
                    offset,
                    first.len() as u64,
                    "where the second message starts"
                );
                assert_eq!(
                    message,
                    "span 0 of scope 0 in this ResourceSpans has no span_id"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn truncation_reports_the_offset_of_the_broken_field() {
        let bytes = encode_traces_data(&sample());
        let cut = bytes.len() - 3;
        let err = read_traces(&bytes[..cut], Path::new("t.pb"), None, |_| Ok(())).unwrap_err();
        match err {
            Error::Protobuf {
                offset, message, ..
            } => {
                assert!(offset > 0 && offset < cut as u64, "{offset}");
                assert!(message.contains("ends"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
    }
}

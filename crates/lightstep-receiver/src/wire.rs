//! A validating walk over OTLP trace protobuf: the fast path of ingest.
//!
//! Decoding an `ExportTraceServiceRequest` with prost allocates every id, name, key and string
//! value of every span, and that was most of the receiver's cost per span. The store keeps each
//! span as the protobuf bytes it arrived in and decodes it only when asked
//! ([`ReceivedSpan::span`](crate::ReceivedSpan::span)), so ingest needs two things, both done
//! here in one pass that allocates nothing per span:
//!
//! 1. the certainty that the request is protobuf prost would decode, so that a bad request is
//!    still refused as a whole (nothing stored) and the later decode of a stored span cannot
//!    fail; and
//! 2. each span's bytes and ids, and the resource and scope it was sent under.
//!
//! The walk follows prost 0.14's decoder rule for rule: the wire types of known fields, UTF-8 in
//! strings, varints of at most ten bytes without overflow, keys with a valid wire type and a
//! non-zero tag, lengths within their message, unknown fields (groups included) skipped, and the
//! same recursion limit counted the same way from the request down. A span accepted here is
//! therefore decodable on its own (it then starts three levels higher, so the limit is further
//! away). The property tests below check it against prost on valid and corrupted requests.

use std::fmt;

/// Why a body is not a decodable OTLP trace request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WireError(pub(crate) &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

type Result<T, E = WireError> = std::result::Result<T, E>;

/// prost's `RECURSION_LIMIT`: how deep messages (and groups) may nest below the request.
const RECURSION_LIMIT: u32 = 100;

const TRUNCATED: WireError = WireError("a field runs past the end of its message");
const RECURSION: WireError = WireError("messages nested too deeply");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WireType {
    Varint,
    Fixed64,
    Len,
    StartGroup,
    EndGroup,
    Fixed32,
}

/// What a known field holds, as the OTLP protos declare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// int32, int64, uint32, bool, enum: any varint.
    Varint,
    Fixed32,
    /// fixed64 and double.
    Fixed64,
    Str,
    Bytes,
    Message(Msg),
}

/// The messages of an OTLP trace request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Msg {
    Request = 0,
    ResourceSpans = 1,
    ScopeSpans = 2,
    Span = 3,
    Event = 4,
    Link = 5,
    Status = 6,
    Resource = 7,
    EntityRef = 8,
    Scope = 9,
    KeyValue = 10,
    AnyValue = 11,
    ArrayValue = 12,
    KeyValueList = 13,
}

impl Msg {
    /// Indexed by discriminant, so that a const generic `u8` names a message.
    const ALL: [Msg; 14] = [
        Msg::Request,
        Msg::ResourceSpans,
        Msg::ScopeSpans,
        Msg::Span,
        Msg::Event,
        Msg::Link,
        Msg::Status,
        Msg::Resource,
        Msg::EntityRef,
        Msg::Scope,
        Msg::KeyValue,
        Msg::AnyValue,
        Msg::ArrayValue,
        Msg::KeyValueList,
    ];
}

/// The schema: what field `tag` of message `msg` holds (opentelemetry-proto 0.33's generated
/// types), or `None` for a field prost skips.
#[inline(always)]
fn field(msg: Msg, tag: u32) -> Option<Kind> {
    use Kind::{Bytes, Fixed32, Fixed64, Message, Str, Varint};
    Some(match (msg, tag) {
        (Msg::Request, 1) => Message(Msg::ResourceSpans),
        (Msg::ResourceSpans, 1) => Message(Msg::Resource),
        (Msg::ResourceSpans, 2) => Message(Msg::ScopeSpans),
        (Msg::ResourceSpans | Msg::ScopeSpans, 3) => Str,
        (Msg::ScopeSpans, 1) => Message(Msg::Scope),
        (Msg::ScopeSpans, 2) => Message(Msg::Span),
        (Msg::Span, 1 | 2 | 4) => Bytes,
        (Msg::Span, 3 | 5) => Str,
        (Msg::Span, 6 | 10 | 12 | 14) => Varint,
        (Msg::Span, 7 | 8) => Fixed64,
        (Msg::Span, 9) => Message(Msg::KeyValue),
        (Msg::Span, 11) => Message(Msg::Event),
        (Msg::Span, 13) => Message(Msg::Link),
        (Msg::Span, 15) => Message(Msg::Status),
        (Msg::Span, 16) => Fixed32,
        (Msg::Event, 1) => Fixed64,
        (Msg::Event, 2) => Str,
        (Msg::Event, 3) => Message(Msg::KeyValue),
        (Msg::Event, 4) => Varint,
        (Msg::Link, 1 | 2) => Bytes,
        (Msg::Link, 3) => Str,
        (Msg::Link, 4) => Message(Msg::KeyValue),
        (Msg::Link, 5) => Varint,
        (Msg::Link, 6) => Fixed32,
        (Msg::Status, 2) => Str,
        (Msg::Status, 3) => Varint,
        (Msg::Resource, 1) => Message(Msg::KeyValue),
        (Msg::Resource, 2) => Varint,
        (Msg::Resource, 3) => Message(Msg::EntityRef),
        (Msg::EntityRef, 1..=4) => Str,
        (Msg::Scope, 1 | 2) => Str,
        (Msg::Scope, 3) => Message(Msg::KeyValue),
        (Msg::Scope, 4) => Varint,
        (Msg::KeyValue, 1) => Str,
        (Msg::KeyValue, 2) => Message(Msg::AnyValue),
        (Msg::KeyValue, 3) => Varint,
        (Msg::AnyValue, 1) => Str,
        (Msg::AnyValue, 2 | 3 | 8) => Varint,
        (Msg::AnyValue, 4) => Fixed64,
        (Msg::AnyValue, 5) => Message(Msg::ArrayValue),
        (Msg::AnyValue, 6) => Message(Msg::KeyValueList),
        (Msg::AnyValue, 7) => Bytes,
        (Msg::ArrayValue, 1) => Message(Msg::AnyValue),
        (Msg::KeyValueList, 1) => Message(Msg::KeyValue),
        _ => return None,
    })
}

/// The bytes of one message, consumed field by field.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// prost's `decode_varint`: at most ten bytes, the tenth at most 1.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64> {
        // Keys, lengths of short strings and small integers: one byte.
        match self.buf {
            [byte, rest @ ..] if *byte < 0x80 => {
                self.buf = rest;
                Ok(u64::from(*byte))
            }
            _ => self.long_varint(),
        }
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == 9 && byte >= 0x02 {
                    break;
                }
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError("invalid varint"))
    }

    /// prost's `decode_key`.
    #[inline(always)]
    fn key(&mut self) -> Result<(u32, WireType)> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| WireError("invalid field key"))?;
        let wire_type = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return Err(WireError("invalid wire type")),
        };
        let tag = key >> 3;
        if tag == 0 {
            return Err(WireError("invalid field tag 0"));
        }
        Ok((tag, wire_type))
    }

    #[inline(always)]
    fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| TRUNCATED)?;
        if len > self.buf.len() {
            return Err(TRUNCATED);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    #[inline(always)]
    fn len_delimited(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        self.take(len)
    }

    /// prost's `skip_field`, `ctx` being the recursion budget of the enclosing message.
    #[inline(never)]
    fn skip(&mut self, wire_type: WireType, tag: u32, ctx: u32) -> Result<()> {
        if ctx == 0 {
            return Err(RECURSION);
        }
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.take(8).map(drop),
            WireType::Fixed32 => self.take(4).map(drop),
            WireType::Len => self.len_delimited().map(drop),
            WireType::StartGroup => loop {
                let (inner_tag, inner_type) = self.key()?;
                if inner_type == WireType::EndGroup {
                    if inner_tag != tag {
                        return Err(WireError("mismatched end of group"));
                    }
                    return Ok(());
                }
                self.skip(inner_type, inner_tag, ctx - 1)?;
            },
            WireType::EndGroup => Err(WireError("unexpected end of group")),
        }
    }

    /// Reads the next field of a `msg` message whose fields have recursion budget `ctx`. Checks
    /// scalars and strings; returns the contents of strings, bytes and messages. A message field
    /// is only checked against the recursion limit: the caller walks it (with `ctx - 1`).
    #[inline(always)]
    fn field(&mut self, msg: Msg, ctx: u32) -> Result<(u32, Option<Kind>, &'a [u8])> {
        let (tag, wire_type) = self.key()?;
        let Some(kind) = field(msg, tag) else {
            self.skip(wire_type, tag, ctx)?;
            return Ok((tag, None, &[]));
        };
        let expected = match kind {
            Kind::Varint => WireType::Varint,
            Kind::Fixed32 => WireType::Fixed32,
            Kind::Fixed64 => WireType::Fixed64,
            Kind::Str | Kind::Bytes | Kind::Message(_) => WireType::Len,
        };
        if wire_type != expected {
            return Err(WireError("a field has the wrong wire type"));
        }
        let value = match kind {
            Kind::Varint => {
                self.varint()?;
                &[][..]
            }
            Kind::Fixed32 => self.take(4)?,
            Kind::Fixed64 => self.take(8)?,
            Kind::Bytes => self.len_delimited()?,
            Kind::Str => {
                let value = self.len_delimited()?;
                // Most strings are short and ASCII: an OR over the bytes (which vectorizes, and
                // is inlined, unlike `is_ascii`) settles those without `from_utf8`.
                let ascii = value.iter().fold(0u8, |acc, b| acc | b) < 0x80;
                if !ascii && std::str::from_utf8(value).is_err() {
                    return Err(WireError("a string is not UTF-8"));
                }
                value
            }
            Kind::Message(_) => {
                if ctx == 0 {
                    return Err(RECURSION);
                }
                self.len_delimited()?
            }
        };
        Ok((tag, Some(kind), value))
    }
}

/// Checks that `bytes` decode as a `msg` message whose fields have recursion budget `ctx`.
fn validate(msg: Msg, bytes: &[u8], ctx: u32) -> Result<()> {
    // One copy of the loop per message, each with its schema known at compile time.
    match msg {
        Msg::Request => validate_as::<0>(bytes, ctx),
        Msg::ResourceSpans => validate_as::<1>(bytes, ctx),
        Msg::ScopeSpans => validate_as::<2>(bytes, ctx),
        Msg::Span => validate_as::<3>(bytes, ctx),
        Msg::Event => validate_as::<4>(bytes, ctx),
        Msg::Link => validate_as::<5>(bytes, ctx),
        Msg::Status => validate_as::<6>(bytes, ctx),
        Msg::Resource => validate_as::<7>(bytes, ctx),
        Msg::EntityRef => validate_as::<8>(bytes, ctx),
        Msg::Scope => validate_as::<9>(bytes, ctx),
        Msg::KeyValue => validate_as::<10>(bytes, ctx),
        Msg::AnyValue => validate_as::<11>(bytes, ctx),
        Msg::ArrayValue => validate_as::<12>(bytes, ctx),
        Msg::KeyValueList => validate_as::<13>(bytes, ctx),
    }
}

fn validate_as<const M: u8>(bytes: &[u8], ctx: u32) -> Result<()> {
    let msg = Msg::ALL[M as usize];
    let mut reader = Reader { buf: bytes };
    while !reader.is_empty() {
        if let (_, Some(Kind::Message(inner)), value) = reader.field(msg, ctx)? {
            validate(inner, value, ctx - 1)?;
        }
    }
    Ok(())
}

/// The UTF-8 text of a string field the walk has checked.
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// One span as found in the request: its bytes (a complete `Span` message) and its ids as sent
/// (not yet checked for length or zeros).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanView<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) trace_id: &'a [u8],
    pub(crate) span_id: &'a [u8],
    pub(crate) parent_span_id: &'a [u8],
}

/// What the walk reports, in request order. Nothing is stored before the walk has checked the
/// whole request, so an error means the visitor's work is thrown away.
pub(crate) trait Visitor<'a> {
    /// A `ResourceSpans` begins. `resource` are the contents of its `resource` fields (prost
    /// merges repeated occurrences; usually there is one), already checked.
    fn resource(&mut self, resource: &[&'a [u8]], schema_url: &'a str) -> Result<()>;
    /// A `ScopeSpans` with at least one span begins (scopes without spans are not reported).
    fn scope(&mut self, scope: &[&'a [u8]], schema_url: &'a str, spans: usize) -> Result<()>;
    /// A span of the current scope.
    fn span(&mut self, span: SpanView<'a>);
}

/// Walks an `ExportTraceServiceRequest` (equally a `TracesData`), reporting to `visitor`.
pub(crate) fn walk_request<'a>(body: &'a [u8], visitor: &mut impl Visitor<'a>) -> Result<()> {
    let ctx = RECURSION_LIMIT;
    let mut reader = Reader { buf: body };
    while !reader.is_empty() {
        if let (1, Some(_), resource_spans) = reader.field(Msg::Request, ctx)? {
            walk_resource_spans(resource_spans, ctx - 1, visitor)?;
        }
    }
    Ok(())
}

fn walk_resource_spans<'a>(
    bytes: &'a [u8],
    ctx: u32,
    visitor: &mut impl Visitor<'a>,
) -> Result<()> {
    // The resource and schema URL may follow the scopes on the wire: find them first.
    let mut resource = Vec::new();
    let mut schema_url = "";
    let mut reader = Reader { buf: bytes };
    while !reader.is_empty() {
        match reader.field(Msg::ResourceSpans, ctx)? {
            (1, Some(_), value) => {
                validate(Msg::Resource, value, ctx - 1)?;
                resource.push(value);
            }
            (3, Some(_), value) => schema_url = text(value),
            _ => {}
        }
    }
    visitor.resource(&resource, schema_url)?;
    let mut reader = Reader { buf: bytes };
    while !reader.is_empty() {
        if let (2, Some(_), scope_spans) = reader.field(Msg::ResourceSpans, ctx)? {
            walk_scope_spans(scope_spans, ctx - 1, visitor)?;
        }
    }
    Ok(())
}

fn walk_scope_spans<'a>(bytes: &'a [u8], ctx: u32, visitor: &mut impl Visitor<'a>) -> Result<()> {
    let mut scope = Vec::new();
    let mut schema_url = "";
    let mut spans = 0usize;
    let mut reader = Reader { buf: bytes };
    while !reader.is_empty() {
        match reader.field(Msg::ScopeSpans, ctx)? {
            (1, Some(_), value) => {
                validate(Msg::Scope, value, ctx - 1)?;
                scope.push(value);
            }
            (2, Some(_), _) => spans += 1,
            (3, Some(_), value) => schema_url = text(value),
            _ => {}
        }
    }
    if spans == 0 {
        return Ok(());
    }
    visitor.scope(&scope, schema_url, spans)?;
    let mut reader = Reader { buf: bytes };
    while !reader.is_empty() {
        if let (2, Some(_), span) = reader.field(Msg::ScopeSpans, ctx)? {
            visitor.span(walk_span(span, ctx - 1)?);
        }
    }
    Ok(())
}

fn walk_span(bytes: &[u8], ctx: u32) -> Result<SpanView<'_>> {
    let mut view = SpanView {
        bytes,
        trace_id: &[],
        span_id: &[],
        parent_span_id: &[],
    };
    let mut reader = Reader { buf: bytes };
    while !reader.is_empty() {
        // A repeated singular field replaces the earlier value, as in prost.
        match reader.field(Msg::Span, ctx)? {
            (1, Some(_), value) => view.trace_id = value,
            (2, Some(_), value) => view.span_id = value,
            (4, Some(_), value) => view.parent_span_id = value,
            (_, Some(Kind::Message(inner)), value) => validate(inner, value, ctx - 1)?,
            _ => {}
        }
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
    use proptest::prelude::*;
    use prost::Message as _;

    /// Collects what the walk reports, decoding resources, scopes and spans with prost.
    #[derive(Default)]
    struct Collected {
        resources: Vec<(Resource, String)>,
        scopes: Vec<(InstrumentationScope, String, usize)>,
        spans: Vec<Span>,
    }

    impl<'a> Visitor<'a> for Collected {
        fn resource(&mut self, parts: &[&'a [u8]], schema_url: &'a str) -> Result<()> {
            let mut resource = Resource::default();
            for part in parts {
                resource.merge(*part).expect("checked resource decodes");
            }
            self.resources.push((resource, schema_url.to_owned()));
            Ok(())
        }
        fn scope(&mut self, parts: &[&'a [u8]], schema_url: &'a str, spans: usize) -> Result<()> {
            let mut scope = InstrumentationScope::default();
            for part in parts {
                scope.merge(*part).expect("checked scope decodes");
            }
            self.scopes.push((scope, schema_url.to_owned(), spans));
            Ok(())
        }
        fn span(&mut self, view: SpanView<'a>) {
            let span = Span::decode(view.bytes).expect("checked span decodes");
            assert_eq!(span.trace_id, view.trace_id);
            assert_eq!(span.span_id, view.span_id);
            assert_eq!(span.parent_span_id, view.parent_span_id);
            self.spans.push(span);
        }
    }

    /// What prost makes of the same bytes, in the walk's terms.
    fn prost_view(request: &ExportTraceServiceRequest) -> Collected {
        let mut out = Collected::default();
        for rs in &request.resource_spans {
            out.resources.push((
                rs.resource.clone().unwrap_or_default(),
                rs.schema_url.clone(),
            ));
            for ss in rs.scope_spans.iter().filter(|ss| !ss.spans.is_empty()) {
                out.scopes.push((
                    ss.scope.clone().unwrap_or_default(),
                    ss.schema_url.clone(),
                    ss.spans.len(),
                ));
                out.spans.extend(ss.spans.iter().cloned());
            }
        }
        out
    }

    fn check_against_prost(bytes: &[u8]) {
        let mut walked = Collected::default();
        let walk = walk_request(bytes, &mut walked);
        let prost = ExportTraceServiceRequest::decode(bytes);
        match (walk, prost) {
            (Ok(()), Ok(request)) => {
                // Compared as protobuf, so that a NaN double compares equal to itself.
                let expected = prost_view(&request);
                let res = |c: &Collected| {
                    c.resources
                        .iter()
                        .map(|(r, u)| (r.encode_to_vec(), u.clone()))
                        .collect::<Vec<_>>()
                };
                let scopes = |c: &Collected| {
                    c.scopes
                        .iter()
                        .map(|(s, u, n)| (s.encode_to_vec(), u.clone(), *n))
                        .collect::<Vec<_>>()
                };
                let spans =
                    |c: &Collected| c.spans.iter().map(Span::encode_to_vec).collect::<Vec<_>>();
                assert_eq!(res(&walked), res(&expected));
                assert_eq!(scopes(&walked), scopes(&expected));
                assert_eq!(spans(&walked), spans(&expected));
            }
            (Err(_), Err(_)) => {}
            (walk, prost) => panic!("walk {walk:?} but prost {prost:?} for {bytes:02x?}"),
        }
    }

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn sample(seed: u8, spans: usize) -> ExportTraceServiceRequest {
        let nested = any_value::Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(any_value::Value::IntValue(-7)),
                },
                AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("d", any_value::Value::DoubleValue(1.5))],
                    })),
                },
            ],
        });
        let span = |i: usize| Span {
            trace_id: vec![seed; 16],
            span_id: vec![u8::try_from(i % 250).unwrap_or(0) + 1; 8],
            parent_span_id: if i.is_multiple_of(2) {
                vec![]
            } else {
                vec![9; 8]
            },
            name: format!("span-{i}-é"),
            kind: 2,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: vec![
                kv("s", any_value::Value::StringValue("v".into())),
                kv("b", any_value::Value::BoolValue(true)),
                kv("bytes", any_value::Value::BytesValue(vec![0, 1, 2])),
                kv("nested", nested.clone()),
            ],
            events: vec![span::Event {
                time_unix_nano: 3,
                name: "e".into(),
                ..span::Event::default()
            }],
            links: vec![span::Link {
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                flags: 1,
                ..span::Link::default()
            }],
            status: Some(Status {
                message: "m".into(),
                code: 2,
            }),
            flags: 0x101,
            ..Span::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv(
                            "service.name",
                            any_value::Value::StringValue("svc".into()),
                        )],
                        dropped_attributes_count: 1,
                        ..Resource::default()
                    }),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "scope".into(),
                                version: "1".into(),
                                ..InstrumentationScope::default()
                            }),
                            spans: (0..spans).map(span).collect(),
                            schema_url: "https://s".into(),
                        },
                        ScopeSpans::default(),
                    ],
                    schema_url: "https://r".into(),
                },
                ResourceSpans::default(),
            ],
        }
    }

    #[test]
    fn valid_requests_walk_as_prost_decodes_them() {
        for spans in [0, 1, 5] {
            check_against_prost(&sample(3, spans).encode_to_vec());
        }
        check_against_prost(&[]);
    }

    #[test]
    fn fields_out_of_order_repeated_and_unknown_are_handled_like_prost() {
        // ResourceSpans with its scope spans before its resource, the resource twice (merged),
        // and an unknown group and varint field.
        let request = sample(4, 2);
        let rs = &request.resource_spans[0];
        let mut rs_bytes = Vec::new();
        prost::encoding::message::encode(2, &rs.scope_spans[0], &mut rs_bytes);
        prost::encoding::message::encode(1, rs.resource.as_ref().unwrap(), &mut rs_bytes);
        prost::encoding::message::encode(1, rs.resource.as_ref().unwrap(), &mut rs_bytes);
        rs_bytes.extend_from_slice(&[0x9b, 0x01, 0x08, 0x01, 0x9c, 0x01]); // group 19 { 1: 1 }
        rs_bytes.extend_from_slice(&[0xa0, 0x01, 0x05]); // field 20 varint 5
        let mut body = Vec::new();
        prost::encoding::bytes::encode(1, &rs_bytes, &mut body);
        check_against_prost(&body);
        // A span whose trace id appears twice: the last one counts.
        let mut span = Span::decode(&*rs.scope_spans[0].spans[0].encode_to_vec()).unwrap();
        span.trace_id = vec![8; 16];
        let mut span_bytes = rs.scope_spans[0].spans[0].encode_to_vec();
        prost::encoding::bytes::encode(1, &span.trace_id, &mut span_bytes);
        let mut ss = Vec::new();
        prost::encoding::bytes::encode(2, &span_bytes, &mut ss);
        let mut rs2 = Vec::new();
        prost::encoding::bytes::encode(2, &ss, &mut rs2);
        let mut body = Vec::new();
        prost::encoding::bytes::encode(1, &rs2, &mut body);
        check_against_prost(&body);
    }

    #[test]
    fn nesting_at_and_beyond_the_recursion_limit_is_judged_like_prost() {
        for depth in [10, 80, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 120] {
            let mut value = AnyValue {
                value: Some(any_value::Value::IntValue(1)),
            };
            for _ in 0..depth {
                value = AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![value],
                    })),
                };
            }
            let mut request = sample(5, 1);
            request.resource_spans[0].scope_spans[0].spans[0]
                .attributes
                .push(KeyValue {
                    key: "deep".into(),
                    value: Some(value),
                    ..KeyValue::default()
                });
            check_against_prost(&request.encode_to_vec());
        }
    }

    #[test]
    fn malformed_bytes_are_refused() {
        for bytes in [
            &[0x0a, 0xc8, 0x01, 1, 2, 3][..],
            &[0x08, 0x01][..],                   // field 1 as a varint
            &[0x00][..],                         // tag 0
            &[0x0f][..],                         // wire type 7
            &[0x0c][..],                         // end group without start
            &[0xff; 11][..],                     // endless varint
            &[0x0a, 0x03, 0x1a, 0x01, 0xff][..], // schema_url not UTF-8
        ] {
            assert!(
                walk_request(bytes, &mut Collected::default()).is_err(),
                "{bytes:02x?}"
            );
            check_against_prost(bytes);
        }
    }

    proptest! {
        /// Corrupting a valid request anywhere: the walk accepts exactly what prost accepts,
        /// and finds the same spans, resources and scopes.
        #[test]
        fn corrupted_requests_are_judged_like_prost(
            spans in 0usize..4,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<Option<usize>>(),
        ) {
            let mut bytes = sample(7, spans).encode_to_vec();
            for (at, value) in &flips {
                let len = bytes.len();
                bytes[at % len] = *value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            check_against_prost(&bytes);
        }

        /// Arbitrary bytes: never a panic, and the same verdict as prost.
        #[test]
        fn arbitrary_bytes_are_judged_like_prost(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check_against_prost(&bytes);
        }
    }
}

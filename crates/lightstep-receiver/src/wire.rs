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
//! The walk reads every field with `lightstep-wire`'s [`Reader`] and [`validate`], by the schema
//! tables of [`lightstep_wire::schema`], which follow prost 0.14's decoder rule for rule: the
//! wire types of known fields, UTF-8 in strings, varints of at most ten bytes without overflow,
//! keys with a valid wire type and a non-zero tag, lengths within their message, unknown fields
//! (groups included) skipped, and the same recursion limit counted the same way from the
//! request down. A span accepted here is therefore decodable on its own (it then starts three
//! levels higher, so the limit is further away). The property tests below check it against
//! prost on valid and corrupted requests.

use lightstep_wire::schema::{Field, Kind, Msg, request, resource_spans, scope_spans, span};
use lightstep_wire::{RECURSION_LIMIT, Reader, validate};

/// Why a body is not a decodable OTLP trace request.
pub(crate) use lightstep_wire::WireError;

type Result<T, E = WireError> = std::result::Result<T, E>;

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
    let mut reader = Reader::new(body);
    while !reader.is_empty() {
        if let (request::RESOURCE_SPANS, Some(_), value) = reader.field(Msg::Request, ctx)? {
            walk_resource_spans(value, ctx - 1, visitor)?;
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
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        match reader.field(Msg::ResourceSpans, ctx)? {
            (resource_spans::RESOURCE, Some(_), value) => {
                validate(Msg::Resource, value, ctx - 1)?;
                resource.push(value);
            }
            (resource_spans::SCHEMA_URL, Some(_), value) => schema_url = text(value),
            _ => {}
        }
    }
    visitor.resource(&resource, schema_url)?;
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        if let (resource_spans::SCOPE_SPANS, Some(_), value) =
            reader.field(Msg::ResourceSpans, ctx)?
        {
            walk_scope_spans(value, ctx - 1, visitor)?;
        }
    }
    Ok(())
}

fn walk_scope_spans<'a>(bytes: &'a [u8], ctx: u32, visitor: &mut impl Visitor<'a>) -> Result<()> {
    let mut scope = Vec::new();
    let mut schema_url = "";
    let mut spans = 0usize;
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        match reader.field(Msg::ScopeSpans, ctx)? {
            (scope_spans::SCOPE, Some(_), value) => {
                validate(Msg::Scope, value, ctx - 1)?;
                scope.push(value);
            }
            (scope_spans::SPANS, Some(_), _) => spans += 1,
            (scope_spans::SCHEMA_URL, Some(_), value) => schema_url = text(value),
            _ => {}
        }
    }
    if spans == 0 {
        return Ok(());
    }
    visitor.scope(&scope, schema_url, spans)?;
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        if let (scope_spans::SPANS, Some(_), span) = reader.field(Msg::ScopeSpans, ctx)? {
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
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        // A repeated singular field replaces the earlier value, as in prost.
        match reader.field(Msg::Span, ctx)? {
            (span::TRACE_ID, Some(_), value) => view.trace_id = value,
            (span::SPAN_ID, Some(_), value) => view.span_id = value,
            (span::PARENT_SPAN_ID, Some(_), value) => view.parent_span_id = value,
            (
                _,
                Some(Field {
                    kind: Kind::Message(inner),
                    ..
                }),
                value,
            ) => validate(*inner, value, ctx - 1)?,
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

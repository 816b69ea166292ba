//! The table against opentelemetry-proto 0.33's generated types: a request with every field
//! set (every repeated field twice), encoded by prost and written by its serde mapping, read
//! back by the table alone.

use std::collections::{BTreeMap, BTreeSet};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message as _;

use super::*;
use crate::{RECURSION_LIMIT, Reader, validate};

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 7,
    }
}

/// Two attributes; with `all`, one more per kind of value, nested arrays and lists included.
fn attributes(all: bool) -> Vec<KeyValue> {
    use any_value::Value as V;
    let mut out = vec![
        kv("s", V::StringValue("v".into())),
        kv("i", V::IntValue(-3)),
    ];
    if all {
        let leaf = |v: V| AnyValue { value: Some(v) };
        out.extend([
            kv("b", V::BoolValue(true)),
            kv("d", V::DoubleValue(1.5)),
            kv("x", V::BytesValue(vec![1, 2])),
            kv("r", V::StringValueStrindex(4)),
            kv(
                "a",
                V::ArrayValue(ArrayValue {
                    values: vec![leaf(V::IntValue(1)), leaf(V::BoolValue(false))],
                }),
            ),
            kv(
                "l",
                V::KvlistValue(KeyValueList {
                    values: attributes(false),
                }),
            ),
        ]);
    }
    out
}

fn full_request() -> ExportTraceServiceRequest {
    let link = span::Link {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        trace_state: "k=v".into(),
        attributes: attributes(false),
        dropped_attributes_count: 1,
        flags: 0x301,
    };
    let event = span::Event {
        time_unix_nano: 5,
        name: "e".into(),
        attributes: attributes(false),
        dropped_attributes_count: 2,
    };
    let span = Span {
        trace_id: vec![3; 16],
        span_id: vec![4; 8],
        trace_state: "a=b".into(),
        parent_span_id: vec![5; 8],
        flags: 0x101,
        name: "GET /".into(),
        kind: 2,
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        attributes: attributes(true),
        dropped_attributes_count: 3,
        events: vec![event.clone(), event],
        dropped_events_count: 4,
        links: vec![link.clone(), link],
        dropped_links_count: 5,
        status: Some(Status {
            message: "m".into(),
            code: 2,
        }),
    };
    let entity = EntityRef {
        schema_url: "u".into(),
        r#type: "service".into(),
        id_keys: vec!["a".into(), "b".into()],
        description_keys: vec!["c".into(), "d".into()],
    };
    let scope_spans = ScopeSpans {
        scope: Some(InstrumentationScope {
            name: "n".into(),
            version: "1".into(),
            attributes: attributes(false),
            dropped_attributes_count: 6,
        }),
        spans: vec![span.clone(), span],
        schema_url: "s".into(),
    };
    let resource_spans = ResourceSpans {
        resource: Some(Resource {
            attributes: attributes(false),
            dropped_attributes_count: 7,
            entity_refs: vec![entity.clone(), entity],
        }),
        scope_spans: vec![scope_spans.clone(), scope_spans],
        schema_url: "r".into(),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![resource_spans.clone(), resource_spans],
    }
}

/// Per (message, field number): the most times the field occurred in one message.
type Seen = BTreeMap<(u8, u32), usize>;

fn walk_protobuf(msg: Msg, bytes: &[u8], seen: &mut Seen) {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, wire_type)) = reader.next_key().expect("a key") {
        let field = msg
            .field(number)
            .unwrap_or_else(|| panic!("{msg:?} field {number} is not in the table"));
        assert_eq!(field.number, number);
        assert_eq!(
            field.kind.wire_type(),
            wire_type,
            "{msg:?}.{} has another wire type",
            field.json
        );
        *counts.entry(number).or_default() += 1;
        let value = match wire_type {
            WireType::Varint => {
                reader.varint().expect("varint");
                &[][..]
            }
            WireType::ThirtyTwoBit => reader.take(4).expect("fixed32"),
            WireType::SixtyFourBit => reader.take(8).expect("fixed64"),
            _ => reader.len_delimited().expect("length-delimited"),
        };
        if let Kind::Message(inner) = field.kind {
            walk_protobuf(inner, value, seen);
        }
    }
    for (number, count) in counts {
        let most = seen.entry((msg as u8, number)).or_default();
        *most = (*most).max(count);
    }
}

fn walk_json(msg: Msg, value: &serde_json::Value, seen: &mut BTreeSet<(u8, u32)>) {
    let object = value.as_object().expect("an object");
    for (name, value) in object {
        let field = msg
            .field_named(name)
            .unwrap_or_else(|| panic!("{msg:?} has no field named {name:?} in the table"));
        seen.insert((msg as u8, field.number));
        let Kind::Message(inner) = field.kind else {
            continue;
        };
        match value {
            serde_json::Value::Array(items) => {
                assert!(field.repeated, "{msg:?}.{name} is an array");
                for item in items {
                    walk_json(inner, item, seen);
                }
            }
            other => {
                assert!(!field.repeated, "{msg:?}.{name} is not an array");
                walk_json(inner, other, seen);
            }
        }
    }
}

fn every_field() -> BTreeSet<(u8, u32)> {
    Msg::ALL
        .iter()
        .flat_map(|&m| m.fields().iter().map(move |f| (m as u8, f.number)))
        .collect()
}

#[test]
fn every_field_prost_writes_is_in_the_table_with_its_wire_type_and_cardinality() {
    let bytes = full_request().encode_to_vec();
    let mut seen = Seen::new();
    walk_protobuf(Msg::Request, &bytes, &mut seen);
    let found: BTreeSet<_> = seen.keys().copied().collect();
    assert_eq!(
        found,
        every_field(),
        "fields of the table that prost never wrote"
    );
    for ((m, number), most) in seen {
        let field = Msg::ALL[usize::from(m)].field(number).expect("known");
        // Every repeated field holds at least two elements in the request; the others one.
        assert_eq!(
            field.repeated,
            most >= 2,
            "{:?}.{}",
            Msg::ALL[usize::from(m)],
            field.json
        );
    }
    assert_eq!(validate(Msg::Request, &bytes, RECURSION_LIMIT), Ok(()));
}

#[test]
fn every_otlp_json_name_is_the_serde_mappings() {
    let value = serde_json::to_value(full_request()).expect("serializes");
    let mut seen = BTreeSet::new();
    walk_json(Msg::Request, &value, &mut seen);
    assert_eq!(
        seen,
        every_field(),
        "fields of the table the mapping never wrote"
    );
}

#[test]
fn the_constants_and_lookups_say_what_the_table_says() {
    let name = Msg::Span.field(super::span::NAME).expect("Span.name");
    assert_eq!(
        (name.number, name.json, name.kind),
        (5, "name", Kind::String)
    );
    assert_eq!(super::span::json::NAME, b"name");
    assert_eq!(
        Msg::Span.field_named("flags").map(|f| f.number),
        Some(super::span::FLAGS)
    );
    assert_eq!(Msg::Status.field(1), None, "field 1 of Status is reserved");
    assert_eq!(Msg::Span.field(0), None);
    assert_eq!(Msg::Span.field(17), None);
    assert_eq!(Msg::Span.field(u32::MAX), None);
    assert_eq!(Msg::Span.field_named("someFutureField"), None);
    for msg in Msg::ALL {
        assert_eq!(Msg::ALL[msg as usize], msg);
        let numbers: Vec<u32> = msg.fields().iter().map(|f| f.number).collect();
        assert!(numbers.is_sorted(), "{msg:?}'s fields in number order");
        for field in msg.fields() {
            assert_eq!(msg.field(field.number), Some(field));
        }
    }
    assert_eq!(OtlpEnum::SpanKind.names()[2], "SPAN_KIND_SERVER");
    assert_eq!(OtlpEnum::StatusCode.names()[2], "STATUS_CODE_ERROR");
}

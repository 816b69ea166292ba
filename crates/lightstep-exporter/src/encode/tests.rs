//! The encoders against the oracle: opentelemetry-proto's conversion of the same spans.
//!
//! Property style: a seeded generator makes hundreds of batches of varied spans (every value
//! type and array, events, links, statuses, trace states, remote parents, several scopes with
//! versions, attributes and schema URLs, times before the epoch); each batch is encoded, decoded
//! with prost (or opentelemetry-proto's serde for JSON) and compared with what
//! `group_spans_by_resource_and_scope` builds.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message as _;

use super::json::JsonEncoder;
use super::proto::ProtoEncoder;

/// xorshift64*: deterministic, so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "",
            "a",
            "GET /api/orders/{id}",
            "quote\"back\\slash",
            "line\nbreak\ttab\u{1}",
            "é✓🚀",
            "x",
            "long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long-long",
        ];
        let n = self.below(3);
        (0..n)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }
    fn double(&mut self, special: bool) -> f64 {
        let pool = [
            0.0,
            -0.0,
            1.5,
            -2.25e-300,
            1e300,
            f64::MIN_POSITIVE,
            f64::MAX,
            123456.789,
        ];
        if special && self.chance(6) {
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][self.below(3) as usize]
        } else {
            pool[self.below(pool.len() as u64) as usize]
        }
    }
    fn int(&mut self) -> i64 {
        match self.below(5) {
            0 => 0,
            1 => i64::MIN,
            2 => i64::MAX,
            3 => -(self.below(1000) as i64),
            _ => self.next() as i64,
        }
    }
    fn value(&mut self, special: bool) -> Value {
        let len = self.below(4) as usize;
        match self.below(9) {
            0 => Value::Bool(self.chance(2)),
            1 => Value::I64(self.int()),
            2 => Value::F64(self.double(special)),
            3 | 4 => Value::String(self.string().into()),
            5 => Value::Array(Array::Bool((0..len).map(|_| self.chance(2)).collect())),
            6 => Value::Array(Array::I64((0..len).map(|_| self.int()).collect())),
            7 => Value::Array(Array::F64((0..len).map(|_| self.double(special)).collect())),
            _ => Value::Array(Array::String(
                (0..len).map(|_| StringValue::from(self.string())).collect(),
            )),
        }
    }
    fn attributes(&mut self, max: u64, special: bool) -> Vec<KeyValue> {
        (0..self.below(max + 1))
            .map(|_| KeyValue::new(self.string(), self.value(special)))
            .collect()
    }
    fn time(&mut self) -> SystemTime {
        match self.below(4) {
            0 => UNIX_EPOCH,
            1 => UNIX_EPOCH - Duration::from_secs(5),
            _ => UNIX_EPOCH + Duration::from_nanos(self.next() >> 2),
        }
    }
    fn trace_state(&mut self) -> TraceState {
        match self.below(3) {
            0 => TraceState::NONE,
            1 => TraceState::from_key_value([("vendor", "v1")]).unwrap(),
            _ => TraceState::from_key_value([("a", "1"), ("b@tenant", "x-y")]).unwrap(),
        }
    }
    fn context(&mut self) -> SpanContext {
        SpanContext::new(
            TraceId::from(u128::from(self.next()) << 64 | u128::from(self.next())),
            SpanId::from(self.next()),
            if self.chance(2) {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            self.chance(2),
            self.trace_state(),
        )
    }
}

fn scopes() -> Vec<InstrumentationScope> {
    vec![
        InstrumentationScope::builder("lightstep-rs").build(),
        InstrumentationScope::builder("db")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.42.0")
            .with_attributes([KeyValue::new("db.system.name", "postgresql")])
            .build(),
        // Same name, another version: a scope of its own.
        InstrumentationScope::builder("db")
            .with_version("2.0")
            .build(),
        InstrumentationScope::builder("arrays")
            .with_attributes([
                KeyValue::new("tags", Value::Array(Array::String(vec!["a".into()]))),
                KeyValue::new("n", 3),
            ])
            .build(),
    ]
}

fn span(rng: &mut Rng, scopes: &[InstrumentationScope], special: bool) -> SpanData {
    let mut events = SpanEvents::default();
    for _ in 0..rng.below(3) {
        events.events.push(Event::new(
            rng.string(),
            rng.time(),
            rng.attributes(3, special),
            rng.below(3) as u32,
        ));
    }
    events.dropped_count = rng.below(3) as u32;
    let mut links = SpanLinks::default();
    for _ in 0..rng.below(3) {
        links.links.push(Link::new(
            rng.context(),
            rng.attributes(3, special),
            rng.below(2) as u32,
        ));
    }
    links.dropped_count = rng.below(2) as u32;
    let kinds = [
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];
    SpanData {
        span_context: rng.context(),
        parent_span_id: if rng.chance(3) {
            SpanId::INVALID
        } else {
            SpanId::from(rng.next() | 1)
        },
        parent_span_is_remote: rng.chance(2),
        span_kind: kinds[rng.below(5) as usize].clone(),
        name: Cow::Owned(rng.string()),
        start_time: rng.time(),
        end_time: rng.time(),
        attributes: rng.attributes(6, special),
        dropped_attributes_count: rng.below(3) as u32,
        events,
        links,
        status: match rng.below(4) {
            0 => Status::Unset,
            1 => Status::Ok,
            2 => Status::error(""),
            _ => Status::error(rng.string()),
        },
        instrumentation_scope: scopes[rng.below(scopes.len() as u64) as usize].clone(),
    }
}

fn resource(rng: &mut Rng) -> Resource {
    let builder = Resource::builder_empty()
        .with_service_name("encode-test")
        .with_attributes(rng.attributes(4, false));
    if rng.chance(2) {
        builder
            .with_schema_url(
                [KeyValue::new("deployment.environment.name", "test")],
                "https://opentelemetry.io/schemas/1.42.0",
            )
            .build()
    } else {
        builder.build()
    }
}

fn oracle(spans: Vec<SpanData>, resource: &Resource) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans,
            &ResourceAttributesWithSchema::from(resource),
        ),
    }
}

fn batches(seed: u64, special: bool) -> impl Iterator<Item = (Resource, Vec<SpanData>)> {
    let mut rng = Rng(seed);
    let scopes = scopes();
    (0..300).map(move |_| {
        let resource = resource(&mut rng);
        let n = match rng.below(4) {
            0 => 0,
            1 => 1,
            _ => rng.below(40) as usize,
        };
        let spans = (0..n).map(|_| span(&mut rng, &scopes, special)).collect();
        (resource, spans)
    })
}

#[test]
fn protobuf_is_byte_for_byte_what_opentelemetry_proto_and_prost_give() {
    let mut out = Vec::new();
    for (i, (resource, spans)) in batches(0x5eed_0001, true).enumerate() {
        out.clear();
        ProtoEncoder::new(&resource).encode(&spans, &mut out);
        let expected = oracle(spans, &resource);
        // Decoded: the same request (NaN aside, which `PartialEq` cannot compare).
        let decoded = ExportTraceServiceRequest::decode(&out[..])
            .unwrap_or_else(|e| panic!("batch {i}: undecodable: {e}"));
        assert_eq!(
            decoded.encode_to_vec(),
            expected.encode_to_vec(),
            "batch {i}"
        );
        // And the very bytes prost writes for it.
        assert_eq!(out, expected.encode_to_vec(), "batch {i}");
    }
}

#[test]
fn protobuf_decodes_to_the_same_structs_without_nan() {
    for (i, (resource, spans)) in batches(0x5eed_0002, false).enumerate() {
        let mut out = Vec::new();
        ProtoEncoder::new(&resource).encode(&spans, &mut out);
        let expected = oracle(spans, &resource);
        let decoded = ExportTraceServiceRequest::decode(&out[..]).unwrap();
        assert_eq!(decoded, expected, "batch {i}");
    }
}

#[test]
fn large_messages_get_multi_byte_lengths() {
    // A span above 16 KiB and a request above 2 MiB: three-byte and four-byte length prefixes.
    let resource = Resource::builder_empty().with_service_name("big").build();
    let scope = InstrumentationScope::builder("big").build();
    let mut rng = Rng(7);
    let mut spans: Vec<SpanData> = (0..150)
        .map(|_| span(&mut rng, std::slice::from_ref(&scope), false))
        .collect();
    for s in &mut spans {
        s.attributes.push(KeyValue::new("blob", "z".repeat(20_000)));
    }
    let mut out = Vec::new();
    ProtoEncoder::new(&resource).encode(&spans, &mut out);
    assert!(out.len() > 2 << 20);
    assert_eq!(out, oracle(spans, &resource).encode_to_vec());
}

#[test]
fn json_decodes_to_the_same_request() {
    let mut out = Vec::new();
    for (i, (resource, spans)) in batches(0x5eed_0003, false).enumerate() {
        out.clear();
        JsonEncoder::new(&resource).encode(&spans, &mut out);
        let expected = oracle(spans, &resource);
        let decoded: ExportTraceServiceRequest = serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "batch {i}: {e}: {}",
                String::from_utf8_lossy(&out[..out.len().min(2000)])
            )
        });
        assert_same(&decoded, &expected, i);
    }
}

/// Compares two requests, naming the first part that differs.
fn assert_same(got: &ExportTraceServiceRequest, want: &ExportTraceServiceRequest, batch: usize) {
    for (g, w) in got.resource_spans.iter().zip(&want.resource_spans) {
        assert_eq!(g.resource, w.resource, "batch {batch}: resource");
        for (gs, ws) in g.scope_spans.iter().zip(&w.scope_spans) {
            assert_eq!(gs.scope, ws.scope, "batch {batch}: scope");
            for (a, b) in gs.spans.iter().zip(&ws.spans) {
                assert_eq!(a, b, "batch {batch}: span");
            }
        }
    }
    assert_eq!(got, want, "batch {batch}");
}

#[test]
fn json_follows_the_otlp_rules_serde_gets_wrong() {
    let resource = Resource::builder_empty().with_service_name("json").build();
    let scope = InstrumentationScope::builder("json").build();
    let mut rng = Rng(11);
    let mut s = span(&mut rng, &[scope], false);
    s.span_context = SpanContext::new(
        TraceId::from(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128),
        SpanId::from(0xa1b2_c3d4_e5f6_0718u64),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    s.parent_span_id = SpanId::INVALID;
    s.start_time = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    s.attributes = vec![
        KeyValue::new("nan", f64::NAN),
        KeyValue::new("inf", f64::INFINITY),
        KeyValue::new("ninf", f64::NEG_INFINITY),
        KeyValue::new("big", i64::MAX),
        KeyValue::new("esc", "a\"b\\c\nd\u{7}"),
    ];
    let mut out = Vec::new();
    JsonEncoder::new(&resource).encode(&[s], &mut out);
    let text = String::from_utf8(out).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(span["spanId"], "a1b2c3d4e5f60718");
    assert!(span.get("parentSpanId").is_none());
    assert_eq!(span["startTimeUnixNano"], "1700000000123456789");
    let value = |i: usize| &span["attributes"][i]["value"];
    assert_eq!(value(0)["doubleValue"], "NaN");
    assert_eq!(value(1)["doubleValue"], "Infinity");
    assert_eq!(value(2)["doubleValue"], "-Infinity");
    assert_eq!(value(3)["intValue"], "9223372036854775807");
    assert_eq!(value(4)["stringValue"], "a\"b\\c\nd\u{7}");
}

#[test]
fn scopes_group_in_order_of_first_appearance() {
    let scopes = scopes();
    let mut rng = Rng(3);
    let spans: Vec<SpanData> = [2, 0, 2, 1, 0, 3, 2]
        .iter()
        .map(|&s| span(&mut rng, &scopes[s..=s], false))
        .collect();
    let groups = super::ScopeGroups::new(&spans);
    assert_eq!(groups.scopes.len(), 4);
    assert_eq!(groups.scopes[0], &scopes[2]);
    assert_eq!(groups.spans(0).collect::<Vec<_>>(), [0, 2, 6]);
    assert_eq!(groups.spans(1).collect::<Vec<_>>(), [1, 4]);
    assert_eq!(groups.spans(2).collect::<Vec<_>>(), [3]);
    assert_eq!(groups.spans(3).collect::<Vec<_>>(), [5]);
}

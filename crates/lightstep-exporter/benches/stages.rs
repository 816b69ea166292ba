//! Where the time of end-to-end delivery goes, stage by stage, for the same 100,000 spans as
//! `benches/delivery.rs`: turning `SpanData` into OTLP protobuf, the way opentelemetry-otlp does
//! it (opentelemetry-proto's conversion plus prost's encoding, `convert-and-encode`, the
//! baseline) and the way this crate does it (`direct-encode`, straight into a reused buffer),
//! dropping the spans afterwards (which the export thread also pays for), and the receiver
//! taking the encoded requests over loopback gRPC (decode and store). Read with
//! `docs/benchmarks.md`.
//!
//! Two more stages give the CPU budget of the "half the no-op ceiling" throughput goal, each on one
//! thread so that its time is its CPU cost: `create-spans` is the no-op ceiling's work (the same
//! 100,000 spans made with the SDK and ended into a processor that discards them), and
//! `receiver-store` is the receiver's own work on this crate's encoded requests without any
//! socket (the validating walk, storing each span, then taking them out and dropping them).
//!
//! Run: `cargo bench -p lightstep-exporter --bench stages`
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lightstep_exporter::bench_support::ProtobufEncoder;
use lightstep_receiver::Receiver;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanEvents, SpanLinks};
use prost::Message as _;

const SPANS: usize = 100_000;
const BATCH: usize = 4_096;

fn spans() -> Vec<SpanData> {
    let scope = InstrumentationScope::builder("bench").build();
    (0..SPANS)
        .map(|i| SpanData {
            span_context: SpanContext::new(
                TraceId::from((i as u128 + 1) << 8),
                SpanId::from(i as u64 + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed("GET /api/orders/{id}"),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", "/api/orders/{id}"),
                KeyValue::new("http.response.status_code", 200),
                KeyValue::new("worker", i as i64),
            ],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        })
        .collect()
}

fn encode(spans: Vec<SpanData>, resource: &ResourceAttributesWithSchema) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut spans = spans.into_iter().peekable();
    while spans.peek().is_some() {
        let batch: Vec<SpanData> = spans.by_ref().take(BATCH).collect();
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, resource),
        };
        out.push(request.encode_to_vec());
    }
    out
}

fn stages(c: &mut Criterion) {
    let resource_sdk = Resource::builder_empty().with_service_name("bench").build();
    let resource = ResourceAttributesWithSchema::from(&resource_sdk);
    let mut group = c.benchmark_group("stages");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(SPANS as u64));

    group.bench_function("convert-and-encode", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let input = spans();
                let started = Instant::now();
                black_box(encode(input, &resource));
                total += started.elapsed();
            }
            total
        });
    });

    let ours = ProtobufEncoder::new(&resource_sdk);
    group.bench_function("direct-encode", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut buffer = Vec::new();
            for _ in 0..iters {
                let input = spans();
                let started = Instant::now();
                for batch in input.chunks(BATCH) {
                    buffer.clear();
                    ours.encode(batch, &mut buffer);
                    black_box(&buffer);
                }
                total += started.elapsed();
            }
            total
        });
    });

    // The same span as `benches/delivery.rs` ends, on one thread.
    let noop = SdkTracerProvider::builder()
        .with_span_processor(lightstep_exporter::bench_support::Discard)
        .build();
    let tracer = noop.tracer("bench");
    group.bench_function("create-spans", |b| {
        b.iter(|| {
            for i in 0..SPANS {
                let mut span = tracer.start("GET /api/orders/{id}");
                span.set_attribute(KeyValue::new("http.request.method", "GET"));
                span.set_attribute(KeyValue::new("http.route", "/api/orders/{id}"));
                span.set_attribute(KeyValue::new("http.response.status_code", 200));
                span.set_attribute(KeyValue::new("worker", i as i64));
                span.end();
            }
        });
    });

    let encoded: Vec<Vec<u8>> = spans()
        .chunks(BATCH)
        .map(|batch| {
            let mut buffer = Vec::new();
            ours.encode(batch, &mut buffer);
            buffer
        })
        .collect();
    let store = lightstep_receiver::bench_support::store(1_000_000);
    let info = lightstep_receiver::bench_support::request_info(Default::default());
    group.bench_function("receiver-store", |b| {
        b.iter(|| {
            let mut stored = 0;
            for body in &encoded {
                stored += lightstep_receiver::bench_support::ingest_protobuf(&store, body, &info)
                    .expect("a valid request");
            }
            assert_eq!(stored, SPANS as u64);
            drop(black_box(store.take_spans()));
        });
    });

    group.bench_function("drop-spans", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let input = spans();
                let started = Instant::now();
                drop(black_box(input));
                total += started.elapsed();
            }
            total
        });
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt
        .block_on(
            Receiver::builder()
                .with_max_spans(1_000_000)
                .with_max_request_bytes(64 << 20)
                .start(),
        )
        .unwrap();
    let requests: Vec<ExportTraceServiceRequest> = encode(spans(), &resource)
        .iter()
        .map(|bytes| ExportTraceServiceRequest::decode(&bytes[..]).unwrap())
        .collect();
    let mut client = rt
        .block_on(TraceServiceClient::connect(receiver.grpc_endpoint()))
        .unwrap();
    group.bench_function("receiver-ingest", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let batch = requests.clone();
                let started = Instant::now();
                rt.block_on(async {
                    for request in batch {
                        client.export(request).await.unwrap();
                    }
                });
                total += started.elapsed();
                receiver.store().take_spans();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);

//! End-to-end delivery to the embedded receiver over loopback gRPC, side by side:
//!
//! - `lightstep-default`: this crate with the default settings (queue 2048, batch 512);
//! - `lightstep-high-throughput`: this crate with the profile documented in docs/benchmarks.md;
//! - `bare-otlp-defaults`: opentelemetry-otlp + the SDK's batch processor with their defaults,
//!   what a user would otherwise write;
//! - `noop-ceiling`: span creation with a processor that discards every span.
//!
//! Each iteration ends `SPANS` spans from `THREADS` threads as fast as they can, then flushes
//! and waits until the receiver holds every span that will arrive. Criterion's time per
//! iteration gives the rate; the spans that arrived (and so the loss) are printed once per
//! pipeline, because a pipeline that drops spans is fast at the wrong thing.
//!
//! Run: `cargo bench -p lightstep-exporter --bench delivery`
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lightstep_config::{EnvSnapshot, LightstepConfig};
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::{Receiver, RunningReceiver};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};

const SPANS: usize = 100_000;
const THREADS: usize = 4;

fn produce(provider: &SdkTracerProvider) {
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let tracer = provider.tracer("bench");
            s.spawn(move || {
                for i in 0..SPANS / THREADS {
                    let mut span = tracer.start("GET /api/orders/{id}");
                    span.set_attribute(KeyValue::new("http.request.method", "GET"));
                    span.set_attribute(KeyValue::new("http.route", "/api/orders/{id}"));
                    span.set_attribute(KeyValue::new("http.response.status_code", 200));
                    span.set_attribute(KeyValue::new("worker", (t * 1_000_000 + i) as i64));
                    span.end();
                }
            });
        }
    });
}

/// Waits until the receiver holds `expected` spans or its count stops growing (the pipeline
/// has flushed already), then empties it. Returns what arrived.
fn collect(receiver: &RunningReceiver, expected: usize) -> usize {
    let mut last = receiver.store().len();
    let mut still = 0;
    while last < expected && still < 5 {
        std::thread::sleep(Duration::from_millis(20));
        let now = receiver.store().len();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    receiver.store().take_spans().len()
}

fn ours(receiver: &RunningReceiver, high_throughput: bool) -> LightstepExporter {
    let mut builder = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_otlp_endpoint(receiver.grpc_endpoint())
        .with_service_name("bench");
    if high_throughput {
        builder = builder
            .with_max_queue_size(131_072)
            .with_max_export_batch_size(4_096)
            .with_max_concurrent_exports(4)
            .with_scheduled_delay(Duration::from_millis(200));
    }
    LightstepExporter::new(builder.build().unwrap()).unwrap()
}

fn bare(rt: &tokio::runtime::Runtime, receiver: &RunningReceiver) -> SdkTracerProvider {
    let _guard = rt.enter();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.grpc_endpoint())
        .build()
        .unwrap();
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build()
}

#[derive(Debug)]
struct Discard;

impl SpanProcessor for Discard {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: SpanData) {
        black_box(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

fn delivery(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt
        .block_on(
            Receiver::builder()
                .with_max_spans(1_000_000)
                .with_max_request_bytes(64 << 20)
                .start(),
        )
        .unwrap();

    let mut group = c.benchmark_group("delivery");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(SPANS as u64));

    for (name, high) in [
        ("lightstep-default", false),
        ("lightstep-high-throughput", true),
    ] {
        let exporter = ours(&receiver, high);
        let mut delivered = Vec::new();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    produce(exporter.tracer_provider());
                    let _ = exporter.force_flush_blocking();
                    delivered.push(collect(&receiver, SPANS));
                    total += started.elapsed();
                }
                total
            });
        });
        report(name, &delivered);
        let _ = exporter.shutdown_blocking();
    }

    let provider = bare(&rt, &receiver);
    let mut delivered = Vec::new();
    group.bench_function("bare-otlp-defaults", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                produce(&provider);
                let _ = provider.force_flush();
                delivered.push(collect(&receiver, SPANS));
                total += started.elapsed();
            }
            total
        });
    });
    report("bare-otlp-defaults", &delivered);
    let _ = provider.shutdown();

    let noop = SdkTracerProvider::builder()
        .with_span_processor(Discard)
        .build();
    group.bench_function("noop-ceiling", |b| b.iter(|| produce(&noop)));
    group.finish();

    eprintln!(
        "size_of::<SpanData>() = {} bytes (plus its attribute vector); a full queue of N spans holds about N times that",
        std::mem::size_of::<SpanData>()
    );
}

fn report(name: &str, delivered: &[usize]) {
    if delivered.is_empty() {
        return;
    }
    let min = delivered.iter().min().copied().unwrap_or(0);
    let max = delivered.iter().max().copied().unwrap_or(0);
    eprintln!(
        "{name}: delivered {min}..={max} of {SPANS} spans per iteration over {} iterations (lost up to {})",
        delivered.len(),
        SPANS - min
    );
}

criterion_group!(benches, delivery);
criterion_main!(benches);

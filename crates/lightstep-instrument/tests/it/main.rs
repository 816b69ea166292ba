//! Integration tests: real axum and tonic servers on loopback, a real SQLite database, and
//! two-hop calls (client -> server -> database) that must come out as one trace.
//!
//! Spans are exported through the SDK's in-memory exporter, shared by the whole binary (the
//! global propagator and the global `tracing` subscriber are process-wide), and each test
//! reads back only the spans of its own trace.

mod grpc;
mod http;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry::{Value, global};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

use lightstep_instrument::LightstepTracing;

struct Telemetry {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
        let subscriber = tracing_subscriber::registry().with(lightstep_instrument::tracing_layer(
            provider.tracer("it-tracing"),
        ));
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        Telemetry { exporter, provider }
    })
}

/// The helpers, on the shared test provider.
fn instrumentation() -> LightstepTracing<SdkTracer> {
    LightstepTracing::from_provider(&telemetry().provider)
}

/// A plain tracer for the test's own root span.
fn test_tracer() -> SdkTracer {
    telemetry().provider.tracer("it")
}

/// Waits until `count` spans of `trace_id` have ended (servers end theirs on their own
/// tasks), then returns them. Fails, listing what it saw, if they never do.
async fn spans_of(trace_id: TraceId, count: usize) -> Vec<SpanData> {
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen = telemetry()
            .exporter
            .get_finished_spans()
            .expect("in-memory spans")
            .into_iter()
            .filter(|s| s.span_context.trace_id() == trace_id)
            .collect();
        if seen.len() >= count {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {count} spans of trace {trace_id}, saw {seen:#?}");
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span named {name:?} in {spans:#?}"))
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

fn parent_of(span: &SpanData) -> SpanId {
    span.parent_span_id
}

/// A real SQLite database in memory with one table.
fn database() -> Arc<Mutex<rusqlite::Connection>> {
    let conn = rusqlite::Connection::open_in_memory().expect("sqlite in memory");
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'grace');",
    )
    .expect("schema");
    Arc::new(Mutex::new(conn))
}

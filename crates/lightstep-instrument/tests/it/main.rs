//! Integration tests: real axum and tonic servers on loopback, a real SQLite database, and
//! two-hop calls (client -> server -> database) that must come out as one trace.
//!
//! Spans travel the way they do in production: a batch span processor hands them to the
//! OTLP/gRPC exporter, which sends them over a plaintext loopback connection to the embedded
//! receiver (`lightstep-receiver`); the tests read them back from the receiver's store. The
//! receiver, the exporter and the provider are shared by the whole binary (the global
//! propagator and the global `tracing` subscriber are process-wide anyway) and live on their
//! own runtime, so that no test's runtime owns them; each test reads only its own trace.

mod grpc;
mod http;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lightstep_receiver::proto::common::v1::any_value;
use lightstep_receiver::proto::trace::v1::SpanFlags;
use lightstep_receiver::proto::trace::v1::span::SpanKind;
use lightstep_receiver::proto::trace::v1::status::StatusCode;
use lightstep_receiver::{ReceivedSpan, Receiver, RunningReceiver};
use opentelemetry::global;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{TraceId, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;

use lightstep_instrument::LightstepTracing;

struct Telemetry {
    // Drives the receiver and the exporter's connection for the life of the test binary.
    _runtime: tokio::runtime::Runtime,
    receiver: RunningReceiver,
    provider: SdkTracerProvider,
}

fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    // Built on a plain thread: a test's own runtime may be the caller.
    TELEMETRY.get_or_init(|| {
        std::thread::spawn(start_telemetry)
            .join()
            .expect("telemetry set-up")
    })
}

fn start_telemetry() -> Telemetry {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("telemetry runtime");
    let receiver = runtime
        .block_on(Receiver::builder().start())
        .expect("embedded receiver");
    let exporter = {
        // The tonic exporter's channel lives on the runtime it is built in.
        let _entered = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.grpc_endpoint())
            .build()
            .expect("OTLP exporter")
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    let subscriber = tracing_subscriber::registry().with(lightstep_instrument::tracing_layer(
        provider.tracer("it-tracing"),
    ));
    tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    Telemetry {
        _runtime: runtime,
        receiver,
        provider,
    }
}

/// The helpers, on the shared provider.
fn instrumentation() -> LightstepTracing<SdkTracer> {
    LightstepTracing::from_provider(&telemetry().provider)
}

/// A plain tracer for the test's own root span.
fn test_tracer() -> SdkTracer {
    telemetry().provider.tracer("it")
}

/// Flushes the batch processor and waits until the receiver holds `count` spans of
/// `trace_id` (servers end their spans on their own tasks), then returns them. Fails, listing
/// what arrived, if they never do.
async fn spans_of(trace_id: TraceId, count: usize) -> Vec<ReceivedSpan> {
    let wanted = lightstep_receiver::TraceId(trace_id.to_bytes());
    let mut seen = Vec::new();
    for _ in 0..200 {
        // Never flush on an async worker thread: it blocks until the 5 s timeout there.
        let provider = telemetry().provider.clone();
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await
            .expect("flush task")
            .expect("flush");
        seen = telemetry()
            .receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id() == wanted)
            .collect();
        if seen.len() >= count {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {count} spans of trace {trace_id} at the receiver, saw {seen:#?}");
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("no span named {name:?} in {spans:#?}"))
}

fn with_kind<'a>(spans: &'a [ReceivedSpan], name: &str, kind: SpanKind) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name() == name && s.span().kind == kind as i32)
        .unwrap_or_else(|| panic!("no {kind:?} span named {name:?} in {spans:#?}"))
}

fn attr_str(span: &ReceivedSpan, key: &str) -> Option<String> {
    span.str_attribute(key).map(str::to_owned)
}

/// How many times the span carries `key` (the SDK appends a key set twice instead of
/// replacing it).
fn attr_count(span: &ReceivedSpan, key: &str) -> usize {
    span.span()
        .attributes
        .iter()
        .filter(|kv| kv.key == key)
        .count()
}

fn attr_int(span: &ReceivedSpan, key: &str) -> Option<i64> {
    match span.attribute(key) {
        Some(any_value::Value::IntValue(value)) => Some(*value),
        _ => None,
    }
}

fn kind(span: &ReceivedSpan) -> SpanKind {
    SpanKind::try_from(span.span().kind).unwrap_or(SpanKind::Unspecified)
}

/// The span's status code and message (`Unset` when absent).
fn status(span: &ReceivedSpan) -> (StatusCode, String) {
    match &span.span().status {
        Some(status) => (
            StatusCode::try_from(status.code).unwrap_or(StatusCode::Unset),
            status.message.clone(),
        ),
        None => (StatusCode::Unset, String::new()),
    }
}

fn is_child_of(child: &ReceivedSpan, parent: &ReceivedSpan) -> bool {
    child.parent_span_id() == Some(parent.span_id())
}

fn parent_is_remote(span: &ReceivedSpan) -> bool {
    span.span().flags & SpanFlags::ContextIsRemoteMask as u32 != 0
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

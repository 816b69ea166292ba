//! `init()` speaks: every configuration warning is a `tracing` event with target `lightstep`,
//! stays readable on the guard, and is not lost when the configuration fails. An environment
//! shared with other OpenTelemetry SDKs starts the pipeline, which delivers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightstep::config::EnvSnapshot;
use lightstep::opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use lightstep::opentelemetry::{Context, global};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt as _};

/// One captured event: target, level, message.
type Captured = (String, tracing::Level, String);

/// A layer that keeps every event it sees.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), *meta.level(), message));
    }
}

impl Capture {
    /// Runs `f` with this layer as the thread's subscriber, and returns the messages of the
    /// events with target `lightstep`, each checked to be a warning.
    fn lightstep_warnings<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<String>) {
        let subscriber = tracing_subscriber::registry().with(self.clone());
        let out = tracing::subscriber::with_default(subscriber, f);
        let events = self.0.lock().unwrap();
        let messages = events
            .iter()
            .filter(|(target, _, _)| target == "lightstep")
            .map(|(_, level, message)| {
                assert_eq!(*level, tracing::Level::WARN, "{message}");
                message.clone()
            })
            .collect();
        (out, messages)
    }
}

#[test]
fn init_logs_every_warning_keeps_them_on_the_guard_and_a_shared_environment_delivers() {
    let _turn = crate::GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    // What a namespace shared with Java and Python services on AWS may hold.
    let env = EnvSnapshot::empty()
        .with("OTEL_TRACES_SAMPLER", "jaeger_remote")
        .with(
            "OTEL_TRACES_SAMPLER_ARG",
            "endpoint=http://jaeger:14250,pollingIntervalMs=5000,initialSamplingRate=0.25",
        )
        .with("OTEL_TRACES_EXPORTER", "otlp,zipkin")
        .with("OTEL_PROPAGATORS", "xray,tracecontext")
        .with("OTEL_CONFIG_FILE", "/etc/otel/sdk.yaml")
        .with("LS_METRICS_ENABLED", "true")
        .with("LS_SERVCE_NAME", "checkout");
    let (guard, logged) = Capture::default().lightstep_warnings(|| {
        lightstep::builder()
            .with_env(env)
            .with_otlp_endpoint(receiver.grpc_endpoint())
            .with_service_name("shared-env")
            .init()
            .expect("a shared environment starts")
    });
    let kept: Vec<String> = guard.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(logged, kept, "every warning logged once, in order");
    for needle in [
        "`jaeger_remote`",
        "`zipkin`",
        "`OTEL_CONFIG_FILE`",
        "`LS_METRICS_ENABLED`",
        "did you mean `LS_SERVICE_NAME`?",
    ] {
        assert!(
            kept.iter().any(|w| w.contains(needle)),
            "{needle} in {kept:?}"
        );
    }

    // The global propagator speaks X-Ray and W3C, and the span reaches the receiver.
    let mut headers = std::collections::HashMap::new();
    global::tracer("shared").in_span("handle", |cx| {
        global::get_text_map_propagator(|p| p.inject_context(&cx, &mut headers));
        let trace_id = Context::current()
            .span()
            .span_context()
            .trace_id()
            .to_string();
        assert!(
            headers["x-amzn-trace-id"].contains(&trace_id[8..]),
            "{headers:?}"
        );
        assert!(headers["traceparent"].contains(&trace_id), "{headers:?}");
    });
    let stats = guard.shutdown_blocking().expect("delivered");
    assert_eq!(stats.exported, 1);
    let spans = runtime
        .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans[0].name(), "handle");
}

#[test]
fn warnings_are_logged_when_the_configuration_fails() {
    let _turn = crate::GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = EnvSnapshot::empty().with("LS_ACESS_TOKEN", "S3CRET-token-value");
    let (result, logged) =
        Capture::default().lightstep_warnings(|| lightstep::builder().with_env(env).init());
    let err = result.expect_err("Lightstep's ingest without a token");
    assert!(err.to_string().contains("no access token"), "{err}");
    assert!(
        logged.iter().any(
            |w| w.contains("`LS_ACESS_TOKEN`") && w.contains("did you mean `LS_ACCESS_TOKEN`?")
        ),
        "{logged:?}"
    );
    assert!(!logged.iter().any(|w| w.contains("S3CRET")), "{logged:?}");
}

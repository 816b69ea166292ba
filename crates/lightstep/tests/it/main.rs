//! The facade's one-call setup against the embedded receiver.

mod warnings;

use std::sync::Mutex;
use std::time::Duration;

use lightstep::config::EnvSnapshot;
use lightstep::opentelemetry::global;
use lightstep::opentelemetry::trace::Tracer;

/// Tests that install global state (the tracer provider, the subscriber) take turns.
pub(crate) static GLOBAL: Mutex<()> = Mutex::new(());

#[test]
fn init_installs_the_global_provider_and_the_guard_delivers() {
    let _turn = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let guard = lightstep::init_with(
        lightstep::builder()
            .with_env(EnvSnapshot::empty())
            .with_otlp_endpoint(receiver.grpc_endpoint())
            .with_service_name("facade-test"),
    )
    .expect("init");
    global::tracer("facade").in_span("through-the-global-provider", |_| {});
    let stats = guard.shutdown_blocking().expect("delivered");
    assert_eq!(stats.exported, 1);
    let spans = runtime
        .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans[0].name(), "through-the-global-provider");
    assert_eq!(spans[0].service_name(), Some("facade-test"));
}

#[test]
fn init_returns_configuration_errors() {
    let err = lightstep::init_with(lightstep::builder().with_env(EnvSnapshot::empty()))
        .expect_err("Lightstep's ingest without a token");
    assert!(
        matches!(err, lightstep::ExporterError::Config(_)),
        "{err:?}"
    );
    // `{err}` alone says what is wrong and where.
    assert!(err.to_string().contains("no access token"), "{err}");
}

/// `#[tracing::instrument]` spans join the pipeline through the subscriber `init_tracing`
/// installs. The only test here that sets the global subscriber, which can be set once.
#[cfg(feature = "tracing")]
#[test]
fn init_tracing_bridges_tracing_spans() {
    #[tracing::instrument]
    fn handle(order: u32) -> u32 {
        order * 2
    }

    let _turn = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let guard = lightstep::init_tracing(
        lightstep::builder()
            .with_env(EnvSnapshot::empty())
            .with_otlp_endpoint(receiver.grpc_endpoint())
            .with_service_name("bridge-test"),
    )
    .expect("init_tracing");
    assert_eq!(handle(21), 42);
    let stats = guard.shutdown_blocking().expect("delivered");
    assert_eq!(stats.exported, 1);
    let spans = runtime
        .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans[0].name(), "handle");
    // A second global subscriber is refused, as an error.
    let err = lightstep::init_tracing(
        lightstep::builder()
            .with_env(EnvSnapshot::empty())
            .with_otlp_endpoint(receiver.grpc_endpoint()),
    )
    .expect_err("already set");
    assert!(
        err.to_string()
            .contains("cannot install the tracing subscriber"),
        "{err}"
    );
}

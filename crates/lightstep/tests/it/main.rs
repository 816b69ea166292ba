//! The facade's one-call setup against the embedded receiver.

use std::time::Duration;

use lightstep::config::EnvSnapshot;
use lightstep::opentelemetry::global;
use lightstep::opentelemetry::trace::Tracer;

#[tokio::test]
async fn init_installs_the_global_provider_and_the_guard_delivers() {
    let receiver = lightstep_receiver::Receiver::builder()
        .start()
        .await
        .unwrap();
    let guard = lightstep::init_with(
        lightstep::builder()
            .with_env(EnvSnapshot::empty())
            .with_otlp_endpoint(receiver.grpc_endpoint())
            .with_service_name("facade-test"),
    )
    .expect("init");
    global::tracer("facade").in_span("through-the-global-provider", |_| {});
    let stats = guard.shutdown().await.expect("delivered");
    assert_eq!(stats.exported, 1);
    let spans = receiver
        .wait_for_spans(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(spans[0].name(), "through-the-global-provider");
    assert_eq!(spans[0].service_name(), Some("facade-test"));
}

#[test]
fn init_returns_configuration_errors() {
    let err = lightstep::init_with(lightstep::builder().with_env(EnvSnapshot::empty()))
        .expect_err("Lightstep's ingest without a token");
    assert!(err.to_string().contains("invalid configuration"), "{err}");
    let source = std::error::Error::source(&err).expect("the configuration error");
    assert!(source.to_string().contains("no access token"), "{source}");
}

//! Shutdown on every runtime flavour and outside any, the guard, load, and the environment trap.

use std::time::Duration;

use lightstep_config::{EnvSnapshot, LightstepConfig, Protocol};
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::Receiver;
use opentelemetry::trace::Tracer;

use crate::{TOKEN, config_for, exporter, receiver};

#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_loses_nothing() {
    let receiver = receiver().await;
    let exporter = exporter(config_for(&receiver.grpc_endpoint(), Protocol::Grpc));
    for i in 0..100 {
        exporter.tracer().in_span(format!("ct-{i}"), |_| {});
    }
    let stats = exporter.shutdown().await.expect("all delivered");
    assert_eq!(stats.exported, 100);
    assert_eq!(
        receiver
            .wait_for_spans(100, Duration::from_secs(10))
            .await
            .unwrap()
            .len(),
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_drop_inside_a_multi_thread_runtime_flushes() {
    let receiver = receiver().await;
    {
        let guard = exporter(config_for(&receiver.grpc_endpoint(), Protocol::Grpc)).into_guard();
        guard.tracer().in_span("guarded", |_| {});
    }
    assert_eq!(
        receiver
            .wait_for_spans(1, Duration::from_secs(10))
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The guard dropped on a current-thread runtime's only thread. The receiver runs on a runtime
/// of its own, as a real backend runs in another process.
#[test]
fn guard_drop_inside_a_current_thread_runtime_flushes() {
    let backend = tokio::runtime::Runtime::new().unwrap();
    let receiver = backend.block_on(receiver());
    let endpoint = receiver.grpc_endpoint();
    let app = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    app.block_on(async move {
        let guard = exporter(config_for(&endpoint, Protocol::Grpc)).into_guard();
        guard.tracer().in_span("guarded-ct", |_| {});
        drop(guard);
    });
    assert_eq!(
        backend
            .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn outside_any_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(receiver());
    // Built and shut down on a plain thread: no runtime needed by the application.
    let exporter = exporter(config_for(&receiver.grpc_endpoint(), Protocol::Grpc));
    exporter.tracer().in_span("plain", |_| {});
    let stats = exporter.shutdown_blocking().expect("delivered");
    assert_eq!(stats.exported, 1);
    assert!(matches!(
        exporter.shutdown_blocking(),
        Err(lightstep_exporter::ExporterError::AlreadyShutDown)
    ));
    let guard = LightstepExporter::new(
        config_for(&receiver.grpc_endpoint(), Protocol::Grpc)
            .build()
            .unwrap(),
    )
    .unwrap()
    .into_guard();
    guard.tracer().in_span("plain-guard", |_| {});
    drop(guard);
    assert_eq!(
        rt.block_on(receiver.wait_for_spans(2, Duration::from_secs(10)))
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_of_100k_spans_from_several_tasks_arrives_whole() {
    let receiver = receiver().await;
    let exporter = std::sync::Arc::new(exporter(
        config_for(&receiver.grpc_endpoint(), Protocol::Grpc)
            .with_max_queue_size(100_000)
            .with_max_export_batch_size(2_000)
            .with_max_concurrent_exports(4)
            .with_shutdown_timeout(Duration::from_secs(60)),
    ));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let exporter = std::sync::Arc::clone(&exporter);
        tasks.push(tokio::spawn(async move {
            let tracer = exporter.tracer();
            for i in 0..25_000 {
                tracer.in_span(format!("load-{t}-{i}"), |_| {});
                if i % 1_000 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = exporter.shutdown().await.expect("all 100,000 delivered");
    assert_eq!(
        (stats.ended, stats.exported, stats.dropped, stats.failed),
        (100_000, 100_000, 0, 0)
    );
    let spans = receiver
        .wait_for_spans(100_000, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(spans.len(), 100_000);
}

/// opentelemetry-otlp adds `OTEL_EXPORTER_OTLP_HEADERS` from the process environment on top of
/// the headers set in code. The pipeline must send what its configuration says: the token set
/// in code. The process environment can only be set for a child process (no `unsafe` here), so
/// this test runs itself again with the variable set.
#[test]
fn environment_headers_never_override_the_token_set_in_code() {
    const CHILD: &str = "LIGHTSTEP_TEST_CHILD_ENDPOINT";
    if let Some(endpoint) = EnvSnapshot::from_process().get(CHILD) {
        let config = LightstepConfig::builder()
            .with_env(EnvSnapshot::empty())
            .with_otlp_endpoint(endpoint)
            .with_access_token(TOKEN)
            .build()
            .unwrap();
        let exporter = LightstepExporter::new(config).unwrap();
        exporter.tracer().in_span("from-child", |_| {});
        exporter
            .shutdown_blocking()
            .expect("the code token is accepted");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt
        .block_on(Receiver::builder().with_access_token(TOKEN).start())
        .unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lifecycle::environment_headers_never_override_the_token_set_in_code",
            "--nocapture",
        ])
        .env(CHILD, receiver.grpc_endpoint())
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "lightstep-access-token=from-the-environment",
        )
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "lightstep-access-token=also-wrong",
        )
        .status()
        .unwrap();
    assert!(status.success(), "the child's export was refused");
    let spans = rt
        .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans[0].request().access_token(), Some(TOKEN));
    assert_eq!(receiver.stats().requests_unauthenticated, 0);
}

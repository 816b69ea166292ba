//! Failed exports reach the application: through the hook of
//! `PipelineBuilder::on_export_error`, and, with no hook and no `tracing` subscriber,
//! on stderr. Against the real receiver refusing the token or every request; never a secret
//! in what is reported.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightstep_config::{EnvSnapshot, Protocol};
use lightstep_exporter::{ExportFailure, FailureKind, Pipeline};
use opentelemetry::trace::Tracer as _;

use crate::{config_for, endpoint, receiver};

/// A token the receiver refuses, and a header value: neither may appear in a report.
const WRONG_TOKEN: &str = "wrong-token-S3CRET-1";
const HEADER_VALUE: &str = "header-value-S3CRET-2";

/// The hook of a pipeline, and what it received.
fn recording() -> (
    Arc<Mutex<Vec<ExportFailure>>>,
    impl Fn(&ExportFailure) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let seen = Arc::clone(&seen);
        move |failure: &ExportFailure| seen.lock().unwrap().push(failure.clone())
    };
    (seen, hook)
}

fn assert_no_secret(failure: &ExportFailure) {
    let shown = format!("{failure} {failure:?}");
    for secret in [WRONG_TOKEN, HEADER_VALUE, "S3CRET"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

/// A token the backend refuses: the hook hears of the failed export at once (before shutdown),
/// with the number of spans, a message saying why, and no secret.
#[tokio::test]
async fn the_hook_hears_of_a_refused_export_without_its_secrets() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = receiver().await;
        let config = config_for(&endpoint(&receiver, protocol), protocol)
            .with_access_token(WRONG_TOKEN)
            .with_header("x-team", HEADER_VALUE)
            // One export, of all three spans, made by the flush.
            .with_scheduled_delay(Duration::from_secs(3600))
            .build()
            .unwrap();
        let (seen, hook) = recording();
        let exporter = Pipeline::builder(config)
            .on_export_error(hook)
            .build()
            .unwrap();
        let tracer = exporter.tracer();
        for i in 0..3 {
            tracer.in_span(format!("refused-{i}"), |_| {});
        }
        exporter.force_flush().await.expect_err("refused");
        let failures = seen.lock().unwrap().clone();
        assert_eq!(failures.len(), 1, "{protocol:?}: {failures:?}");
        let failure = &failures[0];
        assert_eq!(failure.kind, FailureKind::Failed, "{protocol:?}: {failure}");
        assert_eq!((failure.spans, failure.total), (3, 3), "{protocol:?}");
        let message = failure.message.to_lowercase();
        assert!(
            message.contains("unauthenticated") || message.contains("401"),
            "{protocol:?}: says why: {failure}"
        );
        assert!(
            failure.to_string().starts_with("export of 3 spans failed"),
            "{failure}"
        );
        assert_no_secret(failure);
        assert_eq!(receiver.stats().requests_unauthenticated, 1, "{protocol:?}");
        // Shut down explicitly: the caller gets the error, the hook hears nothing more.
        exporter.shutdown().await.expect_err("undelivered");
        assert_eq!(seen.lock().unwrap().len(), 1, "{protocol:?}");
    }
}

/// A receiver that answers every request `UNAVAILABLE`: the spans go back to the queue and the
/// hook hears that the export failed and will be sent again; once the receiver accepts, they
/// are delivered.
#[tokio::test]
async fn the_hook_hears_of_an_export_to_be_retried() {
    let receiver = receiver().await;
    receiver.faults().fail_next_requests(u64::MAX);
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_timeout(Duration::from_millis(300))
        .with_export_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let (seen, hook) = recording();
    let exporter = Pipeline::builder(config)
        .on_export_error(hook)
        .build()
        .unwrap();
    exporter.tracer().in_span("retried", |_| {});
    // Well past one export timeout: the first export has given up by then.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failures = seen.lock().unwrap().clone();
    assert!(!failures.is_empty(), "no report in 30 s");
    assert_eq!(
        failures[0].kind,
        FailureKind::Retrying { dropped: 0 },
        "{failures:?}"
    );
    assert_eq!(failures[0].spans, 1);
    assert!(
        failures[0].to_string().contains("to be sent again"),
        "{}",
        failures[0]
    );
    receiver.faults().fail_next_requests(0);
    let stats = exporter.shutdown().await.expect("delivered once accepted");
    assert_eq!(stats.exported, 1);
}

/// With no hook and no `tracing` subscriber (a child process of this test binary, which
/// installs none), a refused export and the guard's failed shutdown on drop each print one
/// line on stderr, without the token or the header value. With a hook, stderr stays quiet.
#[test]
fn without_a_hook_or_a_subscriber_failures_reach_stderr() {
    const CHILD: &str = "LIGHTSTEP_TEST_CHILD_STDERR_ENDPOINT";
    const HOOKED: &str = "LIGHTSTEP_TEST_CHILD_STDERR_HOOKED";
    let env = EnvSnapshot::from_process();
    if let Some(endpoint) = env.get(CHILD) {
        let config = config_for(endpoint, Protocol::Grpc)
            .with_access_token(WRONG_TOKEN)
            .with_header("x-team", HEADER_VALUE)
            .build()
            .unwrap();
        let mut builder = Pipeline::builder(config);
        if env.get(HOOKED).is_some() {
            builder = builder.on_export_error(|_| {});
        }
        let guard = builder.build().unwrap().into_guard();
        guard.tracer().in_span("refused", |_| {});
        drop(guard);
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(receiver());
    let run = |hooked: bool| {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "failures::without_a_hook_or_a_subscriber_failures_reach_stderr",
                "--nocapture",
            ])
            .env(CHILD, receiver.grpc_endpoint());
        if hooked {
            child.env(HOOKED, "1");
        }
        let output = child.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        stderr
            .lines()
            .filter(|l| l.starts_with("lightstep-rs: "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let lines = run(false);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("lightstep-rs: export of 1 spans failed"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("lightstep-rs: shutdown on drop: 1 of 1 spans were not delivered"),
        "{lines:?}"
    );
    for line in &lines {
        assert!(!line.contains("S3CRET"), "{line}");
    }
    assert_eq!(run(true), Vec::<String>::new());
    assert_eq!(receiver.stats().requests_unauthenticated, 2);
}

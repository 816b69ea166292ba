//! Backend down, refusing, slow, restarted: the application is never blocked, shutdown keeps its
//! deadline, the counts are exact, and delivery resumes when the backend is back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lightstep_config::Protocol;
use lightstep_exporter::ExporterError;
use lightstep_receiver::Receiver;
use opentelemetry::trace::Tracer;

use crate::{TOKEN, config_for, exporter, receiver};

/// An address nothing listens on: bound, then released.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Deadlines are properties, not speed targets; this slack only absorbs a loaded machine.
const SLACK: Duration = Duration::from_secs(3);

#[tokio::test]
async fn backend_down_shutdown_keeps_its_deadline_and_counts_every_span() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let addr = closed_port();
        let url = if protocol.is_http() {
            format!("http://{addr}/v1/traces")
        } else {
            format!("http://{addr}")
        };
        let deadline = Duration::from_secs(2);
        let exporter = exporter(
            config_for(&url, protocol)
                .with_timeout(Duration::from_millis(500))
                .with_shutdown_timeout(deadline),
        );
        for i in 0..25 {
            exporter.tracer().in_span(format!("lost-{i}"), |_| {});
        }
        let started = Instant::now();
        let err = exporter
            .shutdown()
            .await
            .expect_err("nothing can be delivered");
        assert!(
            started.elapsed() < deadline + SLACK,
            "{protocol:?}: took {:?}",
            started.elapsed()
        );
        let stats = exporter.stats();
        assert_eq!(stats.ended, 25);
        assert_eq!(stats.exported, 0);
        assert_eq!(
            stats.dropped + stats.failed + stats.pending(),
            25,
            "{stats:?}"
        );
        assert!(
            matches!(
                err,
                ExporterError::Undelivered { .. } | ExporterError::Deadline { .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("25"), "{err}");
    }
}

#[tokio::test]
async fn unavailable_then_recovered() {
    let receiver = receiver().await;
    let exporter = exporter(config_for(&receiver.grpc_endpoint(), Protocol::Grpc));
    // Enough refusals to outlast the exporter's own retries.
    receiver.faults().fail_next_requests(1_000);
    for i in 0..10 {
        exporter.tracer().in_span(format!("refused-{i}"), |_| {});
    }
    let err = exporter
        .force_flush()
        .await
        .expect_err("the backend refuses");
    assert!(
        matches!(err, ExporterError::Undelivered { failed: 10, .. }),
        "{err}"
    );
    assert_eq!(exporter.stats().failed, 10);
    assert!(receiver.spans().is_empty());

    receiver.faults().fail_next_requests(0);
    for i in 0..5 {
        exporter.tracer().in_span(format!("delivered-{i}"), |_| {});
    }
    exporter
        .force_flush()
        .await
        .expect("delivered once the backend is back");
    let spans = receiver
        .wait_for_spans(5, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(spans.len(), 5);
    let stats = exporter.stats();
    assert_eq!((stats.exported, stats.failed, stats.dropped), (5, 10, 0));
}

#[tokio::test]
async fn slow_backend_never_blocks_the_application() {
    let receiver = receiver().await;
    receiver
        .faults()
        .set_response_delay(Duration::from_secs(30));
    let exporter = exporter(
        config_for(&receiver.grpc_endpoint(), Protocol::Grpc)
            .with_timeout(Duration::from_millis(300))
            .with_export_timeout(Duration::from_millis(600))
            .with_max_queue_size(100)
            .with_max_export_batch_size(10)
            .with_shutdown_timeout(Duration::from_secs(2)),
    );
    // 1,000 spans end while no export can finish: ending never waits for the backend, and
    // what does not fit in the queue is counted as dropped.
    for i in 0..1_000 {
        exporter.tracer().in_span(format!("s{i}"), |_| {});
    }
    let during = exporter.stats();
    assert_eq!(during.ended, 1_000);
    assert_eq!(during.exported, 0);
    assert!(during.dropped >= 1_000 - 100 - 10 * 2, "{during:?}");

    let started = Instant::now();
    let err = exporter
        .shutdown()
        .await
        .expect_err("the backend is too slow");
    assert!(
        started.elapsed() < Duration::from_secs(2) + SLACK,
        "took {:?}",
        started.elapsed()
    );
    let after = exporter.stats();
    assert_eq!(
        after.exported + after.dropped + after.failed + after.pending(),
        1_000,
        "{after:?}"
    );
    assert!(
        err.to_string()
            .contains("dropped because the queue was full")
            || matches!(err, ExporterError::Deadline { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn receiver_stops_mid_run_and_comes_back() {
    let first = receiver().await;
    let addr = first.grpc_addr();
    let exporter = exporter(
        config_for(&first.grpc_endpoint(), Protocol::Grpc).with_timeout(Duration::from_millis(500)),
    );
    exporter.tracer().in_span("before", |_| {});
    exporter.force_flush().await.expect("delivered");
    assert_eq!(
        first
            .wait_for_spans(1, Duration::from_secs(10))
            .await
            .unwrap()
            .len(),
        1
    );
    first.shutdown().await;

    exporter.tracer().in_span("while-down", |_| {});
    let err = exporter
        .force_flush()
        .await
        .expect_err("the receiver is gone");
    assert!(
        matches!(err, ExporterError::Undelivered { failed: 1, .. }),
        "{err}"
    );

    let second = Receiver::builder()
        .with_access_token(TOKEN)
        .with_grpc_addr(addr)
        .start()
        .await
        .expect("the same port again");
    // The channel reconnects by itself; give it a few rounds.
    let mut delivered = false;
    for i in 0..20 {
        exporter.tracer().in_span(format!("after-{i}"), |_| {});
        if exporter.force_flush().await.is_ok() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        delivered,
        "spans flow again once the receiver is back: {:?}",
        exporter.stats()
    );
    assert!(
        !second
            .wait_for_spans(1, Duration::from_secs(10))
            .await
            .unwrap()
            .is_empty()
    );
}

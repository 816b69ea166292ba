//! What the exporter sends and how it reads the answer: OTLP partial success counted as failed,
//! the backend's message cleaned of secrets, and compression decided by the configuration alone.

use std::io::Write;
use std::time::Duration;

use lightstep_config::{Compression, EnvSnapshot, LightstepConfig, Protocol};
use lightstep_exporter::{ExporterError, LightstepExporter};
use lightstep_receiver::{Receiver, WhenFull};
use opentelemetry::trace::Tracer;

use crate::{TOKEN, config_for, endpoint, exporter};

/// A receiver that holds 3 spans refuses the rest through OTLP partial success: those spans are
/// failed, not exported, over every protocol.
#[tokio::test]
async fn partial_success_counts_the_rejected_spans_as_failed() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
        let receiver = Receiver::builder()
            .with_access_token(TOKEN)
            .with_max_spans(3)
            .with_full_policy(WhenFull::RejectNew)
            .start()
            .await
            .unwrap();
        let exporter = exporter(config_for(&endpoint(&receiver, protocol), protocol));
        for i in 0..5 {
            exporter.tracer().in_span(format!("partial-{i}"), |_| {});
        }
        let err = exporter
            .shutdown()
            .await
            .expect_err("two spans were rejected");
        let stats = exporter.stats();
        assert_eq!(
            (stats.ended, stats.exported, stats.failed, stats.dropped),
            (5, 3, 2, 0),
            "{protocol:?}: {stats:?}"
        );
        assert!(
            matches!(
                err,
                ExporterError::Undelivered {
                    undelivered: 2,
                    failed: 2,
                    ..
                }
            ),
            "{protocol:?}: {err}"
        );
        let last = stats.last_error.unwrap_or_default();
        assert!(last.contains("the backend rejected 2 of"), "{last}");
        assert_eq!(receiver.stats().spans_rejected_full, 2);
        assert_eq!(receiver.spans().len(), 3);
        receiver.shutdown().await;
    }
}

/// A backend may echo what it was sent: its message reaches the counters and logs without the
/// token, without control characters and capped in length.
#[tokio::test]
async fn the_backends_message_is_cleaned_of_the_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let Ok(mut stream) = stream else { break };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            crate::read_http1_request(&mut stream);
            let body = format!(
                r#"{{"partialSuccess":{{"rejectedSpans":"1","errorMessage":"token {TOKEN} is over quota\n{}"}}}}"#,
                "x".repeat(1000)
            );
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let exporter = exporter(config_for(
        &format!("http://{addr}/v1/traces"),
        Protocol::HttpJson,
    ));
    exporter.tracer().in_span("echoed", |_| {});
    let err = exporter
        .shutdown()
        .await
        .expect_err("the span was rejected");
    let stats = exporter.stats();
    assert_eq!((stats.exported, stats.failed), (0, 1), "{stats:?}");
    let last = stats.last_error.unwrap_or_default();
    assert!(last.contains("the backend rejected 1 of 1 spans"), "{last}");
    assert!(last.contains("token [REDACTED] is over quota"), "{last}");
    assert!(!last.contains(TOKEN), "{last}");
    assert!(!last.contains('\n'), "{last}");
    assert!(last.len() < 500, "{} bytes", last.len());
    assert!(!err.to_string().contains(TOKEN), "{err}");
}

#[tokio::test]
async fn gzip_in_the_configuration_is_sent_over_grpc_and_http() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = crate::receiver().await;
        let exporter = exporter(
            config_for(&endpoint(&receiver, protocol), protocol)
                .with_compression(Compression::Gzip),
        );
        exporter.tracer().in_span("zipped", |_| {});
        exporter.shutdown().await.expect("delivered");
        let spans = receiver
            .wait_for_spans(1, Duration::from_secs(10))
            .await
            .unwrap();
        let header = if protocol.is_http() {
            "content-encoding"
        } else {
            "grpc-encoding"
        };
        assert_eq!(
            spans[0].request().header(header),
            Some("gzip"),
            "{protocol:?}"
        );
        receiver.shutdown().await;
    }
}

/// opentelemetry-otlp read `OTEL_EXPORTER_OTLP_COMPRESSION` itself, so "none" set in code lost
/// to `gzip` in the environment. Now the configuration (code beats environment) is the only
/// word. The process environment can only be set for a child process (no `unsafe` here), so
/// this test runs itself again with the variables set.
#[test]
fn compression_none_in_code_beats_gzip_in_the_environment() {
    const GRPC: &str = "LIGHTSTEP_TEST_CHILD_GRPC_ENDPOINT";
    const HTTP: &str = "LIGHTSTEP_TEST_CHILD_HTTP_URL";
    let env = EnvSnapshot::from_process();
    if let (Some(grpc), Some(http)) = (env.get(GRPC), env.get(HTTP)) {
        for (protocol, url) in [(Protocol::Grpc, grpc), (Protocol::HttpProtobuf, http)] {
            let builder = LightstepConfig::builder()
                .with_env(EnvSnapshot::from_process())
                .with_protocol(protocol)
                .with_access_token(TOKEN)
                .with_compression(Compression::None);
            let builder = if protocol.is_http() {
                builder.with_traces_endpoint(url)
            } else {
                builder.with_otlp_endpoint(url)
            };
            let config = builder.build().unwrap();
            assert_eq!(config.compression(), Compression::None);
            let exporter = LightstepExporter::new(config).unwrap();
            exporter
                .tracer()
                .in_span(format!("from-child-{protocol:?}"), |_| {});
            exporter.shutdown_blocking().expect("delivered");
        }
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt
        .block_on(Receiver::builder().with_access_token(TOKEN).start())
        .unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "otlp::compression_none_in_code_beats_gzip_in_the_environment",
            "--nocapture",
        ])
        .env(GRPC, receiver.grpc_endpoint())
        .env(HTTP, receiver.http_traces_url())
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        .env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
        .status()
        .unwrap();
    assert!(status.success(), "the child failed");
    let spans = rt
        .block_on(receiver.wait_for_spans(2, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_eq!(
            span.request().header("grpc-encoding"),
            None,
            "{}",
            span.name()
        );
        assert_eq!(
            span.request().header("content-encoding"),
            None,
            "{}",
            span.name()
        );
    }
}

//! Spans arrive with the right Resource, attributes, parent/child ids and headers.

use std::time::Duration;

use lightstep_config::Protocol;
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::Receiver;
use lightstep_receiver::proto::common::v1::any_value::Value;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer};

use crate::{TOKEN, TestPki, config_for, endpoint, exporter, receiver};

fn str_value(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// Makes a parent with a child, shuts down, and checks everything the receiver got.
async fn deliver_and_check(
    exporter: LightstepExporter,
    receiver: &lightstep_receiver::RunningReceiver,
) {
    let tracer = exporter.tracer();
    tracer.in_span("parent", |cx| {
        cx.span().set_attribute(KeyValue::new("order.id", "A-17"));
        tracer.in_span("child", |_| {});
    });
    let stats = exporter.shutdown().await.expect("everything delivered");
    assert_eq!(
        (stats.ended, stats.exported, stats.dropped, stats.failed),
        (2, 2, 0, 0)
    );

    let spans = receiver
        .wait_for_spans(2, Duration::from_secs(10))
        .await
        .expect("spans arrive");
    let parent = spans.iter().find(|s| s.name() == "parent").expect("parent");
    let child = spans.iter().find(|s| s.name() == "child").expect("child");
    assert_eq!(child.trace_id(), parent.trace_id());
    assert_eq!(child.parent_span_id(), Some(parent.span_id()));
    assert_eq!(parent.parent_span_id(), None);
    assert_eq!(parent.str_attribute("order.id"), Some("A-17"));
    for (key, value) in [
        ("service.name", "exporter-test"),
        ("service.version", "9.8.7"),
        ("telemetry.sdk.language", "rust"),
        ("telemetry.distro.name", "lightstep-rs"),
        ("deployment.environment.name", "test"),
        ("team", "core"),
    ] {
        assert_eq!(
            str_value(parent.resource_attribute(key)),
            Some(value),
            "{key}"
        );
    }
    assert!(parent.resource_attribute("host.name").is_some());
    assert_eq!(parent.request().access_token(), Some(TOKEN));
    assert_eq!(parent.request().header("x-tenant"), Some("acme"));
}

#[tokio::test]
async fn grpc_plaintext_to_loopback() {
    let receiver = receiver().await;
    let exporter = exporter(
        config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
            .with_deployment_environment("test")
            .with_resource_attribute("team", "core")
            .with_header("x-tenant", "acme"),
    );
    deliver_and_check(exporter, &receiver).await;
}

#[tokio::test]
async fn http_protobuf_and_json() {
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        let receiver = receiver().await;
        let exporter = exporter(
            config_for(&endpoint(&receiver, protocol), protocol)
                .with_deployment_environment("test")
                .with_resource_attribute("team", "core")
                .with_header("x-tenant", "acme")
                .with_compression(lightstep_config::Compression::Gzip),
        );
        deliver_and_check(exporter, &receiver).await;
        receiver.shutdown().await;
    }
}

#[tokio::test]
async fn tls_with_a_test_ca_over_grpc_and_http() {
    let pki = TestPki::new();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = Receiver::builder()
            .with_access_token(TOKEN)
            .with_tls(pki.server_cert.clone(), pki.server_key.clone())
            .start()
            .await
            .unwrap();
        let url = endpoint(&receiver, protocol);
        assert!(url.starts_with("https://"), "{url}");
        let exporter = exporter(
            config_for(&url, protocol)
                .with_ca_file(pki.ca_file())
                .with_deployment_environment("test")
                .with_resource_attribute("team", "core")
                .with_header("x-tenant", "acme"),
        );
        deliver_and_check(exporter, &receiver).await;
        receiver.shutdown().await;
    }
}

/// Mutual TLS: a receiver that requires a client certificate from the test CA gets the spans
/// of an exporter configured with one (its certificate and key files), over gRPC and
/// HTTP/protobuf; without the client identity the handshake is refused, the export fails and
/// its span is counted as failed.
#[tokio::test]
async fn mutual_tls_with_a_client_certificate_over_grpc_and_http() {
    let pki = TestPki::new();
    let (client_cert, client_key) = pki.client_identity();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = Receiver::builder()
            .with_access_token(TOKEN)
            .with_tls(pki.server_cert.clone(), pki.server_key.clone())
            .with_client_ca(pki.ca_pem.clone())
            .start()
            .await
            .unwrap();
        let url = endpoint(&receiver, protocol);

        let anonymous = exporter(config_for(&url, protocol).with_ca_file(pki.ca_file()));
        anonymous.tracer().in_span("anonymous", |_| {});
        let err = anonymous
            .shutdown()
            .await
            .expect_err("the receiver requires a client certificate");
        assert!(
            matches!(
                err,
                lightstep_exporter::ExporterError::Undelivered {
                    ended: 1,
                    undelivered: 1,
                    dropped: 0,
                    failed: 1,
                    ..
                }
            ),
            "{protocol:?}: {err}"
        );
        let stats = anonymous.stats();
        assert_eq!(
            (stats.ended, stats.exported, stats.dropped, stats.failed),
            (1, 0, 0, 1),
            "{protocol:?}: {stats:?}"
        );
        assert!(receiver.spans().is_empty(), "{protocol:?}");

        let identified = exporter(
            config_for(&url, protocol)
                .with_ca_file(pki.ca_file())
                .with_client_identity(&client_cert, &client_key),
        );
        identified.tracer().in_span("identified", |_| {});
        let stats = identified
            .shutdown()
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: delivered with a client certificate: {e}"));
        assert_eq!(
            (stats.ended, stats.exported, stats.dropped, stats.failed),
            (1, 1, 0, 0),
            "{protocol:?}"
        );
        let spans = receiver
            .wait_for_spans(1, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(spans.len(), 1, "{protocol:?}");
        assert_eq!(spans[0].name(), "identified");
        assert!(spans[0].request().tls);
        assert_eq!(spans[0].request().access_token(), Some(TOKEN));
        receiver.shutdown().await;
    }
}

/// The CA, client certificate and key are read once, by the configuration (bounded, a regular
/// file): the pipeline's TLS is built from those bytes, so files removed (or rotated) after
/// the configuration was built change nothing, over gRPC and HTTP.
#[tokio::test]
async fn tls_is_built_from_the_files_the_configuration_read() {
    let pki = TestPki::new();
    let (client_cert, client_key) = pki.client_identity();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = Receiver::builder()
            .with_access_token(TOKEN)
            .with_tls(pki.server_cert.clone(), pki.server_key.clone())
            .with_client_ca(pki.ca_pem.clone())
            .start()
            .await
            .unwrap();
        let url = endpoint(&receiver, protocol);
        let config = config_for(&url, protocol)
            .with_ca_file(pki.ca_file())
            .with_client_identity(&client_cert, &client_key)
            .build()
            .expect("the files are read here");
        let moved = pki.dir.path().join("moved");
        std::fs::create_dir_all(&moved).unwrap();
        for file in [pki.ca_file(), client_cert.clone(), client_key.clone()] {
            std::fs::rename(&file, moved.join(file.file_name().unwrap())).unwrap();
        }
        let exporter = LightstepExporter::new(config).expect("built without the files");
        exporter.tracer().in_span("from-the-bytes", |_| {});
        let stats = exporter
            .shutdown()
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert_eq!((stats.exported, stats.failed), (1, 0), "{protocol:?}");
        let spans = receiver
            .wait_for_spans(1, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(spans[0].request().tls, "{protocol:?}");
        for file in [pki.ca_file(), client_cert.clone(), client_key.clone()] {
            std::fs::rename(moved.join(file.file_name().unwrap()), &file).unwrap();
        }
        receiver.shutdown().await;
    }
}

#[tokio::test]
async fn tls_without_the_ca_fails_and_says_so() {
    let pki = TestPki::new();
    let receiver = Receiver::builder()
        .with_tls(pki.server_cert.clone(), pki.server_key.clone())
        .start()
        .await
        .unwrap();
    let exporter = exporter(config_for(&receiver.grpc_endpoint(), Protocol::Grpc));
    exporter.tracer().in_span("untrusted", |_| {});
    let err = exporter
        .shutdown()
        .await
        .expect_err("the server's certificate is not trusted");
    let text = err.to_string();
    assert!(text.contains("1 of 1 spans were not delivered"), "{text}");
    assert_eq!(receiver.spans().len(), 0);
}

#[tokio::test]
async fn a_wrong_token_is_reported_as_undelivered() {
    let receiver = receiver().await;
    let exporter = exporter(
        config_for(&receiver.grpc_endpoint(), Protocol::Grpc).with_access_token("wrong-token"),
    );
    exporter.tracer().in_span("refused", |_| {});
    let err = exporter.shutdown().await.expect_err("refused");
    assert!(
        matches!(
            err,
            lightstep_exporter::ExporterError::Undelivered { failed: 1, .. }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-token"), "{err}");
    assert_eq!(receiver.stats().requests_unauthenticated, 1);
}

#[tokio::test]
async fn sampling_limits_and_disabled_sdk() {
    let receiver = receiver().await;
    let exporter = exporter(
        config_for(&receiver.grpc_endpoint(), Protocol::Grpc)
            .with_sampler(lightstep_config::Sampler::AlwaysOff),
    );
    exporter.tracer().in_span("unsampled", |_| {});
    let stats = exporter.shutdown().await.unwrap();
    assert_eq!(stats.ended, 0);

    // OTEL_SDK_DISABLED: a working no-op pipeline, even with no backend at all.
    let config = lightstep_config::LightstepConfig::builder()
        .with_env(lightstep_config::EnvSnapshot::empty().with("OTEL_SDK_DISABLED", "true"))
        .build()
        .unwrap();
    let exporter = LightstepExporter::new(config).unwrap();
    let mut span = exporter.tracer().start("nothing");
    span.end();
    assert_eq!(exporter.force_flush().await.ok(), Some(()));
    assert_eq!(exporter.shutdown().await.unwrap().ended, 0);

    // The attribute value length limit, which the SDK itself does not apply.
    let receiver2 = receiver_with_limits().await;
    let exporter = exporter_with_limit(&receiver2);
    exporter.tracer().in_span("long", |cx| {
        cx.span()
            .set_attribute(KeyValue::new("blob", "x".repeat(100)));
        cx.span().add_event(
            "with a long attribute",
            vec![KeyValue::new("stack", "y".repeat(100))],
        );
    });
    exporter.shutdown().await.unwrap();
    let spans = receiver2
        .wait_for_spans(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(spans[0].str_attribute("blob").map(str::len), Some(10));
    let event = &spans[0].span().events[0];
    match event.attributes[0]
        .value
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Value::StringValue(s)) => {
            assert_eq!(s.len(), 10, "event attributes are truncated too")
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn receiver_with_limits() -> lightstep_receiver::RunningReceiver {
    receiver().await
}

fn exporter_with_limit(receiver: &lightstep_receiver::RunningReceiver) -> LightstepExporter {
    let mut limits = lightstep_config::SpanLimits::default();
    limits.attribute_value_length = Some(10);
    exporter(config_for(&receiver.grpc_endpoint(), Protocol::Grpc).with_span_limits(limits))
}

/// A backend that answers with a redirect must not get the token sent on to the new host: OTLP
/// has no redirects, and reqwest would keep our custom header across hosts.
#[tokio::test]
async fn http_redirects_are_not_followed_with_the_token() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let elsewhere_addr = elsewhere.local_addr().unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirector_addr = redirector.local_addr().unwrap();
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let served_in_thread = std::sync::Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in redirector.incoming().take(4) {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{elsewhere_addr}/v1/traces\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes());
            served_in_thread.fetch_add(1, Ordering::SeqCst);
        }
    });
    let exporter = exporter(
        config_for(
            &format!("http://{redirector_addr}/v1/traces"),
            Protocol::HttpProtobuf,
        )
        .with_timeout(std::time::Duration::from_secs(1)),
    );
    exporter.tracer().in_span("redirected", |_| {});
    let err = exporter
        .shutdown()
        .await
        .expect_err("a redirect is a failed export");
    assert!(
        err.to_string().contains("1 of 1 spans were not delivered"),
        "{err}"
    );
    assert!(served.load(Ordering::SeqCst) >= 1);
    assert!(
        elsewhere.accept().is_err(),
        "the redirect target was contacted (with the token)"
    );
}

/// Over gRPC, each export allowed in flight has a connection of its own, so that exports in
/// flight do not share one HTTP/2 connection's flow-control window.
#[tokio::test]
async fn grpc_exports_in_flight_each_have_a_connection() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A backend that accepts connections and never answers: the exports stay in flight.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(conn);
        }
    });
    let config = config_for(&format!("http://{addr}"), Protocol::Grpc)
        .with_max_concurrent_exports(4)
        .with_max_export_batch_size(1)
        .with_scheduled_delay(Duration::from_millis(10))
        // Nothing times out, so nothing is retried, while the connections are counted.
        .with_timeout(Duration::from_secs(30))
        .with_export_timeout(Duration::from_secs(30))
        .with_shutdown_timeout(Duration::from_millis(200))
        .build()
        .expect("config");
    let exporter = LightstepExporter::new(config).expect("exporter");
    for _ in 0..8 {
        exporter.tracer().in_span("in flight", |_| {});
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while accepted.load(Ordering::SeqCst) < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A little longer: a fifth connection would show now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    let _ = exporter.shutdown().await;
}

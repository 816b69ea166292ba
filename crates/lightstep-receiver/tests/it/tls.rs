//! TLS with a CA and server certificate generated for the test run.

use lightstep_receiver::{Error, Receiver};
use prost::Message as _;

use crate::common::*;

#[tokio::test]
async fn grpc_and_http_over_tls_with_a_test_ca() {
    let pki = TestPki::new();
    let rx = Receiver::builder()
        .with_tls(pki.server_cert_pem.clone(), pki.server_key_pem.clone())
        .with_access_token("tls-token")
        .start()
        .await
        .expect("start");
    assert!(rx.is_tls());
    assert!(rx.grpc_endpoint().starts_with("https://127.0.0.1:"));
    assert!(rx.http_traces_url().starts_with("https://127.0.0.1:"));

    let channel = grpc_channel(&rx.grpc_endpoint(), Some(pki.tonic_tls())).await;
    grpc_export_on(
        channel,
        request("tls-grpc", three_span_trace(1)),
        &[("lightstep-access-token", "tls-token")],
        true,
    )
    .await
    .expect("export over TLS");

    let resp = http1(
        rx.http_addr(),
        http::Method::POST,
        "/v1/traces",
        &[
            ("content-type", "application/x-protobuf"),
            ("lightstep-access-token", "tls-token"),
        ],
        request("tls-http", three_span_trace(2)).encode_to_vec(),
        Some(rustls_client(&pki.ca_pem, b"http/1.1")),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");

    let spans = rx.wait_for_spans(6, HANG_GUARD).await.expect("spans");
    assert!(spans.iter().all(|s| s.request().tls));
    assert_eq!(spans[0].service_name(), Some("tls-grpc"));
    assert_eq!(spans[3].service_name(), Some("tls-http"));
    assert!(
        spans
            .iter()
            .all(|s| s.request().access_token() == Some("tls-token"))
    );
    rx.shutdown().await;
}

#[tokio::test]
async fn plaintext_and_untrusting_clients_are_refused_by_a_tls_receiver() {
    let pki = TestPki::new();
    let rx = Receiver::builder()
        .with_tls(pki.server_cert_pem.clone(), pki.server_key_pem.clone())
        .start()
        .await
        .expect("start");
    // A plaintext gRPC client: the connection fails, nothing is stored.
    let plain = rx.grpc_endpoint().replace("https://", "http://");
    let channel = tonic::transport::Channel::from_shared(plain)
        .expect("endpoint")
        .connect_lazy();
    let err = grpc_export_on(channel, request("s", three_span_trace(1)), &[], false)
        .await
        .expect_err("plaintext to TLS");
    assert_ne!(err.code(), tonic::Code::Ok);

    // A client trusting another CA fails the handshake.
    let other = TestPki::new();
    let channel = tonic::transport::Channel::from_shared(rx.grpc_endpoint())
        .expect("endpoint")
        .tls_config(other.tonic_tls())
        .expect("tls")
        .connect_lazy();
    let err = grpc_export_on(channel, request("s", three_span_trace(1)), &[], false)
        .await
        .expect_err("untrusted server certificate");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(rx.spans().is_empty());
    rx.shutdown().await;
}

#[tokio::test]
async fn client_certificates_can_be_required() {
    let pki = TestPki::new();
    let rx = Receiver::builder()
        .with_tls(pki.server_cert_pem.clone(), pki.server_key_pem.clone())
        .with_client_ca(pki.ca_pem.clone())
        .start()
        .await
        .expect("start");
    let channel = tonic::transport::Channel::from_shared(rx.grpc_endpoint())
        .expect("endpoint")
        .tls_config(pki.tonic_tls())
        .expect("tls")
        .connect_lazy();
    grpc_export_on(channel, request("s", three_span_trace(1)), &[], false)
        .await
        .expect_err("no client certificate");
    assert!(rx.spans().is_empty());

    let channel = grpc_channel(&rx.grpc_endpoint(), Some(pki.tonic_tls_with_client_cert())).await;
    grpc_export_on(channel, request("s", three_span_trace(1)), &[], false)
        .await
        .expect("with a client certificate");
    assert_eq!(rx.spans().len(), 3);
    rx.shutdown().await;
}

#[tokio::test]
async fn unusable_pem_is_a_tls_error() {
    let pki = TestPki::new();
    let err = Receiver::builder()
        .with_tls("not a pem", pki.server_key_pem.clone())
        .start()
        .await
        .expect_err("bad cert");
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    let err = Receiver::builder()
        .with_tls(pki.server_cert_pem.clone(), "no key here")
        .start()
        .await
        .expect_err("bad key");
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    // The key of another certificate does not match.
    let other = TestPki::new();
    let err = Receiver::builder()
        .with_tls(pki.server_cert_pem.clone(), other.server_key_pem.clone())
        .start()
        .await
        .expect_err("mismatched key");
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    let err = Receiver::builder()
        .with_client_ca(pki.ca_pem.clone())
        .start()
        .await
        .expect_err("client CA without TLS");
    assert!(matches!(err, Error::InvalidSetting { .. }), "{err}");
}

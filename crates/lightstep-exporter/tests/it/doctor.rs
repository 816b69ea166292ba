//! The diagnosis behind `lightstep doctor`, against the embedded receiver.

use lightstep_config::{EnvSnapshot, LightstepConfig, Protocol};
use lightstep_exporter::diagnose::{Outcome, Step, diagnose};
use lightstep_receiver::Receiver;

use crate::{TOKEN, TestPki, config_for, endpoint, receiver};

fn outcome(d: &lightstep_exporter::diagnose::Diagnosis, step: Step) -> (Outcome, String) {
    let c = d
        .checks
        .iter()
        .find(|c| c.step == step)
        .expect("every step is reported");
    (c.outcome, c.detail.clone())
}

#[tokio::test]
async fn right_token_passes_every_step_over_grpc_and_http() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
        let receiver = receiver().await;
        let config = config_for(&endpoint(&receiver, protocol), protocol)
            .build()
            .unwrap();
        let d = diagnose(Ok(&config)).await;
        assert!(d.passed(), "{protocol:?}:\n{d}");
        assert_eq!(d.checks.len(), 5);
        assert!(
            outcome(&d, Step::Tls).1.contains("plaintext to loopback"),
            "{d}"
        );
        let text = d.to_string();
        assert!(!text.contains(TOKEN), "{text}");
    }
}

#[tokio::test]
async fn wrong_token_shows_as_rejected() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = receiver().await;
        let config = config_for(&endpoint(&receiver, protocol), protocol)
            .with_access_token("not-the-token")
            .build()
            .unwrap();
        let d = diagnose(Ok(&config)).await;
        assert!(!d.passed());
        let (o, detail) = outcome(&d, Step::Export);
        assert_eq!(o, Outcome::Fail);
        assert!(detail.contains("rejected the access token"), "{detail}");
        assert!(!d.to_string().contains("not-the-token"));
    }
}

#[tokio::test]
async fn tls_with_a_test_ca_and_without_it() {
    let pki = TestPki::new();
    let receiver = Receiver::builder()
        .with_access_token(TOKEN)
        .with_tls(pki.server_cert.clone(), pki.server_key.clone())
        .start()
        .await
        .unwrap();
    let trusted = config_for(&receiver.grpc_endpoint(), Protocol::Grpc)
        .with_ca_file(pki.ca_file())
        .build()
        .unwrap();
    let d = diagnose(Ok(&trusted)).await;
    assert!(d.passed(), "{d}");
    assert!(outcome(&d, Step::Tls).1.contains("verifies"), "{d}");

    let untrusted = config_for(&receiver.grpc_endpoint(), Protocol::Grpc)
        .build()
        .unwrap();
    let d = diagnose(Ok(&untrusted)).await;
    let (o, detail) = outcome(&d, Step::Tls);
    assert_eq!(o, Outcome::Fail, "{d}");
    assert!(
        detail.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        "{detail}"
    );
    assert_eq!(outcome(&d, Step::Export).0, Outcome::Skip);
}

#[tokio::test]
async fn closed_port() {
    // Bound but not listening, for the whole test: connections are refused, and no other
    // socket can take the port meanwhile (a port bound and released could be taken).
    let closed = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    closed
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = closed.local_addr().unwrap().as_socket().unwrap();
    let config = config_for(&format!("http://{addr}"), Protocol::Grpc)
        .build()
        .unwrap();
    let d = diagnose(Ok(&config)).await;
    assert_eq!(outcome(&d, Step::Resolve).0, Outcome::Pass);
    let (o, detail) = outcome(&d, Step::Connect);
    assert_eq!(o, Outcome::Fail);
    assert!(detail.contains("cannot connect"), "{detail}");
    assert_eq!(outcome(&d, Step::Export).0, Outcome::Skip);
}

#[tokio::test]
async fn invalid_configuration() {
    let err = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty().with("OTEL_BSP_MAX_QUEUE_SIZE", "lots"))
        .build()
        .unwrap_err();
    let d = diagnose(Err(&err)).await;
    let (o, detail) = outcome(&d, Step::Configuration);
    assert_eq!(o, Outcome::Fail);
    assert!(detail.contains("OTEL_BSP_MAX_QUEUE_SIZE"), "{detail}");
    assert!(d.checks[1..].iter().all(|c| c.outcome == Outcome::Skip));
    assert!(!d.passed());
}

//! `lightstep doctor` against the embedded receiver: right token, wrong token, TLS with a test
//! CA, a closed port, an invalid variable. The binary runs with a cleared environment plus the
//! variables under test, as a user would run it.

use std::process::{Command, Output};

use lightstep_receiver::{Receiver, RunningReceiver};

const BIN: &str = env!("CARGO_BIN_EXE_lightstep");
const TOKEN: &str = "doctor-token-42";

fn doctor(vars: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("doctor")
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("run lightstep doctor")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The receiver runs on a runtime of its own thread: the test thread waits on the child.
fn start(builder: lightstep_receiver::ReceiverBuilder) -> RunningReceiver {
    builder.start_background().expect("receiver starts")
}

#[test]
fn right_token_passes_and_the_token_stays_hidden() {
    let receiver = start(Receiver::builder().with_access_token(TOKEN));
    let out = doctor(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("LIGHTSTEP_ACCESS_TOKEN", TOKEN),
        ("OTEL_SERVICE_NAME", "doctor-test"),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("service_name")
            && t.contains("doctor-test")
            && t.contains("env OTEL_SERVICE_NAME"),
        "{t}"
    );
    assert!(
        t.contains("access_token") && t.contains("[REDACTED]"),
        "{t}"
    );
    assert!(t.contains("an empty OTLP/gRPC export was accepted"), "{t}");
    assert!(!t.contains(TOKEN), "the token leaked: {t}");
}

#[test]
fn wrong_token_shows_as_rejected() {
    let receiver = start(Receiver::builder().with_access_token(TOKEN));
    let out = doctor(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            &receiver.http_traces_url(),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("LS_ACCESS_TOKEN", "wrong-one"),
    ]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("the backend rejected the access token"), "{t}");
    assert!(!t.contains("wrong-one"), "{t}");
}

#[test]
fn tls_with_a_test_ca() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let receiver = start(Receiver::builder().with_tls(cert.pem(), key.serialize_pem()));
    let endpoint = receiver.grpc_endpoint();
    let out = doctor(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file.to_str().unwrap()),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("the certificate for `127.0.0.1` verifies"),
        "{t}"
    );
    // Without the CA the handshake fails, and the diagnosis says what to set.
    let out = doctor(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("[FAIL] tls") && t.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        "{t}"
    );
}

#[test]
fn closed_port() {
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
    let out = doctor(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{addr}"))]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("[FAIL] connect") && t.contains("cannot connect"),
        "{t}"
    );
}

#[test]
fn invalid_variable() {
    let out = doctor(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
    ]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("[FAIL] configuration")
            && t.contains("OTEL_BSP_MAX_QUEUE_SIZE")
            && t.contains("lots"),
        "{t}"
    );
}

#[test]
fn nothing_exported_is_a_failure_not_a_pass() {
    let out = doctor(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
        ("OTEL_SDK_DISABLED", "true"),
    ]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("nothing is exported"), "{t}");
}

#[test]
fn warnings_are_printed_even_when_the_configuration_fails() {
    let out = doctor(&[("LS_ACESS_TOKEN", "S3CRET-token-value")]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("[FAIL] configuration") && t.contains("no access token"),
        "{t}"
    );
    assert!(
        t.contains("warning: environment variable `LS_ACESS_TOKEN` is not one lightstep-rs reads; did you mean `LS_ACCESS_TOKEN`?"),
        "{t}"
    );
    assert!(!t.contains("S3CRET"), "the token leaked: {t}");
}

#[test]
fn a_shared_environment_passes_with_its_warnings_shown() {
    let receiver = start(Receiver::builder());
    let out = doctor(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_PROPAGATORS", "xray"),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for needle in [
        "warning: environment variable `OTEL_TRACES_SAMPLER` names `jaeger_remote`",
        "warning: environment variable `OTEL_TRACES_EXPORTER` names `zipkin`",
    ] {
        assert!(t.contains(needle), "{needle}: {t}");
    }
    assert!(t.contains("propagators") && t.contains("xray"), "{t}");
}

//! The diagnosis behind `lightstep doctor`, against the embedded receiver.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// A stand-in server on 127.0.0.1, on a port the OS picks, that answers every connection the
/// same way until it is dropped: what a wrong port or a broken proxy looks like to the doctor.
struct Stub {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy)]
enum Answer {
    /// An HTTP/1.1 server: reads the request and answers with this status line and no body.
    /// To bytes that are not HTTP (a TLS hello, say) it answers the same at once.
    Http1(&'static str),
    /// Accepts and holds the connection open, never answering.
    Silence,
}

impl Stub {
    fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                match answer {
                    Answer::Silence => held.push(stream),
                    Answer::Http1(status) => answer_http1(&mut stream, status),
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer_http1(stream: &mut TcpStream, status: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    crate::read_http1_request(stream);
    let mut buf = [0u8; 4096];
    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes());
    // A lingering close, as HTTP servers do: closing with unread bytes would reset the
    // connection, and the client could lose the answer.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    while let Ok(1..) = stream.read(&mut buf) {}
}

#[tokio::test]
async fn grpc_to_an_http1_only_port_says_it_does_not_speak_grpc() {
    let stub = Stub::start(Answer::Http1("400 Bad Request"));
    let config = config_for(&format!("http://{}", stub.addr), Protocol::Grpc)
        .build()
        .unwrap();
    let d = diagnose(Ok(&config)).await;
    let (o, detail) = outcome(&d, Step::Export);
    assert_eq!(o, Outcome::Fail, "{d}");
    assert!(detail.contains("does not speak gRPC"), "{detail}");
    assert!(detail.contains(&stub.addr.to_string()), "{detail}");
    assert!(
        detail.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
        "{detail}"
    );
    assert!(detail.contains("4317"), "{detail}");
    assert!(!detail.contains("refused"), "{detail}");
    assert!(!d.to_string().contains(TOKEN), "{d}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout_not_a_refusal() {
    let stub = Stub::start(Answer::Silence);
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let url = if protocol.is_http() {
            format!("http://{}/v1/traces", stub.addr)
        } else {
            format!("http://{}", stub.addr)
        };
        let config = config_for(&url, protocol)
            .with_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let d = diagnose(Ok(&config)).await;
        assert_eq!(outcome(&d, Step::Connect).0, Outcome::Pass, "{d}");
        let (o, detail) = outcome(&d, Step::Export);
        assert_eq!(o, Outcome::Fail, "{protocol:?}:\n{d}");
        assert!(
            detail.contains("no answer within 300ms"),
            "{protocol:?}: {detail}"
        );
        assert!(
            detail.contains(&stub.addr.to_string()),
            "{protocol:?}: {detail}"
        );
        assert!(!detail.contains("refused"), "{protocol:?}: {detail}");
        assert!(!d.to_string().contains(TOKEN), "{d}");
    }
}

#[tokio::test]
async fn tls_to_a_plaintext_server_asks_whether_it_speaks_plaintext() {
    let stub = Stub::start(Answer::Http1("400 Bad Request"));
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let url = if protocol.is_http() {
            format!("https://{}/v1/traces", stub.addr)
        } else {
            format!("https://{}", stub.addr)
        };
        let config = config_for(&url, protocol).build().unwrap();
        let d = diagnose(Ok(&config)).await;
        let (o, detail) = outcome(&d, Step::Tls);
        assert_eq!(o, Outcome::Fail, "{protocol:?}:\n{d}");
        assert!(
            detail.contains("is the server speaking plaintext?"),
            "{protocol:?}: {detail}"
        );
        assert!(detail.contains("http://"), "{protocol:?}: {detail}");
        assert_eq!(outcome(&d, Step::Export).0, Outcome::Skip);
        assert!(!d.to_string().contains(TOKEN), "{d}");
    }
}

#[tokio::test]
async fn http_404_on_the_standard_path_blames_the_port_not_the_path() {
    let stub = Stub::start(Answer::Http1("404 Not Found"));
    let standard = config_for(
        &format!("http://{}/v1/traces", stub.addr),
        Protocol::HttpProtobuf,
    )
    .build()
    .unwrap();
    let d = diagnose(Ok(&standard)).await;
    let (o, detail) = outcome(&d, Step::Export);
    assert_eq!(o, Outcome::Fail, "{d}");
    assert!(detail.contains("404"), "{detail}");
    assert!(detail.contains(&stub.addr.to_string()), "{detail}");
    assert!(detail.contains("does not serve OTLP/HTTP"), "{detail}");
    assert!(!detail.contains("is wrong"), "{detail}");
    assert!(!d.to_string().contains(TOKEN), "{d}");

    // Elsewhere, the path is still what to fix first.
    let other = config_for(
        &format!("http://{}/v1/trace", stub.addr),
        Protocol::HttpProtobuf,
    )
    .build()
    .unwrap();
    let d = diagnose(Ok(&other)).await;
    let (o, detail) = outcome(&d, Step::Export);
    assert_eq!(o, Outcome::Fail, "{d}");
    assert!(detail.contains("`/v1/trace` is wrong"), "{detail}");
    assert!(detail.contains("wants `/v1/traces`"), "{detail}");
}

/// A gRPC backend that refuses every export with a message of its own choosing.
struct Refuser(String);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Refuser
{
    async fn export(
        &self,
        _: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        Err(tonic::Status::invalid_argument(self.0.clone()))
    }
}

#[tokio::test]
async fn a_backend_message_reaches_the_diagnosis_without_escapes_or_the_token() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    // Clears the screen, writes the clipboard (OSC 52), then echoes the token it was sent.
    let message = format!("bad export\x1b[2J\x1b]52;c;ZXZpbA==\x07 from {TOKEN}\u{9b}31m");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Refuser(message)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let config = config_for(&format!("http://{addr}"), Protocol::Grpc)
        .build()
        .unwrap();
    let d = diagnose(Ok(&config)).await;
    server.abort();
    let (o, detail) = outcome(&d, Step::Export);
    assert_eq!(o, Outcome::Fail, "{d}");
    assert!(detail.contains("bad export"), "{detail}");
    let text = d.to_string();
    assert!(
        !text.contains(['\x1b', '\x07', '\u{9b}']),
        "a control character reached the diagnosis: {text:?}"
    );
    assert!(!text.contains(TOKEN), "the token was echoed: {text}");
    assert!(text.contains("[REDACTED]"), "{text}");
}

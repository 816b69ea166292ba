//! Test helpers: OTLP payloads and real clients (tonic for gRPC, hyper for HTTP, raw HTTP/2 for
//! gRPC frames a well-behaved client would never send).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use lightstep_receiver::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use lightstep_receiver::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use lightstep_receiver::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use lightstep_receiver::proto::resource::v1::Resource;
use lightstep_receiver::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use tokio::net::TcpStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Only a guard against hangs: every wait in these tests normally ends in milliseconds.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(30);

pub(crate) const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub(crate) fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

pub(crate) fn int_kv(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// One span: `id` and `parent` are repeated to fill the 8-byte ids.
pub(crate) fn span(trace: u8, id: u8, parent: Option<u8>, name: &str) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        attributes: vec![string_kv("it.name", name), int_kv("it.id", i64::from(id))],
        ..Span::default()
    }
}

/// A request from service `service` with scope `it-scope`/`1.0` carrying `spans`.
pub(crate) fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_kv("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "it-scope".into(),
                    version: "1.0".into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A three-span trace: root 1, children 2 and 3.
pub(crate) fn three_span_trace(trace: u8) -> Vec<Span> {
    vec![
        span(trace, 1, None, "root"),
        span(trace, 2, Some(1), "child-a"),
        span(trace, 3, Some(1), "child-b"),
    ]
}

pub(crate) async fn grpc_channel(endpoint: &str, tls: Option<ClientTlsConfig>) -> Channel {
    let mut ep = Channel::from_shared(endpoint.to_owned()).expect("valid endpoint");
    if let Some(tls) = tls {
        ep = ep.tls_config(tls).expect("tls config");
    }
    tokio::time::timeout(HANG_GUARD, ep.connect())
        .await
        .expect("hang guard")
        .expect("connect")
}

/// Exports over gRPC with the given metadata, optionally gzip-compressed.
pub(crate) async fn grpc_export_on(
    channel: Channel,
    req: ExportTraceServiceRequest,
    metadata: &[(&'static str, &str)],
    gzip: bool,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    let mut client = TraceServiceClient::new(channel);
    if gzip {
        client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    let mut request = tonic::Request::new(req);
    for (k, v) in metadata {
        request
            .metadata_mut()
            .insert(*k, v.parse().expect("metadata value"));
    }
    tokio::time::timeout(HANG_GUARD, client.export(request))
        .await
        .expect("hang guard")
        .map(tonic::Response::into_inner)
}

pub(crate) async fn grpc_export(
    endpoint: &str,
    req: ExportTraceServiceRequest,
    metadata: &[(&'static str, &str)],
    gzip: bool,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    grpc_export_on(grpc_channel(endpoint, None).await, req, metadata, gzip).await
}

/// Exports three-span trace `trace` of service `s` over plaintext gRPC, uncompressed, without
/// metadata: the plain export most tests need.
pub(crate) async fn export_trace(
    endpoint: &str,
    trace: u8,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    grpc_export(endpoint, request("s", three_span_trace(trace)), &[], false).await
}

#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) trailers: Option<http::HeaderMap>,
}

impl HttpResponse {
    /// The gRPC status of a response: from the trailers, or from the headers of a
    /// trailers-only response.
    pub(crate) fn grpc_status(&self) -> Option<tonic::Code> {
        self.trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map(tonic::Code::from_i32)
    }

    pub(crate) fn export_response(&self) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse::decode(self.body.clone()).expect("protobuf response")
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON response")
    }
}

/// A TLS client configuration trusting `ca_pem`, offering ALPN `alpn`.
pub(crate) fn rustls_client(ca_pem: &str, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
        .expect("add CA");
    // Deprecated by rustls 0.23.48 (no post-quantum key exchange), with no replacement for
    // *ring*: see docs/adr/011-one-async-transport-core.md.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// Sends one HTTP/1.1 request (plaintext, or TLS trusting the given client config).
pub(crate) async fn http1(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> HttpResponse {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder.body(Full::new(Bytes::from(body))).expect("request");
    let fut = async move {
        match tls {
            None => send_http1(TokioIo::new(tcp), req).await,
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .expect("TLS handshake");
                send_http1(TokioIo::new(stream), req).await
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .expect("hang guard")
}

async fn send_http1<I>(io: TokioIo<I>, req: Request<Full<Bytes>>) -> HttpResponse
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.expect("response");
    collect(resp).await
}

async fn collect(resp: http::Response<hyper::body::Incoming>) -> HttpResponse {
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.expect("body");
    let trailers = collected.trailers().cloned();
    HttpResponse {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// POSTs to `/v1/traces` over plaintext HTTP/1.1.
pub(crate) async fn http_post(
    addr: SocketAddr,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> HttpResponse {
    http1(addr, http::Method::POST, "/v1/traces", headers, body, None).await
}

/// Sends `payload` as one raw gRPC message frame (flag byte `compressed`) over plaintext
/// HTTP/2, with `headers` added: for messages no real client would send.
pub(crate) async fn raw_grpc(
    addr: SocketAddr,
    payload: &[u8],
    compressed: bool,
    headers: &[(&str, &str)],
) -> HttpResponse {
    raw_grpc_at(addr, EXPORT_PATH, payload, compressed, headers).await
}

/// [`raw_grpc`] to another gRPC method path.
pub(crate) async fn raw_grpc_at(
    addr: SocketAddr,
    path: &str,
    payload: &[u8],
    compressed: bool,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_be_bytes());
    frame.extend_from_slice(payload);
    let mut builder = Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{addr}{path}"))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder
        .body(Full::new(Bytes::from(frame)))
        .expect("request");
    let fut = async move {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.expect("response");
        collect(resp).await
    };
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .expect("hang guard")
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("compress");
    enc.finish().expect("finish")
}

/// A CA and a server certificate for `localhost` and `127.0.0.1`, made for this test run.
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    pub(crate) server_cert_pem: String,
    pub(crate) server_key_pem: String,
    ca_cert: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl TestPki {
    pub(crate) fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lightstep-receiver test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");

        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let server_cert = server_params
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server cert");
        Self {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            ca_cert,
            ca_key,
        }
    }

    /// A client certificate signed by the CA: (certificate PEM, key PEM).
    pub(crate) fn client_identity(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("client key");
        let mut params =
            rcgen::CertificateParams::new(vec!["client.test".to_owned()]).expect("client params");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("client cert");
        (cert.pem(), key.serialize_pem())
    }

    pub(crate) fn tonic_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost")
    }

    pub(crate) fn tonic_tls_with_client_cert(&self) -> ClientTlsConfig {
        let (cert, key) = self.client_identity();
        self.tonic_tls().identity(Identity::from_pem(cert, key))
    }
}

/// Sends a chunked HTTP/1.1 POST to `/v1/traces` by hand (hyper's client always sends a
/// content length for a full body) and returns the status code. With `complete` false the
/// terminating chunk is not sent: the server must answer from what it has, as it must when a
/// body exceeds the limit (and the client then sends no more than the server has read, so the
/// server's close cannot reset the connection before the answer is read).
pub(crate) async fn chunked_post(
    addr: SocketAddr,
    content_type: &str,
    body: &[u8],
    complete: bool,
) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fut = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let mut req = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for chunk in body.chunks(1000) {
            req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            req.extend_from_slice(chunk);
            req.extend_from_slice(b"\r\n");
        }
        if complete {
            req.extend_from_slice(b"0\r\n\r\n");
        }
        tcp.write_all(&req).await.expect("write request");
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).await.expect("status line");
        std::str::from_utf8(&head[9..12])
            .expect("utf-8")
            .parse()
            .expect("status code")
    };
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .expect("hang guard")
}

//! The two transports, gRPC (tonic) and HTTP (protobuf or JSON), built from the configuration
//! alone: the request headers, the compression and the endpoint are exactly the
//! configuration's, whatever the environment says (nothing here reads the environment).
//!
//! Both send bytes that `crate::encode` wrote straight from the spans, and both read the
//! backend's answer themselves, so that a partial success (`rejected_spans`) reaches the
//! counters instead of a log line.

use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut as _, Bytes};
use crossbeam_channel::Receiver;
use http::uri::PathAndQuery;
use lightstep_config::{Compression, LightstepConfig, Protocol};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;
use tonic::client::Grpc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::encode::json::JsonEncoder;
use crate::encode::proto::ProtoEncoder;
use crate::error::ExporterError;
use crate::processor::{Delivered, ExportResult, Failure, Transport};
use crate::retry::{self, Attempts, Retry};

/// The header Lightstep reads the token from.
pub const ACCESS_TOKEN_HEADER: &str = "lightstep-access-token";

/// Every header to send: the extra headers, then the token (marked sensitive).
pub(crate) fn header_list(config: &LightstepConfig) -> Vec<(String, String, bool)> {
    let mut headers: Vec<(String, String, bool)> = config
        .headers()
        .iter()
        .map(|h| (h.name.clone(), h.value.expose_secret().to_owned(), true))
        .collect();
    if let Some(token) = config.access_token() {
        headers.push((
            ACCESS_TOKEN_HEADER.into(),
            token.expose_secret().to_owned(),
            true,
        ));
    }
    headers
}

fn read(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, ExporterError> {
    std::fs::read(path).map_err(|error| ExporterError::TlsFile {
        what,
        path: path.into(),
        error,
    })
}

/// The tonic endpoint for the configuration: scheme, host and port, the timeouts, and TLS with
/// the system's roots plus the configured CA and client identity.
pub(crate) fn grpc_endpoint(
    config: &LightstepConfig,
) -> Result<tonic::transport::Endpoint, ExporterError> {
    let endpoint = config.traces_endpoint();
    let uri = format!(
        "{}://{}:{}",
        endpoint.url().scheme(),
        endpoint.url().host_str().unwrap_or_default(),
        endpoint.port()
    );
    let mut channel = tonic::transport::Endpoint::from_shared(uri)
        .map_err(|e| ExporterError::Build(format!("invalid gRPC endpoint: {e}")))?
        .timeout(config.timeout())
        .connect_timeout(config.timeout())
        .user_agent(USER_AGENT)
        .map_err(|e| ExporterError::Build(format!("invalid user agent: {e}")))?;
    if endpoint.is_tls() {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &config.tls().ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?));
        }
        if let (Some(cert), Some(key)) =
            (&config.tls().client_certificate, &config.tls().client_key)
        {
            tls = tls.identity(Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            ));
        }
        channel = channel
            .tls_config(tls)
            .map_err(|e| ExporterError::Build(format!("TLS configuration rejected: {e}")))?;
    }
    Ok(channel)
}

/// Sent as `user-agent` on both transports.
const USER_AGENT: &str = concat!("lightstep-rs/", env!("CARGO_PKG_VERSION"));

/// The OTLP/gRPC method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Largest OTLP/HTTP success body read (an `ExportTraceServiceResponse`).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Longest backend message kept (in characters).
const MAX_MESSAGE_CHARS: usize = 300;

/// Cleans text that came from the backend or the network before it reaches a log or an error:
/// any configured header value (the token among them) is replaced, control characters become
/// spaces, and the length is capped. A backend may echo what it was sent.
#[derive(Clone)]
pub(crate) struct Redactor {
    secrets: Arc<[String]>,
}

impl Redactor {
    pub(crate) fn new(config: &LightstepConfig) -> Self {
        let secrets: Vec<String> = header_list(config)
            .into_iter()
            // Very short values would blank out ordinary words; they are not secrets anyway.
            .filter(|(_, value, _)| value.len() >= 4)
            .map(|(_, value, _)| value)
            .collect();
        Self {
            secrets: secrets.into(),
        }
    }

    pub(crate) fn clean(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[REDACTED]");
            }
        }
        let mut out: String = text
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if text.chars().count() > MAX_MESSAGE_CHARS {
            out.push('…');
        }
        out
    }
}

/// Why the most recent failed attempt of any export failed, for the processor to name when it
/// gives an export up itself (at its backstop, or at shutdown's deadline) while the export is
/// still retrying: "the backend refused the connection" says more than "it did not finish".
#[derive(Clone, Default)]
pub(crate) struct LastAttempt(Arc<Mutex<Option<String>>>);

impl LastAttempt {
    fn failed(&self, reason: &str) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(reason.to_owned());
        }
    }

    fn succeeded(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = None;
        }
    }

    pub(crate) fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|last| last.clone())
    }
}

/// What the backend's answer says about the spans sent.
fn delivered(response: &ExportTraceServiceResponse, redactor: &Redactor) -> Delivered {
    match &response.partial_success {
        Some(partial) => Delivered {
            rejected: u64::try_from(partial.rejected_spans).unwrap_or(0),
            message: (!partial.error_message.is_empty())
                .then(|| redactor.clean(&partial.error_message)),
        },
        None => Delivered::default(),
    }
}

/// Request buffers handed back after their export, so that a steady stream of batches does not
/// allocate (and fault in) a fresh megabyte per request.
#[derive(Clone, Default)]
struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl BufferPool {
    /// Buffers kept at most, and the largest capacity kept.
    const KEEP: usize = 8;
    const MAX_CAPACITY: usize = 16 << 20;

    fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    fn give(&self, payload: Bytes) {
        let Ok(unique) = payload.try_into_mut() else {
            return;
        };
        let mut buffer: Vec<u8> = unique.into();
        if buffer.capacity() > Self::MAX_CAPACITY {
            return;
        }
        buffer.clear();
        if let Ok(mut free) = self.free.lock()
            && free.len() < Self::KEEP
        {
            free.push(buffer);
        }
    }
}

/// tonic codec that sends bytes already encoded and decodes the OTLP response.
#[derive(Debug, Clone, Copy, Default)]
struct OtlpCodec;

#[derive(Debug, Clone, Copy, Default)]
struct PassThrough;

#[derive(Debug, Clone, Copy, Default)]
struct ResponseDecoder;

impl Codec for OtlpCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PassThrough;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> PassThrough {
        PassThrough
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for PassThrough {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable export response: {e}")))
    }
}

/// Exports on a small Tokio runtime of its own, so that neither the application's runtime
/// flavour nor a blocked application thread can stall an export. Encoding happens before, on
/// the export thread; the runtime only moves bytes (and compresses them when configured).
pub(crate) struct GrpcTransport {
    runtime: tokio::runtime::Runtime,
    client: Grpc<Channel>,
    metadata: MetadataMap,
    encoder: ProtoEncoder,
    pool: BufferPool,
    request_timeout: Duration,
    export_timeout: Duration,
    redactor: Redactor,
    last_attempt: LastAttempt,
}

impl GrpcTransport {
    pub(crate) fn new(
        config: &LightstepConfig,
        resource: &opentelemetry_sdk::Resource,
        export_timeout: Duration,
        max_concurrent_exports: usize,
    ) -> Result<Self, ExporterError> {
        let channel = grpc_endpoint(config)?;
        let mut metadata = MetadataMap::new();
        for (name, value, sensitive) in header_list(config) {
            let key = AsciiMetadataKey::from_bytes(name.as_bytes()).map_err(|_| {
                ExporterError::Build(format!("header name `{name}` is not valid gRPC metadata"))
            })?;
            let mut value = AsciiMetadataValue::try_from(value.as_str()).map_err(|_| {
                ExporterError::Build(format!(
                    "the value of header `{name}` is not valid gRPC metadata"
                ))
            })?;
            value.set_sensitive(sensitive);
            metadata.insert(key, value);
        }
        // Built last: a runtime dropped on an error path inside the caller's async context
        // would panic, and everything fallible above needs no runtime. With gzip, tonic
        // compresses on a worker: one per export in flight, so that one compressing batch
        // does not hold up the others' I/O.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(max_concurrent_exports.clamp(1, 4))
            .thread_name("lightstep-export-io")
            .on_thread_start(enter_suppressed_scope)
            .on_thread_stop(leave_suppressed_scope)
            .enable_all()
            .build()
            .map_err(ExporterError::Runtime)?;
        let channel = {
            let _guard = runtime.enter();
            channel.connect_lazy()
        };
        let mut client = Grpc::new(channel);
        if config.compression() == Compression::Gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        Ok(Self {
            runtime,
            client,
            metadata,
            encoder: ProtoEncoder::new(resource),
            pool: BufferPool::default(),
            request_timeout: config.timeout(),
            export_timeout,
            redactor: Redactor::new(config),
            last_attempt: LastAttempt::default(),
        })
    }
}

thread_local! {
    /// The suppressed context of a thread of the gRPC runtime, from its start to its stop.
    static SUPPRESSED: std::cell::RefCell<Option<opentelemetry::ContextGuard>> =
        const { std::cell::RefCell::new(None) };
}

/// Every thread of the gRPC runtime (workers and blocking pool) runs with telemetry suppressed:
/// the spans and events tonic, tower, hyper and h2 make while exporting are the pipeline's own
/// work, and exporting them would feed every export into the next. Tasks carry no context of
/// their own here, so the thread's is the one they see.
fn enter_suppressed_scope() {
    SUPPRESSED.with(|s| {
        *s.borrow_mut() = Some(opentelemetry::Context::enter_telemetry_suppressed_scope())
    });
}

/// Detaches the suppressed context before the thread's locals are torn down.
fn leave_suppressed_scope() {
    SUPPRESSED.with(|s| drop(s.borrow_mut().take()));
}

/// One export over gRPC: attempts until one is answered, one fails for a reason that is not
/// transient, or the export's budget is spent (see `crate::retry`).
async fn export_grpc(
    mut client: Grpc<Channel>,
    metadata: MetadataMap,
    payload: &Bytes,
    request_timeout: Duration,
    export_timeout: Duration,
    redactor: &Redactor,
    last_attempt: &LastAttempt,
) -> ExportResult {
    let path = PathAndQuery::from_static(EXPORT_PATH);
    let mut attempts = Attempts::new(export_timeout);
    let mut last = None;
    while let Some(timeout) = attempts.next_timeout(request_timeout) {
        let mut request = tonic::Request::new(payload.clone());
        *request.metadata_mut() = metadata.clone();
        request.set_timeout(timeout);
        // The channel's own timeout is the configuration's: this one ends the attempt with
        // the budget when less is left.
        let attempt = async {
            match client.ready().await {
                Ok(()) => client.unary(request, path.clone(), OtlpCodec).await,
                Err(e) => Err(tonic::Status::unavailable(e.to_string())),
            }
        };
        let status = match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(response)) => {
                last_attempt.succeeded();
                return Ok(delivered(response.get_ref(), redactor));
            }
            Ok(Err(status)) => status,
            Err(_) => tonic::Status::deadline_exceeded(format!(
                "no answer within {}ms",
                timeout.as_millis()
            )),
        };
        let reason = format!(
            "gRPC export failed: {:?}: {}",
            status.code(),
            redactor.clean(status.message())
        );
        last_attempt.failed(&reason);
        let Retry::After(asked) = retry::grpc(&status) else {
            return Err(Failure::permanent(reason));
        };
        if let Some(wait) = attempts.wait(asked) {
            tokio::time::sleep(wait).await;
        }
        last = Some(reason);
    }
    Err(Failure::transient(last.unwrap_or_else(|| {
        "gRPC export failed: no time left before the export deadline".into()
    })))
}

impl Transport for GrpcTransport {
    fn start(&mut self, batch: &[SpanData]) -> Receiver<ExportResult> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut buffer = self.pool.take();
        self.encoder.encode(batch, &mut buffer);
        let payload = Bytes::from(buffer);
        let client = self.client.clone();
        let metadata = self.metadata.clone();
        let pool = self.pool.clone();
        let redactor = self.redactor.clone();
        let last_attempt = self.last_attempt.clone();
        let (request_timeout, export_timeout) = (self.request_timeout, self.export_timeout);
        self.runtime.spawn(async move {
            let export = export_grpc(
                client,
                metadata,
                &payload,
                request_timeout,
                export_timeout,
                &redactor,
                &last_attempt,
            );
            // A backstop: the attempts already end with the budget.
            let result = match tokio::time::timeout(export_timeout, export).await {
                Ok(result) => result,
                Err(_) => Err(Failure::transient(format!(
                    "the export did not finish within {}ms",
                    export_timeout.as_millis()
                ))),
            };
            pool.give(payload);
            let _ = tx.send(result);
        });
        rx
    }

    fn last_attempt_error(&self) -> Option<String> {
        self.last_attempt.get()
    }

    fn close(self: Box<Self>) {
        let Self {
            runtime, client, ..
        } = *self;
        drop(client);
        runtime.shutdown_timeout(Duration::from_millis(200));
    }
}

/// HTTP exports run the blocking reqwest client on a thread of their own each, never on an
/// async worker (where the blocking client panics). Encoding happens before, on the export
/// thread; compression on the export's own thread.
pub(crate) struct HttpTransport {
    shared: Arc<HttpShared>,
    encoding: HttpEncoding,
    /// The previous request's size, to allocate the next one in one go.
    size_hint: usize,
}

enum HttpEncoding {
    Protobuf(ProtoEncoder),
    Json(JsonEncoder),
}

struct HttpShared {
    client: reqwest::blocking::Client,
    url: String,
    headers: http::HeaderMap,
    gzip: bool,
    /// The configuration's timeout for one request.
    request_timeout: Duration,
    export_timeout: Duration,
    redactor: Redactor,
    last_attempt: LastAttempt,
}

impl HttpTransport {
    pub(crate) fn new(
        config: &LightstepConfig,
        resource: &opentelemetry_sdk::Resource,
        export_timeout: Duration,
    ) -> Result<Self, ExporterError> {
        let client = build_blocking_client(config)?;
        let mut headers = http::HeaderMap::new();
        for (name, value, sensitive) in header_list(config) {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ExporterError::Build(format!("header name `{name}` is not valid")))?;
            let mut value = http::HeaderValue::from_str(&value).map_err(|_| {
                ExporterError::Build(format!("the value of header `{name}` is not valid"))
            })?;
            value.set_sensitive(sensitive);
            headers.insert(name, value);
        }
        let json = config.protocol() == Protocol::HttpJson;
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(if json {
                "application/json"
            } else {
                "application/x-protobuf"
            }),
        );
        headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        );
        let gzip = config.compression() == Compression::Gzip;
        if gzip {
            headers.insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static("gzip"),
            );
        }
        let encoding = if json {
            HttpEncoding::Json(JsonEncoder::new(resource))
        } else {
            HttpEncoding::Protobuf(ProtoEncoder::new(resource))
        };
        Ok(Self {
            shared: Arc::new(HttpShared {
                client,
                url: config.traces_endpoint().as_str().to_owned(),
                headers,
                gzip,
                request_timeout: config.timeout(),
                export_timeout,
                redactor: Redactor::new(config),
                last_attempt: LastAttempt::default(),
            }),
            encoding,
            size_hint: 0,
        })
    }
}

impl HttpShared {
    /// One export over HTTP: attempts until one is answered, one fails for a reason that is
    /// not transient, or the export's budget is spent (see `crate::retry`). A failure without
    /// an answer (refused connection, timeout, reset) is transient.
    fn export(&self, body: Vec<u8>) -> ExportResult {
        let mut attempts = Attempts::new(self.export_timeout);
        let body = if self.gzip {
            gzip(&body)
                .map_err(|e| Failure::permanent(format!("cannot compress the request: {e}")))?
        } else {
            body
        };
        let body = Bytes::from(body);
        let mut last = None;
        // Each attempt ends by the export's deadline, even when the configured request timeout
        // (the client's) is longer.
        while let Some(timeout) = attempts.next_timeout(self.request_timeout) {
            let sent = self
                .client
                .post(&self.url)
                .headers(self.headers.clone())
                .body(body.clone())
                .timeout(timeout)
                .send();
            let (reason, retry) = match sent {
                Ok(response) if response.status().is_success() => {
                    self.last_attempt.succeeded();
                    return Ok(self.read_success(response));
                }
                Ok(response) => {
                    let status = response.status();
                    let retry = retry::http(
                        status.as_u16(),
                        response.headers().get(http::header::RETRY_AFTER),
                    );
                    (format!("HTTP export failed: status {status}"), retry)
                }
                Err(e) => {
                    // A request that cannot even be built fails the same way every time.
                    let retry = if e.is_builder() {
                        Retry::Never
                    } else {
                        Retry::After(None)
                    };
                    let reason = format!(
                        "HTTP export failed: {}",
                        self.redactor.clean(&error_chain(e.without_url()))
                    );
                    (reason, retry)
                }
            };
            self.last_attempt.failed(&reason);
            let Retry::After(asked) = retry else {
                return Err(Failure::permanent(reason));
            };
            if let Some(wait) = attempts.wait(asked) {
                std::thread::sleep(wait);
            }
            last = Some(reason);
        }
        Err(Failure::transient(last.unwrap_or_else(|| {
            "HTTP export failed: no time left before the export deadline".into()
        })))
    }

    /// A 2xx answer: the body, if any, may report a partial success.
    fn read_success(&self, response: reqwest::blocking::Response) -> Delivered {
        let json = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        // A success whose body cannot be read still delivered the spans. Read at most
        // MAX_RESPONSE_BYTES: an OTLP answer is a count and a message, and a body without end
        // would otherwise be held in memory until the request timeout.
        let mut body = Vec::new();
        let read =
            std::io::Read::take(response, MAX_RESPONSE_BYTES as u64 + 1).read_to_end(&mut body);
        if read.is_err() || body.len() > MAX_RESPONSE_BYTES {
            return Delivered::default();
        }
        let body = Bytes::from(body);
        if body.is_empty() {
            return Delivered::default();
        }
        if json {
            partial_success_from_json(&body, &self.redactor)
        } else {
            ExportTraceServiceResponse::decode(body)
                .map(|r| delivered(&r, &self.redactor))
                .unwrap_or_default()
        }
    }
}

/// `partialSuccess` of an OTLP/JSON response (`rejectedSpans` as a string or a number).
fn partial_success_from_json(body: &[u8], redactor: &Redactor) -> Delivered {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Delivered::default();
    };
    let partial = &value["partialSuccess"];
    let rejected = match &partial["rejectedSpans"] {
        serde_json::Value::String(s) => s.parse::<i64>().ok(),
        other => other.as_i64(),
    };
    let message = partial["errorMessage"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(|m| redactor.clean(m));
    Delivered {
        rejected: rejected.and_then(|r| u64::try_from(r).ok()).unwrap_or(0),
        message,
    }
}

fn error_chain(error: reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::default(),
    );
    encoder.write_all(data)?;
    encoder.finish()
}

impl Transport for HttpTransport {
    fn start(&mut self, batch: &[SpanData]) -> Receiver<ExportResult> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut body = Vec::with_capacity(self.size_hint + self.size_hint / 8);
        match &self.encoding {
            HttpEncoding::Protobuf(encoder) => encoder.encode(batch, &mut body),
            HttpEncoding::Json(encoder) => encoder.encode(batch, &mut body),
        }
        self.size_hint = body.len();
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("lightstep-export-http".into())
            .spawn(move || {
                let _suppressed = opentelemetry::Context::enter_telemetry_suppressed_scope();
                let _ = tx.send(shared.export(body));
            });
        if let Err(e) = spawned {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = tx.send(Err(Failure::permanent(format!(
                "cannot start an export thread: {e}"
            ))));
            return rx;
        }
        rx
    }

    fn last_attempt_error(&self) -> Option<String> {
        self.shared.last_attempt.get()
    }

    fn close(self: Box<Self>) {}
}

/// The reqwest blocking client with rustls (ring), the system's roots, the configured CA and
/// client identity. Built on a thread of its own: reqwest's blocking client may not be created
/// inside an async context.
pub(crate) fn build_blocking_client(
    config: &LightstepConfig,
) -> Result<reqwest::blocking::Client, ExporterError> {
    let tls = rustls_config(config)?;
    let timeout = config.timeout();
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(timeout)
            // OTLP has no redirects, and following one would carry the token to another host
            // (reqwest keeps custom headers across hosts). A proxy from `HTTP_PROXY` would see
            // a plaintext token that the configuration only allowed to reach loopback.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| ExporterError::Build(format!("cannot build the HTTP client: {e}")))
    })
    .join()
    .map_err(|_| ExporterError::Build("the HTTP client builder panicked".into()))?
}

pub(crate) fn rustls_config(
    config: &LightstepConfig,
) -> Result<rustls::ClientConfig, ExporterError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(ca) = &config.tls().ca_file {
        let pem = read(ca, "CA certificate")?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| {
                ExporterError::Build(format!("`{}` holds a malformed certificate", ca.display()))
            })?;
            roots
                .add(cert)
                .map_err(|e| ExporterError::Build(format!("`{}`: {e}", ca.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ExporterError::Build(e.to_string()))?
        .with_root_certificates(roots);
    let tls = match (&config.tls().client_certificate, &config.tls().client_key) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(&read(cert, "client certificate")?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    ExporterError::Build(format!(
                        "`{}` holds a malformed certificate",
                        cert.display()
                    ))
                })?;
            let key = PrivateKeyDer::from_pem_slice(&read(key, "client key")?).map_err(|_| {
                ExporterError::Build(format!("`{}` holds no usable private key", key.display()))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ExporterError::Build(format!("client identity rejected: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    fn redactor() -> Redactor {
        Redactor {
            secrets: vec!["s3cr3t-token".to_owned()].into(),
        }
    }

    /// OTLP/HTTP protobuf to a plaintext test backend, with a 10 s request timeout.
    fn plaintext_exporter(addr: std::net::SocketAddr, export_timeout: Duration) -> HttpShared {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        HttpShared {
            client: reqwest::blocking::Client::builder()
                .use_preconfigured_tls(tls)
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            url: format!("http://{addr}/v1/traces"),
            headers: http::HeaderMap::new(),
            gzip: false,
            request_timeout: Duration::from_secs(10),
            export_timeout,
            redactor: redactor(),
            last_attempt: LastAttempt::default(),
        }
    }

    #[test]
    fn partial_success_from_protobuf() {
        let answer = |rejected_spans: i64, message: &str| ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans,
                error_message: message.into(),
            }),
        };
        let r = redactor();
        assert_eq!(
            delivered(&answer(2, "full: s3cr3t-token"), &r),
            Delivered {
                rejected: 2,
                message: Some("full: [REDACTED]".into())
            }
        );
        // A negative count is nonsense from the backend: nothing rejected.
        assert_eq!(delivered(&answer(-5, ""), &r), Delivered::default());
        assert_eq!(
            delivered(&ExportTraceServiceResponse::default(), &r),
            Delivered::default()
        );
    }

    #[test]
    fn partial_success_from_json_in_both_number_forms() {
        let r = redactor();
        for body in [
            r#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"no"}}"#,
            r#"{"partialSuccess":{"rejectedSpans":3,"errorMessage":"no"}}"#,
        ] {
            assert_eq!(
                partial_success_from_json(body.as_bytes(), &r),
                Delivered {
                    rejected: 3,
                    message: Some("no".into())
                }
            );
        }
        for body in ["", "{}", "not json", r#"{"partialSuccess":{}}"#, "[1]"] {
            assert_eq!(
                partial_success_from_json(body.as_bytes(), &r),
                Delivered::default(),
                "{body}"
            );
        }
    }

    #[test]
    fn an_http_export_keeps_its_deadline_when_the_backend_never_answers() {
        // A backend that accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                held.push(conn);
            }
        });
        // The per-request timeout (the configuration's) is far longer than the export's.
        let shared = plaintext_exporter(addr, Duration::from_millis(500));
        let started = Instant::now();
        assert!(shared.export(vec![1, 2, 3]).is_err());
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "the export took {took:?}");
    }

    #[test]
    fn an_endless_success_body_is_not_read_to_the_end() {
        use std::io::Write as _;
        // A backend that answers 200 and then streams its body for ever.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                std::thread::spawn(move || {
                    let mut request = [0u8; 4096];
                    let _ = conn.read(&mut request);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ntransfer-encoding: chunked\r\n\r\n",
                    );
                    let chunk = [0u8; 64 * 1024];
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(&chunk);
                    framed.extend_from_slice(b"\r\n");
                    while conn.write_all(&framed).is_ok() {}
                });
            }
        });
        let shared = plaintext_exporter(addr, Duration::from_secs(10));
        let started = Instant::now();
        // The backend said 200: the spans were delivered.
        assert_eq!(shared.export(vec![1, 2, 3]), Ok(Delivered::default()));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "the export took {took:?}");
    }

    #[test]
    fn backend_text_is_cleaned() {
        let r = redactor();
        let cleaned = r.clean(&format!("a\nb\u{0}s3cr3t-token{}", "x".repeat(1000)));
        assert!(cleaned.starts_with("a b [REDACTED]xxx"), "{cleaned}");
        assert_eq!(cleaned.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(!cleaned.contains("s3cr3t"));
    }
}

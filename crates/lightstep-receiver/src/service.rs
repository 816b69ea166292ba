//! Request handling: one entry point for every HTTP request either listener accepts.
//!
//! gRPC requests (content type `application/grpc*`) are OTLP/gRPC exports; everything else is
//! OTLP/HTTP. Both are served here, by hand rather than through tonic's generated server, so
//! that both protocols share one path: the access token is checked first, and a request without
//! the right one is counted but never recorded, so that a token presented by mistake (a real
//! one, for another project) is not kept; the checks every export shares (fault knobs) run
//! before a byte of the body is read, so a refused request costs nothing and stores nothing;
//! the body is read against a deadline and a global budget of in-flight bytes; and it is
//! decoded straight into the store's form ([`crate::wire`]), on the blocking pool when it is
//! large, so that no async worker is held for long.

use std::convert::Infallible;
use std::fmt;
use std::io::Read as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::{Code, Status};

use crate::faults::Faults;
use crate::store::{IngestOutcome, Protocol, RequestInfo, RequestOutcome, SpanStore};

/// The OTLP/HTTP path for traces.
pub(crate) const TRACES_PATH: &str = "/v1/traces";

/// The one gRPC method served.
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Protobuf bodies smaller than this are decoded on the async worker that read them: walking
/// and storing 64 KiB (some 400 spans) takes tens of microseconds, less than handing the work
/// to the blocking pool and back costs under load. Larger ones, and every gzip body, go to the
/// blocking pool.
const INLINE_PROTOBUF_MAX: usize = 64 * 1024;

/// The same for OTLP/JSON, which costs several times more per byte to decode.
const INLINE_JSON_MAX: usize = 16 * 1024;

/// How long a request waits for room in the in-flight budget before it is answered
/// `UNAVAILABLE` / `503`.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);

/// The per-connection facts the handlers need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: std::net::SocketAddr,
    pub(crate) tls: bool,
}

/// What [`App::new`] needs from the builder.
pub(crate) struct Settings {
    pub(crate) store: SpanStore,
    pub(crate) faults: Faults,
    pub(crate) token: Option<Vec<u8>>,
    pub(crate) max_request_bytes: usize,
    pub(crate) max_in_flight_bytes: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Everything a request needs, shared by all connections of both listeners.
pub(crate) struct App {
    store: SpanStore,
    faults: Faults,
    token: Option<Vec<u8>>,
    max_request_bytes: usize,
    body_timeout: Duration,
    /// Bytes of request bodies that may be held (received, decompressed, decoding) at once.
    in_flight: Arc<Semaphore>,
    max_in_flight_bytes: usize,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_in_flight_bytes", &self.max_in_flight_bytes)
            .field("in_flight_bytes", &self.in_flight_bytes())
            .field("body_timeout", &self.body_timeout)
            .finish_non_exhaustive()
    }
}

/// Why an export's body was not stored.
#[derive(Debug)]
enum Failure {
    /// Over the size limit, as sent or inflated.
    TooLarge,
    /// Undecodable; the message says why.
    Malformed(String),
    /// The body did not arrive before the deadline.
    TimedOut,
    /// Reading the body failed (the client went away or broke the protocol).
    Unreadable(String),
    /// No room in the in-flight budget.
    Busy,
    /// Decoding would take this many bytes of the in-flight budget, more than all of it
    /// (OTLP/JSON, see [`json_charge`]).
    TooLargeToDecode(usize),
}

const FAULT_MESSAGE: &str = "simulated failure (lightstep-receiver fault knob)";
const SHUTTING_DOWN_MESSAGE: &str = "the receiver is shutting down";
const BUSY_MESSAGE: &str = "the receiver is receiving too many request bytes at once; retry later";
const TIMED_OUT_MESSAGE: &str = "the request body did not arrive in time";
const UNAUTHENTICATED_MESSAGE: &str = "missing or wrong lightstep-access-token header";

/// What a plain (uncompressed) OTLP/JSON body of `len` bytes holds of the in-flight budget
/// while it is decoded: itself and the transcoder's working memory (about 3.25 times the
/// body, [`crate::json::working_memory`]). A protobuf body is decoded in place and holds its
/// length.
pub(crate) fn json_charge(len: usize) -> usize {
    len.saturating_add(crate::json::working_memory(len))
}

/// Compares two tokens in time that depends only on the expected token's length, so that the
/// response time does not tell a guesser how many leading bytes were right.
fn tokens_match(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = expected.len() ^ presented.len();
    for (i, e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(0);
        diff |= usize::from(e ^ p);
    }
    std::hint::black_box(diff) == 0
}

impl App {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            store: settings.store,
            faults: settings.faults,
            token: settings.token,
            max_request_bytes: settings.max_request_bytes,
            body_timeout: settings.body_timeout,
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight_bytes)),
            max_in_flight_bytes: settings.max_in_flight_bytes,
            shutdown: settings.shutdown,
        }
    }

    /// The largest request body taken, as sent or inflated.
    pub(crate) fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// Bytes of request bodies held now (reserved in the in-flight budget).
    pub(crate) fn in_flight_bytes(&self) -> usize {
        self.max_in_flight_bytes
            .saturating_sub(self.in_flight.available_permits())
    }

    /// Handles one request from either listener.
    pub(crate) async fn handle<B>(
        self: Arc<Self>,
        req: Request<B>,
        conn: ConnInfo,
    ) -> Result<Response<Body>, Infallible>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let is_grpc = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        if is_grpc {
            Ok(self.handle_grpc(req, conn).await)
        } else {
            Ok(self.handle_http(req, conn).await)
        }
    }

    /// Whether `headers` carry the required token (always, when none is required). Compared
    /// in constant time. A request refused here is counted, and nothing of it is recorded: the
    /// token it presented may be a real one meant for another backend, and a record would keep
    /// it (and show it to whoever reads [`SpanStore::requests`]).
    fn authenticate(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let presented = headers
            .get(crate::ACCESS_TOKEN_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if tokens_match(expected, presented) {
            return true;
        }
        let counters = self.store.counters();
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters
            .requests_unauthenticated
            .fetch_add(1, Ordering::Relaxed);
        false
    }

    /// The fault knobs, which every authenticated export goes through before its body is read:
    /// a simulated failure, then a simulated delay. Returns why the request is refused, if it is.
    async fn apply_faults(&self, info: &Arc<RequestInfo>) -> Option<&'static str> {
        if self.faults.take_failure() {
            self.store
                .counters()
                .requests_failed_by_fault
                .fetch_add(1, Ordering::Relaxed);
            self.store
                .record(Arc::clone(info), RequestOutcome::FaultInjected);
            return Some(FAULT_MESSAGE);
        }
        let delay = self.faults.response_delay();
        if !delay.is_zero() {
            let mut shutdown = self.shutdown.clone();
            let _held = self.faults.hold();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                // Shutting down ends a simulated black hole instead of waiting it out.
                _ = shutdown.wait_for(|stop| *stop) => {
                    self.store
                        .counters()
                        .requests_failed_by_fault
                        .fetch_add(1, Ordering::Relaxed);
                    self.store
                        .record(Arc::clone(info), RequestOutcome::FaultInjected);
                    return Some(SHUTTING_DOWN_MESSAGE);
                }
            }
        }
        None
    }

    /// Reserves `bytes` of the in-flight budget, waiting at most [`IN_FLIGHT_WAIT`] (and not
    /// past `deadline`).
    async fn reserve(
        &self,
        bytes: usize,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, Failure> {
        // Never more than the whole budget, which would wait forever; a request is at most the
        // size limit (plus a gRPC frame header), and the budget at least that.
        let bytes = bytes.min(self.max_in_flight_bytes);
        let permits = u32::try_from(bytes).map_err(|_| Failure::TooLarge)?;
        let until = deadline.min(Instant::now() + IN_FLIGHT_WAIT);
        match tokio::time::timeout_at(
            until,
            Arc::clone(&self.in_flight).acquire_many_owned(permits),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; either way there is no room.
            Ok(Err(_)) | Err(_) => Err(Failure::Busy),
        }
    }

    /// Counts and records a failed export, and says what to answer.
    fn record_failure(&self, info: Arc<RequestInfo>, failure: &Failure) {
        let counters = self.store.counters();
        let outcome = match failure {
            Failure::TooLarge | Failure::TooLargeToDecode(_) => {
                counters.requests_too_large.fetch_add(1, Ordering::Relaxed);
                RequestOutcome::TooLarge
            }
            Failure::Busy => {
                counters.requests_throttled.fetch_add(1, Ordering::Relaxed);
                RequestOutcome::Throttled
            }
            Failure::Malformed(why) | Failure::Unreadable(why) => {
                counters.requests_malformed.fetch_add(1, Ordering::Relaxed);
                RequestOutcome::Malformed(why.clone())
            }
            Failure::TimedOut => {
                counters.requests_malformed.fetch_add(1, Ordering::Relaxed);
                RequestOutcome::Malformed(TIMED_OUT_MESSAGE.into())
            }
        };
        self.store.record(info, outcome);
    }

    fn too_large_message(&self) -> String {
        format!(
            "request larger than the receiver's limit of {} bytes",
            self.max_request_bytes
        )
    }

    fn too_large_to_decode_message(&self, needed: usize) -> String {
        format!(
            "decoding this OTLP/JSON body takes up to {needed} bytes, more than the receiver's \
             in-flight budget of {} bytes: send smaller requests, or protobuf",
            self.max_in_flight_bytes
        )
    }

    /// Decompresses, decodes and stores a body: on this worker when it is small and plain, on
    /// the blocking pool otherwise. `permit` holds the body's share of the in-flight budget
    /// until the spans are stored.
    async fn store_body(
        &self,
        body: Bytes,
        gzip: bool,
        protocol: Protocol,
        info: &Arc<RequestInfo>,
        permit: OwnedSemaphorePermit,
    ) -> Result<IngestOutcome, Failure> {
        let inline_max = if protocol == Protocol::HttpJson {
            INLINE_JSON_MAX
        } else {
            INLINE_PROTOBUF_MAX
        };
        let job = IngestJob {
            store: self.store.clone(),
            budget: Arc::clone(&self.in_flight),
            limit: self.max_request_bytes,
            max_in_flight_bytes: self.max_in_flight_bytes,
            protocol,
            gzip,
            info: Arc::clone(info),
        };
        if !gzip && body.len() < inline_max {
            return job.run(body, permit);
        }
        match tokio::task::spawn_blocking(move || job.run(body, permit)).await {
            Ok(result) => result,
            Err(e) => Err(Failure::Malformed(format!("decoding failed: {e}"))),
        }
    }

    async fn handle_grpc<B>(&self, req: Request<B>, conn: ConnInfo) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        // The token first, as for OTLP/HTTP: a request without it learns nothing else about
        // the receiver (not even whether a fault knob is on), and no record of it is made.
        if !self.authenticate(req.headers()) {
            return Status::unauthenticated("missing or wrong lightstep-access-token metadata")
                .into_http();
        }
        let info = Arc::new(RequestInfo::new(
            Protocol::Grpc,
            req.headers().clone(),
            Some(conn.peer),
            conn.tls,
        ));
        if let Some(why) = self.apply_faults(&info).await {
            return Status::unavailable(why).into_http();
        }
        if req.uri().path() != GRPC_EXPORT_PATH {
            return Status::unimplemented(
                "this receiver serves opentelemetry.proto.collector.trace.v1.TraceService/Export only",
            )
            .into_http();
        }
        let gzip = match req
            .headers()
            .get("grpc-encoding")
            .map(HeaderValue::as_bytes)
        {
            None | Some(b"identity") => false,
            Some(b"gzip") => true,
            Some(_) => {
                let why = "unsupported grpc-encoding: use gzip or identity";
                self.record_failure(info, &Failure::Malformed(why.into()));
                let mut resp = Status::unimplemented(why).into_http();
                resp.headers_mut().insert(
                    "grpc-accept-encoding",
                    HeaderValue::from_static("gzip,identity"),
                );
                return resp;
            }
        };
        let deadline = Instant::now() + self.body_timeout;
        let result = match self
            .read_grpc_message(req.into_body(), gzip, deadline)
            .await
        {
            Ok((message, compressed, permit)) => {
                self.store_body(message, compressed, Protocol::Grpc, &info, permit)
                    .await
            }
            Err(failure) => Err(failure),
        };
        match result {
            Ok(outcome) => {
                let response = outcome.to_response();
                self.record_exported(info, &outcome);
                grpc_response(&response)
            }
            Err(failure) => {
                self.record_failure(info, &failure);
                self.grpc_status(failure).into_http()
            }
        }
    }

    /// The gRPC status of a failed export.
    fn grpc_status(&self, failure: Failure) -> Status {
        let (code, message) = match failure {
            Failure::TooLarge => (Code::ResourceExhausted, self.too_large_message()),
            Failure::Malformed(why) => (Code::InvalidArgument, why),
            Failure::Unreadable(why) => (Code::Cancelled, why),
            Failure::TimedOut => (Code::DeadlineExceeded, TIMED_OUT_MESSAGE.into()),
            Failure::Busy => (Code::Unavailable, BUSY_MESSAGE.into()),
            Failure::TooLargeToDecode(needed) => (
                Code::ResourceExhausted,
                self.too_large_to_decode_message(needed),
            ),
        };
        Status::new(code, message)
    }

    /// An export that tonic's generated server has already read and decoded
    /// ([`TraceServiceHandler`]): the same token check, fault knobs, in-flight budget, store
    /// and records as the receiver's own gRPC handler.
    async fn export_decoded(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        let peer = request.remote_addr();
        let (metadata, _, message) = request.into_parts();
        let headers = metadata.into_headers();
        if !self.authenticate(&headers) {
            return Err(Status::unauthenticated(
                "missing or wrong lightstep-access-token metadata",
            ));
        }
        // Mounted on a server that outlives the receiver: nothing more is taken once the
        // receiver has shut down, as its own listeners take nothing more.
        if *self.shutdown.borrow() {
            return Err(Status::unavailable(SHUTTING_DOWN_MESSAGE));
        }
        let info = Arc::new(RequestInfo::new(Protocol::Grpc, headers, peer, false));
        if let Some(why) = self.apply_faults(&info).await {
            return Err(Status::unavailable(why));
        }
        // The store keeps spans as their protobuf bytes: the message is encoded again, and
        // that encoding is what the in-flight budget is charged with. The decoded message is
        // freed as soon as it is encoded; a large one is encoded off the async workers.
        let len = message.encoded_len();
        let deadline = Instant::now() + self.body_timeout;
        let encode = move || Bytes::from(message.encode_to_vec());
        let result = match self.reserve(len, deadline).await {
            Ok(permit) => {
                // The reservation goes with the encoding: a client that goes away meanwhile
                // does not free it while the blocking thread still allocates.
                let encoded = if len < INLINE_PROTOBUF_MAX {
                    Ok((encode(), permit))
                } else {
                    tokio::task::spawn_blocking(move || (encode(), permit))
                        .await
                        .map_err(|e| Failure::Malformed(format!("encoding failed: {e}")))
                };
                match encoded {
                    Ok((body, permit)) => {
                        self.store_body(body, false, Protocol::Grpc, &info, permit)
                            .await
                    }
                    Err(failure) => Err(failure),
                }
            }
            Err(failure) => Err(failure),
        };
        match result {
            Ok(outcome) => {
                let response = outcome.to_response();
                self.record_exported(info, &outcome);
                Ok(tonic::Response::new(response))
            }
            Err(failure) => {
                self.record_failure(info, &failure);
                Err(self.grpc_status(failure))
            }
        }
    }

    /// Reads the one message of a unary gRPC request: the 5-byte header (compressed flag,
    /// length), then, once its length is reserved in the in-flight budget, the message. Returns
    /// the message, whether it is compressed, and the reservation.
    async fn read_grpc_message<B>(
        &self,
        body: B,
        gzip_allowed: bool,
        deadline: Instant,
    ) -> Result<(Bytes, bool, OwnedSemaphorePermit), Failure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let mut body = std::pin::pin!(body);
        let mut buf: Vec<u8> = Vec::new();
        let mut expected: Option<(usize, OwnedSemaphorePermit)> = None;
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => return Err(Failure::TimedOut),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(Failure::Unreadable(format!(
                        "could not read the request body: {}",
                        e.into()
                    )));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            // Request trailers carry nothing an export needs.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            match &expected {
                None if buf.len() >= 5 => {
                    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
                    let len = usize::try_from(len).map_err(|_| Failure::TooLarge)?;
                    if len > self.max_request_bytes {
                        return Err(Failure::TooLarge);
                    }
                    match buf[0] {
                        0 => {}
                        1 if gzip_allowed => {}
                        1 => {
                            return Err(Failure::Malformed(
                                "a compressed message without grpc-encoding".into(),
                            ));
                        }
                        _ => {
                            return Err(Failure::Malformed(
                                "invalid gRPC message compression flag".into(),
                            ));
                        }
                    }
                    let permit = self.reserve(5 + len, deadline).await?;
                    buf.reserve_exact((5 + len).saturating_sub(buf.len()));
                    expected = Some((5 + len, permit));
                }
                None => {}
                Some(_) => {}
            }
            if let Some((total, _)) = &expected
                && buf.len() > *total
            {
                return Err(Failure::Malformed(
                    "a unary export carries exactly one message".into(),
                ));
            }
        }
        match expected {
            None if buf.is_empty() => Err(Failure::Malformed("missing request message".into())),
            Some((total, permit)) if buf.len() == total => {
                let compressed = buf[0] == 1;
                let message = Bytes::from(buf).slice(5..);
                Ok((message, compressed, permit))
            }
            _ => Err(Failure::Malformed("the gRPC message is truncated".into())),
        }
    }

    fn record_exported(&self, info: Arc<RequestInfo>, outcome: &IngestOutcome) {
        self.store.record(
            info,
            RequestOutcome::Exported {
                accepted: outcome.accepted,
                rejected: outcome.rejected(),
            },
        );
    }

    async fn handle_http<B>(&self, req: Request<B>, conn: ConnInfo) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        if req.uri().path() != TRACES_PATH {
            return plain(
                StatusCode::NOT_FOUND,
                "not found: this receiver serves OTLP traces at POST /v1/traces",
            );
        }
        if req.method() != Method::POST {
            let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return resp;
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let known = match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Protocol::HttpProtobuf),
            "application/json" => Some(Protocol::HttpJson),
            _ => None,
        };
        // The token first: a request without the right token learns nothing else about what
        // the receiver accepts, and no record of it is made.
        if !self.authenticate(req.headers()) {
            return match known {
                Some(protocol) => status_response(
                    protocol,
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    UNAUTHENTICATED_MESSAGE,
                ),
                None => plain(StatusCode::UNAUTHORIZED, UNAUTHENTICATED_MESSAGE),
            };
        }
        let protocol = match known {
            Some(protocol) => protocol,
            None => {
                let counters = self.store.counters();
                counters.requests.fetch_add(1, Ordering::Relaxed);
                counters.requests_malformed.fetch_add(1, Ordering::Relaxed);
                return plain(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported content type: use application/x-protobuf or application/json",
                );
            }
        };
        let info = Arc::new(RequestInfo::new(
            protocol,
            req.headers().clone(),
            Some(conn.peer),
            conn.tls,
        ));
        let gzip = match req
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("" | "identity") => false,
            Some("gzip") => true,
            Some(_) => {
                let why = "unsupported content encoding: use gzip or none";
                self.record_failure(info, &Failure::Malformed(why.into()));
                return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, why);
            }
        };

        if let Some(why) = self.apply_faults(&info).await {
            return retry_later(status_response(
                protocol,
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                why,
            ));
        }

        let deadline = Instant::now() + self.body_timeout;
        let plain_json = protocol == Protocol::HttpJson && !gzip;
        let result = match self.read_http_body(req, deadline, plain_json).await {
            Ok((body, permit)) => self.store_body(body, gzip, protocol, &info, permit).await,
            Err(failure) => Err(failure),
        };
        match result {
            Ok(outcome) => {
                let response = outcome.to_response();
                self.record_exported(info, &outcome);
                encoded_response(protocol, StatusCode::OK, &response)
            }
            Err(failure) => {
                self.record_failure(info, &failure);
                match failure {
                    Failure::TooLarge => status_response(
                        protocol,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        Code::ResourceExhausted,
                        &self.too_large_message(),
                    ),
                    Failure::Malformed(why) => status_response(
                        protocol,
                        StatusCode::BAD_REQUEST,
                        Code::InvalidArgument,
                        &why,
                    ),
                    Failure::Unreadable(why) => plain(StatusCode::BAD_REQUEST, &why),
                    Failure::TimedOut => plain(StatusCode::REQUEST_TIMEOUT, TIMED_OUT_MESSAGE),
                    Failure::Busy => retry_later(status_response(
                        protocol,
                        StatusCode::SERVICE_UNAVAILABLE,
                        Code::Unavailable,
                        BUSY_MESSAGE,
                    )),
                    Failure::TooLargeToDecode(needed) => status_response(
                        protocol,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        Code::ResourceExhausted,
                        &self.too_large_to_decode_message(needed),
                    ),
                }
            }
        }
    }

    /// Reads an OTLP/HTTP body within the size limit. Once its first bytes arrive (a client
    /// that has sent only its headers holds nothing), it reserves its declared length (or the
    /// size limit, when no length is declared) in the in-flight budget; for a plain OTLP/JSON
    /// body, what decoding it takes as well ([`json_charge`]), so that it waits for room like
    /// any other body instead of being refused as busy later.
    async fn read_http_body<B>(
        &self,
        req: Request<B>,
        deadline: Instant,
        plain_json: bool,
    ) -> Result<(Bytes, OwnedSemaphorePermit), Failure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let limit = self.max_request_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(Failure::TooLarge);
        }
        let charge = |len: usize| if plain_json { json_charge(len) } else { len };
        let declared = declared.map(|len| usize::try_from(len).unwrap_or(limit));
        if let Some(needed) = declared.map(charge)
            && needed > self.max_in_flight_bytes
        {
            return Err(Failure::TooLargeToDecode(needed));
        }
        let mut body = std::pin::pin!(Limited::new(req.into_body(), limit));
        let read_error = |e: Box<dyn std::error::Error + Send + Sync>| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                Failure::TooLarge
            } else {
                Failure::Unreadable(format!("could not read the request body: {e}"))
            }
        };
        // Nothing is reserved until the first frame arrives (or the body ends).
        let mut permit = None;
        // The frames as they came; with a declared length, joined as they arrive into a buffer
        // of exactly that size (the length is enforced by the HTTP layer), so that the body is
        // never held twice; without one, joined once at the end into a buffer of the exact
        // total, so that no spare capacity from doubling is held uncharged.
        let mut frames: Vec<Bytes> = Vec::new();
        let mut joined = bytes::BytesMut::new();
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(e))) => return Err(read_error(e)),
                Ok(None) => break,
                Err(_) => return Err(Failure::TimedOut),
            };
            if permit.is_none() {
                permit = Some(
                    self.reserve(declared.map_or(limit, charge), deadline)
                        .await?,
                );
            }
            let Ok(data) = frame.into_data() else {
                continue;
            };
            frames.push(data);
            if let Some(len) = declared
                && (frames.len() > 1 || !joined.is_empty())
            {
                if joined.capacity() == 0 {
                    joined.reserve(len);
                }
                for frame in frames.drain(..) {
                    joined.extend_from_slice(&frame);
                }
            }
        }
        let bytes = if !joined.is_empty() {
            joined.freeze()
        } else if frames.len() <= 1 {
            frames.pop().unwrap_or_default()
        } else {
            let mut exact = bytes::BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
            for frame in &frames {
                exact.extend_from_slice(frame);
            }
            exact.freeze()
        };
        let mut permit = match permit {
            Some(permit) => permit,
            None => self.reserve(0, deadline).await?,
        };
        // A body of unknown length gives back what it does not need.
        drop(permit.split(permit.num_permits().saturating_sub(charge(bytes.len()))));
        Ok((bytes, permit))
    }
}

/// opentelemetry-proto's generated OTLP/gRPC `TraceService`, over a running receiver: see
/// [`RunningReceiver::trace_service`](crate::RunningReceiver::trace_service).
#[derive(Clone)]
pub struct TraceServiceHandler {
    app: Arc<App>,
}

impl TraceServiceHandler {
    pub(crate) fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

impl fmt::Debug for TraceServiceHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceServiceHandler")
            .field("app", &self.app)
            .finish()
    }
}

#[tonic::async_trait]
impl TraceService for TraceServiceHandler {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        self.app.export_decoded(request).await
    }
}

/// The work of storing one body, movable to the blocking pool.
struct IngestJob {
    store: SpanStore,
    budget: Arc<Semaphore>,
    limit: usize,
    max_in_flight_bytes: usize,
    protocol: Protocol,
    gzip: bool,
    info: Arc<RequestInfo>,
}

impl IngestJob {
    /// Stores `body`, holding `permit` (its share of the in-flight budget) until it is done.
    fn run(self, body: Bytes, permit: OwnedSemaphorePermit) -> Result<IngestOutcome, Failure> {
        if !self.gzip {
            let held = body.len();
            return self.decode(&body, held, permit);
        }
        let (inflated, permit) = self.inflate_charged(body, permit)?;
        self.decode(&inflated, inflated.capacity(), permit)
    }

    /// Inflates a gzip body. `permit` covers the compressed body on entry; on return it covers
    /// the inflated buffer only.
    fn inflate_charged(
        &self,
        body: Bytes,
        mut permit: OwnedSemaphorePermit,
    ) -> Result<(Vec<u8>, OwnedSemaphorePermit), Failure> {
        // The reservation grows with the inflated buffer, before each allocation (so a small
        // gzip body cannot make the receiver allocate past the budget and only then be
        // refused). The compressed body stays charged while it is inflated: both are held.
        // The charge is capped at the whole budget, so that a body whose two copies exceed it
        // is still taken when the receiver is otherwise idle (it could never be otherwise);
        // then up to one compressed body is held beyond the budget.
        let compressed = body.len();
        let mut inflated = inflate(&body, self.limit, |capacity| {
            self.grow(
                &mut permit,
                compressed
                    .saturating_add(capacity)
                    .min(self.max_in_flight_bytes),
            )
        })?;
        drop(body);
        // The compressed body is gone: its share goes back to the budget.
        let release = permit
            .num_permits()
            .saturating_sub(inflated.capacity())
            .min(compressed);
        if release > 0 {
            drop(permit.split(release));
        }
        if self.protocol == Protocol::HttpJson {
            // Decoding JSON is charged on top of the inflated buffer: the buffer's length, as
            // for a plain body, not the capacity its doubling left (up to twice that).
            inflated.shrink_to_fit();
        }
        Ok((inflated, permit))
    }

    /// Decodes and stores an uncompressed body; `held` is what `permit` already covers of it.
    /// OTLP/JSON first has the permit grow by what transcoding it takes.
    fn decode(
        &self,
        plain: &[u8],
        held: usize,
        mut permit: OwnedSemaphorePermit,
    ) -> Result<IngestOutcome, Failure> {
        if self.protocol == Protocol::HttpJson {
            let needed = held.saturating_add(crate::json::working_memory(plain.len()));
            if needed > self.max_in_flight_bytes {
                return Err(Failure::TooLargeToDecode(needed));
            }
            self.grow(&mut permit, needed)?;
        }
        let outcome = decode_and_store(&self.store, plain, self.protocol, &self.info);
        drop(permit);
        outcome
    }

    /// Grows `permit` to `bytes`, without waiting: waiting while holding a reservation could
    /// deadlock against another request doing the same.
    fn grow(&self, permit: &mut OwnedSemaphorePermit, bytes: usize) -> Result<(), Failure> {
        let more = bytes.saturating_sub(permit.num_permits());
        if more > 0 {
            let more = u32::try_from(more).map_err(|_| Failure::TooLarge)?;
            let extra = Arc::clone(&self.budget)
                .try_acquire_many_owned(more)
                .map_err(|_| Failure::Busy)?;
            permit.merge(extra);
        }
        Ok(())
    }
}

/// Decodes an uncompressed body and stores its spans.
fn decode_and_store(
    store: &SpanStore,
    body: &[u8],
    protocol: Protocol,
    info: &Arc<RequestInfo>,
) -> Result<IngestOutcome, Failure> {
    match protocol {
        Protocol::HttpJson => {
            let encoded = crate::json::to_protobuf(body).map_err(Failure::Malformed)?;
            store
                .ingest_protobuf(&encoded, info)
                .map_err(|e| Failure::Malformed(format!("invalid OTLP/JSON body: {e}")))
        }
        _ => store
            .ingest_protobuf(body, info)
            .map_err(|e| Failure::Malformed(format!("invalid protobuf body: {e}"))),
    }
}

/// Decompresses a gzip body, stopping at `limit` bytes so that a small gzip bomb cannot expand
/// without bound. `reserve(capacity)` is called before the output buffer grows to `capacity`
/// bytes, and may refuse.
fn inflate(
    bytes: &[u8],
    limit: usize,
    mut reserve: impl FnMut(usize) -> Result<(), Failure>,
) -> Result<Vec<u8>, Failure> {
    let cap = limit.saturating_add(1);
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    loop {
        if out.len() == out.capacity() {
            // Twice the compressed size to start with, then doubling.
            let capacity = if out.capacity() == 0 {
                bytes.len().saturating_mul(2).max(4096)
            } else {
                out.len().saturating_mul(2)
            }
            .min(cap);
            reserve(capacity)?;
            out.reserve_exact(capacity - out.len());
        }
        let room = out.capacity() - out.len();
        let read = (&mut decoder)
            .take(u64::try_from(room).unwrap_or(u64::MAX))
            .read_to_end(&mut out)
            .map_err(|e| Failure::Malformed(format!("invalid gzip body: {e}")))?;
        if out.len() > limit {
            return Err(Failure::TooLarge);
        }
        // Less than the room read: the decoder reached the end.
        if read < room {
            return Ok(out);
        }
    }
}

/// A unary gRPC response body: one message, then the `grpc-status: 0` trailers.
struct UnaryBody {
    message: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for UnaryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(message) = this.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.trailers.is_none()
    }
}

/// The successful answer to a gRPC export.
fn grpc_response(response: &ExportTraceServiceResponse) -> Response<Body> {
    let len = response.encoded_len();
    let mut frame = Vec::with_capacity(5 + len);
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    response.encode_raw(&mut frame);
    let mut trailers = HeaderMap::new();
    trailers.insert(Status::GRPC_STATUS, HeaderValue::from_static("0"));
    let mut resp = Response::new(Body::new(UnaryBody {
        message: Some(Bytes::from(frame)),
        trailers: Some(trailers),
    }));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    resp
}

fn retry_later(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Body::new(Full::new(Bytes::from(text.to_owned()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// An OTLP/HTTP error response: a `google.rpc.Status` in the request's encoding, as the OTLP
/// specification asks.
fn status_response(
    protocol: Protocol,
    status: StatusCode,
    code: Code,
    message: &str,
) -> Response<Body> {
    let (content_type, body) = if protocol == Protocol::HttpJson {
        let json = serde_json::json!({ "code": code as i32, "message": message });
        ("application/json", Bytes::from(json.to_string()))
    } else {
        // google.rpc.Status { int32 code = 1; string message = 2; } encoded by hand: the one
        // message this crate needs does not justify generating the googleapis protos.
        let mut buf = Vec::new();
        prost::encoding::int32::encode(1, &(code as i32), &mut buf);
        prost::encoding::string::encode(2, &message.to_owned(), &mut buf);
        ("application/x-protobuf", Bytes::from(buf))
    };
    let mut resp = Response::new(Body::new(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn encoded_response(
    protocol: Protocol,
    status: StatusCode,
    response: &ExportTraceServiceResponse,
) -> Response<Body> {
    let (content_type, body) = if protocol == Protocol::HttpJson {
        match serde_json::to_vec(response) {
            Ok(json) => ("application/json", Bytes::from(json)),
            // Serializing a response we built ourselves cannot fail; answer an empty success
            // rather than failing the client's export if it somehow did.
            Err(_) => ("application/json", Bytes::from_static(b"{}")),
        }
    } else {
        (
            "application/x-protobuf",
            Bytes::from(response.encode_to_vec()),
        )
    };
    let mut resp = Response::new(Body::new(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WhenFull;

    /// Decodes (and stores, in a store of its own) a body as an export would.
    fn decode_http(
        bytes: &[u8],
        gzip: bool,
        protocol: Protocol,
        limit: usize,
    ) -> Result<IngestOutcome, Failure> {
        let store = SpanStore::new(1000, usize::MAX, WhenFull::RejectNew);
        let info = Arc::new(RequestInfo::new(protocol, HeaderMap::new(), None, false));
        let body = if gzip {
            inflate(bytes, limit, |_| Ok(()))?
        } else {
            bytes.to_vec()
        };
        decode_and_store(&store, &body, protocol, &info)
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(tokens_match(b"abc", b"abc"));
        assert!(!tokens_match(b"abc", b"abd"));
        assert!(!tokens_match(b"abc", b"ab"));
        assert!(!tokens_match(b"abc", b"abcd"));
        assert!(!tokens_match(b"abc", b""));
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).expect("compress");
        let bomb = enc.finish().expect("finish");
        assert!(bomb.len() < 4096);
        assert!(matches!(
            decode_http(&bomb, true, Protocol::HttpProtobuf, 64 * 1024),
            Err(Failure::TooLarge)
        ));
    }

    /// An ingest job over `budget` bytes of in-flight budget, as the handlers make one.
    fn gzip_job(budget: &Arc<Semaphore>, max_in_flight_bytes: usize) -> IngestJob {
        IngestJob {
            store: SpanStore::new(1000, usize::MAX, WhenFull::RejectNew),
            budget: Arc::clone(budget),
            limit: 4 << 20,
            max_in_flight_bytes,
            protocol: Protocol::HttpProtobuf,
            gzip: true,
            info: Arc::new(RequestInfo::new(
                Protocol::HttpProtobuf,
                HeaderMap::new(),
                None,
                false,
            )),
        }
    }

    fn gzip(plain: &[u8]) -> Bytes {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(plain).expect("compress");
        Bytes::from(enc.finish().expect("finish"))
    }

    #[test]
    fn once_inflated_only_the_inflated_buffer_stays_charged() {
        let total = 1 << 20;
        let budget = Arc::new(Semaphore::new(total));
        // Half a mebibyte of text that compresses to a few kibibytes.
        let plain: Vec<u8> = (0..512 * 1024).map(|i| b"span-"[i % 5]).collect();
        let body = gzip(&plain);
        let compressed = body.len();
        let permit = Arc::clone(&budget)
            .try_acquire_many_owned(u32::try_from(compressed).expect("small"))
            .expect("room");
        let job = gzip_job(&budget, total);
        let (inflated, permit) = job.inflate_charged(body, permit).expect("inflates");
        assert_eq!(inflated, plain);
        // The compressed body went back to the budget; the inflated buffer is still charged,
        // with its whole capacity.
        assert_eq!(permit.num_permits(), inflated.capacity());
        assert_eq!(budget.available_permits(), total - inflated.capacity());
        drop(permit);
        assert_eq!(budget.available_permits(), total);
    }

    #[test]
    fn a_body_whose_two_copies_exceed_the_budget_is_charged_the_whole_budget_then_its_buffer() {
        let plain: Vec<u8> = (0..512 * 1024).map(|i| b"span-"[i % 5]).collect();
        let body = gzip(&plain);
        let compressed = body.len();
        // Room for the inflated buffer, not for it and the compressed body together.
        let capacity = inflate(&body, 4 << 20, |_| Ok(()))
            .expect("inflates")
            .capacity();
        let total = capacity + compressed / 2;
        let budget = Arc::new(Semaphore::new(total));
        let permit = Arc::clone(&budget)
            .try_acquire_many_owned(u32::try_from(compressed).expect("small"))
            .expect("room");
        let job = gzip_job(&budget, total);
        let (inflated, permit) = job.inflate_charged(body, permit).expect("inflates");
        assert_eq!(inflated.capacity(), capacity);
        assert_eq!(permit.num_permits(), capacity);
        assert_eq!(budget.available_permits(), total - capacity);
    }

    #[test]
    fn bad_gzip_is_malformed() {
        assert!(matches!(
            decode_http(b"not gzip", true, Protocol::HttpProtobuf, 1024),
            Err(Failure::Malformed(_))
        ));
    }

    proptest::proptest! {
        /// Whatever the bytes, decoding answers (Ok or an error) and never panics.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..2048), gzip in proptest::arbitrary::any::<bool>()) {
            for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
                let _ = decode_http(&bytes, gzip, protocol, 64 * 1024);
            }
        }

        /// Corrupting bytes of a valid request (protobuf and JSON) never panics either.
        #[test]
        fn decoding_corrupted_requests_never_panics(flips in proptest::collection::vec((proptest::arbitrary::any::<usize>(), proptest::arbitrary::any::<u8>()), 1..8)) {
            let json = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},"scopeSpans":[{"scope":{"name":"n"},"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"x","startTimeUnixNano":"1","endTimeUnixNano":2,"attributes":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"},{"kvlistValue":{"values":[{"key":"k","value":{"doubleValue":1.5}}]}}]}}}]}]}]}]}"#;
            let request = crate::json::decode_request(json).expect("valid");
            let proto = request.encode_to_vec();
            for (original, protocol) in [(json.to_vec(), Protocol::HttpJson), (proto, Protocol::HttpProtobuf)] {
                let mut bytes = original;
                for (at, value) in &flips {
                    let len = bytes.len();
                    bytes[at % len] = *value;
                }
                let _ = decode_http(&bytes, false, protocol, 64 * 1024);
            }
        }
    }
}

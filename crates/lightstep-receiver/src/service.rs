//! Request handling: one entry point for every HTTP request either listener accepts.
//!
//! gRPC requests (content type `application/grpc*`) go to `opentelemetry-proto`'s generated
//! `TraceServiceServer`; everything else is OTLP/HTTP. The checks every export shares (fault
//! knobs, the access token) run here, before a byte of the body is read, so a refused request
//! costs nothing and stores nothing.

use std::convert::Infallible;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::codegen::Service as _;
use tonic::{Code, Status};

use crate::faults::Faults;
use crate::store::{Protocol, RequestInfo, RequestOutcome, SpanStore};

/// The OTLP/HTTP path for traces.
pub(crate) const TRACES_PATH: &str = "/v1/traces";

/// Bodies at least this large are decompressed and decoded on the blocking pool, so that a
/// large export never stalls the async worker that other connections share.
const BLOCKING_DECODE_THRESHOLD: usize = 256 * 1024;

/// How long a client may take to send a request body: a hang guard against clients that open a
/// request and trickle (or never send) the body while holding a connection slot.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The per-connection facts the handlers need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: std::net::SocketAddr,
    pub(crate) tls: bool,
}

/// Everything a request needs, shared by all connections of both listeners.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) store: SpanStore,
    pub(crate) faults: Faults,
    pub(crate) token: Option<Vec<u8>>,
    pub(crate) max_request_bytes: usize,
    pub(crate) grpc: TraceServiceServer<GrpcHandler>,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Why a request was refused before its body was read.
enum Refusal {
    Unavailable(&'static str),
    Unauthenticated,
}

const FAULT_MESSAGE: &str = "simulated failure (lightstep-receiver fault knob)";
const SHUTTING_DOWN_MESSAGE: &str = "the receiver is shutting down";

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
    pub(crate) fn new(
        store: SpanStore,
        faults: Faults,
        token: Option<Vec<u8>>,
        max_request_bytes: usize,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let grpc = TraceServiceServer::new(GrpcHandler {
            store: store.clone(),
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_request_bytes);
        Self {
            store,
            faults,
            token,
            max_request_bytes,
            grpc,
            shutdown,
        }
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
    /// in constant time.
    fn token_accepted(&self, headers: &http::HeaderMap) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let presented = headers
            .get(crate::ACCESS_TOKEN_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        tokens_match(expected, presented)
    }

    /// The checks shared by both protocols, in the order a real backend would apply them:
    /// availability, latency, then authentication. (OTLP/HTTP checks the token once more
    /// before anything else, so that a request without it learns nothing about the rest.)
    async fn precheck(&self, info: &Arc<RequestInfo>) -> Option<Refusal> {
        if self.faults.take_failure() {
            self.store
                .counters()
                .requests_failed_by_fault
                .fetch_add(1, Ordering::Relaxed);
            self.store
                .record(Arc::clone(info), RequestOutcome::FaultInjected);
            return Some(Refusal::Unavailable(FAULT_MESSAGE));
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
                        .record(Arc::clone(info), RequestOutcome::FaultInjected);
                    return Some(Refusal::Unavailable(SHUTTING_DOWN_MESSAGE));
                }
            }
        }
        if !self.token_accepted(&info.headers) {
            self.store
                .counters()
                .requests_unauthenticated
                .fetch_add(1, Ordering::Relaxed);
            self.store
                .record(Arc::clone(info), RequestOutcome::Unauthenticated);
            return Some(Refusal::Unauthenticated);
        }
        None
    }

    async fn handle_grpc<B>(&self, mut req: Request<B>, conn: ConnInfo) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let info = Arc::new(RequestInfo::new(
            Protocol::Grpc,
            req.headers().clone(),
            Some(conn.peer),
            conn.tls,
        ));
        match self.precheck(&info).await {
            Some(Refusal::Unavailable(why)) => return Status::unavailable(why).into_http(),
            Some(Refusal::Unauthenticated) => {
                return Status::unauthenticated("missing or wrong lightstep-access-token metadata")
                    .into_http();
            }
            None => {}
        }
        req.extensions_mut().insert(Arc::clone(&info));
        let mut grpc = self.grpc.clone();
        let Ok(mut resp) = grpc.call(req).await;
        // tonic answers a message over the size limit with OUT_OF_RANGE and an undecodable one
        // with INTERNAL; OTLP (and the gRPC spec for size limits) expect RESOURCE_EXHAUSTED and
        // INVALID_ARGUMENT. Our own handler never returns either code, so every such status
        // here comes from decoding the client's message and can be rewritten. Such statuses are
        // sent trailers-only, that is in the response headers.
        let code = resp
            .headers()
            .get(Status::GRPC_STATUS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map(Code::from_i32);
        let message = || {
            resp.headers()
                .get(Status::GRPC_MESSAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        match code {
            Some(Code::OutOfRange | Code::ResourceExhausted) => {
                self.store
                    .counters()
                    .requests_too_large
                    .fetch_add(1, Ordering::Relaxed);
                self.store.record(info, RequestOutcome::TooLarge);
                resp.headers_mut().insert(
                    Status::GRPC_STATUS,
                    HeaderValue::from(Code::ResourceExhausted as i32),
                );
            }
            Some(Code::Internal) => {
                let why = message();
                self.store
                    .counters()
                    .requests_malformed
                    .fetch_add(1, Ordering::Relaxed);
                self.store.record(info, RequestOutcome::Malformed(why));
                resp.headers_mut().insert(
                    Status::GRPC_STATUS,
                    HeaderValue::from(Code::InvalidArgument as i32),
                );
            }
            _ => {}
        }
        resp
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
        // the receiver accepts, and its headers (the presented token among them) are not kept.
        if !self.token_accepted(req.headers()) {
            self.store
                .counters()
                .requests_unauthenticated
                .fetch_add(1, Ordering::Relaxed);
            let why = "missing or wrong lightstep-access-token header";
            return match known {
                Some(protocol) => status_response(
                    protocol,
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    why,
                ),
                None => plain(StatusCode::UNAUTHORIZED, why),
            };
        }
        let protocol = match known {
            Some(protocol) => protocol,
            None => {
                self.store
                    .counters()
                    .requests_malformed
                    .fetch_add(1, Ordering::Relaxed);
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
                return self.malformed(
                    &info,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported content encoding: use gzip or none".into(),
                );
            }
        };

        match self.precheck(&info).await {
            Some(Refusal::Unavailable(why)) => {
                let mut resp = status_response(
                    protocol,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::Unavailable,
                    why,
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return resp;
            }
            Some(Refusal::Unauthenticated) => {
                return status_response(
                    protocol,
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    "missing or wrong lightstep-access-token header",
                );
            }
            None => {}
        }

        let limit = self.max_request_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return self.too_large(&info, protocol);
        }
        let body = Limited::new(req.into_body(), limit);
        let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, body.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return self.too_large(&info, protocol);
            }
            Ok(Err(e)) => {
                return self.malformed(
                    &info,
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request body: {e}"),
                );
            }
            Err(_) => {
                return self.malformed(
                    &info,
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time".into(),
                );
            }
        };

        let decoded = if gzip || bytes.len() >= BLOCKING_DECODE_THRESHOLD {
            match tokio::task::spawn_blocking(move || decode_http(&bytes, gzip, protocol, limit))
                .await
            {
                Ok(result) => result,
                Err(e) => Err(DecodeError::Malformed(format!("decoding failed: {e}"))),
            }
        } else {
            decode_http(&bytes, gzip, protocol, limit)
        };
        let request = match decoded {
            Ok(request) => request,
            Err(DecodeError::TooLarge) => return self.too_large(&info, protocol),
            Err(DecodeError::Malformed(why)) => {
                return self.malformed_status(&info, protocol, why);
            }
        };

        let outcome = self.store.ingest(request, Arc::clone(&info));
        self.store.record(
            info,
            RequestOutcome::Exported {
                accepted: outcome.accepted,
                rejected: outcome.rejected(),
            },
        );
        let response = outcome.to_response();
        encoded_response(protocol, StatusCode::OK, &response)
    }

    fn too_large(&self, info: &Arc<RequestInfo>, protocol: Protocol) -> Response<Body> {
        self.store
            .counters()
            .requests_too_large
            .fetch_add(1, Ordering::Relaxed);
        self.store
            .record(Arc::clone(info), RequestOutcome::TooLarge);
        status_response(
            protocol,
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::ResourceExhausted,
            &format!(
                "request larger than the receiver's limit of {} bytes",
                self.max_request_bytes
            ),
        )
    }

    fn malformed_status(
        &self,
        info: &Arc<RequestInfo>,
        protocol: Protocol,
        why: String,
    ) -> Response<Body> {
        self.store
            .counters()
            .requests_malformed
            .fetch_add(1, Ordering::Relaxed);
        let resp = status_response(
            protocol,
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            &why,
        );
        self.store
            .record(Arc::clone(info), RequestOutcome::Malformed(why));
        resp
    }

    fn malformed(
        &self,
        info: &Arc<RequestInfo>,
        status: StatusCode,
        why: String,
    ) -> Response<Body> {
        self.store
            .counters()
            .requests_malformed
            .fetch_add(1, Ordering::Relaxed);
        let resp = plain(status, &why);
        self.store
            .record(Arc::clone(info), RequestOutcome::Malformed(why));
        resp
    }
}

enum DecodeError {
    TooLarge,
    Malformed(String),
}

/// Decompresses (bounded by `limit`, so a small gzip bomb cannot expand without bound) and
/// decodes an OTLP/HTTP body.
fn decode_http(
    bytes: &[u8],
    gzip: bool,
    protocol: Protocol,
    limit: usize,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    let inflated;
    let body: &[u8] = if gzip {
        let mut out = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        flate2::read::MultiGzDecoder::new(bytes)
            .take(cap)
            .read_to_end(&mut out)
            .map_err(|e| DecodeError::Malformed(format!("invalid gzip body: {e}")))?;
        if out.len() > limit {
            return Err(DecodeError::TooLarge);
        }
        inflated = out;
        &inflated
    } else {
        bytes
    };
    match protocol {
        Protocol::HttpJson => crate::json::decode_request(body).map_err(DecodeError::Malformed),
        _ => ExportTraceServiceRequest::decode(body)
            .map_err(|e| DecodeError::Malformed(format!("invalid protobuf body: {e}"))),
    }
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

/// The gRPC `TraceService` implementation behind the generated server.
#[derive(Debug)]
pub(crate) struct GrpcHandler {
    store: SpanStore,
}

#[tonic::async_trait]
impl TraceService for GrpcHandler {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        // `App::handle_grpc` always attaches the request's info; the fallback only serves a
        // handler mounted some other way.
        let info = extensions
            .get::<Arc<RequestInfo>>()
            .cloned()
            .unwrap_or_else(|| {
                Arc::new(RequestInfo::new(
                    Protocol::Grpc,
                    metadata.into_headers(),
                    None,
                    false,
                ))
            });
        let outcome = self.store.ingest(message, Arc::clone(&info));
        self.store.record(
            info,
            RequestOutcome::Exported {
                accepted: outcome.accepted,
                rejected: outcome.rejected(),
            },
        );
        Ok(tonic::Response::new(outcome.to_response()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Err(DecodeError::TooLarge)
        ));
    }

    #[test]
    fn bad_gzip_is_malformed() {
        assert!(matches!(
            decode_http(b"not gzip", true, Protocol::HttpProtobuf, 1024),
            Err(DecodeError::Malformed(_))
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

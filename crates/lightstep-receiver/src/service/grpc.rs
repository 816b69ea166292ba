//! OTLP/gRPC: the receiver's own handler of unary `Export` calls (framing, `grpc-encoding`,
//! status codes), and opentelemetry-proto's generated service for mounting on a tonic server
//! of the application's, both on the same checks, budget and store.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Frame;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::{Code, Status};

use super::body::{BodyClock, BodyReader};
use super::{
    App, BUSY_MESSAGE, BoxError, ConnInfo, Failure, INLINE_PROTOBUF_MAX, SHUTTING_DOWN_MESSAGE,
};
use crate::budget::Charge;
use crate::store::{Protocol, RequestInfo};

/// The one gRPC method served.
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

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

impl App {
    pub(super) async fn handle_grpc<B>(&self, req: Request<B>, conn: ConnInfo) -> Response<Body>
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
        let Some(held) = self.charge_headers(req.headers()) else {
            return Status::unavailable(BUSY_MESSAGE).into_http();
        };
        let headers = held.bytes();
        let (parts, body) = req.into_parts();
        // The request keeps a compact copy of its headers; hyper's are freed here.
        let info = Arc::new(RequestInfo::new(
            Protocol::Grpc,
            &parts.headers,
            Some(conn.peer),
            conn.tls,
        ));
        let grpc_encoding = parts.headers.get("grpc-encoding").cloned();
        let path_served = parts.uri.path() == GRPC_EXPORT_PATH;
        drop(parts);
        if let Some(why) = self.apply_faults(&info).await {
            return Status::unavailable(why).into_http();
        }
        if !path_served {
            return Status::unimplemented(
                "this receiver serves opentelemetry.proto.collector.trace.v1.TraceService/Export only",
            )
            .into_http();
        }
        let gzip = match grpc_encoding.as_ref().map(HeaderValue::as_bytes) {
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
        let result = match self.read_grpc_message(body, gzip, headers).await {
            Ok((message, compressed, charge)) => {
                self.store_body(message, compressed, Protocol::Grpc, &info, charge)
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
            Failure::TimedOut(late) => (Code::DeadlineExceeded, late.message()),
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
        let info = Arc::new(RequestInfo::new(Protocol::Grpc, &headers, peer, false));
        drop(headers);
        if let Some(why) = self.apply_faults(&info).await {
            return Err(Status::unavailable(why));
        }
        // The store keeps spans as their protobuf bytes: the message is encoded again, and
        // that encoding is what the in-flight budget is charged with. The decoded message is
        // freed as soon as it is encoded; a large one is encoded off the async workers.
        let len = message.encoded_len();
        let deadline = Instant::now() + self.body_timeout;
        let encode = move || Bytes::from(message.encode_to_vec());
        let result = match self.reserve(len, 0, deadline).await {
            Ok(charge) => {
                // The reservation goes with the encoding: a client that goes away meanwhile
                // does not free it while the blocking thread still allocates.
                let encoded = if len < INLINE_PROTOBUF_MAX {
                    Ok((encode(), charge))
                } else {
                    tokio::task::spawn_blocking(move || (encode(), charge))
                        .await
                        .map_err(|e| Failure::Malformed(format!("encoding failed: {e}")))
                };
                match encoded {
                    Ok((body, charge)) => {
                        self.store_body(body, false, Protocol::Grpc, &info, charge)
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
    /// length), then, once its length is reserved in the in-flight budget, the message, into
    /// one buffer of exactly that size. Returns the message, whether it is compressed, and the
    /// reservation. `headers` is what the request holds for its headers.
    async fn read_grpc_message<B>(
        &self,
        body: B,
        gzip_allowed: bool,
        headers: usize,
    ) -> Result<(Bytes, bool, Charge), Failure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let mut body = BodyReader::new(body, BodyClock::new(self), |e| {
            Failure::Unreadable(format!("could not read the request body: {e}"))
        });
        let mut buf: Vec<u8> = Vec::new();
        let mut expected: Option<(usize, Charge)> = None;
        while let Some(data) = body.next().await? {
            buf.extend_from_slice(&data);
            if expected.is_none() && buf.len() >= 5 {
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
                let charge = self.reserve(5 + len, headers, body.deadline()).await?;
                body.measure_rate();
                buf.reserve_exact((5 + len).saturating_sub(buf.len()));
                expected = Some((5 + len, charge));
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
            Some((total, charge)) if buf.len() == total => {
                let compressed = buf[0] == 1;
                let message = Bytes::from(buf).slice(5..);
                Ok((message, compressed, charge))
            }
            _ => Err(Failure::Malformed("the gRPC message is truncated".into())),
        }
    }
}

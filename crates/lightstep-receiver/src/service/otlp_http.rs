//! OTLP/HTTP: routing (`POST /v1/traces` only), content types, reading the body into one
//! buffer against the size limit and the in-flight budget, and answers in the request's own
//! encoding, as the OTLP specification asks.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Full, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::Code;
use tonic::body::Body;

use super::body::{BodyClock, BodyReader};
use super::{App, BUSY_MESSAGE, BoxError, ConnInfo, Failure, UNAUTHENTICATED_MESSAGE, json_charge};
use crate::budget::Charge;
use crate::store::{Protocol, RequestInfo};

/// Where a body of unknown length spread over several frames starts (or at twice what its
/// first two frames hold).
const INITIAL_BODY_BUFFER: usize = 16 << 10;

/// The OTLP/HTTP path for traces.
pub(crate) const TRACES_PATH: &str = "/v1/traces";

/// The OTLP/HTTP encoding a request's content type names, if it is one this receiver takes.
fn http_protocol(headers: &HeaderMap) -> Option<Protocol> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Protocol::HttpProtobuf),
        "application/json" => Some(Protocol::HttpJson),
        _ => None,
    }
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

impl App {
    pub(super) async fn handle_http<B>(&self, req: Request<B>, conn: ConnInfo) -> Response<Body>
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
        let known = http_protocol(req.headers());
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
        let Some(held) = self.charge_headers(req.headers()) else {
            return retry_later(status_response(
                protocol,
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                BUSY_MESSAGE,
            ));
        };
        let headers = held.bytes();
        let (parts, body) = req.into_parts();
        // The request keeps a compact copy of its headers; hyper's are freed below.
        let info = Arc::new(RequestInfo::new(
            protocol,
            &parts.headers,
            Some(conn.peer),
            conn.tls,
        ));
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let gzip = match parts
            .headers
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

        drop(parts);

        if let Some(why) = self.apply_faults(&info).await {
            return retry_later(status_response(
                protocol,
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                why,
            ));
        }

        let plain_json = protocol == Protocol::HttpJson && !gzip;
        let result = match self
            .read_http_body(body, declared, plain_json, headers)
            .await
        {
            Ok((body, charge)) => self.store_body(body, gzip, protocol, &info, charge).await,
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
                    Failure::TimedOut(late) => status_response(
                        protocol,
                        StatusCode::REQUEST_TIMEOUT,
                        Code::DeadlineExceeded,
                        &late.message(),
                    ),
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
    /// that has sent only its headers holds nothing more than them), it reserves its declared
    /// length (or the size limit, when no length is declared) in the in-flight budget; for a
    /// plain OTLP/JSON body, what decoding it takes as well ([`json_charge`]), so that it waits
    /// for room like any other body instead of being refused as busy later. A body in one
    /// frame is kept as it came; more frames are copied into one buffer: of exactly the
    /// declared length, or, without one, growing by doubling up to the size limit, which is
    /// what was reserved. `headers` is what the request holds for its headers.
    async fn read_http_body<B>(
        &self,
        body: B,
        declared: Option<u64>,
        plain_json: bool,
        headers: usize,
    ) -> Result<(Bytes, Charge), Failure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let limit = self.max_request_bytes;
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(Failure::TooLarge);
        }
        let charge_for = |len: usize| if plain_json { json_charge(len) } else { len };
        let declared = declared.map(|len| usize::try_from(len).unwrap_or(limit));
        if let Some(needed) = declared.map(charge_for)
            && needed > self.budget.largest()
        {
            return Err(Failure::TooLargeToDecode(needed));
        }
        let mut body = BodyReader::new(Limited::new(body, limit), BodyClock::new(self), |e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                Failure::TooLarge
            } else {
                Failure::Unreadable(format!("could not read the request body: {e}"))
            }
        });
        // Nothing is reserved until the first bytes arrive (or the body ends).
        let mut charge = None;
        let mut first: Option<Bytes> = None;
        let mut joined: Vec<u8> = Vec::new();
        while let Some(data) = body.next().await? {
            if data.is_empty() {
                continue;
            }
            if charge.is_none() {
                let reserve = declared.map_or(charge_for(limit), charge_for);
                charge = Some(self.reserve(reserve, headers, body.deadline()).await?);
                body.measure_rate();
            }
            if joined.capacity() == 0 && first.is_none() {
                first = Some(data);
                continue;
            }
            if let Some(first) = first.take() {
                // A second frame: from here on, one buffer holds the body.
                let capacity = declared.unwrap_or_else(|| {
                    (2 * (first.len() + data.len()))
                        .max(INITIAL_BODY_BUFFER)
                        .min(limit)
                });
                joined.reserve_exact(capacity);
                joined.extend_from_slice(&first);
            }
            let needed = joined.len() + data.len();
            if needed > joined.capacity() {
                // Only without a declared length (with one, hyper ends the body at that
                // length, which the buffer holds); never beyond the limit, which `Limited`
                // enforces and which is what was reserved.
                let grown = (2 * joined.capacity()).clamp(needed, limit.max(needed));
                joined.reserve_exact(grown - joined.len());
            }
            joined.extend_from_slice(&data);
        }
        let spare = joined.capacity() - joined.len();
        let bytes = match first {
            Some(first) => first,
            None => Bytes::from(joined),
        };
        let mut charge = match charge {
            Some(charge) => charge,
            None => self.reserve(0, headers, body.deadline()).await?,
        };
        // A body of unknown length gives back what it does not hold: the charge for its length,
        // and the buffer's spare capacity, which stays allocated with it.
        charge.shrink_to(charge_for(bytes.len()) + spare);
        Ok((bytes, charge))
    }
}

//! Request handling: one entry point for every HTTP request either listener accepts.
//!
//! gRPC requests (content type `application/grpc*`) are OTLP/gRPC exports; everything else is
//! OTLP/HTTP. Both are served here, by hand rather than through tonic's generated server, so
//! that both protocols share one path: the access token is checked first, and a request without
//! the right one is counted but never recorded, so that a token presented by mistake (a real
//! one, for another project) is not kept; the request's headers, in memory already, are then
//! charged to the in-flight budget ([`crate::budget`]), or the request is refused at once; the
//! checks every export shares (fault knobs) run before a byte of the body is read, so a refused
//! request costs nothing and stores nothing; the body is read into one buffer against deadlines
//! (its start, a minimum rate, the whole) and the in-flight budget; and it is decoded
//! straight into the store's form ([`crate::wire`]), on the blocking pool when it is large, so
//! that no async worker is held for long.

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
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::{Code, Status};

use crate::budget::{Budget, Charge};
use crate::faults::Faults;
use crate::store::{
    IngestOutcome, Protocol, RequestInfo, RequestOutcome, SpanStore, header_charge,
};

/// A body's error, as hyper and http-body-util give it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// The minimum body rate is measured from this long after a body's room is made: connections
/// take a moment to get up to speed.
const RATE_GRACE: Duration = Duration::from_secs(1);

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
    pub(crate) body_start_timeout: Duration,
    pub(crate) min_body_rate: u32,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Everything a request needs, shared by all connections of both listeners.
pub(crate) struct App {
    store: SpanStore,
    faults: Faults,
    token: Option<Vec<u8>>,
    max_request_bytes: usize,
    body_timeout: Duration,
    body_start_timeout: Duration,
    min_body_rate: u32,
    /// Bytes of requests that may be held (headers, bodies received, decompressed, decoding)
    /// at once.
    budget: Arc<Budget>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_in_flight_bytes", &self.budget.total())
            .field("in_flight_bytes", &self.in_flight_bytes())
            .field("body_timeout", &self.body_timeout)
            .field("body_start_timeout", &self.body_start_timeout)
            .field("min_body_rate", &self.min_body_rate)
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
    /// The body did not arrive in time.
    TimedOut(Late),
    /// Reading the body failed (the client went away or broke the protocol).
    Unreadable(String),
    /// No room in the in-flight budget.
    Busy,
    /// Decoding would take this many bytes of the in-flight budget, more than one request may
    /// hold (OTLP/JSON, see [`json_charge`]).
    TooLargeToDecode(usize),
}

/// Which deadline a body missed ([`BodyClock`]).
#[derive(Clone, Copy, Debug)]
enum Late {
    /// No byte of it within the body start timeout.
    Start(Duration),
    /// Slower than the minimum rate, in bytes per second.
    Rate(u32),
    /// Not all of it within the body timeout.
    Whole(Duration),
}

impl Late {
    fn message(self) -> String {
        match self {
            Late::Start(after) => {
                format!("the request body did not begin within {after:?} of its headers")
            }
            Late::Rate(rate) => {
                format!("the request body arrived slower than {rate} bytes per second")
            }
            Late::Whole(after) => format!("the request body did not arrive within {after:?}"),
        }
    }
}

/// When the next bytes of a request body must arrive: its first bytes within the body start
/// timeout of its headers; once its room in the budget is made, at least the minimum rate
/// (after [`RATE_GRACE`]); all of it within the body timeout.
#[derive(Debug)]
struct BodyClock {
    start_timeout: Duration,
    body_timeout: Duration,
    start_by: Instant,
    whole_by: Instant,
    min_rate: u32,
    begun: bool,
    /// Since when the rate is measured, and the bytes received since.
    rate: Option<(Instant, u64)>,
}

impl BodyClock {
    fn new(app: &App) -> Self {
        let now = Instant::now();
        Self {
            start_timeout: app.body_start_timeout,
            body_timeout: app.body_timeout,
            start_by: now + app.body_start_timeout,
            whole_by: now + app.body_timeout,
            min_rate: app.min_body_rate,
            begun: false,
            rate: None,
        }
    }

    /// The next deadline, and what missing it means.
    fn deadline(&self) -> (Instant, Late) {
        let whole = (self.whole_by, Late::Whole(self.body_timeout));
        let other = if !self.begun {
            (self.start_by, Late::Start(self.start_timeout))
        } else if let Some((from, received)) = self.rate {
            // When the next byte is due at the minimum rate.
            let nanos = u128::from(received + 1) * 1_000_000_000 / u128::from(self.min_rate);
            let due = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            (from + RATE_GRACE + due, Late::Rate(self.min_rate))
        } else {
            return whole;
        };
        if other.0 < whole.0 { other } else { whole }
    }

    /// Bytes of the body arrived.
    fn received(&mut self, bytes: usize) {
        if bytes > 0 {
            self.begun = true;
        }
        if let Some((_, received)) = &mut self.rate {
            *received += bytes as u64;
        }
    }

    /// The body's room in the budget is made: from now on it must keep up the minimum rate.
    fn measure_rate(&mut self) {
        self.rate = Some((Instant::now(), 0));
    }
}

/// Reads a body's frames against its [`BodyClock`], with one timer for the whole body: it is
/// moved only when it fires early (the rate deadline moves with every frame), so a body sent in
/// many tiny frames does not register a timer per frame.
struct BodyReader<B> {
    body: Pin<Box<B>>,
    clock: BodyClock,
    timer: Pin<Box<Sleep>>,
    read_error: fn(BoxError) -> Failure,
}

impl<B> BodyReader<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    fn new(body: B, clock: BodyClock, read_error: fn(BoxError) -> Failure) -> Self {
        let timer = Box::pin(tokio::time::sleep_until(clock.deadline().0));
        Self {
            body: Box::pin(body),
            clock,
            timer,
            read_error,
        }
    }

    /// The next frame's data (`None` at the end of the body; trailers are skipped: an export
    /// needs nothing from them).
    async fn next(&mut self) -> Result<Option<Bytes>, Failure> {
        loop {
            tokio::select! {
                biased;
                frame = self.body.frame() => match frame {
                    None => return Ok(None),
                    Some(Err(e)) => return Err((self.read_error)(e.into())),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.clock.received(data.len());
                            return Ok(Some(data));
                        }
                    }
                },
                () = self.timer.as_mut() => {
                    let (deadline, late) = self.clock.deadline();
                    if Instant::now() >= deadline {
                        return Err(Failure::TimedOut(late));
                    }
                    self.timer.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Until when a reservation for this body may wait: its next deadline, and never past
    /// the whole body's.
    fn deadline(&self) -> Instant {
        self.clock.deadline().0
    }

    /// See [`BodyClock::measure_rate`].
    fn measure_rate(&mut self) {
        self.clock.measure_rate();
    }
}

const FAULT_MESSAGE: &str = "simulated failure (lightstep-receiver fault knob)";
const SHUTTING_DOWN_MESSAGE: &str = "the receiver is shutting down";
const BUSY_MESSAGE: &str = "the receiver is receiving too many request bytes at once; retry later";
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
        // The main lane holds the largest request: a protobuf one at the size limit (with its
        // gRPC frame header), and a JSON one at the limit if the budget can hold it at all.
        let total = settings.max_in_flight_bytes;
        let json = json_charge(settings.max_request_bytes);
        let largest = if json <= total {
            json
        } else {
            (settings.max_request_bytes + 5).min(total)
        };
        Self {
            store: settings.store,
            faults: settings.faults,
            token: settings.token,
            max_request_bytes: settings.max_request_bytes,
            body_timeout: settings.body_timeout,
            body_start_timeout: settings.body_start_timeout,
            min_body_rate: settings.min_body_rate,
            budget: Arc::new(Budget::new(total, largest)),
            shutdown: settings.shutdown,
        }
    }

    /// The whole in-flight budget, in bytes.
    pub(crate) fn budget_total(&self) -> usize {
        self.budget.total()
    }

    /// The largest request body taken, as sent or inflated.
    pub(crate) fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// Bytes of requests held now (charged to the in-flight budget).
    pub(crate) fn in_flight_bytes(&self) -> usize {
        self.budget.in_use()
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

    /// Charges a request its headers, which are in memory already: the first thing done for a
    /// request after the checks that answer at once (path, method, token), and refused at once
    /// when there is no room (waiting would hold them uncharged). The charge is held until the
    /// request is answered. A request refused here is counted as throttled, not recorded (a
    /// record would hold a copy of its headers).
    fn charge_headers(&self, headers: &HeaderMap) -> Option<Charge> {
        let charge = self.budget.try_charge(header_charge(headers));
        if charge.is_none() {
            let counters = self.store.counters();
            counters.requests.fetch_add(1, Ordering::Relaxed);
            counters.requests_throttled.fetch_add(1, Ordering::Relaxed);
        }
        charge
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

    /// Reserves `bytes` of the in-flight budget for a body, waiting at most [`IN_FLIGHT_WAIT`]
    /// (and not past `deadline`). `headers` is what the request holds already for its headers:
    /// together they are never charged more than one request may hold, which would wait
    /// forever.
    async fn reserve(
        &self,
        bytes: usize,
        headers: usize,
        deadline: Instant,
    ) -> Result<Charge, Failure> {
        let bytes = bytes.min(self.budget.largest().saturating_sub(headers));
        let until = deadline.min(Instant::now() + IN_FLIGHT_WAIT);
        self.budget.charge(bytes, until).await.ok_or(Failure::Busy)
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
            Failure::TimedOut(late) => {
                counters.requests_malformed.fetch_add(1, Ordering::Relaxed);
                RequestOutcome::Malformed(late.message())
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
            "decoding this OTLP/JSON body takes up to {needed} bytes, more than the {} bytes \
             one request may hold of the receiver's in-flight budget of {} bytes: send smaller \
             requests, or protobuf",
            self.budget.largest(),
            self.budget.total()
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
        charge: Charge,
    ) -> Result<IngestOutcome, Failure> {
        let inline_max = if protocol == Protocol::HttpJson {
            INLINE_JSON_MAX
        } else {
            INLINE_PROTOBUF_MAX
        };
        let job = IngestJob {
            store: self.store.clone(),
            budget: Arc::clone(&self.budget),
            limit: self.max_request_bytes,
            protocol,
            gzip,
            info: Arc::clone(info),
        };
        if !gzip && body.len() < inline_max {
            return job.run(body, charge);
        }
        match tokio::task::spawn_blocking(move || job.run(body, charge)).await {
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

/// Where a body of unknown length spread over several frames starts (or at twice what its
/// first two frames hold).
const INITIAL_BODY_BUFFER: usize = 16 << 10;

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
    budget: Arc<Budget>,
    limit: usize,
    protocol: Protocol,
    gzip: bool,
    info: Arc<RequestInfo>,
}

impl IngestJob {
    /// Stores `body`, holding `charge` (its share of the in-flight budget) until it is done.
    fn run(self, body: Bytes, charge: Charge) -> Result<IngestOutcome, Failure> {
        if !self.gzip {
            let held = body.len();
            return self.decode(&body, held, charge);
        }
        let (inflated, charge) = self.inflate_charged(body, charge)?;
        self.decode(&inflated, inflated.capacity(), charge)
    }

    /// Inflates a gzip body. `charge` covers the compressed body on entry; on return it covers
    /// the inflated buffer only.
    fn inflate_charged(
        &self,
        body: Bytes,
        mut charge: Charge,
    ) -> Result<(Vec<u8>, Charge), Failure> {
        // The reservation grows with the inflated buffer, before each allocation (so a small
        // gzip body cannot make the receiver allocate past the budget and only then be
        // refused). The compressed body stays charged while it is inflated: both are held.
        // The charge is capped at what one request may hold, so that a body whose two copies
        // exceed it is still taken when the receiver is otherwise idle (it could never be
        // otherwise); then up to one compressed body is held beyond the budget.
        let compressed = body.len();
        let largest = self.budget.largest();
        let mut inflated = inflate(&body, self.limit, |capacity| {
            self.grow(
                &mut charge,
                compressed.saturating_add(capacity).min(largest),
            )
        })?;
        drop(body);
        // The compressed body is gone: its share goes back to the budget.
        let release = charge
            .bytes()
            .saturating_sub(inflated.capacity())
            .min(compressed);
        charge.shrink_to(charge.bytes() - release);
        if self.protocol == Protocol::HttpJson {
            // Decoding JSON is charged on top of the inflated buffer: the buffer's length, as
            // for a plain body, not the capacity its doubling left (up to twice that).
            inflated.shrink_to_fit();
        }
        Ok((inflated, charge))
    }

    /// Decodes and stores an uncompressed body; `held` is what `charge` already covers of it.
    /// OTLP/JSON first has the charge grow by what transcoding it takes.
    fn decode(
        &self,
        plain: &[u8],
        held: usize,
        mut charge: Charge,
    ) -> Result<IngestOutcome, Failure> {
        if self.protocol == Protocol::HttpJson {
            let needed = held.saturating_add(crate::json::working_memory(plain.len()));
            if needed > self.budget.largest() {
                return Err(Failure::TooLargeToDecode(needed));
            }
            self.grow(&mut charge, needed)?;
        }
        let outcome = decode_and_store(&self.store, plain, self.protocol, &self.info);
        drop(charge);
        outcome
    }

    /// Grows `charge` to `bytes`, without waiting: waiting while holding a reservation could
    /// deadlock against another request doing the same.
    fn grow(&self, charge: &mut Charge, bytes: usize) -> Result<(), Failure> {
        if self.budget.grow(charge, bytes) {
            Ok(())
        } else {
            Err(Failure::Busy)
        }
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
        let info = Arc::new(RequestInfo::new(protocol, &HeaderMap::new(), None, false));
        let body = if gzip {
            inflate(bytes, limit, |_| Ok(()))?
        } else {
            bytes.to_vec()
        };
        decode_and_store(&store, &body, protocol, &info)
    }

    fn clock(start: Duration, whole: Duration, rate: u32) -> BodyClock {
        let now = Instant::now();
        BodyClock {
            start_timeout: start,
            body_timeout: whole,
            start_by: now + start,
            whole_by: now + whole,
            min_rate: rate,
            begun: false,
            rate: None,
        }
    }

    #[test]
    fn a_body_must_begin_then_keep_up_the_minimum_rate_within_the_whole_timeout() {
        let mut body = clock(Duration::from_secs(10), Duration::from_secs(60), 1000);
        let (deadline, late) = body.deadline();
        assert!(matches!(late, Late::Start(_)));
        assert_eq!(deadline, body.start_by);
        // Begun, before its room is made: only the whole timeout applies.
        body.received(10);
        assert!(matches!(body.deadline().1, Late::Whole(_)));
        // Room made: the next byte is due after the grace and one byte's worth of the rate,
        // and each byte received moves that by as much.
        body.measure_rate();
        let (first, late) = body.deadline();
        assert!(matches!(late, Late::Rate(1000)));
        body.received(1000);
        let (later, _) = body.deadline();
        assert_eq!(later - first, Duration::from_secs(1));
        // Never past the whole timeout.
        body.received(1_000_000);
        assert!(matches!(body.deadline(), (at, Late::Whole(_)) if at == body.whole_by));
        assert!(
            Late::Rate(1000)
                .message()
                .contains("slower than 1000 bytes per second")
        );
        assert!(
            Late::Start(Duration::from_secs(10))
                .message()
                .contains("did not begin within 10s")
        );
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

    /// An ingest job over `budget`, as the handlers make one.
    fn gzip_job(budget: &Arc<Budget>) -> IngestJob {
        IngestJob {
            store: SpanStore::new(1000, usize::MAX, WhenFull::RejectNew),
            budget: Arc::clone(budget),
            limit: 4 << 20,
            protocol: Protocol::HttpProtobuf,
            gzip: true,
            info: Arc::new(RequestInfo::new(
                Protocol::HttpProtobuf,
                &HeaderMap::new(),
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
        // One lane: the whole budget holds the largest request.
        let budget = Arc::new(Budget::new(total, total));
        // Half a mebibyte of text that compresses to a few kibibytes.
        let plain: Vec<u8> = (0..512 * 1024).map(|i| b"span-"[i % 5]).collect();
        let body = gzip(&plain);
        let compressed = body.len();
        let charge = budget.try_charge(compressed).expect("room");
        let job = gzip_job(&budget);
        let (inflated, charge) = job.inflate_charged(body, charge).expect("inflates");
        assert_eq!(inflated, plain);
        // The compressed body went back to the budget; the inflated buffer is still charged,
        // with its whole capacity.
        assert_eq!(charge.bytes(), inflated.capacity());
        assert_eq!(budget.in_use(), inflated.capacity());
        drop(charge);
        assert_eq!(budget.in_use(), 0);
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
        let budget = Arc::new(Budget::new(total, total));
        let charge = budget.try_charge(compressed).expect("room");
        let job = gzip_job(&budget);
        let (inflated, charge) = job.inflate_charged(body, charge).expect("inflates");
        assert_eq!(inflated.capacity(), capacity);
        assert_eq!(charge.bytes(), capacity);
        assert_eq!(budget.in_use(), capacity);
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

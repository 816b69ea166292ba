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
//!
//! This module holds what both protocols share (the token check, the fault knobs, the budget's
//! reservations, the records); [`grpc`] and [`otlp_http`] frame and answer each protocol,
//! [`body`] reads a body against its deadlines, and [`ingest`] inflates, decodes and stores it.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use tokio::time::Instant;
use tonic::body::Body;

mod body;
mod grpc;
mod ingest;
mod otlp_http;

pub use grpc::TraceServiceHandler;
pub(crate) use otlp_http::TRACES_PATH;

use self::body::Late;
use self::ingest::IngestJob;
use crate::budget::{Budget, Charge};
use crate::faults::Faults;
use crate::store::{
    IngestOutcome, Protocol, RequestInfo, RequestOutcome, SpanStore, header_charge,
};

/// A body's error, as hyper and http-body-util give it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

    fn record_exported(&self, info: Arc<RequestInfo>, outcome: &IngestOutcome) {
        self.store.record(
            info,
            RequestOutcome::Exported {
                accepted: outcome.accepted,
                rejected: outcome.rejected(),
            },
        );
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
}

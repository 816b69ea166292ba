//! An embedded OTLP trace receiver that takes the place of the backend on a developer's machine
//! and in tests.
//!
//! It serves OTLP/gRPC (`TraceService/Export`) and OTLP/HTTP (`POST /v1/traces`, protobuf or
//! JSON, gzip accepted) on loopback with OS-assigned ports, and keeps what arrives in a bounded
//! in-memory store: each span with its resource, instrumentation scope and the headers of the
//! request that carried it.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use lightstep_receiver::Receiver;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = Receiver::builder().with_access_token("dev-token").start().await?;
//!
//! // Point an OTLP exporter at `receiver.grpc_endpoint()` (for example
//! // `http://127.0.0.1:41234`) or at `receiver.http_traces_url()`, with the header
//! // `lightstep-access-token: dev-token`, and let it export.
//! println!("send spans to {}", receiver.grpc_endpoint());
//!
//! // Then check what arrived. Nothing was sent here, so the wait gives up.
//! let waited = receiver.wait_for_spans(1, Duration::from_millis(10)).await;
//! assert!(waited.is_err());
//! for trace in receiver.store().take_traces() {
//!     println!("trace {} has {} spans", trace.trace_id(), trace.spans().len());
//! }
//! receiver.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What it answers
//!
//! | request | gRPC | HTTP |
//! |---|---|---|
//! | accepted (maybe partly) | `OK`, `partial_success` when spans were refused | `200`, same body in the request's encoding |
//! | token required and missing or wrong | `UNAUTHENTICATED` | `401` |
//! | larger than the size limit (before or after gzip) | `RESOURCE_EXHAUSTED` | `413` |
//! | undecodable protobuf, JSON or gzip | `INVALID_ARGUMENT` | `400` |
//! | body not begun, too slow, or not all in, in time | `DEADLINE_EXCEEDED` | `408` |
//! | no room in the in-flight budget (headers: at once; body: within 2 s) | `UNAVAILABLE` | `503`, `Retry-After: 1` |
//! | a [`Faults`] knob is on | `UNAVAILABLE` | `503` |
//!
//! Nothing from a refused request is stored, and the receiver keeps serving. A request refused
//! for its token is not even recorded in [`SpanStore::requests`], only counted. Spans with an
//! invalid trace or span id, and spans that do not fit in a full store (under
//! [`WhenFull::RejectNew`]), are refused one by one and reported as OTLP partial success.
//!
//! [`ReceiverBuilder::start`] serves on the caller's Tokio runtime;
//! [`ReceiverBuilder::start_background`] on a thread of its own, for tests whose code blocks
//! the thread its runtime runs on (see [`RunningReceiver`]).
//!
//! Both listeners accept both protocols (a gRPC request is recognised by its content type), so
//! a client pointed at the "wrong" port still works.
//!
//! Listeners stay on loopback addresses (127.0.0.0/8, `::1`): another address is refused at
//! start ([`Error::NotLoopback`]) unless [`ReceiverBuilder::with_exposure`] allows
//! [`Exposure::Remote`], which requires an access token. [`Exposure::check`] is that rule, for
//! other listeners to apply too.
//!
//! # Bounds
//!
//! The store holds at most [`ReceiverBuilder::with_max_spans`] spans
//! ([`DEFAULT_MAX_SPANS`] by default) and at most
//! [`ReceiverBuilder::with_max_stored_bytes`] bytes of them ([`DEFAULT_MAX_STORED_BYTES`],
//! measured as their protobuf encoding plus overheads, see [`SpanStore`]), and the newest
//! [`MAX_REQUEST_RECORDS`] request records. A request body may not exceed
//! [`ReceiverBuilder::with_max_request_bytes`] ([`DEFAULT_MAX_REQUEST_BYTES`], compressed or
//! not). All requests being received or decoded at once, their headers and bodies, share
//! [`ReceiverBuilder::with_max_in_flight_bytes`] ([`DEFAULT_MAX_IN_FLIGHT_BYTES`]; a request
//! with no room for its headers is refused at once, one with no room for its body waits up to
//! two seconds, then both get a retryable `UNAVAILABLE` / `503`; small requests have a lane of
//! their own, so they do not wait behind large ones; an OTLP/JSON body is charged about 4.25
//! times its size, what decoding it can take). A body must begin within
//! [`ReceiverBuilder::with_body_start_timeout`], keep up
//! [`ReceiverBuilder::with_min_body_rate`] and arrive within
//! [`ReceiverBuilder::with_body_timeout`]. At most 128 connections are served at once; one
//! without an accepted export is closed after [`ReceiverBuilder::with_idle_timeout`], or sooner
//! when another client needs its slot. What each connection may hold beyond the budget (read
//! buffers, HTTP/2 frames, windows, streams and header lists) is bounded too, so the process's
//! memory stays within the budget plus a fixed overhead (about 96 MiB), beside the store.
//! Nothing grows with what clients send.
//!
//! Spans are kept as the protobuf bytes they arrived in, checked at arrival to decode, and
//! decoded when read ([`ReceivedSpan::span`]): taking a request in costs one pass over its
//! bytes and one allocation per span. OTLP/JSON is transcoded into protobuf in one pass first,
//! without building anything in between.
//!
//! # Feature flags
//!
//! None. The crate always serves both protocols and supports TLS (rustls with *ring*).
//!
//! # Supported Rust version
//!
//! Rust 1.90 or newer.

mod budget;
mod error;
mod faults;
mod json;
mod report;
mod server;
mod service;
mod store;
mod wire;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::error::{Error, Result};
pub use crate::faults::Faults;
pub use crate::report::{write_report, write_tree};
pub use crate::service::TraceServiceHandler;
pub use crate::store::{
    MAX_REQUEST_RECORDS, Protocol, ReceivedSpan, ReceiverStats, RequestInfo, RequestOutcome,
    RequestRecord, SpanId, SpanStore, Trace, TraceId, WhenFull,
};
/// The OTLP protobuf types the store hands out (`Span`, `Resource`, `AnyValue`, ...), re-exported
/// so that users need not depend on the same `opentelemetry-proto` version themselves.
pub use opentelemetry_proto::tonic as proto;
pub use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;

/// The header (gRPC metadata key) that carries the access token, as Lightstep names it.
pub const ACCESS_TOKEN_HEADER: &str = "lightstep-access-token";

/// The store's default capacity in spans. At a few hundred bytes to a few kilobytes per span,
/// a full store holds some tens to hundreds of megabytes.
pub const DEFAULT_MAX_SPANS: usize = 200_000;

/// The default request size limit: 4 MiB, gRPC's customary maximum message size.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The store's default byte budget: 256 MiB. Typical spans (a few hundred bytes) reach
/// [`DEFAULT_MAX_SPANS`] first; large spans reach this.
pub const DEFAULT_MAX_STORED_BYTES: usize = 256 * 1024 * 1024;

/// The default budget of requests (headers and bodies) being received and decoded at once,
/// over all connections: 64 MiB (raised, unless a budget is set, to what one OTLP/JSON request
/// of the size limit is charged if that is larger).
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 64 * 1024 * 1024;

/// The default time after which a connection that has had no export accepted is closed: 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default time a client has to send a whole request body: 60 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The default time a client has to begin a request body, from the end of its headers: 10 s.
pub const DEFAULT_BODY_START_TIMEOUT: Duration = Duration::from_secs(10);

/// The default slowest rate at which a request body may arrive once the receiver has made room
/// for it: 64 KiB per second.
pub const DEFAULT_MIN_BODY_RATE: u32 = 64 * 1024;

/// Not API: the ingest path without sockets, reachable from `benches/ingest.rs` and the fuzz
/// targets only. May change at any time.
#[doc(hidden)]
pub mod bench_support {
    use std::sync::Arc;

    use crate::store::{Protocol, RequestInfo, SpanStore, WhenFull};

    /// A store as the receiver makes it, with the default byte budget.
    pub fn store(max_spans: usize) -> SpanStore {
        SpanStore::new(
            max_spans,
            crate::DEFAULT_MAX_STORED_BYTES,
            WhenFull::RejectNew,
        )
    }

    /// Request metadata as a gRPC export brings it.
    pub fn request_info(headers: http::HeaderMap) -> Arc<RequestInfo> {
        Arc::new(RequestInfo::new(Protocol::Grpc, &headers, None, false))
    }

    /// Stores an encoded `ExportTraceServiceRequest` as a gRPC export does, returning the
    /// number of spans accepted (`None` for an undecodable body).
    pub fn ingest_protobuf(store: &SpanStore, body: &[u8], info: &Arc<RequestInfo>) -> Option<u64> {
        store.ingest_protobuf(body, info).ok().map(|o| o.accepted)
    }

    /// The protobuf encoding an OTLP/JSON body is transcoded into (`None` when it is refused),
    /// and the most it may take, in bytes.
    pub fn json_to_protobuf(body: &[u8]) -> (Option<Vec<u8>>, usize) {
        (
            crate::json::to_protobuf(body).ok(),
            crate::json::output_capacity(body.len()),
        )
    }

    /// One export request, as it would arrive on a connection, through the receiver's own
    /// handler (framing, gzip, the in-flight budget, decoding, the store).
    #[derive(Debug, Clone)]
    pub struct Export {
        /// gRPC (`application/grpc`, `frames` then carry the gRPC message framing themselves)
        /// or OTLP/HTTP.
        pub grpc: bool,
        /// OTLP/JSON rather than protobuf (OTLP/HTTP only).
        pub json: bool,
        /// `grpc-encoding: gzip` or `content-encoding: gzip`.
        pub gzip: bool,
        /// Whether the body's length is declared up front (`content-length`), rather than
        /// known only at its end (chunked, or HTTP/2 without it).
        pub declared_length: bool,
        /// The body, in the frames a client sends it in.
        pub frames: Vec<bytes::Bytes>,
    }

    /// What the receiver answered, and what it holds afterwards.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Answer {
        /// The HTTP status.
        pub status: u16,
        /// The `grpc-status` of a gRPC answer.
        pub grpc_status: Option<String>,
        /// Bytes still charged to the in-flight budget once the answer is made: always zero,
        /// or a request leaked its charge.
        pub in_flight_after: usize,
        /// Spans in the store.
        pub spans_stored: usize,
    }

    /// Sends `export` through a receiver with the given request size limit and in-flight
    /// budget, on a runtime of its own, and returns its answer.
    pub fn handle_export(export: Export, max_request_bytes: usize, budget: usize) -> Answer {
        use std::time::Duration;

        use crate::service::{App, ConnInfo, Settings};

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let store = store(1_000_000);
        let app = Arc::new(App::new(Settings {
            store: store.clone(),
            faults: crate::Faults::default(),
            token: None,
            max_request_bytes,
            max_in_flight_bytes: budget,
            body_timeout: Duration::from_secs(5),
            body_start_timeout: Duration::from_secs(5),
            min_body_rate: 1,
            shutdown,
        }));
        let length: usize = export.frames.iter().map(bytes::Bytes::len).sum();
        let mut request = http::Request::builder().method(http::Method::POST);
        request = if export.grpc {
            request
                .uri("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
                .header(http::header::CONTENT_TYPE, "application/grpc")
                .header("te", "trailers")
        } else {
            request.uri("/v1/traces").header(
                http::header::CONTENT_TYPE,
                if export.json {
                    "application/json"
                } else {
                    "application/x-protobuf"
                },
            )
        };
        if export.gzip {
            let name = if export.grpc {
                "grpc-encoding"
            } else {
                "content-encoding"
            };
            request = request.header(name, "gzip");
        }
        if export.declared_length {
            request = request.header(http::header::CONTENT_LENGTH, length);
        }
        let body = Frames {
            frames: export.frames.into(),
            declared: export.declared_length.then_some(length as u64),
        };
        let request = request.body(body).expect("a well-formed request");
        let conn = ConnInfo {
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 4318)),
            tls: false,
        };
        let response = runtime
            .block_on(Arc::clone(&app).handle(request, conn))
            .unwrap_or_else(|never| match never {});
        Answer {
            status: response.status().as_u16(),
            grpc_status: response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            in_flight_after: app.in_flight_bytes(),
            spans_stored: store.len(),
        }
    }

    /// A request body that hands out the frames it was given.
    struct Frames {
        frames: std::collections::VecDeque<bytes::Bytes>,
        declared: Option<u64>,
    }

    impl http_body::Body for Frames {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Ready(
                self.frames
                    .pop_front()
                    .map(|f| Ok(http_body::Frame::data(f))),
            )
        }

        fn is_end_stream(&self) -> bool {
            self.frames.is_empty()
        }

        fn size_hint(&self) -> http_body::SizeHint {
            match self.declared {
                Some(n) => http_body::SizeHint::with_exact(n),
                None => http_body::SizeHint::default(),
            }
        }
    }
}

/// Who may connect to a listener, and so which addresses it may listen on. Every listener the
/// receiver opens goes through [`check`](Self::check); other listeners (a browser UI) can too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exposure {
    /// Clients on this machine only: listeners bind loopback addresses (127.0.0.0/8, `::1`).
    /// The default.
    #[default]
    Loopback,
    /// Clients on other machines too: listeners may bind any address, and every request must
    /// carry the access token.
    Remote,
}

impl Exposure {
    /// Checks that the listener named `listener` (for messages, such as `"OTLP/gRPC"`) may
    /// listen on `addr`, given whether it requires an access token of every request.
    ///
    /// # Errors
    ///
    /// [`Error::NotLoopback`] for an address other than loopback under
    /// [`Exposure::Loopback`]; [`Error::RemoteWithoutToken`] under [`Exposure::Remote`]
    /// without a token, whatever the address.
    pub fn check(
        self,
        listener: &'static str,
        addr: SocketAddr,
        token_required: bool,
    ) -> Result<()> {
        match self {
            Exposure::Remote if !token_required => Err(Error::RemoteWithoutToken),
            Exposure::Remote => Ok(()),
            Exposure::Loopback if is_loopback(addr.ip()) => Ok(()),
            Exposure::Loopback => Err(Error::NotLoopback { listener, addr }),
        }
    }
}

/// Whether `ip` is a loopback address: in 127.0.0.0/8, or `::1` (either also written as an
/// IPv4-mapped IPv6 address, `::ffff:127.0.0.1`). An unspecified address (`0.0.0.0`, `::`)
/// listens on every interface and is not loopback.
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Entry point: `Receiver::builder()` configures and starts a receiver.
#[derive(Debug)]
#[non_exhaustive]
pub struct Receiver;

impl Receiver {
    /// A builder with the defaults: both listeners on `127.0.0.1` with OS-assigned ports,
    /// plaintext, no token required, [`DEFAULT_MAX_SPANS`], [`WhenFull::RejectNew`],
    /// [`DEFAULT_MAX_REQUEST_BYTES`].
    pub fn builder() -> ReceiverBuilder {
        ReceiverBuilder::default()
    }
}

#[derive(Clone)]
struct TlsPem {
    cert_chain: Vec<u8>,
    key: Vec<u8>,
}

/// Configures a receiver; [`start`](Self::start) binds and runs it.
///
/// The receiver reads no environment variable: everything is set here.
#[must_use]
#[derive(Clone)]
pub struct ReceiverBuilder {
    grpc: Listen,
    http: Listen,
    max_spans: usize,
    when_full: WhenFull,
    max_request_bytes: usize,
    max_stored_bytes: usize,
    max_in_flight_bytes: Option<usize>,
    idle_timeout: Duration,
    body_timeout: Duration,
    body_start_timeout: Duration,
    min_body_rate: u32,
    token: Option<String>,
    tls: Option<TlsPem>,
    client_ca: Option<Vec<u8>>,
    exposure: Exposure,
}

/// Where a listener comes from: an address to bind, or a socket bound (and listening) already.
#[derive(Clone, Debug)]
enum Listen {
    Addr(SocketAddr),
    /// Shared by clones of the builder: each receiver started from it accepts on a duplicate of
    /// this socket.
    Listener(Arc<std::net::TcpListener>),
}

impl Listen {
    /// Binds or takes the listener, naming it and its address if that fails, once `exposure`
    /// allows its address.
    async fn open(
        &self,
        name: &'static str,
        exposure: Exposure,
        token_required: bool,
    ) -> Result<(tokio::net::TcpListener, SocketAddr)> {
        match self {
            Listen::Addr(addr) => {
                exposure.check(name, *addr, token_required)?;
                let listener = server::bind(name, *addr).await?;
                let local = listener.local_addr().map_err(|source| Error::Bind {
                    listener: name,
                    addr: *addr,
                    source,
                })?;
                Ok((listener, local))
            }
            Listen::Listener(listener) => {
                let error = |source| Error::Listener {
                    listener: name,
                    source,
                };
                let listener = listener.try_clone().map_err(error)?;
                // Checked before listening: a socket only bound accepts no one meanwhile.
                let local = listener.local_addr().map_err(error)?;
                exposure.check(name, local, token_required)?;
                // A socket that is only bound refuses connections and cannot accept: listen on
                // it (on one that listens already, this only sets the backlog).
                socket2::SockRef::from(&listener)
                    .listen(server::BACKLOG)
                    .map_err(error)?;
                listener.set_nonblocking(true).map_err(error)?;
                Ok((
                    tokio::net::TcpListener::from_std(listener).map_err(error)?,
                    local,
                ))
            }
        }
    }
}

impl Default for ReceiverBuilder {
    fn default() -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            grpc: Listen::Addr(loopback),
            http: Listen::Addr(loopback),
            max_spans: DEFAULT_MAX_SPANS,
            when_full: WhenFull::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_stored_bytes: DEFAULT_MAX_STORED_BYTES,
            max_in_flight_bytes: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            body_start_timeout: DEFAULT_BODY_START_TIMEOUT,
            min_body_rate: DEFAULT_MIN_BODY_RATE,
            token: None,
            tls: None,
            client_ca: None,
            exposure: Exposure::Loopback,
        }
    }
}

impl fmt::Debug for ReceiverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverBuilder")
            .field("grpc", &self.grpc)
            .field("http", &self.http)
            .field("max_spans", &self.max_spans)
            .field("when_full", &self.when_full)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_stored_bytes", &self.max_stored_bytes)
            .field("max_in_flight_bytes", &self.in_flight_budget())
            .field("idle_timeout", &self.idle_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("body_start_timeout", &self.body_start_timeout)
            .field("min_body_rate", &self.min_body_rate)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("tls", &self.tls.is_some())
            .field("client_ca", &self.client_ca.is_some())
            .field("exposure", &self.exposure)
            .finish()
    }
}

impl ReceiverBuilder {
    /// The OTLP/gRPC listener's address (default `127.0.0.1:0`, an OS-assigned port; the
    /// conventional fixed one is `127.0.0.1:4317`). A loopback address unless
    /// [`with_exposure`](Self::with_exposure) allows others.
    pub fn with_grpc_addr(mut self, addr: SocketAddr) -> Self {
        self.grpc = Listen::Addr(addr);
        self
    }

    /// Serves OTLP/gRPC on `listener`, a socket already bound, instead of binding an address:
    /// a socket handed over by a service manager, or a port a test holds from the start (bound
    /// but not listening, it refuses connections until the receiver starts and listens on it).
    /// The later of this and [`with_grpc_addr`](Self::with_grpc_addr) wins.
    ///
    /// The receiver accepts on a duplicate of the socket and closes that duplicate when it shuts
    /// down. The socket itself stays open as long as this builder or a clone of it lives (the
    /// port then keeps listening, and connections wait instead of being refused), and it is
    /// made non-blocking, which every duplicate of it shares.
    pub fn with_grpc_listener(mut self, listener: std::net::TcpListener) -> Self {
        self.grpc = Listen::Listener(Arc::new(listener));
        self
    }

    /// The OTLP/HTTP listener's address (default `127.0.0.1:0`, an OS-assigned port; the
    /// conventional fixed one is `127.0.0.1:4318`). A loopback address unless
    /// [`with_exposure`](Self::with_exposure) allows others.
    pub fn with_http_addr(mut self, addr: SocketAddr) -> Self {
        self.http = Listen::Addr(addr);
        self
    }

    /// Serves OTLP/HTTP on `listener`, a socket already bound, instead of binding an address
    /// (see [`with_grpc_listener`](Self::with_grpc_listener) for what happens to the socket).
    /// The later of this and [`with_http_addr`](Self::with_http_addr) wins.
    pub fn with_http_listener(mut self, listener: std::net::TcpListener) -> Self {
        self.http = Listen::Listener(Arc::new(listener));
        self
    }

    /// The store's capacity in spans (default [`DEFAULT_MAX_SPANS`]; at least 1).
    pub fn with_max_spans(mut self, max_spans: usize) -> Self {
        self.max_spans = max_spans;
        self
    }

    /// What to do with new spans when the store is full (default [`WhenFull::RejectNew`]).
    pub fn with_full_policy(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// The largest request body accepted, in bytes, both as sent and after gzip decompression
    /// (default [`DEFAULT_MAX_REQUEST_BYTES`]; from 1 to `u32::MAX`). Larger requests get
    /// `RESOURCE_EXHAUSTED` / `413` and are not stored.
    pub fn with_max_request_bytes(mut self, max_request_bytes: usize) -> Self {
        self.max_request_bytes = max_request_bytes;
        self
    }

    /// The store's budget in bytes (default [`DEFAULT_MAX_STORED_BYTES`]; at least 1), besides
    /// its bound in spans. Each span is charged its protobuf encoding plus a fixed overhead
    /// (about 130 bytes), each resource and scope once with the headers of its request while
    /// the store holds spans sent under it (see [`SpanStore`]). When the next span does not
    /// fit, the [`WhenFull`] policy applies as for the span bound; a span that would not fit
    /// even in an empty store is refused (and reported as partial success) under either policy.
    pub fn with_max_stored_bytes(mut self, max_stored_bytes: usize) -> Self {
        self.max_stored_bytes = max_stored_bytes;
        self
    }

    /// The budget, in bytes, of requests being received, decompressed and decoded at once,
    /// over all connections of both listeners (default [`DEFAULT_MAX_IN_FLIGHT_BYTES`], or what
    /// one OTLP/JSON request of the size limit is charged, below, if that is larger; from the
    /// request size limit to `u32::MAX`).
    ///
    /// A request is charged its headers as soon as it arrives (what the receiver's copy of
    /// them holds, about 200 bytes per header beyond its text), and is answered `UNAVAILABLE`
    /// / `503` with `Retry-After: 1` at once if there is no room for them. It reserves its
    /// body's size when the first bytes of its body arrive (a gRPC message's declared length,
    /// an HTTP `Content-Length`, or the request size limit for a body of unknown length, whose
    /// unused part is given back once the body is in) and keeps it until it is stored. A
    /// request that cannot reserve its size within two seconds is answered `UNAVAILABLE` /
    /// `503` with `Retry-After: 1`, which OTLP clients retry with backoff.
    ///
    /// An eighth of the budget, when the rest still holds the largest request, is kept for
    /// headers and small bodies (at most a sixteenth of that eighth: 512 KiB with the
    /// default): large bodies wait for room in the rest, in the order they came, and small
    /// exports do not wait behind them.
    ///
    /// Decoding is charged too. Protobuf is checked in place and adds nothing; a gzip body
    /// adds its inflated size as it inflates. OTLP/JSON is transcoded into protobuf, into a
    /// buffer of 1.25 times the JSON (plus 1 KiB), with serde_json's scratch buffer beside it
    /// (under twice the JSON): a JSON body is charged its size plus that, about 4.25 times its
    /// size in all, and one whose charge exceeds what one request may hold is refused with
    /// `413`.
    pub fn with_max_in_flight_bytes(mut self, max_in_flight_bytes: usize) -> Self {
        self.max_in_flight_bytes = Some(max_in_flight_bytes);
        self
    }

    /// How long a connection keeps its slot without an accepted export (default
    /// [`DEFAULT_IDLE_TIMEOUT`]; at least 1 ms): then the receiver closes it (HTTP/2:
    /// `GOAWAY`), letting the requests in flight finish. Refused requests (a wrong path or
    /// method, a missing token, a body that does not arrive) do not count, so a client cannot
    /// keep a slot with them. Clients reconnect on their next export. While another client
    /// waits for a slot (all 128 are taken), connections without an accepted export in the
    /// last second (or this timeout, if shorter) are closed at once.
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// How long a client may take to send a request body, from the end of its headers (default
    /// [`DEFAULT_BODY_TIMEOUT`]; at least 1 ms). A gRPC request that takes longer is answered
    /// `DEADLINE_EXCEEDED`, an OTLP/HTTP one `408`; nothing of it is stored.
    pub fn with_body_timeout(mut self, body_timeout: Duration) -> Self {
        self.body_timeout = body_timeout;
        self
    }

    /// How long a client may take to begin a request body, from the end of its headers
    /// (default [`DEFAULT_BODY_START_TIMEOUT`]; at least 1 ms; the body timeout still bounds
    /// it). Its headers are charged to the in-flight budget meanwhile. A request whose body
    /// has not begun by then is answered `DEADLINE_EXCEEDED` / `408`.
    pub fn with_body_start_timeout(mut self, body_start_timeout: Duration) -> Self {
        self.body_start_timeout = body_start_timeout;
        self
    }

    /// The slowest rate, in bytes per second, at which a request body may arrive once the
    /// receiver has made room for it in the in-flight budget (default
    /// [`DEFAULT_MIN_BODY_RATE`]; at least 1). After a second of grace, a body that has not
    /// delivered this rate times the time since (minus that second) is answered
    /// `DEADLINE_EXCEEDED` / `408`, and its room goes to others: a client cannot hold a large
    /// reservation by sending its first byte and nothing more.
    pub fn with_min_body_rate(mut self, bytes_per_second: u32) -> Self {
        self.min_body_rate = bytes_per_second;
        self
    }

    fn in_flight_budget(&self) -> usize {
        self.max_in_flight_bytes.unwrap_or_else(|| {
            // Room for one OTLP/JSON request of the size limit with its decoding, so that a
            // raised limit does not leave large JSON bodies refused by a default budget.
            let json = service::json_charge(self.max_request_bytes).min(u32::MAX as usize);
            DEFAULT_MAX_IN_FLIGHT_BYTES
                .max(json)
                .max(self.max_request_bytes)
        })
    }

    /// Requires every export to carry `token` in the [`ACCESS_TOKEN_HEADER`] header (gRPC
    /// metadata). Requests without it, or with another value, get `UNAUTHENTICATED` / `401`
    /// before any other check (fault knobs included) and nothing of them is stored: they are
    /// counted in [`ReceiverStats::requests_unauthenticated`] but not recorded, so a token sent
    /// by mistake is not kept. Tokens are compared in constant time and never logged.
    pub fn with_access_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Serves both listeners over TLS with this certificate chain (PEM, leaf first) and private
    /// key (PEM: PKCS#8, PKCS#1 or SEC1). Endpoints then start with `https://`. For clients
    /// that connect to `127.0.0.1`, the certificate must name that IP address (or the client
    /// must override the server name).
    pub fn with_tls(
        mut self,
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls = Some(TlsPem {
            cert_chain: cert_chain_pem.into(),
            key: key_pem.into(),
        });
        self
    }

    /// Requires TLS clients to present a certificate that chains to one of these CA
    /// certificates (PEM). Needs [`with_tls`](Self::with_tls).
    pub fn with_client_ca(mut self, ca_pem: impl Into<Vec<u8>>) -> Self {
        self.client_ca = Some(ca_pem.into());
        self
    }

    /// Who may connect (default [`Exposure::Loopback`]: listeners on loopback addresses only,
    /// `127.0.0.0/8` and `::1`, for clients on this machine). [`Exposure::Remote`] allows any
    /// address, and needs [`with_access_token`](Self::with_access_token); offer
    /// [`with_tls`](Self::with_tls) too, or the token crosses the network in clear. Listening
    /// on another address, a socket handed over included, without it is refused at start with
    /// [`Error::NotLoopback`].
    pub fn with_exposure(mut self, exposure: Exposure) -> Self {
        self.exposure = exposure;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.max_spans == 0 {
            return Err(Error::InvalidSetting {
                setting: "max_spans",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_request_bytes == 0 || u32::try_from(self.max_request_bytes).is_err() {
            return Err(Error::InvalidSetting {
                setting: "max_request_bytes",
                reason: format!(
                    "must be between 1 and {} (got {})",
                    u32::MAX,
                    self.max_request_bytes
                ),
            });
        }
        if self.max_stored_bytes == 0 {
            return Err(Error::InvalidSetting {
                setting: "max_stored_bytes",
                reason: "must be at least 1".into(),
            });
        }
        let in_flight = self.in_flight_budget();
        if in_flight < self.max_request_bytes || u32::try_from(in_flight).is_err() {
            return Err(Error::InvalidSetting {
                setting: "max_in_flight_bytes",
                reason: format!(
                    "must be between the request size limit ({}) and {} (got {in_flight})",
                    self.max_request_bytes,
                    u32::MAX
                ),
            });
        }
        if self.min_body_rate == 0 {
            return Err(Error::InvalidSetting {
                setting: "min_body_rate",
                reason: "must be at least 1 byte per second".into(),
            });
        }
        for (setting, value) in [
            ("idle_timeout", self.idle_timeout),
            ("body_timeout", self.body_timeout),
            ("body_start_timeout", self.body_start_timeout),
        ] {
            if value < Duration::from_millis(1) {
                return Err(Error::InvalidSetting {
                    setting,
                    reason: format!("must be at least 1ms (got {value:?})"),
                });
            }
        }
        if self.exposure == Exposure::Remote && self.token.is_none() {
            return Err(Error::RemoteWithoutToken);
        }
        if self.client_ca.is_some() && self.tls.is_none() {
            return Err(Error::InvalidSetting {
                setting: "client_ca",
                reason: "client certificates need TLS: call with_tls too".into(),
            });
        }
        Ok(())
    }

    /// Binds both listeners and starts serving. Must run inside a Tokio runtime (any flavour);
    /// the receiver runs on tasks of that runtime until [`RunningReceiver::shutdown`] or drop.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] naming the listener and address when a port is taken,
    /// [`Error::Listener`] for a socket handed over that cannot listen,
    /// [`Error::NotLoopback`] for a listener address other than loopback without
    /// [`Exposure::Remote`], [`Error::RemoteWithoutToken`] for that without a token,
    /// [`Error::Tls`] for an unusable certificate or key, [`Error::InvalidSetting`] for a
    /// setting out of range, [`Error::NoRuntime`] outside Tokio.
    pub async fn start(self) -> Result<RunningReceiver> {
        self.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        let acceptor = match &self.tls {
            None => None,
            Some(pem) => Some(server::tls_acceptor(
                &pem.cert_chain,
                &pem.key,
                self.client_ca.as_deref(),
            )?),
        };
        let token_required = self.token.is_some();
        let (grpc_listener, grpc_addr) = self
            .grpc
            .open("OTLP/gRPC", self.exposure, token_required)
            .await?;
        let (http_listener, http_addr) = self
            .http
            .open("OTLP/HTTP", self.exposure, token_required)
            .await?;

        let store = SpanStore::new(self.max_spans, self.max_stored_bytes, self.when_full);
        let faults = Faults::default();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let app = Arc::new(service::App::new(service::Settings {
            store: store.clone(),
            faults: faults.clone(),
            token: self.token.clone().map(String::into_bytes),
            max_request_bytes: self.max_request_bytes,
            max_in_flight_bytes: self.in_flight_budget(),
            body_timeout: self.body_timeout,
            body_start_timeout: self.body_start_timeout,
            min_body_rate: self.min_body_rate,
            shutdown: shutdown_rx.clone(),
        }));
        let serving = server::Serving {
            app: Arc::clone(&app),
            tls: acceptor.clone(),
            idle_timeout: self.idle_timeout,
            slots: server::Slots::new(),
            shutdown: shutdown_rx,
        };
        let tasks = vec![
            tokio::spawn(server::serve(grpc_listener, serving.clone())),
            tokio::spawn(server::serve(http_listener, serving)),
        ];
        tracing::debug!(%grpc_addr, %http_addr, tls = acceptor.is_some(), "lightstep-receiver started");
        Ok(RunningReceiver {
            grpc_addr,
            http_addr,
            tls: acceptor.is_some(),
            store,
            faults,
            app,
            shutdown_tx,
            listeners: Listeners::Tasks(tasks),
        })
    }

    /// Binds both listeners and starts serving on a dedicated thread with its own Tokio
    /// runtime, and returns once the ports are bound. Needs no runtime from the caller.
    ///
    /// Use it when the code under test blocks the thread its runtime runs on, as synchronous
    /// `force_flush()`/`shutdown()` calls do on a `#[tokio::test]` (a current-thread runtime):
    /// a receiver started with [`start`](Self::start) on that runtime could not answer until
    /// the blocking call returned. The returned receiver is used exactly like the other one;
    /// its async methods work from any runtime. Calling this from async code blocks the calling
    /// thread only while the ports are bound.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), plus [`Error::Runtime`] if the thread or its runtime cannot
    /// be created.
    pub fn start_background(self) -> Result<RunningReceiver> {
        self.validate()?;
        let (result_tx, result_rx) = std::sync::mpsc::sync_channel::<Result<RunningReceiver>>(1);
        std::thread::Builder::new()
            .name("lightstep-receiver".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = result_tx.send(Err(Error::Runtime(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut running = match self.start().await {
                        Ok(running) => running,
                        Err(e) => {
                            let _ = result_tx.send(Err(e));
                            return;
                        }
                    };
                    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                    let listeners =
                        std::mem::replace(&mut running.listeners, Listeners::Thread(Some(done_rx)));
                    // If the caller is gone, the receiver is dropped with the failed send,
                    // which signals shutdown: the tasks below then end within the grace period.
                    let _ = result_tx.send(Ok(running));
                    if let Listeners::Tasks(tasks) = listeners {
                        for task in tasks {
                            let _ = task.await;
                        }
                    }
                    let _ = done_tx.send(());
                });
            })
            .map_err(Error::Runtime)?;
        result_rx.recv().map_err(|_| {
            Error::Runtime(std::io::Error::other(
                "the receiver thread ended before it started",
            ))
        })?
    }
}

/// What [`RunningReceiver::shutdown`] waits for.
#[derive(Debug)]
enum Listeners {
    /// Listener tasks on the caller's runtime.
    Tasks(Vec<JoinHandle<()>>),
    /// A dedicated thread running the listeners, which reports when they are closed.
    Thread(Option<tokio::sync::oneshot::Receiver<()>>),
}

/// A started receiver. Dropping it stops the listeners (in-flight requests still get
/// [`shutdown`](Self::shutdown)'s grace period, on the runtime's tasks).
///
/// With [`ReceiverBuilder::start`], the receiver runs on the caller's runtime: on a
/// current-thread runtime it answers only while that runtime is driven, so code that blocks
/// the runtime's thread while waiting for an export would wait for itself. Use
/// [`ReceiverBuilder::start_background`] then.
#[derive(Debug)]
pub struct RunningReceiver {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    tls: bool,
    store: SpanStore,
    faults: Faults,
    app: Arc<service::App>,
    shutdown_tx: watch::Sender<bool>,
    listeners: Listeners,
}

impl RunningReceiver {
    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The OTLP/gRPC listener's bound address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The OTLP/HTTP listener's bound address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Whether the listeners serve TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The OTLP/gRPC endpoint URL, for example `http://127.0.0.1:41234` (`https://` with TLS).
    pub fn grpc_endpoint(&self) -> String {
        format!("{}://{}", self.scheme(), self.grpc_addr)
    }

    /// The OTLP/HTTP base URL, for example `http://127.0.0.1:41235`: what
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` takes (clients append `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("{}://{}", self.scheme(), self.http_addr)
    }

    /// The full OTLP/HTTP traces URL, `<http_endpoint>/v1/traces`: what an endpoint given in
    /// code or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` takes.
    pub fn http_traces_url(&self) -> String {
        format!("{}{}", self.http_endpoint(), service::TRACES_PATH)
    }

    /// The span store (cheap to clone, usable from other tasks).
    pub fn store(&self) -> &SpanStore {
        &self.store
    }

    /// opentelemetry-proto's generated OTLP/gRPC trace server over this receiver, to mount on
    /// a tonic server of your own (beside your other services, behind your own layers or TLS).
    ///
    /// Exports through it go to this receiver's store, with the same access-token check, fault
    /// knobs, in-flight budget, counters and request records as its own listeners; once the
    /// receiver has shut down they get `UNAVAILABLE`. It accepts gzip and messages up to the
    /// receiver's request size limit. What differs is reading the request: tonic reads and
    /// decodes the whole message before this receiver sees it, so the body timeout and the
    /// in-flight budget only start after that, and an oversized or malformed message is
    /// answered by tonic (`OUT_OF_RANGE`, `RESOURCE_EXHAUSTED` once inflated, `INTERNAL`)
    /// without a record here. The spans are stored as the message encoded again, so fields
    /// opentelemetry-proto does not know are dropped. The receiver's own gRPC listener
    /// (ADR 203) does none of that and stays the one to expose to untrusted clients. Requests
    /// through this server are recorded with `tls: false` whatever your server's transport,
    /// without the `content-type` and `te` headers tonic keeps out of metadata, and with the
    /// client's address only on tonic's own transport.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let receiver = lightstep_receiver::Receiver::builder().start().await?;
    /// // With tonic's `transport` and `router` features:
    /// // tonic::transport::Server::builder()
    /// //     .add_service(receiver.trace_service())
    /// //     .serve("127.0.0.1:4317".parse()?)
    /// //     .await?;
    /// let _service = receiver.trace_service();
    /// # Ok(())
    /// # }
    /// ```
    pub fn trace_service(&self) -> TraceServiceServer<TraceServiceHandler> {
        TraceServiceServer::new(TraceServiceHandler::new(Arc::clone(&self.app)))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(self.app.max_request_bytes())
    }

    /// The fault-injection knobs, for testing how clients cope with a failing backend.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// A copy of every stored span; see [`SpanStore::spans`].
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store.spans()
    }

    /// Waits for at least `n` stored spans; see [`SpanStore::wait_for_spans`].
    pub async fn wait_for_spans(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedSpan>> {
        self.store.wait_for_spans(n, timeout).await
    }

    /// Removes and returns every stored span grouped by trace; see [`SpanStore::take_traces`].
    pub fn take_traces(&self) -> Vec<Trace> {
        self.store.take_traces()
    }

    /// Bytes of requests (headers and bodies) being received or decoded right now, charged to
    /// the in-flight budget ([`ReceiverBuilder::with_max_in_flight_bytes`]).
    pub fn in_flight_bytes(&self) -> usize {
        self.app.in_flight_bytes()
    }

    /// The counters since start; see [`ReceiverStats`].
    pub fn stats(&self) -> ReceiverStats {
        self.store.stats()
    }

    /// The newest request records; see [`SpanStore::requests`].
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.store.requests()
    }

    /// Stops accepting connections, lets in-flight requests finish (a delayed request is
    /// answered `UNAVAILABLE`), and returns once both listeners are closed: at most about five
    /// seconds later, however clients behave. The store stays readable through clones of
    /// [`store`](Self::store). The ports are free again when this returns, so a new receiver can
    /// bind the same addresses (to test a backend that goes away and comes back).
    pub async fn shutdown(mut self) {
        self.shutdown_tx.send_replace(true);
        // A listener only ends by finishing; a panic in it has nothing to report beyond the
        // port being closed, which it is either way.
        match &mut self.listeners {
            Listeners::Tasks(tasks) => {
                for task in tasks.drain(..) {
                    let _ = task.await;
                }
            }
            Listeners::Thread(done) => {
                if let Some(done) = done.take() {
                    let _ = done.await;
                }
            }
        }
    }
}

impl Drop for RunningReceiver {
    fn drop(&mut self) {
        self.shutdown_tx.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn running_receiver_debug_redacts_the_token() {
        let receiver = Receiver::builder()
            .with_access_token("s3cret-token")
            .start()
            .await
            .expect("start");
        let dbg = format!("{receiver:?}");
        assert!(
            !dbg.contains("s3cret") && !dbg.contains("115, 51, 99"),
            "{dbg}"
        );
        receiver.shutdown().await;
    }

    #[test]
    fn the_default_in_flight_budget_takes_a_json_request_of_the_size_limit() {
        let default = Receiver::builder();
        assert_eq!(default.in_flight_budget(), DEFAULT_MAX_IN_FLIGHT_BYTES);
        for limit in [16 << 20, 64 << 20, 512 << 20] {
            let builder = Receiver::builder().with_max_request_bytes(limit);
            let budget = builder.in_flight_budget();
            assert!(budget >= service::json_charge(limit).min(u32::MAX as usize));
            assert!(u32::try_from(budget).is_ok(), "{limit}: {budget}");
        }
        // An explicit budget is kept as given.
        let explicit = Receiver::builder()
            .with_max_request_bytes(64 << 20)
            .with_max_in_flight_bytes(100 << 20);
        assert_eq!(explicit.in_flight_budget(), 100 << 20);
    }

    #[test]
    fn builder_debug_redacts_the_token() {
        let builder = Receiver::builder().with_access_token("s3cret-token");
        let dbg = format!("{builder:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("[REDACTED]"), "{dbg}");
    }
}

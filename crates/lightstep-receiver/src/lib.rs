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
mod builder;
mod error;
mod exposure;
mod faults;
mod json;
mod report;
mod running;
mod server;
mod service;
mod store;
mod wire;

use std::time::Duration;

pub use crate::builder::{Receiver, ReceiverBuilder};
pub use crate::error::{Error, Result};
pub use crate::exposure::{Exposure, is_loopback};
pub use crate::faults::Faults;
pub use crate::report::{write_report, write_tree};
pub use crate::running::RunningReceiver;
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
pub mod bench_support;

//! The crate's one error type.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything that can go wrong when starting, using or stopping a receiver.
///
/// Errors about what a *client* sent never appear here: those are answered on the wire
/// (gRPC status or HTTP status code) and counted in [`ReceiverStats`](crate::ReceiverStats).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket given with `with_grpc_listener` or `with_http_listener` could not be used: the
    /// receiver could not listen on it (not bound, or not a TCP socket) or set it non-blocking.
    #[error("could not use the socket given for the {listener} listener")]
    Listener {
        /// Which listener: `"OTLP/gRPC"` or `"OTLP/HTTP"`.
        listener: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not bind its address, most often because the port is taken.
    #[error(
        "could not bind the {listener} listener to {addr} (is another process using the port?)"
    )]
    Bind {
        /// Which listener: `"OTLP/gRPC"` or `"OTLP/HTTP"`.
        listener: &'static str,
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A listener's address is not a loopback address, and clients on other machines were not
    /// allowed ([`Exposure::Remote`](crate::Exposure::Remote)).
    #[error(
        "refusing to listen for {listener} on {addr}: not a loopback address (127.0.0.0/8 or \
         ::1), so clients on other machines could connect; allow them explicitly \
         (Exposure::Remote), with an access token"
    )]
    NotLoopback {
        /// Which listener: `"OTLP/gRPC"` or `"OTLP/HTTP"`.
        listener: &'static str,
        /// The address it was to listen on.
        addr: SocketAddr,
    },

    /// Clients on other machines were allowed ([`Exposure::Remote`](crate::Exposure::Remote))
    /// without requiring an access token.
    #[error(
        "listeners open to other machines need an access token: require one with \
         with_access_token"
    )]
    RemoteWithoutToken,

    /// The certificate or private key given to
    /// [`ReceiverBuilder::with_tls`](crate::ReceiverBuilder::with_tls) could not be used.
    #[error("invalid TLS configuration: {reason}")]
    Tls {
        /// What was wrong, without any key material.
        reason: String,
        /// The TLS library's error, when there is one (boxed so that the TLS library's version
        /// is not part of this crate's API).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// A builder setting is out of range.
    #[error("invalid receiver setting `{setting}`: {reason}")]
    InvalidSetting {
        /// The builder method's setting name.
        setting: &'static str,
        /// Why the value was refused.
        reason: String,
    },

    /// [`ReceiverBuilder::start`](crate::ReceiverBuilder::start) was awaited outside a Tokio
    /// runtime; the receiver's tasks need one.
    #[error("no Tokio runtime is running: start the receiver from within a Tokio runtime")]
    NoRuntime,

    /// [`ReceiverBuilder::start_background`](crate::ReceiverBuilder::start_background) could
    /// not create its thread or runtime.
    #[error("could not start the receiver's background thread")]
    Runtime(#[source] std::io::Error),

    /// [`SpanStore::wait_for_spans`](crate::SpanStore::wait_for_spans) gave up.
    #[error("timed out after {timeout:?} waiting for {expected} spans: the store holds {received}")]
    Timeout {
        /// How many spans were awaited.
        expected: usize,
        /// How many spans the store held when the wait gave up.
        received: usize,
        /// How long the wait lasted.
        timeout: Duration,
    },

    /// [`SpanStore::ingest_request`](crate::SpanStore::ingest_request) was given a body that
    /// is not an OTLP trace request.
    #[error("not an OTLP trace request: {reason}")]
    NotARequest {
        /// What is wrong with it.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

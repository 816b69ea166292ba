//! The crate's one error type.

use std::net::SocketAddr;

/// Why the explorer could not start or could not take traces in.
///
/// What a browser or an API client asks for never becomes one of these: bad requests are
/// answered on the wire (a JSON error with the right status).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address is not a loopback address and remote access was not allowed.
    #[error(
        "refusing to serve the explorer on {addr}: it is not a loopback address, and the explorer \
         has no authentication (serve it on 127.0.0.1 or [::1], or allow remote access explicitly)"
    )]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listener could not bind its address, most often because the port is taken.
    #[error("could not bind the explorer to {addr} (is another process using the port?)")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A socket given with [`ExplorerBuilder::with_listener`](crate::ExplorerBuilder::with_listener)
    /// could not be used.
    #[error("could not use the socket given to the explorer")]
    Listener {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A trace file could not be read.
    #[error(transparent)]
    Read(#[from] lightstep_analysis::Error),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! A trace explorer in the browser, served from the binary, with a Jaeger-compatible query API.
//!
//! [`Explorer`] serves pages that list traces, draw one trace as a waterfall with its critical
//! path, and add up the critical paths of many traces per service and operation; and the JSON
//! they read, in the shapes of Jaeger's query API (so Grafana's Jaeger data source and Jaeger UI
//! can use it as a backend) and of `lightstep analyze --format json`. The traces come from a
//! [`TraceStore`]: trace files in any format `lightstep analyze` reads, or what the embedded
//! receiver completes (`lightstep dev`).
//!
//! # Quick start
//!
//! ```no_run
//! use lightstep_explorer::{Explorer, TraceStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = TraceStore::default();
//! store.read_path("traces.json".as_ref(), None)?;
//! let explorer = Explorer::builder()
//!     .with_addr("127.0.0.1:0".parse()?)
//!     .with_store(store)
//!     .start()
//!     .await?;
//! println!("open {}", explorer.url());
//! explorer.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! With the embedded receiver, [`TraceStore::follow_receiver`] moves each completed trace into
//! the store (or [`TraceStore::add_received`] adds the traces a caller takes itself).
//!
//! # Safety of what it serves
//!
//! Everything shown comes from whoever sent the spans. The pages render it as text only, never
//! as markup; every answer carries a Content-Security-Policy that allows only the explorer's
//! own scripts and styles (no inline script or style), `X-Content-Type-Options: nosniff`, and
//! no CORS header. The explorer listens on loopback unless remote access is allowed explicitly,
//! and answers only requests whose `Host` names the address it listens on (or `localhost`, or
//! a loopback address, with its port): a page elsewhere cannot reach it through DNS rebinding.
//!
//! # Bounds
//!
//! The store holds at most [`Limits`] traces, spans and estimated bytes ([`DEFAULT_MAX_TRACES`],
//! [`DEFAULT_MAX_SPANS`], [`DEFAULT_MAX_BYTES`] by default), pushing out the oldest; waterfall
//! layouts are cached within a bound of spans; connections are capped and request bodies are
//! never read. A page never holds every span of a large trace: it asks for the rows it shows.
//!
//! # Feature flags
//!
//! None.
//!
//! # Supported Rust version
//!
//! Rust 1.90 or newer.

mod api;
mod assets;
/// Not API: the lookup of a span's details in a large file, for the fuzz targets and the tests
/// of their seeds only. May change at any time.
#[doc(hidden)]
pub mod bench_support;
mod error;
mod file_details;
mod file_lookup;
mod jaeger;
mod layout;
mod query;
mod server;
mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use lightstep_receiver::is_loopback;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::error::{Error, Result};
pub use crate::server::CONTENT_SECURITY_POLICY;
pub use crate::store::{
    Added, DEFAULT_MAX_BYTES, DEFAULT_MAX_SPANS, DEFAULT_MAX_TRACES, DETAILED_FILE_BYTES, Limits,
    StoreStats, TraceStore,
};

/// Where the explorer listens by default: Jaeger UI's port, on loopback.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 16686);

/// Entry point: [`Explorer::builder`].
#[derive(Debug)]
pub struct Explorer;

impl Explorer {
    /// A builder with the defaults: [`DEFAULT_ADDR`], an empty [`TraceStore`] with the default
    /// bounds, loopback only.
    pub fn builder() -> ExplorerBuilder {
        ExplorerBuilder::default()
    }
}

/// Settings of an explorer; [`ExplorerBuilder::start`] serves it.
#[derive(Debug)]
#[must_use]
pub struct ExplorerBuilder {
    addr: SocketAddr,
    listener: Option<std::net::TcpListener>,
    store: Option<TraceStore>,
    remote: bool,
}

impl Default for ExplorerBuilder {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR,
            listener: None,
            store: None,
            remote: false,
        }
    }
}

impl ExplorerBuilder {
    /// The address to listen on (port 0 for one the system assigns). Must be a loopback
    /// address unless [`with_remote_access`](Self::with_remote_access) allows others.
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self.listener = None;
        self
    }

    /// A socket already bound and listening, used instead of binding an address.
    pub fn with_listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The traces to serve; the caller keeps a clone to add more while it runs.
    pub fn with_store(mut self, store: TraceStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Allows an address that is not loopback. The explorer has no authentication: whoever
    /// reaches the address reads every trace.
    pub fn with_remote_access(mut self, allowed: bool) -> Self {
        self.remote = allowed;
        self
    }

    /// Binds and serves on the caller's Tokio runtime, until [`RunningExplorer::shutdown`] (or
    /// until the runtime stops).
    pub async fn start(self) -> Result<RunningExplorer> {
        let listener = match self.listener {
            Some(listener) => {
                listener
                    .set_nonblocking(true)
                    .map_err(|source| Error::Listener { source })?;
                tokio::net::TcpListener::from_std(listener)
                    .map_err(|source| Error::Listener { source })?
            }
            None => {
                if !self.remote && !is_loopback(self.addr.ip()) {
                    return Err(Error::NotLoopback { addr: self.addr });
                }
                tokio::net::TcpListener::bind(self.addr)
                    .await
                    .map_err(|source| Error::Bind {
                        addr: self.addr,
                        source,
                    })?
            }
        };
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Listener { source })?;
        if !self.remote && !is_loopback(addr.ip()) {
            return Err(Error::NotLoopback { addr });
        }
        let store = self.store.unwrap_or_default();
        let app = Arc::new(server::App {
            api: api::Api::new(store.clone()),
            hosts: server::HostRule::new(addr, self.remote),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, app, stopped));
        Ok(RunningExplorer {
            addr,
            store,
            stop,
            task,
        })
    }
}

/// An explorer being served.
#[derive(Debug)]
pub struct RunningExplorer {
    addr: SocketAddr,
    store: TraceStore,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningExplorer {
    /// The address it listens on (with the port the system assigned, for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of its search page, `http://127.0.0.1:PORT/`; on an unspecified address
    /// (`0.0.0.0`), the loopback URL that reaches it from this machine.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => Ipv4Addr::LOCALHOST.into(),
            ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        format!("http://{}/", SocketAddr::new(ip, self.addr.port()))
    }

    /// The traces it serves.
    pub fn store(&self) -> &TraceStore {
        &self.store
    }

    /// Stops accepting, lets requests in flight finish (at most 5 s), and returns once the port
    /// is free.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

//! Configuring and starting a receiver: the builder, its listeners, and the checks it makes
//! before it binds anything.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::running::{Listeners, RunningReceiver};
use crate::{
    DEFAULT_BODY_START_TIMEOUT, DEFAULT_BODY_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_IN_FLIGHT_BYTES, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_SPANS,
    DEFAULT_MAX_STORED_BYTES, DEFAULT_MIN_BODY_RATE, Error, Exposure, Faults, Result, SpanStore,
    WhenFull, server, service,
};

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

    /// Requires every export to carry `token` in the
    /// [`ACCESS_TOKEN_HEADER`](crate::ACCESS_TOKEN_HEADER) header (gRPC metadata). Requests without
    /// it, or with another value, get `UNAUTHENTICATED` / `401` before any other check (fault knobs
    /// included) and nothing of them is stored: they are counted in
    /// [`ReceiverStats::requests_unauthenticated`](crate::ReceiverStats::requests_unauthenticated)
    /// but not recorded, so a token sent by mistake is not kept. Tokens are compared in constant
    /// time and never logged.
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

#[cfg(test)]
mod tests {
    use super::*;

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

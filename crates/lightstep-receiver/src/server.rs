//! Listeners: binding, TLS, the accept loop and per-connection serving.
//!
//! Both listeners run the same loop and serve HTTP/1.1 and HTTP/2 (prior knowledge or ALPN)
//! through hyper, so TLS, limits and shutdown behave the same on both. The loop bounds what a
//! client can make it hold before a handler charges anything to the in-flight budget: a fixed
//! number of connections over both listeners, and on each of them fixed buffers (HTTP/1.1's
//! read buffer, HTTP/2's frame size and receive windows) and a number of HTTP/2 streams and
//! header-list size derived from the budget. It also decides how long a connection keeps its
//! slot: one that has not had an export accepted within the idle timeout is closed, whatever
//! else it sends; and when every slot is taken and another client is waiting, one connection
//! whose last request was refused, or that has had neither an accepted export nor body bytes in
//! the last second, is closed at once for each client that waits, the one idle longest
//! (ADR 206).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};
use crate::service::{App, ConnInfo};

/// Connections served at once over both listeners; further clients wait in the kernel's
/// backlog until a slot is free.
pub(crate) const MAX_CONNECTIONS: usize = 128;
/// The largest HTTP/2 frame a client may send (`SETTINGS_MAX_FRAME_SIZE`, the protocol's
/// default): a frame is buffered whole before it is decoded, flow control or not.
const MAX_FRAME_SIZE: u32 = 16 << 10;
/// HTTP/2 receive windows, per stream and per connection (the protocol's default): what a
/// client may send before the handler reads it, on each connection.
const WINDOW: u32 = 64 << 10;
/// HTTP/1.1's read buffer, which holds a request's headers whole: larger headers are answered
/// `431` by hyper.
const HTTP1_MAX_BUF: usize = 16 << 10;
/// Bounds of the HTTP/2 settings derived from the budget ([`http2_limits`]).
const MAX_STREAMS_PER_CONNECTION: usize = 32;
const MIN_HEADER_LIST: usize = 4 << 10;
const MAX_HEADER_LIST: usize = 8 << 10;
/// How many bytes a request's headers may be charged ([`crate::store::header_charge`]: their
/// text and 200 bytes an entry) for each byte of their HTTP/2 size
/// (`SETTINGS_MAX_HEADER_LIST_SIZE` counts their text and 32 bytes an entry): about 6 for
/// entries of one or two bytes, less for longer ones. The header map HTTP/2 decodes holds less
/// than that charge (80 to 150 bytes an entry).
const HEADER_MEMORY_FACTOR: usize = 6;
/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// An HTTP/1.1 client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown lets in-flight requests finish before it drops their connections.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// When a client waits for a slot, a connection without an accepted export or body bytes for
/// this long (or the idle timeout, if shorter) may be closed to make room.
const PRESSURE_IDLE: Duration = Duration::from_secs(1);

/// HTTP/2's concurrent streams per connection and header-list size, from the in-flight budget.
///
/// HTTP/2 decodes a stream's headers before the handler can charge them: each connection may
/// hold up to `streams × list` of them (charged, and in memory, up to [`HEADER_MEMORY_FACTOR`]
/// times that). Over [`MAX_CONNECTIONS`] this is kept within half the budget, so that headers
/// alone cannot take the room bodies need: 5 streams of 8 KiB each with the default 64 MiB.
pub(crate) fn http2_limits(budget: usize) -> (u32, u32) {
    let per_connection = budget / (2 * MAX_CONNECTIONS * HEADER_MEMORY_FACTOR);
    let list = per_connection.clamp(MIN_HEADER_LIST, MAX_HEADER_LIST);
    let streams = (per_connection / list).clamp(1, MAX_STREAMS_PER_CONNECTION);
    // Both are small constants: the conversions cannot fail.
    (
        u32::try_from(streams).unwrap_or(1),
        u32::try_from(list).unwrap_or(4096),
    )
}

/// The connection slots both listeners share, and the open connections' [`Activity`], from
/// which one is chosen to make room when a client waits for a slot.
#[derive(Debug)]
pub(crate) struct Slots {
    free: Arc<Semaphore>,
    open: std::sync::Mutex<Vec<std::sync::Weak<Activity>>>,
}

impl Slots {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            free: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            open: std::sync::Mutex::new(Vec::with_capacity(MAX_CONNECTIONS)),
        })
    }

    /// A slot for a connection accepted already: at once if one is free; otherwise one
    /// connection that may be evicted ([`Activity::evictable`]) is asked to close, the one
    /// idle longest, and again every quarter second while no slot is free. `None` once
    /// shutting down.
    async fn acquire(&self, shutdown: &mut watch::Receiver<bool>) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(permit) = Arc::clone(&self.free).try_acquire_owned() {
                return Some(permit);
            }
            self.evict_one();
            tokio::select! {
                permit = Arc::clone(&self.free).acquire_owned() => return permit.ok(),
                () = tokio::time::sleep(PRESSURE_IDLE / 4) => {}
                _ = shutdown.wait_for(|stop| *stop) => return None,
            }
        }
    }

    /// Registers a new connection's activity.
    fn register(&self, activity: &Arc<Activity>) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.retain(|a| a.strong_count() > 0);
        open.push(Arc::downgrade(activity));
    }

    fn evict_one(&self) {
        let open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let victim = open
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .filter(|a| a.evictable())
            .min_by_key(|a| a.last_active());
        if let Some(victim) = victim {
            victim.evict();
        }
    }
}

/// What every connection of a listener is served with.
#[derive(Clone)]
pub(crate) struct Serving {
    pub(crate) app: Arc<App>,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) idle_timeout: Duration,
    pub(crate) slots: Arc<Slots>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// Builds the TLS acceptor from PEM text: a certificate chain (leaf first), its private key and,
/// optionally, a CA bundle that client certificates must chain to (then they are required).
pub(crate) fn tls_acceptor(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<TlsAcceptor> {
    let tls_err = |reason: String| Error::Tls {
        reason,
        source: None,
    };
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_err(format!("could not read the certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err("the certificate PEM holds no certificate".into()));
    }
    // The key's parse error is not shown: it could quote key material.
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| tls_err("could not read a private key from the key PEM".into()))?;

    // Deprecated by rustls 0.23.48 (no post-quantum key exchange), with no replacement for
    // *ring*: see docs/adr/011-one-async-transport-core.md.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            reason: "no usable TLS protocol version".into(),
            source: Some(Box::new(e)),
        })?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca_pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(ca_pem) {
                let ca =
                    ca.map_err(|e| tls_err(format!("could not read the client CA PEM: {e}")))?;
                roots.add(ca).map_err(|e| Error::Tls {
                    reason: "unusable client CA certificate".into(),
                    source: Some(Box::new(e)),
                })?;
            }
            if roots.is_empty() {
                return Err(tls_err("the client CA PEM holds no certificate".into()));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| tls_err(format!("unusable client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls {
            reason: "the certificate and key do not form a usable pair".into(),
            source: Some(Box::new(e)),
        })?;
    // gRPC clients require HTTP/2 to be negotiated through ALPN.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The listen backlog: connections the kernel completes while every slot is taken wait here
/// (beyond it, new clients' connection attempts are dropped and retried with backoff). Tokio's
/// `TcpListener::bind` leaves the standard library's 128.
pub(crate) const BACKLOG: i32 = 1024;

/// Binds `addr` and listens with [`BACKLOG`], naming the listener and the address if it
/// cannot.
pub(crate) async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener> {
    let error = |source| Error::Bind {
        listener,
        addr,
        source,
    };
    let bound = TcpListener::bind(addr).await.map_err(error)?;
    // Listening again on a listening socket only sets its backlog.
    socket2::SockRef::from(&bound)
        .listen(BACKLOG)
        .map_err(error)?;
    Ok(bound)
}

/// Accepts and serves connections until `shutdown` turns true (or its sender is dropped), then
/// lets in-flight requests finish for at most [`SHUTDOWN_GRACE`].
pub(crate) async fn serve(listener: TcpListener, serving: Serving) {
    let mut shutdown = serving.shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        // Reap finished connection tasks so the set stays as small as the live connections.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((tcp, peer)) => {
                let Some(permit) = serving.slots.acquire(&mut shutdown).await else {
                    break;
                };

                // Small OTLP responses should not wait for Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
                connections.spawn(serve_connection(tcp, peer, serving.clone(), permit));
            }
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "lightstep-receiver could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    serving: Serving,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new(serving.idle_timeout));
    serving.slots.register(&activity);
    let evicted = activity.close.notified();
    tokio::pin!(evicted);
    match serving.tls.clone() {
        None => {
            let conn = ConnInfo { peer, tls: false };
            serve_io(tcp, conn, &serving, &activity, evicted).await;
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            let stream = tokio::select! {
                handshake = handshake => handshake,
                () = &mut evicted => return,
            };
            match stream {
                Ok(Ok(stream)) => {
                    let conn = ConnInfo { peer, tls: true };
                    serve_io(stream, conn, &serving, &activity, evicted).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// When a connection last had an export accepted, and last received body bytes: what the idle
/// timeout and eviction look at. Requests that are refused (a wrong path or method, a missing
/// token, a body that never came) count for neither, so a client cannot keep a slot with them.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the end of the last accepted export.
    last_accepted_ms: AtomicU64,
    /// Milliseconds from `opened` to the last bytes of a request body.
    last_progress_ms: AtomicU64,
    /// Whether the last thing that happened was a refused request (not an accepted export or
    /// body bytes).
    refused_last: AtomicBool,
    /// How long without an accepted export or body bytes makes it evictable.
    stale_after: Duration,
    /// Asked to close, to make room; closes at once.
    evicted: AtomicBool,
    close: tokio::sync::Notify,
}

impl Activity {
    fn new(idle_timeout: Duration) -> Self {
        Self {
            opened: Instant::now(),
            last_accepted_ms: AtomicU64::new(0),
            last_progress_ms: AtomicU64::new(0),
            refused_last: AtomicBool::new(false),
            stale_after: PRESSURE_IDLE.min(idle_timeout),
            evicted: AtomicBool::new(false),
            close: tokio::sync::Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn accepted(&self) {
        self.last_accepted_ms
            .fetch_max(self.now_ms(), Ordering::Relaxed);
        self.refused_last.store(false, Ordering::Relaxed);
    }

    fn refused(&self) {
        self.refused_last.store(true, Ordering::Relaxed);
    }

    fn progressed(&self) {
        self.last_progress_ms
            .fetch_max(self.now_ms(), Ordering::Relaxed);
        self.refused_last.store(false, Ordering::Relaxed);
    }

    fn at(&self, ms: &AtomicU64) -> Instant {
        self.opened + Duration::from_millis(ms.load(Ordering::Relaxed))
    }

    /// The last accepted export or body bytes (or the opening).
    fn last_active(&self) -> Instant {
        self.at(&self.last_accepted_ms)
            .max(self.at(&self.last_progress_ms))
    }

    /// Whether the connection may be closed to make room: its last request was refused, or it
    /// has had neither an accepted export nor body bytes for [`PRESSURE_IDLE`] (or the idle
    /// timeout, if shorter).
    fn evictable(&self) -> bool {
        !self.evicted.load(Ordering::Relaxed)
            && (self.refused_last.load(Ordering::Relaxed)
                || self.last_active().elapsed() >= self.stale_after)
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.close.notify_one();
    }

    /// Returns once the connection has had no export accepted for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let until = self.at(&self.last_accepted_ms) + idle;
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// A request body that tells its connection's [`Activity`] when bytes arrive.
struct Progress<B> {
    inner: B,
    activity: Arc<Activity>,
}

impl<B> http_body::Body for Progress<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<B::Data>, B::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && frame.is_data()
        {
            self.activity.progressed();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a response accepts an export: a success status, and for gRPC no error status in
/// the headers (errors are trailers-only responses; success carries its status in trailers).
fn accepts(response: &http::Response<tonic::body::Body>) -> bool {
    response.status().is_success()
        && response
            .headers()
            .get("grpc-status")
            .is_none_or(|status| status == "0")
}

async fn serve_io<I>(
    io: I,
    conn: ConnInfo,
    serving: &Serving,
    activity: &Arc<Activity>,
    mut evicted: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let requests = Arc::clone(activity);
    let app = Arc::clone(&serving.app);
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let req = req.map(|inner| Progress {
            inner,
            activity: Arc::clone(&requests),
        });
        let handled = Arc::clone(&app).handle(req, conn);
        let requests = Arc::clone(&requests);
        async move {
            let response = handled.await;
            if let Ok(response) = &response {
                if accepts(response) {
                    requests.accepted();
                } else {
                    requests.refused();
                }
            }
            response
        }
    });
    let (streams, header_list) = http2_limits(serving.app.budget_total());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(HTTP1_MAX_BUF);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(streams)
        .max_header_list_size(header_list)
        .max_frame_size(MAX_FRAME_SIZE)
        .initial_stream_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        // Pings find peers that vanished without closing, so their connection slots come back.
        .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
        .keep_alive_timeout(std::time::Duration::from_secs(20));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut shutdown = serving.shutdown.clone();
    let stop = tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
            }
            return;
        }
        stopping = shutdown.wait_for(|stop| *stop) => {
            drop(stopping);
            true
        }
        () = &mut evicted => {
            tracing::debug!(peer = %conn.peer, "closing a connection to make room for another");
            return;
        }
        () = activity.idle_for(serving.idle_timeout) => {
            tracing::debug!(peer = %conn.peer, "closing an idle connection");
            false
        }
    };
    // Refuse new requests (HTTP/2 GOAWAY) and let those in flight finish. On shutdown, the
    // grace period bounds this; after an idle close, each request's own deadlines do, while
    // eviction and shutdown still apply.
    connection.as_mut().graceful_shutdown();
    if !stop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = &mut evicted => return,
            stopping = shutdown.wait_for(|stop| *stop) => drop(stopping),
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_limits_keep_decoded_headers_within_half_the_budget() {
        for (budget, expected) in [
            (crate::DEFAULT_MAX_IN_FLIGHT_BYTES, (5, 8 << 10)),
            // Small budgets: one stream, and headers of no more than 4 KiB.
            (1 << 20, (1, 4 << 10)),
            (64 << 10, (1, 4 << 10)),
            // Large ones: more streams, up to the cap.
            (1 << 30, (32, 8 << 10)),
        ] {
            assert_eq!(http2_limits(budget), expected, "{budget}");
        }
        let (streams, list) = http2_limits(crate::DEFAULT_MAX_IN_FLIGHT_BYTES);
        let worst = MAX_CONNECTIONS * streams as usize * list as usize * HEADER_MEMORY_FACTOR;
        assert!(worst <= crate::DEFAULT_MAX_IN_FLIGHT_BYTES / 2, "{worst}");
    }

    #[test]
    fn a_connection_is_evictable_once_refused_or_inactive() {
        let activity = Activity::new(Duration::from_secs(60));
        assert!(!activity.evictable(), "a new connection");
        activity.refused();
        assert!(activity.evictable(), "its last request was refused");
        activity.progressed();
        assert!(!activity.evictable(), "body bytes since");
        activity.refused();
        activity.accepted();
        assert!(!activity.evictable(), "an accepted export since");
        // With an idle timeout shorter than a second, that is how long it may be inactive.
        let short = Activity::new(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.evictable());
        short.evict();
        assert!(!short.evictable(), "asked to close once only");
    }
}

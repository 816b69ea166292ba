//! Listeners: binding, TLS, the accept loop and per-connection serving.
//!
//! Both listeners run the same loop and serve HTTP/1.1 and HTTP/2 (prior knowledge or ALPN)
//! through hyper, so TLS, limits and shutdown behave the same on both. The loop bounds what a
//! client can make it hold: a fixed number of connections, a fixed number of concurrent HTTP/2
//! streams per connection, time limits on the TLS handshake and request headers, and an idle
//! timeout that closes connections with no request in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// Connections served at once per listener; further clients wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;
/// The largest HTTP/2 frame a client may send (`SETTINGS_MAX_FRAME_SIZE`).
const MAX_FRAME_SIZE: u32 = 256 << 10;
/// Concurrent HTTP/2 streams (gRPC calls) per connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// An HTTP/1.1 client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown lets in-flight requests finish before it drops their connections.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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

/// The listen backlog for a socket handed over (what Tokio's `TcpListener::bind` uses).
pub(crate) const BACKLOG: i32 = 1024;

/// Binds `addr`, naming the listener and the address if it cannot.
pub(crate) async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        listener,
        addr,
        source,
    })
}

/// Accepts and serves connections until `shutdown` turns true (or its sender is dropped), then
/// lets in-flight requests finish for at most [`SHUTDOWN_GRACE`].
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<TlsAcceptor>,
    idle_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        // Reap finished connection tasks so the set stays as small as the live connections.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((tcp, peer)) => {
                // Small OTLP responses should not wait for Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
                connections.spawn(serve_connection(
                    tcp,
                    peer,
                    tls.clone(),
                    Arc::clone(&app),
                    idle_timeout,
                    shutdown.clone(),
                    permit,
                ));
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
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    idle_timeout: Duration,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    match tls {
        None => {
            let conn = ConnInfo { peer, tls: false };
            serve_io(tcp, conn, app, idle_timeout, shutdown).await;
        }
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let conn = ConnInfo { peer, tls: true };
                    serve_io(stream, conn, app, idle_timeout, shutdown).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// The requests in flight on one connection and when the last one ended: what the idle
/// timeout looks at.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request.
    last_end_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> RequestInFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        RequestInFlight(Arc::clone(self))
    }

    fn last_end(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_end_ms.load(Ordering::SeqCst))
    }

    /// Returns once the connection has had no request in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(idle).await;
                continue;
            }
            let until = self.last_end() + idle;
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// Counts a request as in flight until its handler returns (or is dropped).
struct RequestInFlight(Arc<Activity>);

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        let since = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_end_ms.store(since, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_io<I>(
    io: I,
    conn: ConnInfo,
    app: Arc<App>,
    idle_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let in_flight = requests.begin();
        let handled = Arc::clone(&app).handle(req, conn);
        async move {
            let response = handled.await;
            drop(in_flight);
            response
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        // Frames of up to 256 KiB instead of HTTP/2's 16 KiB: a 600 KiB export arrives in 3
        // frames, not 38, which the delivery bench measured at about 8 % more spans per second
        // end to end (docs/benchmarks.md). The cost: a frame that flow control does not cover
        // (headers) may be buffered up to this size on each connection while it is read.
        .max_frame_size(MAX_FRAME_SIZE)
        // Pings find peers that vanished without closing, so their connection slots come back.
        .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
        .keep_alive_timeout(std::time::Duration::from_secs(20));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = shutdown.wait_for(|stop| *stop) => {}
        () = activity.idle_for(idle_timeout) => {
            tracing::debug!(peer = %conn.peer, "closing an idle connection");
        }
    }
    // Finish in-flight requests, refuse new ones (HTTP/2 GOAWAY). Bounded here too, as an idle
    // close does not go through the accept loop's grace period.
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
}

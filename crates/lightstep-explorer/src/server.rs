//! The listener: the accept loop, the checks every request passes first (its `Host`, its
//! method) and the headers every answer carries.
//!
//! One hyper stack serves HTTP/1.1 and HTTP/2 (prior knowledge), as the receiver's does. What
//! a client can make it hold is bounded: a fixed number of connections, a time limit on request
//! headers, a lifetime per connection, and request bodies are never read.
//!
//! The `Host` check is what keeps a web page elsewhere from reading the explorer through DNS
//! rebinding (a name of the attacker's that resolves to 127.0.0.1): only the address the
//! explorer listens on, and the loopback names for its port, are answered; anything else gets
//! 403 before any data is touched.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::api::{Api, Body, plain};
use crate::assets;

/// Connections served at once; further clients wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;
/// An HTTP/1.1 client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection is closed (after its request in flight) once it has been open this long, so
/// that clients that keep connections open cannot hold every slot.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// How long shutdown lets requests in flight finish.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Concurrent HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 32;

/// The Content-Security-Policy of every answer: scripts and styles only from the explorer
/// itself, nothing inline, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Which `Host` values are answered.
#[derive(Debug, Clone)]
pub(crate) struct HostRule {
    addr: SocketAddr,
    /// With remote access allowed on an unspecified address (`0.0.0.0`, `[::]`), any IP
    /// literal with the right port: a literal address cannot be rebound.
    any_ip: bool,
}

impl HostRule {
    pub(crate) fn new(addr: SocketAddr, remote_allowed: bool) -> Self {
        Self {
            addr,
            any_ip: remote_allowed && addr.ip().is_unspecified(),
        }
    }

    /// Whether `authority` (`host[:port]`) names this server.
    pub(crate) fn allows(&self, authority: &str) -> bool {
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        if port != self.addr.port() {
            return false;
        }
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let Ok(ip) = host.parse::<IpAddr>() else {
            return false;
        };
        ip == self.addr.ip() || lightstep_receiver::is_loopback(ip) || self.any_ip
    }
}

/// `host` and port of an authority; the port is 80 when not written. IPv6 hosts are written in
/// brackets and returned without them.
fn split_authority(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(port) => port.parse().ok()?,
    };
    (!host.is_empty()).then_some((host, port))
}

/// Everything a request needs.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) api: Api,
    pub(crate) hosts: HostRule,
}

impl App {
    pub(crate) async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let mut response = self.route(&req).await;
        secure(&mut response);
        response
    }

    async fn route(&self, req: &Request<Incoming>) -> Response<Body> {
        // HTTP/2 carries the authority in the URI, HTTP/1.1 in `Host`; each one given must
        // name this server, and one must be given.
        let host_header = req
            .headers()
            .get_all(header::HOST)
            .iter()
            .map(|v| v.to_str().ok())
            .collect::<Vec<_>>();
        let uri_authority = req.uri().authority().map(|a| a.as_str());
        let named = host_header
            .iter()
            .map(|h| h.is_some_and(|h| self.hosts.allows(h)))
            .chain(uri_authority.map(|a| self.hosts.allows(a)))
            .collect::<Vec<_>>();
        if named.is_empty() || named.contains(&false) {
            return plain(
                StatusCode::FORBIDDEN,
                "forbidden: the Host header does not name this server (the explorer answers \
                 only to the address it listens on, against DNS rebinding)\n",
            );
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut response = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: the explorer only reads (GET)\n",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let path = req.uri().path();
        let Some(segments) = decode_segments(path) else {
            return plain(
                StatusCode::BAD_REQUEST,
                "bad request: the path is not valid percent-encoded UTF-8\n",
            );
        };
        match segments.first().map(String::as_str) {
            Some("api") => self.api.handle(&segments[1..], req.uri().query()).await,
            Some("assets") if segments.len() == 2 => assets::asset(&segments[1]),
            _ if assets::is_page(&segments) => assets::page(),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

/// The path's segments, percent-decoded (a service name may hold `/` as `%2F`).
fn decode_segments(path: &str) -> Option<Vec<String>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        })
        .collect()
}

/// The headers every answer carries: a strict Content-Security-Policy, no MIME sniffing, no
/// framing, no referrer; never a CORS header, so other origins cannot read answers.
fn secure(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// Accepts and serves connections until `shutdown` turns true, then lets requests in flight
/// finish for at most [`SHUTDOWN_GRACE`].
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
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
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((tcp, _peer)) => {
                let _ = tcp.set_nodelay(true);
                let app = Arc::clone(&app);
                let mut shutdown = shutdown.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    let service = hyper::service::service_fn(move |req| {
                        let app = Arc::clone(&app);
                        async move { Ok::<_, std::convert::Infallible>(app.handle(req).await) }
                    });
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder
                        .http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT);
                    builder
                        .http2()
                        .timer(TokioTimer::new())
                        .max_concurrent_streams(MAX_STREAMS);
                    let connection = builder.serve_connection(TokioIo::new(tcp), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => return,
                        _ = shutdown.wait_for(|stop| *stop) => {}
                        () = tokio::time::sleep(CONNECTION_LIFETIME) => {}
                    }
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "lightstep-explorer could not accept a connection");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_on_loopback() {
        let rule = HostRule::new("127.0.0.1:16686".parse().unwrap(), false);
        for ok in [
            "127.0.0.1:16686",
            "localhost:16686",
            "LocalHost:16686",
            "[::1]:16686",
            "127.0.0.2:16686",
        ] {
            assert!(rule.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example:16686",
            "localhost.evil.example:16686",
            "localhost:80",
            "localhost",
            "127.0.0.1",
            "127.0.0.1:16687",
            "10.0.0.1:16686",
            "[::1]",
            "[::1]16686",
            ":16686",
            "",
            "127.0.0.1:99999",
        ] {
            assert!(!rule.allows(refused), "{refused}");
        }
        // On port 80 the port may be left out.
        let web = HostRule::new("127.0.0.1:80".parse().unwrap(), false);
        assert!(web.allows("localhost"));
        assert!(web.allows("[::1]"));
    }

    #[test]
    fn remote_access_accepts_ip_literals_only() {
        let rule = HostRule::new("0.0.0.0:16686".parse().unwrap(), true);
        assert!(rule.allows("192.168.1.20:16686"));
        assert!(rule.allows("[fe80::1]:16686"));
        assert!(!rule.allows("rebind.example:16686"));
        let specific = HostRule::new("192.168.1.20:16686".parse().unwrap(), true);
        assert!(specific.allows("192.168.1.20:16686"));
        assert!(!specific.allows("192.168.1.21:16686"));
    }
}

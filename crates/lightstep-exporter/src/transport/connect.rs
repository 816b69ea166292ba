//! Connections to the one endpoint of a pipeline, for both transports: TCP (to the endpoint,
//! or to an HTTP proxy and through an HTTP CONNECT tunnel), then TLS with the pipeline's one
//! client configuration when the endpoint wants it. Through a proxy, TLS runs inside the
//! tunnel: the proxy sees the endpoint's name and port, and the token only encrypted.
//!
//! hyper-util's client (HTTP) and tonic's channel (gRPC) both take this connector, so that
//! the two transports connect, verify certificates and present a client identity the same
//! way. tonic is handed an `http://` URI and the request origin separately: the TLS is ours,
//! and tonic's own TLS layer, which starts only for `https://` URIs, never runs.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

/// Opens a connection to the endpoint it was built for, whatever URI it is called with: a
/// pipeline talks to one endpoint, and tonic calls it with the `http://` form of it.
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    /// `http://host:port` of the endpoint, for the TCP connector (which resolves the host).
    target: Uri,
    /// `host:port`, for messages and the CONNECT request.
    authority: Arc<str>,
    tls: Option<Tls>,
    proxy: Option<Proxy>,
}

/// An HTTP proxy to tunnel through.
#[derive(Clone)]
pub(crate) struct Proxy {
    /// `http://host:port/` of the proxy, for the TCP connector.
    uri: Uri,
    /// `http://host:port` of the proxy, without credentials: what messages name.
    shown: Arc<str>,
    /// `Proxy-Authorization`, marked sensitive, from the URL's credentials.
    authorization: Option<HeaderValue>,
}

impl Proxy {
    pub(crate) fn new(uri: Uri, authorization: Option<HeaderValue>) -> Self {
        let shown = format!(
            "http://{}",
            uri.authority().map(|a| a.as_str()).unwrap_or_default()
        );
        Self {
            uri,
            shown: shown.into(),
            authorization,
        }
    }

    /// The proxy as messages name it: `http://host:port`, never its credentials.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// The proxy's host (an IPv6 address without brackets) and port.
    pub(crate) fn host_port(&self) -> (String, u16) {
        let host = self.uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (host.to_owned(), self.uri.port_u16().unwrap_or(80))
    }
}

#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.authority)
            .field("tls", &self.tls.is_some())
            .field("proxy", &self.proxy.as_ref().map(|p| &p.shown))
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector to `host:port`, with TLS when `tls` is given (its ALPN already set), through
    /// `proxy` when given. `connect_timeout` bounds the TCP connection.
    pub(crate) fn new(
        host: &str,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
        proxy: Option<Proxy>,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        // An IPv6 literal comes bracketed from the URL; the TLS name wants it bare.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let authority = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        let target: Uri = format!("http://{authority}")
            .parse()
            .map_err(|e| format!("`{authority}` is not a valid endpoint address: {e}"))?;
        let tls = match tls {
            Some(config) => Some(Tls {
                connector: tokio_rustls::TlsConnector::from(config),
                name: ServerName::try_from(bare.to_owned())
                    .map_err(|_| format!("`{bare}` is not a valid TLS server name"))?,
            }),
            None => None,
        };
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        Ok(Self {
            tcp,
            target,
            authority: authority.into(),
            tls,
            proxy,
        })
    }

    /// `host:port` of the endpoint (an IPv6 address in brackets).
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// Opens one connection.
    pub(crate) async fn connect(&self) -> Result<TokioIo<Stream>, ConnectError> {
        let mut tcp = self.tcp.clone();
        let stream = match &self.proxy {
            None => tower::Service::call(&mut tcp, self.target.clone())
                .await
                .map_err(|e| ConnectError::Tcp(self.authority.clone(), Box::new(e)))?
                .into_inner(),
            Some(proxy) => {
                let stream = tower::Service::call(&mut tcp, proxy.uri.clone())
                    .await
                    .map_err(|e| ConnectError::Proxy(proxy.shown.clone(), Box::new(e)))?
                    .into_inner();
                tunnel(stream, &self.authority, proxy).await?
            }
        };
        let Some(tls) = &self.tls else {
            return Ok(TokioIo::new(Stream::Plain(stream)));
        };
        let stream = tls
            .connector
            .connect(tls.name.clone(), stream)
            .await
            .map_err(|e| ConnectError::Tls(self.authority.clone(), e))?;
        Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
    }
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect().await })
    }
}

/// The longest answer head a proxy may send to `CONNECT`.
const MAX_TUNNEL_ANSWER: usize = 8 * 1024;

/// Asks `proxy`, on `stream`, for a tunnel to `authority` (`host:port`), and returns the stream
/// once the proxy answered 2xx. The answer is read byte by byte up to its blank line, so that
/// nothing the endpoint sends first (an HTTP/2 server's SETTINGS) is taken with it.
pub(crate) async fn tunnel(
    mut stream: TcpStream,
    authority: &Arc<str>,
    proxy: &Proxy,
) -> Result<TcpStream, ConnectError> {
    let broken = |e: io::Error| ConnectError::TunnelBroken {
        proxy: proxy.shown.clone(),
        target: authority.clone(),
        error: e,
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    if let Some(authorization) = &proxy.authorization {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(authorization.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).await.map_err(broken)?;
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_TUNNEL_ANSWER {
            return Err(broken(io::Error::other(format!(
                "the answer's head is longer than {MAX_TUNNEL_ANSWER} bytes"
            ))));
        }
        match stream.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(broken(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the proxy closed the connection without answering",
                )));
            }
            Err(e) => return Err(broken(e)),
        }
    }
    // `HTTP/1.1 200 Connection established`: the status, and the reason as shown text (it
    // comes from the network: printable ASCII only, and short).
    let status_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = status_line.splitn(3, |b| *b == b' ');
    let version = parts.next().unwrap_or_default();
    let status = parts
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok());
    let (Some(status), true) = (status, version.starts_with(b"HTTP/1.")) else {
        return Err(broken(io::Error::new(
            io::ErrorKind::InvalidData,
            "the proxy's answer is not HTTP/1.x",
        )));
    };
    if (200..300).contains(&status) {
        return Ok(stream);
    }
    let reason: String = parts
        .next()
        .unwrap_or_default()
        .iter()
        .take(64)
        .map(|b| match b {
            b' '..=b'~' => *b as char,
            _ => ' ',
        })
        .collect();
    Err(ConnectError::TunnelRefused {
        proxy: proxy.shown.clone(),
        target: authority.clone(),
        status,
        reason: reason.trim().to_owned(),
    })
}

/// Why a connection could not be opened. Its text names the endpoint and the proxy (never the
/// proxy's credentials), never a header.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// No TCP connection to the endpoint.
    #[error("cannot connect to {0}")]
    Tcp(Arc<str>, #[source] Box<dyn std::error::Error + Send + Sync>),
    /// No TCP connection to the proxy.
    #[error("cannot connect to the proxy {0}")]
    Proxy(Arc<str>, #[source] Box<dyn std::error::Error + Send + Sync>),
    /// The proxy answered `CONNECT` with something else than 2xx.
    #[error("the proxy {proxy} refused the tunnel to {target}: {status} {reason}")]
    TunnelRefused {
        proxy: Arc<str>,
        target: Arc<str>,
        status: u16,
        reason: String,
    },
    /// The exchange with the proxy broke off before a tunnel was open.
    #[error("no tunnel through the proxy {proxy} to {target}")]
    TunnelBroken {
        proxy: Arc<str>,
        target: Arc<str>,
        #[source]
        error: io::Error,
    },
    /// The TLS handshake failed (an untrusted certificate, a refused client identity).
    #[error("TLS handshake with {0} failed")]
    Tls(Arc<str>, #[source] io::Error),
}

/// A connection, in plaintext or TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

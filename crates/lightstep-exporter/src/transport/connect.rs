//! Connections to the one endpoint of a pipeline, for both transports: TCP, then TLS with the
//! pipeline's one client configuration when the endpoint wants it.
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

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Opens a connection to the endpoint it was built for, whatever URI it is called with: a
/// pipeline talks to one endpoint, and tonic calls it with the `http://` form of it.
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    /// `http://host:port` of the endpoint, for the TCP connector (which resolves the host).
    target: Uri,
    /// `host:port`, for messages.
    authority: Arc<str>,
    tls: Option<Tls>,
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
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector to `host:port`, with TLS when `tls` is given (its ALPN already set).
    /// `connect_timeout` bounds the TCP connection.
    pub(crate) fn new(
        host: &str,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
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
        })
    }

    /// `host:port` of the endpoint (an IPv6 address in brackets).
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// Opens one connection.
    pub(crate) async fn connect(&self) -> Result<TokioIo<Stream>, ConnectError> {
        let mut tcp = self.tcp.clone();
        let stream = tower::Service::call(&mut tcp, self.target.clone())
            .await
            .map_err(|e| ConnectError::Tcp(self.authority.clone(), Box::new(e)))?
            .into_inner();
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

/// Why a connection could not be opened. Its text names the endpoint, never a header.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// No TCP connection to the endpoint.
    #[error("cannot connect to {0}")]
    Tcp(Arc<str>, #[source] Box<dyn std::error::Error + Send + Sync>),
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

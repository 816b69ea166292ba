//! A stand-in HTTP server on 127.0.0.1 (hyper, plaintext or TLS): each request is recorded and
//! answered by a handler, with a body that may be whole, cut half-way, stalled, or never come.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request as the handler sees it.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: http::HeaderMap,
}

impl Recorded {
    /// The first value of a query parameter.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How the body of an answer goes out.
pub(crate) enum Body {
    /// All of it.
    Whole(Vec<u8>),
    /// `sent`, with a `Content-Length` of `declared`, then the connection breaks.
    Cut { sent: Vec<u8>, declared: usize },
    /// `sent`, then nothing more, ever.
    Stalled(Vec<u8>),
    /// Pieces made one at a time as the client reads, so that the stand-in never holds the
    /// whole body (tests/search_memory.rs).
    #[allow(dead_code)]
    Generated(Box<dyn Iterator<Item = Vec<u8>> + Send + Sync>),
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body,
    /// Wait this long before answering at all.
    pub(crate) delay: Option<Duration>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: Body::Whole(body.into()),
            delay: None,
        }
    }

    pub(crate) fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type", "text/plain; charset=utf-8".into())],
            body: Body::Whole(body.into()),
            delay: None,
        }
    }

    pub(crate) fn protobuf(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/protobuf".into())],
            body: Body::Whole(body),
            delay: None,
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn never() -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: Body::Whole(Vec::new()),
            delay: Some(Duration::from_secs(3600)),
        }
    }
}

pub(crate) type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A running stand-in; it stops when dropped.
pub(crate) struct StandIn {
    pub(crate) addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// A plaintext stand-in.
    pub(crate) async fn start(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::serve(Arc::new(handler), None, true).await
    }

    /// A plaintext stand-in that keeps no record of its requests, for runs of many thousands
    /// whose memory is measured.
    #[allow(dead_code)]
    pub(crate) async fn start_unrecorded(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::serve(Arc::new(handler), None, false).await
    }

    /// A stand-in behind TLS with this certificate chain and key.
    pub(crate) async fn start_tls(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Self {
        Self::serve(Arc::new(handler), Some(acceptor), true).await
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    async fn serve(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>, record: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let handler = Arc::clone(&handler);
                            let recorded = Arc::clone(&recorded);
                            async move {
                                let request = Recorded {
                                    path: request.uri().path().to_owned(),
                                    query: request
                                        .uri()
                                        .query()
                                        .map(|q| {
                                            url::form_urlencoded::parse(q.as_bytes())
                                                .into_owned()
                                                .collect()
                                        })
                                        .unwrap_or_default(),
                                    headers: request.headers().clone(),
                                };
                                if record {
                                    recorded.lock().unwrap().push(request.clone());
                                }
                                let reply = handler(&request);
                                if let Some(delay) = reply.delay {
                                    tokio::time::sleep(delay).await;
                                }
                                Ok::<_, Infallible>(response(reply))
                            }
                        });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }
}

type ReplyBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn response(reply: Reply) -> hyper::Response<ReplyBody> {
    let mut builder = hyper::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value);
    }
    let body: ReplyBody = match reply.body {
        Body::Whole(bytes) => http_body_util::Full::new(Bytes::from(bytes))
            .map_err(|never| match never {})
            .boxed(),
        Body::Cut { sent, declared } => {
            builder = builder.header("content-length", declared.to_string());
            // The part sent goes out before the connection breaks.
            let frames = futures_util::stream::iter(vec![Ok(Frame::data(Bytes::from(sent)))])
                .chain(futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(std::io::Error::other("the stand-in breaks the connection"))
                }));
            BodyExt::boxed(StreamBody::new(frames))
        }
        Body::Generated(pieces) => {
            let frames =
                futures_util::stream::iter(pieces.map(|piece| Ok(Frame::data(Bytes::from(piece)))));
            BodyExt::boxed(StreamBody::new(frames))
        }
        Body::Stalled(sent) => {
            let frames = futures_util::stream::iter(vec![Ok(Frame::data(Bytes::from(sent)))])
                .chain(futures_util::stream::pending());
            BodyExt::boxed(StreamBody::new(frames))
        }
    };
    builder.body(body).unwrap()
}

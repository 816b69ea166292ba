//! Tonic integration: layers that trace every gRPC call a server handles or a client makes,
//! and an interceptor that only propagates.
//!
//! gRPC runs over HTTP/2, so these are tower layers on `http` requests: the method comes from
//! the path (`/package.Service/Method`), the parent from the request headers (which are the
//! metadata), and the outcome from `grpc-status`. The status of a successful call arrives in
//! the trailers after the last message, so the span ends when the response body ends: for
//! streaming calls the span covers the whole stream. A call whose body is dropped before the
//! trailers is marked cancelled.
//!
//! A server span gets its `rpc.method` when the response head arrives, not when the call starts:
//! only then is it known whether the server implements the method. A method it does not (tonic
//! answers those with a trailers-only `UNIMPLEMENTED` and no message) is recorded as `_OTHER`
//! with the original in `rpc.method_original`, and the span, which started under the name the
//! client sent, is renamed after `rpc.system.name` (`grpc`), as the conventions ask.
//! `docs/adr/303-grpc-server-method-at-the-end.md` explains why.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use lightstep_instrument::LightstepTracing;
//! use lightstep_instrument::grpc::{GrpcClientLayer, GrpcServerLayer};
//!
//! let tracing = LightstepTracing::global();
//! // Server: every call gets a SERVER span under the caller's context.
//! let server = tonic::transport::Server::builder().layer(GrpcServerLayer::new(tracing.clone()));
//! # drop(server);
//! // Client: every call gets a CLIENT span, propagated in the metadata.
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect().await?;
//! let channel = tower::ServiceBuilder::new()
//!     .layer(GrpcClientLayer::new(tracing).with_server_address("127.0.0.1", Some(50051)))
//!     .service(channel);
//! # drop(channel);
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http_body::{Body, Frame, SizeHint};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::Tracer;
use tower::{Layer, Service};

use crate::lightstep_tracing::LightstepTracing;
use crate::outcome::{GrpcCode, Report};
use crate::rpc::{RpcSpan, split_grpc_path};
use crate::span::{ActiveSpan, Role, poll_in_span};

/// The header and trailer that carries a gRPC call's status code.
const GRPC_STATUS: &str = "grpc-status";
/// The header and trailer that carries a gRPC call's status message (percent-encoded).
const GRPC_MESSAGE: &str = "grpc-message";

/// A tower [`Layer`] for a tonic server (`Server::builder().layer(..)`): a `SERVER` span for
/// every call, under the context the caller sent.
#[derive(Debug)]
pub struct GrpcServerLayer<T = BoxedTracer> {
    tracing: LightstepTracing<T>,
}

impl<T> GrpcServerLayer<T> {
    /// A layer that makes its spans with `tracing`.
    pub fn new(tracing: LightstepTracing<T>) -> Self {
        Self { tracing }
    }
}

impl<S, T> Layer<S> for GrpcServerLayer<T> {
    type Service = GrpcService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcService {
            inner,
            tracing: self.tracing.clone(),
            client: false,
            server: None,
        }
    }
}

/// A tower [`Layer`] for a tonic client's channel: a `CLIENT` span for every call, injected
/// into the request metadata.
///
/// A tonic `Channel` adds the server's address to each request below this layer, so tell the
/// layer where the channel goes with [`with_server_address`](Self::with_server_address) to
/// record `server.address` and `server.port`.
#[derive(Debug)]
pub struct GrpcClientLayer<T = BoxedTracer> {
    tracing: LightstepTracing<T>,
    server: Option<(Arc<str>, Option<u16>)>,
}

impl<T> GrpcClientLayer<T> {
    /// A layer that makes its spans with `tracing`.
    pub fn new(tracing: LightstepTracing<T>) -> Self {
        Self {
            tracing,
            server: None,
        }
    }

    /// `server.address` and `server.port` of the channel's server, for requests whose URI does
    /// not carry them.
    pub fn with_server_address(mut self, host: impl Into<String>, port: Option<u16>) -> Self {
        self.server = Some((Arc::from(host.into()), port));
        self
    }
}

impl<S, T> Layer<S> for GrpcClientLayer<T> {
    type Service = GrpcService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcService {
            inner,
            tracing: self.tracing.clone(),
            client: true,
            server: self.server.clone(),
        }
    }
}

/// The service [`GrpcServerLayer`] and [`GrpcClientLayer`] make.
#[derive(Debug)]
pub struct GrpcService<S, T = BoxedTracer> {
    inner: S,
    tracing: LightstepTracing<T>,
    client: bool,
    server: Option<(Arc<str>, Option<u16>)>,
}

impl<S, T, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcService<S, T>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: fmt::Display + 'static,
    ResBody: Body,
    ResBody::Error: fmt::Display + 'static,
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    type Response = http::Response<GrpcBody<ResBody>>;
    type Error = S::Error;
    type Future = GrpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let (service, method, recognized) = match split_grpc_path(path) {
            Some((service, method)) => (service, method, true),
            None => ("", path, false),
        };
        let span = if self.client {
            let mut builder = RpcSpan::new(
                &self.tracing,
                Role::RpcClient,
                Cow::Borrowed(service),
                Cow::Borrowed(method),
            );
            if let Some(host) = request.uri().host() {
                let port = request
                    .uri()
                    .port_u16()
                    .or(match request.uri().scheme_str() {
                        Some("https") => Some(443),
                        Some("http") => Some(80),
                        _ => None,
                    });
                builder = builder.with_server_address(host.to_owned(), port);
            } else if let Some((host, port)) = &self.server {
                builder = builder.with_server_address(host.to_string(), *port);
            }
            if !recognized {
                builder = builder.with_unrecognized_method();
            }
            let span = builder.start();
            span.inject_headers(request.headers_mut());
            span
        } else {
            let mut builder = RpcSpan::new(
                &self.tracing,
                Role::RpcServer,
                Cow::Borrowed(service),
                Cow::Borrowed(method),
            )
            .with_request_headers(request.headers());
            if let Some(host) = request.uri().host() {
                builder = builder.with_server_address(host.to_owned(), request.uri().port_u16());
            }
            if !recognized {
                builder = builder.with_unrecognized_method();
            }
            // `rpc.method` waits for the response: only routing knows whether the server
            // implements the method.
            builder.start_deferring_method()
        };
        let future = {
            let _attached = span.context().clone().attach();
            self.inner.call(request)
        };
        GrpcFuture {
            inner: future,
            span: Some(span),
        }
    }
}

// Manual `Clone`s: the tracer is shared behind an `Arc`, so none of these need `T: Clone`.
impl<T> Clone for GrpcServerLayer<T> {
    fn clone(&self) -> Self {
        Self {
            tracing: self.tracing.clone(),
        }
    }
}

impl<T> Clone for GrpcClientLayer<T> {
    fn clone(&self) -> Self {
        Self {
            tracing: self.tracing.clone(),
            server: self.server.clone(),
        }
    }
}

impl<S: Clone, T> Clone for GrpcService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            tracing: self.tracing.clone(),
            client: self.client,
            server: self.server.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`GrpcService`]: ends the span at a trailers-only response or an
    /// error, and otherwise hands it to the [`GrpcBody`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct GrpcFuture<F> {
        #[pin]
        inner: F,
        span: Option<ActiveSpan>,
    }
}

impl<F, ResBody, E> Future for GrpcFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: fmt::Display + 'static,
{
    type Output = Result<http::Response<GrpcBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let polled = match this.span.as_mut() {
            Some(span) => poll_in_span(span, || inner.poll(task)),
            None => inner.poll(task),
        };
        let Poll::Ready(result) = polled else {
            return Poll::Pending;
        };
        let mut span = this.span.take();
        Poll::Ready(match result {
            Err(error) => {
                if let Some(mut span) = span {
                    span.end_with(&crate::outcome::error_report(&error));
                }
                Err(error)
            }
            Ok(response) => {
                if let Some(span) = span.as_mut() {
                    span.resolve_method(!is_unknown_method(response.headers()));
                    record_protocol(span, response.version());
                }
                // A trailers-only response (every error tonic returns) has its status in the
                // headers: the call is over.
                if let Some(code) = status_of(response.headers())
                    && let Some(mut span) = span.take()
                {
                    let message = message_of(response.headers());
                    span.end_with(&Report::grpc(code, message.as_deref()));
                }
                Ok(response.map(|body| GrpcBody { inner: body, span }))
            }
        })
    }
}

fn record_protocol(span: &ActiveSpan, version: http::Version) {
    if let Some(version) = crate::http::protocol_version(version) {
        span.span().set_attribute(opentelemetry::KeyValue::new(
            opentelemetry_semantic_conventions::attribute::NETWORK_PROTOCOL_VERSION,
            version,
        ));
    }
}

/// Whether a response is what tonic answers for a method the server does not implement: its
/// router (no such service) and its generated servers (no such method in the service) both
/// reply at once with a trailers-only `UNIMPLEMENTED` and no message. A handler that returns
/// `UNIMPLEMENTED` itself is a known method; give the status a message so that it reads as one.
fn is_unknown_method(headers: &http::HeaderMap) -> bool {
    status_of(headers) == Some(GrpcCode::Unimplemented)
        && headers
            .get(GRPC_MESSAGE)
            .is_none_or(|message| message.is_empty())
}

fn status_of(headers: &http::HeaderMap) -> Option<GrpcCode> {
    headers
        .get(GRPC_STATUS)
        .and_then(|value| GrpcCode::from_header(value.as_bytes()))
}

fn message_of(headers: &http::HeaderMap) -> Option<String> {
    let raw = headers.get(GRPC_MESSAGE)?.to_str().ok()?;
    Some(crate::http::percent_decode(raw))
}

pin_project_lite::pin_project! {
    /// A response body that ends its call's span at the trailers (with their `grpc-status`),
    /// at an error, or when dropped (cancelled).
    #[derive(Debug)]
    pub struct GrpcBody<B> {
        #[pin]
        inner: B,
        span: Option<ActiveSpan>,
    }
}

impl<B> Body for GrpcBody<B>
where
    B: Body,
    B::Error: fmt::Display + 'static,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        task: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let inner = this.inner;
        let polled = match this.span.as_mut() {
            Some(span) => poll_in_span(span, || inner.poll_frame(task)),
            None => inner.poll_frame(task),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(mut span) = this.span.take()
                {
                    let code = status_of(trailers).unwrap_or(GrpcCode::Unknown);
                    let message = message_of(trailers);
                    span.end_with(&Report::grpc(code, message.as_deref()));
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(mut span) = this.span.take() {
                    span.end_with(&crate::outcome::error_report(error));
                }
            }
            Poll::Ready(None) => {
                // The stream ended without a status: gRPC treats that as an error.
                if let Some(mut span) = this.span.take() {
                    span.end_with(&Report::grpc(
                        GrpcCode::Unknown,
                        Some("stream ended without grpc-status"),
                    ));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A tonic interceptor that injects the current context into the outgoing metadata, for
/// clients that make their own spans (for example with
/// [`LightstepTracing::rpc_client`](crate::LightstepTracing::rpc_client)) and want no layer.
///
/// ```
/// let interceptor = lightstep_instrument::grpc::propagate_current_context;
/// let request = interceptor(tonic::Request::new(())).unwrap();
/// # drop(request);
/// ```
#[allow(clippy::result_large_err)] // the signature tonic's `Interceptor` asks for
pub fn propagate_current_context(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    crate::propagation::inject_metadata(&opentelemetry::Context::current(), request.metadata_mut());
    Ok(request)
}

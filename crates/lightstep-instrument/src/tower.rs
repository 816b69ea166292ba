//! Tower layers that trace every HTTP request a server handles or a client sends.
//!
//! [`HttpServerLayer`] works with anything built on tower and `http` (axum's `Router::layer`,
//! hyper through `hyper-util`'s `TowerToHyperService`, tonic's `Server::layer` for plain HTTP);
//! [`HttpClientLayer`] wraps any tower HTTP client (hyper-util's legacy client, a tonic
//! `Channel`). The span covers the service's future: from the request to the response head. A
//! streamed body that is still being written after that is not part of the span.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::Tracer;
use tower::{Layer, Service};

use crate::lightstep_tracing::LightstepTracing;
use crate::span::Traced;

/// Finds the matched route template of a request in its extensions.
type RouteFn = Arc<dyn Fn(&http::Extensions) -> Option<String> + Send + Sync>;

/// A tower [`Layer`] that gives every incoming HTTP request a `SERVER` span, with the parent
/// taken from its headers.
///
/// Name the route with [`with_route_from`](Self::with_route_from); without it the span is named
/// by the method alone (the raw path is high-cardinality and never used as a name). With axum:
///
/// ```
/// use axum::{Router, extract::MatchedPath, routing::get};
/// use lightstep_instrument::{LightstepTracing, tower::HttpServerLayer};
///
/// let layer = HttpServerLayer::new(LightstepTracing::global()).with_route_from(|extensions| {
///     extensions.get::<MatchedPath>().map(|path| path.as_str().to_owned())
/// });
/// let app: Router = Router::new().route("/users/{id}", get(|| async { "hi" })).layer(layer);
/// ```
pub struct HttpServerLayer<T = BoxedTracer> {
    tracing: LightstepTracing<T>,
    route: Option<RouteFn>,
}

impl<T> fmt::Debug for HttpServerLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServerLayer")
            .field("tracing", &self.tracing)
            .field("route", &self.route.as_ref().map(|_| "fn"))
            .finish()
    }
}

impl<T> HttpServerLayer<T> {
    /// A layer that makes its spans with `tracing`.
    pub fn new(tracing: LightstepTracing<T>) -> Self {
        Self {
            tracing,
            route: None,
        }
    }

    /// How to find the matched route template (`/users/{id}`) of a request, from its
    /// extensions, where routers put it.
    pub fn with_route_from<F>(mut self, route: F) -> Self
    where
        F: Fn(&http::Extensions) -> Option<String> + Send + Sync + 'static,
    {
        self.route = Some(Arc::new(route));
        self
    }
}

impl<S, T> Layer<S> for HttpServerLayer<T> {
    type Service = HttpServerService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpServerService {
            inner,
            tracing: self.tracing.clone(),
            route: self.route.clone(),
        }
    }
}

/// The service [`HttpServerLayer`] makes.
pub struct HttpServerService<S, T = BoxedTracer> {
    inner: S,
    tracing: LightstepTracing<T>,
    route: Option<RouteFn>,
}

impl<S: fmt::Debug, T> fmt::Debug for HttpServerService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServerService")
            .field("inner", &self.inner)
            .field("tracing", &self.tracing)
            .finish_non_exhaustive()
    }
}

impl<S, T, ReqBody, ResBody> Service<http::Request<ReqBody>> for HttpServerService<S, T>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: fmt::Display + 'static,
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Traced<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let mut builder = self
            .tracing
            .http_server(request.method().as_str())
            .with_request(&request);
        if let Some(route) = self.route.as_ref().and_then(|f| f(request.extensions())) {
            builder = builder.with_route(route);
        }
        let span = builder.start();
        // Work the inner service does in `call` itself nests too.
        let future = {
            let _attached = span.context().clone().attach();
            self.inner.call(request)
        };
        span.instrument(future)
    }
}

/// A tower [`Layer`] that gives every outgoing HTTP request a `CLIENT` span and injects its
/// context into the request headers.
#[derive(Debug)]
pub struct HttpClientLayer<T = BoxedTracer> {
    tracing: LightstepTracing<T>,
}

impl<T> HttpClientLayer<T> {
    /// A layer that makes its spans with `tracing`.
    pub fn new(tracing: LightstepTracing<T>) -> Self {
        Self { tracing }
    }
}

impl<S, T> Layer<S> for HttpClientLayer<T> {
    type Service = HttpClientService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpClientService {
            inner,
            tracing: self.tracing.clone(),
        }
    }
}

/// The service [`HttpClientLayer`] makes.
#[derive(Debug)]
pub struct HttpClientService<S, T = BoxedTracer> {
    inner: S,
    tracing: LightstepTracing<T>,
}

impl<S, T, ReqBody, ResBody> Service<http::Request<ReqBody>> for HttpClientService<S, T>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: fmt::Display + 'static,
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Traced<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let span = self
            .tracing
            .http_client(request.method().as_str())
            .with_request(&request)
            .start();
        span.inject_headers(request.headers_mut());
        let future = {
            let _attached = span.context().clone().attach();
            self.inner.call(request)
        };
        span.instrument(future)
    }
}

// Manual `Clone`s: the tracer is shared behind an `Arc`, so none of these need `T: Clone`
// (`BoxedTracer`, the global tracer, is not).
impl<T> Clone for HttpServerLayer<T> {
    fn clone(&self) -> Self {
        Self {
            tracing: self.tracing.clone(),
            route: self.route.clone(),
        }
    }
}

impl<S: Clone, T> Clone for HttpServerService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            tracing: self.tracing.clone(),
            route: self.route.clone(),
        }
    }
}

impl<T> Clone for HttpClientLayer<T> {
    fn clone(&self) -> Self {
        Self {
            tracing: self.tracing.clone(),
        }
    }
}

impl<S: Clone, T> Clone for HttpClientService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            tracing: self.tracing.clone(),
        }
    }
}

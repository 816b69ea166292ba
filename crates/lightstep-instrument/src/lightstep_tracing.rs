//! [`LightstepTracing`]: the entry point that owns the tracer and the settings every helper
//! shares (SQL sanitizing, known HTTP methods, sensitive query keys).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanKind, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};

use crate::db::DbSpan;
use crate::http::HttpSpan;
use crate::outcome::{Outcome, result_report};
use crate::rpc::RpcSpan;
use crate::span::{ActiveSpan, Role, Traced};

/// The instrumentation scope name the helpers' spans carry when this crate picks the tracer.
pub const SCOPE_NAME: &str = "lightstep-instrument";

/// Makes HTTP, RPC and database spans that follow the semantic conventions.
///
/// Holds a tracer (any [`Tracer`]; cheap to clone: the tracer is shared) and the settings that
/// apply to every span it makes. Build it with [`LightstepTracing::new`] from a tracer or
/// [`LightstepTracing::from_provider`] from a provider to control exactly where spans go, or
/// with [`LightstepTracing::global`] (also [`Default`]) to use the global tracer provider.
///
/// The global tracer is looked up once, when `global()` is called: build it after the
/// provider is installed (`opentelemetry::global::set_tracer_provider`), or spans go to the
/// no-op provider that was global before.
pub struct LightstepTracing<T = BoxedTracer> {
    tracer: Arc<T>,
    inner: Arc<Settings>,
}

#[derive(Debug, Clone)]
struct Settings {
    sanitize_sql: bool,
    skip_unsampled: bool,
    known_methods: Option<Vec<String>>,
    sensitive_query_keys: Option<Vec<String>>,
}

impl<T> Clone for LightstepTracing<T> {
    fn clone(&self) -> Self {
        Self {
            tracer: Arc::clone(&self.tracer),
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for LightstepTracing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LightstepTracing")
            .field("tracer", &std::any::type_name::<T>())
            .field("sanitize_sql", &self.inner.sanitize_sql)
            .field("skip_unsampled", &self.inner.skip_unsampled)
            .field("known_methods", &self.inner.known_methods)
            .field("sensitive_query_keys", &self.inner.sensitive_query_keys)
            .finish()
    }
}

impl LightstepTracing<BoxedTracer> {
    /// Uses a tracer from the global tracer provider, scoped `lightstep-instrument`.
    pub fn global() -> Self {
        Self::new(global::tracer_with_scope(scope()))
    }
}

impl Default for LightstepTracing<BoxedTracer> {
    /// Same as [`LightstepTracing::global`].
    fn default() -> Self {
        Self::global()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(opentelemetry_semantic_conventions::SCHEMA_URL)
        .build()
}

impl<T> LightstepTracing<T>
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    /// Makes spans with `tracer`.
    pub fn new(tracer: T) -> Self {
        Self {
            tracer: Arc::new(tracer),
            inner: Arc::new(Settings {
                sanitize_sql: true,
                skip_unsampled: true,
                known_methods: None,
                sensitive_query_keys: None,
            }),
        }
    }

    /// Makes spans with a tracer from `provider`, scoped `lightstep-instrument` with this
    /// crate's version and the conventions' schema URL.
    pub fn from_provider<P>(provider: &P) -> Self
    where
        P: TracerProvider<Tracer = T>,
    {
        Self::new(provider.tracer_with_scope(scope()))
    }

    /// Whether `db.query.text` has its literals replaced by `?` (on by default). Turn it off
    /// only when statements are known to hold no sensitive data, for example when every query
    /// is parameterized; a single database span can also opt out with
    /// [`DbSpan::with_sanitizing`].
    pub fn with_sql_sanitizing(self, sanitize: bool) -> Self {
        self.map_settings(|s| s.sanitize_sql = sanitize)
    }

    /// Whether a helper called under a parent span that is neither sampled nor recording makes
    /// no span at all (on by default). The parent's context then stays current (and is what
    /// a client injects), which is what a parent-based sampler (the SDK's default, and the
    /// usual choice) would decide anyway, at a fraction of the cost: no name, no attributes, no
    /// sampler call. Turn it off if your sampler may sample the child of an unsampled parent.
    pub fn with_unsampled_parent_shortcut(self, skip: bool) -> Self {
        self.map_settings(|s| s.skip_unsampled = skip)
    }

    /// Replaces the list of HTTP methods recorded as they are (by default the RFC 9110 methods,
    /// `PATCH` and `QUERY`); any other method is recorded as `_OTHER` with the original in
    /// `http.request.method_original`. Matching is case-sensitive, as the conventions ask.
    pub fn with_known_http_methods<I, S>(self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let methods = methods.into_iter().map(Into::into).collect();
        self.map_settings(|s| s.known_methods = Some(methods))
    }

    /// Replaces the list of query-string keys whose values `url.query` and `url.full` record as
    /// `REDACTED` (see [`crate::http::DEFAULT_SENSITIVE_QUERY_KEYS`]). Matching is
    /// case-sensitive, as the conventions ask.
    pub fn with_sensitive_query_keys<I, S>(self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let keys = keys.into_iter().map(Into::into).collect();
        self.map_settings(|s| s.sensitive_query_keys = Some(keys))
    }

    fn map_settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.inner));
        self
    }

    /// The tracer spans are made with.
    pub fn tracer(&self) -> &T {
        &self.tracer
    }

    /// Traces an incoming HTTP request handled by `future`: a `SERVER` span named
    /// `{method} {route}` under the current context. `route` is the route template
    /// (`"/users/{id}"`, usually a `&'static str`, which is not copied). For the full set of
    /// attributes and the parent from the request's headers, use
    /// [`http_server`](Self::http_server).
    ///
    /// The future's output decides the status through [`Outcome`]: an `http::StatusCode` or
    /// `http::Response`, `()`, or a `Result` of one of these: `Result<StatusCode, E>` is an
    /// outcome, `Result<u32, E>` is not. Implement [`Outcome`] for a type of your own to let it
    /// decide.
    pub fn trace_http<F>(
        &self,
        method: &str,
        route: impl Into<Cow<'static, str>>,
        future: F,
    ) -> Traced<F>
    where
        F: Future,
        F::Output: Outcome,
    {
        self.http_server(method).with_route(route).trace(future)
    }

    /// Traces an outgoing gRPC call made by `future`: a `CLIENT` span named `{service}/{method}`
    /// with `rpc.system.name = grpc`. `service` is the fully qualified service name
    /// (`package.Service`). For servers and more attributes, use
    /// [`rpc_client`](Self::rpc_client) and [`rpc_server`](Self::rpc_server).
    ///
    /// The future's output decides the status through [`Outcome`]: `()`, a gRPC code, a
    /// `tonic::Status` or `tonic::Response` (feature `tonic`), or a `Result` of one of these.
    pub fn trace_rpc<F>(&self, service: &str, method: &str, future: F) -> Traced<F>
    where
        F: Future,
        F::Output: Outcome,
    {
        // Borrowed, not copied: the builder does not outlive this call.
        RpcSpan::new(
            self,
            Role::RpcClient,
            Cow::Borrowed(service),
            Cow::Borrowed(method),
        )
        .trace(future)
    }

    /// Traces a database call made by `future`: a `CLIENT` span with `db.system.name = system`
    /// and `db.query.text` the sanitized `statement`, named `{operation} {table}` when the
    /// statement says. For namespace, collection and server attributes, use
    /// [`database`](Self::database).
    pub fn trace_database<F, R, E>(&self, system: &str, statement: &str, future: F) -> Traced<F>
    where
        F: Future<Output = Result<R, E>>,
        E: fmt::Display + 'static,
    {
        // Borrowed, not copied: the builder does not outlive this call.
        DbSpan::new(self, Cow::Borrowed(system), Cow::Borrowed(statement))
            .start()
            .instrument_with(future, result_report::<R, E>)
    }

    /// A builder for an incoming HTTP request's `SERVER` span.
    pub fn http_server(&self, method: &str) -> HttpSpan<'_, T> {
        HttpSpan::new(self, Role::HttpServer, method)
    }

    /// A builder for an outgoing HTTP request's `CLIENT` span.
    pub fn http_client(&self, method: &str) -> HttpSpan<'_, T> {
        HttpSpan::new(self, Role::HttpClient, method)
    }

    /// A builder for an outgoing RPC's `CLIENT` span.
    pub fn rpc_client(&self, service: &str, method: &str) -> RpcSpan<'_, T> {
        RpcSpan::new(
            self,
            Role::RpcClient,
            Cow::Owned(service.to_owned()),
            Cow::Owned(method.to_owned()),
        )
    }

    /// A builder for an incoming RPC's `SERVER` span.
    pub fn rpc_server(&self, service: &str, method: &str) -> RpcSpan<'_, T> {
        RpcSpan::new(
            self,
            Role::RpcServer,
            Cow::Owned(service.to_owned()),
            Cow::Owned(method.to_owned()),
        )
    }

    /// A builder for a database call's `CLIENT` span.
    pub fn database(&self, system: &str, statement: &str) -> DbSpan<'_, T> {
        DbSpan::new(
            self,
            Cow::Owned(system.to_owned()),
            Cow::Owned(statement.to_owned()),
        )
    }

    pub(crate) fn sanitize_sql(&self) -> bool {
        self.inner.sanitize_sql
    }

    pub(crate) fn known_methods(&self) -> Option<&[String]> {
        self.inner.known_methods.as_deref()
    }

    pub(crate) fn sensitive_query_keys(&self) -> Option<&[String]> {
        self.inner.sensitive_query_keys.as_deref()
    }

    /// The parent for a new span (`parent`, or the current context), or, when the shortcut
    /// applies (an unsampled, non-recording parent), the stand-in [`ActiveSpan`] to return
    /// instead of making a span.
    pub(crate) fn parent_or_skip(
        &self,
        parent: Option<Context>,
        role: Role,
    ) -> Result<Context, ActiveSpan> {
        let parent = parent.unwrap_or_else(Context::current);
        if self.inner.skip_unsampled {
            let span = parent.span();
            let context = span.span_context();
            if context.is_valid() && !context.is_sampled() && !span.is_recording() {
                return Err(ActiveSpan::stand_in(parent, role));
            }
        }
        Ok(parent)
    }

    /// Starts a span under `parent` and wraps it for the helpers.
    pub(crate) fn start_span(
        &self,
        role: Role,
        name: Cow<'static, str>,
        attributes: Vec<KeyValue>,
        parent: Context,
    ) -> ActiveSpan {
        let kind = match role {
            Role::HttpServer | Role::RpcServer => SpanKind::Server,
            Role::HttpClient | Role::RpcClient | Role::Database => SpanKind::Client,
        };
        // Fields set in place: the chained `with_*` calls move the builder (well over a
        // hundred bytes) each time and re-collect the attributes.
        let mut builder = SpanBuilder::from_name(name);
        builder.span_kind = Some(kind);
        builder.attributes = Some(attributes);
        let span = self.tracer.build_with_context(builder, &parent);
        if !span.is_recording() {
            // The sampler dropped it: nothing will ever be recorded on it, so only its identity
            // is kept (children need it, and clients propagate it as unsampled). This skips
            // boxing the span behind a lock in the context, the lock to ask whether it records,
            // and `end`, which reads the clock (7% of an unsampled root span's time) before
            // finding nothing to end. The SDK ends a span that is dropped without `end`.
            let cx = parent.with_remote_span_context(span.span_context().clone());
            return ActiveSpan::stand_in(cx, role);
        }
        ActiveSpan::new(parent.with_span(span), role)
    }
}

//! A started span, the future wrapper that keeps it current, and how it ends.
//!
//! Every helper ends up here: the span lives in an OpenTelemetry [`Context`] that is attached to
//! the thread for the duration of each poll (so spans created inside nest under it, and
//! `Context::current()` inside sees it), and it ends exactly once: when the future completes (the
//! [`Outcome`] decides the status), when it panics (error, then the panic continues), or when it
//! is dropped unfinished (marked cancelled).

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::trace::{SpanRef, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;

use crate::outcome::{GrpcCode, Outcome, Report};

/// The name of the span event that records an error, as the conventions define it.
const EXCEPTION_EVENT: &str = "exception";
/// `error.type` of a span whose future was dropped before it completed.
pub const CANCELLED: &str = "cancelled";
/// `error.type` of a span whose future panicked.
pub const PANIC: &str = "panic";
/// What the conventions record as `rpc.method` for a method the server does not know.
pub(crate) const OTHER_METHOD: &str = "_OTHER";

/// What a span stands for: decides which status codes are errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    HttpServer,
    HttpClient,
    RpcServer,
    RpcClient,
    Database,
}

/// A span that has started and not yet ended.
///
/// Obtained from a builder's `start()`. Use it to propagate the span to a peer
/// ([`inject_headers`](Self::inject_headers)), then hand it the future to run
/// ([`instrument`](Self::instrument)), or end it by hand with [`finish`](Self::finish). Dropping
/// it unfinished ends the span marked cancelled.
#[derive(Debug)]
#[must_use = "a span ends (as cancelled) as soon as its ActiveSpan is dropped"]
pub struct ActiveSpan {
    cx: Context,
    role: Role,
    done: bool,
    /// Boxed: only the gRPC server layer's spans have one, and every helper's future carries
    /// an `ActiveSpan`.
    method: Option<Box<DeferredMethod>>,
}

/// A server span's `rpc.method`, held back until the call's outcome says whether the server
/// knew the method: an attribute cannot be replaced once set, and `_OTHER` is only known once
/// routing has answered.
#[derive(Debug)]
struct DeferredMethod {
    /// The fully qualified method the client asked for (`package.Service/Method`).
    full: String,
    /// `rpc.system.name`: the span's name when the method turns out to be unknown.
    system: Cow<'static, str>,
}

impl ActiveSpan {
    pub(crate) fn new(cx: Context, role: Role) -> Self {
        Self {
            cx,
            role,
            done: false,
            method: None,
        }
    }

    /// Nothing to record: `cx` is the unsampled parent's context (no span was made) or holds
    /// only the identity of a span the sampler dropped; nothing is ever recorded on it or
    /// ended.
    pub(crate) fn stand_in(parent: Context, role: Role) -> Self {
        Self {
            cx: parent,
            role,
            done: true,
            method: None,
        }
    }

    /// Holds `rpc.method` back until [`resolve_method`](Self::resolve_method) (or the end of
    /// the span, which takes the method as recognized). Nothing is kept for a span that does
    /// not record.
    pub(crate) fn defer_method(&mut self, full: String, system: Cow<'static, str>) {
        if !self.done && self.is_recording() {
            self.method = Some(Box::new(DeferredMethod { full, system }));
        }
    }

    /// Records the held-back `rpc.method`: as it is when the server knew the method; as
    /// `_OTHER` with the original in `rpc.method_original`, and the span renamed after
    /// `rpc.system.name`, when it did not. Does nothing the second time.
    pub(crate) fn resolve_method(&mut self, recognized: bool) {
        let Some(method) = self.method.take() else {
            return;
        };
        let span = self.cx.span();
        if recognized {
            span.set_attribute(KeyValue::new(semconv::RPC_METHOD, method.full));
        } else {
            span.set_attribute(KeyValue::new(semconv::RPC_METHOD, OTHER_METHOD));
            span.set_attribute(KeyValue::new(semconv::RPC_METHOD_ORIGINAL, method.full));
            span.update_name(method.system);
        }
    }

    /// Whether the span records anything. The sampled flag answers without the span's lock
    /// for most spans.
    fn is_recording(&self) -> bool {
        let span = self.cx.span();
        span.span_context().is_sampled() || span.is_recording()
    }

    /// The context that holds the span: the parent for work done on its behalf elsewhere, for
    /// example `tokio::spawn(fut.with_context(span.context().clone()))`.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// The span itself, to add attributes or events.
    pub fn span(&self) -> SpanRef<'_> {
        self.cx.span()
    }

    /// Writes the span's context (and its baggage) into outgoing HTTP headers with the global
    /// propagator.
    pub fn inject_headers(&self, headers: &mut http::HeaderMap) {
        crate::propagation::inject_headers(&self.cx, headers);
    }

    /// Writes the span's context into outgoing gRPC metadata with the global propagator.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn inject_metadata(&self, metadata: &mut tonic::metadata::MetadataMap) {
        crate::propagation::inject_metadata(&self.cx, metadata);
    }

    /// Runs `future` with the span current; the span ends when the future completes, with the
    /// status its [`Outcome`] decides.
    pub fn instrument<F>(self, future: F) -> Traced<F>
    where
        F: Future,
        F::Output: Outcome,
    {
        self.instrument_with(future, <F::Output as Outcome>::report)
    }

    /// [`instrument`](Self::instrument) for a future whose output is not an [`Outcome`]: `report`
    /// says how it went.
    pub fn instrument_with<F: Future>(
        self,
        future: F,
        report: for<'a> fn(&'a F::Output) -> Report<'a>,
    ) -> Traced<F> {
        Traced {
            inner: future,
            span: self,
            report,
        }
    }

    /// Ends the span with the status `outcome` decides.
    pub fn finish<O: Outcome + ?Sized>(mut self, outcome: &O) {
        self.end_with(&outcome.report());
    }

    pub(crate) fn end_with(&mut self, report: &Report<'_>) {
        if self.done {
            return;
        }
        self.done = true;
        // A call that got this far without being told otherwise reached a handler.
        self.resolve_method(true);
        // Nothing to record on a span that is not recording: skip the work (and the
        // allocations).
        let recording = self.is_recording();
        let span = self.cx.span();
        if recording {
            record(&span, self.role, report);
        }
        span.end();
    }

    fn end_panicked(&mut self, payload: &(dyn Any + Send)) {
        if self.done {
            return;
        }
        self.done = true;
        self.resolve_method(true);
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic with a non-string payload");
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, PANIC));
        span.add_event(
            EXCEPTION_EVENT,
            vec![
                KeyValue::new(semconv::EXCEPTION_TYPE, PANIC),
                KeyValue::new(semconv::EXCEPTION_MESSAGE, message.to_owned()),
            ],
        );
        span.set_status(Status::error(format!("panicked: {message}")));
        span.end();
    }
}

impl Drop for ActiveSpan {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.resolve_method(true);
        let span = self.cx.span();
        if self.role == Role::RpcClient {
            // What gRPC itself reports to a client that gave up on a call.
            span.set_attribute(KeyValue::new(
                semconv::RPC_RESPONSE_STATUS_CODE,
                GrpcCode::Cancelled.as_str(),
            ));
        }
        span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, CANCELLED));
        span.set_status(Status::error("cancelled: dropped before completion"));
        span.end();
    }
}

/// Applies the conventions' status rules for `role` to `report`.
fn record(span: &SpanRef<'_>, role: Role, report: &Report<'_>) {
    if let Some(status) = report.http_status {
        span.set_attribute(KeyValue::new(
            semconv::HTTP_RESPONSE_STATUS_CODE,
            i64::from(status),
        ));
    }
    if let Some(code) = report.grpc_code {
        span.set_attribute(KeyValue::new(
            semconv::RPC_RESPONSE_STATUS_CODE,
            code.as_str(),
        ));
    }
    if let Some(failure) = report.failure {
        let message = failure.message.to_string();
        span.set_attribute(KeyValue::new(
            semconv::ERROR_TYPE,
            failure.error_type.to_owned(),
        ));
        span.add_event(
            EXCEPTION_EVENT,
            vec![
                KeyValue::new(semconv::EXCEPTION_TYPE, failure.error_type.to_owned()),
                KeyValue::new(semconv::EXCEPTION_MESSAGE, message.clone()),
            ],
        );
        span.set_status(Status::error(message));
        return;
    }
    if let Some(status) = report.http_status {
        let invalid = !(100..=599).contains(&status);
        let error = invalid
            || match role {
                Role::HttpServer => status >= 500,
                _ => status >= 400,
            };
        if error {
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, status.to_string()));
            // The status code says it all: the conventions leave the description empty.
            span.set_status(Status::error(""));
        }
        return;
    }
    if let Some(code) = report.grpc_code {
        let error = match role {
            Role::RpcServer | Role::HttpServer => code.is_server_error(),
            _ => code.is_client_error(),
        };
        if error {
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, code.as_str()));
            span.set_status(Status::error(report.message.unwrap_or("").to_owned()));
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with its span current and ends the span when it completes, panics or
    /// is dropped.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Traced<F: Future> {
        #[pin]
        inner: F,
        span: ActiveSpan,
        report: for<'a> fn(&'a F::Output) -> Report<'a>,
    }
}

impl<F: Future> Traced<F> {
    /// The context that holds the span.
    pub fn context(&self) -> &Context {
        &self.span.cx
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        let report = *this.report;
        let polled = poll_in_span(this.span, || inner.poll(task));
        if let Poll::Ready(output) = &polled {
            this.span.end_with(&report(output));
        }
        polled
    }
}

/// Runs `poll` with `span`'s context attached. A panic ends the span as an error and goes on.
pub(crate) fn poll_in_span<R>(span: &mut ActiveSpan, poll: impl FnOnce() -> R) -> R {
    let attached = span.cx.clone().attach();
    // The future is not touched again after a panic: the span ends and the panic goes on.
    let polled = catch_unwind(AssertUnwindSafe(poll));
    drop(attached);
    match polled {
        Ok(polled) => polled,
        Err(payload) => {
            span.end_panicked(&*payload);
            resume_unwind(payload)
        }
    }
}

//! RPC client and server spans (semantic conventions 1.42 RPC, release candidate).
//!
//! `rpc.method` is the fully qualified `{service}/{method}` (`package.Service/Method`) and names
//! the span; `rpc.system.name` defaults to `grpc`; the outcome is recorded as the string
//! `rpc.response.status_code` (`"OK"`, `"NOT_FOUND"`, ..). Client spans are errors for every code
//! but `OK`; server spans only for `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`,
//! `UNAVAILABLE` and `DATA_LOSS`.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;

use opentelemetry::trace::Tracer;
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;

use crate::lightstep_tracing::LightstepTracing;
use crate::outcome::Outcome;
use crate::span::{ActiveSpan, OTHER_METHOD, Role, Traced};

/// `rpc.system.name` of gRPC.
pub const GRPC: &str = "grpc";

/// Splits a gRPC request path `/package.Service/Method` into service and method.
///
/// ```
/// use lightstep_instrument::rpc::split_grpc_path;
///
/// assert_eq!(split_grpc_path("/grpc.health.v1.Health/Check"), Some(("grpc.health.v1.Health", "Check")));
/// assert_eq!(split_grpc_path("/nonsense"), None);
/// ```
pub fn split_grpc_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}

/// A builder for an RPC span. From [`LightstepTracing::rpc_client`] or
/// [`LightstepTracing::rpc_server`].
#[derive(Debug)]
#[must_use = "a span builder does nothing until `start` or `trace`"]
pub struct RpcSpan<'t, T> {
    tracing: &'t LightstepTracing<T>,
    role: Role,
    service: Cow<'t, str>,
    method: Cow<'t, str>,
    recognized: bool,
    system: Cow<'static, str>,
    attributes: Vec<KeyValue>,
    parent: Option<Context>,
}

impl<'t, T> RpcSpan<'t, T>
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    pub(crate) fn new(
        tracing: &'t LightstepTracing<T>,
        role: Role,
        service: Cow<'t, str>,
        method: Cow<'t, str>,
    ) -> Self {
        Self {
            tracing,
            role,
            service,
            method,
            recognized: true,
            system: Cow::Borrowed(GRPC),
            attributes: Vec::new(),
            parent: None,
        }
    }

    /// `rpc.system.name`, when not `grpc` (`connect_rpc`, `dubbo`, `jsonrpc`, ..).
    pub fn with_system(mut self, system: impl Into<Cow<'static, str>>) -> Self {
        self.system = system.into();
        self
    }

    /// Records the method as `_OTHER` (with the given one in `rpc.method_original`): for
    /// servers that received a call to a method they do not implement.
    pub fn with_unrecognized_method(mut self) -> Self {
        self.recognized = false;
        self
    }

    /// `server.address` and `server.port`: the server called (clients) or the name it was
    /// addressed as (servers).
    pub fn with_server_address(mut self, host: impl Into<String>, port: Option<u16>) -> Self {
        self.attributes
            .push(KeyValue::new(semconv::SERVER_ADDRESS, host.into()));
        if let Some(port) = port {
            self.attributes
                .push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
        }
        self
    }

    /// `network.peer.address` and `network.peer.port`: the other end of the connection.
    pub fn with_peer_address(mut self, peer: SocketAddr) -> Self {
        self.attributes.push(KeyValue::new(
            semconv::NETWORK_PEER_ADDRESS,
            peer.ip().to_string(),
        ));
        self.attributes.push(KeyValue::new(
            semconv::NETWORK_PEER_PORT,
            i64::from(peer.port()),
        ));
        self
    }

    /// Any other attribute.
    pub fn with_attribute(mut self, attribute: KeyValue) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// The parent context (default: the current one).
    pub fn with_parent(mut self, parent: Context) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Server: the parent from the incoming request's headers (gRPC metadata travels as HTTP/2
    /// headers), with the global propagator.
    pub fn with_request_headers(mut self, headers: &http::HeaderMap) -> Self {
        self.parent = Some(crate::propagation::extract_headers_onto(
            &opentelemetry::Context::new(),
            headers,
        ));
        self
    }

    /// Server: the parent from the incoming request's metadata, with the global propagator.
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    pub fn with_request_metadata(mut self, metadata: &tonic::metadata::MetadataMap) -> Self {
        self.parent = Some(crate::propagation::extract_metadata_onto(
            &opentelemetry::Context::new(),
            metadata,
        ));
        self
    }

    /// Starts the span.
    pub fn start(self) -> ActiveSpan {
        self.start_with(false)
    }

    /// Starts a server span whose `rpc.method` waits for the call's outcome
    /// ([`ActiveSpan::resolve_method`]): the gRPC server layer cannot tell a method the server
    /// implements from one it does not until routing has answered. The span is named after the
    /// method the client asked for, which is also what the sampler sees; an unknown one renames
    /// it. A method already known to be unrecognized is recorded at once.
    #[cfg(any(feature = "tonic", test))]
    pub(crate) fn start_deferring_method(self) -> ActiveSpan {
        let defer = self.recognized;
        self.start_with(defer)
    }

    fn start_with(self, defer_method: bool) -> ActiveSpan {
        let parent = match self.tracing.parent_or_skip(self.parent, self.role) {
            Ok(parent) => parent,
            Err(stand_in) => return stand_in,
        };
        let full = if self.service.is_empty() {
            self.method.into_owned()
        } else {
            let mut full = String::with_capacity(self.service.len() + 1 + self.method.len());
            full.push_str(&self.service);
            full.push('/');
            full.push_str(&self.method);
            full
        };
        let mut attributes = Vec::with_capacity(self.attributes.len() + 3);
        attributes.push(KeyValue::new(semconv::RPC_SYSTEM_NAME, self.system.clone()));
        if defer_method {
            attributes.extend(self.attributes);
            let mut span =
                self.tracing
                    .start_span(self.role, Cow::Owned(full.clone()), attributes, parent);
            span.defer_method(full, self.system);
            return span;
        }
        let name = if self.recognized {
            attributes.push(KeyValue::new(semconv::RPC_METHOD, full.clone()));
            Cow::Owned(full)
        } else {
            attributes.push(KeyValue::new(semconv::RPC_METHOD, OTHER_METHOD));
            attributes.push(KeyValue::new(semconv::RPC_METHOD_ORIGINAL, full));
            self.system
        };
        attributes.extend(self.attributes);
        self.tracing.start_span(self.role, name, attributes, parent)
    }

    /// Starts the span and runs `future` in it; the status comes from the future's
    /// [`Outcome`] by the gRPC split rules.
    pub fn trace<F>(self, future: F) -> Traced<F>
    where
        F: Future,
        F::Output: Outcome,
    {
        self.start().instrument(future)
    }
}

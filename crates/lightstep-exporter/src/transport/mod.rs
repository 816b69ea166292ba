//! The transport core: one export path for both protocols, on a small Tokio runtime owned by
//! the pipeline. The export thread encodes a batch into a pooled buffer and hands it to the
//! runtime; there [`crate::retry::run`] drives the attempts, each sent by the wire of the
//! configured protocol: tonic for gRPC (`grpc`), hyper-util's client for OTLP/HTTP (`http`).
//! Both connect through the same [`Connector`] with the same TLS client configuration
//! ([`tls`]), built once from the bytes the configuration read.
//!
//! What is sent is exactly the configuration's (headers, compression, endpoint): nothing here
//! reads the environment. Both wires read the backend's answer themselves, so that a partial
//! success (`rejected_spans`) reaches the counters instead of a log line.

mod connect;
mod grpc;
mod http;
pub(crate) mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Receiver;
use lightstep_config::{LightstepConfig, Protocol};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::trace::SpanData;

use crate::encode::json::JsonEncoder;
use crate::encode::proto::ProtoEncoder;
use crate::error::ExporterError;
use crate::processor::{Delivered, ExportResult, Failure, Transport};
use crate::retry::{self, LastAttempt};

pub(crate) use connect::{Connector, Proxy, tunnel};
pub(crate) use grpc::{GrpcWire, Prepared as GrpcPrepared};
pub(crate) use http::HttpWire;

pub use lightstep_config::ACCESS_TOKEN_HEADER;

/// Sent as `user-agent` on both transports.
const USER_AGENT: &str = concat!("lightstep-rs/", env!("CARGO_PKG_VERSION"));

/// Longest backend message kept (in characters).
const MAX_MESSAGE_CHARS: usize = 300;

/// The most runtime workers: one per export in flight, up to this.
const MAX_WORKERS: usize = 4;

/// Every header to send: the extra headers, then the token (marked sensitive).
pub(crate) fn header_list(config: &LightstepConfig) -> Vec<(String, String, bool)> {
    let mut headers: Vec<(String, String, bool)> = config
        .headers()
        .iter()
        .map(|h| (h.name.clone(), h.value.expose_secret().to_owned(), true))
        .collect();
    if let Some(token) = config.access_token() {
        headers.push((
            ACCESS_TOKEN_HEADER.into(),
            token.expose_secret().to_owned(),
            true,
        ));
    }
    headers
}

/// The proxy the configured endpoint is reached through: the configuration's, unless the
/// endpoint is loopback (a proxy elsewhere could not reach this host's loopback; Go's and
/// Java's HTTP clients skip it too) or `NO_PROXY` names it (curl's rules: names with their
/// subdomains, IP addresses, networks, `*`).
pub(crate) fn proxy_route(config: &LightstepConfig) -> Result<Option<Proxy>, ExporterError> {
    use hyper_util::client::proxy::matcher::Matcher;
    let Some(proxy) = config.proxy() else {
        return Ok(None);
    };
    let endpoint = config.traces_endpoint();
    if endpoint.is_loopback() {
        return Ok(None);
    }
    let target: ::http::Uri = format!(
        "{}://{}:{}/",
        endpoint.url().scheme(),
        endpoint.host(),
        endpoint.port()
    )
    .parse()
    .map_err(|e| ExporterError::Build(format!("invalid endpoint: {e}")))?;
    let url = proxy.url().expose_secret();
    let Some(intercept) = Matcher::builder()
        .all(url.to_owned())
        .build()
        .intercept(&target)
    else {
        return Err(ExporterError::Build(format!(
            "the proxy `{}` is not a usable HTTP proxy URL",
            proxy.redacted_url()
        )));
    };
    let matcher = Matcher::builder()
        .all(url.to_owned())
        .no(proxy.no_proxy().unwrap_or_default().to_owned())
        .build();
    if matcher.intercept(&target).is_none() {
        return Ok(None);
    }
    Ok(Some(Proxy::new(
        intercept.uri().clone(),
        intercept.basic_auth().cloned(),
    )))
}

/// The connector to the configured endpoint (through its proxy, if any), with the pipeline's
/// TLS configuration offering `alpn` when the endpoint wants TLS. `tls` is built when `None` is
/// given.
pub(crate) fn connector(
    config: &LightstepConfig,
    tls: Option<rustls::ClientConfig>,
    alpn: &[&[u8]],
) -> Result<Connector, ExporterError> {
    let endpoint = config.traces_endpoint();
    let tls = if endpoint.is_tls() {
        let tls = match tls {
            Some(tls) => tls,
            None => tls::client_config(config)?,
        };
        Some(tls::with_alpn(tls, alpn))
    } else {
        None
    };
    Connector::new(
        endpoint.host(),
        endpoint.port(),
        tls,
        proxy_route(config)?,
        config.timeout(),
    )
    .map_err(ExporterError::Build)
}

/// Cleans text that came from the backend or the network before it reaches a log or an error:
/// any configured header value (the token among them) is replaced, control characters become
/// spaces, and the length is capped. A backend may echo what it was sent.
#[derive(Clone)]
pub(crate) struct Redactor {
    secrets: Arc<[String]>,
}

impl Redactor {
    pub(crate) fn new(config: &LightstepConfig) -> Self {
        let secrets: Vec<String> = header_list(config)
            .into_iter()
            // Very short values would blank out ordinary words; they are not secrets anyway.
            .filter(|(_, value, _)| value.len() >= 4)
            .map(|(_, value, _)| value)
            .collect();
        Self {
            secrets: secrets.into(),
        }
    }

    pub(crate) fn clean(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[REDACTED]");
            }
        }
        let mut out: String = text
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .map(|c| {
                if lightstep_wire::text::acts_on_a_terminal(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        if text.chars().count() > MAX_MESSAGE_CHARS {
            out.push('…');
        }
        out
    }
}

/// An error and its causes, `: `-separated, each cause left out when the text so far already
/// says it (tonic and hyper repeat their sources in their own messages).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    lightstep_config::ErrorChain(error).to_string()
}

/// What the backend's answer says about the spans sent.
fn delivered(response: &ExportTraceServiceResponse, redactor: &Redactor) -> Delivered {
    match &response.partial_success {
        Some(partial) => Delivered {
            rejected: u64::try_from(partial.rejected_spans).unwrap_or(0),
            message: (!partial.error_message.is_empty())
                .then(|| redactor.clean(&partial.error_message)),
        },
        None => Delivered::default(),
    }
}

/// Request buffers handed back after their export, so that a steady stream of batches does not
/// allocate (and fault in) a fresh megabyte per request. One pool per pipeline, for the
/// encoded requests and their compressed form alike.
#[derive(Clone, Default)]
pub(crate) struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl BufferPool {
    /// Buffers kept at most, and the largest capacity kept.
    const KEEP: usize = 8;
    const MAX_CAPACITY: usize = 16 << 20;

    pub(crate) fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    /// Takes `payload`'s buffer back, when nothing else holds it.
    pub(crate) fn give(&self, payload: Bytes) {
        let Ok(unique) = payload.try_into_mut() else {
            return;
        };
        let mut buffer: Vec<u8> = unique.into();
        if buffer.capacity() > Self::MAX_CAPACITY {
            return;
        }
        buffer.clear();
        if let Ok(mut free) = self.free.lock()
            && free.len() < Self::KEEP
        {
            free.push(buffer);
        }
    }
}

/// How a batch becomes bytes: OTLP protobuf (gRPC, `http/protobuf`) or OTLP/JSON.
enum Encoding {
    Protobuf(ProtoEncoder),
    Json(JsonEncoder),
}

/// How the bytes travel (shared by the exports in flight).
#[derive(Clone)]
enum Wire {
    Grpc(Arc<GrpcWire>),
    Http(Arc<HttpWire>),
}

/// A wire before the runtime exists.
enum Prepared {
    Grpc(Box<GrpcPrepared>),
    Http(Arc<HttpWire>),
}

/// The exporter's transport, whichever the protocol. Encoding happens on the export thread
/// (`start`); everything after it, compression included, on the pipeline's runtime: one
/// worker per export in flight (at most four), so that one compressing batch does not hold
/// up another's I/O. The application's runtime is never used, so neither its flavour nor a
/// blocked application thread can stall an export.
pub(crate) struct OtlpTransport {
    runtime: tokio::runtime::Runtime,
    wire: Wire,
    encoding: Encoding,
    pool: BufferPool,
    request_timeout: Duration,
    export_timeout: Duration,
    last_attempt: LastAttempt,
}

impl OtlpTransport {
    pub(crate) fn new(
        config: &LightstepConfig,
        resource: &opentelemetry_sdk::Resource,
        export_timeout: Duration,
        max_concurrent_exports: usize,
    ) -> Result<Self, ExporterError> {
        let redactor = Redactor::new(config);
        // Everything fallible first: a runtime dropped on an error path inside the caller's
        // async context would panic. tonic's channel is made last, inside the runtime, where
        // it spawns its connection worker.
        let prepared = match config.protocol() {
            Protocol::Grpc => Prepared::Grpc(Box::new(GrpcPrepared::new(config, None, redactor)?)),
            _ => Prepared::Http(Arc::new(HttpWire::new(
                config,
                None,
                redactor,
                max_concurrent_exports,
            )?)),
        };
        let runtime = export_runtime(max_concurrent_exports)?;
        let wire = match prepared {
            Prepared::Http(http) => Wire::Http(http),
            Prepared::Grpc(grpc) => {
                let _entered = runtime.enter();
                Wire::Grpc(Arc::new(grpc.connect_lazy(max_concurrent_exports)))
            }
        };
        let encoding = if config.protocol() == Protocol::HttpJson {
            Encoding::Json(JsonEncoder::new(resource))
        } else {
            Encoding::Protobuf(ProtoEncoder::new(resource))
        };
        Ok(Self {
            runtime,
            wire,
            encoding,
            pool: BufferPool::default(),
            request_timeout: config.timeout(),
            export_timeout,
            last_attempt: LastAttempt::default(),
        })
    }
}

/// The pipeline's runtime: `max_concurrent_exports` workers (one to four), and at most one
/// thread for blocking work (host name lookups while connecting). Every thread runs with
/// telemetry suppressed.
fn export_runtime(max_concurrent_exports: usize) -> Result<tokio::runtime::Runtime, ExporterError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(max_concurrent_exports.clamp(1, MAX_WORKERS))
        .max_blocking_threads(1)
        .thread_name("lightstep-export-io")
        .on_thread_start(enter_suppressed_scope)
        .on_thread_stop(leave_suppressed_scope)
        .enable_all()
        .build()
        .map_err(ExporterError::Runtime)
}

thread_local! {
    /// The suppressed context of a thread of the runtime, from its start to its stop.
    static SUPPRESSED: std::cell::RefCell<Option<opentelemetry::ContextGuard>> =
        const { std::cell::RefCell::new(None) };
}

/// Every thread of the runtime (workers and blocking pool) runs with telemetry suppressed: the
/// spans and events tonic, tower, hyper and h2 make while exporting are the pipeline's own
/// work, and exporting them would feed every export into the next. Tasks carry no context of
/// their own here, so the thread's is the one they see.
fn enter_suppressed_scope() {
    SUPPRESSED.with(|s| {
        *s.borrow_mut() = Some(opentelemetry::Context::enter_telemetry_suppressed_scope())
    });
}

/// Detaches the suppressed context before the thread's locals are torn down.
fn leave_suppressed_scope() {
    SUPPRESSED.with(|s| drop(s.borrow_mut().take()));
}

impl Wire {
    /// One export of `payload` with its retries, within `export_timeout`.
    async fn export(
        &self,
        payload: &Bytes,
        pool: &BufferPool,
        request_timeout: Duration,
        export_timeout: Duration,
        last_attempt: &LastAttempt,
    ) -> ExportResult {
        match self {
            Self::Grpc(grpc) => {
                retry::run(
                    "gRPC",
                    export_timeout,
                    request_timeout,
                    last_attempt,
                    |timeout| grpc.attempt(payload.clone(), timeout),
                )
                .await
            }
            Self::Http(http) => {
                let compressed = http
                    .compress(payload, pool)
                    .map_err(|e| Failure::permanent(format!("cannot compress the request: {e}")))?;
                let body = compressed.as_ref().unwrap_or(payload);
                let result = retry::run(
                    "HTTP",
                    export_timeout,
                    request_timeout,
                    last_attempt,
                    |_| http.attempt(body.clone()),
                )
                .await;
                if let Some(compressed) = compressed {
                    pool.give(compressed);
                }
                result
            }
        }
    }
}

impl Transport for OtlpTransport {
    fn start(&mut self, batch: &[SpanData]) -> Receiver<ExportResult> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut buffer = self.pool.take();
        match &self.encoding {
            Encoding::Protobuf(encoder) => encoder.encode(batch, &mut buffer),
            Encoding::Json(encoder) => encoder.encode(batch, &mut buffer),
        }
        let payload = Bytes::from(buffer);
        let wire = self.wire.clone();
        let pool = self.pool.clone();
        let last_attempt = self.last_attempt.clone();
        let (request_timeout, export_timeout) = (self.request_timeout, self.export_timeout);
        self.runtime.spawn(async move {
            let export = wire.export(
                &payload,
                &pool,
                request_timeout,
                export_timeout,
                &last_attempt,
            );
            // A backstop: the attempts already end with the budget.
            let result = match tokio::time::timeout(export_timeout, export).await {
                Ok(result) => result,
                Err(_) => Err(Failure::transient(format!(
                    "the export did not finish within {}ms",
                    export_timeout.as_millis()
                ))),
            };
            pool.give(payload);
            let _ = tx.send(result);
        });
        rx
    }

    fn last_attempt_error(&self) -> Option<String> {
        self.last_attempt.get()
    }

    fn close(self: Box<Self>) {
        let Self { runtime, wire, .. } = *self;
        drop(wire);
        runtime.shutdown_timeout(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    pub(super) fn redactor() -> Redactor {
        Redactor {
            secrets: vec!["s3cr3t-token".to_owned()].into(),
        }
    }

    #[test]
    fn backend_text_loses_controls_and_bidi_overrides() {
        let cleaned = redactor().clean("a\u{1b}[2J\u{9b}b\u{202e}txt.exe\u{2066}c s3cr3t-token");
        assert_eq!(cleaned, "a [2J b txt.exe c [REDACTED]");
    }

    #[test]
    fn partial_success_from_protobuf() {
        let answer = |rejected_spans: i64, message: &str| ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans,
                error_message: message.into(),
            }),
        };
        let r = redactor();
        assert_eq!(
            delivered(&answer(2, "full: s3cr3t-token"), &r),
            Delivered {
                rejected: 2,
                message: Some("full: [REDACTED]".into())
            }
        );
        // A negative count is nonsense from the backend: nothing rejected.
        assert_eq!(delivered(&answer(-5, ""), &r), Delivered::default());
        assert_eq!(
            delivered(&ExportTraceServiceResponse::default(), &r),
            Delivered::default()
        );
    }

    #[test]
    fn backend_text_is_cleaned() {
        let r = redactor();
        let cleaned = r.clean(&format!("a\nb\u{0}s3cr3t-token{}", "x".repeat(1000)));
        assert!(cleaned.starts_with("a b [REDACTED]xxx"), "{cleaned}");
        assert_eq!(cleaned.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(!cleaned.contains("s3cr3t"));
    }
}

//! The bounded in-memory store of received spans, and the types it hands out.
//!
//! The store is the one place that holds data a client sent, so it is the one place that must
//! stay bounded: it holds at most `max_spans` spans and a fixed number of request records. What
//! happens when it is full is a policy ([`WhenFull`]), and every span refused or evicted is
//! counted in [`ReceiverStats`], so a test can tell "never sent" from "sent but not kept".

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// How many request records [`SpanStore::requests`] keeps (the newest ones).
pub const MAX_REQUEST_RECORDS: usize = 256;

/// Header names whose values are secrets: [`RequestInfo`]'s `Debug` prints them redacted.
const SENSITIVE_HEADERS: &[&str] = &["lightstep-access-token", "authorization", "x-api-key"];

/// What the store does with new spans once it holds `max_spans`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenFull {
    /// Keep what is stored and refuse the new spans. The client is told through OTLP partial
    /// success (`rejected_spans` and an error message) and
    /// [`ReceiverStats::spans_rejected_full`] counts them. This is the default because nothing
    /// is lost silently: the sender knows.
    #[default]
    RejectNew,
    /// Drop the oldest stored spans to make room. The client is told nothing (its spans were
    /// accepted); [`ReceiverStats::spans_evicted`] counts the dropped ones. Suits a long-running
    /// development receiver that only cares about recent traces.
    EvictOldest,
}

/// The wire protocol a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC (`TraceService/Export`).
    Grpc,
    /// OTLP/HTTP with a binary protobuf body (`application/x-protobuf`).
    HttpProtobuf,
    /// OTLP/HTTP with an OTLP/JSON body (`application/json`).
    HttpJson,
}

/// A 16-byte trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for TraceId {
    /// Lowercase hex, as W3C Trace Context and OTLP/JSON write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    /// Lowercase hex, as W3C Trace Context and OTLP/JSON write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// Where a request came from and what it carried besides spans.
///
/// Every span from one request shares one `RequestInfo`. Its `Debug` output redacts the values
/// of `lightstep-access-token`, `authorization` and `x-api-key`; read them with
/// [`header`](Self::header) when a test needs to check them.
#[derive(Clone)]
#[non_exhaustive]
pub struct RequestInfo {
    /// The protocol and encoding of the request.
    pub protocol: Protocol,
    /// The request's headers (HTTP) or metadata (gRPC). Header names are lowercase.
    pub headers: http::HeaderMap,
    /// The client's address, when known.
    pub peer_addr: Option<SocketAddr>,
    /// Whether the connection was TLS.
    pub tls: bool,
    /// When the request arrived (wall clock).
    pub received_at: SystemTime,
    /// When the request arrived (monotonic, for idle detection).
    pub(crate) received_instant: Instant,
}

impl RequestInfo {
    pub(crate) fn new(
        protocol: Protocol,
        headers: http::HeaderMap,
        peer_addr: Option<SocketAddr>,
        tls: bool,
    ) -> Self {
        Self {
            protocol,
            headers,
            peer_addr,
            tls,
            received_at: SystemTime::now(),
            received_instant: Instant::now(),
        }
    }

    /// The value of header `name` (case-insensitive), if present and valid UTF-8. With several
    /// values, the first.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `lightstep-access-token` header, if present.
    pub fn access_token(&self) -> Option<&str> {
        self.header(crate::ACCESS_TOKEN_HEADER)
    }
}

impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a http::HeaderMap);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (name, value) in self.0 {
                    if SENSITIVE_HEADERS.contains(&name.as_str()) || value.is_sensitive() {
                        map.entry(&name.as_str(), &"[REDACTED]");
                    } else {
                        map.entry(&name.as_str(), value);
                    }
                }
                map.finish()
            }
        }
        f.debug_struct("RequestInfo")
            .field("protocol", &self.protocol)
            .field("headers", &Headers(&self.headers))
            .field("peer_addr", &self.peer_addr)
            .field("tls", &self.tls)
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// The resource and instrumentation scope a span was sent under.
#[derive(Debug, PartialEq)]
struct Origin {
    /// Shared by every scope of one `ResourceSpans`: a large resource with many scopes must not
    /// be copied once per scope (a small request could otherwise hold many times its size).
    resource: Arc<Resource>,
    resource_schema_url: String,
    scope: InstrumentationScope,
    scope_schema_url: String,
}

/// One stored span with the resource, scope and request it arrived with.
///
/// Cloning is cheap apart from the span itself: the resource, scope and request are shared.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    span: Span,
    origin: Arc<Origin>,
    request: Arc<RequestInfo>,
}

impl ReceivedSpan {
    /// The span exactly as it was decoded.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The span's name.
    pub fn name(&self) -> &str {
        &self.span.name
    }

    /// The span's trace id. The store only keeps spans whose ids are valid.
    pub fn trace_id(&self) -> TraceId {
        TraceId(self.span.trace_id.as_slice().try_into().unwrap_or_default())
    }

    /// The span's id.
    pub fn span_id(&self) -> SpanId {
        SpanId(self.span.span_id.as_slice().try_into().unwrap_or_default())
    }

    /// The parent span's id, or `None` for a root span.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        <[u8; 8]>::try_from(self.span.parent_span_id.as_slice())
            .ok()
            .filter(|id| *id != [0; 8])
            .map(SpanId)
    }

    /// The span attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&any_value::Value> {
        find_attribute(&self.span.attributes, key)
    }

    /// The span attribute `key` as a string, if it is one.
    pub fn str_attribute(&self, key: &str) -> Option<&str> {
        match self.attribute(key) {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// The resource the span was sent under (empty if the client sent none).
    pub fn resource(&self) -> &Resource {
        &self.origin.resource
    }

    /// The resource attribute `key`, if present.
    pub fn resource_attribute(&self, key: &str) -> Option<&any_value::Value> {
        find_attribute(&self.origin.resource.attributes, key)
    }

    /// The resource's `service.name`, if it is a string.
    pub fn service_name(&self) -> Option<&str> {
        match self.resource_attribute("service.name") {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// The instrumentation scope the span was sent under (empty if the client sent none).
    pub fn scope(&self) -> &InstrumentationScope {
        &self.origin.scope
    }

    /// The request the span arrived in: protocol, headers, peer address.
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }
}

fn find_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

/// The spans of one trace, in the order they arrived.
#[derive(Clone, Debug)]
pub struct Trace {
    trace_id: TraceId,
    spans: Vec<ReceivedSpan>,
}

impl Trace {
    /// The trace's id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The trace's spans, in arrival order.
    pub fn spans(&self) -> &[ReceivedSpan] {
        &self.spans
    }

    /// Consumes the trace, returning its spans in arrival order.
    pub fn into_spans(self) -> Vec<ReceivedSpan> {
        self.spans
    }

    /// The spans without a parent span id (a complete trace has exactly one).
    pub fn roots(&self) -> impl Iterator<Item = &ReceivedSpan> {
        self.spans.iter().filter(|s| s.parent_span_id().is_none())
    }

    /// The trace as one OTLP request: spans regrouped under their resource and scope, ready to
    /// re-send or to write as OTLP/JSON (`serde_json::to_string(&trace.to_otlp())` gives the
    /// `{"resourceSpans":[...]}` form).
    pub fn to_otlp(&self) -> ExportTraceServiceRequest {
        let mut out: Vec<ResourceSpans> = Vec::new();
        for s in &self.spans {
            let o = &s.origin;
            let rs_index = match out.iter().position(|rs| {
                rs.resource.as_ref() == Some(&*o.resource) && rs.schema_url == o.resource_schema_url
            }) {
                Some(i) => i,
                None => {
                    out.push(ResourceSpans {
                        resource: Some((*o.resource).clone()),
                        scope_spans: Vec::new(),
                        schema_url: o.resource_schema_url.clone(),
                    });
                    out.len() - 1
                }
            };
            let rs = &mut out[rs_index];
            let ss_index = match rs.scope_spans.iter().position(|ss| {
                ss.scope.as_ref() == Some(&o.scope) && ss.schema_url == o.scope_schema_url
            }) {
                Some(i) => i,
                None => {
                    rs.scope_spans.push(ScopeSpans {
                        scope: Some(o.scope.clone()),
                        spans: Vec::new(),
                        schema_url: o.scope_schema_url.clone(),
                    });
                    rs.scope_spans.len() - 1
                }
            };
            rs.scope_spans[ss_index].spans.push(s.span.clone());
        }
        ExportTraceServiceRequest {
            resource_spans: out,
        }
    }

    /// The trace as one OTLP/JSON object, `{"resourceSpans":[...]}`, on one line: the form
    /// OTLP JSON-lines files (and `lightstep dev --out`) use.
    pub fn to_otlp_json(&self) -> String {
        // Serializing prost structs to a string has no failure mode: no maps with non-string
        // keys, no I/O.
        serde_json::to_string(&self.to_otlp()).unwrap_or_default()
    }

    /// The trace as OTLP protobuf bytes. `ExportTraceServiceRequest` and `TracesData` share
    /// their encoding, so these bytes are also an OTLP protobuf trace file.
    pub fn to_otlp_protobuf(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.to_otlp())
    }
}

/// Counters of everything the receiver did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// Export requests that reached a handler (every outcome).
    pub requests: u64,
    /// Spans accepted into the store.
    pub spans_accepted: u64,
    /// Spans refused because their trace or span id was invalid (reported as partial success).
    pub spans_rejected_invalid: u64,
    /// Spans refused because the store was full under [`WhenFull::RejectNew`] (reported as
    /// partial success).
    pub spans_rejected_full: u64,
    /// Stored spans dropped to make room under [`WhenFull::EvictOldest`].
    pub spans_evicted: u64,
    /// Requests refused for a missing or wrong access token.
    pub requests_unauthenticated: u64,
    /// Requests refused because they exceeded the size limit.
    pub requests_too_large: u64,
    /// Requests refused because the body could not be decoded (or had an unsupported
    /// content type or encoding).
    pub requests_malformed: u64,
    /// Requests answered with a simulated failure ([`Faults`](crate::Faults)).
    pub requests_failed_by_fault: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) spans_accepted: AtomicU64,
    pub(crate) spans_rejected_invalid: AtomicU64,
    pub(crate) spans_rejected_full: AtomicU64,
    pub(crate) spans_evicted: AtomicU64,
    pub(crate) requests_unauthenticated: AtomicU64,
    pub(crate) requests_too_large: AtomicU64,
    pub(crate) requests_malformed: AtomicU64,
    pub(crate) requests_failed_by_fault: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ReceiverStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReceiverStats {
            requests: get(&self.requests),
            spans_accepted: get(&self.spans_accepted),
            spans_rejected_invalid: get(&self.spans_rejected_invalid),
            spans_rejected_full: get(&self.spans_rejected_full),
            spans_evicted: get(&self.spans_evicted),
            requests_unauthenticated: get(&self.requests_unauthenticated),
            requests_too_large: get(&self.requests_too_large),
            requests_malformed: get(&self.requests_malformed),
            requests_failed_by_fault: get(&self.requests_failed_by_fault),
        }
    }
}

/// How one export request was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestOutcome {
    /// Decoded; `accepted` spans stored and `rejected` refused (partial success).
    Exported {
        /// Spans stored.
        accepted: u64,
        /// Spans refused, reported to the client as partial success.
        rejected: u64,
    },
    /// Refused for a missing or wrong access token.
    Unauthenticated,
    /// Refused for exceeding the size limit.
    TooLarge,
    /// Refused because the body could not be decoded; the message says why.
    Malformed(String),
    /// Refused with a simulated failure ([`Faults`](crate::Faults)).
    FaultInjected,
}

/// One export request the receiver answered: who sent it, what headers it carried, and how it
/// was answered. Kept for the newest [`MAX_REQUEST_RECORDS`] requests, including refused ones
/// (their headers show, for example, which token a client sent).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RequestRecord {
    /// The request's protocol, headers and peer.
    pub request: Arc<RequestInfo>,
    /// How it was answered.
    pub outcome: RequestOutcome,
}

#[derive(Debug, Default)]
struct State {
    spans: VecDeque<ReceivedSpan>,
    requests: VecDeque<RequestRecord>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// The number of stored spans, for waiters.
    len_tx: watch::Sender<usize>,
    max_spans: usize,
    when_full: WhenFull,
    counters: Counters,
}

/// A handle on the receiver's span store. Cheap to clone; every clone sees the same spans.
///
/// Obtain one from [`RunningReceiver::store`](crate::RunningReceiver::store), for example to
/// read spans from another task while the receiver runs.
#[derive(Clone, Debug)]
pub struct SpanStore {
    inner: Arc<Inner>,
}

/// What happened to the spans of one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct IngestOutcome {
    pub(crate) accepted: u64,
    pub(crate) rejected_invalid: u64,
    pub(crate) rejected_full: u64,
    pub(crate) first_invalid: Option<String>,
    pub(crate) max_spans: usize,
}

impl IngestOutcome {
    pub(crate) fn rejected(&self) -> u64 {
        self.rejected_invalid + self.rejected_full
    }

    /// The OTLP response: partial success when anything was refused.
    pub(crate) fn to_response(&self) -> ExportTraceServiceResponse {
        if self.rejected() == 0 {
            return ExportTraceServiceResponse {
                partial_success: None,
            };
        }
        let mut reasons = Vec::new();
        if self.rejected_invalid > 0 {
            reasons.push(format!(
                "{} spans with an invalid trace or span id ({})",
                self.rejected_invalid,
                self.first_invalid.as_deref().unwrap_or("unknown")
            ));
        }
        if self.rejected_full > 0 {
            reasons.push(format!(
                "{} spans refused because the receiver's store is full ({} spans)",
                self.rejected_full, self.max_spans
            ));
        }
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: i64::try_from(self.rejected()).unwrap_or(i64::MAX),
                error_message: format!("rejected {}", reasons.join("; ")),
            }),
        }
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding this lock cannot leave the queues half-updated in a way that
    // matters to readers, so a poisoned lock is used as is rather than propagating the panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a span's ids are unacceptable, if they are.
fn invalid_ids(span: &Span) -> Option<String> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Some(format!(
            "trace id `{}` is not 16 non-zero bytes",
            hex(&span.trace_id)
        ));
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Some(format!(
            "span id `{}` is not 8 non-zero bytes",
            hex(&span.span_id)
        ));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Some(format!(
            "parent span id `{}` is neither empty nor 8 bytes",
            hex(&span.parent_span_id)
        ));
    }
    None
}

impl SpanStore {
    pub(crate) fn new(max_spans: usize, when_full: WhenFull) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                len_tx: watch::channel(0).0,
                max_spans,
                when_full,
                counters: Counters::default(),
            }),
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// The store's capacity in spans.
    pub fn max_spans(&self) -> usize {
        self.inner.max_spans
    }

    /// Stores the valid spans of `request` (within the bound) and says what happened.
    pub(crate) fn ingest(
        &self,
        request: ExportTraceServiceRequest,
        info: Arc<RequestInfo>,
    ) -> IngestOutcome {
        let mut outcome = IngestOutcome {
            max_spans: self.inner.max_spans,
            ..IngestOutcome::default()
        };
        // Validate and wrap outside the lock; the lock is held only to move spans in.
        let mut valid = Vec::new();
        for rs in request.resource_spans {
            let resource = Arc::new(rs.resource.unwrap_or_default());
            for ss in rs.scope_spans {
                if ss.spans.is_empty() {
                    continue;
                }
                let origin = Arc::new(Origin {
                    resource: Arc::clone(&resource),
                    resource_schema_url: rs.schema_url.clone(),
                    scope: ss.scope.unwrap_or_default(),
                    scope_schema_url: ss.schema_url,
                });
                for span in ss.spans {
                    if let Some(why) = invalid_ids(&span) {
                        outcome.rejected_invalid += 1;
                        outcome.first_invalid.get_or_insert(why);
                        continue;
                    }
                    valid.push(ReceivedSpan {
                        span,
                        origin: Arc::clone(&origin),
                        request: Arc::clone(&info),
                    });
                }
            }
        }

        let max = self.inner.max_spans;
        let mut evicted = 0u64;
        let len = {
            let mut state = lock(&self.inner.state);
            for span in valid {
                if state.spans.len() >= max {
                    match self.inner.when_full {
                        WhenFull::RejectNew => {
                            outcome.rejected_full += 1;
                            continue;
                        }
                        WhenFull::EvictOldest => {
                            state.spans.pop_front();
                            evicted += 1;
                        }
                    }
                }
                state.spans.push_back(span);
                outcome.accepted += 1;
            }
            state.spans.len()
        };
        let c = &self.inner.counters;
        c.spans_accepted
            .fetch_add(outcome.accepted, Ordering::Relaxed);
        c.spans_rejected_invalid
            .fetch_add(outcome.rejected_invalid, Ordering::Relaxed);
        c.spans_rejected_full
            .fetch_add(outcome.rejected_full, Ordering::Relaxed);
        c.spans_evicted.fetch_add(evicted, Ordering::Relaxed);
        self.inner.len_tx.send_replace(len);
        outcome
    }

    /// Records how a request was answered (bounded to the newest [`MAX_REQUEST_RECORDS`]).
    pub(crate) fn record(&self, request: Arc<RequestInfo>, outcome: RequestOutcome) {
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.inner.state);
        if state.requests.len() >= MAX_REQUEST_RECORDS {
            state.requests.pop_front();
        }
        state.requests.push_back(RequestRecord { request, outcome });
    }

    /// The number of spans stored now.
    pub fn len(&self) -> usize {
        lock(&self.inner.state).spans.len()
    }

    /// Whether the store holds no span.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every stored span, in arrival order. The store keeps them.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        lock(&self.inner.state).spans.iter().cloned().collect()
    }

    /// Removes and returns every stored span, in arrival order.
    pub fn take_spans(&self) -> Vec<ReceivedSpan> {
        let spans: Vec<_> = lock(&self.inner.state).spans.drain(..).collect();
        self.inner.len_tx.send_replace(0);
        spans
    }

    /// Removes every stored span and returns them grouped into traces, in the order each
    /// trace's first span arrived.
    pub fn take_traces(&self) -> Vec<Trace> {
        group_traces(self.take_spans())
    }

    /// Removes and returns the traces that received no new span for at least `idle`: the
    /// usual way to decide that a trace is complete when nothing else says so. Other traces
    /// stay in the store.
    ///
    /// A development server calls this periodically and prints what it gets:
    ///
    /// ```no_run
    /// # async fn run(store: lightstep_receiver::SpanStore) {
    /// use std::time::Duration;
    ///
    /// loop {
    ///     tokio::time::sleep(Duration::from_millis(500)).await;
    ///     for trace in store.take_idle_traces(Duration::from_secs(3)) {
    ///         eprintln!("trace {}: {} spans", trace.trace_id(), trace.spans().len());
    ///     }
    /// }
    /// # }
    /// ```
    pub fn take_idle_traces(&self, idle: Duration) -> Vec<Trace> {
        let now = Instant::now();
        let (taken, len) = {
            let mut state = lock(&self.inner.state);
            let mut last_arrival: HashMap<TraceId, Instant> = HashMap::new();
            for s in &state.spans {
                let t = s.request.received_instant;
                last_arrival
                    .entry(s.trace_id())
                    .and_modify(|last| *last = (*last).max(t))
                    .or_insert(t);
            }
            let is_idle = |s: &ReceivedSpan| {
                last_arrival
                    .get(&s.trace_id())
                    .is_some_and(|last| now.saturating_duration_since(*last) >= idle)
            };
            let mut taken = Vec::new();
            let mut kept = VecDeque::with_capacity(state.spans.len());
            for s in state.spans.drain(..) {
                if is_idle(&s) {
                    taken.push(s);
                } else {
                    kept.push_back(s);
                }
            }
            state.spans = kept;
            (taken, state.spans.len())
        };
        self.inner.len_tx.send_replace(len);
        group_traces(taken)
    }

    /// Removes and returns the spans of trace `trace_id`, if the store holds any.
    pub fn take_trace(&self, trace_id: TraceId) -> Option<Trace> {
        let (taken, len) = {
            let mut state = lock(&self.inner.state);
            let (taken, kept): (Vec<_>, Vec<_>) = state
                .spans
                .drain(..)
                .partition(|s| s.trace_id() == trace_id);
            state.spans = kept.into();
            (taken, state.spans.len())
        };
        self.inner.len_tx.send_replace(len);
        group_traces(taken).into_iter().next()
    }

    /// Waits until the store holds at least `n` spans, then returns a copy of all stored spans
    /// (which may be more than `n`). Gives up after `timeout` with [`Error::Timeout`]; use a
    /// generous timeout, it only guards against a hang.
    pub async fn wait_for_spans(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedSpan>> {
        let mut rx = self.inner.len_tx.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|len| *len >= n)).await;
        match reached {
            // The sender lives in `self.inner`, so the channel cannot close while we wait.
            Ok(_) => Ok(self.spans()),
            Err(_) => Err(Error::Timeout {
                expected: n,
                received: self.len(),
                timeout,
            }),
        }
    }

    /// The newest [`MAX_REQUEST_RECORDS`] requests and how each was answered, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.inner.state).requests.iter().cloned().collect()
    }

    /// The counters since the receiver started.
    pub fn stats(&self) -> ReceiverStats {
        self.inner.counters.snapshot()
    }
}

fn group_traces(spans: Vec<ReceivedSpan>) -> Vec<Trace> {
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    let mut traces: Vec<Trace> = Vec::new();
    for s in spans {
        let id = s.trace_id();
        let i = *index.entry(id).or_insert_with(|| {
            traces.push(Trace {
                trace_id: id,
                spans: Vec::new(),
            });
            traces.len() - 1
        });
        traces[i].spans.push(s);
    }
    traces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: u8, id: u8, parent: Option<u8>) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: format!("s{id}"),
            ..Span::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn info() -> Arc<RequestInfo> {
        Arc::new(RequestInfo::new(
            Protocol::Grpc,
            http::HeaderMap::new(),
            None,
            false,
        ))
    }

    #[test]
    fn reject_new_refuses_beyond_capacity_and_says_so() {
        let store = SpanStore::new(2, WhenFull::RejectNew);
        let out = store.ingest(
            request(vec![
                span(1, 1, None),
                span(1, 2, Some(1)),
                span(1, 3, Some(1)),
            ]),
            info(),
        );
        assert_eq!((out.accepted, out.rejected_full), (2, 1));
        let resp = out.to_response();
        let ps = resp.partial_success.expect("partial success");
        assert_eq!(ps.rejected_spans, 1);
        assert!(
            ps.error_message.contains("store is full"),
            "{}",
            ps.error_message
        );
        assert_eq!(store.len(), 2);
        assert_eq!(store.stats().spans_rejected_full, 1);
    }

    #[test]
    fn evict_oldest_keeps_the_newest() {
        let store = SpanStore::new(2, WhenFull::EvictOldest);
        let out = store.ingest(
            request(vec![
                span(1, 1, None),
                span(1, 2, Some(1)),
                span(1, 3, Some(1)),
            ]),
            info(),
        );
        assert_eq!(out.accepted, 3);
        assert!(out.to_response().partial_success.is_none());
        let names: Vec<_> = store.spans().iter().map(|s| s.name().to_owned()).collect();
        assert_eq!(names, ["s2", "s3"]);
        assert_eq!(store.stats().spans_evicted, 1);
    }

    #[test]
    fn invalid_ids_are_rejected_with_a_reason() {
        let store = SpanStore::new(10, WhenFull::RejectNew);
        let mut zero_trace = span(0, 1, None);
        zero_trace.trace_id = vec![0; 16];
        let mut short_span = span(1, 2, None);
        short_span.span_id = vec![1, 2, 3];
        let mut bad_parent = span(1, 3, None);
        bad_parent.parent_span_id = vec![9; 3];
        let out = store.ingest(
            request(vec![zero_trace, short_span, bad_parent, span(1, 4, None)]),
            info(),
        );
        assert_eq!((out.accepted, out.rejected_invalid), (1, 3));
        let ps = out.to_response().partial_success.expect("partial success");
        assert_eq!(ps.rejected_spans, 3);
        assert!(
            ps.error_message.contains("trace id"),
            "{}",
            ps.error_message
        );
    }

    #[test]
    fn traces_group_by_id_in_arrival_order_and_regroup_to_otlp() {
        let store = SpanStore::new(10, WhenFull::RejectNew);
        store.ingest(
            request(vec![
                span(2, 1, None),
                span(3, 2, None),
                span(2, 3, Some(1)),
            ]),
            info(),
        );
        let traces = store.take_traces();
        assert!(store.is_empty());
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0].trace_id(), TraceId([2; 16]));
        assert_eq!(traces[0].spans().len(), 2);
        assert_eq!(traces[0].roots().count(), 1);
        let otlp = traces[0].to_otlp();
        assert_eq!(otlp.resource_spans.len(), 1);
        assert_eq!(otlp.resource_spans[0].scope_spans[0].spans.len(), 2);
        let bytes = traces[0].to_otlp_protobuf();
        let decoded = <ExportTraceServiceRequest as prost::Message>::decode(bytes.as_slice())
            .expect("protobuf round trip");
        assert_eq!(decoded, otlp);
        let json = traces[0].to_otlp_json();
        assert!(!json.contains('\n'));
        assert_eq!(
            crate::json::decode_request(json.as_bytes()).expect("json round trip"),
            otlp
        );
    }

    #[test]
    fn take_trace_leaves_the_others() {
        let store = SpanStore::new(10, WhenFull::RejectNew);
        store.ingest(request(vec![span(2, 1, None), span(3, 2, None)]), info());
        let t = store.take_trace(TraceId([3; 16])).expect("trace 3");
        assert_eq!(t.spans().len(), 1);
        assert_eq!(store.len(), 1);
        assert!(store.take_trace(TraceId([9; 16])).is_none());
    }

    #[test]
    fn idle_traces_are_taken_and_fresh_ones_kept() {
        let store = SpanStore::new(10, WhenFull::RejectNew);
        store.ingest(request(vec![span(2, 1, None)]), info());
        // Nothing is idle for an hour yet; everything is idle for zero.
        assert!(store.take_idle_traces(Duration::from_secs(3600)).is_empty());
        assert_eq!(store.len(), 1);
        assert_eq!(store.take_idle_traces(Duration::ZERO).len(), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn request_records_are_bounded() {
        let store = SpanStore::new(10, WhenFull::RejectNew);
        for _ in 0..MAX_REQUEST_RECORDS + 10 {
            store.record(info(), RequestOutcome::Unauthenticated);
        }
        assert_eq!(store.requests().len(), MAX_REQUEST_RECORDS);
        assert_eq!(store.stats().requests, (MAX_REQUEST_RECORDS + 10) as u64);
    }

    #[test]
    fn debug_redacts_the_token() {
        let mut headers = http::HeaderMap::new();
        headers.insert("lightstep-access-token", "s3cret".parse().expect("value"));
        headers.insert("user-agent", "ua".parse().expect("value"));
        let info = RequestInfo::new(Protocol::HttpJson, headers, None, false);
        let dbg = format!("{info:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(
            dbg.contains("[REDACTED]") && dbg.contains("\"ua\""),
            "{dbg}"
        );
        assert_eq!(info.access_token(), Some("s3cret"));
    }
}

//! The bounded in-memory store of received spans, and the types it hands out.
//!
//! The store is the one place that holds data a client sent, so it is the one place that must
//! stay bounded: it holds at most `max_spans` spans and a fixed number of request records. What
//! happens when it is full is a policy ([`WhenFull`]), and every span refused or evicted is
//! counted in [`ReceiverStats`], so a test can tell "never sent" from "sent but not kept".
//!
//! The types it hands out live beside it: spans and traces in [`span`], what is kept of a
//! request in [`request`], the counters in [`stats`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use tokio::sync::watch;

mod request;
mod span;
mod stats;

pub(crate) use self::request::header_charge;
pub use self::request::{Protocol, RequestInfo, RequestOutcome, RequestRecord};
use self::span::{ORIGIN_OVERHEAD, Origin, decoded_attributes_size};
pub use self::span::{ReceivedSpan, SpanId, Trace, TraceId};
pub(crate) use self::stats::Counters;
pub use self::stats::ReceiverStats;
use crate::error::{Error, Result};
use crate::wire::{self, SpanView, WireError};

/// How many request records [`SpanStore::requests`] keeps (the newest ones).
pub const MAX_REQUEST_RECORDS: usize = 256;

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

#[derive(Debug, Default)]
struct State {
    spans: VecDeque<ReceivedSpan>,
    /// What the stored spans and their origins are charged, in bytes (see [`SpanStore`]).
    bytes: usize,
    requests: VecDeque<RequestRecord>,
}

impl State {
    /// Takes `span` out of the accounts: its charge, and its origin's when it was the last
    /// stored span of that origin.
    fn release(&mut self, span: &ReceivedSpan) {
        self.bytes = self.bytes.saturating_sub(span.charge());
        if span.origin.stored.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.bytes = self.bytes.saturating_sub(span.origin.charge);
        }
    }

    fn release_all(&mut self, spans: &[ReceivedSpan]) {
        for span in spans {
            self.release(span);
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// The number of stored spans, for waiters.
    len_tx: watch::Sender<usize>,
    max_spans: usize,
    max_bytes: usize,
    when_full: WhenFull,
    counters: Counters,
}

/// A handle on the receiver's span store. Cheap to clone; every clone sees the same spans.
///
/// The store is bounded twice: by a number of spans
/// ([`ReceiverBuilder::with_max_spans`](crate::ReceiverBuilder::with_max_spans)) and by bytes
/// ([`ReceiverBuilder::with_max_stored_bytes`](crate::ReceiverBuilder::with_max_stored_bytes)).
/// Each span is charged its protobuf encoding plus a fixed overhead; each resource and scope
/// that stored spans arrived under is charged once, with the headers of its request, for as long
/// as the store holds at least one of those spans. That is what the store keeps alive, so a few
/// huge spans or a huge resource fill the budget instead of the memory.
///
/// Obtain one from [`RunningReceiver::store`](crate::RunningReceiver::store), for example to
/// read spans from another task while the receiver runs.
#[derive(Clone)]
pub struct SpanStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for SpanStore {
    /// The store's size and bounds, not its spans.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (spans, bytes) = {
            let state = lock(&self.inner.state);
            (state.spans.len(), state.bytes)
        };
        f.debug_struct("SpanStore")
            .field("spans", &spans)
            .field("stored_bytes", &bytes)
            .field("max_spans", &self.inner.max_spans)
            .field("max_stored_bytes", &self.inner.max_bytes)
            .field("when_full", &self.inner.when_full)
            .finish_non_exhaustive()
    }
}

/// What happened to the spans of one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct IngestOutcome {
    pub(crate) accepted: u64,
    pub(crate) rejected_invalid: u64,
    pub(crate) rejected_full: u64,
    pub(crate) first_invalid: Option<String>,
    pub(crate) max_spans: usize,
    pub(crate) max_bytes: usize,
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
                "{} spans refused because the receiver's store is full (at most {} spans and \
                 {} bytes)",
                self.rejected_full, self.max_spans, self.max_bytes
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

/// The span's ids, or why they are unacceptable.
fn checked_ids(span: &SpanView<'_>) -> Result<(TraceId, SpanId, Option<SpanId>), String> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let trace_id = <[u8; 16]>::try_from(span.trace_id)
        .ok()
        .filter(|id| *id != [0; 16])
        .ok_or_else(|| format!("trace id `{}` is not 16 non-zero bytes", hex(span.trace_id)))?;
    let span_id = <[u8; 8]>::try_from(span.span_id)
        .ok()
        .filter(|id| *id != [0; 8])
        .ok_or_else(|| format!("span id `{}` is not 8 non-zero bytes", hex(span.span_id)))?;
    let parent = match span.parent_span_id.len() {
        0 => None,
        8 => <[u8; 8]>::try_from(span.parent_span_id)
            .ok()
            .filter(|id| *id != [0; 8])
            .map(SpanId),
        _ => {
            return Err(format!(
                "parent span id `{}` is neither empty nor 8 bytes",
                hex(span.parent_span_id)
            ));
        }
    };
    Ok((TraceId(trace_id), SpanId(span_id), parent))
}

/// The spans of one request, checked and wrapped outside the store's lock.
struct Batch<'i, 'a> {
    info: &'i Arc<RequestInfo>,
    /// The current `ResourceSpans`: its resource parts and schema URL, decoded when its first
    /// scope with spans arrives.
    resource_parts: Vec<&'a [u8]>,
    resource_schema_url: String,
    resource: Option<Arc<Resource>>,
    origin: Option<Arc<Origin>>,
    spans: Vec<ReceivedSpan>,
    rejected_invalid: u64,
    first_invalid: Option<String>,
}

impl<'i> Batch<'i, '_> {
    fn new(info: &'i Arc<RequestInfo>) -> Self {
        Self {
            info,
            resource_parts: Vec::new(),
            resource_schema_url: String::new(),
            resource: None,
            origin: None,
            spans: Vec::new(),
            rejected_invalid: 0,
            first_invalid: None,
        }
    }
}

const UNDECODABLE: WireError = WireError::new("a resource or scope does not decode");

impl<'a> wire::Visitor<'a> for Batch<'_, 'a> {
    fn resource(&mut self, parts: &[&'a [u8]], schema_url: &'a str) -> Result<(), WireError> {
        self.resource_parts.clear();
        self.resource_parts.extend_from_slice(parts);
        schema_url.clone_into(&mut self.resource_schema_url);
        self.resource = None;
        self.origin = None;
        Ok(())
    }

    fn scope(
        &mut self,
        parts: &[&'a [u8]],
        schema_url: &'a str,
        spans: usize,
    ) -> Result<(), WireError> {
        let resource = match &self.resource {
            Some(resource) => Arc::clone(resource),
            None => {
                // Repeated occurrences merge, as prost merges them.
                let mut resource = Resource::default();
                for part in &self.resource_parts {
                    resource.merge(*part).map_err(|_| UNDECODABLE)?;
                }
                let resource = Arc::new(resource);
                self.resource = Some(Arc::clone(&resource));
                resource
            }
        };
        let mut scope = InstrumentationScope::default();
        for part in parts {
            scope.merge(*part).map_err(|_| UNDECODABLE)?;
        }
        // What the decoded resource and scope hold: at least their encoding, and more when
        // their attributes are many and small.
        let charge = ORIGIN_OVERHEAD
            + self
                .resource_parts
                .iter()
                .map(|p| p.len())
                .sum::<usize>()
                .max(decoded_attributes_size(&resource.attributes))
            + parts
                .iter()
                .map(|p| p.len())
                .sum::<usize>()
                .max(decoded_attributes_size(&scope.attributes))
            + self.resource_schema_url.len()
            + schema_url.len()
            + self.info.charge;
        self.origin = Some(Arc::new(Origin {
            resource,
            resource_schema_url: self.resource_schema_url.clone(),
            scope,
            scope_schema_url: schema_url.to_owned(),
            request: Arc::clone(self.info),
            charge,
            stored: AtomicUsize::new(0),
        }));
        self.spans.reserve(spans);
        Ok(())
    }

    fn span(&mut self, span: SpanView<'a>) {
        let Some(origin) = &self.origin else {
            return;
        };
        match checked_ids(&span) {
            Ok((trace_id, span_id, parent_span_id)) => self.spans.push(ReceivedSpan {
                trace_id,
                span_id,
                parent_span_id,
                encoded: Arc::from(span.bytes),
                decoded: OnceLock::new(),
                origin: Arc::clone(origin),
            }),
            Err(why) => {
                self.rejected_invalid += 1;
                self.first_invalid.get_or_insert(why);
            }
        }
    }
}

impl SpanStore {
    pub(crate) fn new(max_spans: usize, max_bytes: usize, when_full: WhenFull) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                len_tx: watch::channel(0).0,
                max_spans,
                max_bytes,
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

    /// The store's budget in bytes (see [`SpanStore`]).
    pub fn max_stored_bytes(&self) -> usize {
        self.inner.max_bytes
    }

    /// What the stored spans are charged against [`max_stored_bytes`](Self::max_stored_bytes)
    /// now.
    pub fn stored_bytes(&self) -> usize {
        lock(&self.inner.state).bytes
    }

    /// Stores the valid spans of an OTLP protobuf `ExportTraceServiceRequest` (within the
    /// bounds) and says what happened. A body that is not valid protobuf stores nothing.
    pub(crate) fn ingest_protobuf(
        &self,
        body: &[u8],
        info: &Arc<RequestInfo>,
    ) -> Result<IngestOutcome, WireError> {
        let mut batch = Batch::new(info);
        wire::walk_request(body, &mut batch)?;
        Ok(self.insert(batch))
    }

    /// A store of its own, outside any receiver, for OTLP that comes another way than over a
    /// connection, such as a file (see [`ingest_request`](Self::ingest_request)). Spans beyond
    /// `max_spans` or `max_bytes` are refused.
    pub fn standalone(max_spans: usize, max_bytes: usize) -> Self {
        Self::new(max_spans, max_bytes, WhenFull::RejectNew)
    }

    /// Stores the spans of one OTLP `ExportTraceServiceRequest` (or `TracesData`, the same
    /// message on the wire) that came another way than over a connection, checked as an
    /// export's body is: OTLP/JSON when `json`, else protobuf. Returns how many spans were
    /// stored; a body that does not decode stores nothing, and the error says why.
    pub fn ingest_request(&self, body: &[u8], json: bool) -> crate::Result<u64> {
        let not_a_request = |reason: String| crate::Error::NotARequest { reason };
        let transcoded;
        let (protocol, body) = if json {
            transcoded = crate::json::to_protobuf(body).map_err(not_a_request)?;
            (Protocol::HttpJson, transcoded.as_slice())
        } else {
            (Protocol::HttpProtobuf, body)
        };
        let info = Arc::new(RequestInfo::new(
            protocol,
            &http::HeaderMap::new(),
            None,
            false,
        ));
        self.ingest_protobuf(body, &info)
            .map(|outcome| outcome.accepted)
            .map_err(|why| not_a_request(why.to_string()))
    }

    /// Stores the valid spans of a decoded request, through its protobuf encoding (the form
    /// the store keeps). Fails only for nesting deeper than protobuf decoding allows.
    #[cfg(test)]
    pub(crate) fn ingest(
        &self,
        request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        info: &Arc<RequestInfo>,
    ) -> Result<IngestOutcome, WireError> {
        self.ingest_protobuf(&request.encode_to_vec(), info)
    }

    /// Moves the valid spans of `batch` in, under one lock, within both bounds.
    fn insert(&self, batch: Batch<'_, '_>) -> IngestOutcome {
        let max_spans = self.inner.max_spans;
        let max_bytes = self.inner.max_bytes;
        let mut outcome = IngestOutcome {
            max_spans,
            max_bytes,
            rejected_invalid: batch.rejected_invalid,
            first_invalid: batch.first_invalid,
            ..IngestOutcome::default()
        };
        let mut evicted = 0u64;
        {
            let mut state = lock(&self.inner.state);
            'spans: for span in batch.spans {
                // A span that could not fit even in an empty store must not empty it first.
                if span.charge().saturating_add(span.origin.charge) > max_bytes {
                    outcome.rejected_full += 1;
                    continue;
                }
                loop {
                    let need = span.charge()
                        + if span.origin.stored.load(Ordering::Relaxed) == 0 {
                            span.origin.charge
                        } else {
                            0
                        };
                    let fits = state
                        .bytes
                        .checked_add(need)
                        .is_some_and(|total| total <= max_bytes);
                    if state.spans.len() < max_spans && fits {
                        state.bytes += need;
                        span.origin.stored.fetch_add(1, Ordering::Relaxed);
                        state.spans.push_back(span);
                        outcome.accepted += 1;
                        continue 'spans;
                    }
                    match self.inner.when_full {
                        WhenFull::RejectNew => {
                            outcome.rejected_full += 1;
                            continue 'spans;
                        }
                        WhenFull::EvictOldest => match state.spans.pop_front() {
                            Some(oldest) => {
                                state.release(&oldest);
                                evicted += 1;
                            }
                            None => {
                                outcome.rejected_full += 1;
                                continue 'spans;
                            }
                        },
                    }
                }
            }
            // Published under the lock, so that lengths reach waiters in the order they
            // happened (a take between our release and our send would otherwise be undone).
            self.inner.len_tx.send_replace(state.spans.len());
        }
        let c = &self.inner.counters;
        c.spans_accepted
            .fetch_add(outcome.accepted, Ordering::Relaxed);
        c.spans_rejected_invalid
            .fetch_add(outcome.rejected_invalid, Ordering::Relaxed);
        c.spans_rejected_full
            .fetch_add(outcome.rejected_full, Ordering::Relaxed);
        c.spans_evicted.fetch_add(evicted, Ordering::Relaxed);
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
        let spans: Vec<_> = {
            let mut state = lock(&self.inner.state);
            let spans: Vec<_> = state.spans.drain(..).collect();
            state.release_all(&spans);
            self.inner.len_tx.send_replace(0);
            spans
        };
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
        let taken = {
            let mut state = lock(&self.inner.state);
            let mut last_arrival: HashMap<TraceId, Instant> = HashMap::new();
            for s in &state.spans {
                let t = s.origin.request.received_instant;
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
            state.release_all(&taken);
            self.inner.len_tx.send_replace(state.spans.len());
            taken
        };
        group_traces(taken)
    }

    /// Removes and returns the spans of trace `trace_id`, if the store holds any.
    pub fn take_trace(&self, trace_id: TraceId) -> Option<Trace> {
        let taken = {
            let mut state = lock(&self.inner.state);
            let (taken, kept): (Vec<_>, Vec<_>) = state
                .spans
                .drain(..)
                .partition(|s| s.trace_id() == trace_id);
            state.spans = kept.into();
            state.release_all(&taken);
            self.inner.len_tx.send_replace(state.spans.len());
            taken
        };
        group_traces(taken).into_iter().next()
    }

    /// Waits until the store holds at least `n` spans, then returns a copy of all stored spans
    /// (which may be more than `n`). Gives up after `timeout` with [`Error::Timeout`]; use a
    /// generous timeout, it only guards against a hang.
    pub async fn wait_for_spans(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedSpan>> {
        let mut rx = self.inner.len_tx.subscribe();
        // The watch's guard is dropped before the store is locked: writers publish the length
        // while holding the store's lock.
        let reached = tokio::time::timeout(timeout, rx.wait_for(|len| *len >= n))
            .await
            .map(|guard| guard.is_ok());
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
    /// Requests refused for their access token are not among them (see [`RequestRecord`]).
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
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

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

    fn ingest(
        store: &SpanStore,
        request: ExportTraceServiceRequest,
        info: Arc<RequestInfo>,
    ) -> IngestOutcome {
        store.ingest(&request, &info).expect("valid request")
    }

    fn info() -> Arc<RequestInfo> {
        Arc::new(RequestInfo::new(
            Protocol::Grpc,
            &http::HeaderMap::new(),
            None,
            false,
        ))
    }

    #[test]
    fn reject_new_refuses_beyond_capacity_and_says_so() {
        let store = SpanStore::new(2, usize::MAX, WhenFull::RejectNew);
        let out = ingest(
            &store,
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
        let store = SpanStore::new(2, usize::MAX, WhenFull::EvictOldest);
        let out = ingest(
            &store,
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
        let store = SpanStore::new(10, usize::MAX, WhenFull::RejectNew);
        let mut zero_trace = span(0, 1, None);
        zero_trace.trace_id = vec![0; 16];
        let mut short_span = span(1, 2, None);
        short_span.span_id = vec![1, 2, 3];
        let mut bad_parent = span(1, 3, None);
        bad_parent.parent_span_id = vec![9; 3];
        let out = ingest(
            &store,
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
        let store = SpanStore::new(10, usize::MAX, WhenFull::RejectNew);
        ingest(
            &store,
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
        let store = SpanStore::new(10, usize::MAX, WhenFull::RejectNew);
        ingest(
            &store,
            request(vec![span(2, 1, None), span(3, 2, None)]),
            info(),
        );
        let t = store.take_trace(TraceId([3; 16])).expect("trace 3");
        assert_eq!(t.spans().len(), 1);
        assert_eq!(store.len(), 1);
        assert!(store.take_trace(TraceId([9; 16])).is_none());
    }

    #[test]
    fn idle_traces_are_taken_and_fresh_ones_kept() {
        let store = SpanStore::new(10, usize::MAX, WhenFull::RejectNew);
        ingest(&store, request(vec![span(2, 1, None)]), info());
        // Nothing is idle for an hour yet; everything is idle for zero.
        assert!(store.take_idle_traces(Duration::from_secs(3600)).is_empty());
        assert_eq!(store.len(), 1);
        assert_eq!(store.take_idle_traces(Duration::ZERO).len(), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn request_records_are_bounded() {
        let store = SpanStore::new(10, usize::MAX, WhenFull::RejectNew);
        for _ in 0..MAX_REQUEST_RECORDS + 10 {
            store.record(info(), RequestOutcome::Throttled);
        }
        assert_eq!(store.requests().len(), MAX_REQUEST_RECORDS);
        assert_eq!(store.stats().requests, (MAX_REQUEST_RECORDS + 10) as u64);
    }

    #[test]
    fn debug_shows_spans_but_not_the_store_contents() {
        let store = SpanStore::new(10, usize::MAX, WhenFull::RejectNew);
        ingest(&store, request(vec![span(2, 1, None)]), info());
        let dbg = format!("{store:?}");
        assert!(dbg.contains("spans: 1") && !dbg.contains("s1"), "{dbg}");
        let spans = store.spans();
        assert!(format!("{:?}", spans[0]).contains("\"s1\""));
    }

    #[test]
    fn bytes_are_accounted_through_evictions_and_takes() {
        let store = SpanStore::new(100, 2_000, WhenFull::EvictOldest);
        for id in 1..=40 {
            ingest(&store, request(vec![span(id, id, None)]), info());
            assert!(store.stored_bytes() <= 2_000);
        }
        assert!(store.stats().spans_evicted > 0);
        let kept = store.len();
        assert!(kept > 1);
        let first = store.spans()[0].trace_id();
        store.take_trace(first).expect("trace");
        assert_eq!(store.len(), kept - 1);
        store.take_idle_traces(Duration::ZERO);
        assert_eq!((store.len(), store.stored_bytes()), (0, 0));
    }

    #[test]
    fn a_resource_is_charged_what_it_holds_decoded_not_only_its_encoding() {
        // 100 000 attributes with empty keys and no value: two bytes each on the wire, a whole
        // `KeyValue` each once decoded.
        let attributes = vec![KeyValue::default(); 100_000];
        let decoded = attributes.len() * std::mem::size_of::<KeyValue>();
        let mut req = request(vec![span(1, 1, None)]);
        req.resource_spans[0].resource = Some(Resource {
            attributes,
            ..Resource::default()
        });
        assert!(req.encoded_len() < decoded / 10);
        let store = SpanStore::new(100, usize::MAX, WhenFull::RejectNew);
        ingest(&store, req, info());
        assert_eq!(store.len(), 1);
        assert!(
            store.stored_bytes() >= decoded,
            "charged {} bytes for a resource holding {decoded}",
            store.stored_bytes()
        );
    }

    #[test]
    fn debug_shows_every_header_name_and_only_framing_values() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("lightstep-access-token", "s3cret-token"),
            ("authorization", "Bearer s3cret-bearer"),
            ("cookie", "session=s3cret-cookie"),
            ("proxy-authorization", "Basic s3cret-proxy"),
            ("dd-api-key", "s3cret-dd"),
            ("x-honeycomb-team", "s3cret-team"),
            ("x-vendor-anything", "s3cret-vendor"),
            ("user-agent", "ua"),
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
            ("te", "trailers"),
            ("grpc-timeout", "10S"),
        ] {
            headers.insert(name, value.parse().expect("value"));
        }
        let info = RequestInfo::new(Protocol::HttpJson, &headers, None, false);
        let dbg = format!("{info:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        for name in headers.keys() {
            assert!(dbg.contains(name.as_str()), "{name} missing: {dbg}");
        }
        for value in [
            "\"ua\"",
            "application/x-protobuf",
            "gzip",
            "trailers",
            "10S",
        ] {
            assert!(dbg.contains(value), "{value} missing: {dbg}");
        }
        assert_eq!(dbg.matches("[REDACTED]").count(), 7, "{dbg}");
        assert_eq!(info.access_token(), Some("s3cret-token"));
    }
}

//! The traces the explorer shows, held in memory within fixed bounds.
//!
//! A [`TraceStore`] keeps each trace in the analysis crate's model (what the critical path and
//! the waterfall are computed from), the details the model leaves out when its source had them
//! (attributes, events, links, resource and scope of spans that came through the embedded
//! receiver or from a file), and a summary that the search reads without touching the
//! spans.
//!
//! It is bounded three ways: traces, spans and an estimate of bytes. A trace that arrives when
//! the store is full pushes out the traces that arrived (or were last extended) longest ago;
//! a trace that would not fit even in an empty store is refused. Both are counted, so that the
//! pages can say what is missing. Files are read one trace at a time, so reading a file larger
//! than the bounds keeps its newest traces and never holds the rest.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read as _};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use lightstep_analysis::read::{Format, ReadStats, read_path, read_traces};
use lightstep_analysis::{Span, SpanId, Status, Trace, TraceId};
use lightstep_receiver::SpanStore;
use lightstep_receiver::proto::common::v1::{AnyValue, InstrumentationScope, any_value};
use lightstep_receiver::proto::resource::v1::Resource as OtlpResource;

use crate::error::Result;
use crate::file_details::FileDetails;
use crate::file_lookup::{FileSource, Spool, Spooling};

/// Default bound on the number of traces held.
pub const DEFAULT_MAX_TRACES: usize = 20_000;
/// Default bound on the number of spans held, over all traces.
pub const DEFAULT_MAX_SPANS: usize = 1_000_000;
/// Default bound on the estimated bytes held (spans, their names and their details).
pub const DEFAULT_MAX_BYTES: usize = 512 << 20;
/// Files up to this size keep their spans' details when read (see
/// [`TraceStore::read_path`]): reading them that way holds the whole file and its details at
/// once, five to ten times what the analysis's readers hold.
pub const DETAILED_FILE_BYTES: u64 = 8 << 20;

/// What the store charges per span beyond its text: the span in the analysis model, its
/// details and the per-span arrays of a cached waterfall layout.
const SPAN_OVERHEAD: usize = std::mem::size_of::<Span>() + std::mem::size_of::<SpanDetails>() + 48;
/// What the store charges per attribute beyond its key and value text.
const ATTRIBUTE_OVERHEAD: usize = std::mem::size_of::<KeyValue>() + 16;

/// A value of an attribute, as OTLP types it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Str(Box<str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Box<[u8]>),
    Array(Vec<Value>),
    Map(Vec<KeyValue>),
    Empty,
}

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct KeyValue {
    pub(crate) key: Box<str>,
    pub(crate) value: Value,
}

/// An event (a Jaeger log) of a span.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Event {
    pub(crate) time_ns: u64,
    pub(crate) name: Box<str>,
    pub(crate) attributes: Vec<KeyValue>,
}

/// A link of a span, with the attributes the analysis model does not keep.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LinkDetails {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) attributes: Vec<KeyValue>,
}

/// The instrumentation scope of a span.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Scope {
    pub(crate) name: Box<str>,
    pub(crate) version: Box<str>,
    pub(crate) attributes: Vec<KeyValue>,
}

/// What a span carries beyond the analysis model. Resources and scopes are shared by the spans
/// sent under them.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SpanDetails {
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) events: Vec<Event>,
    pub(crate) links: Vec<LinkDetails>,
    pub(crate) status_message: Box<str>,
    pub(crate) resource: Arc<Vec<KeyValue>>,
    pub(crate) scope: Arc<Scope>,
}

/// What the search list shows of a trace, computed once when it is stored.
#[derive(Clone, Debug)]
pub(crate) struct TraceSummary {
    pub(crate) trace_id: String,
    pub(crate) root_service: Arc<str>,
    pub(crate) root_operation: Arc<str>,
    /// Earliest start and latest end over the trace's spans, nanoseconds since the epoch.
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) spans: usize,
    pub(crate) errors: usize,
    /// Services with their span counts, by name.
    pub(crate) services: Vec<(Arc<str>, usize)>,
    /// Distinct (service, operation, span kind) triples, sorted; the kind as
    /// [`SpanKind::as_str`](lightstep_analysis::SpanKind::as_str) names it.
    pub(crate) operations: Vec<(Arc<str>, Arc<str>, &'static str)>,
}

impl TraceSummary {
    pub(crate) fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// One stored trace.
#[derive(Debug)]
pub(crate) struct StoredTrace {
    pub(crate) trace: Trace,
    /// Empty when no span's source had anything beyond the analysis model (large trace files),
    /// otherwise one entry per span of `trace`, in the same order, `None` for a span whose
    /// source had none (a trace merged from several sources).
    pub(crate) details: Vec<Option<SpanDetails>>,
    /// The large files the trace was read from, where its details are looked up when asked
    /// for (empty when it has them, or came from elsewhere).
    pub(crate) sources: Vec<Arc<FileSource>>,
    pub(crate) summary: TraceSummary,
    bytes: usize,
    seq: u64,
}

impl StoredTrace {
    fn new(trace: Trace, details: Vec<Option<SpanDetails>>, seq: u64) -> Self {
        let summary = summarize(&trace);
        let bytes = weigh(&trace, &details);
        Self {
            trace,
            details,
            sources: Vec::new(),
            summary,
            bytes,
            seq,
        }
    }

    /// A copy of this trace with the details `found` of its spans (by position, in order), for
    /// an answer that shows them.
    /// Spans that had details keep theirs.
    pub(crate) fn with_found(&self, found: &[(usize, SpanDetails)]) -> Self {
        let mut details = self.details.clone();
        details.resize_with(self.trace.spans.len(), || None);
        for (at, span_details) in found {
            if let Some(slot @ None) = details.get_mut(*at) {
                *slot = Some(span_details.clone());
            }
        }
        Self {
            trace: self.trace.clone(),
            bytes: weigh(&self.trace, &details),
            details,
            sources: Vec::new(),
            summary: self.summary.clone(),
            seq: self.seq,
        }
    }

    /// The details of span `index`, if its source had any.
    pub(crate) fn details(&self, index: usize) -> Option<&SpanDetails> {
        self.details.get(index)?.as_ref()
    }

    /// Whether some of its spans' details are to be looked up in the files it was read from.
    pub(crate) fn looks_up(&self) -> bool {
        !self.sources.is_empty()
            && (self.details.is_empty() || self.details.iter().any(Option::is_none))
    }
}

/// The bounds of a [`TraceStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Traces held at most.
    pub max_traces: usize,
    /// Spans held at most, over all traces.
    pub max_spans: usize,
    /// Estimated bytes held at most: spans, their text and their details.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_traces: DEFAULT_MAX_TRACES,
            max_spans: DEFAULT_MAX_SPANS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl Limits {
    /// The default bounds with another bound on spans.
    #[must_use]
    pub fn with_max_spans(mut self, max_spans: usize) -> Self {
        self.max_spans = max_spans;
        self
    }

    /// The default bounds with another bound on traces.
    #[must_use]
    pub fn with_max_traces(mut self, max_traces: usize) -> Self {
        self.max_traces = max_traces;
        self
    }

    /// The default bounds with another bound on estimated bytes.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// Counts since the store was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Traces held now.
    pub traces: usize,
    /// Spans held now.
    pub spans: usize,
    /// Estimated bytes held now.
    pub bytes: usize,
    /// Traces pushed out to make room for newer ones.
    pub evicted_traces: u64,
    /// Traces refused because they alone exceed a bound.
    pub refused_traces: u64,
    /// Changes so far: the pages poll it to show new traces without a reload.
    pub generation: u64,
}

/// What happened to a trace handed to [`TraceStore::add`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Added {
    /// Stored as a new trace.
    New,
    /// Its spans were added to a trace of the same id already held.
    Merged,
    /// Refused: it alone exceeds a bound of the store.
    Refused,
}

/// The traces the explorer serves: a clonable handle to one bounded in-memory store.
///
/// ```
/// use lightstep_analysis::{Span, SpanId, Trace, TraceId};
/// use lightstep_explorer::{Added, Limits, TraceStore};
///
/// let store = TraceStore::new(Limits::default().with_max_traces(1));
/// for n in 1..=2u64 {
///     let id = TraceId::from_u128(u128::from(n));
///     let trace = Trace::new(id.clone(), vec![Span::new(id, SpanId::from_u64(n), 0, 10)]);
///     assert_eq!(store.add(trace), Added::New);
/// }
/// // The older trace made room for the newer one.
/// assert_eq!(store.stats().traces, 1);
/// assert_eq!(store.stats().evicted_traces, 1);
/// ```
#[derive(Clone, Debug)]
pub struct TraceStore {
    inner: Arc<RwLock<State>>,
    adding: Arc<Mutex<()>>,
}

#[derive(Debug, Default)]
struct State {
    limits: Limits,
    traces: HashMap<TraceId, Arc<StoredTrace>>,
    /// Arrival order: the smallest sequence number is evicted first.
    order: BTreeMap<u64, TraceId>,
    next_seq: u64,
    spans: usize,
    bytes: usize,
    evicted: u64,
    refused: u64,
    generation: u64,
}

impl Default for TraceStore {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl TraceStore {
    /// An empty store with these bounds.
    pub fn new(limits: Limits) -> Self {
        Self {
            inner: Arc::new(RwLock::new(State {
                limits,
                ..State::default()
            })),
            adding: Arc::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // Nothing holding the lock can leave the maps half-updated in a way readers mind.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bounds.
    pub fn limits(&self) -> Limits {
        self.read().limits
    }

    /// Counts: what is held and what was pushed out or refused.
    pub fn stats(&self) -> StoreStats {
        let state = self.read();
        StoreStats {
            traces: state.traces.len(),
            spans: state.spans,
            bytes: state.bytes,
            evicted_traces: state.evicted,
            refused_traces: state.refused,
            generation: state.generation,
        }
    }

    /// Adds a trace (spans of a trace already held are added to it), pushing out the oldest
    /// traces if the bounds require.
    pub fn add(&self, trace: Trace) -> Added {
        self.add_with_details(trace, Vec::new(), None)
    }

    /// Adds a trace that came through the embedded receiver, with its spans' attributes,
    /// events, links, resource and scope.
    ///
    /// The conversion takes time in proportion to the trace: from async code, call it where
    /// blocking is allowed (`spawn_blocking`) for large traces.
    pub fn add_received(&self, trace: &lightstep_receiver::Trace) -> Added {
        match received_to_parts(trace) {
            Some((trace, details)) => self.add_with_details(trace, details, None),
            None => Added::Refused,
        }
    }

    /// Reads every trace of a file (`-` for standard input) in any format `lightstep analyze`
    /// reads (detected from the content unless `format` is given), one at a time.
    ///
    /// Files (and standard input) of up to [`DETAILED_FILE_BYTES`] keep their spans' details,
    /// when they cannot hold more spans than the store keeps (more than one per 32 bytes):
    /// OTLP files (JSON, JSON Lines or protobuf) are read as `lightstep dev` receives spans
    /// (attributes, events, links, resource and scope), Jaeger JSON files keep their tags,
    /// logs, `FOLLOWS_FROM` references and process tags, and Zipkin files their tags,
    /// annotations and endpoints.
    /// Larger files keep what the analysis reads, and the details of a trace's spans are
    /// looked up in the file again when one of them is asked for; longer standard input is
    /// copied to a temporary file (up to 2 GiB) while it is read, where they are looked up
    /// the same way.
    ///
    /// Blocks while it reads: from async code, call it where blocking is allowed.
    pub fn read_path(&self, path: &Path, format: Option<Format>) -> Result<ReadStats> {
        let max_spans = self.limits().max_spans;
        if path.as_os_str() == "-" {
            // Standard input is read once: its start is kept, and it is small when it ends
            // within it.
            const STDIN: &str = "<stdin>";
            let mut head = Vec::new();
            let mut stdin = io::stdin().lock();
            stdin
                .by_ref()
                .take(DETAILED_FILE_BYTES + 1)
                .read_to_end(&mut head)
                .map_err(|source| lightstep_analysis::Error::Io {
                    file: STDIN.into(),
                    source,
                })?;
            // Ended within the start: it is not read again (on a terminal, that would wait
            // for a second end of input).
            let ended = head.len() as u64 <= DETAILED_FILE_BYTES;
            let small = (ended && fits(head.len() as u64, max_spans)).then_some(head.as_slice());
            if let Some(stats) = small.and_then(|text| self.read_otlp_with_details(text, format)) {
                return Ok(stats);
            }
            let details = small.and_then(|text| Self::other_details(text, format));
            let rest = stdin.take(if ended { 0 } else { u64::MAX });
            // Without its details, it is copied to a spool while it is read, where they are
            // looked up as a large file's are.
            let spool = details.is_none().then(Spool::create).and_then(Result::ok);
            let (source, writer) = match spool {
                Some((spool, writer)) => (Some(Arc::new(FileSource::spooled(spool))), Some(writer)),
                None => (None, None),
            };
            let mut input = Spooling::new(io::Cursor::new(head).chain(rest), writer);
            let stats = self.read_with(details, source.as_ref(), |sink| {
                read_traces(&mut input, Path::new(STDIN), format, sink)
            })?;
            if let (Some(source), Some(format), true) = (&source, stats.format, input.is_whole()) {
                let _ = source.format.set(format);
            }
            return Ok(stats);
        }
        let small = small_file(path, max_spans);
        if let Some(stats) = small
            .as_deref()
            .and_then(|text| self.read_otlp_with_details(text, format))
        {
            return Ok(stats);
        }
        let details = small
            .as_deref()
            .and_then(|text| Self::other_details(text, format));
        // A regular file too large to be read with its details has them looked up when a span
        // is selected (a named pipe or a device cannot be read again).
        let source = (small.is_none() && std::fs::metadata(path).is_ok_and(|m| m.is_file()))
            .then(|| Arc::new(FileSource::new(path.to_path_buf(), format)));
        drop(small);
        let stats = self.read_with(details, source.as_ref(), |sink| {
            read_path(path, format, sink)
        })?;
        if let (Some(source), Some(format)) = (&source, stats.format) {
            let _ = source.format.set(format);
        }
        Ok(stats)
    }

    /// The details of a small Jaeger or Zipkin document, matched to the readers' spans.
    fn other_details(text: &[u8], format: Option<Format>) -> Option<FileDetails> {
        if matches!(format, Some(Format::OtlpJson | Format::OtlpProto)) {
            return None;
        }
        FileDetails::read(text)
    }

    /// Adds every trace `read` gives its sink, with what `details` holds of its spans.
    fn read_with(
        &self,
        mut details: Option<FileDetails>,
        source: Option<&Arc<FileSource>>,
        read: impl FnOnce(
            &mut dyn FnMut(Trace) -> io::Result<()>,
        ) -> std::result::Result<ReadStats, lightstep_analysis::Error>,
    ) -> Result<ReadStats> {
        let stats = read(&mut |trace| {
            let details = details.as_mut().map(|d| d.take(&trace)).unwrap_or_default();
            self.add_with_details(trace, details, source);
            Ok(())
        })?;
        Ok(stats)
    }

    /// Reads an OTLP file's text with its spans' details through the receiver's checks; `None`
    /// when it is not one that can be (another format, or a document that does not decode:
    /// the analysis's readers then read it, and name what is wrong).
    fn read_otlp_with_details(&self, text: &[u8], format: Option<Format>) -> Option<ReadStats> {
        if matches!(format, Some(Format::JaegerJson | Format::ZipkinJson)) {
            return None;
        }
        let body = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
        let json = matches!(
            body.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
        if format
            == Some(if json {
                Format::OtlpProto
            } else {
                Format::OtlpJson
            })
        {
            return None;
        }
        let received = receive_otlp(body, json)?;
        let mut stats = ReadStats::default();
        stats.format = Some(if json {
            Format::OtlpJson
        } else {
            Format::OtlpProto
        });
        for trace in received.take_traces() {
            stats.traces += 1;
            stats.spans += trace.spans().len();
            self.add_received(&trace);
        }
        Some(stats)
    }

    /// Moves every trace the receiver completes (no new span for `idle`) into this store, from
    /// a task on the current Tokio runtime, until the returned handle is aborted or the
    /// runtime stops. The traces leave the receiver's store.
    pub fn follow_receiver(
        &self,
        receiver: lightstep_receiver::SpanStore,
        idle: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200).min(idle));
            loop {
                tick.tick().await;
                let received = receiver.take_idle_traces(idle);
                if received.is_empty() {
                    continue;
                }
                let store = store.clone();
                // Converting a large trace takes a while: not on an async worker.
                let moved = tokio::task::spawn_blocking(move || {
                    for trace in &received {
                        store.add_received(trace);
                    }
                })
                .await;
                if moved.is_err() {
                    return;
                }
            }
        })
    }

    /// Adds a trace with the details of its spans (none, or one per span), or with the file
    /// where they are looked up.
    pub(crate) fn add_with_details(
        &self,
        trace: Trace,
        details: Vec<SpanDetails>,
        source: Option<&Arc<FileSource>>,
    ) -> Added {
        // Writers take turns; the summary and the estimate of a large trace are computed
        // before the store's lock is taken, so that readers (the pages) never wait for them.
        let details: Vec<Option<SpanDetails>> = details.into_iter().map(Some).collect();
        let _turn = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = self.get(&trace.trace_id);
        let merged = previous.is_some();
        let (trace, details) = match &previous {
            Some(previous) => merge(previous, trace, details),
            None => (trace, details),
        };
        let mut stored = StoredTrace::new(trace, details, 0);
        if let Some(previous) = &previous {
            stored.sources.clone_from(&previous.sources);
        }
        if let Some(source) = source
            && !stored.sources.iter().any(|s| Arc::ptr_eq(s, source))
        {
            stored.sources.push(Arc::clone(source));
        }
        let mut state = self.write();
        let limits = state.limits;
        if stored.trace.spans.len() > limits.max_spans || stored.bytes > limits.max_bytes {
            state.refused += 1;
            return Added::Refused;
        }
        stored.seq = state.next_seq;
        state.next_seq += 1;
        if let Some(previous) = state.traces.remove(&stored.trace.trace_id) {
            state.forget(&previous);
        }
        state.spans += stored.trace.spans.len();
        state.bytes += stored.bytes;
        state
            .order
            .insert(stored.seq, stored.trace.trace_id.clone());
        state
            .traces
            .insert(stored.trace.trace_id.clone(), Arc::new(stored));
        while state.traces.len() > limits.max_traces
            || state.spans > limits.max_spans
            || state.bytes > limits.max_bytes
        {
            let Some((_, oldest)) = state.order.pop_first() else {
                break;
            };
            if let Some(evicted) = state.traces.remove(&oldest) {
                state.spans -= evicted.trace.spans.len();
                state.bytes -= evicted.bytes;
                state.evicted += 1;
            }
        }
        state.generation += 1;
        if merged { Added::Merged } else { Added::New }
    }

    /// The trace with this id, if held.
    pub(crate) fn get(&self, id: &TraceId) -> Option<Arc<StoredTrace>> {
        self.read().traces.get(id).cloned()
    }

    /// Every trace held, newest arrival first.
    pub(crate) fn all(&self) -> Vec<Arc<StoredTrace>> {
        let state = self.read();
        state
            .order
            .values()
            .rev()
            .filter_map(|id| state.traces.get(id).cloned())
            .collect()
    }
}

impl State {
    fn forget(&mut self, trace: &StoredTrace) {
        self.order.remove(&trace.seq);
        self.spans -= trace.trace.spans.len();
        self.bytes -= trace.bytes;
    }
}

/// A trace held before, extended with newly arrived spans (late spans of a trace that
/// `lightstep dev` considered complete, or a trace split over several files).
fn merge(
    previous: &StoredTrace,
    more: Trace,
    more_details: Vec<Option<SpanDetails>>,
) -> (Trace, Vec<Option<SpanDetails>>) {
    let mut spans = previous.trace.spans.clone();
    let before = spans.len();
    spans.extend(more.spans);
    let details = if previous.details.is_empty() && more_details.is_empty() {
        Vec::new()
    } else {
        let mut details = previous.details.clone();
        details.resize_with(before, || None);
        let added = spans.len() - before;
        let mut more_details = more_details;
        more_details.resize_with(added, || None);
        details.extend(more_details);
        details
    };
    (Trace::new(previous.trace.trace_id.clone(), spans), details)
}

fn summarize(trace: &Trace) -> TraceSummary {
    let spans = &trace.spans;
    let start_ns = spans.iter().map(Span::start_ns).min().unwrap_or(0);
    let end_ns = spans
        .iter()
        .map(|s| s.end_ns().max(s.start_ns()))
        .max()
        .unwrap_or(0);
    let ids: std::collections::HashSet<&SpanId> = spans.iter().map(Span::span_id).collect();
    // The root: the earliest span whose parent is not in the trace; failing that (a cycle),
    // the earliest span.
    let is_top = |s: &Span| s.parent_id().is_none_or(|p| !ids.contains(p));
    let root = spans
        .iter()
        .filter(|s| is_top(s))
        .min_by_key(|s| s.start_ns())
        .or_else(|| spans.iter().min_by_key(|s| s.start_ns()));
    let mut services: HashMap<&Arc<str>, usize> = HashMap::new();
    let mut operations: std::collections::HashSet<(&Arc<str>, &Arc<str>, &'static str)> =
        std::collections::HashSet::new();
    for span in spans {
        *services.entry(span.service_arc()).or_default() += 1;
        operations.insert((span.service_arc(), span.name_arc(), span.kind().as_str()));
    }
    let mut services: Vec<(Arc<str>, usize)> =
        services.into_iter().map(|(s, n)| (s.clone(), n)).collect();
    services.sort_unstable();
    let mut operations: Vec<(Arc<str>, Arc<str>, &'static str)> = operations
        .into_iter()
        .map(|(s, o, kind)| (s.clone(), o.clone(), kind))
        .collect();
    operations.sort_unstable();
    TraceSummary {
        trace_id: trace.trace_id.to_string(),
        root_service: root.map_or_else(|| Arc::from(""), |s| s.service_arc().clone()),
        root_operation: root.map_or_else(|| Arc::from(""), |s| s.name_arc().clone()),
        start_ns,
        end_ns,
        spans: spans.len(),
        errors: spans.iter().filter(|s| s.status() == Status::Error).count(),
        services,
        operations,
    }
}

/// An estimate of the memory a trace takes while held, from its sizes (not measured).
fn weigh(trace: &Trace, details: &[Option<SpanDetails>]) -> usize {
    let mut bytes = 0usize;
    for span in &trace.spans {
        bytes +=
            SPAN_OVERHEAD + std::mem::size_of_val(span.links()) + span.host().map_or(0, str::len);
    }
    // Names are shared between spans of the same service and operation: counted once each.
    let mut names = std::collections::HashSet::new();
    for span in &trace.spans {
        for name in [span.service_arc(), span.name_arc()] {
            if names.insert(Arc::as_ptr(name)) {
                bytes += name.len() + 16;
            }
        }
    }
    let mut shared = std::collections::HashSet::new();
    for d in details.iter().flatten() {
        bytes += weigh_own_details(d);
        if shared.insert(Arc::as_ptr(&d.resource) as usize) {
            bytes += weigh_attributes(&d.resource);
        }
        if shared.insert(Arc::as_ptr(&d.scope) as usize) {
            bytes += d.scope.name.len() + d.scope.version.len();
            bytes += weigh_attributes(&d.scope.attributes);
        }
    }
    bytes
}

/// An estimate of the memory a span's details take, beyond its resource and scope (which
/// its neighbours share) and beyond what [`SPAN_OVERHEAD`] counts.
fn weigh_own_details(d: &SpanDetails) -> usize {
    let mut bytes = weigh_attributes(&d.attributes) + d.status_message.len();
    for event in &d.events {
        bytes += std::mem::size_of::<Event>() + event.name.len();
        bytes += weigh_attributes(&event.attributes);
    }
    for link in &d.links {
        bytes += std::mem::size_of::<LinkDetails>() + weigh_attributes(&link.attributes);
    }
    bytes
}

/// [`weigh_own_details`] with the details themselves, held apart from a trace.
pub(crate) fn weigh_details(d: &SpanDetails) -> usize {
    std::mem::size_of::<(usize, SpanDetails)>() + weigh_own_details(d)
}

fn weigh_attributes(attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| ATTRIBUTE_OVERHEAD + kv.key.len() + weigh_value(&kv.value))
        .sum()
}

fn weigh_value(value: &Value) -> usize {
    match value {
        Value::Str(s) => s.len(),
        Value::Bytes(b) => b.len(),
        Value::Array(values) => values
            .iter()
            .map(|v| std::mem::size_of::<Value>() + weigh_value(v))
            .sum(),
        Value::Map(kvs) => weigh_attributes(kvs),
        Value::Bool(_) | Value::Int(_) | Value::Double(_) | Value::Empty => 0,
    }
}

/// An OTLP document (protobuf, JSON or JSON Lines) taken as the receiver takes an export, in
/// a store of its own; `None` when it does not decode, holds no span, or holds one the
/// receiver refuses (no id, say: an error the analysis's readers report). Jaeger's and
/// Zipkin's JSON hold no OTLP field, so nothing is taken from them.
pub(crate) fn receive_otlp(body: &[u8], json: bool) -> Option<SpanStore> {
    let received = SpanStore::standalone(usize::MAX, usize::MAX);
    let spans = if !json {
        received.ingest_request(body, false).ok()?
    } else if let Ok(spans) = received.ingest_request(body, true) {
        spans
    } else {
        // JSON Lines: one request per line.
        let mut spans = 0;
        for line in body.split(|&b| b == b'\n') {
            if !line.iter().all(u8::is_ascii_whitespace) {
                spans += received.ingest_request(line, true).ok()?;
            }
        }
        spans
    };
    (spans > 0 && received.stats().spans_rejected_invalid == 0).then_some(received)
}

/// The whole text of a regular file of up to [`DETAILED_FILE_BYTES`]; `None` for anything
/// else or a larger file (which the analysis's readers then read as a stream).
///
/// Nor one that may hold more spans than the store keeps (`max_spans`): its details would be
/// read for spans pushed out at once, and the file held whole, where the readers hold only what
/// the store keeps.
fn small_file(path: &Path, max_spans: usize) -> Option<Vec<u8>> {
    // Looked at before it is opened: opening a named pipe waits for its writer, and a second
    // open (the readers') would then find none.
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file()
        || metadata.len() > DETAILED_FILE_BYTES
        || !fits(metadata.len(), max_spans)
    {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut text = Vec::new();
    file.take(DETAILED_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .ok()?;
    (text.len() as u64 <= DETAILED_FILE_BYTES).then_some(text)
}

/// Whether `bytes` of a document cannot hold more spans than the store keeps.
fn fits(bytes: u64, max_spans: usize) -> bool {
    // The fewest bytes a span takes in a file: a bare Zipkin span is about fifty, a protobuf
    // one a little over thirty.
    const MIN_SPAN_BYTES: u64 = 32;
    bytes / MIN_SPAN_BYTES <= u64::try_from(max_spans).unwrap_or(u64::MAX)
}

/// A received trace in the analysis model, with the details of each span in the same order.
pub(crate) fn received_to_parts(
    received: &lightstep_receiver::Trace,
) -> Option<(Trace, Vec<SpanDetails>)> {
    let trace = received.to_analysis()?;
    let request = received.to_otlp();
    let mut resources: Vec<(&OtlpResource, Arc<Vec<KeyValue>>)> = Vec::new();
    let mut scopes: Vec<(&InstrumentationScope, Arc<Scope>)> = Vec::new();
    let mut details = Vec::with_capacity(trace.spans.len());
    let mut ids = Vec::with_capacity(trace.spans.len());
    // The analysis reader walks the request in this order (resource, scope, span).
    for resource_spans in &request.resource_spans {
        let resource = match &resource_spans.resource {
            Some(resource) => shared(&mut resources, resource, |r| {
                convert_attributes(&r.attributes)
            }),
            None => Arc::default(),
        };
        for scope_spans in &resource_spans.scope_spans {
            let scope = match &scope_spans.scope {
                Some(scope) => shared(&mut scopes, scope, |s| Scope {
                    name: s.name.as_str().into(),
                    version: s.version.as_str().into(),
                    attributes: convert_attributes(&s.attributes),
                }),
                None => Arc::default(),
            };
            for span in &scope_spans.spans {
                ids.push(SpanId::from_bytes(&span.span_id));
                details.push(SpanDetails {
                    attributes: convert_attributes(&span.attributes),
                    events: span
                        .events
                        .iter()
                        .map(|e| Event {
                            time_ns: e.time_unix_nano,
                            name: e.name.as_str().into(),
                            attributes: convert_attributes(&e.attributes),
                        })
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| LinkDetails {
                            trace_id: TraceId::from_bytes(&l.trace_id),
                            span_id: SpanId::from_bytes(&l.span_id),
                            attributes: convert_attributes(&l.attributes),
                        })
                        .collect(),
                    status_message: span
                        .status
                        .as_ref()
                        .map_or_else(Box::default, |s| s.message.as_str().into()),
                    resource: Arc::clone(&resource),
                    scope: Arc::clone(&scope),
                });
            }
        }
    }
    let same_order = ids.len() == trace.spans.len()
        && ids
            .iter()
            .zip(&trace.spans)
            .all(|(id, s)| id == s.span_id());
    if same_order {
        return Some((trace, details));
    }
    // Should the reader ever order spans differently, match them by id instead.
    let mut by_id: HashMap<SpanId, Vec<usize>> = HashMap::new();
    for (k, id) in ids.into_iter().enumerate().rev() {
        by_id.entry(id).or_default().push(k);
    }
    let mut slots: Vec<Option<SpanDetails>> = details.into_iter().map(Some).collect();
    let details = trace
        .spans
        .iter()
        .map(|s| {
            by_id
                .get_mut(s.span_id())
                .and_then(Vec::pop)
                .and_then(|k| slots.get_mut(k).and_then(Option::take))
                .unwrap_or_default()
        })
        .collect();
    Some((trace, details))
}

/// One shared conversion per distinct resource or scope of a trace (a handful, normally).
fn shared<'a, T: PartialEq, U>(
    seen: &mut Vec<(&'a T, Arc<U>)>,
    item: &'a T,
    convert: impl FnOnce(&T) -> U,
) -> Arc<U> {
    if let Some((_, converted)) = seen.iter().find(|(known, _)| *known == item) {
        return Arc::clone(converted);
    }
    let converted = Arc::new(convert(item));
    // Beyond a few dozen distinct ones, comparing costs more than it saves.
    if seen.len() < 64 {
        seen.push((item, Arc::clone(&converted)));
    }
    converted
}

fn convert_attributes(
    attributes: &[lightstep_receiver::proto::common::v1::KeyValue],
) -> Vec<KeyValue> {
    attributes
        .iter()
        .map(|kv| KeyValue {
            key: kv.key.as_str().into(),
            value: kv.value.as_ref().map_or(Value::Empty, convert_value),
        })
        .collect()
}

/// An OTLP value, iteratively: arrays and maps nest as deep as the sender made them.
fn convert_value(value: &AnyValue) -> Value {
    use any_value::Value as V;
    // Depth is bounded by what the receiver decoded (prost's recursion limit), so recursion
    // here is bounded too.
    match &value.value {
        None => Value::Empty,
        Some(V::StringValue(s)) => Value::Str(s.as_str().into()),
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::IntValue(i)) => Value::Int(*i),
        Some(V::DoubleValue(d)) => Value::Double(*d),
        Some(V::BytesValue(b)) => Value::Bytes(b.as_slice().into()),
        Some(V::ArrayValue(a)) => Value::Array(a.values.iter().map(convert_value).collect()),
        Some(V::KvlistValue(kv)) => Value::Map(convert_attributes(&kv.values)),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Empty,
    }
}

impl Value {
    /// The value as text, for matching a `key=value` filter and for Jaeger's string form of
    /// arrays and maps.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => d.to_string(),
            Value::Bytes(b) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(b)
            }
            Value::Array(_) | Value::Map(_) => self.to_json().to_string(),
            Value::Empty => String::new(),
        }
    }

    /// The value as JSON, typed as OTLP/JSON types it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::from(&**s),
            Value::Bool(b) => serde_json::Value::from(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map_or_else(|| serde_json::Value::from(d.to_string()), Into::into),
            Value::Bytes(_) => serde_json::Value::from(self.to_text()),
            Value::Array(values) => values.iter().map(Value::to_json).collect(),
            Value::Map(kvs) => serde_json::Value::Object(
                kvs.iter()
                    .map(|kv| (kv.key.to_string(), kv.value.to_json()))
                    .collect(),
            ),
            Value::Empty => serde_json::Value::Null,
        }
    }

    /// OTLP's name of the type.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Double(_) => "double",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Empty => "empty",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(id: u128, spans: u64) -> Trace {
        let t = TraceId::from_u128(id);
        Trace::new(
            t.clone(),
            (1..=spans)
                .map(|k| {
                    let span = Span::new(t.clone(), SpanId::from_u64(k), k, k + 10);
                    if k == 1 {
                        span
                    } else {
                        span.with_parent(SpanId::from_u64(1))
                    }
                })
                .collect(),
        )
    }

    #[test]
    fn the_oldest_traces_make_room_by_spans() {
        let store = TraceStore::new(Limits::default().with_max_spans(10));
        for id in 1..=5 {
            assert_eq!(store.add(trace(id, 4)), Added::New);
        }
        let stats = store.stats();
        assert_eq!((stats.traces, stats.spans, stats.evicted_traces), (2, 8, 3));
        assert!(store.get(&TraceId::from_u128(5)).is_some());
        assert!(store.get(&TraceId::from_u128(4)).is_some());
        assert!(store.get(&TraceId::from_u128(3)).is_none());
    }

    #[test]
    fn a_trace_larger_than_the_bounds_is_refused_and_nothing_is_evicted() {
        let store = TraceStore::new(Limits::default().with_max_spans(10));
        store.add(trace(1, 3));
        assert_eq!(store.add(trace(2, 11)), Added::Refused);
        let stats = store.stats();
        assert_eq!(
            (stats.traces, stats.refused_traces, stats.evicted_traces),
            (1, 1, 0)
        );
    }

    #[test]
    fn bytes_are_bounded_too() {
        let one = StoredTrace::new(trace(1, 100), Vec::new(), 0).bytes;
        let store = TraceStore::new(Limits::default().with_max_bytes(one * 3 / 2));
        store.add(trace(1, 100));
        store.add(trace(2, 100));
        let stats = store.stats();
        assert_eq!((stats.traces, stats.evicted_traces), (1, 1));
        assert!(stats.bytes <= one * 3 / 2);
    }

    #[test]
    fn late_spans_join_their_trace_and_move_it_to_the_newest() {
        let store = TraceStore::new(Limits::default().with_max_traces(2));
        store.add(trace(1, 2));
        store.add(trace(2, 2));
        let t = TraceId::from_u128(1);
        let late = Trace::new(
            t.clone(),
            vec![Span::new(t.clone(), SpanId::from_u64(9), 0, 1).with_parent(SpanId::from_u64(1))],
        );
        assert_eq!(store.add(late), Added::Merged);
        store.add(trace(3, 1));
        // Trace 2 is now the oldest arrival: it made room.
        assert!(store.get(&TraceId::from_u128(2)).is_none());
        let merged = store.get(&t).unwrap();
        assert_eq!(merged.trace.spans.len(), 3);
        assert_eq!(merged.summary.spans, 3);
        assert_eq!(store.stats().spans, 4);
    }

    #[test]
    fn the_summary_names_the_root_and_counts_errors() {
        let t = TraceId::from_u128(7);
        let spans = vec![
            Span::new(t.clone(), SpanId::from_u64(2), 5, 50)
                .with_parent(SpanId::from_u64(1))
                .with_service("db")
                .with_name("SELECT")
                .with_status(Status::Error),
            Span::new(t.clone(), SpanId::from_u64(1), 1, 100)
                .with_service("web")
                .with_name("GET /"),
            // An orphan that starts later than the root.
            Span::new(t.clone(), SpanId::from_u64(3), 20, 30)
                .with_parent(SpanId::from_u64(99))
                .with_service("web")
                .with_name("late"),
        ];
        let summary = summarize(&Trace::new(t, spans));
        assert_eq!(&*summary.root_service, "web");
        assert_eq!(&*summary.root_operation, "GET /");
        assert_eq!(
            (summary.start_ns, summary.end_ns, summary.errors),
            (1, 100, 1)
        );
        assert_eq!(
            summary.services,
            vec![(Arc::from("db"), 1), (Arc::from("web"), 2)]
        );
        assert_eq!(summary.operations.len(), 3);
    }
}

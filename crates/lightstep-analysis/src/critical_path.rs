//! The critical-path walk and what it reports.
//!
//! The walk is the last-finishing-child rule: starting at the end of a span, the time belongs to
//! the span itself until the latest child that finished by then; that child is walked the same
//! way, and when it is exhausted the walk resumes in the parent at the child's start. With each
//! span's children sorted latest-end first and a cursor per span that only moves forward, every
//! child is looked at once, so after the sort the walk is linear. It runs on an explicit stack.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::assemble::{AssembledTrace, NONE, OffPathReason, assemble};
use crate::model::{SpanId, Trace};

/// Which semantics to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Sound on messy data, and the path explains the request: orphans are walked beside the
    /// roots, touching siblings both count, cycles are cut, and work its parent did not wait
    /// for is reported off the path. See `docs/critical-path.md`.
    #[default]
    Robust,
    /// The sections of Jaeger UI's current code exactly, with its preprocessing, for
    /// comparison with what users see there.
    Jaeger,
}

impl Mode {
    /// Lower-case name, as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Robust => "robust",
            Self::Jaeger => "jaeger",
        }
    }
}

/// How to analyze.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Semantics.
    pub mode: Mode,
    /// Robust mode only: move a server span (and its subtree) into its client span when they ran
    /// on different hosts and the server does not fit in the client.
    pub skew_correction: bool,
}

impl Options {
    /// Options for a mode, without skew correction.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            skew_correction: false,
        }
    }

    /// Turns clock-skew correction on or off.
    #[must_use]
    pub fn with_skew_correction(mut self, on: bool) -> Self {
        self.skew_correction = on;
        self
    }
}

/// A stretch of time on the critical path owned by one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Index of the span in [`Trace::spans`].
    pub span: usize,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// End (exclusive), nanoseconds since the Unix epoch.
    pub end_ns: u64,
}

impl Section {
    /// Length in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// A stretch of the trace's window during which no top-level span was running (robust mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// End (exclusive), nanoseconds since the Unix epoch.
    pub end_ns: u64,
}

/// A span on the critical path with the time it holds there.
///
/// Its id is [`CriticalPathAnalysis::critical_spans`] at the same position (or
/// `trace.spans[span].span_id()`); its service and operation name are those of
/// [`CriticalPathAnalysis::operations`]`[operation_index]`, also given by
/// [`CriticalPathAnalysis::operation_of`], [`CriticalPathAnalysis::service_of`] and
/// [`CriticalPathAnalysis::name_of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PathSpan {
    /// Index of the span in [`Trace::spans`].
    pub span: usize,
    /// Index of its (service, operation) in [`CriticalPathAnalysis::operations`].
    pub operation_index: usize,
    /// Time on the critical path not covered by its children, in nanoseconds.
    pub self_ns: u64,
}

/// A span that ran but is not on the critical path because its parent did not wait for it
/// (robust mode): the top of a subtree that is off the path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffPath {
    /// Index of the span in [`Trace::spans`].
    pub span: usize,
    /// Its id.
    pub span_id: SpanId,
    /// Its parent's id, as the span names it.
    pub parent_id: Option<SpanId>,
    /// Service name.
    pub service: Arc<str>,
    /// Operation name.
    pub name: Arc<str>,
    /// Start, nanoseconds since the Unix epoch (as analyzed: a negative duration is an
    /// instant, skew correction may have moved it).
    pub start_ns: u64,
    /// End.
    pub end_ns: u64,
    /// Why it is off the path.
    pub reason: OffPathReason,
}

/// Critical-path time of one service or operation within one trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Share {
    /// Service name.
    pub service: Arc<str>,
    /// Operation name; `None` in the per-service list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Arc<str>>,
    /// Critical-path nanoseconds.
    pub critical_ns: u64,
    /// Fraction of the trace's duration, 0 to 1.
    pub share: f64,
}

/// What the analysis had to repair or leave out, by count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Diagnostics {
    /// Top-level spans walked (robust: roots, orphans and spans where a cycle was cut;
    /// Jaeger: the roots Jaeger UI walks, those without a parent id).
    pub roots: usize,
    /// Spans whose parent id names no span in the trace.
    pub orphans: usize,
    /// Of the orphans, those whose parent ran in a caller's process ([`Span::has_remote_parent`]:
    /// server and consumer spans, and spans OTLP marks so): usual when the caller sent no spans
    /// of its own (an uninstrumented client passing `traceparent`), so not a repair.
    ///
    /// [`Span::has_remote_parent`]: crate::Span::has_remote_parent
    pub remote_parents: usize,
    /// Spans that named themselves as parent.
    pub self_parents: usize,
    /// Cycles of parent links (robust mode cuts each at its earliest span).
    pub cycles_cut: usize,
    /// Spans sharing an id with an earlier, different span (kept as separate spans).
    pub duplicate_ids: usize,
    /// Exact copies of an earlier span, ignored (robust mode).
    pub duplicates_dropped: usize,
    /// Spans that end before they start.
    pub negative_durations: usize,
    /// Spans moved or shortened to fit in their parent.
    pub clamped: usize,
    /// Spans entirely outside their parent (robust mode: off the path, listed in
    /// [`CriticalPathAnalysis::off_path`]; Jaeger mode drops them and counts them as clamped).
    pub detached: usize,
    /// Spans that do not block their parent (robust: follows-from and consumer spans, off the
    /// path; Jaeger: consumer children of a producer, dropped).
    pub non_blocking: usize,
    /// Server spans moved into their client by skew correction.
    pub skew_applied: usize,
    /// Spans left out of the analysis (Jaeger mode's preprocessing).
    pub dropped: usize,
    /// Jaeger mode: why Jaeger UI itself shows no or a wrong path for this trace, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jaeger_failure: Option<&'static str>,
}

/// The result of analyzing one trace.
///
/// The first four fields are the original design's, kept so that code written against it finds
/// them; the others give the path in nanoseconds, the shares per service and operation, and
/// what had to be repaired.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CriticalPathAnalysis {
    /// The trace's id, as hex.
    pub trace_id: String,
    /// Ids of the spans on the critical path, in order of their first section. They print as
    /// hex (`to_string()`, `{}`) and compare equal to their hex text (`id == "eee19b7ec3c1b173"`).
    pub critical_spans: Vec<SpanId>,
    /// Length of the analyzed window (rounded to milliseconds).
    pub total_duration_ms: u64,
    /// Time covered by span sections (rounded to milliseconds); less than the total by gaps.
    pub critical_path_duration_ms: u64,
    /// Semantics used.
    pub mode: Mode,
    /// Start of the analyzed window, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// End of the analyzed window.
    pub end_ns: u64,
    /// Sections in chronological order; with `gaps` they tile the window exactly. In Jaeger
    /// mode each root Jaeger UI walks has its own path: where roots overlap in time, their
    /// sections overlap too.
    pub sections: Vec<Section>,
    /// Stretches of the window with no top-level span running (robust: roots and orphans;
    /// Jaeger: the roots it walks).
    pub gaps: Vec<Gap>,
    /// Each span on the path once, in order of first appearance.
    pub path: Vec<PathSpan>,
    /// Critical-path time per service, largest first.
    pub services: Vec<Share>,
    /// Critical-path time per (service, operation), largest first. [`PathSpan::operation_index`]
    /// indexes it: to show a top N, take a slice or a sorted copy rather than reordering or
    /// truncating it in place, which would give path spans the wrong names.
    pub operations: Vec<Share>,
    /// What was repaired.
    pub diagnostics: Diagnostics,
    /// Robust mode: spans that ran but did not block their parent (entirely outside it, or
    /// follows-from and consumer spans), in input order. They and their subtrees are not on
    /// the path and do not widen the window.
    pub off_path: Vec<OffPath>,
}

impl CriticalPathAnalysis {
    /// Length of the analyzed window in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Sum of the sections' lengths in nanoseconds.
    pub fn critical_ns(&self) -> u64 {
        self.sections.iter().map(Section::duration_ns).sum()
    }

    /// The (service, operation) of a span on the path, with its critical-path time: `None`
    /// for a `PathSpan` of another analysis whose index is out of range here.
    pub fn operation_of(&self, span: &PathSpan) -> Option<&Share> {
        self.operations.get(span.operation_index)
    }

    /// The service of a span on the path (`""` where [`Self::operation_of`] is `None`).
    pub fn service_of(&self, span: &PathSpan) -> &str {
        self.operation_of(span).map_or("", |share| &share.service)
    }

    /// The operation name of a span on the path (`""` where [`Self::operation_of`] is `None`).
    pub fn name_of(&self, span: &PathSpan) -> &str {
        self.operation_of(span)
            .and_then(|share| share.operation.as_deref())
            .unwrap_or("")
    }
}

/// Analyzes one assembled trace: the entry point for readers, the receiver and `lightstep dev`.
///
/// ```
/// use lightstep_analysis::{analyze_critical_path, Options, Span, SpanId, Trace, TraceId};
///
/// let t = TraceId::from_u128(7);
/// let trace = Trace::new(t.clone(), vec![
///     Span::new(t.clone(), SpanId::from_u64(1), 0, 100).with_name("root"),
///     Span::new(t.clone(), SpanId::from_u64(2), 10, 60).with_parent(SpanId::from_u64(1)),
/// ]);
/// let analysis = analyze_critical_path(&trace, &Options::default());
/// let owners: Vec<_> = analysis.sections.iter().map(|s| (s.span, s.start_ns, s.end_ns)).collect();
/// assert_eq!(owners, vec![(0, 0, 10), (1, 10, 60), (0, 60, 100)]);
/// ```
pub fn analyze_critical_path(trace: &Trace, options: &Options) -> CriticalPathAnalysis {
    let assembled = assemble(trace, options);
    analyze_assembled(trace, &assembled)
}

/// Analyzes a trace already assembled with [`crate::assemble`] (to share the assembly with a
/// tree view).
pub fn analyze_assembled(trace: &Trace, assembled: &AssembledTrace) -> CriticalPathAnalysis {
    let mut out = CriticalPathAnalysis::empty(assembled.mode());
    analyze_assembled_into(trace, assembled, &mut out);
    out
}

/// Analyzes trace after trace with the same options, reusing the memory of the previous
/// result: for bulk work (aggregating many traces, the command line), where a million-span
/// trace would otherwise fault in some 90 MB of fresh pages for its sections, path and ids
/// every time.
///
/// ```
/// use lightstep_analysis::{Analyzer, CriticalPathAnalysis, Options, Span, SpanId, Trace, TraceId};
///
/// let mut analyzer = Analyzer::new(Options::default());
/// let mut analysis = CriticalPathAnalysis::default();
/// for n in 1..=3u64 {
///     let t = TraceId::from_u128(u128::from(n));
///     let trace = Trace::new(t.clone(), vec![Span::new(t, SpanId::from_u64(n), 0, 100 * n)]);
///     analyzer.analyze_into(&trace, &mut analysis);
///     assert_eq!(analysis.critical_ns(), 100 * n);
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Analyzer {
    options: Options,
}

impl Analyzer {
    /// An analyzer for the given options.
    pub fn new(options: Options) -> Self {
        Self { options }
    }

    /// The options it analyzes with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Analyzes `trace`, like [`analyze_critical_path`].
    pub fn analyze(&mut self, trace: &Trace) -> CriticalPathAnalysis {
        analyze_critical_path(trace, &self.options)
    }

    /// Analyzes `trace` into `out`, replacing everything in it but keeping its memory.
    pub fn analyze_into(&mut self, trace: &Trace, out: &mut CriticalPathAnalysis) {
        let assembled = assemble(trace, &self.options);
        analyze_assembled_into(trace, &assembled, out);
    }
}

impl Default for CriticalPathAnalysis {
    /// An empty analysis, to be filled by [`Analyzer::analyze_into`].
    fn default() -> Self {
        Self::empty(Mode::default())
    }
}

impl CriticalPathAnalysis {
    fn empty(mode: Mode) -> Self {
        Self {
            trace_id: String::new(),
            critical_spans: Vec::new(),
            total_duration_ms: 0,
            critical_path_duration_ms: 0,
            mode,
            start_ns: 0,
            end_ns: 0,
            sections: Vec::new(),
            gaps: Vec::new(),
            path: Vec::new(),
            services: Vec::new(),
            operations: Vec::new(),
            diagnostics: Diagnostics::default(),
            off_path: Vec::new(),
        }
    }
}

/// Like [`analyze_assembled`], into an earlier result whose memory is reused (see
/// [`Analyzer`]).
pub fn analyze_assembled_into(
    trace: &Trace,
    assembled: &AssembledTrace,
    out: &mut CriticalPathAnalysis,
) {
    let n = assembled.len();
    let Walked {
        start: start_ns,
        end: end_ns,
        jaeger_failure,
    } = walk(assembled, &mut out.sections, &mut out.gaps);
    let sections = &out.sections;

    // The path in order of first appearance, with each span's self time (`position` maps a
    // span to its entry) and its (service, operation), and the original design's ids in the
    // same order.
    let spans = &trace.spans;
    let mut position = vec![NONE; n];
    let path = &mut out.path;
    let ids = &mut out.critical_spans;
    path.clear();
    ids.clear();
    path.reserve(sections.len().min(n));
    ids.reserve(sections.len().min(n));
    let mut operations = Operations::default();
    for section in sections {
        let Some(slot) = position.get_mut(section.span) else {
            continue;
        };
        if *slot == NONE {
            let Some(span) = spans.get(section.span) else {
                continue;
            };
            *slot = path.len() as u32;
            ids.push(span.span_id().clone());
            path.push(PathSpan {
                span: section.span,
                operation_index: operations.number(span),
                self_ns: 0,
            });
        }
        if let Some(entry) = path.get_mut(*slot as usize) {
            entry.self_ns += section.duration_ns();
            operations.add(entry.operation_index, section.duration_ns());
        }
    }
    drop(position);
    let window = end_ns.saturating_sub(start_ns);
    let critical: u64 = sections.iter().map(Section::duration_ns).sum();
    operations.rank(path, window, &mut out.operations, &mut out.services);
    out.trace_id.clear();
    {
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = write!(out.trace_id, "{}", trace.trace_id);
    }
    out.total_duration_ms = ns_to_ms(window);
    out.critical_path_duration_ms = ns_to_ms(critical);
    out.mode = assembled.mode();
    out.start_ns = start_ns;
    out.end_ns = end_ns;
    out.diagnostics = assembled.diagnostics.clone();
    if let Some(reason) = jaeger_failure {
        out.diagnostics.jaeger_failure.get_or_insert(reason);
    }
    out.off_path.clear();
    out.off_path
        .extend(assembled.off_path().filter_map(|(index, reason)| {
            let span = trace.spans.get(index)?;
            let (start_ns, end_ns) = assembled.window(index)?;
            Some(OffPath {
                span: index,
                span_id: span.span_id().clone(),
                parent_id: span.parent_id().cloned(),
                service: span.service_arc().clone(),
                name: span.name_arc().clone(),
                start_ns,
                end_ns,
                reason,
            })
        }));
}

fn ns_to_ms(ns: u64) -> u64 {
    ns / 1_000_000 + u64::from(ns % 1_000_000 >= 500_000)
}

/// The (service, operation) pairs of a path, numbered in order of first appearance, with their
/// critical-path time.
#[derive(Default)]
struct Operations<'t> {
    /// Service and operation name of each number.
    names: Vec<(&'t Arc<str>, &'t Arc<str>)>,
    /// Critical-path nanoseconds of each number.
    totals: Vec<u64>,
    /// The numbers by name. Keyed by borrowed names with a fast hash: a million path spans
    /// cost at most a million short string hashes into a small, cache-resident map.
    by_name: HashMap<(&'t str, &'t str), usize, foldhash::fast::RandomState>,
    /// The number given last: consecutive path spans usually share their names (often the very
    /// same allocation), which is checked before hashing.
    last: Option<usize>,
}

impl<'t> Operations<'t> {
    fn number(&mut self, span: &'t crate::Span) -> usize {
        let (service, name) = (span.service_arc(), span.name_arc());
        let same = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
        if let Some(k) = self.last
            && let Some(&(s, o)) = self.names.get(k)
            && same(s, service)
            && same(o, name)
        {
            return k;
        }
        let next = self.names.len();
        let k = *self.by_name.entry((service, name)).or_insert(next);
        if k == next {
            self.names.push((service, name));
            self.totals.push(0);
        }
        self.last = Some(k);
        k
    }

    fn add(&mut self, k: usize, ns: u64) {
        if let Some(total) = self.totals.get_mut(k) {
            *total += ns;
        }
    }

    /// Fills the per-operation and per-service shares, largest first (ties by name), and
    /// renumbers the path's operations to their rank.
    fn rank(
        self,
        path: &mut [PathSpan],
        window: u64,
        operations: &mut Vec<Share>,
        services: &mut Vec<Share>,
    ) {
        let Self { names, totals, .. } = self;
        let share = |ns: u64| {
            if window == 0 {
                0.0
            } else {
                ns as f64 / window as f64
            }
        };
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| {
            totals[b]
                .cmp(&totals[a])
                .then_with(|| names[a].0.cmp(names[b].0))
                .then_with(|| names[a].1.cmp(names[b].1))
        });
        let mut rank = vec![0; names.len()];
        for (r, &k) in order.iter().enumerate() {
            rank[k] = r;
        }
        for p in path.iter_mut() {
            p.operation_index = rank
                .get(p.operation_index)
                .copied()
                .unwrap_or(p.operation_index);
        }
        operations.clear();
        operations.extend(order.iter().map(|&k| Share {
            service: names[k].0.clone(),
            operation: Some(names[k].1.clone()),
            critical_ns: totals[k],
            share: share(totals[k]),
        }));

        let mut by_service: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
        services.clear();
        for op in operations.iter() {
            let k = *by_service.entry(&op.service).or_insert(services.len());
            if k == services.len() {
                services.push(Share {
                    service: op.service.clone(),
                    operation: None,
                    critical_ns: 0,
                    share: 0.0,
                });
            }
            services[k].critical_ns += op.critical_ns;
        }
        for s in services.iter_mut() {
            s.share = share(s.critical_ns);
        }
        services.sort_by(|a, b| {
            b.critical_ns
                .cmp(&a.critical_ns)
                .then_with(|| a.service.cmp(&b.service))
        });
    }
}

struct Frame {
    /// Span index, or `NONE` for the virtual root that holds the top-level spans.
    node: u32,
    /// The walk's current time in this span: everything after it is already attributed.
    time: u64,
    /// Jaeger UI picks the first child unconditionally on entering a span.
    entering: bool,
}

/// The analyzed window, and in Jaeger mode why Jaeger UI's own walk goes wrong, if it does.
struct Walked {
    start: u64,
    end: u64,
    jaeger_failure: Option<&'static str>,
}

/// Fills `sections` and `gaps` and returns the analyzed window.
///
/// Robust mode walks one virtual root whose children are the top-level spans, so its sections
/// and gaps are chronological and tile the window. Jaeger mode walks each of Jaeger UI's roots
/// in turn; their sections are then put in order of start (roots that overlap in time give
/// overlapping sections, as Jaeger UI draws them), and the stretches where no root runs are
/// the gaps.
fn walk(assembled: &AssembledTrace, sections: &mut Vec<Section>, gaps: &mut Vec<Gap>) -> Walked {
    let n = assembled.len();
    let jaeger = assembled.mode() == Mode::Jaeger;
    // Every visit of a span emits at most two sections (before its chosen child, and its own
    // start when it is exhausted): reserving the bound costs address space, not memory, and
    // saves copying a growing array of millions of sections.
    sections.clear();
    gaps.clear();
    sections.reserve(2 * n + 1);

    let tops = assembled.child_slice(n);
    let mut bounds: Option<(u64, u64)> = None;
    for &top in tops {
        let (s, e) = assembled.win(top);
        bounds = Some(match bounds {
            Some((bs, be)) => (bs.min(s), be.max(e)),
            None => (s, e),
        });
    }
    let Some((start, end)) = bounds else {
        return Walked {
            start: 0,
            end: 0,
            jaeger_failure: None,
        };
    };
    let mut walker = Walker {
        assembled,
        jaeger,
        virtual_root: n as u32,
        window: (start, end),
        // Cursor per span into its children row, plus one for the virtual root.
        cursor: assembled.offsets_through(n).to_vec(),
        // As deep as the trace (a chain of a million spans is a million frames): reserved once.
        stack: Vec::with_capacity(n + 1),
        sections,
        gaps,
        jaeger_failure: None,
    };
    if jaeger {
        for &root in tops {
            let from = walker.sections.len();
            walker.run(root);
            if let Some(own) = walker.sections.get_mut(from..) {
                own.reverse();
            }
        }
    } else {
        walker.run(walker.virtual_root);
        walker.sections.reverse();
        walker.gaps.reverse();
    }
    let jaeger_failure = walker.jaeger_failure;
    if jaeger {
        if !sections.is_sorted_by_key(|s| s.start_ns) {
            // Stable: within one root the sections are chronological already.
            sections.sort_by_key(|s| s.start_ns);
        }
        // The roots are in order of start.
        let mut covered: Option<u64> = None;
        for &root in tops {
            let (s, e) = assembled.win(root);
            if let Some(c) = covered
                && s > c
            {
                gaps.push(Gap {
                    start_ns: c,
                    end_ns: s,
                });
            }
            covered = Some(covered.map_or(e.max(s), |c| c.max(e)));
        }
    }
    Walked {
        start,
        end,
        jaeger_failure,
    }
}

/// The last-finishing-child walk, on an explicit stack.
struct Walker<'a> {
    assembled: &'a AssembledTrace,
    jaeger: bool,
    virtual_root: u32,
    /// The window of the virtual root.
    window: (u64, u64),
    cursor: Vec<u32>,
    stack: Vec<Frame>,
    /// Pushed latest first.
    sections: &'a mut Vec<Section>,
    gaps: &'a mut Vec<Gap>,
    jaeger_failure: Option<&'static str>,
}

impl Walker<'_> {
    fn window_of(&self, node: u32) -> (u64, u64) {
        if node == self.virtual_root {
            self.window
        } else {
            self.assembled.win(node)
        }
    }

    fn emit(&mut self, node: u32, from: u64, to: u64) {
        // Empty sections carry nothing. Reversed ones only arise from negative durations in
        // Jaeger mode: Jaeger UI draws them, and walks back into the span that ends before it
        // starts without end; the analysis leaves them out and reports the failure.
        if from >= to {
            if from > to && self.jaeger {
                self.jaeger_failure
                    .get_or_insert("a span ends before it starts");
            }
            return;
        }
        if node == self.virtual_root {
            self.gaps.push(Gap {
                start_ns: from,
                end_ns: to,
            });
        } else {
            self.sections.push(Section {
                span: node as usize,
                start_ns: from,
                end_ns: to,
            });
        }
    }

    /// Walks `top` (a span, or the virtual root) from its end to its start.
    fn run(&mut self, top: u32) {
        let assembled = self.assembled;
        let jaeger = self.jaeger;
        let virtual_root = self.virtual_root;
        self.stack.clear();
        self.stack.push(Frame {
            node: top,
            time: self.window_of(top).1,
            entering: true,
        });
        while let Some(frame) = self.stack.last_mut() {
            let node = frame.node;
            let time = frame.time;
            let entering = std::mem::replace(&mut frame.entering, false);
            let mut next = None;
            let Some(slot) = self.cursor.get_mut(node as usize) else {
                break;
            };
            let stop = assembled.offset(node as usize + 1);
            while *slot < stop {
                let child = assembled.child_at(*slot);
                *slot += 1;
                let (child_start, child_end) = assembled.win(child);
                // Robust: a child that finished exactly when the walk reached it counts
                // (touching siblings both count); under the virtual root any top-level span
                // still running counts too, so that a gap really means no top-level span was
                // running.
                // Jaeger UI: strictly before, except on entering a span.
                let eligible = if jaeger {
                    entering || child_end < time
                } else {
                    child_end <= time || (node == virtual_root && child_start < time)
                };
                if eligible {
                    next = Some(child);
                    break;
                }
            }
            match next {
                Some(child) => {
                    let child_end = assembled.win(child).1.min(time);
                    self.emit(node, child_end, time);
                    self.stack.push(Frame {
                        node: child,
                        time: child_end,
                        entering: true,
                    });
                }
                None => {
                    let own_start = self.window_of(node).0;
                    self.emit(node, own_start, time);
                    self.stack.pop();
                    if let Some(parent) = self.stack.last_mut() {
                        parent.time = own_start;
                        if jaeger && own_start == 0 {
                            // Jaeger UI takes a returning time of 0 for none given, enters the
                            // parent again and walks the same way forever.
                            self.jaeger_failure.get_or_insert(
                                "a span below a root starts at time 0 (the Unix epoch), \
                                 where Jaeger UI walks forever",
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Span, SpanId, SpanKind, TraceId};

    fn trace(spans: &[(u64, Option<u64>, u64, u64)]) -> Trace {
        let t = TraceId::from_u128(9);
        Trace::new(
            t.clone(),
            spans
                .iter()
                .map(|&(id, parent, s, e)| {
                    let span = Span::new(t.clone(), SpanId::from_u64(id), s, e);
                    match parent {
                        Some(p) => span.with_parent(SpanId::from_u64(p)),
                        None => span,
                    }
                })
                .collect(),
        )
    }

    fn owners(a: &CriticalPathAnalysis) -> Vec<(usize, u64, u64)> {
        a.sections
            .iter()
            .map(|s| (s.span, s.start_ns, s.end_ns))
            .collect()
    }

    #[test]
    fn touching_siblings_both_count_in_robust_but_not_in_jaeger() {
        let t = trace(&[
            (1, None, 100, 200),
            (2, Some(1), 100, 150),
            (3, Some(1), 150, 200),
        ]);
        let robust = analyze_critical_path(&t, &Options::new(Mode::Robust));
        assert_eq!(owners(&robust), vec![(1, 100, 150), (2, 150, 200)]);
        let jaeger = analyze_critical_path(&t, &Options::new(Mode::Jaeger));
        assert_eq!(owners(&jaeger), vec![(0, 100, 150), (2, 150, 200)]);
    }

    #[test]
    fn orphans_are_walked_with_a_gap_between() {
        let t = trace(&[(1, None, 100, 200), (2, Some(99), 300, 400)]);
        let a = analyze_critical_path(&t, &Options::default());
        assert_eq!(owners(&a), vec![(0, 100, 200), (1, 300, 400)]);
        assert_eq!(
            a.gaps,
            vec![Gap {
                start_ns: 200,
                end_ns: 300
            }]
        );
        assert_eq!(a.diagnostics.orphans, 1);
        let jaeger = analyze_critical_path(&t, &Options::new(Mode::Jaeger));
        assert_eq!(owners(&jaeger), vec![(0, 100, 200)]);
        assert_eq!(jaeger.diagnostics.dropped, 1);
    }

    #[test]
    fn consumers_do_not_block_their_producer() {
        let t = TraceId::from_u128(1);
        let spans = vec![
            Span::new(t.clone(), SpanId::from_u64(1), 100, 200).with_kind(SpanKind::Producer),
            Span::new(t.clone(), SpanId::from_u64(2), 150, 400)
                .with_parent(SpanId::from_u64(1))
                .with_kind(SpanKind::Consumer),
        ];
        let a = analyze_critical_path(&Trace::new(t, spans), &Options::default());
        // The producer's request took 100; the consumer's work is reported, not added to it.
        assert_eq!(owners(&a), vec![(0, 100, 200)]);
        assert_eq!((a.start_ns, a.end_ns), (100, 200));
        assert_eq!(a.diagnostics.non_blocking, 1);
        let off: Vec<_> = a.off_path.iter().map(|o| (o.span, o.reason)).collect();
        assert_eq!(off, vec![(1, OffPathReason::NonBlocking)]);
    }

    #[test]
    fn a_deep_chain_needs_no_deep_stack() {
        let n = 200_000u64;
        let spans: Vec<_> = (0..n)
            .map(|i| (i + 1, if i == 0 { None } else { Some(i) }, i, 2 * n - i))
            .collect();
        let a = analyze_critical_path(&trace(&spans), &Options::default());
        assert_eq!(a.sections.len() as u64, 2 * n - 1);
        assert_eq!(a.critical_ns(), 2 * n);
    }

    #[test]
    fn zero_start_and_negative_durations_terminate() {
        let t = trace(&[(1, None, 0, 100), (2, Some(1), 50, 10), (3, Some(1), 0, 0)]);
        let robust = analyze_critical_path(&t, &Options::default());
        assert_eq!(robust.diagnostics.negative_durations, 1);
        assert_eq!(robust.critical_ns(), 100);
        // Jaeger UI draws reversed sections here; the analysis ends and says so.
        let jaeger = analyze_critical_path(&t, &Options::new(Mode::Jaeger));
        assert_eq!(
            jaeger.diagnostics.jaeger_failure,
            Some("a span ends before it starts")
        );
    }

    #[test]
    fn skew_correction_moves_the_server_into_its_client() {
        let t = TraceId::from_u128(1);
        let spans = vec![
            Span::new(t.clone(), SpanId::from_u64(1), 1000, 2000)
                .with_kind(SpanKind::Client)
                .with_host("a"),
            Span::new(t.clone(), SpanId::from_u64(2), 900, 1500)
                .with_parent(SpanId::from_u64(1))
                .with_kind(SpanKind::Server)
                .with_host("b"),
        ];
        let trace = Trace::new(t, spans);
        let a = analyze_critical_path(&trace, &Options::default().with_skew_correction(true));
        assert_eq!(a.diagnostics.skew_applied, 1);
        assert_eq!(
            owners(&a),
            vec![(0, 1000, 1200), (1, 1200, 1800), (0, 1800, 2000)]
        );
        let plain = analyze_critical_path(&trace, &Options::default());
        assert_eq!(plain.diagnostics.skew_applied, 0);
        assert_eq!(plain.diagnostics.clamped, 1);
    }
}

//! Calling contexts: critical-path time summed per chain of (service, operation) from a trace's
//! top-level span down to the span that held the path, across many traces (the aggregation
//! CRISP does), for folded stacks, flame graphs and comparisons.
//!
//! A trace adds to a trie of contexts and is then forgotten: memory follows the number of
//! distinct contexts (and, when a comparison asks for them, one value per trace and context on
//! its path), never the traces. Only the spans on the critical path and their ancestors are
//! placed in a context, each once, by loops over the assembled forest's parent links, so a
//! million-deep chain costs no call stack.
//!
//! Two foldings keep a context bounded and say so in the frame rather than dropping anything:
//! a span with the same (service, operation) as its parent (direct recursion) joins its
//! parent's frame, which then reads `svc:op (xN)`; and frames beyond
//! [`ContextOptions::max_depth`] are folded into one `…(N more)` frame that holds the time of
//! everything below it. `docs/critical-path.md` has the rules and ADR 105 the reasons.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::render::printable;
use crate::{AssembledTrace, CriticalPathAnalysis, Span, Trace};

/// How deep a context goes before the rest is folded into one frame, unless told otherwise.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Marks "no node" and "the top of the trie" in the index arrays.
const NONE: u32 = u32::MAX;
/// The frame id of a node that folds everything deeper than the limit.
const DEEPER: u32 = u32::MAX;

/// How contexts are formed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContextOptions {
    /// Frames kept from the top of a context; deeper spans are folded into one frame below the
    /// last kept one. At least 1.
    pub max_depth: usize,
    /// Start every context of a trace at the trace's entry point (its root's service and
    /// operation), so that contexts are grouped per entry point: orphans and further roots
    /// then sit under the entry point instead of beside it.
    pub by_root: bool,
    /// Keep each context's critical-path time per trace, which a comparison needs (one value
    /// per trace and context on its path); without it only the totals are kept.
    pub samples: bool,
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
            by_root: false,
            samples: false,
        }
    }
}

impl ContextOptions {
    /// Frames kept from the top of a context (at least 1).
    #[must_use]
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth.max(1);
        self
    }

    /// Groups contexts per entry point.
    #[must_use]
    pub fn with_by_root(mut self, by_root: bool) -> Self {
        self.by_root = by_root;
        self
    }

    /// Keeps the per-trace values of each context.
    #[must_use]
    pub fn with_samples(mut self, samples: bool) -> Self {
        self.samples = samples;
        self
    }
}

/// One frame of a calling context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Frame {
    /// Spans of one (service, operation).
    Operation {
        /// Service name.
        service: Arc<str>,
        /// Operation name.
        operation: Arc<str>,
        /// The most consecutive calls of this frame (a span whose parent has the same service
        /// and operation: direct recursion) folded into it in any trace; 1 without recursion.
        repeat: u32,
    },
    /// Spans deeper than the depth limit, with everything below them.
    Deeper {
        /// The most frames folded here in any trace.
        frames: u32,
    },
}

impl Frame {
    /// The frame as a folded-stack line shows it: `service:operation`, with ` (xN)` after a
    /// folded recursion, or `…(N more)` for the frames beyond the depth limit. Names are made
    /// safe for the format and for a terminal: control and bidirectional formatting characters
    /// are written as visible escapes ([`printable`]) and `;` as `\u{3b}`, so a name can
    /// neither end the line nor split the frame. An empty service reads `(unknown)`.
    pub fn label(&self) -> String {
        match self {
            Self::Operation {
                service,
                operation,
                repeat,
            } => {
                let mut out = String::with_capacity(service.len() + operation.len() + 8);
                if service.is_empty() {
                    out.push_str("(unknown)");
                } else {
                    push_escaped(&mut out, service);
                }
                out.push(':');
                push_escaped(&mut out, operation);
                if *repeat > 1 {
                    out.push_str(&format!(" (x{repeat})"));
                }
                out
            }
            Self::Deeper { frames } => format!("…({frames} more)"),
        }
    }

    /// The service, or `None` for a folded [`Frame::Deeper`].
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::Operation { service, .. } => Some(service),
            Self::Deeper { .. } => None,
        }
    }

    /// What identifies the frame within its parent, whatever the counts in its label.
    pub(crate) fn key(&self) -> FrameKey {
        match self {
            Self::Operation {
                service, operation, ..
            } => FrameKey::Operation(service.clone(), operation.clone()),
            Self::Deeper { .. } => FrameKey::Deeper,
        }
    }

    /// The same frame with the larger of both counts in its label.
    pub(crate) fn merge_counts(&mut self, other: &Frame) {
        match (self, other) {
            (Self::Operation { repeat, .. }, Self::Operation { repeat: r, .. }) => {
                *repeat = (*repeat).max(*r);
            }
            (Self::Deeper { frames }, Self::Deeper { frames: f }) => *frames = (*frames).max(*f),
            _ => {}
        }
    }
}

/// A frame without its counts: how two trees' frames are matched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FrameKey {
    Operation(Arc<str>, Arc<str>),
    Deeper,
}

fn push_escaped(out: &mut String, name: &str) {
    let safe = printable(name);
    if safe.contains(';') {
        out.push_str(&safe.replace(';', "\\u{3b}"));
    } else {
        out.push_str(&safe);
    }
}

/// One calling context and the critical-path time spent in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ContextNode {
    /// The context this one extends, by index in [`ContextTree::nodes`]; `None` at the top.
    pub parent: Option<usize>,
    /// Its last frame.
    pub frame: Frame,
    /// Frames from the top, 1 for a top-level span.
    pub depth: usize,
    /// Critical-path time of the spans in exactly this context, summed over all traces,
    /// nanoseconds.
    pub self_ns: u128,
    /// Traces whose critical path went through this context (here or deeper).
    pub traces: usize,
    /// With [`ContextOptions::samples`]: for each trace with critical-path time in exactly
    /// this context, that time in nanoseconds, in the order the traces were added.
    pub samples: Vec<u64>,
}

/// The contexts of all traces added to a [`ContextAggregator`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ContextTree {
    /// Traces added.
    pub traces: usize,
    /// Their durations summed, nanoseconds.
    pub total_duration_ns: u128,
    /// Their critical-path time summed (the sum of every node's `self_ns`), nanoseconds.
    pub critical_ns: u128,
    /// Whether contexts start at their trace's entry point ([`ContextOptions::by_root`]).
    pub by_root: bool,
    /// Frames kept before the rest is folded ([`ContextOptions::max_depth`]).
    pub max_depth: usize,
    /// Every context with critical-path time in it or below it, a parent before its children.
    pub nodes: Vec<ContextNode>,
}

impl ContextTree {
    /// The indices of a context's frames, from the top down to `index` itself.
    pub fn path(&self, index: usize) -> Vec<usize> {
        let mut path = Vec::new();
        let mut at = Some(index);
        // Parents precede their children, so the walk ends; the bound makes sure of it.
        while let Some(i) = at.filter(|&i| i < self.nodes.len() && path.len() <= index) {
            path.push(i);
            at = self.nodes[i].parent;
        }
        path.reverse();
        path
    }

    /// A context as a folded-stack line shows it, without the count: its frames' labels
    /// joined by `;`.
    pub fn folded(&self, index: usize) -> String {
        let mut line = String::new();
        for (k, i) in self.path(index).into_iter().enumerate() {
            if k > 0 {
                line.push(';');
            }
            line.push_str(&self.nodes[i].frame.label());
        }
        line
    }
}

/// Adds traces' critical paths to a trie of calling contexts; [`ContextAggregator::finish`]
/// gives the [`ContextTree`].
///
/// ```
/// use lightstep_analysis::context::{ContextAggregator, ContextOptions};
/// use lightstep_analysis::{analyze_assembled, assemble, Options, Span, SpanId, Trace, TraceId};
///
/// let t = TraceId::from_u128(1);
/// let trace = Trace::new(t.clone(), vec![
///     Span::new(t.clone(), SpanId::from_u64(1), 0, 100).with_service("web").with_name("GET /"),
///     Span::new(t.clone(), SpanId::from_u64(2), 10, 70)
///         .with_parent(SpanId::from_u64(1))
///         .with_service("db")
///         .with_name("SELECT"),
/// ]);
/// let assembled = assemble(&trace, &Options::default());
/// let analysis = analyze_assembled(&trace, &assembled);
/// let mut contexts = ContextAggregator::new(ContextOptions::default());
/// contexts.add(&trace, &assembled, &analysis);
/// let tree = contexts.finish();
/// let lines: Vec<(String, u128)> =
///     (0..tree.nodes.len()).map(|i| (tree.folded(i), tree.nodes[i].self_ns)).collect();
/// assert_eq!(lines, [("web:GET /".to_string(), 40), ("web:GET /;db:SELECT".to_string(), 60)]);
/// ```
#[derive(Debug)]
pub struct ContextAggregator {
    options: ContextOptions,
    frames: Frames,
    /// Node by (parent node or `NONE` for the top, frame id or `DEEPER`).
    children: HashMap<(u32, u32), u32, foldhash::fast::RandomState>,
    nodes: Vec<Node>,
    traces: usize,
    total_duration_ns: u128,
    critical_ns: u128,
    /// Per trace, reused: each span's node, and its count within that node (consecutive
    /// calls of a recursion, or frames below the depth limit).
    node_of: Vec<u32>,
    count_of: Vec<u32>,
    /// A path span and its ancestors without a context yet, while they are placed.
    chain: Vec<u32>,
    touched: Vec<u32>,
}

#[derive(Debug)]
struct Node {
    parent: u32,
    frame: u32,
    depth: u32,
    /// The largest count of a span in this node: repeat or folded frames.
    count: u32,
    self_ns: u128,
    traces: usize,
    samples: Vec<u64>,
    /// This trace's time in the node, while the trace is added.
    trace_ns: u64,
    /// The number of the last trace that counted this node in `traces`.
    seen_in: usize,
}

/// (service, operation) pairs by id, and ids by name.
#[derive(Debug, Default)]
struct Frames {
    names: Vec<(Arc<str>, Arc<str>)>,
    by_name: HashMap<
        Arc<str>,
        HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
        foldhash::fast::RandomState,
    >,
}

impl Frames {
    fn id(&mut self, span: &Span) -> u32 {
        if let Some(&id) = self
            .by_name
            .get(span.service())
            .and_then(|ops| ops.get(span.name()))
        {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(DEEPER - 1);
        self.names
            .push((span.service_arc().clone(), span.name_arc().clone()));
        self.by_name
            .entry(span.service_arc().clone())
            .or_default()
            .insert(span.name_arc().clone(), id);
        id
    }
}

impl ContextAggregator {
    /// An empty aggregator.
    pub fn new(options: ContextOptions) -> Self {
        Self {
            options,
            frames: Frames::default(),
            children: HashMap::default(),
            nodes: Vec::new(),
            traces: 0,
            total_duration_ns: 0,
            critical_ns: 0,
            node_of: Vec::new(),
            count_of: Vec::new(),
            chain: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// The options it aggregates with.
    pub fn options(&self) -> &ContextOptions {
        &self.options
    }

    /// Traces added so far.
    pub fn traces(&self) -> usize {
        self.traces
    }

    /// Adds one trace: `analysis` must be the analysis of `assembled`, the assembly of `trace`.
    pub fn add(
        &mut self,
        trace: &Trace,
        assembled: &AssembledTrace,
        analysis: &CriticalPathAnalysis,
    ) {
        self.traces += 1;
        self.total_duration_ns += u128::from(analysis.duration_ns());
        let spans = &trace.spans;
        let n = assembled.len().min(spans.len());
        self.node_of.clear();
        self.node_of.resize(n, NONE);
        self.count_of.clear();
        self.count_of.resize(n, 0);

        // The walked top-level spans come first; the spans off the path follow them.
        let walked = assembled
            .top_level()
            .len()
            .saturating_sub(assembled.off_path().len());
        let entry = if self.options.by_root {
            entry_point(trace, assembled, walked)
        } else {
            None
        };
        let entry_node = entry.map(|e| {
            let frame = self.frames.id(&spans[e]);
            let node = self.child(NONE, frame);
            self.set(e, node, 1);
            node
        });
        for top in assembled.top_level().take(walked) {
            if top >= n || Some(top) == entry {
                continue;
            }
            let (node, count) = match entry_node {
                Some(node) => self.step(node, 1, &spans[top]),
                None => {
                    let frame = self.frames.id(&spans[top]);
                    (self.child(NONE, frame), 1)
                }
            };
            self.set(top, node, count);
        }
        // Only the spans on the path and their ancestors get a context: a trace has far more
        // spans than path spans, and the rest would cost a lookup each for nothing.
        self.touched.clear();
        for p in &analysis.path {
            if p.self_ns == 0 || p.span >= n {
                continue;
            }
            let node = self.place(assembled, spans, p.span);
            let slot = &mut self.nodes[node as usize];
            if slot.trace_ns == 0 {
                self.touched.push(node);
            }
            slot.trace_ns += p.self_ns;
        }
        let trace_number = self.traces;
        for &node in &self.touched {
            let slot = &mut self.nodes[node as usize];
            let ns = std::mem::take(&mut slot.trace_ns);
            slot.self_ns += u128::from(ns);
            self.critical_ns += u128::from(ns);
            if self.options.samples {
                slot.samples.push(ns);
            }
            let mut at = node;
            while at != NONE {
                let slot = &mut self.nodes[at as usize];
                if slot.seen_in == trace_number {
                    break;
                }
                slot.seen_in = trace_number;
                slot.traces += 1;
                at = slot.parent;
            }
        }
    }

    /// The context of span `span`, placing it and every ancestor without one first: up the
    /// parents to a placed span (a walked top-level one, or one placed for an earlier path
    /// span), then down again, so that each step sees its parent's frame and count.
    fn place(&mut self, assembled: &AssembledTrace, spans: &[Span], span: usize) -> u32 {
        let n = self.node_of.len();
        self.chain.clear();
        let mut at = span;
        let mut above = NONE;
        while self.node_of[at] == NONE {
            self.chain.push(at as u32);
            match assembled.parent(at) {
                // The bound keeps the climb finite whatever the parents are (assembly cuts
                // cycles; this does not rely on it).
                Some(parent) if parent < n && self.chain.len() <= n => {
                    if self.node_of[parent] != NONE {
                        above = parent as u32;
                        break;
                    }
                    at = parent;
                }
                _ => break,
            }
        }
        while let Some(next) = self.chain.pop() {
            let next = next as usize;
            let (node, count) = if above == NONE {
                // Not below a walked top-level span (it cannot be, as those hold the path):
                // its own frame at the top keeps its time visible.
                let frame = self.frames.id(&spans[next]);
                (self.child(NONE, frame), 1)
            } else {
                let above = above as usize;
                self.step(self.node_of[above], self.count_of[above], &spans[next])
            };
            self.set(next, node, count);
            above = next as u32;
        }
        self.node_of[span]
    }

    fn set(&mut self, span: usize, node: u32, count: u32) {
        self.node_of[span] = node;
        self.count_of[span] = count;
        let slot = &mut self.nodes[node as usize];
        slot.count = slot.count.max(count);
    }

    /// The node and count of a span under a parent's node: the parent's own node one count
    /// further when the parent folds frames or has the same frame (direct recursion), the
    /// folding node below a parent at the depth limit, else the child node of its frame.
    fn step(&mut self, parent: u32, parent_count: u32, span: &Span) -> (u32, u32) {
        let (parent_frame, parent_depth) = {
            let p = &self.nodes[parent as usize];
            (p.frame, p.depth)
        };
        if parent_frame == DEEPER {
            return (parent, parent_count.saturating_add(1));
        }
        let frame = self.frames.id(span);
        if frame == parent_frame {
            return (parent, parent_count.saturating_add(1));
        }
        if parent_depth as usize >= self.options.max_depth {
            return (self.child(parent, DEEPER), 1);
        }
        (self.child(parent, frame), 1)
    }

    fn child(&mut self, parent: u32, frame: u32) -> u32 {
        let next = u32::try_from(self.nodes.len()).unwrap_or(NONE - 1);
        let node = *self.children.entry((parent, frame)).or_insert(next);
        if node == next {
            let depth = if parent == NONE {
                1
            } else {
                self.nodes[parent as usize].depth + 1
            };
            self.nodes.push(Node {
                parent,
                frame,
                depth,
                count: 1,
                self_ns: 0,
                traces: 0,
                samples: Vec::new(),
                trace_ns: 0,
                seen_in: 0,
            });
        }
        node
    }

    /// The tree of every context with critical-path time in it or below it, a parent before
    /// its children. (Top-level spans get a context before their trace's path is looked at;
    /// those that end up without time are left out here.)
    pub fn finish(self) -> ContextTree {
        let names = self.frames.names;
        let mut keep: Vec<bool> = self.nodes.iter().map(|n| n.self_ns > 0).collect();
        // Parents precede their children: one backwards pass marks every ancestor.
        for i in (0..self.nodes.len()).rev() {
            let parent = self.nodes[i].parent;
            if keep[i] && parent != NONE {
                keep[parent as usize] = true;
            }
        }
        let mut renumbered: Vec<usize> = vec![usize::MAX; self.nodes.len()];
        let mut nodes: Vec<ContextNode> = Vec::new();
        for (i, node) in self.nodes.into_iter().enumerate() {
            if !keep[i] {
                continue;
            }
            renumbered[i] = nodes.len();
            nodes.push(ContextNode {
                parent: (node.parent != NONE)
                    .then(|| renumbered.get(node.parent as usize).copied())
                    .flatten(),
                frame: match names.get(node.frame as usize) {
                    Some((service, operation)) if node.frame != DEEPER => Frame::Operation {
                        service: service.clone(),
                        operation: operation.clone(),
                        repeat: node.count,
                    },
                    _ => Frame::Deeper { frames: node.count },
                },
                depth: node.depth as usize,
                self_ns: node.self_ns,
                traces: node.traces,
                samples: node.samples,
            });
        }
        ContextTree {
            traces: self.traces,
            total_duration_ns: self.total_duration_ns,
            critical_ns: self.critical_ns,
            by_root: self.options.by_root,
            max_depth: self.options.max_depth,
            nodes,
        }
    }
}

/// The span a trace's request entered by: among the walked top-level spans, one without a
/// parent id before an orphan, then the earliest start, the longest, the first in input.
fn entry_point(trace: &Trace, assembled: &AssembledTrace, walked: usize) -> Option<usize> {
    assembled
        .top_level()
        .take(walked)
        .filter(|&i| i < trace.spans.len())
        .min_by_key(|&i| {
            let (start, end) = assembled.window(i).unwrap_or((u64::MAX, u64::MAX));
            (
                trace.spans[i].parent_id().is_some(),
                start,
                std::cmp::Reverse(end),
                i,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mode, Options, SpanId, TraceId, analyze_assembled, assemble};

    fn span(
        t: &TraceId,
        id: u64,
        parent: Option<u64>,
        start: u64,
        end: u64,
        svc: &str,
        op: &str,
    ) -> Span {
        let s = Span::new(t.clone(), SpanId::from_u64(id), start, end)
            .with_service(svc)
            .with_name(op);
        match parent {
            Some(p) => s.with_parent(SpanId::from_u64(p)),
            None => s,
        }
    }

    fn lines(traces: &[Trace], options: ContextOptions, mode: Mode) -> Vec<(String, u128)> {
        let mut contexts = ContextAggregator::new(options);
        for trace in traces {
            let assembled = assemble(trace, &Options::new(mode));
            let analysis = analyze_assembled(trace, &assembled);
            contexts.add(trace, &assembled, &analysis);
        }
        let tree = contexts.finish();
        let mut lines: Vec<(String, u128)> = (0..tree.nodes.len())
            .filter(|&i| tree.nodes[i].self_ns > 0)
            .map(|i| (tree.folded(i), tree.nodes[i].self_ns))
            .collect();
        lines.sort();
        lines
    }

    fn owned(expected: &[(&str, u128)]) -> Vec<(String, u128)> {
        let mut v: Vec<(String, u128)> =
            expected.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        v.sort();
        v
    }

    /// web:GET [0,100] calls auth:check [10,30] then db:query [40,90], which calls
    /// cache:get [50,60].
    fn small(k: u128) -> Trace {
        let t = TraceId::from_u128(k);
        Trace::new(
            t.clone(),
            vec![
                span(&t, 1, None, 0, 100, "web", "GET"),
                span(&t, 2, Some(1), 10, 30, "auth", "check"),
                span(&t, 3, Some(1), 40, 90, "db", "query"),
                span(&t, 4, Some(3), 50, 60, "cache", "get"),
            ],
        )
    }

    #[test]
    fn contexts_sum_self_time_by_chain_across_traces() {
        let got = lines(
            &[small(1), small(2)],
            ContextOptions::default(),
            Mode::Robust,
        );
        // web: 0-10, 30-40, 90-100 = 30 per trace; auth 20; db 40; cache 10.
        assert_eq!(
            got,
            owned(&[
                ("web:GET", 60),
                ("web:GET;auth:check", 40),
                ("web:GET;db:query", 80),
                ("web:GET;db:query;cache:get", 20),
            ])
        );
    }

    #[test]
    fn the_same_operation_under_different_callers_is_two_contexts() {
        let t = TraceId::from_u128(9);
        let trace = Trace::new(
            t.clone(),
            vec![
                span(&t, 1, None, 0, 100, "web", "GET"),
                span(&t, 2, Some(1), 0, 40, "a", "x"),
                span(&t, 3, Some(2), 10, 30, "db", "query"),
                span(&t, 4, Some(1), 40, 100, "b", "y"),
                span(&t, 5, Some(4), 50, 90, "db", "query"),
            ],
        );
        let got = lines(&[trace], ContextOptions::default(), Mode::Robust);
        assert_eq!(
            got,
            owned(&[
                ("web:GET;a:x", 20),
                ("web:GET;a:x;db:query", 20),
                ("web:GET;b:y", 20),
                ("web:GET;b:y;db:query", 40),
            ])
        );
    }

    #[test]
    fn direct_recursion_is_one_frame_that_says_how_deep() {
        // f calls f calls f (each 10 of own time around its child), then g below.
        let t = TraceId::from_u128(3);
        let trace = Trace::new(
            t.clone(),
            vec![
                span(&t, 1, None, 0, 100, "svc", "f"),
                span(&t, 2, Some(1), 10, 90, "svc", "f"),
                span(&t, 3, Some(2), 20, 80, "svc", "f"),
                span(&t, 4, Some(3), 30, 70, "db", "g"),
            ],
        );
        let got = lines(&[trace], ContextOptions::default(), Mode::Robust);
        assert_eq!(got, owned(&[("svc:f (x3)", 60), ("svc:f (x3);db:g", 40)]));
    }

    #[test]
    fn frames_beyond_the_limit_are_folded_visibly_with_their_time() {
        // A chain of 10 alternating operations (no direct recursion), each 1 of own time at
        // each end; the last one 10 long.
        let t = TraceId::from_u128(4);
        let spans: Vec<Span> = (0..10u64)
            .map(|i| {
                span(
                    &t,
                    i + 1,
                    (i > 0).then_some(i),
                    i,
                    100 - i,
                    "s",
                    if i % 2 == 0 { "a" } else { "b" },
                )
            })
            .collect();
        let trace = Trace::new(t, spans);
        let all = lines(
            std::slice::from_ref(&trace),
            ContextOptions::default(),
            Mode::Robust,
        );
        assert_eq!(all.len(), 10);
        let total: u128 = all.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 100);

        let folded = lines(
            &[trace],
            ContextOptions::default().with_max_depth(4),
            Mode::Robust,
        );
        assert_eq!(
            folded,
            owned(&[
                ("s:a", 2),
                ("s:a;s:b", 2),
                ("s:a;s:b;s:a", 2),
                ("s:a;s:b;s:a;s:b", 2),
                ("s:a;s:b;s:a;s:b;…(6 more)", 92),
            ])
        );
    }

    #[test]
    fn a_million_deep_chain_needs_no_call_stack_and_folds_to_the_limit() {
        let t = TraceId::from_u128(5);
        let n = 1_000_000u64;
        let spans: Vec<Span> = (0..n)
            .map(|i| {
                let s = Span::new(t.clone(), SpanId::from_u64(i + 1), i, 2 * n - i)
                    .with_service("s")
                    .with_name(if i % 2 == 0 { "a" } else { "b" });
                if i == 0 {
                    s
                } else {
                    s.with_parent(SpanId::from_u64(i))
                }
            })
            .collect();
        let trace = Trace::new(t, spans);
        let got = lines(&[trace], ContextOptions::default(), Mode::Robust);
        assert_eq!(got.len(), DEFAULT_MAX_DEPTH + 1);
        let deepest = got.iter().find(|(l, _)| l.ends_with("more)")).unwrap();
        assert!(
            deepest
                .0
                .ends_with(&format!(";…({} more)", n as usize - DEFAULT_MAX_DEPTH))
        );
        assert_eq!(deepest.0.matches(';').count(), DEFAULT_MAX_DEPTH);
        assert_eq!(got.iter().map(|(_, v)| v).sum::<u128>(), u128::from(2 * n));
    }

    #[test]
    fn by_root_puts_orphans_under_the_entry_point() {
        let t = TraceId::from_u128(6);
        let trace = Trace::new(
            t.clone(),
            vec![
                span(&t, 1, None, 0, 100, "web", "GET"),
                span(&t, 2, Some(1), 10, 50, "db", "query"),
                // Its parent never arrived.
                span(&t, 3, Some(77), 120, 150, "mail", "send"),
            ],
        );
        let plain = lines(
            std::slice::from_ref(&trace),
            ContextOptions::default(),
            Mode::Robust,
        );
        assert_eq!(
            plain,
            owned(&[("web:GET", 60), ("web:GET;db:query", 40), ("mail:send", 30)])
        );
        let grouped = lines(
            &[trace],
            ContextOptions::default().with_by_root(true),
            Mode::Robust,
        );
        assert_eq!(
            grouped,
            owned(&[
                ("web:GET", 60),
                ("web:GET;db:query", 40),
                ("web:GET;mail:send", 30)
            ])
        );
    }

    #[test]
    fn names_cannot_break_the_format_or_reach_a_terminal() {
        let t = TraceId::from_u128(7);
        let trace = Trace::new(
            t.clone(),
            vec![
                span(&t, 1, None, 0, 100, "we;b\n", "GET 1\u{1b}[2J"),
                span(&t, 2, Some(1), 10, 50, "", "a;b 5"),
            ],
        );
        let got = lines(&[trace], ContextOptions::default(), Mode::Robust);
        assert_eq!(
            got,
            owned(&[
                ("we\\u{3b}b\\n:GET 1\\u{1b}[2J", 60),
                ("we\\u{3b}b\\n:GET 1\\u{1b}[2J;(unknown):a\\u{3b}b 5", 40),
            ])
        );
    }

    #[test]
    fn jaeger_mode_contexts_follow_its_roots() {
        // Jaeger UI drops an orphan with its subtree; robust mode walks it.
        let t = TraceId::from_u128(6);
        let trace = Trace::new(
            t.clone(),
            vec![
                span(&t, 1, None, 0, 100, "web", "GET"),
                span(&t, 2, Some(1), 10, 50, "db", "query"),
                span(&t, 3, Some(77), 120, 150, "mail", "send"),
            ],
        );
        let got = lines(&[trace], ContextOptions::default(), Mode::Jaeger);
        assert_eq!(got, owned(&[("web:GET", 60), ("web:GET;db:query", 40)]));
    }

    #[test]
    fn samples_and_trace_counts_per_context() {
        let t = TraceId::from_u128(8);
        let without_cache = Trace::new(
            t.clone(),
            vec![
                span(&t, 1, None, 0, 100, "web", "GET"),
                span(&t, 3, Some(1), 40, 90, "db", "query"),
            ],
        );
        let mut contexts = ContextAggregator::new(ContextOptions::default().with_samples(true));
        for trace in [small(1), without_cache, small(2)] {
            let assembled = assemble(&trace, &Options::default());
            let analysis = analyze_assembled(&trace, &assembled);
            contexts.add(&trace, &assembled, &analysis);
        }
        let tree = contexts.finish();
        assert_eq!(tree.traces, 3);
        assert_eq!(tree.critical_ns, 300);
        let find = |folded: &str| {
            let i = (0..tree.nodes.len())
                .find(|&i| tree.folded(i) == folded)
                .unwrap();
            &tree.nodes[i]
        };
        assert_eq!(find("web:GET;db:query;cache:get").samples, [10, 10]);
        assert_eq!(find("web:GET;db:query;cache:get").traces, 2);
        assert_eq!(find("web:GET;db:query").samples, [40, 50, 40]);
        assert_eq!(find("web:GET").traces, 3);
    }
}

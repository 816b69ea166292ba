//! Trace assembly: from a bag of spans to a sanitized forest the critical-path walk can trust.
//!
//! Everything here is a linear pass over arrays indexed by span position, plus one sort; there is
//! no recursion, so a million-deep chain costs the same stack as a single span. The rules differ
//! by [`Mode`]; `docs/critical-path.md` gives the reason for each robust rule.

use std::cmp::Reverse;
use std::collections::VecDeque;

use serde::Serialize;

use crate::model::{ParentRelation, Span, SpanKind, Trace};
use crate::parallel::SPLIT_SPANS;
use crate::resolve::{ParentIds, Partitions};
use crate::{Diagnostics, Mode, Options};

/// Marks "no span" in the index arrays.
pub(crate) const NONE: u32 = u32::MAX;

/// A trace after assembly: each span's sanitized window and the blocking children of each span,
/// sorted in the order the walk consumes them.
///
/// Indices are positions in [`Trace::spans`]. Spans that the mode excludes (Jaeger's dropped
/// subtrees, exact duplicates in robust mode) have no window and belong to no list.
#[derive(Debug, Clone)]
pub struct AssembledTrace {
    mode: Mode,
    /// Sanitized `[start, end]` per span, meaningful where `placed` is set.
    windows: Vec<(u64, u64)>,
    /// Whether the span has a sanitized window (excluded spans have none).
    placed: Vec<bool>,
    /// Parent in the assembled forest (after cycle cuts), `NONE` for top-level spans.
    parent: Vec<u32>,
    /// `children[offsets[i]..offsets[i + 1]]` are span `i`'s blocking children; range `len`
    /// holds the top-level spans the walk starts from, range `len + 1` the spans off the path.
    offsets: Vec<u32>,
    children: Vec<u32>,
    /// Why each span of range `len + 1` is off the path, in the same order.
    off_reasons: Vec<OffPathReason>,
    pub(crate) diagnostics: Diagnostics,
}

/// Why a span is not on the critical path although it ran (robust mode). Serialized in
/// snake case (`outside_parent`, `non_blocking`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OffPathReason {
    /// It lies entirely outside its parent's window, so its parent cannot have waited for it.
    OutsideParent,
    /// A follows-from or consumer span: its parent did not wait for it.
    NonBlocking,
}

impl AssembledTrace {
    /// Number of input spans (including excluded ones).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether the trace has no spans.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The mode the trace was assembled for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Sanitized window of span `index`, `None` if the mode excluded it.
    pub fn window(&self, index: usize) -> Option<(u64, u64)> {
        match self.placed.get(index) {
            Some(true) => self.windows.get(index).copied(),
            _ => None,
        }
    }

    /// Parent of span `index` in the assembled forest: `None` for top-level spans, for spans
    /// off the path (non-blocking or outside their parent's window) and for excluded spans.
    pub fn parent(&self, index: usize) -> Option<usize> {
        match self.parent.get(index) {
            Some(&p) if p != NONE => Some(p as usize),
            _ => None,
        }
    }

    /// Blocking children of span `index`, in the order the walk considers them: latest end
    /// first, then earliest start, then input order. In Jaeger mode the end is the sanitized
    /// one and the start the recorded one (after Jaeger UI's repair of a start at 0), as
    /// Jaeger UI breaks ties between equal ends by its display order.
    pub fn children(&self, index: usize) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.child_slice(index).iter().map(|&c| c as usize)
    }

    /// Spans with no blocking parent: first the ones the walk starts from (robust: roots,
    /// orphans and spans where a cycle was cut, latest-finishing first; Jaeger: the roots
    /// Jaeger UI walks, in its order), then the spans off the path ([`Self::off_path`]).
    pub fn top_level(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        let n = self.windows.len();
        let (from, to) = (self.offset(n) as usize, self.offset(n + 2) as usize);
        self.children
            .get(from..to)
            .unwrap_or(&[])
            .iter()
            .map(|&c| c as usize)
    }

    /// Spans that ran but did not block their parent, with the reason, in input order (robust
    /// mode; Jaeger mode leaves such spans out). Each is the top of a subtree that is off the
    /// critical path; it does not widen the analyzed window.
    pub fn off_path(&self) -> impl ExactSizeIterator<Item = (usize, OffPathReason)> + '_ {
        self.child_slice(self.windows.len() + 1)
            .iter()
            .zip(&self.off_reasons)
            .map(|(&c, &reason)| (c as usize, reason))
    }

    /// What assembly had to repair.
    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diagnostics
    }

    pub(crate) fn child_slice(&self, index: usize) -> &[u32] {
        let (Some(&from), Some(&to)) = (self.offsets.get(index), self.offsets.get(index + 1))
        else {
            return &[];
        };
        self.children.get(from as usize..to as usize).unwrap_or(&[])
    }

    /// The children offsets of spans `0..=last`.
    pub(crate) fn offsets_through(&self, last: usize) -> &[u32] {
        self.offsets.get(..=last).unwrap_or(&[])
    }

    pub(crate) fn offset(&self, index: usize) -> u32 {
        self.offsets.get(index).copied().unwrap_or(0)
    }

    pub(crate) fn child_at(&self, position: u32) -> u32 {
        self.children
            .get(position as usize)
            .copied()
            .unwrap_or(NONE)
    }

    /// Window of a span the caller knows is placed (every span in a children list is).
    pub(crate) fn win(&self, index: u32) -> (u64, u64) {
        self.windows.get(index as usize).copied().unwrap_or((0, 0))
    }
}

/// Copies each span's window and flags out of `spans`, which start at position `first`, and
/// counts their ids for the parent links.
fn copy_out<'a>(
    spans: &'a [Span],
    first: usize,
    partitions: &Partitions,
    windows: &mut [(u64, u64)],
    flags: &mut [u8],
) -> ParentIds<'a> {
    let mut ids = ParentIds::new(partitions);
    let rows = spans.iter().zip(windows.iter_mut().zip(flags.iter_mut()));
    for (k, (span, (window, flags))) in rows.enumerate() {
        *window = (span.start_ns(), span.end_ns());
        let mut f = 0;
        if span.relation() == ParentRelation::FollowsFrom {
            f |= FOLLOWS_FROM;
        }
        match span.kind() {
            SpanKind::Consumer => f |= CONSUMER,
            SpanKind::Producer => f |= PRODUCER,
            _ => {}
        }
        if span.parent_id().is_some() {
            f |= HAS_PARENT;
        }
        *flags = f;
        ids.push((first + k) as u32, span);
    }
    ids
}

/// Assembles a trace for the given options. Never fails: every oddity becomes a diagnostic.
pub fn assemble(trace: &Trace, options: &Options) -> AssembledTrace {
    let spans = &trace.spans;
    let n = spans.len().min(NONE as usize - 1);
    let spans = &spans[..n];
    let mut diagnostics = Diagnostics::default();
    let jaeger = options.mode == Mode::Jaeger;

    // What the passes below need from each span, copied out in one sequential pass (its two
    // halves on two threads for a large trace): the spans are large and everything after this
    // visits them in tree order, where a compact row misses the cache far less.
    let mut included = vec![true; n];
    let mut windows: Vec<(u64, u64)> = vec![(0, 0); n];
    let mut flags: Vec<u8> = vec![0; n];
    let half = n / 2;
    let (windows_low, windows_high) = windows.split_at_mut(half);
    let (flags_low, flags_high) = flags.split_at_mut(half);
    let partitions = Partitions::for_spans(n);
    let (low, high) = crate::parallel::join(
        n >= SPLIT_SPANS,
        || copy_out(&spans[..half], 0, &partitions, windows_low, flags_low),
        || copy_out(&spans[half..], half, &partitions, windows_high, flags_high),
    );

    // Parent links. The first occurrence of an id owns it (Jaeger renames later duplicates);
    // robust mode ignores exact duplicates, which are retransmissions rather than distinct work.
    let mut parent =
        ParentIds::resolve([low, high], spans, &mut included, jaeger, &mut diagnostics);

    // Cycles. Jaeger UI builds its tree from the roots down, so spans on a cycle (and below)
    // are simply never shown: the Jaeger mode counts them here and excludes them by never
    // reaching them. Robust mode finds them after its first traversal, among the spans it did
    // not reach, which saves a pass over every span when there are none.
    if jaeger {
        diagnostics.cycles_cut += find_cycles(&parent, &included).len();
    }

    // Children of each span in the raw forest (compressed rows), for top-down traversal.
    let (raw_offsets, raw_children) = group_by_parent(&parent, &included);

    // `windows` holds each span's recorded window until the traversal places it, and its
    // sanitized window after; `placed` says which.
    let mut placed = vec![false; n];
    let mut blocking_parent = vec![NONE; n];
    // The top-level spans the walk starts from.
    let mut tops: Vec<u32> = Vec::new();
    // Robust mode: why a span is off the path (0 where it is not).
    let mut off = vec![0u8; if jaeger { 0 } else { n }];
    // Jaeger mode: each span's start after Jaeger UI's repair, which orders siblings.
    let mut repaired = vec![0u64; if jaeger { n } else { 0 }];

    if jaeger {
        tops = jaeger_tree(
            &raw_offsets,
            &raw_children,
            &parent,
            &included,
            &flags,
            &mut windows,
            &mut repaired,
            &mut placed,
            &mut blocking_parent,
            &mut diagnostics,
        );
    } else {
        let roots: Vec<u32> = (0..n as u32)
            .filter(|&i| included[i as usize] && parent[i as usize] == NONE)
            .collect();
        let mut pass = Traversal {
            spans,
            raw_offsets: &raw_offsets,
            raw_children: &raw_children,
            flags: &flags,
            options,
            windows: &mut windows,
            placed: &mut placed,
            blocking_parent: &mut blocking_parent,
            off: &mut off,
            diagnostics: &mut diagnostics,
        };
        pass.run(&parent, roots, false);
        // Whatever was not reached hangs off a cycle: cut each at its earliest-starting span,
        // which becomes a root, and walk on from there.
        let unreached: Vec<bool> = (0..n).map(|i| included[i] && !pass.placed[i]).collect();
        if unreached.iter().any(|&u| u) {
            let mut cuts = Vec::new();
            for cycle in find_cycles(&parent, &unreached) {
                pass.diagnostics.cycles_cut += 1;
                if let Some(cut) = cycle
                    .iter()
                    .copied()
                    .min_by_key(|&i| (spans[i as usize].start_ns(), i))
                {
                    parent[cut as usize] = NONE;
                    cuts.push(cut);
                }
            }
            // The cut spans still sit in their old parent's row: follow only live links.
            pass.run(&parent, cuts, true);
        }
    }
    drop(parent);

    // Final children lists, sorted in walk order: latest end first, then earliest start, then
    // input order. Robust mode sorts by the sanitized window it walks on. Jaeger UI takes the
    // latest sanitized end and, among equal ends, the child it displays first: its children
    // are in order of their recorded (repaired) start, then input order. A span's blocking
    // children are among its raw children, so each row is filtered from the raw row and
    // sorted on its own: rows are short, and one sort of every span by (parent, key) would
    // cost a log factor of a million.
    let key_of = |c: usize| {
        if jaeger {
            (repaired[c], windows[c].1)
        } else {
            windows[c]
        }
    };
    let mut offsets: Vec<u32> = Vec::with_capacity(n + 3);
    let mut children: Vec<u32> = Vec::with_capacity(n);
    let mut row_keys: Vec<(Reverse<u64>, u64, u32)> = Vec::new();
    offsets.push(0);
    for p in 0..n {
        let start = children.len();
        children.extend(
            row(&raw_offsets, &raw_children, p)
                .iter()
                .filter(|&&c| blocking_parent[c as usize] == p as u32),
        );
        sort_row(&mut children[start..], &key_of, &mut row_keys);
        offsets.push(children.len() as u32);
    }
    drop(raw_children);
    drop(raw_offsets);
    // The top-level row. Robust mode walks every span without a blocking parent that is not
    // off the path, latest-finishing first under its virtual root; Jaeger mode walks its roots
    // one after the other, in the order it found them.
    let mut off_reasons = Vec::new();
    if jaeger {
        children.extend_from_slice(&tops);
        offsets.push(children.len() as u32);
    } else {
        let start = children.len();
        children.extend((0..n as u32).filter(|&i| {
            let i = i as usize;
            placed[i] && blocking_parent[i] == NONE && off[i] == 0
        }));
        sort_row(&mut children[start..], &key_of, &mut row_keys);
        offsets.push(children.len() as u32);
        for (i, &reason) in off.iter().enumerate() {
            let reason = match reason {
                OUTSIDE_PARENT => OffPathReason::OutsideParent,
                NON_BLOCKING => OffPathReason::NonBlocking,
                _ => continue,
            };
            children.push(i as u32);
            off_reasons.push(reason);
        }
    }
    offsets.push(children.len() as u32);
    diagnostics.roots = (offsets[n + 1] - offsets[n]) as usize;

    AssembledTrace {
        mode: options.mode,
        windows,
        placed,
        parent: blocking_parent,
        offsets,
        children,
        off_reasons,
        diagnostics,
    }
}

/// Jaeger UI's tree, from its current `transformTraceData` and critical-path code: places the
/// spans every root's walk sees, with Jaeger UI's sanitized windows, and returns the roots it
/// walks, in its order.
///
/// Roots are the spans whose parent is not in the trace, by start time (ties in input order);
/// each is walked with its own subtree. A root that names a parent (an orphan) is dropped by
/// Jaeger UI's sanitizing, with everything below it. A start of 0 is repaired top-down with the
/// parent's repaired start, keeping the duration. A consumer child of a producer does not
/// block it and is left out with its subtree; follows-from children are ordinary children.
/// Children are clamped into their parent's sanitized window, and dropped with their subtree
/// when entirely outside it.
#[allow(clippy::too_many_arguments)]
fn jaeger_tree(
    raw_offsets: &[u32],
    raw_children: &[u32],
    parent: &[u32],
    included: &[bool],
    flags: &[u8],
    windows: &mut [(u64, u64)],
    repaired: &mut [u64],
    placed: &mut [bool],
    blocking_parent: &mut [u32],
    diagnostics: &mut Diagnostics,
) -> Vec<u32> {
    let n = windows.len();
    let mut roots: Vec<u32> = (0..n as u32)
        .filter(|&i| included[i as usize] && parent[i as usize] == NONE)
        .collect();
    // A root's start is not repaired (it has no parent to take one from), so its recorded
    // start is its sort key.
    roots.sort_by_key(|&i| (windows[i as usize].0, i));
    let had_roots = !roots.is_empty();
    roots.retain(|&r| flags[r as usize] & HAS_PARENT == 0);
    let mut queue: VecDeque<u32> = VecDeque::new();
    for &root in &roots {
        let (start, end) = windows[root as usize];
        if end < start {
            diagnostics.negative_durations += 1;
        }
        repaired[root as usize] = start;
        placed[root as usize] = true;
        queue.push_back(root);
    }
    // Breadth first, so each parent is final before its children are fitted into it; the
    // queue holds the frontier only (one span for a chain).
    while let Some(p) = queue.pop_front() {
        let pu = p as usize;
        let (ps, pe) = windows[pu];
        let parent_start = repaired[pu];
        for &c in row(raw_offsets, raw_children, pu) {
            let cu = c as usize;
            if flags[cu] & CONSUMER != 0 && flags[pu] & PRODUCER != 0 {
                diagnostics.non_blocking += 1;
                continue;
            }
            let (mut s, mut e) = windows[cu];
            if s == 0 {
                // Jaeger UI takes a start of 0 for a missing one and repairs it with the
                // parent's; the duration stays.
                s = parent_start;
                e = parent_start.saturating_add(e);
            }
            repaired[cu] = s;
            match jaeger_clamp(s, e, ps, pe) {
                Some((s, e, changed)) => {
                    if changed {
                        diagnostics.clamped += 1;
                    }
                    // Jaeger UI keeps a negative duration; the walk reports the failure if it
                    // reaches the span.
                    if e < s {
                        diagnostics.negative_durations += 1;
                    }
                    windows[cu] = (s, e);
                    placed[cu] = true;
                    blocking_parent[cu] = p;
                    queue.push_back(c);
                }
                None => diagnostics.clamped += 1,
            }
        }
    }
    if roots.is_empty() && included.iter().any(|&inc| inc) {
        diagnostics.jaeger_failure = Some(if had_roots {
            "every top-level span has a missing parent, and Jaeger UI drops such spans with \
             everything below them"
        } else {
            "no span is a root: the parent ids form cycles"
        });
    }
    let reached = placed.iter().filter(|&&p| p).count();
    let candidates = included.iter().filter(|&&inc| inc).count();
    diagnostics.dropped += candidates - reached;
    roots
}

/// Sorts one children row into walk order: latest end first, then earliest start, then input
/// order. Rows already in that order, or in exactly its reverse (siblings recorded one after
/// another, as a loop of calls produces), are recognized in one pass over their keys and need
/// neither the sort nor its buffer of keys, which for a root with a million children would be
/// 24 MB of fresh memory.
fn sort_row(
    row: &mut [u32],
    key_of: &impl Fn(usize) -> (u64, u64),
    keys: &mut Vec<(Reverse<u64>, u64, u32)>,
) {
    let key = |c: u32| {
        let (s, e) = key_of(c as usize);
        (Reverse(e), s, c)
    };
    // Keys are distinct (they end with the span's index), so each neighbouring pair is either
    // in order or reversed.
    let (mut forward, mut backward) = (true, true);
    if let Some((&first, rest)) = row.split_first() {
        let mut previous = key(first);
        for &c in rest {
            let next = key(c);
            if previous < next {
                backward = false;
            } else {
                forward = false;
            }
            if !forward && !backward {
                break;
            }
            previous = next;
        }
    }
    if forward {
        return;
    }
    if backward {
        row.reverse();
        return;
    }
    keys.clear();
    keys.extend(row.iter().map(|&c| key(c)));
    keys.sort_unstable();
    for (slot, &(.., c)) in row.iter_mut().zip(keys.iter()) {
        *slot = c;
    }
}

/// `flags` bits.
const FOLLOWS_FROM: u8 = 1;
const CONSUMER: u8 = 2;
const HAS_PARENT: u8 = 4;
const PRODUCER: u8 = 8;

/// Why a span is off the path, in robust mode's `off` array (0: it is not).
const OUTSIDE_PARENT: u8 = 1;
const NON_BLOCKING: u8 = 2;

/// Robust sanitizing, top-down: see `docs/critical-path.md` for why each rule.
struct Traversal<'a> {
    spans: &'a [crate::Span],
    raw_offsets: &'a [u32],
    raw_children: &'a [u32],
    flags: &'a [u8],
    options: &'a Options,
    windows: &'a mut [(u64, u64)],
    placed: &'a mut [bool],
    blocking_parent: &'a mut [u32],
    off: &'a mut [u8],
    diagnostics: &'a mut Diagnostics,
}

impl Traversal<'_> {
    /// Sanitizes the subtrees under `starts`, breadth first, so each parent's window is final
    /// before its children are fitted into it. `live_links_only` skips raw children whose
    /// link in `parent` was cut.
    fn run(&mut self, parent: &[u32], starts: Vec<u32>, live_links_only: bool) {
        let Self {
            spans,
            raw_offsets,
            raw_children,
            flags,
            options,
            ..
        } = *self;
        let windows = &mut *self.windows;
        let placed = &mut *self.placed;
        let blocking_parent = &mut *self.blocking_parent;
        let off = &mut *self.off;
        let diagnostics = &mut *self.diagnostics;
        let n = spans.len();
        // Clock-skew shift per span, inherited by descendants (they ran on the shifted host).
        let mut shift = vec![0i128; if options.skew_correction { n } else { 0 }];
        // Each entry carries its parent and the parent's final window, so that visiting a
        // span never looks its parent up again. The queue holds the frontier only.
        let mut queue: VecDeque<(u32, u32, u64, u64)> =
            starts.into_iter().map(|s| (s, NONE, 0, 0)).collect();
        while let Some((i, p, ps, pe)) = queue.pop_front() {
            let iu = i as usize;
            let (mut s, mut e) = windows[iu];
            let non_blocking = flags[iu] & (FOLLOWS_FROM | CONSUMER) != 0;
            if e < s {
                // A negative duration is a broken clock or a broken exporter; the span still
                // happened at its start, so it is kept as an instant.
                diagnostics.negative_durations += 1;
                e = s;
            }
            if options.skew_correction {
                let inherited = if p == NONE { 0 } else { shift[p as usize] };
                let mut own = inherited;
                if p != NONE {
                    let cs = shift_time(s, inherited);
                    let ce = shift_time(e, inherited);
                    let (span, pspan) = (&spans[iu], &spans[p as usize]);
                    let pair = span.kind() == SpanKind::Server && pspan.kind() == SpanKind::Client;
                    let same_host =
                        matches!((span.host(), pspan.host()), (Some(a), Some(b)) if a == b);
                    if pair && !same_host && (cs < ps || ce > pe) {
                        let dur = i128::from(ce - cs);
                        let pdur = i128::from(pe - ps);
                        // Centre the server inside its client: the network time is unknown
                        // but split evenly is the least surprising guess (as Jaeger and
                        // Zipkin do). A server longer than its client starts with it.
                        let target =
                            i128::from(ps) + if dur <= pdur { (pdur - dur) / 2 } else { 0 };
                        own = inherited + (target - i128::from(cs));
                        diagnostics.skew_applied += 1;
                    }
                }
                shift[iu] = own;
                s = shift_time(s, own);
                e = shift_time(e, own);
            }
            let mut window = (s, e);
            if p != NONE {
                // Work its parent did not wait for is not part of the request the parent
                // serves: it is off the path with its subtree, and reported.
                if non_blocking {
                    diagnostics.non_blocking += 1;
                    off[iu] = NON_BLOCKING;
                } else if e > s && (e <= ps || s >= pe) {
                    // Entirely outside its parent: it cannot have blocked it (fire-and-forget
                    // without the right relation, or skew too large to trust).
                    diagnostics.detached += 1;
                    off[iu] = OUTSIDE_PARENT;
                } else {
                    let cs = s.clamp(ps, pe);
                    let ce = e.clamp(cs, pe);
                    if (cs, ce) != (s, e) {
                        diagnostics.clamped += 1;
                    }
                    window = (cs, ce);
                    blocking_parent[iu] = p;
                }
            }
            windows[iu] = window;
            placed[iu] = true;
            for &c in row(raw_offsets, raw_children, iu) {
                if !live_links_only || parent[c as usize] == i {
                    queue.push_back((c, i, window.0, window.1));
                }
            }
        }
    }
}

fn shift_time(t: u64, by: i128) -> u64 {
    let shifted = i128::from(t) + by;
    shifted.clamp(0, i128::from(u64::MAX)) as u64
}

/// Jaeger UI's `sanitizeOverFlowingChildren` rules: `None` drops the child and its subtree.
/// Arithmetic is in `i128` because Jaeger's durations may be negative.
fn jaeger_clamp(s: u64, e: u64, ps: u64, pe: u64) -> Option<(u64, u64, bool)> {
    let (s, e, ps, pe) = (i128::from(s), i128::from(e), i128::from(ps), i128::from(pe));
    let (ns, ne) = if s >= ps {
        if s >= pe {
            return None;
        }
        if e > pe { (s, pe) } else { (s, e) }
    } else if e <= ps {
        return None;
    } else if e <= pe {
        (ps, e)
    } else {
        (ps, pe)
    };
    let changed = (ns, ne) != (s, e);
    // Values come from u64 inputs and only move towards other u64 inputs.
    Some((ns as u64, ne as u64, changed))
}

fn row<'a>(offsets: &[u32], children: &'a [u32], i: usize) -> &'a [u32] {
    match (offsets.get(i), offsets.get(i + 1)) {
        (Some(&a), Some(&b)) => children.get(a as usize..b as usize).unwrap_or(&[]),
        _ => &[],
    }
}

/// Groups included spans by parent into compressed rows, keeping input order within a row.
fn group_by_parent(parent: &[u32], included: &[bool]) -> (Vec<u32>, Vec<u32>) {
    let n = parent.len();
    let mut offsets = vec![0u32; n + 2];
    for i in 0..n {
        if included[i] && parent[i] != NONE {
            offsets[parent[i] as usize + 1] += 1;
        }
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let mut fill = offsets.clone();
    let mut children = vec![0u32; offsets[n] as usize];
    for i in 0..n {
        if included[i] && parent[i] != NONE {
            let slot = &mut fill[parent[i] as usize];
            children[*slot as usize] = i as u32;
            *slot += 1;
        }
    }
    (offsets, children)
}

/// Finds every cycle of parent links, iteratively: each span is visited once.
fn find_cycles(parent: &[u32], included: &[bool]) -> Vec<Vec<u32>> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; parent.len()];
    let mut cycles = Vec::new();
    let mut path: Vec<u32> = Vec::new();
    for start in 0..parent.len() {
        if !included[start] || state[start] != NEW {
            continue;
        }
        path.clear();
        let mut at = start as u32;
        loop {
            let au = at as usize;
            if at == NONE || state[au] == DONE {
                break;
            }
            if state[au] == ON_PATH {
                if let Some(pos) = path.iter().position(|&p| p == at) {
                    cycles.push(path[pos..].to_vec());
                }
                break;
            }
            state[au] = ON_PATH;
            path.push(at);
            at = parent[au];
        }
        for &p in &path {
            state[p as usize] = DONE;
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Span, SpanId, TraceId};

    /// Every order of a few children with tied ends and starts sorts the same as a plain sort
    /// of the keys, whether the row is recognized as in order, reversed, or neither.
    #[test]
    fn rows_sort_into_walk_order_however_they_arrive() {
        let windows: Vec<(u64, u64)> = vec![(0, 50), (10, 50), (0, 40), (5, 60), (10, 50), (0, 0)];
        let key_of = |c: usize| windows[c];
        let expected = {
            let mut keys: Vec<_> = (0..windows.len() as u32)
                .map(|c| (Reverse(windows[c as usize].1), windows[c as usize].0, c))
                .collect();
            keys.sort_unstable();
            keys.into_iter().map(|(.., c)| c).collect::<Vec<u32>>()
        };
        let mut keys = Vec::new();
        let mut row: Vec<u32> = (0..windows.len() as u32).collect();
        // Heap's algorithm: all 720 orders.
        let mut counters = vec![0; row.len()];
        let mut seen = 0;
        let mut check = |row: &[u32]| {
            let mut sorted = row.to_vec();
            sort_row(&mut sorted, &key_of, &mut keys);
            assert_eq!(sorted, expected, "from {row:?}");
            seen += 1;
        };
        check(&row);
        let mut i = 0;
        while i < row.len() {
            if counters[i] < i {
                row.swap(if i % 2 == 0 { 0 } else { counters[i] }, i);
                check(&row);
                counters[i] += 1;
                i = 0;
            } else {
                counters[i] = 0;
                i += 1;
            }
        }
        assert_eq!(seen, 720);
        let mut reversed = expected.clone();
        reversed.reverse();
        let mut row = reversed;
        sort_row(&mut row, &key_of, &mut Vec::new());
        assert_eq!(row, expected);
    }

    fn span(id: u64, parent: Option<u64>, s: u64, e: u64) -> Span {
        let span = Span::new(TraceId::from_u128(1), SpanId::from_u64(id), s, e);
        match parent {
            Some(p) => span.with_parent(SpanId::from_u64(p)),
            None => span,
        }
    }

    #[test]
    fn cycles_are_found_once_each() {
        // 0 -> 1 -> 2 -> 0, 3 -> 3 is a self-loop handled elsewhere, 4 -> 0 hangs off the cycle.
        let parent = [1, 2, 0, NONE, 0];
        let cycles = find_cycles(&parent, &[true; 5]);
        assert_eq!(cycles.len(), 1);
        let mut cycle = cycles[0].clone();
        cycle.sort_unstable();
        assert_eq!(cycle, vec![0, 1, 2]);
    }

    #[test]
    fn robust_cuts_a_cycle_at_its_earliest_span() {
        let trace = Trace::new(
            TraceId::from_u128(1),
            vec![span(1, Some(2), 10, 50), span(2, Some(1), 5, 60)],
        );
        let assembled = assemble(&trace, &Options::default());
        assert_eq!(assembled.diagnostics().cycles_cut, 1);
        assert_eq!(assembled.top_level().collect::<Vec<_>>(), vec![1]);
        assert_eq!(assembled.parent(0), Some(1));
    }

    #[test]
    fn robust_detaches_children_outside_their_parent() {
        let trace = Trace::new(
            TraceId::from_u128(1),
            vec![
                span(1, None, 0, 10),
                span(2, Some(1), 20, 30),
                span(3, Some(1), 5, 15),
            ],
        );
        let assembled = assemble(&trace, &Options::default());
        assert_eq!(assembled.diagnostics().detached, 1);
        assert_eq!(assembled.diagnostics().clamped, 1);
        assert_eq!(assembled.window(2), Some((5, 10)));
        assert_eq!(assembled.parent(1), None);
    }

    #[test]
    fn jaeger_clamp_matches_its_four_cases() {
        assert_eq!(jaeger_clamp(5, 8, 0, 10), Some((5, 8, false)));
        assert_eq!(jaeger_clamp(5, 18, 0, 10), Some((5, 10, true)));
        assert_eq!(jaeger_clamp(0, 8, 2, 10), Some((2, 8, true)));
        assert_eq!(jaeger_clamp(0, 18, 2, 10), Some((2, 10, true)));
        assert_eq!(jaeger_clamp(10, 18, 2, 10), None);
        assert_eq!(jaeger_clamp(0, 2, 2, 10), None);
    }
}

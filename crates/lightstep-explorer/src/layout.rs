//! The waterfall of one trace in one mode: its span tree in display order, each span's time on
//! the critical path, and windows of its rows.
//!
//! The page never holds every span of a large trace: it asks for the rows it shows
//! ([`Layout::rows`]), with the subtrees the user collapsed. Building a layout costs a
//! critical-path analysis, the resolution of parent ids and a sort of each span's children, so
//! layouts are kept in a small cache bounded by the spans they cover; taking a window from one
//! costs the rows skipped before it plus the rows returned. Parent ids are resolved by the
//! analysis's partitioned join ([`declared_parents`]), not a hash map of a million ids: that map
//! was most of the build for a million spans.
//!
//! The tree is the trace as its spans declare it (each span under the span its parent id names,
//! children by start time), whatever the mode: both modes repair messy traces in their own way
//! for the critical path, but the waterfall shows what was sent. Spans whose parent is missing
//! are top-level rows; a cycle of parent ids is cut at its earliest span. Nothing recurses on
//! the depth of the trace.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use lightstep_analysis::{
    CriticalPathAnalysis, Mode, Options, SpanId, TraceId, analyze_critical_path, declared_parents,
};

use crate::store::StoredTrace;

/// Marks "no span" in the index arrays.
const NONE: u32 = u32::MAX;

/// The waterfall of one trace in one mode.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) trace: Arc<StoredTrace>,
    pub(crate) analysis: CriticalPathAnalysis,
    /// Span indices in display order (depth first, children by start).
    order: Vec<u32>,
    /// Per display position: depth and the size of the subtree rooted there (itself included).
    depth: Vec<u32>,
    subtree: Vec<u32>,
    /// Per span index: its parent in the display tree, its number of children.
    parent: Vec<u32>,
    children: Vec<u32>,
    /// Per span index: whether it is on the critical path, and its time there.
    critical_ns: Vec<u64>,
    on_path: Vec<bool>,
    /// The sections of span `i` are `sections[section_start[i]..section_start[i + 1]]`.
    section_start: Vec<u32>,
    sections: Vec<(u64, u64)>,
    /// The time axis: the earliest start and latest end of any span or section.
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
}

/// One row of a window.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Row<'a> {
    /// Position among the rows shown (collapsed subtrees hidden).
    pub(crate) row: usize,
    /// The span's position in the trace.
    pub(crate) span: usize,
    pub(crate) depth: u32,
    pub(crate) parent_row: Option<usize>,
    pub(crate) parent_span: Option<usize>,
    pub(crate) children: u32,
    pub(crate) collapsed: bool,
    pub(crate) critical: bool,
    pub(crate) critical_ns: u64,
    pub(crate) sections: &'a [(u64, u64)],
}

/// A window of rows and how many rows there are with these subtrees collapsed.
#[derive(Debug)]
pub(crate) struct Window<'a> {
    pub(crate) rows: Vec<Row<'a>>,
    pub(crate) visible: usize,
}

impl Layout {
    /// Builds the layout: display tree, then the critical path in `mode`.
    pub(crate) fn build(trace: Arc<StoredTrace>, mode: Mode) -> Self {
        let spans = &trace.trace.spans;
        let n = spans.len();
        let analysis = analyze_critical_path(&trace.trace, &Options::new(mode));
        let parent = display_parents(&trace);
        // Children in start order, as compressed rows.
        let mut children = vec![0u32; n];
        for &p in &parent {
            if p != NONE {
                children[p as usize] += 1;
            }
        }
        let mut child_start = vec![0u32; n + 1];
        for i in 0..n {
            child_start[i + 1] = child_start[i] + children[i];
        }
        let mut fill = child_start.clone();
        let mut child_list = vec![0u32; child_start[n] as usize];
        let mut tops = Vec::new();
        for (i, &p) in parent.iter().enumerate() {
            if p == NONE {
                tops.push(i as u32);
            } else {
                child_list[fill[p as usize] as usize] = i as u32;
                fill[p as usize] += 1;
            }
        }
        let by_start = |a: &u32, b: &u32| {
            let (sa, sb) = (&spans[*a as usize], &spans[*b as usize]);
            sa.start_ns().cmp(&sb.start_ns()).then(a.cmp(b))
        };
        tops.sort_unstable_by(by_start);
        for i in 0..n {
            child_list[child_start[i] as usize..child_start[i + 1] as usize]
                .sort_unstable_by(by_start);
        }
        // Depth-first order on an explicit stack.
        let mut order = Vec::with_capacity(n);
        let mut depth = Vec::with_capacity(n);
        let mut stack: Vec<(u32, u32)> = tops.iter().rev().map(|&t| (t, 0)).collect();
        while let Some((span, d)) = stack.pop() {
            order.push(span);
            depth.push(d);
            let kids = &child_list
                [child_start[span as usize] as usize..child_start[span as usize + 1] as usize];
            stack.extend(kids.iter().rev().map(|&k| (k, d + 1)));
        }
        // Subtree sizes: each position's subtree ends where the next position at its depth or
        // shallower begins.
        let mut subtree = vec![1u32; order.len()];
        let mut open: Vec<usize> = Vec::new();
        for (pos, &d) in depth.iter().enumerate() {
            while let Some(&top) = open.last() {
                if depth[top] >= d {
                    subtree[top] = (pos - top) as u32;
                    open.pop();
                } else {
                    break;
                }
            }
            open.push(pos);
        }
        for top in open {
            subtree[top] = (order.len() - top) as u32;
        }

        let mut critical_ns = vec![0u64; n];
        let mut on_path = vec![false; n];
        for p in &analysis.path {
            if let Some(slot) = critical_ns.get_mut(p.span) {
                *slot = p.self_ns;
                on_path[p.span] = true;
            }
        }
        let mut count = vec![0u32; n + 1];
        for s in &analysis.sections {
            if s.span < n {
                count[s.span + 1] += 1;
            }
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let section_start = count.clone();
        let mut sections = vec![(0u64, 0u64); count[n] as usize];
        let mut fill = count;
        // `analysis.sections` is chronological, so each span's sections stay in time order.
        for s in &analysis.sections {
            if s.span < n {
                sections[fill[s.span] as usize] = (s.start_ns, s.end_ns);
                fill[s.span] += 1;
            }
        }
        // One pass over the spans for both ends of the axis: a million spans are larger than
        // any cache.
        let path_window =
            (!analysis.path.is_empty()).then_some((analysis.start_ns, analysis.end_ns));
        let (start_ns, end_ns) = spans
            .iter()
            .map(|s| (s.start_ns(), s.end_ns().max(s.start_ns())))
            .chain(path_window)
            .fold(None, |axis: Option<(u64, u64)>, (start, end)| {
                Some(axis.map_or((start, end), |(s, e)| (s.min(start), e.max(end))))
            })
            .unwrap_or((0, 0));
        Self {
            trace,
            analysis,
            order,
            depth,
            subtree,
            parent,
            children,
            critical_ns,
            on_path,
            section_start,
            sections,
            start_ns,
            end_ns,
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        self.analysis.mode
    }

    /// The rows from `offset` (at most `limit`), with the subtrees of the spans in `collapsed`
    /// (span indices) hidden, and how many rows there are in all.
    pub(crate) fn rows(&self, offset: usize, limit: usize, collapsed: &HashSet<u32>) -> Window<'_> {
        let mut rows = Vec::with_capacity(limit.min(self.order.len()));
        // Rows of the ancestors of the current position, by depth.
        let mut ancestors: Vec<(u32, usize)> = Vec::new();
        let (mut pos, mut row) = (0usize, 0usize);
        let end = offset.saturating_add(limit);
        while pos < self.order.len() {
            let span = self.order[pos];
            let depth = self.depth[pos];
            let is_collapsed = collapsed.contains(&span) && self.children[span as usize] > 0;
            if row >= offset && row < end {
                while ancestors.last().is_some_and(|&(d, _)| d >= depth) {
                    ancestors.pop();
                }
                let i = span as usize;
                let parent = self.parent[i];
                rows.push(Row {
                    row,
                    span: i,
                    depth,
                    parent_row: ancestors.last().map(|&(_, r)| r),
                    parent_span: (parent != NONE).then_some(parent as usize),
                    children: self.children[i],
                    collapsed: is_collapsed,
                    critical: self.on_path[i],
                    critical_ns: self.critical_ns[i],
                    sections: &self.sections
                        [self.section_start[i] as usize..self.section_start[i + 1] as usize],
                });
            } else if row < offset {
                while ancestors.last().is_some_and(|&(d, _)| d >= depth) {
                    ancestors.pop();
                }
            }
            if row < end {
                ancestors.push((depth, row));
            }
            row += 1;
            pos += if is_collapsed {
                self.subtree[pos] as usize
            } else {
                1
            };
        }
        Window { rows, visible: row }
    }

    /// The span index of each span id in `ids` (the first span with that id); ids not in the
    /// trace are left out.
    pub(crate) fn spans_named(&self, ids: &[SpanId]) -> HashSet<u32> {
        if ids.is_empty() {
            return HashSet::new();
        }
        let wanted: HashSet<&SpanId> = ids.iter().collect();
        self.trace
            .trace
            .spans
            .iter()
            .enumerate()
            .filter(|(_, s)| wanted.contains(s.span_id()))
            .map(|(i, _)| i as u32)
            .collect()
    }
}

/// Each span's parent as the trace declares it (the first span of that id), `NONE` for spans
/// whose parent is missing or themselves; cycles are cut at their earliest span.
fn display_parents(trace: &StoredTrace) -> Vec<u32> {
    let spans = &trace.trace.spans;
    let n = spans.len();
    let mut parent: Vec<u32> = declared_parents(spans)
        .into_iter()
        .map(|p| p.unwrap_or(NONE))
        .collect();
    parent.resize(n, NONE);
    // Spans not reachable from a top-level span hang under a cycle: walk up from each
    // unresolved span until a resolved one or a span seen on this walk (the cycle), cut there.
    // Each span has one parent, so each cycle is met whichever span its walk starts from, and
    // its earliest span is the same: the walks go in input order, with no sort.
    // 0 = unresolved, 1 = on the current walk, 2 = resolved.
    let mut state = vec![0u8; n];
    let mut walk = Vec::new();
    for start in 0..n as u32 {
        let mut at = start;
        while state[at as usize] == 0 {
            state[at as usize] = 1;
            walk.push(at);
            let p = parent[at as usize];
            if p == NONE {
                break;
            }
            at = p;
        }
        if state[at as usize] == 1 && parent[at as usize] != NONE {
            // `at` is on this walk: a cycle. Cut it at its earliest span.
            let cycle_start = walk.iter().position(|&w| w == at).unwrap_or(0);
            if let Some(&earliest) = walk[cycle_start..]
                .iter()
                .min_by_key(|&&w| (spans[w as usize].start_ns(), w))
            {
                parent[earliest as usize] = NONE;
            }
        }
        for w in walk.drain(..) {
            state[w as usize] = 2;
        }
    }
    parent
}

/// A cached layout, by trace and mode.
type CacheEntry = ((TraceId, Mode), Arc<Layout>);

/// Layouts recently asked for, bounded by the spans they cover.
#[derive(Debug)]
pub(crate) struct LayoutCache {
    max_spans: usize,
    /// Most recently used last.
    entries: Mutex<Vec<CacheEntry>>,
}

impl LayoutCache {
    pub(crate) fn new(max_spans: usize) -> Self {
        Self {
            max_spans,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The cached layout of this trace in this mode, if it is of this very trace (not one
    /// since extended by late spans).
    pub(crate) fn get(&self, trace: &Arc<StoredTrace>, mode: Mode) -> Option<Arc<Layout>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let at = entries.iter().position(|((id, m), layout)| {
            *m == mode && *id == trace.trace.trace_id && Arc::ptr_eq(&layout.trace, trace)
        })?;
        let entry = entries.remove(at);
        let layout = Arc::clone(&entry.1);
        entries.push(entry);
        Some(layout)
    }

    pub(crate) fn put(&self, layout: Arc<Layout>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (layout.trace.trace.trace_id.clone(), layout.mode());
        entries.retain(|(k, _)| *k != key);
        entries.push((key, layout));
        let spans =
            |e: &[CacheEntry]| -> usize { e.iter().map(|(_, l)| l.trace.trace.spans.len()).sum() };
        // The newest always stays, whatever its size.
        while entries.len() > 1 && spans(&entries) > self.max_spans {
            entries.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Limits, TraceStore};
    use lightstep_analysis::{Span, Trace};
    use std::collections::HashMap;

    fn stored(spans: Vec<Span>) -> Arc<StoredTrace> {
        let store = TraceStore::new(Limits::default());
        let id = spans[0].trace_id().clone();
        store.add(Trace::new(id.clone(), spans));
        store.get(&id).unwrap()
    }

    fn span(id: u64, parent: Option<u64>, start: u64, end: u64) -> Span {
        let s = Span::new(TraceId::from_u128(1), SpanId::from_u64(id), start, end);
        match parent {
            Some(p) => s.with_parent(SpanId::from_u64(p)),
            None => s,
        }
    }

    fn ids(window: &Window<'_>, layout: &Layout) -> Vec<u64> {
        window
            .rows
            .iter()
            .map(|r| layout.trace.trace.spans[r.span].span_id().as_u64().unwrap())
            .collect()
    }

    #[test]
    fn rows_are_depth_first_with_children_by_start() {
        // 1 ─┬─ 3 (starts first) ── 4
        //    └─ 2
        let layout = Layout::build(
            stored(vec![
                span(2, Some(1), 50, 60),
                span(1, None, 0, 100),
                span(3, Some(1), 10, 40),
                span(4, Some(3), 20, 30),
            ]),
            Mode::Robust,
        );
        let all = layout.rows(0, 100, &HashSet::new());
        assert_eq!(ids(&all, &layout), [1, 3, 4, 2]);
        assert_eq!(all.visible, 4);
        let depths: Vec<u32> = all.rows.iter().map(|r| r.depth).collect();
        assert_eq!(depths, [0, 1, 2, 1]);
        let parents: Vec<Option<usize>> = all.rows.iter().map(|r| r.parent_row).collect();
        assert_eq!(parents, [None, Some(0), Some(1), Some(0)]);
        // A window in the middle still knows its rows' parents.
        let middle = layout.rows(2, 2, &HashSet::new());
        assert_eq!(ids(&middle, &layout), [4, 2]);
        assert_eq!(middle.rows[0].parent_row, Some(1));
        assert_eq!(middle.rows[1].parent_row, Some(0));
    }

    #[test]
    fn collapsed_subtrees_are_hidden_and_counted_out() {
        let layout = Layout::build(
            stored(vec![
                span(1, None, 0, 100),
                span(3, Some(1), 10, 40),
                span(4, Some(3), 20, 30),
                span(5, Some(4), 21, 29),
                span(2, Some(1), 50, 60),
            ]),
            Mode::Robust,
        );
        let collapsed = layout.spans_named(&[SpanId::from_u64(3)]);
        let window = layout.rows(0, 100, &collapsed);
        assert_eq!(ids(&window, &layout), [1, 3, 2]);
        assert_eq!(window.visible, 3);
        assert!(window.rows[1].collapsed);
        assert_eq!(window.rows[2].parent_row, Some(0));
        // Collapsing a leaf changes nothing.
        let leaf = layout.spans_named(&[SpanId::from_u64(2)]);
        assert_eq!(layout.rows(0, 100, &leaf).visible, 5);
    }

    #[test]
    fn cycles_and_orphans_still_show_every_span_once() {
        let layout = Layout::build(
            stored(vec![
                span(1, None, 0, 100),
                // 2 and 3 name each other.
                span(2, Some(3), 10, 20),
                span(3, Some(2), 15, 25),
                span(4, Some(99), 30, 40),
                span(5, Some(5), 50, 60),
            ]),
            Mode::Robust,
        );
        let window = layout.rows(0, 100, &HashSet::new());
        let mut seen = ids(&window, &layout);
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3, 4, 5]);
        // The cycle is cut at its earliest span (2), which becomes top-level with 3 under it.
        let two = window.rows.iter().find(|r| r.span == 1).unwrap();
        assert_eq!(two.depth, 0);
        let three = window.rows.iter().find(|r| r.span == 2).unwrap();
        assert_eq!(three.parent_span, Some(1));
    }

    #[test]
    fn a_deep_chain_does_not_recurse() {
        let n = 200_000u64;
        let spans = (1..=n)
            .map(|k| span(k, (k > 1).then(|| k - 1), k, 2 * n - k))
            .collect();
        let layout = Layout::build(stored(spans), Mode::Robust);
        let window = layout.rows(n as usize - 2, 10, &HashSet::new());
        assert_eq!(window.visible, n as usize);
        assert_eq!(window.rows.len(), 2);
        assert_eq!(window.rows[1].depth, n as u32 - 1);
        assert_eq!(window.rows[1].parent_row, Some(n as usize - 2));
    }

    #[test]
    fn critical_marks_follow_the_analysis_of_the_mode() {
        let layout = Layout::build(
            stored(vec![
                span(1, None, 0, 100),
                span(2, Some(1), 10, 40),
                span(3, Some(1), 20, 90),
            ]),
            Mode::Robust,
        );
        let window = layout.rows(0, 10, &HashSet::new());
        let critical: Vec<(u64, bool)> = window
            .rows
            .iter()
            .map(|r| {
                (
                    layout.trace.trace.spans[r.span].span_id().as_u64().unwrap(),
                    r.critical,
                )
            })
            .collect();
        // 2 ends while 3 runs: only 1 and 3 are on the path.
        assert_eq!(critical, [(1, true), (2, false), (3, true)]);
        let three = &window.rows[2];
        assert_eq!(three.critical_ns, 70);
        assert_eq!(three.sections, &[(20, 90)]);
    }

    /// A row's span, depth, parent span, parent row, children and critical mark.
    type RowFields = (usize, u32, Option<usize>, Option<usize>, u32, bool);

    /// The waterfall as its rules say, the slow and obvious way: each span under the first
    /// span of its parent id, each cycle cut at its earliest span, children by (start, input
    /// order), depth first, collapsed subtrees left out.
    fn reference_rows(layout: &Layout, collapsed: &HashSet<u32>) -> Vec<RowFields> {
        let spans = &layout.trace.trace.spans;
        let n = spans.len();
        let mut first: HashMap<&SpanId, usize> = HashMap::new();
        for (i, s) in spans.iter().enumerate() {
            first.entry(s.span_id()).or_insert(i);
        }
        let mut parent: Vec<Option<usize>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parent_id()
                    .and_then(|p| first.get(p).copied())
                    .filter(|&p| p != i)
            })
            .collect();
        // A span more than n links from a root sits on or under a cycle: n more links from
        // there go round the cycle, which is cut at its earliest span.
        loop {
            let Some(stuck) = (0..n).find(|&i| {
                let mut at = i;
                (0..=n).all(|_| match parent[at] {
                    Some(p) => {
                        at = p;
                        true
                    }
                    None => false,
                })
            }) else {
                break;
            };
            let mut at = stuck;
            for _ in 0..n {
                at = parent[at].unwrap();
            }
            let mut cycle = vec![at];
            let mut next = parent[at].unwrap();
            while next != at {
                cycle.push(next);
                next = parent[next].unwrap();
            }
            let cut = *cycle
                .iter()
                .min_by_key(|&&c| (spans[c].start_ns(), c))
                .unwrap();
            parent[cut] = None;
        }
        let by_start = |list: &mut Vec<usize>| list.sort_by_key(|&c| (spans[c].start_ns(), c));
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut tops = Vec::new();
        for (i, p) in parent.iter().enumerate() {
            match *p {
                Some(p) => children[p].push(i),
                None => tops.push(i),
            }
        }
        children.iter_mut().for_each(by_start);
        by_start(&mut tops);
        let on_path: HashSet<usize> = layout.analysis.path.iter().map(|p| p.span).collect();
        let mut rows = Vec::new();
        // (span, depth, parent row)
        let mut stack: Vec<(usize, u32, Option<usize>)> =
            tops.iter().rev().map(|&t| (t, 0, None)).collect();
        while let Some((i, depth, parent_row)) = stack.pop() {
            let row = rows.len();
            rows.push((
                i,
                depth,
                parent[i],
                parent_row,
                children[i].len() as u32,
                on_path.contains(&i),
            ));
            if !collapsed.contains(&(i as u32)) {
                stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1, Some(row))));
            }
        }
        rows
    }

    /// A small random number generator (xorshift), so that failures repeat.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    #[test]
    fn the_layout_matches_a_simple_reference_on_random_traces() {
        let mut random = Random(0x5eed_1a70_u64);
        for round in 0..300 {
            let n = 1 + random.below(120);
            // Few distinct ids and starts: reused ids, self-parents, missing parents, cycles
            // and tied starts all happen.
            let ids = n + n / 4;
            let mut spans: Vec<Span> = (0..n)
                .map(|_| {
                    let start = random.below(n);
                    let id = 1 + random.below(ids);
                    let parent = (random.below(8) != 0).then(|| 1 + random.below(ids));
                    span(id, parent, start, start + random.below(n))
                })
                .collect();
            // Exact copies, as a retransmission sends them.
            for _ in 0..random.below(3) {
                let copy = spans[random.below(n) as usize].clone();
                spans.push(copy);
            }
            let mode = if round % 2 == 0 {
                Mode::Robust
            } else {
                Mode::Jaeger
            };
            let layout = Layout::build(stored(spans), mode);
            let len = layout.trace.trace.spans.len();
            let mut collapsed = HashSet::new();
            for pass in 0..2 {
                let window = layout.rows(0, usize::MAX, &collapsed);
                let got: Vec<RowFields> = window
                    .rows
                    .iter()
                    .map(|r| {
                        (
                            r.span,
                            r.depth,
                            r.parent_span,
                            r.parent_row,
                            r.children,
                            r.critical,
                        )
                    })
                    .collect();
                let want = reference_rows(&layout, &collapsed);
                assert_eq!(got, want, "round {round}, pass {pass}");
                assert_eq!(window.visible, want.len());
                // A second pass with some subtrees collapsed.
                collapsed = (0..len as u32).filter(|_| random.below(4) == 0).collect();
            }
        }
    }

    #[test]
    fn the_cache_keeps_recent_layouts_within_its_span_bound() {
        let cache = LayoutCache::new(5);
        let a = stored(vec![
            span(1, None, 0, 10),
            span(2, Some(1), 1, 2),
            span(3, Some(1), 3, 4),
        ]);
        let la = Arc::new(Layout::build(Arc::clone(&a), Mode::Robust));
        cache.put(Arc::clone(&la));
        assert!(cache.get(&a, Mode::Robust).is_some());
        assert!(cache.get(&a, Mode::Jaeger).is_none());
        cache.put(Arc::new(Layout::build(Arc::clone(&a), Mode::Jaeger)));
        // Six spans over a bound of five: the older layout went.
        assert!(cache.get(&a, Mode::Robust).is_none());
        assert!(cache.get(&a, Mode::Jaeger).is_some());
    }
}

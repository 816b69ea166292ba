//! A deliberately literal port of Jaeger UI's critical-path computation, for tests and
//! benchmarks only: insertion-ordered string-keyed maps, linear scans, and the recursive
//! last-finishing-child walk, in the order Jaeger UI performs them. Written from reading
//! jaeger-ui at commit c321fb32bbca0bdce9e8c2d40afb35abbf54c12b (August 2026): the trace is
//! built by `model/transform-trace-data.ts` and seen through `model/OtelTraceFacade.ts` and
//! `model/OtelSpanFacade.ts`; the path is `criticalPathForTrace` in
//! `components/TracePage/CriticalPath/index.ts` with `utils/cpspan.ts`,
//! `utils/sanitizeOverFlowingChildren.ts` and `utils/findLastFinishingChildSpan.ts`. Nothing
//! is copied. Never used by the library.

#![allow(dead_code)]

use std::collections::HashMap;

use lightstep_analysis::{ParentRelation, SpanKind, Trace};

/// Jaeger's reference types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefType {
    ChildOf,
    FollowsFrom,
}

/// A span as Jaeger's query API gives it to the UI: times in whatever unit the input used.
#[derive(Clone, Debug)]
pub(crate) struct JSpan {
    /// Position in the input, to map results back.
    pub(crate) index: usize,
    pub(crate) span_id: String,
    pub(crate) start_time: i128,
    pub(crate) duration: i128,
    pub(crate) references: Vec<(RefType, String)>,
    /// The value of the `span.kind` tag, if the span has one.
    pub(crate) kind_tag: Option<String>,
}

impl JSpan {
    pub(crate) fn new(
        index: usize,
        span_id: String,
        start_time: i128,
        duration: i128,
        references: Vec<(RefType, String)>,
    ) -> Self {
        Self {
            index,
            span_id,
            start_time,
            duration,
            references,
            kind_tag: None,
        }
    }

    pub(crate) fn with_kind_tag(mut self, kind: &str) -> Self {
        self.kind_tag = Some(kind.to_string());
        self
    }
}

/// A trace of the crate's model as Jaeger's query API would hand it to the UI: the parent as
/// the only reference, the kind as the `span.kind` tag.
pub(crate) fn to_jaeger(trace: &Trace) -> Vec<JSpan> {
    trace
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let refs = s
                .parent_id()
                .map(|p| {
                    let kind = match s.relation() {
                        ParentRelation::FollowsFrom => RefType::FollowsFrom,
                        _ => RefType::ChildOf,
                    };
                    vec![(kind, p.to_string())]
                })
                .unwrap_or_default();
            let span = JSpan::new(
                i,
                s.span_id().to_string(),
                i128::from(s.start_ns()),
                i128::from(s.end_ns()) - i128::from(s.start_ns()),
                refs,
            );
            match s.kind() {
                SpanKind::Unspecified => span,
                kind => span.with_kind_tag(kind.as_str()),
            }
        })
        .collect()
}

/// One section: input index of the span, start, end.
pub(crate) type JSection = (usize, i128, i128);

/// What Jaeger UI computed for one of its root spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RootRun {
    /// Input index of the root span.
    pub(crate) root: usize,
    /// The sections this root's walk pushed, in push order (latest first). When the walk threw,
    /// what it pushed before stays in Jaeger UI's array, as here.
    pub(crate) sections: Vec<JSection>,
    /// Whether the walk threw (here: it did not end within the step limit, where Jaeger UI
    /// overflows its call stack).
    pub(crate) failed: bool,
}

/// The result of `criticalPathForTrace`, root by root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JaegerRun {
    pub(crate) roots: Vec<RootRun>,
}

impl JaegerRun {
    /// Jaeger UI's `sections` array.
    pub(crate) fn sections(&self) -> Vec<JSection> {
        self.roots
            .iter()
            .flat_map(|r| r.sections.iter().copied())
            .collect()
    }

    /// Jaeger UI's `failed` flag.
    pub(crate) fn failed(&self) -> bool {
        self.roots.iter().any(|r| r.failed)
    }
}

/// A JavaScript `Map` with string keys: iteration in insertion order, where setting an existing
/// key keeps its place; every operation is constant time, as in JavaScript.
#[derive(Clone, Debug)]
struct JsMap<V> {
    /// Keys in insertion order; `None` where a key was deleted.
    order: Vec<Option<String>>,
    /// Each key's place in `order`, and its value.
    entries: HashMap<String, (usize, V)>,
}

impl<V> JsMap<V> {
    fn new() -> Self {
        Self {
            order: Vec::new(),
            entries: HashMap::new(),
        }
    }

    fn set(&mut self, key: &str, value: V) {
        match self.entries.get_mut(key) {
            Some(entry) => entry.1 = value,
            None => {
                self.entries
                    .insert(key.to_string(), (self.order.len(), value));
                self.order.push(Some(key.to_string()));
            }
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries.get_mut(key).map(|(_, v)| v)
    }

    fn delete(&mut self, key: &str) {
        if let Some((place, _)) = self.entries.remove(key) {
            self.order[place] = None;
        }
    }

    /// `[...map.keys()]`.
    fn keys(&self) -> Vec<String> {
        self.order.iter().flatten().cloned().collect()
    }
}

/// The span as `transformTraceData` leaves it.
#[derive(Clone, Debug)]
struct LegacySpan {
    index: usize,
    span_id: String,
    start_time: i128,
    duration: i128,
    references: Vec<(RefType, String)>,
    kind_tag: Option<String>,
    /// Positions in the span list.
    child_spans: Vec<usize>,
}

/// The parts of `IOtelSpan` the critical path reads.
#[derive(Clone, Debug)]
struct OtelSpan {
    index: usize,
    span_id: String,
    parent_span_id: Option<String>,
    kind: &'static str,
    start_time: i128,
    end_time: i128,
    duration: i128,
    child_span_ids: Vec<String>,
}

/// `CPSpan`.
#[derive(Clone, Debug)]
struct CpSpan {
    index: usize,
    span_id: String,
    parent_span_id: Option<String>,
    start_time: i128,
    end_time: i128,
    duration: i128,
    child_span_ids: Vec<String>,
}

/// Runs the whole pipeline. `step_limit` bounds each root's walk, to detect where Jaeger UI
/// recurses without end (and throws when its call stack overflows).
pub(crate) fn critical_path(input: Vec<JSpan>, step_limit: usize) -> JaegerRun {
    let (spans, roots) = transform_trace_data(input);
    let (otel, root_ids) = otel_trace(&spans, &roots);
    let mut runs = Vec::new();
    for root_id in root_ids {
        let Some(root) = otel.get(&root_id) else {
            continue;
        };
        let mut sections = Vec::new();
        let mut steps = 0;
        let span_map = sanitize_overflowing_children(create_cp_span_map(&otel, &root_id));
        let failed = compute(
            &span_map,
            &root_id,
            &mut sections,
            None,
            &mut steps,
            step_limit,
        )
        .is_err();
        runs.push(RootRun {
            root: root.index,
            sections,
            failed,
        });
    }
    JaegerRun { roots: runs }
}

/// `transformTraceData`: returns the spans (by input position) and the root spans in the
/// order they are kept (positions).
fn transform_trace_data(input: Vec<JSpan>) -> (Vec<LegacySpan>, Vec<usize>) {
    let mut spans: Vec<LegacySpan> = Vec::with_capacity(input.len());
    let mut span_id_counts: HashMap<String, usize> = HashMap::new();
    let mut span_map: JsMap<usize> = JsMap::new();
    for span in input {
        let mut span_id = span.span_id.clone();
        // Later duplicates of an id are renamed `id_1`, `id_2`, ...
        match span_id_counts.get(&span_id).copied() {
            Some(count) => {
                span_id_counts.insert(span_id.clone(), count + 1);
                span_id = format!("{span_id}_{count}");
            }
            None => {
                span_id_counts.insert(span_id.clone(), 1);
            }
        }
        let position = spans.len();
        spans.push(LegacySpan {
            index: span.index,
            span_id: span_id.clone(),
            start_time: span.start_time,
            duration: span.duration,
            references: span.references,
            kind_tag: span.kind_tag,
            child_spans: Vec::new(),
        });
        span_map.set(&span_id, position);
    }

    // Parents and roots: the first CHILD_OF or FOLLOWS_FROM reference to a span in the trace.
    let mut root_spans: Vec<usize> = Vec::new();
    for key in span_map.keys() {
        let Some(&position) = span_map.get(&key) else {
            continue;
        };
        let mut parent = None;
        for (_, referenced) in &spans[position].references {
            parent = span_map.get(referenced).copied();
            if parent.is_some() {
                break;
            }
        }
        match parent {
            Some(p) => spans[p].child_spans.push(position),
            None => root_spans.push(position),
        }
    }

    // A start that is not positive is repaired with the parent's (already repaired) start, or
    // 0 for a root; then depth first, children by start.
    fn repair_start_time(spans: &mut [LegacySpan], span: usize, parent: Option<usize>) {
        if spans[span].start_time <= 0 {
            let parent_start = parent.map_or(0, |p| spans[p].start_time);
            spans[span].start_time = if parent_start != 0 { parent_start } else { 0 };
        }
    }
    fn process_span(spans: &mut [LegacySpan], span: usize, visited: &mut Vec<usize>) {
        visited.push(span);
        let mut children = spans[span].child_spans.clone();
        for &child in &children {
            repair_start_time(spans, child, Some(span));
        }
        children.sort_by_key(|&c| spans[c].start_time);
        spans[span].child_spans = children.clone();
        for child in children {
            process_span(spans, child, visited);
        }
    }
    for &root in &root_spans {
        repair_start_time(&mut spans, root, None);
    }
    root_spans.sort_by_key(|&r| spans[r].start_time);
    let mut visited = Vec::new();
    for &root in &root_spans {
        process_span(&mut spans, root, &mut visited);
    }
    (spans, root_spans)
}

/// The OpenTelemetry view of the trace: parent id, kind and children of each span reachable
/// from a root (spans on a cycle are not in the trace's span list), by id, and the root span
/// ids in order.
fn otel_trace(spans: &[LegacySpan], roots: &[usize]) -> (JsMap<OtelSpan>, Vec<String>) {
    const KINDS: [&str; 5] = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
    let mut visited = vec![false; spans.len()];
    let mut stack: Vec<usize> = roots.to_vec();
    while let Some(s) = stack.pop() {
        if !visited[s] {
            visited[s] = true;
            stack.extend(&spans[s].child_spans);
        }
    }
    let mut map: JsMap<OtelSpan> = JsMap::new();
    for (position, span) in spans.iter().enumerate() {
        if !visited[position] {
            continue;
        }
        // The parent: the first CHILD_OF reference, else the first FOLLOWS_FROM one.
        let parent_span_id = span
            .references
            .iter()
            .find(|(kind, _)| *kind == RefType::ChildOf)
            .or_else(|| {
                span.references
                    .iter()
                    .find(|(kind, _)| *kind == RefType::FollowsFrom)
            })
            .map(|(_, id)| id.clone());
        let kind = span
            .kind_tag
            .as_deref()
            .map(str::to_uppercase)
            .and_then(|k| KINDS.iter().find(|&&known| known == k).copied())
            .unwrap_or("INTERNAL");
        map.set(
            &span.span_id,
            OtelSpan {
                index: span.index,
                span_id: span.span_id.clone(),
                parent_span_id,
                kind,
                start_time: span.start_time,
                end_time: span.start_time + span.duration,
                duration: span.duration,
                child_span_ids: span
                    .child_spans
                    .iter()
                    .map(|&c| spans[c].span_id.clone())
                    .collect(),
            },
        );
    }
    let root_ids = roots.iter().map(|&r| spans[r].span_id.clone()).collect();
    (map, root_ids)
}

/// `isBlockingSpan`.
fn is_blocking_span(child_kind: &str, parent_kind: Option<&str>) -> bool {
    !(parent_kind == Some("PRODUCER") && child_kind == "CONSUMER")
}

/// `createCPSpanMap`: the root's subtree without non-blocking branches, depth first.
fn create_cp_span_map(otel: &JsMap<OtelSpan>, root_id: &str) -> JsMap<CpSpan> {
    fn traverse(otel: &JsMap<OtelSpan>, span: &OtelSpan, map: &mut JsMap<CpSpan>) {
        map.set(
            &span.span_id,
            CpSpan {
                index: span.index,
                span_id: span.span_id.clone(),
                parent_span_id: span.parent_span_id.clone(),
                start_time: span.start_time,
                end_time: span.end_time,
                duration: span.duration,
                child_span_ids: Vec::new(),
            },
        );
        for child_id in &span.child_span_ids {
            let Some(child) = otel.get(child_id) else {
                continue;
            };
            if is_blocking_span(child.kind, Some(span.kind)) {
                if let Some(cp) = map.get_mut(&span.span_id) {
                    cp.child_span_ids.push(child.span_id.clone());
                }
                traverse(otel, child, map);
            }
        }
    }
    let mut map = JsMap::new();
    if let Some(root) = otel.get(root_id) {
        traverse(otel, root, &mut map);
    }
    map
}

/// `sanitizeOverFlowingChildren`, in the map's order (parents before children).
fn sanitize_overflowing_children(mut span_map: JsMap<CpSpan>) -> JsMap<CpSpan> {
    for span_id in span_map.keys() {
        let Some(span) = span_map.get(&span_id).cloned() else {
            continue;
        };
        let Some(parent_id) = span.parent_span_id.clone().filter(|p| !p.is_empty()) else {
            continue;
        };
        // Only the parent's times are read (its child list is large for a wide root).
        let Some((parent_start_time, parent_end_time)) =
            span_map.get(&parent_id).map(|p| (p.start_time, p.end_time))
        else {
            // The parent was dropped before (or is not in this root's tree): drop the child.
            span_map.delete(&span.span_id);
            continue;
        };
        let child_end_time = span.end_time;
        let drop_child = |span_map: &mut JsMap<CpSpan>| {
            span_map.delete(&span.span_id);
            if let Some(parent) = span_map.get_mut(&parent_id) {
                parent.child_span_ids.retain(|id| *id != span.span_id);
            }
        };
        if span.start_time >= parent_start_time {
            if span.start_time >= parent_end_time {
                drop_child(&mut span_map);
                continue;
            }
            if child_end_time > parent_end_time {
                span_map.set(
                    &span.span_id,
                    CpSpan {
                        duration: parent_end_time - span.start_time,
                        end_time: parent_end_time,
                        ..span.clone()
                    },
                );
            }
            continue;
        }
        if child_end_time <= parent_start_time {
            drop_child(&mut span_map);
        } else if child_end_time <= parent_end_time {
            span_map.set(
                &span.span_id,
                CpSpan {
                    start_time: parent_start_time,
                    duration: child_end_time - parent_start_time,
                    ..span.clone()
                },
            );
        } else {
            span_map.set(
                &span.span_id,
                CpSpan {
                    start_time: parent_start_time,
                    duration: parent_end_time - parent_start_time,
                    end_time: parent_end_time,
                    ..span.clone()
                },
            );
        }
    }
    span_map
}

/// JavaScript truthiness of an optional time.
fn truthy(time: Option<i128>) -> Option<i128> {
    time.filter(|&t| t != 0)
}

/// `findLastFinishingChildSpan`: the first child with the latest end (before the returning
/// child's start, when one is given).
fn find_last_finishing_child_span<'m>(
    span_map: &'m JsMap<CpSpan>,
    current: &CpSpan,
    returning_child_start_time: Option<i128>,
) -> Option<&'m CpSpan> {
    let mut last = None;
    let mut max_end_time = -1;
    for child_id in &current.child_span_ids {
        let Some(child) = span_map.get(child_id) else {
            continue;
        };
        let child_end_time = child.end_time;
        if let Some(returning) = truthy(returning_child_start_time) {
            if child_end_time < returning && child_end_time > max_end_time {
                max_end_time = child_end_time;
                last = Some(child);
            }
        } else if child_end_time > max_end_time {
            max_end_time = child_end_time;
            last = Some(child);
        }
    }
    last
}

/// `computeCriticalPath`, recursive as in Jaeger UI. `Err` where Jaeger UI's call stack
/// overflows.
fn compute(
    span_map: &JsMap<CpSpan>,
    span_id: &str,
    critical_path: &mut Vec<JSection>,
    returning_child_start_time: Option<i128>,
    steps: &mut usize,
    limit: usize,
) -> Result<(), ()> {
    *steps += 1;
    if *steps > limit {
        return Err(());
    }
    let Some(current) = span_map.get(span_id) else {
        return Ok(());
    };
    let section_end = truthy(returning_child_start_time).unwrap_or(current.end_time);
    match find_last_finishing_child_span(span_map, current, returning_child_start_time) {
        Some(child) => {
            if child.end_time != section_end {
                critical_path.push((current.index, child.end_time, section_end));
            }
            compute(span_map, &child.span_id, critical_path, None, steps, limit)
        }
        None => {
            if current.start_time != section_end {
                critical_path.push((current.index, current.start_time, section_end));
            }
            match current.parent_span_id.as_deref().filter(|p| !p.is_empty()) {
                Some(parent) => compute(
                    span_map,
                    parent,
                    critical_path,
                    Some(current.start_time),
                    steps,
                    limit,
                ),
                None => Ok(()),
            }
        }
    }
}

//! A deliberately literal port of Jaeger UI's critical-path computation, for tests and
//! benchmarks only: string-keyed maps, linear `find`s, and the recursive last-finishing-child
//! walk, in the order Jaeger UI performs them (`transformTraceData`, then `getChildOfSpans`,
//! `sanitizeOverFlowingChildren` and `computeCriticalPath`). Written from reading jaeger-ui;
//! nothing is copied. Never used by the library.

#![allow(dead_code)]

use std::collections::HashMap;

/// Jaeger's reference types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefType {
    ChildOf,
    FollowsFrom,
}

/// A span as Jaeger UI holds it: times in whatever unit the input used.
#[derive(Clone, Debug)]
pub(crate) struct JSpan {
    /// Position in the input, to map results back.
    pub(crate) index: usize,
    pub(crate) span_id: String,
    pub(crate) start_time: i128,
    pub(crate) duration: i128,
    pub(crate) references: Vec<(RefType, String)>,
    child_span_ids: Vec<String>,
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
            child_span_ids: Vec::new(),
        }
    }

    fn end(&self) -> i128 {
        self.start_time + self.duration
    }
}

/// One section: input index of the span, start, end. In push order (latest first).
pub(crate) type JSection = (usize, i128, i128);

/// Outcome of the port: the sections Jaeger UI would show, or that it fails.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JaegerOutcome {
    Sections(Vec<JSection>),
    /// Jaeger UI throws, overflows its stack or never terminates.
    Fails,
}

/// Runs the whole pipeline. `step_limit` bounds the walk to detect Jaeger's endless loops.
pub(crate) fn critical_path(input: Vec<JSpan>, step_limit: usize) -> JaegerOutcome {
    // transformTraceData: drop spans whose start is falsy, rename later duplicate ids.
    let mut spans: Vec<JSpan> = input.into_iter().filter(|s| s.start_time != 0).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for span in &mut spans {
        match counts.get(&span.span_id).copied() {
            Some(count) => {
                counts.insert(span.span_id.clone(), count + 1);
                span.span_id = format!("{}_{}", span.span_id, count);
            }
            None => {
                counts.insert(span.span_id.clone(), 1);
            }
        }
    }
    // getTraceSpanIdsAsTree: parent by first reference, else the synthetic root; children in
    // input order, then stably sorted by start time.
    let mut position: HashMap<String, usize> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        position.insert(span.span_id.clone(), i);
    }
    let mut tree_children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut top: Vec<usize> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span
            .references
            .first()
            .and_then(|(_, parent)| position.get(parent))
        {
            Some(&p) => tree_children[p].push(i),
            None => top.push(i),
        }
    }
    for list in tree_children.iter_mut().chain(std::iter::once(&mut top)) {
        list.sort_by_key(|&i| spans[i].start_time);
    }
    // Depth-first display order; children ids sorted by end time, latest first.
    let mut order = Vec::new();
    let mut visited = vec![false; spans.len()];
    fn visit(i: usize, children: &[Vec<usize>], order: &mut Vec<usize>, visited: &mut [bool]) {
        if visited[i] {
            return;
        }
        visited[i] = true;
        order.push(i);
        for &c in &children[i] {
            visit(c, children, order, visited);
        }
    }
    for &t in &top {
        visit(t, &tree_children, &mut order, &mut visited);
    }
    for i in 0..spans.len() {
        let mut kids = tree_children[i].clone();
        kids.sort_by(|&a, &b| spans[b].end().cmp(&spans[a].end()));
        spans[i].child_span_ids = kids.iter().map(|&k| spans[k].span_id.clone()).collect();
    }
    let Some(&first) = order.first() else {
        return JaegerOutcome::Sections(Vec::new());
    };
    let root_id = spans[first].span_id.clone();

    // The span map, in display order.
    let mut keys: Vec<String> = Vec::new();
    let mut map: HashMap<String, JSpan> = HashMap::new();
    for &i in &order {
        keys.push(spans[i].span_id.clone());
        map.insert(spans[i].span_id.clone(), spans[i].clone());
    }

    // getChildOfSpans.
    let mut follows: Vec<String> = Vec::new();
    for key in &keys {
        let Some(span) = map.get(key) else { continue };
        if let Some((RefType::FollowsFrom, parent_id)) = span.references.first().cloned() {
            follows.push(key.clone());
            let Some(parent) = map.get_mut(&parent_id) else {
                return JaegerOutcome::Fails;
            };
            parent.child_span_ids.retain(|c| c != key);
        }
    }
    let mut doomed = follows.clone();
    let mut frontier = follows;
    while let Some(id) = frontier.pop() {
        if let Some(span) = map.get(&id) {
            for c in &span.child_span_ids {
                doomed.push(c.clone());
                frontier.push(c.clone());
            }
        }
    }
    for id in doomed {
        map.remove(&id);
    }

    // sanitizeOverFlowingChildren. Jaeger UI reads the parent in place and replaces the child
    // by a shallow copy; only times are needed here, so nothing is copied (a deep copy of the
    // parent's child list per child would make this step quadratic, which Jaeger UI is not).
    for key in &keys {
        let Some((start_time, child_end, parent_id)) = map
            .get(key)
            .and_then(|s| Some((s.start_time, s.end(), s.references.first()?.1.clone())))
        else {
            continue;
        };
        let Some((parent_start, parent_end)) = map.get(&parent_id).map(|p| (p.start_time, p.end()))
        else {
            map.remove(key);
            continue;
        };
        let mut drop_child = false;
        let (mut new_start, mut new_duration) = (start_time, child_end - start_time);
        if start_time >= parent_start {
            if start_time >= parent_end {
                drop_child = true;
            } else if child_end > parent_end {
                new_duration = parent_end - start_time;
            }
        } else if child_end <= parent_start {
            drop_child = true;
        } else if child_end <= parent_end {
            new_start = parent_start;
            new_duration = child_end - parent_start;
        } else {
            new_start = parent_start;
            new_duration = parent_end - parent_start;
        }
        if drop_child {
            map.remove(key);
            if let Some(parent) = map.get_mut(&parent_id) {
                parent.child_span_ids.retain(|c| c != key);
            }
        } else if let Some(span) = map.get_mut(key) {
            span.start_time = new_start;
            span.duration = new_duration;
        }
    }

    // computeCriticalPath, recursive as in Jaeger UI.
    let mut sections = Vec::new();
    let mut steps = 0usize;
    match compute(&map, &root_id, &mut sections, None, &mut steps, step_limit) {
        // A reversed section (from a negative duration) is garbage on screen, not a path.
        Ok(()) if sections.iter().any(|(_, s, e)| s > e) => JaegerOutcome::Fails,
        Ok(()) => JaegerOutcome::Sections(sections),
        Err(()) => JaegerOutcome::Fails,
    }
}

fn compute(
    map: &HashMap<String, JSpan>,
    span_id: &str,
    path: &mut Vec<JSection>,
    returning_child_start: Option<i128>,
    steps: &mut usize,
    limit: usize,
) -> Result<(), ()> {
    *steps += 1;
    if *steps > limit {
        return Err(());
    }
    let Some(current) = map.get(span_id) else {
        return Err(());
    };
    // JavaScript truthiness: a start time of 0 counts as "not given".
    let returning = returning_child_start.filter(|&t| t != 0);
    let lfc = match returning {
        Some(t) => current
            .child_span_ids
            .iter()
            .find(|id| map.get(*id).is_some_and(|c| c.end() < t))
            .and_then(|id| map.get(id)),
        None => current.child_span_ids.first().and_then(|id| map.get(id)),
    };
    let section_end = returning.unwrap_or_else(|| current.end());
    match lfc {
        Some(child) => {
            if child.end() != section_end {
                path.push((current.index, child.end(), section_end));
            }
            compute(map, &child.span_id, path, None, steps, limit)
        }
        None => {
            if current.start_time != section_end {
                path.push((current.index, current.start_time, section_end));
            }
            match current
                .references
                .iter()
                .find(|(kind, _)| *kind == RefType::ChildOf)
            {
                Some((_, parent)) => {
                    compute(map, parent, path, Some(current.start_time), steps, limit)
                }
                None if current.references.is_empty() => Ok(()),
                None => Err(()),
            }
        }
    }
}

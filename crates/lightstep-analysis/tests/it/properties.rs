//! Property tests on random messy traces: duplicates, orphans, self-parents, cycles, spans
//! outside their parents, zero and negative durations, time 0, follows-from and consumers.

use lightstep_analysis::{
    Analyzer, AssembledTrace, CriticalPathAnalysis, Mode, OffPathReason, Options, ParentRelation,
    Span, SpanId, SpanKind, Trace, TraceId, analyze_assembled, analyze_critical_path, assemble,
};
use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use crate::jaeger_port::{self, to_jaeger};
use crate::oracle;

#[derive(Clone, Debug)]
struct RawSpan {
    id: u64,
    parent: Option<u64>,
    start: u64,
    duration: i64,
    follows_from: bool,
    kind: SpanKind,
    copy_previous: bool,
}

fn kind() -> impl Strategy<Value = SpanKind> {
    prop_oneof![
        10 => Just(SpanKind::Unspecified),
        1 => Just(SpanKind::Consumer),
        1 => Just(SpanKind::Producer),
    ]
}

fn start() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 12 => 0..400u64]
}

fn duration() -> impl Strategy<Value = i64> {
    prop_oneof![1 => -30..0i64, 1 => Just(0i64), 10 => 0..300i64]
}

fn raw_span(max_id: u64) -> impl Strategy<Value = RawSpan> {
    (
        1..=max_id,
        prop::option::weighted(0.85, 1..=max_id + 2),
        start(),
        duration(),
        prop::bool::weighted(0.08),
        kind(),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(id, parent, start, duration, follows_from, kind, copy_previous)| RawSpan {
                id,
                parent,
                start,
                duration,
                follows_from,
                kind,
                copy_previous,
            },
        )
}

/// Anything goes: duplicate ids, orphans, self-parents, cycles, several roots.
fn messy_trace() -> impl Strategy<Value = Trace> {
    (1..40u64)
        .prop_flat_map(|n| prop::collection::vec(raw_span(n + 3), 1..=n as usize))
        .prop_map(build)
}

/// One root (the first span) and every parent present, but otherwise messy: children
/// outside, overlapping and overflowing their parents, zero and negative durations, time 0,
/// follows-from, producers and consumers, retransmitted copies.
fn single_root_trace() -> impl Strategy<Value = Trace> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            start(),
            duration(),
            prop::bool::weighted(0.08),
            kind(),
            prop::bool::weighted(0.05),
        ),
        1..40,
    )
    .prop_map(|rows| {
        let raws = rows
            .iter()
            .enumerate()
            .map(
                |(i, (parent, start, duration, follows_from, kind, _))| RawSpan {
                    id: i as u64 + 1,
                    parent: (i > 0).then(|| parent.index(i) as u64 + 1),
                    start: *start,
                    duration: *duration,
                    follows_from: i > 0 && *follows_from,
                    kind: *kind,
                    copy_previous: false,
                },
            )
            .collect();
        let mut trace = build(raws);
        // Retransmissions: an exact copy right after the span, which keeps every id present.
        let mut spans = Vec::with_capacity(trace.spans.len());
        for (span, (.., copied)) in trace.spans.drain(..).zip(&rows) {
            if *copied {
                spans.push(span.clone());
            }
            spans.push(span);
        }
        Trace::new(trace.trace_id, spans)
    })
}

/// Well-formed trees: unique ids, every parent present and earlier, no zero or negative
/// durations; times still overlap, touch and overflow freely.
fn tidy_trace() -> impl Strategy<Value = Trace> {
    prop::collection::vec((any::<prop::sample::Index>(), 1..400u64, 0..300i64), 1..40).prop_map(
        |rows| {
            let raws = rows
                .iter()
                .enumerate()
                .map(|(i, (parent, start, duration))| RawSpan {
                    id: i as u64 + 1,
                    parent: (i > 0).then(|| parent.index(i) as u64 + 1),
                    start: *start,
                    duration: *duration,
                    follows_from: false,
                    kind: SpanKind::Unspecified,
                    copy_previous: false,
                })
                .collect();
            build(raws)
        },
    )
}

fn build(raws: Vec<RawSpan>) -> Trace {
    let trace_id = TraceId::from_u128(0xabc);
    let mut spans: Vec<Span> = Vec::new();
    for raw in raws {
        if raw.copy_previous
            && let Some(last) = spans.last().cloned()
        {
            spans.push(last);
            continue;
        }
        let end = raw.start.saturating_add_signed(raw.duration);
        let mut span = Span::new(trace_id.clone(), SpanId::from_u64(raw.id), raw.start, end)
            .with_service(if raw.id % 2 == 0 { "even" } else { "odd" })
            .with_name(format!("op{}", raw.id % 3))
            .with_kind(raw.kind);
        if let Some(parent) = raw.parent {
            span = span.with_parent(SpanId::from_u64(parent));
        }
        if raw.follows_from {
            span = span.with_relation(ParentRelation::FollowsFrom);
        }
        spans.push(span);
    }
    Trace::new(trace_id, spans)
}

/// How Jaeger mode compared with the literal port of Jaeger UI on one trace.
#[derive(Debug, Default)]
pub(crate) struct JaegerComparison {
    /// Roots whose sections were compared (and equal).
    pub(crate) roots_compared: usize,
    /// Roots where Jaeger UI fails (throws, or draws reversed sections).
    pub(crate) roots_failed: usize,
}

/// The top-level span above `span` in the assembled forest.
fn top_of(assembled: &AssembledTrace, mut span: usize) -> usize {
    while let Some(parent) = assembled.parent(span) {
        span = parent;
    }
    span
}

/// Compares Jaeger mode with the port, root by root: on every root where Jaeger UI succeeds,
/// the sections of that root's tree are exactly Jaeger UI's, in order; where it fails on any
/// root, the analysis says so, and only then.
pub(crate) fn check_jaeger_against_port(trace: &Trace) -> Result<JaegerComparison, String> {
    let assembled = assemble(trace, &Options::new(Mode::Jaeger));
    let analysis = analyze_assembled(trace, &assembled);
    let run = jaeger_port::critical_path(to_jaeger(trace), 4 * trace.spans.len() + 8);
    let ours: Vec<(usize, i128, i128)> = analysis
        .sections
        .iter()
        .map(|s| (s.span, i128::from(s.start_ns), i128::from(s.end_ns)))
        .collect();
    let mut comparison = JaegerComparison::default();
    for root in &run.roots {
        if root.failed || root.sections.iter().any(|(_, s, e)| s > e) {
            comparison.roots_failed += 1;
            continue;
        }
        let mut expected = root.sections.clone();
        expected.reverse();
        let of_root: Vec<_> = ours
            .iter()
            .copied()
            .filter(|&(span, ..)| top_of(&assembled, span) == root.root)
            .collect();
        if of_root != expected {
            return Err(format!(
                "root {}: ours {of_root:?}, Jaeger UI {expected:?}",
                root.root
            ));
        }
        comparison.roots_compared += 1;
    }
    let failure = analysis.diagnostics.jaeger_failure;
    if comparison.roots_failed > 0 {
        if failure.is_none() {
            return Err("Jaeger UI fails, the analysis does not say so".into());
        }
    } else {
        // Nothing failed: every section is one of Jaeger UI's, chronological by start.
        let all = run.sections().len();
        if ours.len() != all {
            return Err(format!("{} sections, Jaeger UI has {all}", ours.len()));
        }
        if !ours.is_sorted_by_key(|&(_, s, _)| s) {
            return Err(format!("sections out of order: {ours:?}"));
        }
        // The only failure reported where Jaeger UI does not fail is why it shows no path.
        if failure.is_some() && analysis.diagnostics.roots > 0 {
            return Err(format!("failure {failure:?} where Jaeger UI succeeds"));
        }
    }
    Ok(comparison)
}

/// Parent index by raw parent id, for traces with unique ids (retransmitted copies aside).
fn raw_parents(trace: &Trace) -> Vec<Option<usize>> {
    let mut by_id: HashMap<&SpanId, usize> = HashMap::new();
    for (i, span) in trace.spans.iter().enumerate() {
        by_id.entry(span.span_id()).or_insert(i);
    }
    trace
        .spans
        .iter()
        .map(|s| s.parent_id().and_then(|p| by_id.get(p).copied()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn robust_matches_the_oracle_and_keeps_invariants(trace in messy_trace(), skew in any::<bool>()) {
        let options = Options::new(Mode::Robust).with_skew_correction(skew);
        let assembled = assemble(&trace, &options);
        let analysis = analyze_assembled(&trace, &assembled);
        prop_assert_eq!(oracle::pieces(&analysis), oracle::robust(&assembled));
        if let Err(problem) = oracle::check_invariants(&assembled, &analysis) {
            return Err(TestCaseError::fail(problem));
        }
        // Every span that was not dropped is in the forest once: as a top-level span or as a
        // child of its assembled parent, and each attached child lies in its parent.
        let mut seen = vec![0u32; trace.spans.len()];
        for top in assembled.top_level() {
            seen[top] += 1;
        }
        for i in 0..trace.spans.len() {
            for c in assembled.children(i) {
                seen[c] += 1;
                prop_assert_eq!(assembled.parent(c), Some(i));
                let (ps, pe) = assembled.window(i).unwrap();
                let (cs, ce) = assembled.window(c).unwrap();
                prop_assert!(ps <= cs && cs <= ce && ce <= pe);
            }
        }
        for (i, count) in seen.iter().enumerate() {
            let expected = u32::from(assembled.window(i).is_some());
            prop_assert_eq!(*count, expected, "span {} appears {} times", i, count);
        }
        let dropped = analysis.diagnostics.duplicates_dropped;
        prop_assert_eq!(seen.iter().filter(|&&c| c == 1).count() + dropped, trace.spans.len());
        // Spans off the path are reported, each once, and nothing below them is on the path.
        let off: Vec<_> = analysis.off_path.iter().map(|o| (o.span, o.reason)).collect();
        prop_assert_eq!(&off, &assembled.off_path().collect::<Vec<_>>());
        let count = |reason| off.iter().filter(|(_, r)| *r == reason).count();
        prop_assert_eq!(count(OffPathReason::OutsideParent), analysis.diagnostics.detached);
        prop_assert_eq!(count(OffPathReason::NonBlocking), analysis.diagnostics.non_blocking);
        for section in &analysis.sections {
            let mut at = Some(section.span);
            while let Some(span) = at {
                prop_assert!(
                    !off.iter().any(|(o, _)| *o == span),
                    "span {} is on the path below span {}, which is off it", section.span, span
                );
                at = assembled.parent(span);
            }
        }
    }

    /// One root and no orphans: whatever else is wrong with the trace, the critical path
    /// explains the root's request exactly, and nothing else.
    #[test]
    fn robust_sections_tile_a_single_root(trace in single_root_trace(), skew in any::<bool>()) {
        let options = Options::new(Mode::Robust).with_skew_correction(skew);
        let analysis = analyze_critical_path(&trace, &options);
        let root = &trace.spans[0];
        // A root that ends before it starts is an instant.
        let (start, end) = (root.start_ns(), root.end_ns().max(root.start_ns()));
        prop_assert_eq!((analysis.start_ns, analysis.end_ns), (start, end));
        prop_assert!(analysis.gaps.is_empty());
        let mut at = start;
        for section in &analysis.sections {
            prop_assert!(section.start_ns >= at, "overlap or disorder at {:?}", section);
            prop_assert!(section.start_ns < section.end_ns && section.end_ns <= end);
            at = section.end_ns;
        }
        prop_assert_eq!(analysis.critical_ns(), end - start);
        // Whatever is off the path has a parent; it is reported as non-blocking exactly when
        // its relation or kind says so, and otherwise lies outside its parent.
        let parents = raw_parents(&trace);
        for off in &analysis.off_path {
            let span = &trace.spans[off.span];
            prop_assert!(parents[off.span].is_some());
            let blocking = span.relation() != ParentRelation::FollowsFrom
                && span.kind() != SpanKind::Consumer;
            prop_assert_eq!(off.reason == OffPathReason::NonBlocking, !blocking);
        }
    }

    #[test]
    fn path_names_and_shares_agree_with_the_spans(trace in messy_trace(), jaeger in any::<bool>()) {
        let mode = if jaeger { Mode::Jaeger } else { Mode::Robust };
        let analysis = analyze_critical_path(&trace, &Options::new(mode));
        // The slow way: self time summed by the span's own names.
        let mut by_operation: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut by_service: BTreeMap<String, u64> = BTreeMap::new();
        for p in &analysis.path {
            let span = &trace.spans[p.span];
            prop_assert_eq!(analysis.service_of(p), span.service());
            prop_assert_eq!(analysis.name_of(p), span.name());
            *by_operation.entry((span.service().into(), span.name().into())).or_default() += p.self_ns;
            *by_service.entry(span.service().into()).or_default() += p.self_ns;
        }
        let operations: BTreeMap<(String, String), u64> = analysis
            .operations
            .iter()
            .map(|s| ((s.service.to_string(), s.operation.as_deref().unwrap_or("?").to_string()), s.critical_ns))
            .collect();
        prop_assert_eq!(operations.len(), analysis.operations.len(), "an operation listed twice");
        prop_assert_eq!(operations, by_operation);
        let services: BTreeMap<String, u64> = analysis
            .services
            .iter()
            .map(|s| (s.service.to_string(), s.critical_ns))
            .collect();
        prop_assert_eq!(services.len(), analysis.services.len(), "a service listed twice");
        prop_assert_eq!(services, by_service);
        for list in [&analysis.operations, &analysis.services] {
            for pair in list.windows(2) {
                let key = |s: &lightstep_analysis::Share| (std::cmp::Reverse(s.critical_ns), s.service.clone(), s.operation.clone());
                prop_assert!(key(&pair[0]) < key(&pair[1]), "not ranked: {:?}", pair);
            }
        }
    }

    /// Random messy traces in Jaeger mode against the literal port of Jaeger UI's current code,
    /// root by root.
    #[test]
    fn jaeger_mode_equals_jaeger_ui_root_by_root(trace in messy_trace()) {
        if let Err(problem) = check_jaeger_against_port(&trace) {
            return Err(TestCaseError::fail(problem));
        }
    }

    /// The same with one root and every parent present.
    #[test]
    fn jaeger_mode_equals_jaeger_ui_on_single_roots(trace in single_root_trace()) {
        if let Err(problem) = check_jaeger_against_port(&trace) {
            return Err(TestCaseError::fail(problem));
        }
    }

    #[test]
    fn jaeger_mode_on_tidy_traces_is_never_a_failure(trace in tidy_trace()) {
        let analysis = analyze_critical_path(&trace, &Options::new(Mode::Jaeger));
        prop_assert_eq!(analysis.diagnostics.jaeger_failure, None);
        let comparison = check_jaeger_against_port(&trace).map_err(TestCaseError::fail)?;
        prop_assert_eq!((comparison.roots_compared, comparison.roots_failed), (1, 0));
        // On tidy traces Jaeger's sections also tile its root's window.
        let total: u64 = analysis.sections.iter().map(|s| s.duration_ns()).sum();
        prop_assert_eq!(total, analysis.duration_ns());
    }

    /// A result reused trace after trace holds exactly what a fresh one would: nothing of the
    /// earlier traces stays behind (longer paths, ids, gaps, diagnostics).
    #[test]
    fn a_reused_result_equals_a_fresh_one(
        traces in proptest::collection::vec(messy_trace(), 1..5),
        jaeger in any::<bool>(),
    ) {
        let options = Options::new(if jaeger { Mode::Jaeger } else { Mode::Robust });
        let mut analyzer = Analyzer::new(options.clone());
        let mut reused = CriticalPathAnalysis::default();
        for trace in &traces {
            analyzer.analyze_into(trace, &mut reused);
            prop_assert_eq!(&reused, &analyze_critical_path(trace, &options));
        }
    }
}

/// Fixture bytes with random damage: the readers must return an error or traces, never panic,
/// and whatever traces they return must analyze.
fn damaged_fixture() -> impl Strategy<Value = Vec<u8>> {
    let files: Vec<Vec<u8>> = crate::fixtures::fixture_files()
        .into_iter()
        .filter(|f| {
            std::fs::metadata(f)
                .map(|m| m.len() < 200_000)
                .unwrap_or(false)
        })
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    (
        prop::sample::select(files),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut bytes, edits, cut)| {
            for (at, byte, op) in edits {
                let i = at.index(bytes.len().max(1));
                match op {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i.min(bytes.len()), byte),
                    _ if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    _ => {}
                }
            }
            let keep = cut.index(bytes.len() + 1).max(bytes.len() * 3 / 4);
            bytes.truncate(keep);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn readers_survive_damaged_input(bytes in damaged_fixture()) {
        use lightstep_analysis::read::{Format, read_traces};
        for format in [None, Some(Format::OtlpJson), Some(Format::OtlpProto), Some(Format::JaegerJson), Some(Format::ZipkinJson)] {
            let result = read_traces(bytes.as_slice(), std::path::Path::new("damaged"), format, |trace| {
                for mode in [Mode::Robust, Mode::Jaeger] {
                    let analysis = analyze_critical_path(&trace, &Options::new(mode));
                    assert!(analysis.critical_ns() <= analysis.duration_ns() || mode == Mode::Jaeger);
                }
                Ok(())
            });
            if let Err(err) = result {
                let message = err.to_string();
                prop_assert!(message.starts_with("damaged"), "{}", message);
                prop_assert!(!message.contains('\n'));
            }
        }
    }
}

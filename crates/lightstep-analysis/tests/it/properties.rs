//! Property tests on random messy traces: duplicates, orphans, self-parents, cycles, spans
//! outside their parents, zero and negative durations, time 0, follows-from and consumers.

use lightstep_analysis::{
    Analyzer, CriticalPathAnalysis, Mode, Options, ParentRelation, Span, SpanId, SpanKind, Trace,
    TraceId, analyze_assembled, analyze_critical_path, assemble,
};
use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::jaeger_port::{self, JSpan, JaegerOutcome, RefType};
use crate::oracle;

#[derive(Clone, Debug)]
struct RawSpan {
    id: u64,
    parent: Option<u64>,
    start: u64,
    duration: i64,
    follows_from: bool,
    consumer: bool,
    copy_previous: bool,
}

fn raw_span(max_id: u64) -> impl Strategy<Value = RawSpan> {
    (
        1..=max_id,
        prop::option::weighted(0.85, 1..=max_id + 2),
        prop_oneof![1 => Just(0u64), 12 => 0..400u64],
        prop_oneof![1 => -30..0i64, 1 => Just(0i64), 10 => 0..300i64],
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(id, parent, start, duration, follows_from, consumer, copy_previous)| RawSpan {
                id,
                parent,
                start,
                duration,
                follows_from,
                consumer,
                copy_previous,
            },
        )
}

fn messy_trace() -> impl Strategy<Value = Trace> {
    (1..40u64)
        .prop_flat_map(|n| prop::collection::vec(raw_span(n + 3), 1..=n as usize))
        .prop_map(build)
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
                    consumer: false,
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
            .with_name(format!("op{}", raw.id % 3));
        if let Some(parent) = raw.parent {
            span = span.with_parent(SpanId::from_u64(parent));
        }
        if raw.follows_from {
            span = span.with_relation(ParentRelation::FollowsFrom);
        }
        if raw.consumer {
            span = span.with_kind(SpanKind::Consumer);
        }
        spans.push(span);
    }
    Trace::new(trace_id, spans)
}

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
            JSpan::new(
                i,
                s.span_id().to_string(),
                i128::from(s.start_ns()),
                i128::from(s.end_ns()) - i128::from(s.start_ns()),
                refs,
            )
        })
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

    #[test]
    fn jaeger_mode_equals_the_port_wherever_jaeger_succeeds(trace in messy_trace()) {
        let analysis = analyze_critical_path(&trace, &Options::new(Mode::Jaeger));
        let limit = 4 * trace.spans.len() + 8;
        if let JaegerOutcome::Sections(mut expected) = jaeger_port::critical_path(to_jaeger(&trace), limit) {
            expected.reverse();
            let ours: Vec<_> = analysis
                .sections
                .iter()
                .map(|s| (s.span, i128::from(s.start_ns), i128::from(s.end_ns)))
                .collect();
            prop_assert_eq!(ours, expected);
        }
    }

    #[test]
    fn jaeger_mode_on_tidy_traces_is_never_a_failure(trace in tidy_trace()) {
        let analysis = analyze_critical_path(&trace, &Options::new(Mode::Jaeger));
        prop_assert_eq!(analysis.diagnostics.jaeger_failure, None);
        let outcome = jaeger_port::critical_path(to_jaeger(&trace), 4 * trace.spans.len() + 8);
        let JaegerOutcome::Sections(mut expected) = outcome else {
            return Err(TestCaseError::fail("the port failed on a tidy trace"));
        };
        expected.reverse();
        let ours: Vec<_> = analysis
            .sections
            .iter()
            .map(|s| (s.span, i128::from(s.start_ns), i128::from(s.end_ns)))
            .collect();
        prop_assert_eq!(ours, expected);
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

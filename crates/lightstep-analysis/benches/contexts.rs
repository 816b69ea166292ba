//! Calling-context aggregation (folded stacks) side by side with the flat per-operation
//! aggregate, over the same 1,000 traces of 1,000 spans, in one run.
//!
//! `cargo bench -p lightstep-analysis --bench contexts`. The traces are assembled and analyzed
//! once, before the timing, so that the `flat` and `folded` rows time the aggregation alone;
//! the `assemble_and_analyze` row times what `lightstep analyze` does before either, for scale.

#![allow(missing_docs, unreachable_pub)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use lightstep_analysis::aggregate::Aggregator;
use lightstep_analysis::context::{ContextAggregator, ContextOptions};
use lightstep_analysis::render::write_folded;
use lightstep_analysis::{
    AssembledTrace, CriticalPathAnalysis, Options, Span, SpanId, Trace, TraceId, analyze_assembled,
    assemble,
};

const TRACES: u64 = 1_000;
const SPANS: u64 = 1_000;

/// A random tree of `SPANS` spans: each span's parent is an earlier span, its window inside
/// the parent's; 20 services of 5 operations each, so that contexts repeat across traces as
/// they do in a real service graph.
fn trace(k: u64) -> Trace {
    let t = TraceId::from_u128(u128::from(k) + 1);
    let mut state = (k + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut windows: Vec<(u64, u64)> = Vec::with_capacity(SPANS as usize);
    let mut spans = Vec::with_capacity(SPANS as usize);
    windows.push((1_000, 1_000 + 1_000_000_000));
    spans.push(
        Span::new(t.clone(), SpanId::from_u64(1), windows[0].0, windows[0].1)
            .with_service("frontend")
            .with_name("GET /"),
    );
    for i in 1..SPANS {
        // Parents among the last few spans make deeper chains than uniform choice would.
        let p = i - 1 - next() % i.min(8);
        let (ps, pe) = windows[p as usize];
        let s = ps + next() % (pe - ps).max(1);
        let e = s + next() % (pe - s).max(1);
        windows.push((s, e));
        let service = next() % 20;
        let operation = next() % 5;
        spans.push(
            Span::new(t.clone(), SpanId::from_u64(i + 1), s, e)
                .with_parent(SpanId::from_u64(p + 1))
                .with_service(format!("service-{service}"))
                .with_name(format!("operation-{operation}")),
        );
    }
    Trace::new(t, spans)
}

fn contexts(c: &mut Criterion) {
    let traces: Vec<Trace> = (0..TRACES).map(trace).collect();
    let options = Options::default();
    let analyzed: Vec<(AssembledTrace, CriticalPathAnalysis)> = traces
        .iter()
        .map(|trace| {
            let assembled = assemble(trace, &options);
            let analysis = analyze_assembled(trace, &assembled);
            (assembled, analysis)
        })
        .collect();

    let mut group = c.benchmark_group("contexts_1m");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(TRACES * SPANS));
    group.bench_function("flat", |b| {
        b.iter(|| {
            let mut aggregator = Aggregator::new();
            for (_, analysis) in &analyzed {
                aggregator.add(analysis);
            }
            black_box(aggregator.finish().operations.len())
        })
    });
    group.bench_function("folded", |b| {
        b.iter(|| {
            let mut aggregator = ContextAggregator::new(ContextOptions::default());
            for (trace, (assembled, analysis)) in traces.iter().zip(&analyzed) {
                aggregator.add(trace, assembled, analysis);
            }
            let tree = aggregator.finish();
            write_folded(&mut std::io::sink(), &tree).expect("a sink takes anything");
            black_box(tree.nodes.len())
        })
    });
    group.bench_function("assemble_and_analyze", |b| {
        b.iter(|| {
            for trace in &traces {
                let assembled = assemble(trace, &options);
                black_box(analyze_assembled(trace, &assembled).path.len());
            }
        })
    });
    group.finish();

    // What the rows worked on, to read the figures by.
    let mut aggregator = ContextAggregator::new(ContextOptions::default());
    for (trace, (assembled, analysis)) in traces.iter().zip(&analyzed) {
        aggregator.add(trace, assembled, analysis);
    }
    let tree = aggregator.finish();
    let path_spans: usize = analyzed.iter().map(|(_, a)| a.path.len()).sum();
    let deepest = tree.nodes.iter().map(|n| n.depth).max().unwrap_or(0);
    eprintln!(
        "{TRACES} traces, {} spans, {path_spans} on critical paths; {} calling contexts, deepest {deepest} frames",
        TRACES * SPANS,
        tree.nodes.len(),
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    contexts(&mut c);
    c.final_summary();
}

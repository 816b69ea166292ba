//! Critical-path benchmarks: our walk on million-span traces in three shapes and on the real
//! fixtures, and side by side with a literal port of Jaeger UI's recursive algorithm on the same
//! 100,000-span traces.
//!
//! `cargo bench -p lightstep-analysis --bench critical_path`. The Jaeger port is quadratic on a
//! wide root, so that case is timed once outside criterion (criterion needs ten runs, which
//! would take most of an hour) and printed as a table with the ratio.

#![allow(missing_docs, unreachable_pub, clippy::print_stdout)]

#[path = "../tests/it/jaeger_port.rs"]
mod jaeger_port;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use jaeger_port::{JSpan, JaegerRun, to_jaeger};
use lightstep_analysis::read::read_path;
use lightstep_analysis::{
    Analyzer, CriticalPathAnalysis, Mode, Options, Span, SpanId, Trace, TraceId,
    analyze_critical_path,
};

const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/traces");

/// A root with `n - 1` children that run one after the other.
fn sequential_children(n: u64) -> Trace {
    let t = TraceId::from_u128(1);
    let mut spans = Vec::with_capacity(n as usize);
    spans.push(
        Span::new(t.clone(), SpanId::from_u64(1), 1_000, 1_000 + 10 * n + 10).with_service("root"),
    );
    for i in 1..n {
        let start = 1_000 + 10 * i;
        spans.push(
            Span::new(t.clone(), SpanId::from_u64(i + 1), start, start + 9)
                .with_parent(SpanId::from_u64(1))
                .with_service("leaf"),
        );
    }
    Trace::new(t, spans)
}

/// Each span the only child of the previous one.
fn chain(n: u64) -> Trace {
    let t = TraceId::from_u128(2);
    let spans = (0..n)
        .map(|i| {
            let span = Span::new(
                t.clone(),
                SpanId::from_u64(i + 1),
                1_000 + i,
                1_000 + 2 * n - i,
            );
            if i == 0 {
                span
            } else {
                span.with_parent(SpanId::from_u64(i))
            }
        })
        .collect();
    Trace::new(t, spans)
}

/// A random tree: each span's parent is an earlier span, its window inside the parent's.
fn random_tree(n: u64, seed: u64) -> Trace {
    let t = TraceId::from_u128(3);
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut windows: Vec<(u64, u64)> = Vec::with_capacity(n as usize);
    let mut spans = Vec::with_capacity(n as usize);
    windows.push((1_000, 1_000 + 1_000_000_000));
    spans.push(Span::new(
        t.clone(),
        SpanId::from_u64(1),
        windows[0].0,
        windows[0].1,
    ));
    for i in 1..n {
        let p = next() % i;
        let (ps, pe) = windows[p as usize];
        let len = pe - ps;
        let s = ps + next() % len.max(1);
        let e = s + next() % (pe - s).max(1);
        windows.push((s, e));
        spans.push(
            Span::new(t.clone(), SpanId::from_u64(i + 1), s, e)
                .with_parent(SpanId::from_u64(p + 1))
                .with_service(if i % 3 == 0 { "a" } else { "b" }),
        );
    }
    Trace::new(t, spans)
}

/// Runs the recursive port on a thread with a stack big enough for its depth.
fn run_port(input: Vec<JSpan>) -> JaegerRun {
    let limit = 4 * input.len() + 8;
    std::thread::Builder::new()
        .stack_size(4 << 30)
        .spawn(move || jaeger_port::critical_path(input, limit))
        .expect("spawn")
        .join()
        .expect("port finished")
}

fn shapes(n: u64) -> Vec<(&'static str, Trace)> {
    vec![
        ("sequential_children", sequential_children(n)),
        ("chain", chain(n)),
        ("random_tree", random_tree(n, 0x9e37_79b9_7f4a_7c15)),
    ]
}

fn million(c: &mut Criterion) {
    let mut group = c.benchmark_group("analysis_1m");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, trace) in shapes(1_000_000) {
        group.throughput(Throughput::Elements(trace.spans.len() as u64));
        for mode in [Mode::Robust, Mode::Jaeger] {
            let options = Options::new(mode);
            // One trace, one fresh result (dropped inside the timing, as a caller would).
            group.bench_with_input(BenchmarkId::new(name, mode.as_str()), &trace, |b, trace| {
                b.iter(|| black_box(analyze_critical_path(trace, &options)))
            });
            // Trace after trace into the same result, as aggregation and the command line do.
            let mut analyzer = Analyzer::new(options);
            let mut out = CriticalPathAnalysis::default();
            group.bench_with_input(
                BenchmarkId::new(name, format!("{}_reusing", mode.as_str())),
                &trace,
                |b, trace| {
                    b.iter(|| {
                        analyzer.analyze_into(trace, &mut out);
                        black_box(out.sections.len())
                    })
                },
            );
        }
    }
    group.finish();
}

fn side_by_side(c: &mut Criterion) {
    let mut group = c.benchmark_group("vs_jaeger_ui_100k");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, trace) in shapes(100_000) {
        if name == "sequential_children" {
            // Quadratic in the Jaeger port: timed once in `one_shot` instead.
            continue;
        }
        let options = Options::new(Mode::Jaeger);
        group.bench_with_input(
            BenchmarkId::new("lightstep_jaeger_mode", name),
            &trace,
            |b, trace| b.iter(|| black_box(analyze_critical_path(trace, &options))),
        );
        let input = to_jaeger(&trace);
        group.bench_with_input(
            BenchmarkId::new("jaeger_ui_port", name),
            &input,
            // The copy the port consumes is made outside the timed part.
            |b, input| {
                b.iter_batched(
                    || input.clone(),
                    |input| black_box(run_port(input)),
                    BatchSize::LargeInput,
                )
            },
        );
    }
    group.finish();
}

fn fixtures(c: &mut Criterion) {
    let mut traces = Vec::new();
    for file in [
        "zipkin/smartthings-mobile-web-install.json",
        "deathstarbench/socialnetwork-compose-post.json",
    ] {
        let path = std::path::Path::new(TRACES).join(file);
        read_path(&path, None, |t| {
            traces.push(t);
            Ok(())
        })
        .expect("fixture reads");
    }
    let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
    let mut group = c.benchmark_group("fixtures");
    group.throughput(Throughput::Elements(spans as u64));
    group.bench_function("smartthings_and_deathstarbench", |b| {
        b.iter(|| {
            for trace in &traces {
                black_box(analyze_critical_path(trace, &Options::default()));
            }
        })
    });
    group.finish();

    // Every trace of every file in the shared folder, in both modes.
    let mut traces = Vec::new();
    let mut pending = vec![std::path::PathBuf::from(TRACES)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("the fixtures in testdata/traces") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                read_path(&path, None, |t| {
                    traces.push(t);
                    Ok(())
                })
                .expect("fixture reads");
            }
        }
    }
    let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
    println!(
        "fixtures/every_shared_trace: {} traces, {spans} spans",
        traces.len()
    );
    let mut group = c.benchmark_group("fixtures");
    group.throughput(Throughput::Elements(spans as u64));
    for mode in [Mode::Robust, Mode::Jaeger] {
        let options = Options::new(mode);
        group.bench_function(BenchmarkId::new("every_shared_trace", mode.as_str()), |b| {
            b.iter(|| {
                for trace in &traces {
                    black_box(analyze_critical_path(trace, &options));
                }
            })
        });
    }
    group.finish();
}

/// The wide-root case, once each, with the ratio.
fn one_shot() {
    let trace = sequential_children(100_000);
    let started = Instant::now();
    let ours = analyze_critical_path(&trace, &Options::new(Mode::Jaeger));
    let ours_time = started.elapsed();
    let input = to_jaeger(&trace);
    let started = Instant::now();
    let port = run_port(input);
    let port_time = started.elapsed();
    let same = !port.failed() && port.sections().len() == ours.sections.len();
    println!("vs_jaeger_ui_100k/sequential_children (one run each):");
    println!("  lightstep jaeger mode  {ours_time:>12.3?}");
    println!("  jaeger ui port         {port_time:>12.3?}");
    println!(
        "  ratio                  {:>12.0}x   (same sections: {same})",
        port_time.as_secs_f64() / ours_time.as_secs_f64().max(1e-9)
    );
}

fn main() {
    // Criterion's filter is the first argument that is not an option or an option's value.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err())
        .collect();
    let mut c = Criterion::default().configure_from_args();
    million(&mut c);
    side_by_side(&mut c);
    fixtures(&mut c);
    c.final_summary();
    // Only when asked for by name, or when everything runs (not under `--test`/`--list`).
    let listing = std::env::args().any(|a| a == "--test" || a == "--list");
    if !listing
        && (args.is_empty()
            || args
                .iter()
                .any(|a| "vs_jaeger_ui_100k/sequential_children".contains(a.as_str())))
    {
        one_shot();
    }
}

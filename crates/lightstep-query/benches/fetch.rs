//! Fetching and analyzing traces from a stand-in Jaeger query API on loopback: spans per second,
//! and the process's peak resident memory above where it started, for a search of 1,000 and of
//! 10,000 traces of 50 spans and for 1,000 and 10,000 fetches by trace id. The stand-in runs in
//! this process and makes each answer as it is read, so what the peak shows beyond the runtime
//! is what reading and analyzing hold. Not a timed test: `cargo bench -p lightstep-query --bench
//! fetch` prints the figures `docs/benchmarks.md` reports (median of the rounds, and the worst
//! peak).

#![allow(clippy::print_stdout)] // a benchmark report

use std::time::{Duration, Instant};

use lightstep_analysis::{Options, analyze_critical_path};
use lightstep_query::{Jaeger, Search, TraceSource as _, Traces};

#[allow(dead_code)]
#[path = "../tests/it/standin.rs"]
mod standin;

#[path = "../tests/it/generated.rs"]
mod generated;

use generated::{SPANS, jaeger};

/// Rounds per row.
const ROUNDS: usize = 5;

/// Resets the peak resident set size.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("field")
        * 1024
}

/// Analyzes every trace of `traces`, one at a time as they arrive; returns how many there were,
/// the time taken, and the peak resident memory above what was resident before.
async fn drain(traces: impl FnOnce() -> Traces) -> (usize, Duration, usize) {
    reset_peak();
    let before = status_bytes("VmRSS:");
    let started = Instant::now();
    let mut traces = traces();
    let mut count = 0;
    let mut critical_ns = 0u64;
    while let Some(trace) = traces.next().await {
        let trace = trace.expect("a generated trace");
        assert_eq!(trace.spans.len(), SPANS);
        critical_ns += analyze_critical_path(&trace, &Options::default()).critical_ns();
        count += 1;
    }
    let took = started.elapsed();
    assert!(critical_ns > 0);
    (count, took, status_bytes("VmHWM:").saturating_sub(before))
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn row(what: &str, traces: usize, run: impl AsyncFn() -> (usize, Duration, usize)) {
    let mut rates = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..ROUNDS {
        let (count, took, peak) = run().await;
        assert_eq!(count, traces, "{what}");
        rates.push((count * SPANS) as f64 / took.as_secs_f64());
        peaks.push(peak);
    }
    println!(
        "{what:<20} {traces:>6} traces  {:>7.0} spans/s (median of {ROUNDS})  peak +{:.1} MiB (worst; rounds: {})",
        median(rates),
        mib(*peaks.iter().max().expect("rounds")),
        peaks
            .iter()
            .map(|&p| format!("{:.1}", mib(p)))
            .collect::<Vec<_>>()
            .join(" "),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let standin = jaeger().await;
        let jaeger = Jaeger::builder(standin.url()).build().expect("source");
        let search = |limit: usize| {
            Search::new()
                .with_service("checkout")
                .with_lookback(Duration::from_secs(3600))
                .with_limit(limit)
        };
        let ids = |n: usize| (1..=n).map(|i| format!("{i:032x}")).collect::<Vec<_>>();
        // Warm up: the runtime's threads and the client's pool count in no row.
        drain(|| jaeger.search(&search(50))).await;
        drain(|| jaeger.fetch_each(ids(50))).await;
        println!(
            "{SPANS} spans per trace; stand-in Jaeger on 127.0.0.1 in this process; default concurrency"
        );
        for traces in [1_000, 10_000] {
            row("search, one answer", traces, async || {
                drain(|| jaeger.search(&search(traces))).await
            })
            .await;
        }
        for traces in [1_000, 10_000] {
            row("fetch by trace id", traces, async || {
                drain(|| jaeger.fetch_each(ids(traces))).await
            })
            .await;
        }
    });
}

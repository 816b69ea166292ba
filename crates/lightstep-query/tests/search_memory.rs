//! A search's traces are parsed and handed over as they arrive: the process's peak resident
//! memory while a search of thousands of traces is read and analyzed does not grow with the
//! number of traces. A test binary of its own, because it watches the peak resident memory of
//! the whole process (Linux, `/proc/self/status`).

use std::time::Duration;

use lightstep_analysis::{Options, analyze_critical_path};
use lightstep_query::{Jaeger, Search, TraceSource as _};

#[allow(dead_code)]
#[path = "it/standin.rs"]
mod standin;

#[path = "it/generated.rs"]
mod generated;

use generated::{SPANS, jaeger, trace_json};

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

/// Reads and analyzes a search of `traces` traces; returns how many arrived and the peak
/// resident memory above what was resident before.
async fn search_peak(jaeger: &Jaeger, traces: usize) -> (usize, usize) {
    reset_peak();
    let before = status_bytes("VmRSS:");
    let mut found = jaeger.search(
        &Search::new()
            .with_service("checkout")
            .with_lookback(Duration::from_secs(3600))
            .with_limit(traces),
    );
    let mut count = 0;
    let mut critical_ns = 0u64;
    while let Some(trace) = found.next().await {
        let trace = trace.unwrap();
        assert_eq!(trace.spans.len(), SPANS);
        critical_ns += analyze_critical_path(&trace, &Options::default()).critical_ns();
        count += 1;
    }
    assert!(critical_ns > 0);
    (count, status_bytes("VmHWM:").saturating_sub(before))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_holds_one_trace_at_a_time_whatever_its_size() {
    let standin = jaeger().await;
    let jaeger = Jaeger::builder(standin.url()).build().unwrap();
    // A first run, so that what is allocated once (the runtime's threads, the client's pool)
    // counts in neither measurement.
    search_peak(&jaeger, 50).await;
    let (small, small_peak) = search_peak(&jaeger, 300).await;
    let (large, large_peak) = search_peak(&jaeger, 3000).await;
    assert_eq!((small, large), (300, 3000));
    // 3000 traces are some 50 MB of JSON: held whole, they would show in full.
    let body = 3000 * trace_json(0).len();
    assert!(body > 40 << 20, "{body}");
    eprintln!(
        "peak above the start: {small_peak} bytes for 300 traces, {large_peak} for 3000 ({body} bytes of JSON)"
    );
    assert!(
        large_peak < small_peak + (8 << 20),
        "peak above the start: {small_peak} bytes for 300 traces, {large_peak} for 3000 ({body} bytes of JSON)"
    );
}

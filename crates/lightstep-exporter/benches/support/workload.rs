//! The workload of the delivery benches: spans of an HTTP server handler with four attributes,
//! ended from `THREADS` application threads, as fast as they can or in bursts with a flush
//! after each.

use std::sync::Barrier;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Application threads ending spans.
pub(crate) const THREADS: usize = 4;

/// Ends span `i` of thread `t` with the workload's four attributes.
pub(crate) fn end_span(tracer: &impl Tracer, t: usize, i: usize) {
    let mut span = tracer.start("GET /api/orders/{id}");
    span.set_attribute(KeyValue::new("http.request.method", "GET"));
    span.set_attribute(KeyValue::new("http.route", "/api/orders/{id}"));
    span.set_attribute(KeyValue::new("http.response.status_code", 200));
    span.set_attribute(KeyValue::new("worker", (t * 1_000_000 + i) as i64));
    span.end();
}

/// Ends `spans` spans from `THREADS` threads as fast as they can.
pub(crate) fn produce(provider: &SdkTracerProvider, spans: usize) {
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let tracer = provider.tracer("bench");
            s.spawn(move || {
                for i in 0..spans / THREADS {
                    end_span(&tracer, t, i);
                }
            });
        }
    });
}

/// Ends `spans` spans from `THREADS` threads in bursts of `burst` spans (`burst / THREADS` per
/// thread); after each burst one thread calls `flush` while the others wait, so a burst starts
/// with an empty queue and never overflows it when `burst` is the queue's size.
pub(crate) fn produce_paced(
    provider: &SdkTracerProvider,
    spans: usize,
    burst: usize,
    flush: impl Fn() + Sync,
) {
    let per_thread = spans / THREADS;
    let per_burst = burst / THREADS;
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let tracer = provider.tracer("bench");
            let (barrier, flush) = (&barrier, &flush);
            s.spawn(move || {
                // Every thread goes through the same bursts (the last one shorter), so the
                // barriers match.
                for start in (0..per_thread).step_by(per_burst) {
                    for i in start..(start + per_burst).min(per_thread) {
                        end_span(&tracer, t, i);
                    }
                    if barrier.wait().is_leader() {
                        flush();
                    }
                    // Nobody starts the next burst before the flush returned.
                    barrier.wait();
                }
            });
        }
    });
}

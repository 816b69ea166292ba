//! During a long outage, batches keep going back to the queue and spans keep ending, and the
//! process's resident memory stays where the queue puts it: measured from `/proc/self/status`
//! (Linux), not from our own counters. A test binary of its own, so that no other test's
//! allocations count in the measure.

use std::time::{Duration, Instant};

use lightstep_config::{EnvSnapshot, LightstepConfig, Protocol};
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::Receiver;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _};

const TOKEN: &str = "test-token-0123";

/// Resets the peak resident set size and returns the current one, in bytes.
fn reset_peak() -> usize {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    status_kib("VmRSS:") * 1024
}

/// The peak resident set size since [`reset_peak`], in bytes.
fn peak() -> usize {
    status_kib("VmHWM:") * 1024
}

fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

/// Ends spans carrying a 1 KiB attribute each, in bursts, for `duration`; returns how many.
fn end_spans_for(exporter: &LightstepExporter, duration: Duration) -> u64 {
    let tracer = exporter.tracer();
    let payload = "x".repeat(1024);
    let until = Instant::now() + duration;
    let mut ended = 0;
    while Instant::now() < until {
        for _ in 0..1_000 {
            let mut span = tracer.start("during-the-outage");
            span.set_attribute(KeyValue::new("payload", payload.clone()));
            span.end();
        }
        ended += 1_000;
        std::thread::sleep(Duration::from_millis(5));
    }
    ended
}

#[test]
fn a_long_outage_holds_no_more_memory_than_the_queue() {
    const BOUND: usize = 32 << 20;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let receiver = runtime
        .block_on(Receiver::builder().with_access_token(TOKEN).start())
        .expect("receiver");
    receiver.faults().fail_next_requests(u64::MAX);
    // The default queue and batch; each export tried for half a second, so that its spans go
    // back to the queue many times during the test.
    let config = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_protocol(Protocol::Grpc)
        .with_otlp_endpoint(receiver.grpc_endpoint())
        .with_service_name("outage-memory")
        .with_access_token(TOKEN)
        .with_scheduled_delay(Duration::from_millis(50))
        .with_timeout(Duration::from_millis(200))
        .with_export_timeout(Duration::from_millis(500))
        .with_shutdown_timeout(Duration::from_secs(2))
        .build()
        .expect("configuration");
    let queue = config.batch().max_queue_size as u64;
    let exporter = LightstepExporter::new(config).expect("exporter");

    // Warm up: the queue fills and batches start going back to it.
    end_spans_for(&exporter, Duration::from_secs(2));
    let before = exporter.stats();
    let settled = reset_peak();
    let ended = end_spans_for(&exporter, Duration::from_secs(6));
    let grown = peak().saturating_sub(settled);
    let after = exporter.stats();

    // The outage was real and long: spans went back to the queue and what did not fit was
    // dropped; the spans ended meanwhile would take far more than the bound if they were kept.
    assert!(
        receiver.stats().requests_failed_by_fault > 10,
        "{:?}",
        receiver.stats()
    );
    assert!(after.dropped > before.dropped, "{after:?}");
    assert_eq!(after.failed, 0, "{after:?}");
    // The receiver refuses every export; on a loaded machine an attempt may run out of its
    // time before the refusal arrives. Either way the outage is what the last error says.
    assert!(
        after
            .last_error
            .as_deref()
            .is_some_and(|e| { e.contains("Unavailable") || e.contains("did not finish within") }),
        "{after:?}"
    );
    assert!(after.pending() <= queue + 2 * 512, "{after:?}");
    assert!(
        ended as usize * 1024 > 10 * BOUND,
        "only {ended} spans ended: too few to show a bound"
    );
    assert!(
        grown < BOUND,
        "resident memory grew by {} MiB during the outage ({ended} spans ended)",
        grown >> 20
    );
    let _ = exporter.shutdown_blocking();
    runtime.block_on(receiver.shutdown());
}

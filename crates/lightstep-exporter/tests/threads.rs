//! The threads of a pipeline are fixed when it starts: the export thread and the runtime's
//! workers, one per export in flight (at most four). No export starts a thread of its own,
//! over gRPC or HTTP. Counted from `/proc/self/task` (Linux), in a test binary of its own so
//! that no other test's pipeline is in the process.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lightstep_config::{EnvSnapshot, LightstepConfig, Protocol};
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::Receiver;
use opentelemetry::trace::Tracer as _;

const TOKEN: &str = "test-token-0123";

/// The ids of the pipeline's threads now: every thread is named `lightstep-export...`, which
/// the kernel cuts to 15 bytes.
fn pipeline_threads() -> BTreeSet<u64> {
    let mut threads = BTreeSet::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let Ok(task) = task else { continue };
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with("lightstep-expor")
            && let Some(id) = task.file_name().to_str().and_then(|t| t.parse().ok())
        {
            threads.insert(id);
        }
    }
    threads
}

/// Waits until no pipeline thread is left (a previous pipeline's threads end after its
/// shutdown returns).
fn until_no_pipeline_thread() {
    let until = Instant::now() + Duration::from_secs(10);
    while !pipeline_threads().is_empty() {
        assert!(Instant::now() < until, "{:?}", pipeline_threads());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn no_export_starts_a_thread_over_grpc_or_http() {
    const IN_FLIGHT: usize = 2;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let receiver = runtime
        .block_on(Receiver::builder().with_access_token(TOKEN).start())
        .expect("receiver");
    // Each export is held a while, so that a thread started for it would be seen.
    receiver
        .faults()
        .set_response_delay(Duration::from_millis(100));
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson, Protocol::Grpc] {
        until_no_pipeline_thread();
        let builder = LightstepConfig::builder()
            .with_env(EnvSnapshot::empty())
            .with_protocol(protocol)
            .with_service_name("threads")
            .with_access_token(TOKEN)
            .with_max_concurrent_exports(IN_FLIGHT)
            .with_max_export_batch_size(10)
            .with_scheduled_delay(Duration::from_millis(20));
        let builder = if protocol.is_http() {
            builder.with_traces_endpoint(receiver.http_traces_url())
        } else {
            builder.with_otlp_endpoint(receiver.grpc_endpoint())
        };
        let exporter = LightstepExporter::new(builder.build().expect("config")).expect("exporter");
        // A thread names itself once it runs: wait for the names (for the export thread and
        // the runtime's workers, which all start with the pipeline).
        let until = Instant::now() + Duration::from_secs(5);
        let mut at_start = pipeline_threads();
        while at_start.len() < 1 + IN_FLIGHT && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
            at_start = pipeline_threads();
        }

        // 200 spans in batches of 10, two exports at a time, each held 100 ms: threads are
        // sampled all along.
        let tracer = exporter.tracer();
        let mut seen = BTreeSet::new();
        for round in 0..20 {
            for i in 0..10 {
                tracer.in_span(format!("span-{round}-{i}"), |_| {});
            }
            seen.extend(pipeline_threads());
            std::thread::sleep(Duration::from_millis(15));
        }
        let flushed = std::thread::scope(|s| {
            let flush = s.spawn(|| exporter.force_flush_blocking());
            while !flush.is_finished() {
                seen.extend(pipeline_threads());
                std::thread::sleep(Duration::from_millis(5));
            }
            flush.join().expect("flush")
        });
        flushed.unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        let stats = exporter.shutdown_blocking().expect("every span delivered");
        assert_eq!(stats.exported, 200, "{protocol:?}");
        assert_eq!(
            seen, at_start,
            "{protocol:?}: threads came and went during the exports"
        );
        // The export thread and one worker per export in flight.
        assert_eq!(at_start.len(), 1 + IN_FLIGHT, "{protocol:?}: {at_start:?}");
    }
    assert_eq!(receiver.spans().len(), 600);
    runtime.block_on(receiver.shutdown());
}

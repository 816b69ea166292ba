//! End-to-end delivery to the embedded receiver over loopback gRPC, side by side:
//!
//! - `lightstep-default`: this crate with the default settings (queue 2048, batch 512);
//! - `lightstep-default-lossless`: the same, with the spans ended in bursts that fit its queue;
//! - `lightstep-high-throughput`: this crate with the profile documented in docs/benchmarks.md;
//! - `bare-otlp-defaults`: opentelemetry-otlp + the SDK's batch processor with their defaults,
//!   what a user would otherwise write;
//! - `bare-otlp-defaults-lossless`: the same, with the spans ended in bursts that fit the SDK's
//!   default queue: what the bare defaults deliver without loss (the throughput goal's baseline);
//! - `noop-ceiling`: span creation with a processor that discards every span (the strict
//!   ceiling: no pipeline at all);
//! - `noop-exporter-ceiling`: the high-throughput pipeline with an exporter that discards every
//!   batch ("span creation with a no-op exporter": queue and export thread, nothing
//!   encoded or sent);
//! - `paired-ratios`: rounds of one `noop-ceiling`, one `lightstep-high-throughput` and one
//!   `noop-exporter-ceiling` iteration back to back, for the throughput goal's two ratios per
//!   round (delivered rate over each ceiling's rate, docs/adr/004; their
//!   quartiles are printed; criterion's time for this row means nothing).
//!
//! Each iteration ends `SPANS` spans from `THREADS` threads, then flushes. The unpaced rows end
//! them as fast as they can; the `-lossless` rows end them in bursts of `BURST` spans (2,048,
//! the default queue of both the SDK and this crate), each followed by a flush, so the queue
//! never overflows.
//!
//! # What is timed
//!
//! Both `LightstepExporter::force_flush_blocking` (the export thread answers a flush only when
//! no export is left in flight, `src/processor.rs`) and the SDK's `SdkTracerProvider::force_flush`
//! (its batch processor exports synchronously and answers after the last export returned)
//! return after the flushed exports completed, and the receiver stores a request before it
//! answers it. So the clock stops when the flush returns; the receiver is then polled every
//! millisecond, and if its count still grows the time is extended to the poll that saw the last
//! increase (the bench prints how far past the flush that ever went). The quiet wait that
//! confirms nothing else arrives is not timed.
//!
//! Criterion's time per iteration and its "thrpt" (100,000 / time) are only meaningful for rows
//! that deliver every span. For every row the bench prints the delivered counts and the
//! delivered rate (delivered spans / timed duration of the iteration) as min / median / max
//! over the iterations (criterion's warm-up included), then a summary with the throughput goal's
//! two ratios (docs/adr/004).
//!
//! # Where the receiver runs
//!
//! By default the receiver runs in this process, on the same cores as the application threads
//! and the exporter:
//!
//! `cargo bench -p lightstep-exporter --bench delivery`
//!
//! With `DELIVERY_REMOTE_RECEIVER=1` the receiver runs in a child process (this bench binary
//! re-executed as `taskset -c <2nd allowed CPU> <this binary>` with `DELIVERY_RECEIVER_CHILD=1`)
//! and this process pins itself (`taskset -a -p -c <1st allowed CPU> <pid>`) to the other CPU
//! before it starts any thread: the application threads, the exporter and the no-op ceiling
//! share one core, the receiver has another. On the 2-core development machine: CPU 0 and CPU 1.
//!
//! `DELIVERY_REMOTE_RECEIVER=1 cargo bench -p lightstep-exporter --bench delivery`
//!
//! (The child and the pinning are `support/receiver_child.rs`, shared with `benches/cpu.rs`.)
//!
//! Its rows are the criterion group `delivery-remote-receiver` (the default mode's are
//! `delivery`), so criterion never compares one mode with the other.
//!
//! Do not wrap that command in `taskset` yourself: the bench needs two allowed CPUs to pin
//! itself and its child. If `taskset` (util-linux) is missing or fewer than two CPUs are
//! allowed, it says so and falls back to the in-process receiver. The child answers a line
//! protocol on its stdin/stdout (`count` -> spans stored, `clear` -> spans taken) and exits when
//! its stdin closes, that is when this process ends, however it ends.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use lightstep_config::{EnvSnapshot, LightstepConfig};
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::RunningReceiver;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData};

const SPANS: usize = 100_000;
/// Spans per burst in the `-lossless` rows: the default queue size of the SDK's batch processor
/// and of this crate, so an empty queue (which a flush leaves) takes a whole burst.
const BURST: usize = 2_048;
/// How often the receiver is polled after the flush returned.
const POLL: Duration = Duration::from_millis(1);
/// How long the receiver's count must stay still (short of `SPANS`) to be final. Not timed.
const QUIET: Duration = Duration::from_millis(25);

/// Opt-in: the receiver in a child process on a CPU of its own.
const REMOTE_ENV: &str = "DELIVERY_REMOTE_RECEIVER";

#[path = "support/receiver_child.rs"]
mod receiver_child;
#[path = "support/workload.rs"]
mod workload;
use receiver_child::{ChildReceiver, bench_switch, receiver_builder};
use workload::{produce, produce_paced};

/// The receiver: in this process, or in a child process on a CPU of its own.
enum Backend {
    Local(RunningReceiver),
    Remote(ChildReceiver),
}

impl Backend {
    fn endpoint(&self) -> String {
        match self {
            Backend::Local(receiver) => receiver.grpc_endpoint(),
            Backend::Remote(child) => child.endpoint.clone(),
        }
    }

    /// Spans stored now.
    fn count(&self) -> usize {
        match self {
            Backend::Local(receiver) => receiver.store().len(),
            Backend::Remote(child) => child.ask("count"),
        }
    }

    /// Empties the store; returns how many spans it held.
    fn clear(&self) -> usize {
        match self {
            Backend::Local(receiver) => receiver.store().take_spans().len(),
            Backend::Remote(child) => child.ask("clear"),
        }
    }
}

/// Called when the flush returned at `flushed`: polls the receiver every `POLL` until it holds
/// `expected` spans or its count has not grown for `QUIET`. Returns the count and the instant
/// the last span arrived: `flushed`, or the first poll that saw the final count if it grew
/// after the first look (an upper bound, within about a millisecond).
fn settle(backend: &Backend, expected: usize, flushed: Instant) -> (usize, Instant) {
    // What the first look sees was there when the flush returned: the flush waited for it.
    let mut count = backend.count();
    let mut last_arrival = flushed;
    let mut last_change = Instant::now();
    while count < expected && last_change.elapsed() < QUIET {
        std::thread::sleep(POLL);
        let now = backend.count();
        if now > count {
            count = now;
            last_arrival = Instant::now();
            last_change = last_arrival;
        }
    }
    (count, last_arrival)
}

/// One iteration of a pipeline.
#[derive(Clone, Copy)]
struct Sample {
    /// Spans that reached the receiver (for the no-op ceiling: spans created).
    delivered: usize,
    /// From the first span to the last arrival: what criterion is given.
    timed: Duration,
    /// How far past the flush's return the last arrival was (zero if none arrived after it).
    after_flush: Duration,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.timed.as_secs_f64()
    }
}

/// Times one iteration: `run` ends the spans and flushes; see `settle` for where the clock
/// stops. Empties the receiver afterwards (not timed).
fn measure(backend: &Backend, run: impl FnOnce()) -> Sample {
    let started = Instant::now();
    run();
    let flushed = Instant::now();
    let (delivered, last_arrival) = settle(backend, SPANS, flushed);
    let taken = backend.clear();
    if taken != delivered {
        eprintln!("warning: {taken} spans in the receiver after the count settled at {delivered}");
    }
    Sample {
        delivered,
        timed: last_arrival - started,
        after_flush: last_arrival - flushed,
    }
}

/// Runs `iteration` as a criterion benchmark with `iter_custom`, keeping every sample.
fn bench_pipeline(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut iteration: impl FnMut() -> Sample,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let sample = iteration();
                    samples.push(sample);
                    sample.timed
                })
                .sum()
        });
    });
    samples
}

fn ours(endpoint: &str, high_throughput: bool) -> LightstepExporter {
    let config = if high_throughput {
        high_throughput_config(endpoint)
    } else {
        config(endpoint).build().unwrap()
    };
    LightstepExporter::new(config).unwrap()
}

fn config(endpoint: &str) -> lightstep_config::ConfigBuilder {
    LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_otlp_endpoint(endpoint)
        .with_service_name("bench")
}

/// The high-throughput profile of docs/benchmarks.md.
fn high_throughput_config(endpoint: &str) -> LightstepConfig {
    config(endpoint)
        .with_max_queue_size(131_072)
        .with_max_export_batch_size(4_096)
        .with_max_concurrent_exports(4)
        .with_scheduled_delay(Duration::from_millis(200))
        .build()
        .unwrap()
}

fn bare(rt: &tokio::runtime::Runtime, endpoint: &str) -> SdkTracerProvider {
    let _guard = rt.enter();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .unwrap();
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build()
}

/// With `DELIVERY_REMOTE_RECEIVER` set, the receiver child (and this process pinned); `None`
/// for the in-process receiver, the default and the fallback (with a message) if that fails.
fn remote_receiver() -> Option<ChildReceiver> {
    let remote = bench_switch(REMOTE_ENV);
    if !remote {
        eprintln!(
            "delivery: receiver in this process, sharing the cores with the application and \
             the exporter (set {REMOTE_ENV}=1 to give it a CPU of its own)"
        );
        return None;
    }
    ChildReceiver::start("delivery")
        .inspect_err(|why| {
            eprintln!(
                "delivery: {REMOTE_ENV} is set but {why}; falling back to the in-process \
                 receiver (the application, the exporter and the receiver share every core)"
            );
        })
        .ok()
}

fn delivery(c: &mut Criterion) {
    // First, before this process starts any thread: in remote mode it pins itself here, and
    // the threads started afterwards (runtimes, exporters, producers) inherit the pinning.
    let remote = remote_receiver();
    // The in-process receiver serves from this runtime, as the bare exporter's tonic channel
    // does in both modes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = match remote {
        Some(child) => Backend::Remote(child),
        None => Backend::Local(rt.block_on(receiver_builder().start()).unwrap()),
    };
    let endpoint = backend.endpoint();
    let mut results: Vec<(&str, Vec<Sample>)> = Vec::new();

    // A group of its own per mode, so that criterion never compares one mode with the other.
    let mut group = c.benchmark_group(match backend {
        Backend::Local(_) => "delivery",
        Backend::Remote(_) => "delivery-remote-receiver",
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    // Only meaningful for the rows that deliver every span; see the printed rates.
    group.throughput(Throughput::Elements(SPANS as u64));

    for (name, high, paced) in [
        ("lightstep-default", false, false),
        ("lightstep-default-lossless", false, true),
        ("lightstep-high-throughput", true, false),
    ] {
        let exporter = ours(&endpoint, high);
        backend.clear();
        let flush = || {
            // An `Err` here reports drops, which the delivered counts show.
            let _ = exporter.force_flush_blocking();
        };
        let samples = bench_pipeline(&mut group, name, || {
            measure(&backend, || {
                if paced {
                    // Flushes after every burst, the last one included.
                    produce_paced(exporter.tracer_provider(), SPANS, BURST, flush);
                } else {
                    produce(exporter.tracer_provider(), SPANS);
                    flush();
                }
            })
        });
        report(name, &samples, true);
        results.push((name, samples));
        let _ = exporter.shutdown_blocking();
    }

    for (name, paced) in [
        ("bare-otlp-defaults", false),
        ("bare-otlp-defaults-lossless", true),
    ] {
        let provider = bare(&rt, &endpoint);
        backend.clear();
        let flush = || {
            let _ = provider.force_flush();
        };
        let samples = bench_pipeline(&mut group, name, || {
            measure(&backend, || {
                if paced {
                    // Flushes after every burst, the last one included.
                    produce_paced(&provider, SPANS, BURST, flush);
                } else {
                    produce(&provider, SPANS);
                    flush();
                }
            })
        });
        report(name, &samples, true);
        results.push((name, samples));
        let _ = provider.shutdown();
    }

    // Timed the same way as the pipelines, with nothing to flush or deliver: the rate is spans
    // created per second. In remote mode it runs in this pinned process, on the same single
    // CPU as the pipelines' application threads.
    let noop = SdkTracerProvider::builder()
        .with_span_processor(lightstep_exporter::bench_support::Discard)
        .build();
    let samples = bench_pipeline(&mut group, "noop-ceiling", || {
        let started = Instant::now();
        produce(&noop, SPANS);
        let timed = started.elapsed();
        Sample {
            delivered: SPANS,
            timed,
            after_flush: Duration::ZERO,
        }
    });
    report("noop-ceiling", &samples, false);
    results.push(("noop-ceiling", samples));

    // The high-throughput pipeline with an exporter that discards every batch: span creation,
    // the queue and the export thread, nothing encoded or sent. Timed like the pipelines (the
    // spans, then a flush); "delivered" is what the no-op exporter was handed.
    let noop_exporter =
        lightstep_exporter::bench_support::with_noop_exporter(high_throughput_config(&endpoint))
            .unwrap();
    let samples = bench_pipeline(&mut group, "noop-exporter-ceiling", || {
        let before = noop_exporter.stats().exported;
        let started = Instant::now();
        produce(noop_exporter.tracer_provider(), SPANS);
        let _ = noop_exporter.force_flush_blocking();
        let timed = started.elapsed();
        Sample {
            delivered: (noop_exporter.stats().exported - before) as usize,
            timed,
            after_flush: Duration::ZERO,
        }
    });
    report("noop-exporter-ceiling", &samples, true);
    results.push(("noop-exporter-ceiling", samples));

    // The ratios again, from rounds that each run one iteration of the ceiling, of the
    // high-throughput pipeline and of the no-op exporter, back to back: the two rates of a
    // ratio are measured seconds apart, under the same conditions, instead of minutes apart
    // in rows of their own. Criterion's time for this row means nothing (three runs a round).
    let exporter = ours(&endpoint, true);
    backend.clear();
    let mut rounds: Vec<Round> = Vec::new();
    group.bench_function("paired-ratios", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let created = Instant::now();
                produce(&noop, SPANS);
                let ceiling = Sample {
                    delivered: SPANS,
                    timed: created.elapsed(),
                    after_flush: Duration::ZERO,
                };
                let pipeline = measure(&backend, || {
                    produce(exporter.tracer_provider(), SPANS);
                    let _ = exporter.force_flush_blocking();
                });
                let before = noop_exporter.stats().exported;
                let created = Instant::now();
                produce(noop_exporter.tracer_provider(), SPANS);
                let _ = noop_exporter.force_flush_blocking();
                let literal = Sample {
                    delivered: (noop_exporter.stats().exported - before) as usize,
                    timed: created.elapsed(),
                    after_flush: Duration::ZERO,
                };
                rounds.push(Round {
                    ceiling,
                    pipeline,
                    literal,
                });
            }
            started.elapsed()
        });
    });
    report_rounds(&rounds);
    let _ = exporter.shutdown_blocking();
    let _ = noop_exporter.shutdown_blocking();
    group.finish();

    summary(&backend, &results);
    eprintln!(
        "size_of::<SpanData>() = {} bytes (plus its attribute vector); a full queue of N spans holds about N times that",
        std::mem::size_of::<SpanData>()
    );
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Min, median and max.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[0], median(&values), values[values.len() - 1])
}

fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2}M/s", per_second / 1e6)
    } else {
        format!("{:.0}k/s", per_second / 1e3)
    }
}

/// Prints a pipeline's delivered counts and delivered rates, min / median / max, and how far
/// past the flush spans still arrived. For the no-op ceiling (`delivered == false`), only the
/// rate of spans created.
fn report(name: &str, samples: &[Sample], delivered: bool) {
    if samples.is_empty() {
        return;
    }
    let n = samples.len();
    let (rmin, rmed, rmax) = spread(samples.iter().map(Sample::rate).collect());
    let rates = format!("{} / {} / {}", rate(rmin), rate(rmed), rate(rmax));
    if !delivered {
        eprintln!(
            "{name}: {n} iterations (warm-up included); spans created per second \
             min/median/max {rates}"
        );
        return;
    }
    let (min, med, max) = spread(samples.iter().map(|s| s.delivered as f64).collect());
    let late = samples
        .iter()
        .map(|s| s.after_flush)
        .max()
        .unwrap_or_default();
    eprintln!(
        "{name}: {n} iterations (warm-up included); delivered per iteration min/median/max \
         {min:.0} / {med:.0} / {max:.0} of {SPANS} (lost up to {lost:.0}); delivered spans per \
         second min/median/max {rates}; last arrival after the flush returned: up to {:.1} ms",
        late.as_secs_f64() * 1e3,
        lost = SPANS as f64 - min,
    );
}

/// One round of `paired-ratios`: the three runs, back to back.
struct Round {
    ceiling: Sample,
    pipeline: Sample,
    literal: Sample,
}

/// Quartiles and median of each ratio over the rounds, and how many rounds lost spans.
fn report_rounds(rounds: &[Round]) {
    if rounds.is_empty() {
        return;
    }
    let quartiles = |mut ratios: Vec<f64>| {
        ratios.sort_by(f64::total_cmp);
        let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
        format!(
            "{:.0}% / {:.0}% / {:.0}%",
            100.0 * at(0.25),
            100.0 * median(&ratios),
            100.0 * at(0.75)
        )
    };
    let lossy = rounds
        .iter()
        .filter(|r| r.pipeline.delivered != SPANS || r.literal.delivered != SPANS)
        .count();
    eprintln!(
        "paired-ratios: {} rounds (warm-up included), each the ceiling, the high-throughput \
         pipeline and the no-op exporter back to back; {lossy} rounds lost spans; per round, \
         first quartile / median / third quartile:",
        rounds.len()
    );
    let median_rate =
        |run: fn(&Round) -> &Sample| rate(spread(rounds.iter().map(|r| run(r).rate()).collect()).1);
    eprintln!(
        "  median rates: noop-ceiling {}, high-throughput {}, noop-exporter-ceiling {}",
        median_rate(|r| &r.ceiling),
        median_rate(|r| &r.pipeline),
        median_rate(|r| &r.literal)
    );
    eprintln!(
        "  high-throughput / noop-ceiling: {} (goal: at least 50%)",
        quartiles(
            rounds
                .iter()
                .map(|r| r.pipeline.rate() / r.ceiling.rate())
                .collect()
        )
    );
    eprintln!(
        "  high-throughput / noop-exporter-ceiling: {} (goal: at least 50%)",
        quartiles(
            rounds
                .iter()
                .map(|r| r.pipeline.rate() / r.literal.rate())
                .collect()
        )
    );
}

/// The throughput goal's two ratios (delivered rate over each ceiling's, docs/adr/004) from the
/// median rates, with what they rest on.
fn summary(backend: &Backend, results: &[(&str, Vec<Sample>)]) {
    let median_rate = |name: &str| {
        results
            .iter()
            .find(|(n, s)| *n == name && !s.is_empty())
            .map(|(_, s)| spread(s.iter().map(Sample::rate).collect()).1)
    };
    let lossless = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .is_some_and(|(_, s)| s.iter().all(|s| s.delivered == SPANS))
    };
    let ours = "lightstep-high-throughput";
    let Some(ours_rate) = median_rate(ours) else {
        return;
    };
    let mode = match backend {
        Backend::Local(_) => "receiver in this process, all cores shared",
        Backend::Remote(child) => &child.description,
    };
    eprintln!("summary ({mode}), median delivered rates:");
    eprintln!(
        "  {ours}: {}{}",
        rate(ours_rate),
        if lossless(ours) {
            ", no loss in any iteration"
        } else {
            ", LOST SPANS in some iteration: the goals need zero drops"
        }
    );
    if let Some(bare) = median_rate("bare-otlp-defaults-lossless") {
        eprintln!(
            "  vs bare-otlp-defaults-lossless {} ({}): {:.2}x (goal: at least 3x)",
            rate(bare),
            if lossless("bare-otlp-defaults-lossless") {
                "no loss"
            } else {
                "LOST SPANS"
            },
            ours_rate / bare
        );
    }
    if let Some(noop) = median_rate("noop-ceiling") {
        eprintln!(
            "  vs noop-ceiling {}: {:.0}% (goal: at least 50%)",
            rate(noop),
            100.0 * ours_rate / noop
        );
    }
    if let Some(noop) = median_rate("noop-exporter-ceiling") {
        eprintln!(
            "  vs noop-exporter-ceiling {} ({}): {:.0}% (goal: at least 50%)",
            rate(noop),
            if lossless("noop-exporter-ceiling") {
                "no loss"
            } else {
                "LOST SPANS"
            },
            100.0 * ours_rate / noop
        );
    }
}

criterion_group!(benches, delivery);

// criterion_main!'s body, after a look at whether this process is the receiver child.
fn main() {
    if bench_switch(receiver_child::CHILD_ENV) {
        receiver_child::receiver_child();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

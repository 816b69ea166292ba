//! The exporter's CPU cost per delivered span, across every thread of the process, side by side
//! over gRPC and HTTP/protobuf:
//!
//! - `lightstep-default`: this crate with its default settings (queue 2,048, batches of 512,
//!   one export in flight);
//! - `lightstep-high-throughput`: the profile of docs/exporter.md (queue 131,072, batches of
//!   4,096, four exports in flight, 200 ms);
//! - `bare-otlp-defaults`: opentelemetry-otlp with its defaults behind the SDK's batch
//!   processor (tonic for gRPC; for HTTP/protobuf its default blocking reqwest client), what a
//!   user would otherwise write.
//!
//! Each run ends 1,000,000 spans (the workload of `benches/delivery.rs`: four application
//! threads, four attributes a span) in bursts of the pipeline's queue size, each followed by a
//! flush, so that no span is dropped and every row delivers all of them. The receiver runs in a
//! child process on the other CPU (`support/receiver_child.rs`), so its work is not counted.
//!
//! The process's CPU time (user and system, every thread, those that ended during the run
//! included) is read before and after each run with `getrusage(RUSAGE_SELF)`. Each run of a
//! pipeline is paired with a run of the same pipeline with a no-op exporter (this crate's processor and
//! profile with a transport that reports every batch delivered at once; for bare
//! opentelemetry-otlp, the SDK's batch processor with an exporter that returns at once): that
//! run costs creating, queueing, batching and freeing the spans. The difference, divided by
//! the spans delivered, is the exporter's part: encoding, compression if any, sending, reading
//! the answer. The median over the pairs is reported, with the smallest and the largest.
//!
//! `cargo bench -p lightstep-exporter --bench cpu` (`-- grpc`, `-- http default`: only the rows
//! whose protocol and name hold every word; `CPU_BENCH_SPANS` and `CPU_BENCH_RUNS` change the
//! size of a run and the number of pairs, for runs under valgrind)
//!
//! It needs Linux, `taskset` and two allowed CPUs (the receiver's and this process's), and says
//! so otherwise. The wall time of each run gives the delivered rate (spans over the time from
//! the first span to the last flush's return), for throughput side by side.
#![allow(missing_docs)]
// The table is this bench's output.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lightstep_config::{EnvSnapshot, LightstepConfig, Protocol};
use lightstep_exporter::LightstepExporter;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

#[path = "support/receiver_child.rs"]
mod receiver_child;
// Every run here is paced: `produce` is `delivery`'s.
#[allow(dead_code)]
#[path = "support/workload.rs"]
mod workload;
use receiver_child::{ChildReceiver, bench_switch};

/// Spans a run, unless `CPU_BENCH_SPANS` says otherwise.
const SPANS: usize = 1_000_000;
/// Pairs of runs per row, after one pair of warm-up, unless `CPU_BENCH_RUNS` says otherwise.
const RUNS: usize = 5;
/// The queue of this crate's default profile and of the SDK's batch processor.
const DEFAULT_QUEUE: usize = 2_048;
const HIGH_THROUGHPUT_QUEUE: usize = 131_072;

/// CPU time (user and system) of every thread of this process so far, those that ended
/// included: `getrusage(RUSAGE_SELF)`.
fn cpu_time() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage(RUSAGE_SELF) cannot fail on a valid `who`");
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// The names of this process's threads (the kernel keeps 15 bytes of each), with how many
/// bear each.
fn named_threads() -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        *names.entry(comm.trim().to_owned()).or_default() += 1;
    }
    names
}

/// The threads there are now beyond `base` (this bench's own), by name: a pipeline's and its
/// twin's. Unnamed threads (the application's, which end with each run) bear the binary's name
/// and are left out.
fn thread_names(base: &BTreeMap<String, usize>) -> String {
    let bench = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    named_threads()
        .into_iter()
        .filter(|(name, _)| !bench.starts_with(name.as_str()))
        .filter_map(|(name, n)| {
            let extra = n.saturating_sub(base.get(&name).copied().unwrap_or(0));
            (extra > 0).then(|| format!("`{name}` x{extra}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An exporter for the SDK's batch processor that counts the spans and returns at once.
#[derive(Debug, Default, Clone)]
struct NoopExporter(Arc<AtomicUsize>);

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// A pipeline under test, or its no-op twin.
enum Pipeline {
    Ours(Box<LightstepExporter>),
    /// This crate's pipeline with a transport that reports each batch delivered at once.
    OursNoop(Box<LightstepExporter>),
    Bare(SdkTracerProvider),
    BareNoop(SdkTracerProvider, NoopExporter),
}

impl Pipeline {
    fn provider(&self) -> &SdkTracerProvider {
        match self {
            Self::Ours(exporter) | Self::OursNoop(exporter) => exporter.tracer_provider(),
            Self::Bare(provider) | Self::BareNoop(provider, _) => provider,
        }
    }

    fn flush(&self) {
        // A failed flush shows in the delivered count.
        let _ = match self {
            Self::Ours(exporter) | Self::OursNoop(exporter) => {
                exporter.force_flush_blocking().map_err(|e| e.to_string())
            }
            Self::Bare(provider) | Self::BareNoop(provider, _) => {
                provider.force_flush().map_err(|e| e.to_string())
            }
        };
    }

    /// Spans the no-op exporter was handed so far (`None`: count them at the receiver).
    fn handed(&self) -> Option<usize> {
        match self {
            Self::OursNoop(exporter) => Some(exporter.stats().exported as usize),
            Self::BareNoop(_, noop) => Some(noop.0.load(Ordering::Relaxed)),
            _ => None,
        }
    }

    fn shutdown(self) {
        match self {
            Self::Ours(exporter) | Self::OursNoop(exporter) => {
                let _ = exporter.shutdown_blocking();
            }
            Self::Bare(provider) | Self::BareNoop(provider, _) => {
                let _ = provider.shutdown();
            }
        }
    }
}

/// One run: CPU and wall time of ending the spans in bursts of `burst` with a flush after
/// each, and the spans delivered (at the receiver, or handed to the no-op exporter).
struct Run {
    cpu: Duration,
    wall: Duration,
    delivered: usize,
}

/// What every row shares: the run's size, the rows wanted, the receiver, this bench's own
/// threads.
struct Bench {
    spans: usize,
    runs: usize,
    /// Words that a row's "protocol pipeline" must all contain (lowercase); none: every row.
    filter: Vec<String>,
    receiver: ChildReceiver,
    base_threads: BTreeMap<String, usize>,
}

impl Bench {
    fn wants(&self, protocol: &str, name: &str) -> bool {
        let row = format!("{protocol} {name}").to_ascii_lowercase();
        self.filter.iter().all(|word| row.contains(word.as_str()))
    }

    fn run(&self, pipeline: &Pipeline, burst: usize) -> Run {
        self.receiver.ask("clear");
        let handed_before = pipeline.handed();
        let (cpu, started) = (cpu_time(), Instant::now());
        workload::produce_paced(pipeline.provider(), self.spans, burst, || pipeline.flush());
        let (wall, cpu) = (started.elapsed(), cpu_time() - cpu);
        let delivered = match (handed_before, pipeline.handed()) {
            (Some(before), Some(after)) => after - before,
            _ => self.settle(),
        };
        Run {
            cpu,
            wall,
            delivered,
        }
    }

    /// Spans at the receiver once its count stops growing (every flush waited for its
    /// exports, so this is a check, not a wait; not timed).
    fn settle(&self) -> usize {
        let mut count = self.receiver.ask("count");
        let mut still = Instant::now();
        while count < self.spans && still.elapsed() < Duration::from_millis(200) {
            std::thread::sleep(Duration::from_millis(5));
            let now = self.receiver.ask("count");
            if now != count {
                count = now;
                still = Instant::now();
            }
        }
        count
    }

    /// Measures `real` against its no-op twin: a warm-up pair, then `runs` pairs.
    fn measure(
        &self,
        protocol: &'static str,
        name: &'static str,
        burst: usize,
        real: Pipeline,
        noop: Pipeline,
    ) -> Row {
        eprintln!("cpu: {protocol} {name} ...");
        self.run(&real, burst);
        self.run(&noop, burst);
        // Both alive: the twin's threads are counted too.
        let pipeline_threads = thread_names(&self.base_threads);
        let pairs: Vec<(Run, Run)> = (0..self.runs)
            .map(|_| (self.run(&real, burst), self.run(&noop, burst)))
            .collect();
        real.shutdown();
        noop.shutdown();
        Row {
            protocol,
            name,
            spans: self.spans,
            pipeline_threads,
            pairs,
        }
    }
}

/// A number from the environment: this bench's own knob, not the library's configuration
/// (which `EnvSnapshot` reads), hence the exception to the workspace's rule.
#[allow(clippy::disallowed_methods)]
fn bench_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn config(endpoint: &str, protocol: Protocol, high_throughput: bool) -> LightstepConfig {
    let builder = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_protocol(protocol)
        .with_service_name("bench");
    let builder = if protocol.is_http() {
        builder.with_traces_endpoint(endpoint)
    } else {
        builder.with_otlp_endpoint(endpoint)
    };
    let builder = if high_throughput {
        builder
            .with_max_queue_size(HIGH_THROUGHPUT_QUEUE)
            .with_max_export_batch_size(4_096)
            .with_max_concurrent_exports(4)
            .with_scheduled_delay(Duration::from_millis(200))
    } else {
        builder
    };
    builder.build().unwrap()
}

/// The endpoint of the no-op twins: never connected to.
fn noop_endpoint(protocol: Protocol) -> &'static str {
    if protocol.is_http() {
        "http://127.0.0.1:9/v1/traces"
    } else {
        "http://127.0.0.1:9"
    }
}

fn bare(rt: &tokio::runtime::Runtime, protocol: Protocol, endpoint: &str) -> SdkTracerProvider {
    let exporter = if protocol.is_http() {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .unwrap()
    } else {
        // tonic's channel runs its connection on the runtime it is built in.
        let _entered = rt.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .unwrap()
    };
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build()
}

/// A row's pairs: the pipeline's runs and its no-op twin's, alternately.
struct Row {
    protocol: &'static str,
    name: &'static str,
    spans: usize,
    pipeline_threads: String,
    pairs: Vec<(Run, Run)>,
}

impl Row {
    /// The exporter's part per delivered span, in µs: median, min, max over the pairs.
    fn exporter_part(&self) -> (f64, f64, f64) {
        spread(
            self.pairs
                .iter()
                .map(|(real, noop)| {
                    (real.cpu.as_secs_f64() - noop.cpu.as_secs_f64()) * 1e6 / real.delivered as f64
                })
                .collect(),
        )
    }

    fn print(&self) {
        let (med, min, max) = self.exporter_part();
        let per_span = |runs: Vec<&Run>| {
            spread(
                runs.iter()
                    .map(|r| r.cpu.as_secs_f64() * 1e6 / r.delivered.max(1) as f64)
                    .collect(),
            )
            .0
        };
        let rate = spread(
            self.pairs
                .iter()
                .map(|(r, _)| r.delivered as f64 / r.wall.as_secs_f64())
                .collect(),
        )
        .0;
        let lost = self
            .pairs
            .iter()
            .map(|(r, n)| {
                (self.spans.saturating_sub(r.delivered)).max(self.spans.saturating_sub(n.delivered))
            })
            .max()
            .unwrap_or(0);
        println!(
            "| {} | {} | {:.3} ({:.3} to {:.3}) | {:.3} | {:.3} | {:.2}M/s | {} | {} |",
            self.protocol,
            self.name,
            med,
            min,
            max,
            per_span(self.pairs.iter().map(|(r, _)| r).collect()),
            per_span(self.pairs.iter().map(|(_, n)| n).collect()),
            rate / 1e6,
            lost,
            self.pipeline_threads,
        );
    }
}

/// Median, min, max.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    if bench_switch(receiver_child::CHILD_ENV) {
        receiver_child::receiver_child();
        return;
    }
    // Before any thread starts: the receiver's child, and this process pinned to one CPU.
    let receiver = match ChildReceiver::start("cpu") {
        Ok(receiver) => receiver,
        Err(why) => {
            eprintln!("cpu: {why}; this bench needs the receiver in a process of its own");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let load_before = loadavg();
    // The runtime's workers name themselves once they run.
    std::thread::sleep(Duration::from_millis(200));
    let bench = Bench {
        spans: bench_number("CPU_BENCH_SPANS", SPANS),
        runs: bench_number("CPU_BENCH_RUNS", RUNS),
        // `cargo bench` passes `--bench`; other words pick rows.
        filter: std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .map(|a| a.to_ascii_lowercase())
            .collect(),
        receiver,
        base_threads: named_threads(),
    };
    let mut rows = Vec::new();
    for (protocol, label) in [
        (Protocol::Grpc, "gRPC"),
        (Protocol::HttpProtobuf, "HTTP/protobuf"),
    ] {
        let endpoint = if protocol.is_http() {
            bench.receiver.http_traces_url.clone()
        } else {
            bench.receiver.endpoint.clone()
        };
        for (name, high, burst) in [
            ("lightstep-default", false, DEFAULT_QUEUE),
            ("lightstep-high-throughput", true, HIGH_THROUGHPUT_QUEUE),
        ] {
            if !bench.wants(label, name) {
                continue;
            }
            let real = LightstepExporter::new(config(&endpoint, protocol, high)).unwrap();
            let noop = lightstep_exporter::bench_support::with_noop_exporter(config(
                noop_endpoint(protocol),
                protocol,
                high,
            ))
            .unwrap();
            rows.push(bench.measure(
                label,
                name,
                burst,
                Pipeline::Ours(Box::new(real)),
                Pipeline::OursNoop(Box::new(noop)),
            ));
        }
        if bench.wants(label, "bare-otlp-defaults") {
            let noop = NoopExporter::default();
            let twin = SdkTracerProvider::builder()
                .with_batch_exporter(noop.clone())
                .build();
            rows.push(bench.measure(
                label,
                "bare-otlp-defaults",
                DEFAULT_QUEUE,
                Pipeline::Bare(bare(&rt, protocol, &endpoint)),
                Pipeline::BareNoop(twin, noop),
            ));
        }
    }

    println!(
        "\n{} spans a run, {} pairs a row after a warm-up pair; {}; load average \
         {load_before} before, {} after",
        bench.spans,
        bench.runs,
        bench.receiver.description,
        loadavg()
    );
    println!(
        "\n| protocol | pipeline | exporter's part, µs per delivered span: median (min to max) \
         | whole pipeline, µs per span | its no-op twin, µs per span | delivered rate (median) \
         | spans lost (worst run) | threads of the pipeline and its twin |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in &rows {
        row.print();
    }
    println!();
    for protocol in ["gRPC", "HTTP/protobuf"] {
        let part = |name: &str| {
            rows.iter()
                .find(|r| r.protocol == protocol && r.name == name)
                .map(|r| r.exporter_part().0)
        };
        let (Some(default), Some(high), Some(bare)) = (
            part("lightstep-default"),
            part("lightstep-high-throughput"),
            part("bare-otlp-defaults"),
        ) else {
            continue;
        };
        println!(
            "{protocol}: exporter's part {default:.3} µs (default), {high:.3} µs \
             (high-throughput), {bare:.3} µs (bare opentelemetry-otlp): {:.1}x and {:.1}x less \
             than bare (goals: under 0.25 µs; at least 5x less)",
            bare / default,
            bare / high
        );
    }
}

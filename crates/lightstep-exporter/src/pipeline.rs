//! The extension points of the pipeline: a sampler, span processors and exporters, resource
//! attributes and detectors, an id generator, and the hook for export failures, chosen in
//! code. They live here, apart from the configuration, because they are code (trait objects
//! and closures), not settings: nothing in the environment or a file can name them. See
//! `docs/adr/012-extensible-pipeline.md` and `docs/adr/014-one-way-in.md`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lightstep_config::LightstepConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::resource::ResourceDetector;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, ShouldSample, SpanData, SpanExporter,
    SpanProcessor, TracerProviderBuilder,
};

use crate::stats::{FailureHook, Stats};
use crate::transport::Redactor;
use crate::{ExportFailure, ExporterError, Pipeline};

/// An id generator, given to the SDK's provider builder after the pipeline's own settings.
type IdGeneratorStep = Box<dyn FnOnce(TracerProviderBuilder) -> TracerProviderBuilder>;

/// A span processor added in code, made once the pipeline has what it reports through.
type AddedProcessor = Box<dyn FnOnce(&Reporting) -> Box<dyn SpanProcessor>>;

thread_local! {
    /// The flush the pipeline runs on this thread: its deadline, and whether a processor (the
    /// OTLP one or one added in code) missed it. The SDK flushes its processors on the
    /// caller's thread, one after the other, so the added ones find it here; each flush has
    /// its own (another thread's, or a flush of the provider itself, has none).
    static FLUSH: std::cell::Cell<Option<(Instant, Missed)>> = const { std::cell::Cell::new(None) };
}

/// Which parts of the pipeline missed a deadline.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Missed {
    /// The OTLP processor.
    pub(crate) otlp: bool,
    /// A processor or exporter added in code.
    pub(crate) added: bool,
}

/// Runs `flush` (the provider's) as the pipeline's flush, due within `timeout`; returns what it
/// returned and whether a processor added in code missed the deadline.
pub(crate) fn pipeline_flush<T>(timeout: Duration, flush: impl FnOnce() -> T) -> (T, Missed) {
    /// Puts back the flush this one is nested in (none, normally), even if `flush` panics.
    struct Restore(Option<(Instant, Missed)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FLUSH.set(self.0);
        }
    }
    let _restore = Restore(FLUSH.replace(Some((Instant::now() + timeout, Missed::default()))));
    let result = flush();
    let missed = FLUSH.get().map(|(_, missed)| missed).unwrap_or_default();
    (result, missed)
}

/// Notes that a processor missed the deadline of the pipeline's flush running on this thread,
/// if one is: that flush reports it. A flush the pipeline did not start (of the provider
/// itself) has its error returned to its caller, and leaves nothing behind for the next one.
pub(crate) fn flush_missed(added: bool) {
    if let Some((deadline, mut missed)) = FLUSH.get() {
        if added {
            missed.added = true;
        } else {
            missed.otlp = true;
        }
        FLUSH.set(Some((deadline, missed)));
    }
}

/// How long the processors added in code may take to shut down beyond the pipeline's
/// `shutdown_timeout`: they get at least this long, even when the OTLP processor used up the
/// deadline, so a shutdown with added processors ends within `shutdown_timeout` plus this.
pub(crate) const ADDED_SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// What an extension reports its failures through: the pipeline's counters and hook, and the
/// cleaning that keeps header values and control characters out of a report.
pub(crate) struct Reporting {
    pub(crate) stats: Arc<Stats>,
    pub(crate) redactor: Redactor,
    /// The pipeline's batch settings, which an added exporter's batch processor takes too.
    pub(crate) batch: lightstep_config::BatchConfig,
}

/// What code adds to the pipeline the configuration describes.
#[derive(Default)]
pub(crate) struct Extensions {
    pub(crate) sampler: Option<Box<dyn ShouldSample>>,
    /// Span processors and exporters, in the order they were added.
    pub(crate) processors: Vec<AddedProcessor>,
    /// The id generator; the last one given wins.
    pub(crate) id_generator: Option<IdGeneratorStep>,
    /// In the order they were added: a later one's attributes win.
    pub(crate) resources: Vec<Resource>,
    pub(crate) detectors: Vec<Box<dyn ResourceDetector>>,
    pub(crate) on_export_error: Option<FailureHook>,
}

/// Builds a [`Pipeline`] from a configuration plus extensions of your own.
///
/// ```no_run
/// use lightstep_exporter::{LightstepConfig, Pipeline};
/// use opentelemetry_sdk::Resource;
/// use opentelemetry_sdk::trace::Sampler;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pipeline = Pipeline::builder(LightstepConfig::from_env()?)
///     .with_sampler(Sampler::TraceIdRatioBased(0.25))
///     .with_resource(
///         Resource::builder_empty()
///             .with_attribute(opentelemetry::KeyValue::new("team", "payments"))
///             .build(),
///     )
///     .build()?;
/// pipeline.install_global();
/// let _guard = pipeline.into_guard();
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PipelineBuilder {
    config: LightstepConfig,
    extensions: Extensions,
}

impl PipelineBuilder {
    pub(crate) fn new(config: LightstepConfig) -> Self {
        Self {
            config,
            extensions: Extensions::default(),
        }
    }

    /// Samples with `sampler` instead of the configured sampler: `OTEL_TRACES_SAMPLER` and
    /// `OTEL_TRACES_SAMPLER_ARG` (and the file's sampler) are then ignored. Wrap it in
    /// `Sampler::ParentBased` to follow the parent's decision. `OTEL_SDK_DISABLED=true` still
    /// wins: a disabled pipeline records nothing whatever the sampler says.
    pub fn with_sampler(mut self, sampler: impl ShouldSample + 'static) -> Self {
        self.extensions.sampler = Some(Box::new(sampler));
        self
    }

    /// Adds a span processor beside the OTLP one. It receives every span the sampler records
    /// (its own copy, after the OTLP processor has taken its own), and is flushed and shut down
    /// with the pipeline. Processors run in the order they were added.
    ///
    /// At shutdown, the added processors shut down side by side, each on a thread of its own,
    /// with the time left until the pipeline's `shutdown_timeout` (at least 200 ms). One that
    /// has not finished by then is left to finish on its thread, and the shutdown returns
    /// [`ExporterError::Deadline`]: the pipeline's shutdown ends within `shutdown_timeout`
    /// plus 200 ms, whatever the added processors do. A flush of the pipeline flushes them the
    /// same way, within its own deadline.
    pub fn with_span_processor(mut self, processor: impl SpanProcessor + 'static) -> Self {
        self.extensions
            .processors
            .push(Box::new(move |_| Box::new(processor)));
        self
    }

    /// Adds an exporter beside the OTLP one (opentelemetry-stdout's, opentelemetry-otlp's, your
    /// own), behind the SDK's `BatchSpanProcessor` with the pipeline's batch settings (queue
    /// and batch sizes, delay): it receives every span the sampler records, on
    /// the batch processor's own thread. For other batch settings, or a
    /// `SimpleSpanProcessor`, build the processor yourself and use
    /// [`PipelineBuilder::with_span_processor`].
    ///
    /// When its `export` returns an error, the batch's spans are counted in
    /// [`ExportStats::added_exporter_failed`](crate::ExportStats::added_exporter_failed), apart
    /// from the OTLP counters, and the failure is logged and reported as
    /// [`FailureKind::AddedExporterFailed`](crate::FailureKind::AddedExporterFailed) (to the
    /// hook of [`PipelineBuilder::on_export_error`], at most once every ten seconds). Its queue
    /// holds the pipeline's `batch.max_queue_size` spans: a span that ends while it is full
    /// never reaches the exporter, and is counted in
    /// [`ExportStats::added_exporter_dropped`](crate::ExportStats::added_exporter_dropped)
    /// (reported as [`FailureKind::AddedExporterDropped`](crate::FailureKind::AddedExporterDropped)),
    /// as are spans still queued when its shutdown ended.
    pub fn with_span_exporter(mut self, exporter: impl SpanExporter + 'static) -> Self {
        self.extensions
            .processors
            .push(Box::new(move |reporting: &Reporting| {
                let queued = Arc::new(AtomicUsize::new(0));
                let exporter = AddedExporter {
                    inner: exporter,
                    stats: Arc::clone(&reporting.stats),
                    redactor: reporting.redactor.clone(),
                    queued: Arc::clone(&queued),
                };
                let batch = &reporting.batch;
                // The configuration checked that a batch fits in the queue.
                let limit = batch.max_queue_size.max(1);
                let config = BatchConfigBuilder::default()
                    .with_max_queue_size(limit)
                    .with_max_export_batch_size(batch.max_export_batch_size.clamp(1, limit))
                    .with_scheduled_delay(batch.scheduled_delay)
                    .build();
                Box::new(CountedQueue {
                    inner: BatchSpanProcessor::builder(exporter)
                        .with_batch_config(config)
                        .build(),
                    queued,
                    limit,
                    stats: Arc::clone(&reporting.stats),
                    closed: AtomicBool::new(false),
                })
            }));
        self
    }

    /// Adds the attributes of `resource` to the Resource of every span. They win over detected
    /// attributes (the pipeline's and [`PipelineBuilder::with_resource_detector`]'s);
    /// the configuration wins over them: `OTEL_RESOURCE_ATTRIBUTES`, the file's and the
    /// configuration builder's resource attributes, the service name, version and deployment
    /// environment, and `telemetry.distro.*`. Called again, the later resource wins.
    ///
    /// Its schema URL (`Resource::builder_empty().with_schema_url(..)`) is the one of the
    /// Resource sent (`ResourceSpans.schema_url`), as the SDK merges resources: with several
    /// resources, a URL stays while the later ones have the same URL or none; when a later one
    /// has a different URL, the two conflict and the Resource has none (unless a resource
    /// added after that brings one again). Detected attributes and the configuration's carry
    /// no schema URL.
    pub fn with_resource(mut self, resource: Resource) -> Self {
        self.extensions.resources.push(resource);
        self
    }

    /// Adds a resource detector, run once when the pipeline is built, after the pipeline's own
    /// detectors: what it finds wins over them, and loses to
    /// [`PipelineBuilder::with_resource`] and the configuration.
    pub fn with_resource_detector(mut self, detector: impl ResourceDetector + 'static) -> Self {
        self.extensions.detectors.push(Box::new(detector));
        self
    }

    /// Makes trace and span ids with `generator` instead of the SDK's random one.
    pub fn with_id_generator(mut self, generator: impl IdGenerator + 'static) -> Self {
        self.extensions.id_generator = Some(Box::new(move |builder| {
            builder.with_id_generator(generator)
        }));
        self
    }

    /// Calls `hook` when spans do not reach the backend: an export that failed (for good, or to
    /// be retried), spans the backend rejected, spans dropped from a full queue. At most one
    /// call every ten seconds for each of drops, failed exports (for good or to be retried) and
    /// rejections, as the `tracing` warnings (which are still
    /// logged); [`ExportFailure::total`] counts what came in between. It never receives the
    /// access token or a header value.
    ///
    /// Without a hook, a failure goes to `tracing` as a warning and, when no global `tracing`
    /// subscriber is installed, also to stderr as one line starting `lightstep-rs: `: a hook
    /// replaces that line. The hook runs on the pipeline's export thread, or, for a full
    /// queue, on the application's thread that ended the span: keep it short, and never block
    /// in it. A panic in it is caught.
    ///
    /// ```no_run
    /// use lightstep_exporter::{LightstepConfig, Pipeline};
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let pipeline = Pipeline::builder(LightstepConfig::from_env()?)
    ///     .on_export_error(|failure| eprintln!("telemetry: {failure}"))
    ///     .build()?;
    /// # drop(pipeline);
    /// # Ok(()) }
    /// ```
    pub fn on_export_error(
        mut self,
        hook: impl Fn(&ExportFailure) + Send + Sync + 'static,
    ) -> Self {
        self.extensions.on_export_error = Some(std::sync::Arc::new(hook));
        self
    }

    /// Builds the pipeline. It does not install itself globally: call
    /// [`Pipeline::install_global`] for that.
    pub fn build(self) -> Result<Pipeline, ExporterError> {
        Pipeline::build(self.config, None, self.extensions)
    }
}

impl fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The resource is left out: its attributes are the application's and may be private.
        f.debug_struct("PipelineBuilder")
            .field("config", &self.config)
            .field("sampler", &self.extensions.sampler)
            .field("processors", &self.extensions.processors.len())
            .field("id_generator", &self.extensions.id_generator.is_some())
            .field("resource_detectors", &self.extensions.detectors.len())
            .field(
                "on_export_error",
                &self.extensions.on_export_error.as_ref().map(|_| "hook"),
            )
            .finish_non_exhaustive()
    }
}

/// An exporter added in code, whose failed exports are counted and reported apart from OTLP
/// delivery (see `docs/adr/016-added-exporters-fail-apart.md`).
struct AddedExporter<E> {
    inner: E,
    stats: Arc<Stats>,
    redactor: Redactor,
    /// Its [`CountedQueue`]'s count: the spans of a batch leave it when the batch is exported.
    queued: Arc<AtomicUsize>,
}

/// The SDK's `BatchSpanProcessor` in front of an added exporter, with its queue counted here:
/// the SDK drops a span that finds its queue full with one log line. A span is let in only
/// while fewer than `limit` are queued or being batched (the SDK's queue holds `limit`, so it
/// never refuses one), and counted as dropped otherwise; spans still queued when the
/// processor has shut down are counted as dropped too.
#[derive(Debug)]
struct CountedQueue {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    limit: usize,
    stats: Arc<Stats>,
    /// Set when its shutdown starts: spans that end after it are not let in.
    closed: AtomicBool,
}

impl SpanProcessor for CountedQueue {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.closed.load(Ordering::Acquire) {
            self.stats
                .added_exporter_dropped(1, "it ended after the exporter was shut down");
            return;
        }
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.inner.on_end(span);
        } else {
            self.stats.added_exporter_dropped(1, "the queue was full");
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.closed.store(true, Ordering::Release);
        // What is still queued when the batch processor's thread has finished is counted by
        // the exporter's shutdown, which that thread calls after its last export (even when
        // this shutdown ran out of time first).
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: fmt::Debug> fmt::Debug for AddedExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AddedExporter").field(&self.inner).finish()
    }
}

impl<E> AddedExporter<E> {
    /// Called when the batch processor's thread shuts the exporter down, after its last
    /// export: spans still counted as queued never reached the exporter.
    fn count_left(&self) {
        let left = self.queued.swap(0, Ordering::AcqRel);
        if left > 0 {
            self.stats
                .added_exporter_dropped(left as u64, "still queued when it shut down");
        }
    }
}

impl<E: SpanExporter> SpanExporter for AddedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        // Out of the queue: whatever the export does with them, they reached the exporter.
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(batch.len()))
            });
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        if let Err(e) = &result {
            // The error's text may quote a backend, or a header the exporter was given.
            self.stats
                .added_exporter_failed(spans, &self.redactor.clean(&e.to_string()));
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.count_left();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn shutdown(&self) -> OTelSdkResult {
        self.count_left();
        self.inner.shutdown()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The processors added in code, as one processor after the OTLP one. The SDK's provider shuts
/// its processors down (and flushes them) one after the other, each given the whole timeout, so
/// a slow added processor would stretch the pipeline's shutdown or flush past its deadline (an
/// exporter that hangs holds its `BatchSpanProcessor` for that timeout; a processor may ignore
/// it altogether, and a flush has none). Here they shut down, and flush, side by side on threads
/// of their own, within the time left until the pipeline's deadline; one still running then is
/// abandoned to its thread. See `docs/adr/017-added-processors-keep-the-deadline.md`.
#[derive(Debug)]
pub(crate) struct AddedProcessors {
    processors: Vec<Arc<dyn SpanProcessor>>,
    /// Per processor, its flushes that missed their deadline and are still running on their
    /// threads: at [`FLUSHES_LEFT_RUNNING`], it is not flushed again until one returns.
    left_running: Vec<Arc<AtomicUsize>>,
    stats: Arc<Stats>,
    /// The pipeline's deadline for a flush or shutdown it did not start itself.
    timeout: Duration,
}

impl AddedProcessors {
    pub(crate) fn new(
        processors: Vec<Box<dyn SpanProcessor>>,
        stats: Arc<Stats>,
        timeout: Duration,
    ) -> Self {
        Self {
            left_running: processors.iter().map(|_| Arc::default()).collect(),
            processors: processors.into_iter().map(Arc::from).collect(),
            stats,
            timeout,
        }
    }

    /// Runs `operation` on every processor side by side, each given the time left until
    /// `deadline` (the pipeline's, or `fallback` from now), at least [`ADDED_SHUTDOWN_GRACE`].
    /// A processor that misses it makes the result the SDK's `Timeout`, and `missed` is told.
    /// With `left_running` (flushes), the runs that miss the deadline are counted until they
    /// return, and a processor with [`FLUSHES_LEFT_RUNNING`] of them is not run again and is
    /// late at once: flushes that never return hold that many threads, not one per flush.
    fn side_by_side(
        &self,
        deadline: Option<Instant>,
        fallback: Duration,
        operation: fn(&dyn SpanProcessor, Duration) -> OTelSdkResult,
        left_running: Option<&[Arc<AtomicUsize>]>,
        missed: impl FnOnce(),
    ) -> OTelSdkResult {
        let start = Instant::now();
        let left = deadline
            .map_or(fallback, |deadline| {
                deadline.saturating_duration_since(start)
            })
            .max(ADDED_SHUTDOWN_GRACE);
        let (done, results) = crossbeam_channel::unbounded();
        let mut finished = Vec::new();
        // The runs on threads of their own, by processor, until their results arrive.
        let mut waiting: Vec<Option<Run>> = self.processors.iter().map(|_| None).collect();
        let mut overran = false;
        for (k, processor) in self.processors.iter().enumerate() {
            let counted = left_running.and_then(|counts| counts.get(k)).cloned();
            if counted
                .as_ref()
                .is_some_and(|n| n.load(Ordering::Acquire) >= FLUSHES_LEFT_RUNNING)
            {
                overran = true;
                continue;
            }
            let run = Run {
                state: Arc::new(AtomicU8::new(RUNNING)),
                left_running: counted,
            };
            let (on_thread, on_its_thread, done) =
                (Arc::clone(processor), run.clone(), done.clone());
            let spawned = std::thread::Builder::new()
                .name("lightstep-added".into())
                .spawn(move || {
                    let result = operation(&*on_thread, left);
                    on_its_thread.returned();
                    let _ = done.send((k, result));
                });
            match spawned {
                Ok(_) => waiting[k] = Some(run),
                Err(_) => {
                    // No thread to be had: run it here, with what is left of the time.
                    let now = Instant::now();
                    finished.push(operation(
                        &**processor,
                        (start + left).saturating_duration_since(now),
                    ));
                }
            }
        }
        drop(done);
        let until = start + left;
        while waiting.iter().any(Option::is_some) {
            match results.recv_deadline(until) {
                Ok((k, result)) => {
                    if let Some(slot) = waiting.get_mut(k) {
                        *slot = None;
                    }
                    finished.push(result);
                }
                Err(_) => {
                    overran = true;
                    for run in waiting.iter().flatten() {
                        run.left_behind();
                    }
                    break;
                }
            }
        }
        let errors: Vec<OTelSdkError> = finished.into_iter().filter_map(Result::err).collect();
        if overran || errors.iter().any(|e| matches!(e, OTelSdkError::Timeout(_))) {
            // The pipeline reports its deadline error, whichever processor missed it.
            missed();
            return Err(OTelSdkError::Timeout(left));
        }
        failure(errors)
    }
}

impl SpanProcessor for AddedProcessors {
    /// The SDK gives the Resource to the processors registered with it, this one: each added
    /// processor gets it here (a `BatchSpanProcessor` hands it to its exporter), as it would
    /// registered on its own.
    fn set_resource(&mut self, resource: &Resource) {
        for processor in &mut self.processors {
            // The processors are shared only while they shut down or flush, after this.
            if let Some(processor) = Arc::get_mut(processor) {
                processor.set_resource(resource);
            }
        }
    }

    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        for processor in &self.processors {
            processor.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        // Each its own copy, as the SDK gives one to each of its processors.
        if let Some((last, others)) = self.processors.split_last() {
            for processor in others {
                processor.on_end(span.clone());
            }
            last.on_end(span);
        }
    }

    /// A flush has no timeout of its own in the SDK: the pipeline's flush deadline (its
    /// shutdown timeout from when the flush started) bounds the added processors' flushes; a
    /// flush of the provider itself gets the shutdown timeout from now.
    fn force_flush(&self) -> OTelSdkResult {
        let deadline = FLUSH.get().map(|(deadline, _)| deadline);
        self.side_by_side(
            deadline,
            self.timeout,
            |p, _| p.force_flush(),
            Some(&self.left_running),
            || {
                flush_missed(true);
            },
        )
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // The pipeline's deadline when it is shutting down (the SDK hands every processor the
        // whole timeout again); the timeout given when the provider shuts down on its own.
        self.side_by_side(
            self.stats.shutdown_deadline(),
            timeout,
            |p, left| p.shutdown_with_timeout(left),
            None,
            || {
                self.stats.deadline_missed.store(true, Ordering::Release);
                self.stats
                    .added_deadline_missed
                    .store(true, Ordering::Release);
            },
        )
    }
}

/// Flushes of one added processor that may be left running past their deadline before it is
/// no longer flushed: one left running does not keep the next flush from reaching the
/// processor (which may well answer it, as a `BatchSpanProcessor` does once its export
/// returns), but a processor whose flushes never return holds no more threads than this.
const FLUSHES_LEFT_RUNNING: usize = 2;

const RUNNING: u8 = 0;
const RETURNED: u8 = 1;
const LEFT_BEHIND: u8 = 2;

/// One run of an added processor on a thread of its own, and its processor's count of the
/// flushes left running (none for a shutdown).
#[derive(Clone)]
struct Run {
    state: Arc<AtomicU8>,
    left_running: Option<Arc<AtomicUsize>>,
}

impl Run {
    /// Its thread is done: a run that had been left behind is no longer counted.
    fn returned(&self) {
        if self.state.swap(RETURNED, Ordering::AcqRel) == LEFT_BEHIND
            && let Some(count) = &self.left_running
        {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Its deadline passed without its result: counted until it returns (unless it just did).
    /// Counted first and marked after, so that the count never goes below what is left
    /// running while its thread returns at the same moment.
    fn left_behind(&self) {
        if let Some(count) = &self.left_running {
            count.fetch_add(1, Ordering::AcqRel);
            let marked = self.state.compare_exchange(
                RUNNING,
                LEFT_BEHIND,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if marked.is_err() {
                count.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// `Ok` when `errors` is empty, else one error that lists them.
fn failure(errors: Vec<OTelSdkError>) -> OTelSdkResult {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(OTelSdkError::InternalFailure(format!(
            "added processors failed: {errors:?}"
        )))
    }
}

/// The Resource of the pipeline: see [`crate::build_resource`] for the order.
pub(crate) fn resource(config: &LightstepConfig, extensions: &Extensions) -> Resource {
    crate::resource::build(config, &extensions.detectors, &extensions.resources)
}

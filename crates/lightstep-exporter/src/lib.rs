//! The OTLP trace pipeline of lightstep-rs: from a [`LightstepConfig`] to spans at Lightstep,
//! a Collector or any OTLP backend, with a shutdown that keeps its deadline and reports what it
//! could not deliver.
//!
//! # Quick start
//!
//! ```no_run
//! use lightstep_exporter::{LightstepConfig, Pipeline};
//! use opentelemetry::trace::{Tracer, TracerProvider as _};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // LIGHTSTEP_ACCESS_TOKEN, OTEL_SERVICE_NAME, ... from the environment.
//! let pipeline = Pipeline::new(LightstepConfig::from_env()?)?;
//! pipeline.install_global(); // a choice, not forced
//!
//! pipeline.tracer().in_span("checkout", |_cx| { /* work */ });
//!
//! let stats = pipeline.shutdown().await?; // Err if any span was not delivered
//! println!("{} spans delivered", stats.exported);
//! # Ok(()) }
//! ```
//!
//! # What it does that opentelemetry-otlp's exporter does not
//!
//! - TLS that works out of the box (the system's roots, plus a configured CA and client
//!   certificate); HTTP/protobuf and HTTP/JSON besides gRPC.
//! - Its own OTLP encoding, written straight from the spans into a reused buffer (the same
//!   bytes prost writes for opentelemetry-proto's conversion, without building it), sent with
//!   tonic or hyper-util's HTTP client on the pipeline's own runtime, through one connector
//!   and one TLS configuration: see `docs/adr/003-own-otlp-encoding.md` and
//!   `docs/adr/011-one-async-transport-core.md`.
//! - What is sent is exactly the configuration: headers, compression and endpoint are never
//!   read from the process environment behind its back (the configuration itself lets code
//!   beat `OTEL_EXPORTER_OTLP_*`).
//! - A backend's partial success counts the spans it rejected as failed, and its message
//!   (cleaned of secrets) is logged at most every ten seconds.
//! - Retries as the OTLP specification asks (its transient gRPC codes and HTTP statuses,
//!   `RetryInfo` and `Retry-After` honoured, exponential backoff with full jitter) for up to
//!   `batch.export_timeout`; then the spans go back to the queue while it has room, so an outage
//!   the queue can hold loses nothing and a longer one drops (and counts) exactly what does not
//!   fit. See `docs/adr/007-outages-keep-spans-queued.md`.
//! - A delivery processor of its own: ending a span never blocks; exports run on threads of
//!   their own, so flush and shutdown work the same on multi-thread and current-thread runtimes
//!   and outside any runtime; counters of spans exported, dropped and failed
//!   ([`Pipeline::stats`]); a rate-limited `tracing` warning when spans are lost, also
//!   given to a hook of yours ([`PipelineBuilder::on_export_error`]) or, with no hook
//!   and no `tracing` subscriber, printed on stderr. Its
//!   queue (`batch.max_queue_size`) is allocated when the pipeline starts, up to 131,072 spans
//!   (about 360 bytes a span: 720 KiB for the default 2,048); a larger queue grows with use.
//! - [`Pipeline::shutdown`] finishes within `shutdown_timeout` whatever the backend
//!   does, and returns an error naming what was not delivered, never a silent `Ok`.
//! - [`PipelineGuard`] flushes and shuts down on drop, inside or outside a runtime.
//! - `OTEL_SDK_DISABLED=true` gives a working no-op pipeline.
//! - Extensions in code ([`Pipeline::builder`]): a sampler, span processors and
//!   exporters beside the OTLP one, resource attributes and detectors, an id generator.
//!
//! See `docs/exporter.md` for protocols, TLS, shutdown semantics and what happens to spans when
//! the backend is down.
//!
//! # Supported Rust version
//!
//! Rust 1.90 or later.

pub mod diagnose;
mod encode;
mod error;
mod pipeline;
mod processor;
mod propagation;
mod resource;
mod retry;
mod stats;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use lightstep_config::{self as config, LightstepConfig};
use opentelemetry::InstrumentationScope;
use opentelemetry::trace::TracerProvider as _;
/// The SDK this pipeline is built on: the types [`PipelineBuilder`] takes come from
/// here, in the version that fits.
pub use opentelemetry_sdk;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

pub use error::ExporterError;
pub use pipeline::PipelineBuilder;
pub use propagation::{B3, Jaeger, OtTrace, Xray, build_propagator};
pub use resource::{DISTRO_NAME, build_resource};
pub use stats::{ExportFailure, ExportStats, FailureKind};
pub use transport::ACCESS_TOKEN_HEADER;

use crate::processor::{DeliveryProcessor, Settings, Transport};

/// Not API: what `benches/stages.rs`, `benches/delivery.rs` and `benches/cpu.rs` measure (the
/// encoder, the no-op exporter and the no-op processor of the ceilings). May change at any time.
#[doc(hidden)]
pub mod bench_support {
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SpanData;

    /// The OTLP protobuf encoder the gRPC and HTTP transports use.
    #[derive(Debug)]
    pub struct ProtobufEncoder(crate::encode::proto::ProtoEncoder);

    /// The pipeline `config` describes, with an exporter that discards every batch and
    /// reports it delivered: the no-op exporter of the throughput ceiling (span creation, the
    /// queue and the export thread, nothing encoded or sent). With a configuration that does
    /// not export (`OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER=none`) there is no processor, and
    /// the no-op exporter is not used either.
    pub fn with_noop_exporter(
        config: lightstep_config::LightstepConfig,
    ) -> Result<crate::Pipeline, crate::ExporterError> {
        crate::Pipeline::build(
            config,
            Some(Box::new(NoopTransport)),
            crate::pipeline::Extensions::default(),
        )
    }

    /// The no-op ceiling's processor: span creation alone, every span discarded.
    #[derive(Debug)]
    pub struct Discard;

    impl opentelemetry_sdk::trace::SpanProcessor for Discard {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
        fn on_end(&self, span: SpanData) {
            std::hint::black_box(span);
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(
            &self,
            _: std::time::Duration,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    struct NoopTransport;

    impl crate::processor::Transport for NoopTransport {
        fn start(
            &mut self,
            _batch: &[SpanData],
        ) -> crossbeam_channel::Receiver<crate::processor::ExportResult> {
            let (answer, result) = crossbeam_channel::bounded(1);
            let _ = answer.send(Ok(crate::processor::Delivered::default()));
            result
        }
        fn close(self: Box<Self>) {}
    }

    impl ProtobufEncoder {
        /// An encoder for spans of `resource`.
        pub fn new(resource: &Resource) -> Self {
            Self(crate::encode::proto::ProtoEncoder::new(resource))
        }

        /// Appends the `ExportTraceServiceRequest` for `spans` to `out`.
        pub fn encode(&self, spans: &[SpanData], out: &mut Vec<u8>) {
            self.0.encode(spans, out);
        }
    }
}
use crate::stats::Stats;

/// The trace pipeline the configuration describes: the tracer provider with its sampler and
/// Resource, the delivery processor, and the OTLP transport (what OpenTelemetry calls the
/// exporter is only the last of these). `LightstepExporter` is the original design's name for
/// it.
#[derive(Debug)]
pub struct Pipeline {
    provider: SdkTracerProvider,
    config: LightstepConfig,
    /// The sampler given in code in place of the configured one, as its `Debug` shows it.
    custom_sampler: Option<String>,
    stats: Arc<Stats>,
    /// Losses already reported by a flush, so each flush reports only its own.
    reported_losses: Arc<AtomicU64>,
}

/// The original design's name for [`Pipeline`], kept so that code written against it
/// (`LightstepExporter::new(config)`, `.tracer()`) compiles.
pub type LightstepExporter = Pipeline;

impl Pipeline {
    /// Builds the pipeline. It does not install itself globally: call
    /// [`Pipeline::install_global`] for that.
    ///
    /// To add a sampler, span processors, exporters, resource attributes or detectors, or an
    /// id generator of your own, use [`Pipeline::builder`].
    pub fn new(config: LightstepConfig) -> Result<Self, ExporterError> {
        Self::builder(config).build()
    }

    /// A builder of the pipeline `config` describes, which takes extensions of your own: see
    /// [`PipelineBuilder`].
    pub fn builder(config: LightstepConfig) -> PipelineBuilder {
        PipelineBuilder::new(config)
    }

    /// Builds the pipeline; `transport` replaces the one the configuration asks for.
    fn build(
        config: LightstepConfig,
        transport: Option<Box<dyn Transport>>,
        extensions: pipeline::Extensions,
    ) -> Result<Self, ExporterError> {
        let stats = Arc::new(Stats::new(stats::Report::new(
            extensions.on_export_error.clone(),
        )));
        let resource = pipeline::resource(&config, &extensions);
        let limits = config.span_limits();
        let custom_sampler = extensions.sampler.as_ref().map(|s| format!("{s:?}"));
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_max_attributes_per_span(limits.attribute_count)
            .with_max_events_per_span(limits.event_count)
            .with_max_links_per_span(limits.link_count)
            .with_max_attributes_per_event(limits.event_attribute_count)
            .with_max_attributes_per_link(limits.link_attribute_count);
        if config.sdk_disabled() {
            // Spans are still created (context still propagates) but none is recorded.
            builder = builder.with_sampler(Sampler::AlwaysOff);
        } else if let Some(custom) = extensions.sampler {
            builder = builder.with_sampler(custom);
        } else {
            builder = builder.with_sampler(sampler(config.sampler()));
        }
        if config.exports() {
            let batch = config.batch();
            let transport: Box<dyn Transport> = match transport {
                Some(transport) => transport,
                None => Box::new(transport::OtlpTransport::new(
                    &config,
                    &resource,
                    batch.export_timeout,
                    batch.max_concurrent_exports,
                )?),
            };
            let settings = Settings {
                max_queue_size: batch.max_queue_size,
                max_export_batch_size: batch.max_export_batch_size,
                scheduled_delay: batch.scheduled_delay,
                export_timeout: batch.export_timeout,
                max_concurrent_exports: batch.max_concurrent_exports,
                attribute_value_length: limits.attribute_value_length,
            };
            let processor = DeliveryProcessor::start(
                settings,
                transport,
                Arc::clone(&stats),
                config.shutdown_timeout(),
            )
            .map_err(ExporterError::Runtime)?;
            builder = builder.with_span_processor(processor);
        }
        // After the delivery processor: each processor gets its own copy of every span, so
        // nothing an added one does reaches what is delivered.
        let reporting = pipeline::Reporting {
            stats: Arc::clone(&stats),
            redactor: transport::Redactor::new(&config),
            batch: config.batch().clone(),
        };
        let added: Vec<_> = extensions
            .processors
            .into_iter()
            .map(|make| make(&reporting))
            .collect();
        if !added.is_empty() {
            builder = builder.with_span_processor(pipeline::AddedProcessors::new(
                added,
                Arc::clone(&stats),
                config.shutdown_timeout(),
            ));
        }
        if let Some(id_generator) = extensions.id_generator {
            builder = id_generator(builder);
        }
        Ok(Self {
            provider: builder.build(),
            config,
            custom_sampler,
            stats,
            reported_losses: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Reads the configuration from the environment and builds the pipeline.
    pub fn from_env() -> Result<Self, ExporterError> {
        Self::new(LightstepConfig::from_env()?)
    }

    /// A tracer of this pipeline, with the instrumentation scope `lightstep-rs`.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer_with_scope(
            InstrumentationScope::builder(DISTRO_NAME)
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
    }

    /// The tracer provider, for `tracing-opentelemetry` or your own tracers.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The configuration this pipeline was built from.
    pub fn config(&self) -> &LightstepConfig {
        &self.config
    }

    /// What this pipeline runs with: [`LightstepConfig::effective`], except that a sampler
    /// given to [`PipelineBuilder::with_sampler`] shows as `sampler.name = custom:
    /// <its Debug>` (source: code) and `sampler.arg` as unused, since it replaced them.
    pub fn effective_config(&self) -> lightstep_config::EffectiveConfig {
        let mut effective = self.config.effective();
        if let Some(custom) = &self.custom_sampler {
            for setting in &mut effective.settings {
                let value = match setting.key.as_str() {
                    "sampler.name" => format!("custom: {custom}"),
                    "sampler.arg" => "(not used: custom sampler)".to_owned(),
                    _ => continue,
                };
                setting.value = value;
                setting.source = lightstep_config::Source::Code {
                    setter: "PipelineBuilder::with_sampler",
                };
            }
        }
        effective
    }

    /// The configuration's warnings: things that work but are probably not what was meant.
    pub fn warnings(&self) -> &[lightstep_config::ConfigWarning] {
        self.config.warnings()
    }

    /// What has happened to the spans so far.
    pub fn stats(&self) -> ExportStats {
        self.stats.snapshot()
    }

    /// The propagator named by the configuration (`OTEL_PROPAGATORS`).
    pub fn propagator(&self) -> opentelemetry::propagation::TextMapCompositePropagator {
        build_propagator(self.config.propagators())
    }

    /// Installs this pipeline's tracer provider and propagator as the global ones.
    pub fn install_global(&self) {
        opentelemetry::global::set_tracer_provider(self.provider.clone());
        opentelemetry::global::set_text_map_propagator(self.propagator());
    }

    /// Exports every span ended so far, within `shutdown_timeout`. Blocks the calling thread;
    /// in async code use [`Pipeline::force_flush`].
    pub fn force_flush_blocking(&self) -> Result<(), ExporterError> {
        // Its deadline, for the processors added in code, which the SDK flushes after the
        // OTLP processor.
        let (result, added_missed) =
            pipeline::pipeline_flush(self.config.shutdown_timeout(), || {
                self.provider.force_flush()
            });
        let stats = self.stats();
        self.outcome("flush", result, added_missed, &stats)?;
        if !self.config.exports() {
            // Only processors added in code were flushed: there is no delivery to account for.
            return Ok(());
        }
        let losses = stats.dropped + stats.failed;
        let before = self.reported_losses.swap(losses, Ordering::AcqRel);
        if losses > before {
            return Err(undelivered(&stats));
        }
        Ok(())
    }

    /// Exports every span ended so far, within `shutdown_timeout`, without blocking an async
    /// worker thread (the wait happens on a blocking-pool thread).
    ///
    /// Returns [`ExporterError::Undelivered`] when spans were lost since the previous flush
    /// (dropped from a full queue, or failed to export); the pipeline keeps running.
    pub async fn force_flush(&self) -> Result<(), ExporterError> {
        let this = self.handles();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || this.flush())
                .await
                .unwrap_or_else(|_| Err(ExporterError::Sdk("the flush task panicked".into()))),
            Err(_) => this.flush(),
        }
    }

    /// Flushes and shuts down within `shutdown_timeout`, whatever the backend does (with
    /// processors or exporters added in code, within 200 ms more, whatever they do: see
    /// [`PipelineBuilder::with_span_processor`]). Returns the final counters, or an error
    /// naming what was not delivered: never a silent `Ok`. Blocks the calling thread; in async
    /// code use [`Pipeline::shutdown`].
    pub fn shutdown_blocking(&self) -> Result<ExportStats, ExporterError> {
        let timeout = self.config.shutdown_timeout();
        // For the processors added in code, which the SDK gives the whole timeout again after
        // the OTLP processor.
        self.stats.start_shutdown(timeout);
        let result = self.provider.shutdown_with_timeout(timeout);
        let stats = self.stats();
        if matches!(result, Err(OTelSdkError::AlreadyShutdown)) {
            return Err(ExporterError::AlreadyShutDown);
        }
        self.outcome("shutdown", result, pipeline::Missed::default(), &stats)?;
        if stats.undelivered() > 0 {
            return Err(undelivered(&stats));
        }
        Ok(stats)
    }

    /// [`Pipeline::shutdown_blocking`] without blocking an async worker thread.
    pub async fn shutdown(&self) -> Result<ExportStats, ExporterError> {
        let this = self.handles();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || this.shutdown())
                .await
                .unwrap_or_else(|_| Err(ExporterError::Sdk("the shutdown task panicked".into()))),
            Err(_) => this.shutdown(),
        }
    }

    /// A guard that shuts the pipeline down when dropped.
    pub fn into_guard(self) -> PipelineGuard {
        PipelineGuard {
            pipeline: Some(self),
        }
    }

    fn outcome(
        &self,
        operation: &'static str,
        result: Result<(), OTelSdkError>,
        flush_missed: pipeline::Missed,
        stats: &ExportStats,
    ) -> Result<(), ExporterError> {
        // The provider wraps a processor's timeout in a generic failure: the processor's own
        // flag says whether the deadline was missed (a flush's, kept for the flush).
        let added = self
            .stats
            .added_deadline_missed
            .swap(false, Ordering::AcqRel)
            || flush_missed.added;
        let missed =
            self.stats.deadline_missed.swap(false, Ordering::AcqRel) || flush_missed.otlp || added;
        match result {
            Ok(()) => Ok(()),
            Err(OTelSdkError::AlreadyShutdown) => Err(ExporterError::AlreadyShutDown),
            Err(OTelSdkError::Timeout(_)) | Err(_) if missed => Err(deadline(
                operation,
                self.config.shutdown_timeout(),
                added,
                stats,
            )),
            Err(OTelSdkError::Timeout(d)) => Err(deadline(operation, d, false, stats)),
            Err(other) => Err(ExporterError::Sdk(other.to_string())),
        }
    }

    fn handles(&self) -> Handles {
        Handles {
            provider: self.provider.clone(),
            stats: Arc::clone(&self.stats),
            config: self.config.clone(),
            custom_sampler: self.custom_sampler.clone(),
            reported_losses: Arc::clone(&self.reported_losses),
        }
    }
}

/// What a blocking-pool thread needs to flush or shut down (all handles, no borrow).
struct Handles {
    provider: SdkTracerProvider,
    stats: Arc<Stats>,
    config: LightstepConfig,
    custom_sampler: Option<String>,
    reported_losses: Arc<AtomicU64>,
}

impl Handles {
    fn into_pipeline(self) -> Pipeline {
        Pipeline {
            provider: self.provider,
            config: self.config,
            custom_sampler: self.custom_sampler,
            stats: self.stats,
            reported_losses: self.reported_losses,
        }
    }

    fn flush(self) -> Result<(), ExporterError> {
        self.into_pipeline().force_flush_blocking()
    }

    fn shutdown(self) -> Result<ExportStats, ExporterError> {
        self.into_pipeline().shutdown_blocking()
    }
}

fn undelivered(stats: &ExportStats) -> ExporterError {
    ExporterError::Undelivered {
        ended: stats.ended,
        undelivered: stats.undelivered(),
        dropped: stats.dropped,
        failed: stats.failed,
        last_error: stats.last_error.clone(),
    }
}

fn deadline(
    operation: &'static str,
    deadline: std::time::Duration,
    added_running: bool,
    stats: &ExportStats,
) -> ExporterError {
    ExporterError::Deadline {
        operation,
        deadline,
        added_running,
        ended: stats.ended,
        undelivered: stats.undelivered(),
        pending: stats.pending(),
        dropped: stats.dropped,
        failed: stats.failed,
    }
}

fn sampler(s: lightstep_config::Sampler) -> Sampler {
    use lightstep_config::Sampler as S;
    match s {
        S::AlwaysOn => Sampler::AlwaysOn,
        S::AlwaysOff => Sampler::AlwaysOff,
        S::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        S::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        S::ParentBasedTraceIdRatio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
        _ => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
    }
}

/// Flushes and shuts the pipeline down when dropped, within `shutdown_timeout`.
///
/// Keep it in a named binding for as long as spans should be exported: `let _guard = ...`,
/// never `let _ = ...`, which drops it at once and shuts the pipeline down before any span.
///
/// Safe inside or outside a Tokio runtime: on a multi-thread runtime the wait moves off the
/// worker with `block_in_place`; on a current-thread runtime or a plain thread it waits in
/// place, which cannot deadlock because exports run on the pipeline's own threads.
///
/// To see the outcome, end it yourself: `guard.shutdown().await` in async code,
/// `guard.shutdown_blocking()` in a synchronous `main`. Both return what could not be
/// delivered. On drop, a failure is logged through `tracing` and reported as an
/// [`ExportFailure`] of kind [`FailureKind::ShutDownOnDrop`]: to the hook of
/// [`PipelineBuilder::on_export_error`], or, without one and without a global
/// `tracing` subscriber, on stderr.
#[derive(Debug)]
#[must_use = "dropping the guard shuts the pipeline down"]
pub struct PipelineGuard {
    pipeline: Option<Pipeline>,
}

impl PipelineGuard {
    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        self.pipeline
            .as_ref()
            .expect("present until drop or shutdown")
    }

    /// Shuts down now and reports the outcome.
    pub async fn shutdown(mut self) -> Result<ExportStats, ExporterError> {
        match self.pipeline.take() {
            Some(pipeline) => pipeline.shutdown().await,
            None => Err(ExporterError::AlreadyShutDown),
        }
    }
}

impl std::ops::Deref for PipelineGuard {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        self.pipeline()
    }
}

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        let Some(pipeline) = self.pipeline.take() else {
            return;
        };
        let shutdown = || pipeline.shutdown_blocking();
        let result = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(shutdown),
            _ => shutdown(),
        };
        match result {
            Ok(_) | Err(ExporterError::AlreadyShutDown) => {}
            Err(e) => {
                tracing::warn!(error = %e, "lightstep-rs: shutdown on drop");
                pipeline.stats.shut_down_on_drop(&e.to_string());
            }
        }
    }
}

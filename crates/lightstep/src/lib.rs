//! Connect Rust services to Lightstep and to any OpenTelemetry OTLP backend.
//!
//! This is the facade of lightstep-rs: it re-exports the workspace's crates, each behind a cargo
//! feature, and wires them together in [`init`]. Depend on `lightstep` alone, or pick the crates
//! you need.
//!
//! # Quick start
//!
//! ```no_run
//! # #[cfg(all(feature = "exporter", feature = "instrument"))]
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let guard = lightstep::init()?; // the environment, plus the file named by LIGHTSTEP_CONFIG_FILE
//!     let tracing = lightstep::instrument::LightstepTracing::global();
//!     let name: Result<String, std::io::Error> = tracing
//!         .trace_database("postgresql", "SELECT name FROM users WHERE id = 42", async {
//!             Ok("ada".to_owned())
//!         })
//!         .await;
//!     println!("{name:?}");
//!     guard.shutdown().await?; // an error says how many spans were not delivered
//!     Ok(())
//! }
//! # #[cfg(not(all(feature = "exporter", feature = "instrument")))]
//! # fn main() {}
//! ```
//!
//! With no account, `cargo run --example quickstart` in the repository shows the same pipeline
//! end to end against an embedded receiver.
//!
//! # One way in
//!
//! [`init`] is `builder().init()`. Everything set in code goes on [`builder`]'s [`Builder`]
//! before `init()`: the configuration's settings (which override the environment and the file),
//! the pipeline's extensions (a sampler, span processors and exporters, resource attributes and
//! detectors, an id generator), a hook for failed exports, and, with the `tracing` feature, a
//! `tracing` layer. Every error is an [`ExporterError`], whose `Debug` (what `main` prints)
//! is the message and its causes.
//!
//! Exports that fail while the pipeline runs are `tracing` warnings; with no hook
//! ([`Builder::on_export_error`]) and no `tracing` subscriber, they are also printed on stderr,
//! one line each, at most one every ten seconds for each of drops, failed exports and
//! rejections.
//!
//! # Features
//!
//! | feature | default | gives |
//! |---|---|---|
//! | `exporter` | yes | [`exporter`] and [`init`] / [`builder`] |
//! | `instrument` | yes | [`instrument`] |
//! | `analysis` | no | `analysis` (`lightstep-analysis`) |
//! | `receiver` | no | `receiver` (`lightstep-receiver`) |
//! | `query` | no | `query` (`lightstep-query`: Jaeger, Tempo and Zipkin as trace sources) and `LightstepPerformance` |
//! | `tower`, `tonic` | no | the integrations of [`instrument`] |
//! | `tracing` | no | the `tracing` bridge of [`instrument`], and [`Builder::with_tracing_layer`] |
//!
//! [`config`] and [`opentelemetry`] are always there; the latter is re-exported so that an
//! application never ends up with two versions of it (which silently breaks the global
//! provider).
//!
//! # Supported Rust version
//!
//! Rust 1.90 or later.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use lightstep_config as config;
pub use opentelemetry;

#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
#[doc(inline)]
pub use lightstep_exporter as exporter;

#[cfg(feature = "instrument")]
#[cfg_attr(docsrs, doc(cfg(feature = "instrument")))]
#[doc(inline)]
pub use lightstep_instrument as instrument;

#[cfg(feature = "analysis")]
#[cfg_attr(docsrs, doc(cfg(feature = "analysis")))]
#[doc(inline)]
pub use lightstep_analysis as analysis;

#[cfg(feature = "receiver")]
#[cfg_attr(docsrs, doc(cfg(feature = "receiver")))]
#[doc(inline)]
pub use lightstep_receiver as receiver;

#[cfg(feature = "query")]
#[cfg_attr(docsrs, doc(cfg(feature = "query")))]
#[doc(inline)]
pub use lightstep_query as query;

pub use lightstep_config::{ConfigBuilder, LightstepConfig};

#[cfg(feature = "query")]
#[cfg_attr(docsrs, doc(cfg(feature = "query")))]
pub use lightstep_query::LightstepPerformance;

#[cfg(feature = "exporter")]
pub use lightstep_exporter::{
    ExportFailure, ExporterError, FailureKind, LightstepExporter, Pipeline, PipelineBuilder,
    PipelineGuard,
};

/// The OpenTelemetry SDK the pipeline is built on, for the types its extensions implement or
/// take (`Sampler`, `SpanProcessor`, `Resource`, ...): the same version as the pipeline's, so
/// they always fit.
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub use lightstep_exporter::opentelemetry_sdk;

/// Reads the configuration (the environment, plus the file named by `LIGHTSTEP_CONFIG_FILE`),
/// builds the pipeline, installs the global tracer provider and propagator, and returns a guard
/// that flushes and shuts down on drop within the configured deadline: `builder().init()`.
/// Errors are returned, never printed; the process is never exited.
///
/// The configuration's warnings (a misspelt variable, a launcher variable that is ignored, a
/// sampler of the OpenTelemetry specification that lightstep-rs lacks, ...) are logged through
/// `tracing`, one `WARN` event each with target `lightstep`, whether or not the configuration
/// is valid; install your subscriber first to see them. They stay readable on the guard:
/// `guard.warnings()`.
///
/// Bind the guard to a name for the life of the program (`let guard = lightstep::init()?;`):
/// `let _ = ...` drops it at once, and with it the pipeline. End it with
/// `guard.shutdown().await`, or `guard.shutdown_blocking()` in a synchronous `main`, to learn
/// what could not be delivered. Exports that fail while it runs are reported as
/// [`Builder::on_export_error`] says.
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub fn init() -> Result<PipelineGuard, ExporterError> {
    builder().init()
}

/// The one way to set lightstep-rs up with anything beyond the environment and the file:
/// settings in code (which override both), extensions of the pipeline, the hook for failed
/// exports and the `tracing` layer, then [`Builder::init`].
///
/// ```no_run
/// # #[cfg(feature = "exporter")]
/// # fn run() -> Result<(), lightstep::ExporterError> {
/// use lightstep::opentelemetry_sdk::trace::Sampler;
///
/// let guard = lightstep::builder()
///     .with_service_name("checkout")
///     .with_deployment_environment("staging")
///     .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.1))))
///     .on_export_error(|failure| eprintln!("telemetry: {failure}"))
///     .init()?;
/// # drop(guard);
/// # Ok(()) }
/// ```
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub fn builder() -> Builder {
    Builder::from(LightstepConfig::builder())
}

/// A change to the pipeline's builder, applied when [`Builder::init`] has the configuration.
#[cfg(feature = "exporter")]
type Extension = Box<dyn FnOnce(PipelineBuilder) -> PipelineBuilder>;

/// What [`builder`] returns: the settings of [`ConfigBuilder`] (the same methods, which
/// override the environment and the file), the extensions of [`PipelineBuilder`]
/// (a sampler, span processors and exporters, resource attributes and detectors, an id
/// generator, the hook for failed exports), and, with the `tracing` feature, the `tracing`
/// layer. [`Builder::init`] builds and installs it all.
///
/// `with_sampler` is the pipeline's: it takes a sampler of the SDK
/// ([`opentelemetry_sdk::trace::Sampler`] or your own), which covers every sampler
/// `OTEL_TRACES_SAMPLER` names. A [`ConfigBuilder`] prepared elsewhere (with
/// `ConfigBuilder::with_sampler` among its settings) becomes a `Builder` with `From`.
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
#[must_use = "a builder does nothing until `init` is called"]
pub struct Builder {
    config: ConfigBuilder,
    pipeline: Vec<Extension>,
    #[cfg(feature = "tracing")]
    tracing_layer: bool,
}

#[cfg(feature = "exporter")]
impl From<ConfigBuilder> for Builder {
    fn from(config: ConfigBuilder) -> Self {
        Self {
            config,
            pipeline: Vec::new(),
            #[cfg(feature = "tracing")]
            tracing_layer: false,
        }
    }
}

#[cfg(feature = "exporter")]
impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Builder");
        out.field("config", &self.config)
            .field("pipeline_extensions", &self.pipeline.len());
        #[cfg(feature = "tracing")]
        out.field("tracing_layer", &self.tracing_layer);
        out.finish()
    }
}

#[cfg(feature = "exporter")]
impl Builder {
    lightstep_config::config_setters!(forward config);

    fn extend(mut self, step: impl FnOnce(PipelineBuilder) -> PipelineBuilder + 'static) -> Self {
        self.pipeline.push(Box::new(step));
        self
    }

    /// Samples with `sampler` instead of the configured sampler: `OTEL_TRACES_SAMPLER` and
    /// `OTEL_TRACES_SAMPLER_ARG` (and the file's sampler) are then ignored. See
    /// [`PipelineBuilder::with_sampler`].
    pub fn with_sampler(
        self,
        sampler: impl opentelemetry_sdk::trace::ShouldSample + 'static,
    ) -> Self {
        self.extend(move |p| p.with_sampler(sampler))
    }

    /// Adds a span processor beside the OTLP one. See
    /// [`PipelineBuilder::with_span_processor`].
    pub fn with_span_processor(
        self,
        processor: impl opentelemetry_sdk::trace::SpanProcessor + 'static,
    ) -> Self {
        self.extend(move |p| p.with_span_processor(processor))
    }

    /// Adds an exporter beside the OTLP one, behind the SDK's batch processor. See
    /// [`PipelineBuilder::with_span_exporter`].
    pub fn with_span_exporter(
        self,
        exporter: impl opentelemetry_sdk::trace::SpanExporter + 'static,
    ) -> Self {
        self.extend(move |p| p.with_span_exporter(exporter))
    }

    /// Adds the attributes of `resource` to the Resource of every span; the configuration
    /// wins over them. See [`PipelineBuilder::with_resource`].
    pub fn with_resource(self, resource: opentelemetry_sdk::Resource) -> Self {
        self.extend(move |p| p.with_resource(resource))
    }

    /// Adds a resource detector, run once when the pipeline is built. See
    /// [`PipelineBuilder::with_resource_detector`].
    pub fn with_resource_detector(
        self,
        detector: impl opentelemetry_sdk::resource::ResourceDetector + 'static,
    ) -> Self {
        self.extend(move |p| p.with_resource_detector(detector))
    }

    /// Makes trace and span ids with `generator`. See
    /// [`PipelineBuilder::with_id_generator`].
    pub fn with_id_generator(
        self,
        generator: impl opentelemetry_sdk::trace::IdGenerator + 'static,
    ) -> Self {
        self.extend(move |p| p.with_id_generator(generator))
    }

    /// Calls `hook` when spans do not reach the backend (an export failed, the backend
    /// rejected spans, the queue was full, the guard's shutdown on drop did not deliver
    /// everything), with a report that never holds the token or a header value.
    ///
    /// Without a hook, failures are `tracing` warnings and, when no global `tracing`
    /// subscriber is installed, one line on stderr each, at most one every ten seconds for each
    /// of drops, failed exports and rejections. See [`PipelineBuilder::on_export_error`] and `docs/exporter.md`.
    pub fn on_export_error(
        self,
        hook: impl Fn(&lightstep_exporter::ExportFailure) + Send + Sync + 'static,
    ) -> Self {
        self.extend(move |p| p.on_export_error(hook))
    }

    /// Also installs a global `tracing` subscriber whose OpenTelemetry layer sends
    /// `#[tracing::instrument]` spans into the same traces as the helpers' spans.
    ///
    /// The layer is filtered by `RUST_LOG` (the `EnvFilter` syntax; unset or empty: every
    /// level). The crates the exporter sends with (`h2`, `hyper`, `hyper_util`, `tonic`,
    /// `tower`, `reqwest`) stay out unless `RUST_LOG` names them, and whatever runs on the
    /// pipeline's own threads is never exported, named or not: the pipeline does not trace its
    /// own exports.
    ///
    /// [`Builder::init`] fails, installing nothing, when `RUST_LOG` does not parse
    /// ([`ExporterError::TracingFilter`]) or a global subscriber is already set
    /// ([`ExporterError::TracingSubscriber`]). It installs the subscriber and nothing else: no
    /// `log` logger (records of the `log` crate stay with whatever logger the application
    /// set). To combine the layer with your own subscriber (a `fmt` layer, filters, a `log`
    /// bridge), leave this out and add `lightstep::instrument::tracing_layer` to your registry
    /// instead.
    #[cfg(feature = "tracing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
    pub fn with_tracing_layer(mut self) -> Self {
        self.tracing_layer = true;
        self
    }

    /// Builds the configuration and the pipeline, installs the global tracer provider and
    /// propagator (and the `tracing` subscriber, if asked for), and returns the guard: see
    /// [`init`]. On an error nothing is installed.
    pub fn init(self) -> Result<PipelineGuard, ExporterError> {
        // Before anything is built: a bad RUST_LOG leaves nothing behind.
        #[cfg(feature = "tracing")]
        let filter = if self.tracing_layer {
            Some(layer_filter()?)
        } else {
            None
        };
        let (config, warnings) = self.config.build_with_warnings();
        for warning in &warnings {
            tracing::warn!(target: "lightstep", "{warning}");
        }
        let mut pipeline = Pipeline::builder(config?);
        for extend in self.pipeline {
            pipeline = extend(pipeline);
        }
        // A guard from here on: an error below shuts the unused pipeline down.
        let guard = pipeline.build()?.into_guard();
        #[cfg(feature = "tracing")]
        if let Some(filter) = filter {
            use tracing_subscriber::Layer as _;
            use tracing_subscriber::layer::SubscriberExt as _;
            let subscriber = tracing_subscriber::registry()
                .with(lightstep_instrument::tracing_layer(guard.tracer()).with_filter(filter));
            // `tracing`'s own call, not tracing-subscriber's `try_init`: built with its
            // `tracing-log` feature (on in many applications), `try_init` also installs a `log`
            // logger after the subscriber, and fails when the application has one, leaving
            // the subscriber installed behind the error.
            tracing::subscriber::set_global_default(subscriber)
                .map_err(|e| ExporterError::TracingSubscriber(Box::new(e)))?;
        }
        guard.install_global();
        Ok(guard)
    }
}

/// The crates the exporter's transports are made of: their spans and events come from the
/// pipeline's own work, so the layer of [`Builder::with_tracing_layer`] keeps them out unless
/// `RUST_LOG` names them.
#[cfg(all(feature = "exporter", feature = "tracing"))]
const TRANSPORT_CRATES: [&str; 6] = ["h2", "hyper", "hyper_util", "tonic", "tower", "reqwest"];

/// The filter of the OpenTelemetry layer of [`Builder::with_tracing_layer`]: `RUST_LOG` (every level when unset or
/// empty), the transport crates off unless it names them, and nothing made where telemetry is
/// suppressed. `RUST_LOG` is read by tracing-subscriber's `EnvFilter`, as every `tracing` user
/// expects (it is not a lightstep-rs setting, and `EnvSnapshot` does not hold it).
///
/// The last part is needed besides the exporter's suppressed threads: tracing-opentelemetry
/// starts a span with an explicit `parent: None` (h2's `Connection`) from an empty context, not
/// the thread's, so only a filter that reads the thread's context keeps it out.
#[cfg(all(feature = "exporter", feature = "tracing"))]
fn layer_filter()
-> Result<impl tracing_subscriber::layer::Filter<tracing_subscriber::Registry>, ExporterError> {
    use tracing_subscriber::filter::{EnvFilter, FilterExt as _, LevelFilter, filter_fn};
    let mut filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::TRACE.into())
        .from_env()
        .map_err(|e| ExporterError::TracingFilter(Box::new(e)))?;
    // The filter displays as its directives, in RUST_LOG's syntax.
    let asked = filter.to_string();
    for krate in TRANSPORT_CRATES {
        if !names_target(&asked, krate) {
            let off = format!("{krate}=off")
                .parse()
                .map_err(|e| ExporterError::TracingFilter(Box::new(e)))?;
            filter = filter.add_directive(off);
        }
    }
    Ok(filter.and(filter_fn(|_| {
        !opentelemetry::Context::is_current_telemetry_suppressed()
    })))
}

/// Whether one of the `directives` is for exactly `target` (`h2=debug`, `h2`,
/// `h2[span]=trace`); a directive for a module under it (`h2::codec=debug`) is more specific
/// than the `off` added for the crate, and wins anyway.
#[cfg(all(feature = "exporter", feature = "tracing"))]
fn names_target(directives: &str, target: &str) -> bool {
    directives.split(',').any(|directive| {
        let end = directive.find(['[', '=']).unwrap_or(directive.len());
        directive[..end].trim() == target
    })
}

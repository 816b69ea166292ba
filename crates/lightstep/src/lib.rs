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
//! | `tracing` | no | the `tracing` bridge of [`instrument`], and `init_tracing` |
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
    ExporterError, ExporterGuard, LightstepExporter, LightstepExporterBuilder,
};

/// The OpenTelemetry SDK the pipeline is built on, for the types its extensions implement or
/// take (`Sampler`, `SpanProcessor`, `Resource`, ...): the same version as the pipeline's, so
/// they always fit.
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub use lightstep_exporter::opentelemetry_sdk;

/// Reads the configuration (the environment, plus the file named by `LIGHTSTEP_CONFIG_FILE`),
/// builds the pipeline, installs the global tracer provider and propagator, and returns a guard
/// that flushes and shuts down on drop within the configured deadline. Errors are returned,
/// never printed; the process is never exited.
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
/// what could not be delivered.
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub fn init() -> Result<ExporterGuard, ExporterError> {
    init_with(LightstepConfig::builder())
}

/// A configuration builder whose values set in code override the environment and the file;
/// finish it with [`Init::init`] (or pass it to [`init_with`]).
///
/// ```no_run
/// # #[cfg(feature = "exporter")]
/// # fn run() -> Result<(), lightstep::ExporterError> {
/// use lightstep::Init as _;
///
/// let guard = lightstep::builder()
///     .with_service_name("checkout")
///     .with_deployment_environment("staging")
///     .init()?;
/// # drop(guard);
/// # Ok(()) }
/// ```
pub fn builder() -> ConfigBuilder {
    LightstepConfig::builder()
}

/// `builder().….init()`: [`init_with`] as a method of the configuration builder.
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub trait Init {
    /// Builds the configuration and the pipeline, installs them globally and returns the guard.
    fn init(self) -> Result<ExporterGuard, ExporterError>;
}

#[cfg(feature = "exporter")]
impl Init for ConfigBuilder {
    fn init(self) -> Result<ExporterGuard, ExporterError> {
        init_with(self)
    }
}

/// [`init`] with overrides set in code; its warnings are logged the same way.
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub fn init_with(builder: ConfigBuilder) -> Result<ExporterGuard, ExporterError> {
    init_with_pipeline(builder, |pipeline| pipeline)
}

/// [`init_with`], with extensions of your own added to the pipeline by `extend`: a sampler,
/// span processors or exporters, resource attributes or detectors, an id generator (see
/// [`LightstepExporterBuilder`]).
///
/// ```no_run
/// # #[cfg(feature = "exporter")]
/// # fn run() -> Result<(), lightstep::ExporterError> {
/// use lightstep::opentelemetry_sdk::trace::Sampler;
///
/// let guard = lightstep::init_with_pipeline(lightstep::builder(), |pipeline| {
///     pipeline.with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.1))))
/// })?;
/// # drop(guard);
/// # Ok(()) }
/// ```
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub fn init_with_pipeline(
    builder: ConfigBuilder,
    extend: impl FnOnce(LightstepExporterBuilder) -> LightstepExporterBuilder,
) -> Result<ExporterGuard, ExporterError> {
    let (config, warnings) = builder.build_with_warnings();
    for warning in &warnings {
        tracing::warn!(target: "lightstep", "{warning}");
    }
    let exporter = extend(LightstepExporter::builder(config?)).build()?;
    exporter.install_global();
    Ok(exporter.into_guard())
}

/// [`init`], plus a global `tracing` subscriber whose OpenTelemetry layer sends
/// `#[tracing::instrument]` spans into the same traces as the helpers' spans.
///
/// The layer is filtered by `RUST_LOG` (the `EnvFilter` syntax; unset or empty: every level).
/// The crates the exporter sends with (`h2`, `hyper`, `hyper_util`, `tonic`, `tower`,
/// `reqwest`) stay out unless `RUST_LOG` names them, and whatever runs on the pipeline's own
/// threads is never exported, named or not: the pipeline does not trace its own exports.
///
/// To combine the layer with your own subscriber (a `fmt` layer, filters), call [`init`] and
/// add `lightstep::instrument::tracing_layer` to your registry instead.
#[cfg(all(feature = "exporter", feature = "tracing"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "exporter", feature = "tracing"))))]
pub fn init_tracing(builder: ConfigBuilder) -> Result<ExporterGuard, InitError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Before anything is installed: a bad RUST_LOG leaves no global provider behind.
    let filter = layer_filter()?;
    let guard = init_with(builder)?;
    tracing_subscriber::registry()
        .with(lightstep_instrument::tracing_layer(guard.tracer()).with_filter(filter))
        .try_init()
        .map_err(|e| InitError::Subscriber(e.to_string()))?;
    Ok(guard)
}

/// The crates the exporter's transports are made of: their spans and events come from the
/// pipeline's own work, so `init_tracing` keeps them out unless `RUST_LOG` names them.
#[cfg(all(feature = "exporter", feature = "tracing"))]
const TRANSPORT_CRATES: [&str; 6] = ["h2", "hyper", "hyper_util", "tonic", "tower", "reqwest"];

/// The filter of `init_tracing`'s OpenTelemetry layer: `RUST_LOG` (every level when unset or
/// empty), the transport crates off unless it names them, and nothing made where telemetry is
/// suppressed. `RUST_LOG` is read by tracing-subscriber's `EnvFilter`, as every `tracing` user
/// expects (it is not a lightstep-rs setting, and `EnvSnapshot` does not hold it).
///
/// The last part is needed besides the exporter's suppressed threads: tracing-opentelemetry
/// starts a span with an explicit `parent: None` (h2's `Connection`) from an empty context, not
/// the thread's, so only a filter that reads the thread's context keeps it out.
#[cfg(all(feature = "exporter", feature = "tracing"))]
fn layer_filter()
-> Result<impl tracing_subscriber::layer::Filter<tracing_subscriber::Registry>, InitError> {
    use tracing_subscriber::filter::{EnvFilter, FilterExt as _, LevelFilter, filter_fn};
    let invalid = |e: &dyn std::fmt::Display| InitError::Filter(format!("RUST_LOG: {e}"));
    let mut filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::TRACE.into())
        .from_env()
        .map_err(|e| invalid(&e))?;
    // The filter displays as its directives, in RUST_LOG's syntax.
    let asked = filter.to_string();
    for krate in TRANSPORT_CRATES {
        if !names_target(&asked, krate) {
            let off = format!("{krate}=off").parse().map_err(|e| invalid(&e))?;
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

/// Why [`init_tracing`] failed.
#[cfg(all(feature = "exporter", feature = "tracing"))]
///
/// `Debug` prints the message and its causes, as `Display` and
/// [`ErrorChain`](crate::config::ErrorChain) do.
#[cfg_attr(docsrs, doc(cfg(all(feature = "exporter", feature = "tracing"))))]
#[non_exhaustive]
pub enum InitError {
    /// The configuration or the pipeline: displays as the [`ExporterError`] itself, which says
    /// what is wrong and where.
    Exporter(ExporterError),
    /// A global `tracing` subscriber was already set.
    Subscriber(String),
    /// `RUST_LOG` holds a directive that does not parse.
    Filter(String),
}

#[cfg(all(feature = "exporter", feature = "tracing"))]
impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exporter(e) => e.fmt(f),
            Self::Subscriber(e) => write!(f, "cannot install the tracing subscriber: {e}"),
            Self::Filter(e) => write!(f, "cannot build the tracing filter: {e}"),
        }
    }
}

#[cfg(all(feature = "exporter", feature = "tracing"))]
impl std::fmt::Debug for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", crate::config::ErrorChain(self))
    }
}

#[cfg(all(feature = "exporter", feature = "tracing"))]
impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent: the exporter's error is displayed, its cause is the cause.
            Self::Exporter(e) => e.source(),
            Self::Subscriber(_) | Self::Filter(_) => None,
        }
    }
}

#[cfg(all(feature = "exporter", feature = "tracing"))]
impl From<ExporterError> for InitError {
    fn from(e: ExporterError) -> Self {
        Self::Exporter(e)
    }
}

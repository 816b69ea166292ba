//! What every lightstep-rs example shares: where its spans go, and printing what arrived.
//!
//! An example calls [`Demo::start`] with a [`ConfigBuilder`]. When the configuration names a
//! destination (an access token, so Lightstep's public ingest, or an endpoint such as a
//! Collector, from `LIGHTSTEP_ACCESS_TOKEN`/`LS_ACCESS_TOKEN`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT`/`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, a file or code), the
//! spans go there, exactly as `lightstep::builder()....init()` would send them. When it names none, an
//! embedded OTLP receiver (`lightstep-receiver`) starts in-process on 127.0.0.1 and takes the
//! backend's place, so the example works with no account and no network. [`Demo::finish`]
//! shuts the pipeline down, says what was delivered or what was not, and, with the embedded
//! receiver, prints every trace that arrived as a tree with durations and its critical path.
//!
//! The decision is made on the resolved configuration, never on `std::env` directly: the
//! environment is read once, through [`EnvSnapshot`].
#![allow(clippy::print_stdout)] // the examples' job is to print what happened

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

use lightstep::config::{ConfigError, EnvSnapshot, Protocol, Source};
use lightstep::receiver::{Receiver, RunningReceiver};
pub use lightstep::receiver::{write_report, write_tree};
use lightstep::{ConfigBuilder, LightstepConfig, Pipeline, PipelineGuard};

pub use lightstep;

/// How many received traces [`Demo::finish`] prints in full; the rest are counted.
pub const TRACES_SHOWN: usize = 5;

/// A configuration builder reading the process environment once (through [`EnvSnapshot`]),
/// with `service` as the service name unless the environment or a file names one.
pub fn config_builder(service: &str) -> ConfigBuilder {
    LightstepConfig::builder()
        .with_env(EnvSnapshot::from_process())
        .with_default_service_name(service)
}

/// Where the spans of an example go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// What the configuration names: Lightstep, a Collector, any OTLP endpoint.
    Configured(String),
    /// The embedded receiver started by [`Demo::start`], at this endpoint.
    Embedded(String),
}

/// Decides where spans go: the configured destination, or `None` when the configuration names
/// none (no token, no endpoint anywhere), which is when the embedded receiver stands in.
///
/// A configuration without token and endpoint fails to build with
/// [`ConfigError::MissingToken`] (its default endpoint is Lightstep's public ingest). Only when
/// that endpoint is the built-in default does the embedded receiver stand in: an endpoint set
/// explicitly to Lightstep's ingest without a token stays an error.
pub fn configured_destination(builder: &ConfigBuilder) -> Result<Option<String>, ConfigError> {
    match builder.clone().build() {
        Ok(config) => Ok(Some(config.traces_endpoint().as_str().to_owned())),
        Err(ConfigError::MissingToken {
            endpoint_source: Source::Default,
            ..
        }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// An example's tracing pipeline: installed globally, exporting to the configured destination
/// or to an embedded receiver.
#[derive(Debug)]
pub struct Demo {
    guard: PipelineGuard,
    receiver: Option<RunningReceiver>,
    destination: Destination,
}

impl Demo {
    /// Chooses the destination (see [`configured_destination`]), starts the embedded receiver
    /// if it is needed, builds the pipeline and installs it as the global tracer provider and
    /// propagator (what `lightstep::builder()....init()` does). Prints one line saying where
    /// spans go.
    ///
    /// Must run inside a Tokio runtime (the receiver runs on it).
    pub async fn start(builder: ConfigBuilder) -> Result<Self, Box<dyn StdError>> {
        let (builder, receiver, destination) = match configured_destination(&builder)? {
            Some(endpoint) => (builder, None, Destination::Configured(endpoint)),
            None => {
                let receiver = Receiver::builder().start().await?;
                // Both listeners accept both protocols; give each transport its usual one.
                // Code beats the environment, and no endpoint is set there.
                let http = builder
                    .clone()
                    .with_access_token("placeholder")
                    .build()
                    .map(|c| c.protocol().is_http())
                    .unwrap_or(false);
                let endpoint = if http {
                    receiver.http_endpoint()
                } else {
                    receiver.grpc_endpoint()
                };
                let builder = builder.with_otlp_endpoint(endpoint.clone());
                (builder, Some(receiver), Destination::Embedded(endpoint))
            }
        };
        let guard = lightstep::Builder::from(builder).init()?;
        match &destination {
            Destination::Configured(endpoint) => println!(
                "sending spans of service `{}` to {endpoint} ({})",
                guard.config().service_name(),
                protocol_name(guard.config().protocol()),
            ),
            Destination::Embedded(endpoint) => println!(
                "no access token and no endpoint configured: sending spans of service `{}` to an \
                 embedded OTLP receiver at {endpoint}",
                guard.config().service_name(),
            ),
        }
        Ok(Self {
            guard,
            receiver,
            destination,
        })
    }

    /// The pipeline: its tracer, tracer provider, configuration and counters.
    pub fn pipeline(&self) -> &Pipeline {
        &self.guard
    }

    /// Where the spans go.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The embedded receiver, when no destination was configured.
    pub fn receiver(&self) -> Option<&RunningReceiver> {
        self.receiver.as_ref()
    }

    /// Environment variables that send a child process's spans to the same place: the
    /// embedded receiver's endpoint (the child inherits everything else).
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        match &self.destination {
            Destination::Embedded(endpoint) => {
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone())]
            }
            Destination::Configured(_) => Vec::new(),
        }
    }

    /// Shuts the pipeline down (every span is flushed, within the configured
    /// `shutdown_timeout`), reports what was delivered or what was not, and prints what the
    /// embedded receiver holds. Success only when every span was delivered.
    pub async fn finish(self) -> ExitCode {
        let Self {
            guard,
            receiver,
            destination,
        } = self;
        let target = match &destination {
            Destination::Configured(endpoint) | Destination::Embedded(endpoint) => endpoint.clone(),
        };
        // The pipeline's own `shutdown` (not the guard's, which consumes it) so that the final
        // counters can be read afterwards: a `Deadline` error reports the spans still pending
        // at that moment, not how many never arrived.
        let pipeline = guard.pipeline();
        let result = pipeline.shutdown().await;
        let stats = pipeline.stats();
        let delivered = match result {
            Ok(stats) => {
                println!(
                    "delivered {} of {} spans to {target} ({} dropped, {} failed)",
                    stats.exported, stats.ended, stats.dropped, stats.failed
                );
                true
            }
            Err(error) => {
                eprintln!(
                    "error: spans were not delivered to {target}: {}",
                    chain(&error)
                );
                eprintln!(
                    "error: {} of {} spans were not delivered ({} exported, {} dropped, {} failed)",
                    stats.undelivered(),
                    stats.ended,
                    stats.exported,
                    stats.dropped,
                    stats.failed
                );
                false
            }
        };
        // Already shut down: dropping the guard does nothing more.
        drop(guard);
        if let Some(receiver) = receiver {
            let mut traces = receiver.take_traces();
            // In the order they started, as the example made them.
            traces.sort_by_key(|trace| {
                trace
                    .spans()
                    .iter()
                    .map(|s| s.span().start_time_unix_nano)
                    .min()
            });
            let spans: usize = traces.iter().map(|t| t.spans().len()).sum();
            println!(
                "the embedded receiver got {spans} spans in {} {}",
                traces.len(),
                if traces.len() == 1 { "trace" } else { "traces" }
            );
            let mut out = io::stdout().lock();
            for (shown, trace) in traces.iter().enumerate() {
                if shown == TRACES_SHOWN {
                    let _ = writeln!(out, "\n… and {} more traces", traces.len() - TRACES_SHOWN);
                    break;
                }
                match trace.to_analysis() {
                    Some(analysis_trace) => {
                        let _ = writeln!(out);
                        let _ = write_report(&mut out, &analysis_trace);
                    }
                    None => eprintln!("error: cannot analyze trace {}", trace.trace_id()),
                }
            }
            drop(out);
            receiver.shutdown().await;
        }
        if delivered {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Grpc => "OTLP/gRPC",
        _ => "OTLP/HTTP",
    }
}

/// An error and its sources, on one line: `invalid configuration: no access token for ...`.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

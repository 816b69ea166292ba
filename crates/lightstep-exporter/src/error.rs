//! Errors of the exporter.

/// What can go wrong building, installing or stopping the pipeline: the one error type of
/// lightstep-exporter and of the facade's `lightstep::init()` / `lightstep::builder()....init()`.
///
/// `Debug` prints the message and its causes ([`ErrorChain`](lightstep_config::ErrorChain)),
/// so that `fn main() -> Result<(), Box<dyn Error>>` shows what is wrong rather than a
/// structure.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ExporterError {
    /// The configuration is invalid. Displays as the configuration error itself (every problem,
    /// each naming its variable or file key), so that `{e}` alone says what to fix.
    #[error(transparent)]
    Config(#[from] lightstep_config::ConfigError),
    /// The exporter could not be built from a valid configuration.
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
    /// The exporter's own runtime or thread could not be started.
    #[error("cannot start the export thread")]
    Runtime(#[source] std::io::Error),
    /// Shutdown or flush finished, but some spans did not reach the backend.
    #[error(
        "{undelivered} of {ended} spans were not delivered ({dropped} dropped because the queue was full, {failed} failed){}",
        last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
    )]
    Undelivered {
        /// Spans handed to the pipeline.
        ended: u64,
        /// Spans that did not reach the backend.
        undelivered: u64,
        /// Of those, dropped because the queue was full.
        dropped: u64,
        /// Of those, whose export failed or that were still queued at the deadline.
        failed: u64,
        /// The most recent export failure.
        last_error: Option<String>,
    },
    /// Flush or shutdown did not finish within its deadline.
    #[error(
        "{operation} did not finish within {}ms: {undelivered} of {ended} spans were not delivered ({pending} still pending, {dropped} dropped, {failed} failed){}",
        deadline.as_millis(),
        if *added_running { "; a processor or exporter added in code was still running" } else { "" }
    )]
    Deadline {
        /// `flush` or `shutdown`.
        operation: &'static str,
        /// The deadline.
        deadline: std::time::Duration,
        /// Whether a processor or exporter added in code was still running at the deadline
        /// (the counts below describe OTLP delivery only, which may well be complete).
        added_running: bool,
        /// Spans handed to the pipeline.
        ended: u64,
        /// Spans that did not reach the backend.
        undelivered: u64,
        /// Of those, still queued or in flight at the deadline.
        pending: u64,
        /// Of those, dropped because the queue was full.
        dropped: u64,
        /// Of those, whose export failed.
        failed: u64,
    },
    /// The SDK reported a failure that is none of the above.
    #[error("the tracing pipeline failed: {0}")]
    Sdk(String),
    /// The pipeline was already shut down.
    #[error("the pipeline is already shut down")]
    AlreadyShutDown,
    /// `RUST_LOG` holds a directive that does not parse, so the `tracing` layer the facade was
    /// asked for (`lightstep::Builder::with_tracing_layer`) cannot be filtered. Nothing was
    /// installed.
    #[error("invalid `RUST_LOG` for the tracing layer")]
    TracingFilter(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The facade could not install its `tracing` subscriber
    /// (`lightstep::Builder::with_tracing_layer`), usually because a global subscriber was
    /// already set. Nothing was installed.
    #[error("cannot install the tracing subscriber")]
    TracingSubscriber(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl std::fmt::Debug for ExporterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", lightstep_config::ErrorChain(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_the_message_and_its_causes() {
        let error = ExporterError::Runtime(std::io::Error::other("too many threads"));
        assert_eq!(
            format!("{error:?}"),
            "cannot start the export thread\n\nCaused by:\n    too many threads"
        );
        let boxed: Box<dyn std::error::Error> =
            Box::new(ExporterError::Build("no endpoint".into()));
        assert_eq!(
            format!("{boxed:?}"),
            "cannot build the OTLP exporter: no endpoint"
        );
    }
}

//! [`LightstepPerformance`]: the critical path of a trace that lives in a store, by its id.
//!
//! The name is the one lightstep-rs's original design gave it
//! (`LightstepPerformance::analyze_critical_path`), kept so that code written against that design
//! finds it; it fetches the trace from any [`TraceSource`] and runs `lightstep-analysis` on it,
//! off the async workers.

use lightstep_analysis::{CriticalPathAnalysis, Options, analyze_critical_path};

use crate::{Error, TraceSource};

/// Critical-path analysis of traces held by a store.
///
/// ```no_run
/// # async fn run() -> Result<(), lightstep_query::Error> {
/// use lightstep_query::{Jaeger, LightstepPerformance};
///
/// let performance = LightstepPerformance::new(Jaeger::builder("http://localhost:16686").build()?);
/// let analysis = performance.analyze_critical_path("5b8efff798038103d269b633813fc60c").await?;
/// for share in &analysis.services {
///     println!("{} {} ms", share.service, share.critical_ns / 1_000_000);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LightstepPerformance<S> {
    source: S,
    options: Options,
}

impl<S: TraceSource> LightstepPerformance<S> {
    /// Analysis of the traces `source` holds, with the default options (robust mode).
    pub fn new(source: S) -> Self {
        Self {
            source,
            options: Options::default(),
        }
    }

    /// Analyzes with these options (the mode, skew correction).
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The source traces are read from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Fetches the trace with this id (1 to 32 hex digits) and finds its critical path.
    ///
    /// The analysis runs on tokio's blocking pool: a trace of a hundred thousand spans takes
    /// tens of milliseconds, which an async worker must not spend.
    pub async fn analyze_critical_path(
        &self,
        trace_id: &str,
    ) -> Result<CriticalPathAnalysis, Error> {
        let trace = self.source.fetch(trace_id).await?;
        let options = self.options.clone();
        let analysis =
            tokio::task::spawn_blocking(move || analyze_critical_path(&trace, &options)).await;
        // The analysis does not panic on any trace; should it, the panic is not swallowed.
        Ok(analysis.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic())))
    }
}

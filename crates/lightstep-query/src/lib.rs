//! Read traces from the stores that hold them, Jaeger, Grafana Tempo and Zipkin, over HTTP,
//! for critical-path analysis where the traces live.
//!
//! A [`TraceSource`] fetches a trace by id or runs a [`Search`]; [`Jaeger`], [`Tempo`] and
//! [`Zipkin`] implement it over each store's documented HTTP API, [`TraceStore`] picks one of
//! them at run time, and [`LightstepPerformance`] puts `lightstep-analysis` behind any of
//! them: `analyze_critical_path(trace_id)`.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use lightstep_query::{Jaeger, LightstepPerformance, Search, TraceSource as _};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lightstep_query::Error> {
//!     let jaeger = Jaeger::builder("http://localhost:16686")
//!         .with_timeout(Duration::from_secs(5))
//!         .build()?;
//!
//!     // One trace, by id.
//!     let performance = LightstepPerformance::new(jaeger.clone());
//!     let analysis = performance
//!         .analyze_critical_path("5b8efff798038103d269b633813fc60c")
//!         .await?;
//!     println!("{} ms on the critical path", analysis.critical_path_duration_ms);
//!
//!     // A search: each trace arrives on its own, the result set is never held.
//!     let mut traces = jaeger.search(&Search::new().with_service("checkout").with_limit(100));
//!     while let Some(trace) = traces.next().await {
//!         let trace = trace?;
//!         println!("{}: {} spans", trace.trace_id, trace.spans.len());
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # What every source does
//!
//! - **Headers are secrets.** Every header value (a bearer token, an API key, Tempo's tenant)
//!   is kept out of `Debug`, errors and logs, replaced in what a server echoes back, and
//!   refused in plaintext to a host that is not loopback unless allowed
//!   ([`SourceBuilder::with_insecure`]), as `lightstep-config` decides for the exporter.
//! - **TLS** with the system's roots plus a CA file ([`SourceBuilder::with_ca_file`]); an
//!   HTTP proxy when one is set ([`SourceBuilder::with_proxy`]), through a `CONNECT` tunnel for
//!   `https://` stores. Redirects are not followed (they would carry the headers elsewhere).
//! - **Bounded.** A timeout on every wait, a bound on requests in flight
//!   ([`SourceBuilder::with_concurrency`]), a bound on the size of one trace
//!   ([`SourceBuilder::with_max_trace_bytes`]); a search's traces are parsed as they arrive
//!   and handed over one at a time.
//! - **Errors say what happened.** Each names the store, the URL (without secrets), the
//!   status, and what the server said, cleaned of control characters: unreachable, 401/403,
//!   404 for an unknown trace id, 429 with its `Retry-After` (retried while that fits in the
//!   timeout), a body that broke off, a malformed body with the position.
//!
//! The stores' endpoints, parameters and answer shapes are in `docs/trace-stores.md`.
//!
//! # Features
//!
//! The crate has no feature flags. It needs a tokio runtime (with its time driver); parsing
//! and analysis run on tokio's blocking pool.
//!
//! # Supported Rust version
//!
//! Rust 1.90 or later.

/// Not API: what each source makes of a store's answer, without a network, reachable from the
/// fuzz targets and the tests of their seeds only. May change at any time.
#[doc(hidden)]
pub mod bench_support;
mod builder;
mod error;
mod http;
mod jaeger;
mod performance;
mod search;
mod source;
mod tempo;
mod zipkin;

pub use builder::{DEFAULT_CONCURRENCY, DEFAULT_MAX_TRACE_BYTES, DEFAULT_TIMEOUT, SourceBuilder};
pub use error::Error;
pub use jaeger::{Jaeger, JaegerApi};
pub use performance::LightstepPerformance;
pub use search::{DEFAULT_LIMIT, DEFAULT_LOOKBACK, Search, Traces};
pub use source::{TraceSource, TraceStore};
pub use tempo::{Tempo, TempoApi};
pub use zipkin::Zipkin;

/// The analysis types a source hands over, re-exported for convenience.
pub use lightstep_analysis::{CriticalPathAnalysis, Trace};

//! Zipkin's v2 API.
//!
//! A trace is `GET /api/v2/trace/{traceId}`: an array of spans (404 when Zipkin does not hold
//! it). A search is `GET /api/v2/traces?serviceName=&spanName=&annotationQuery=&minDuration=
//! &maxDuration=&endTs=&lookback=&limit=` (durations in microseconds, `endTs` and `lookback`
//! in milliseconds): an array of traces, each an array of spans, read trace by trace as it
//! arrives. Tags become the `annotationQuery` (`http.method=GET and error=true`).

use std::sync::Arc;
use std::time::SystemTime;

use lightstep_analysis::Trace;
use lightstep_analysis::read::Format;

use crate::http::Connection;
use crate::{Error, Search, SourceBuilder, TraceSource, Traces};

/// Zipkin's v2 API (`http://zipkin:9411`).
///
/// ```no_run
/// # async fn run() -> Result<(), lightstep_query::Error> {
/// use lightstep_query::{TraceSource as _, Zipkin};
///
/// let zipkin = Zipkin::builder("http://localhost:9411").build()?;
/// let trace = zipkin.fetch("5af7183fb1d4cf5f").await?;
/// println!("{} spans", trace.spans.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Zipkin {
    connection: Arc<Connection>,
}

impl Zipkin {
    /// A builder for the Zipkin server at `url`.
    pub fn builder(url: impl Into<String>) -> SourceBuilder<Zipkin> {
        SourceBuilder::new(url)
    }
}

impl SourceBuilder<Zipkin> {
    /// Checks the settings and builds the source.
    pub fn build(self) -> Result<Zipkin, Error> {
        Ok(Zipkin {
            connection: Arc::new(Connection::new("zipkin", self.settings)?),
        })
    }
}

impl TraceSource for Zipkin {
    fn name(&self) -> String {
        self.connection.name()
    }

    async fn fetch(&self, trace_id: &str) -> Result<Trace, Error> {
        self.connection
            .fetch_trace(
                trace_id,
                |id| format!("/api/v2/trace/{id}"),
                "application/json",
                |_| (Format::ZipkinJson, Ok),
            )
            .await
    }

    fn search(&self, search: &Search) -> Traces {
        let connection = &self.connection;
        let window =
            match search.window_without_traceql(connection.store, "Zipkin", SystemTime::now()) {
                Ok(window) => window,
                Err(error) => return Traces::failed(error),
            };
        let mut params = Vec::new();
        if let Some(service) = &search.service {
            params.push(("serviceName", service.clone()));
        }
        if let Some(operation) = &search.operation {
            params.push(("spanName", operation.clone()));
        }
        if !search.tags.is_empty() {
            let query: Vec<String> = search
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            params.push(("annotationQuery", query.join(" and ")));
        }
        if let Some(min) = search.min_duration {
            params.push(("minDuration", min.as_micros().to_string()));
        }
        if let Some(max) = search.max_duration {
            params.push(("maxDuration", max.as_micros().to_string()));
        }
        let end = window.end_since_epoch();
        let lookback = end.saturating_sub(window.start_since_epoch());
        params.push(("endTs", end.as_millis().to_string()));
        params.push(("lookback", lookback.as_millis().max(1).to_string()));
        params.push(("limit", search.limit.to_string()));
        let url = connection.url("/api/v2/traces", &params);
        connection.search_traces(url, Format::ZipkinJson, None)
    }

    fn concurrency(&self) -> usize {
        self.connection.concurrency
    }
}

//! Jaeger's query API: the internal JSON API that Jaeger UI was built on (`/api/traces`) and
//! the stable `api_v3` (`/api/v3/...`, OTLP JSON).
//!
//! | | v1 (default) | v3 |
//! |---|---|---|
//! | a trace | `GET /api/traces/{id}` → `{"data": [trace]}` | `GET /api/v3/traces/{id}` → `{"result": {"resourceSpans": [...]}}` |
//! | a search | `GET /api/traces?service=&operation=&tags=&minDuration=&maxDuration=&limit=&start=&end=` → `{"data": [...]}`, streamed trace by trace | `GET /api/v3/trace-summaries?query.…` → trace ids, each then fetched |
//!
//! v1 is served by Jaeger 1.x and by Jaeger 2.x for trace ids; Jaeger removed its v1 search in
//! August 2026 (after 2.20.0), where the v3 search (`/api/v3/trace-summaries`, Jaeger 2.19 or later)
//! takes over. `/api/v3/traces?…` is not used for searches: it answers with every trace in one
//! OTLP document, which would have to be held whole.

use std::sync::Arc;
use std::time::SystemTime;

use lightstep_analysis::Trace;
use lightstep_analysis::read::Format;
use serde::Deserialize;
use url::Url;

use crate::http::{Connection, Malformed, Prepare};
use crate::search::{Window, go_duration};
use crate::{Error, Search, SourceBuilder, TraceSource, Traces};

/// Which of Jaeger's HTTP APIs to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum JaegerApi {
    /// The JSON API Jaeger UI was built on: traces by id on every Jaeger, searches on Jaeger
    /// 1.x and on 2.x up to 2.20.
    #[default]
    V1,
    /// `api_v3` (OTLP JSON): traces by id, and searches through `trace-summaries` (Jaeger 2.19
    /// or later).
    V3,
}

/// Jaeger's query API (`http://jaeger-query:16686`).
///
/// ```no_run
/// # async fn run() -> Result<(), lightstep_query::Error> {
/// use lightstep_query::{Jaeger, TraceSource as _};
///
/// let jaeger = Jaeger::builder("http://localhost:16686").build()?;
/// let trace = jaeger.fetch("5b8efff798038103d269b633813fc60c").await?;
/// println!("{} spans", trace.spans.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Jaeger {
    connection: Arc<Connection>,
    api: JaegerApi,
}

impl Jaeger {
    /// A builder for the query API at `url` (the query service's base URL, with its base path
    /// if it has one: `http://host:16686/jaeger`).
    pub fn builder(url: impl Into<String>) -> SourceBuilder<Jaeger> {
        SourceBuilder::new(url)
    }

    async fn search_v1(&self, search: Search, window: Window) -> Result<Traces, Error> {
        let connection = &self.connection;
        let Some(service) = search.service.clone() else {
            return Err(Error::InvalidSearch {
                store: connection.store.to_owned(),
                reason: "Jaeger searches within one service: name it (--service)".into(),
            });
        };
        let mut params = vec![("service", service)];
        if let Some(operation) = &search.operation {
            params.push(("operation", operation.clone()));
        }
        if !search.tags.is_empty() {
            params.push(("tags", tags_json(&search.tags)));
        }
        if let Some(min) = search.min_duration {
            params.push(("minDuration", go_duration(min)));
        }
        if let Some(max) = search.max_duration {
            params.push(("maxDuration", go_duration(max)));
        }
        params.push(("limit", search.limit.to_string()));
        params.push(("start", window.start_since_epoch().as_micros().to_string()));
        params.push(("end", window.end_since_epoch().as_micros().to_string()));
        let url = connection.url("/api/traces", &params);
        // Jaeger removed the v1 search in August 2026, after 2.20.0: a 404 says what to use.
        Ok(connection.search_traces(
            url,
            Format::JaegerJson,
            Some(
                "Jaeger removed the v1 search after 2.20: use the v3 API (JaegerApi::V3, --jaeger-api v3)",
            ),
        ))
    }

    async fn search_v3(&self, search: Search, window: Window) -> Result<Traces, Error> {
        let connection = &self.connection;
        let mut params = Vec::new();
        if let Some(service) = &search.service {
            params.push(("query.serviceName", service.clone()));
        }
        if let Some(operation) = &search.operation {
            params.push(("query.operationName", operation.clone()));
        }
        if !search.tags.is_empty() {
            params.push(("query.attributes", tags_json(&search.tags)));
        }
        if let Some(min) = search.min_duration {
            params.push(("query.durationMin", go_duration(min)));
        }
        if let Some(max) = search.max_duration {
            params.push(("query.durationMax", go_duration(max)));
        }
        params.push(("query.searchDepth", search.limit.to_string()));
        params.push(("query.startTimeMin", rfc3339(window.start)));
        params.push(("query.startTimeMax", rfc3339(window.end)));
        let url = connection.url("/api/v3/trace-summaries", &params);
        let ids = connection
            .search_ids(
                &url,
                Some(
                    "trace-summaries needs Jaeger 2.19 or later; with an older Jaeger use the v1 API",
                ),
                summary_ids,
            )
            .await?;
        Ok(self.fetch_each(ids))
    }
}

impl SourceBuilder<Jaeger> {
    /// Which API to use (default [`JaegerApi::V1`]).
    pub fn with_api(mut self, api: JaegerApi) -> Self {
        self.jaeger_api = api;
        self
    }

    /// Checks the settings and builds the source.
    pub fn build(self) -> Result<Jaeger, Error> {
        Ok(Jaeger {
            connection: Arc::new(Connection::new("jaeger", self.settings)?),
            api: self.jaeger_api,
        })
    }
}

impl TraceSource for Jaeger {
    fn name(&self) -> String {
        self.connection.name()
    }

    async fn fetch(&self, trace_id: &str) -> Result<Trace, Error> {
        let api = self.api;
        let path_of = |id: &str| match api {
            JaegerApi::V1 => format!("/api/traces/{id}"),
            JaegerApi::V3 => format!("/api/v3/traces/{id}"),
        };
        self.connection
            .fetch_trace(trace_id, path_of, "application/json", |_| trace_answer(api))
            .await
    }

    fn search(&self, search: &Search) -> Traces {
        let window =
            match search.window_without_traceql(self.connection.store, "Jaeger", SystemTime::now())
            {
                Ok(window) => window,
                Err(error) => return Traces::failed(error),
            };
        let this = self.clone();
        let search = search.clone();
        Traces::later(async move {
            match this.api {
                JaegerApi::V1 => this.search_v1(search, window).await,
                JaegerApi::V3 => this.search_v3(search, window).await,
            }
        })
    }

    fn concurrency(&self) -> usize {
        self.connection.concurrency
    }
}

/// Tags as Jaeger takes them: a JSON object of strings.
fn tags_json(tags: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = tags
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// RFC 3339 with nanoseconds, as `api_v3` takes times.
fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_nanos(time).to_string()
}

/// How a trace's answer is read: its format, and what unwraps its envelope.
pub(crate) fn trace_answer(api: JaegerApi) -> (Format, Prepare) {
    match api {
        JaegerApi::V1 => (Format::JaegerJson, Ok),
        JaegerApi::V3 => (Format::OtlpJson, v3_envelope),
    }
}

/// v3's answer: `{"result": {"resourceSpans": [...]}}`, the OTLP JSON document inside.
fn v3_envelope(body: Vec<u8>) -> Result<Vec<u8>, Malformed> {
    let mut value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Malformed::json(&e))?;
    let result = value
        .get_mut("result")
        .map(serde_json::Value::take)
        .ok_or_else(|| Malformed {
            position: "the top level".into(),
            message: "no `result`: expected {\"result\": {\"resourceSpans\": [...]}}".into(),
        })?;
    serde_json::to_vec(&result).map_err(|e| Malformed::json(&e))
}

/// The trace ids of a `trace-summaries` answer: `{"summaries": [{"traceId": ...}, ...]}`.
pub(crate) fn summary_ids(
    connection: &Connection,
    url: &Url,
    body: &[u8],
) -> Result<Vec<String>, Error> {
    #[derive(Deserialize)]
    struct Summaries {
        #[serde(default)]
        summaries: Vec<Summary>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Summary {
        trace_id: String,
    }
    let summaries: Summaries = connection.json(url, body)?;
    Ok(summaries
        .summaries
        .into_iter()
        .map(|s| s.trace_id)
        .collect())
}

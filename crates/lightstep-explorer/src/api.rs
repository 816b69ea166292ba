//! The JSON API the pages read, and that Grafana and Jaeger UI can read: routing, the handlers
//! and their answers.
//!
//! Jaeger's read endpoints answer in Jaeger's shapes ([`crate::jaeger`]); the critical path
//! and the contribution answer in the shapes of `lightstep analyze --format json`; the rest
//! (search summaries, windows of waterfall rows, span details, status) are the explorer's own,
//! documented in `docs/explorer.md`. Every error is a JSON body in Jaeger's envelope with the
//! status it names: 400 for a parameter that cannot be read (naming it), 404 for a trace or
//! span that is not held.
//!
//! Work in proportion to a trace (its layout, its critical path, its JSON) runs on Tokio's
//! blocking pool, at most [`HEAVY_JOBS`] at once, never on an async worker.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use lightstep_analysis::aggregate::{Aggregate, Aggregator};
use lightstep_analysis::render::JsonWriter;
use lightstep_analysis::{Analyzer, CriticalPathAnalysis, Mode, Options, SpanId, Status, TraceId};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::file_lookup::LookedUp;
use crate::jaeger::{Envelope, ErrorEntry, JaegerTrace, JaegerTraces, is_service, jaeger_service};
use crate::layout::{Layout, LayoutCache};
use crate::query::{Params, Search};
use crate::store::{KeyValue, SpanDetails, StoredTrace, TraceStore};

/// Jobs in proportion to a trace run at once at most (the machine may have few cores, and
/// each job holds memory in proportion to its trace).
pub(crate) const HEAVY_JOBS: usize = 2;
/// Rows of a waterfall window at most.
const MAX_ROWS: usize = 5_000;
/// Collapsed spans a window request may name at most.
const MAX_COLLAPSED: usize = 10_000;
/// The widest drawing of a waterfall a page may ask sections merged for (`px`).
const MAX_PX: usize = 100_000;
/// Spans covered by cached layouts at most (the newest layout stays whatever its size).
const LAYOUT_CACHE_SPANS: usize = 2_000_000;

pub(crate) type Body = Full<Bytes>;

/// An answer that is not a success: its status and a message for the client.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn bad_param(name: &str, what: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: format!("bad parameter `{name}`: {what}"),
        }
    }

    pub(crate) fn not_found(message: String) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message,
        }
    }

    fn internal(message: &str) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.to_owned(),
        }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        let body = Envelope {
            data: None::<()>,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![ErrorEntry {
                code: self.status.as_u16(),
                msg: self.message,
            }]),
        };
        json_response(self.status, &body)
    }
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not write the answer",
        ),
    }
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A plain-text answer.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The span kinds Jaeger's query API names.
const JAEGER_SPAN_KINDS: [&str; 5] = ["client", "consumer", "internal", "producer", "server"];

/// A span kind as Jaeger's v3 query API names it: a span of no kind is `internal`.
fn jaeger_span_kind(kind: &'static str) -> &'static str {
    match kind {
        "unspecified" => "internal",
        kind => kind,
    }
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) store: TraceStore,
    layouts: Arc<LayoutCache>,
    looked_up: Arc<LookedUp>,
    heavy: Semaphore,
}

impl Api {
    pub(crate) fn new(store: TraceStore) -> Self {
        Self {
            store,
            layouts: Arc::new(LayoutCache::new(LAYOUT_CACHE_SPANS)),
            looked_up: Arc::default(),
            heavy: Semaphore::new(HEAVY_JOBS),
        }
    }

    /// Answers `GET /api/...`; `segments` are the decoded path segments after `api`.
    pub(crate) async fn handle(&self, segments: &[String], query: Option<&str>) -> Response<Body> {
        let params = Params::parse(query);
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let result = match segments.as_slice() {
            ["services"] => Ok(self.services()),
            ["services", service, "operations"] => Ok(self.operations(service)),
            // Jaeger's v3 query API, as far as Jaeger UI 2 searches with it.
            ["v3", "services"] => Ok(self.services_v3()),
            ["v3", "operations"] => self.operations_v3(&params),
            ["v3", "trace-summaries"] => self.trace_summaries(&params).await,
            ["traces"] => self.jaeger_search(&params).await,
            ["traces", id] => self.jaeger_trace(id).await,
            ["critical-path", id] => self.critical_path(id, &params).await,
            ["contribution"] => self.contribution(&params).await,
            ["search"] => self.search(&params),
            ["trace-rows", id] => self.rows(id, &params).await,
            ["spans", trace, span] => self.span(trace, span).await,
            ["status"] => Ok(self.status()),
            _ => Err(ApiError::not_found(format!(
                "no such endpoint: /api/{}",
                segments.join("/")
            ))),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    fn trace(&self, id: &str) -> Result<Arc<StoredTrace>, ApiError> {
        self.store.get(&TraceId::parse(id)).ok_or_else(|| {
            ApiError::not_found(format!("trace `{id}` is not held by this explorer"))
        })
    }

    /// Runs `job` on the blocking pool, at most [`HEAVY_JOBS`] at once.
    async fn heavy<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .heavy
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the explorer is shutting down"))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|_| ApiError::internal("the request failed while it was computed"))
    }

    async fn layout(&self, trace: Arc<StoredTrace>, mode: Mode) -> Result<Arc<Layout>, ApiError> {
        if let Some(layout) = self.layouts.get(&trace, mode) {
            return Ok(layout);
        }
        let layouts = Arc::clone(&self.layouts);
        self.heavy(move || {
            // Windows of a large trace are asked for together: the request that waited for
            // a turn finds the layout another one built meanwhile.
            if let Some(layout) = layouts.get(&trace, mode) {
                return layout;
            }
            let layout = Arc::new(Layout::build(trace, mode));
            layouts.put(Arc::clone(&layout));
            layout
        })
        .await
    }

    fn services(&self) -> Response<Body> {
        let services = self.service_names();
        json_response(StatusCode::OK, &Envelope::new(&services, services.len()))
    }

    fn services_v3(&self) -> Response<Body> {
        json_response(
            StatusCode::OK,
            &serde_json::json!({ "services": self.service_names() }),
        )
    }

    /// Every service of the held traces, sorted, as Jaeger names them.
    fn service_names(&self) -> Vec<Arc<str>> {
        let mut services: Vec<Arc<str>> = self
            .store
            .all()
            .iter()
            .flat_map(|t| {
                t.summary
                    .services
                    .iter()
                    .map(|(s, _)| jaeger_service_arc(s))
            })
            .collect();
        services.sort_unstable();
        services.dedup();
        services
    }

    fn operations(&self, service: &str) -> Response<Body> {
        let operations = self.operation_names(service);
        json_response(
            StatusCode::OK,
            &Envelope::new(&operations, operations.len()),
        )
    }

    /// `{"operations": [{"name", "spanKind"}]}`: each operation once per span kind it ran
    /// with, sorted by name, then kind. As Jaeger's v3 API: a span of no kind is `internal`,
    /// and `spanKind` (or `span_kind`) keeps the operations of one kind.
    fn operations_v3(&self, params: &Params) -> Result<Response<Body>, ApiError> {
        let service = params
            .get("service")
            .ok_or_else(|| ApiError::bad_param("service", "is required".to_owned()))?;
        let asked = ["spanKind", "span_kind"]
            .into_iter()
            .find_map(|name| Some((name, params.get(name)?.to_ascii_lowercase())));
        let wanted = match asked {
            Some((name, kind)) => Some(
                JAEGER_SPAN_KINDS
                    .into_iter()
                    .find(|&k| k == kind)
                    .ok_or_else(|| {
                        let kinds = JAEGER_SPAN_KINDS.join(", ");
                        ApiError::bad_param(name, format!("must be one of {kinds}"))
                    })?,
            ),
            None => None,
        };
        let operations: Vec<serde_json::Value> = self
            .operations_of(service)
            .iter()
            .filter(|(_, kind)| wanted.is_none_or(|w| w == *kind))
            .map(|(name, kind)| serde_json::json!({ "name": name, "spanKind": kind }))
            .collect();
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "operations": operations }),
        ))
    }

    /// The traces a v3 search selects, as Jaeger's `TraceSummary`: ids of 32 hex digits (a
    /// shorter hex id padded with zeros, as Jaeger pads 64-bit ids; a trace whose id is not hex
    /// is left out, since Jaeger UI cannot name it), times as decimal strings of nanoseconds.
    async fn trace_summaries(&self, params: &Params) -> Result<Response<Body>, ApiError> {
        let found = Search::parse_v3(params)?.run(&self.store);
        self.heavy(move || {
            let summaries: Vec<serde_json::Value> = found
                .traces
                .iter()
                .filter_map(|t| {
                    let s = &t.summary;
                    let id = &s.trace_id;
                    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit())
                    {
                        return None;
                    }
                    let services: Vec<serde_json::Value> = s
                        .services
                        .iter()
                        .map(|(name, spans)| {
                            serde_json::json!({ "name": jaeger_service(name), "spanCount": spans })
                        })
                        .collect();
                    Some(serde_json::json!({
                        "traceId": format!("{:0>32}", id.to_ascii_lowercase()),
                        "rootServiceName": jaeger_service(&s.root_service),
                        "rootOperationName": s.root_operation,
                        "minStartTimeUnixNano": s.start_ns.to_string(),
                        "maxEndTimeUnixNano": s.end_ns.to_string(),
                        "spanCount": s.spans,
                        "errorSpanCount": s.errors,
                        "services": services,
                    }))
                })
                .collect();
            json_response(
                StatusCode::OK,
                &serde_json::json!({ "summaries": summaries }),
            )
        })
        .await
    }

    /// The operations of `service` in the held traces, sorted, each name once.
    fn operation_names(&self, service: &str) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self
            .operations_of(service)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names.dedup();
        names
    }

    /// The operations of `service` in the held traces with the span kinds they ran with, as
    /// Jaeger names them, sorted by name, then kind.
    fn operations_of(&self, service: &str) -> Vec<(Arc<str>, &'static str)> {
        let mut operations: Vec<(Arc<str>, &'static str)> = self
            .store
            .all()
            .iter()
            .flat_map(|t| {
                t.summary
                    .operations
                    .iter()
                    .filter(|(s, _, _)| is_service(s, service))
                    .map(|(_, o, kind)| (Arc::clone(o), jaeger_span_kind(kind)))
                    .collect::<Vec<_>>()
            })
            .collect();
        operations.sort_unstable();
        operations.dedup();
        operations
    }

    async fn jaeger_search(&self, params: &Params) -> Result<Response<Body>, ApiError> {
        let found = Search::parse(params)?.run(&self.store);
        self.heavy(move || {
            let total = found.traces.len();
            json_response(
                StatusCode::OK,
                &Envelope::new(JaegerTraces(&found.traces), total),
            )
        })
        .await
    }

    async fn jaeger_trace(&self, id: &str) -> Result<Response<Body>, ApiError> {
        let trace = self.trace(id)?;
        // Read from a large file without its details: looked up in the file, when the trace's
        // spans are few enough there to be looked up together.
        let found = if trace.looks_up() {
            self.looked_up.all(&trace).await.map_err(|_| {
                ApiError::internal("the trace's details failed while they were looked up")
            })?
        } else {
            None
        };
        self.heavy(move || {
            let with;
            let trace = match &found {
                Some(found) => {
                    with = trace.with_found(found);
                    &with
                }
                None => &*trace,
            };
            json_response(StatusCode::OK, &Envelope::new([JaegerTrace(trace)], 1))
        })
        .await
    }

    async fn critical_path(&self, id: &str, params: &Params) -> Result<Response<Body>, ApiError> {
        let mode = params.mode()?;
        let layout = self.layout(self.trace(id)?, mode).await?;
        self.heavy(move || critical_path_json(&layout.analysis))
            .await?
            .map(|bytes| json_bytes(StatusCode::OK, bytes))
    }

    async fn contribution(&self, params: &Params) -> Result<Response<Body>, ApiError> {
        let mode = params.mode()?;
        let found = Search::parse(params)?.run(&self.store);
        let matched = found.matched;
        self.heavy(move || {
            let contribution = contribute(&found.traces, mode);
            json_response(
                StatusCode::OK,
                &ContributionJson {
                    mode,
                    traces: found.traces.len(),
                    matched,
                    aggregate: &contribution.operations,
                    services: &contribution.services,
                },
            )
        })
        .await
    }

    fn search(&self, params: &Params) -> Result<Response<Body>, ApiError> {
        let found = Search::parse(params)?.run(&self.store);
        let stats = self.store.stats();
        let traces: Vec<SummaryJson<'_>> = found.traces.iter().map(|t| summary_json(t)).collect();
        Ok(json_response(
            StatusCode::OK,
            &SearchJson {
                traces,
                matched: found.matched,
                stored: stats.traces,
                evicted_traces: stats.evicted_traces,
                refused_traces: stats.refused_traces,
                generation: stats.generation,
            },
        ))
    }

    async fn rows(&self, id: &str, params: &Params) -> Result<Response<Body>, ApiError> {
        let mode = params.mode()?;
        let offset = params.number("offset", 0, u32::MAX as usize)?;
        let limit = params.number("limit", 200, MAX_ROWS)?;
        let width = params.number("px", 0, MAX_PX)? as u64;
        let collapsed: Vec<SpanId> = params
            .get("collapsed")
            .map(|list| {
                list.split(',')
                    .filter(|s| !s.is_empty())
                    .map(SpanId::parse)
                    .collect()
            })
            .unwrap_or_default();
        if collapsed.len() > MAX_COLLAPSED {
            return Err(ApiError::bad_param(
                "collapsed",
                format!("names {} spans; at most {MAX_COLLAPSED}", collapsed.len()),
            ));
        }
        let layout = self.layout(self.trace(id)?, mode).await?;
        self.heavy(move || {
            let collapsed = layout.spans_named(&collapsed);
            let window = layout.rows(offset, limit, &collapsed);
            json_response(StatusCode::OK, &rows_json(&layout, offset, &window, width))
        })
        .await
    }

    async fn span(&self, trace_id: &str, span_id: &str) -> Result<Response<Body>, ApiError> {
        let trace = self.trace(trace_id)?;
        let wanted = SpanId::parse(span_id);
        let index = trace
            .trace
            .spans
            .iter()
            .position(|s| *s.span_id() == wanted)
            .ok_or_else(|| {
                ApiError::not_found(format!("span `{span_id}` is not in trace `{trace_id}`"))
            })?;
        if trace.details(index).is_none() && trace.looks_up() {
            // Read from a large file without them: looked up in the file.
            let details = self.looked_up.details(&trace, index).await.map_err(|_| {
                ApiError::internal("the span's details failed while they were looked up")
            })?;
            let json = span_json(&trace, index, details.as_ref());
            return Ok(json_response(StatusCode::OK, &json));
        }
        let json = span_json(&trace, index, trace.details(index));
        Ok(json_response(StatusCode::OK, &json))
    }

    fn status(&self) -> Response<Body> {
        let stats = self.store.stats();
        let limits = self.store.limits();
        json_response(
            StatusCode::OK,
            &serde_json::json!({
                "traces": stats.traces,
                "spans": stats.spans,
                "bytes": stats.bytes,
                "evicted_traces": stats.evicted_traces,
                "refused_traces": stats.refused_traces,
                "generation": stats.generation,
                "max_traces": limits.max_traces,
                "max_spans": limits.max_spans,
                "max_bytes": limits.max_bytes,
            }),
        )
    }
}

/// One trace of `lightstep analyze --format json`, written by the same writer.
fn critical_path_json(analysis: &CriticalPathAnalysis) -> Result<Vec<u8>, ApiError> {
    let failed = || ApiError::internal("could not write the critical path");
    let mut writer = JsonWriter::new(Vec::new()).map_err(|_| failed())?;
    writer.trace(analysis).map_err(|_| failed())?;
    let document = writer.finish(None).map_err(|_| failed())?;
    let mut document: serde_json::Value =
        serde_json::from_slice(&document).map_err(|_| failed())?;
    let trace = document
        .get_mut("traces")
        .and_then(|t| t.get_mut(0))
        .map(serde_json::Value::take)
        .ok_or_else(failed)?;
    serde_json::to_vec(&trace).map_err(|_| failed())
}

/// [`jaeger_service`] of a shared name, shared again when it is unchanged.
fn jaeger_service_arc(name: &Arc<str>) -> Arc<str> {
    if name.is_empty() {
        Arc::from(jaeger_service(name))
    } else {
        Arc::clone(name)
    }
}

/// Contribution per (service, operation) and per service.
#[derive(Debug)]
pub(crate) struct Contribution {
    pub(crate) operations: Aggregate,
    pub(crate) services: Aggregate,
}

/// The contribution of `traces` to their critical paths in `mode`, as `lightstep analyze
/// --aggregate` computes it; per service, the same computation with each service as one
/// operation.
pub(crate) fn contribute(traces: &[Arc<StoredTrace>], mode: Mode) -> Contribution {
    let mut analyzer = Analyzer::new(Options::new(mode));
    let mut analysis = CriticalPathAnalysis::default();
    let mut operations = Aggregator::new();
    let mut services = Aggregator::new();
    let mut by_service = CriticalPathAnalysis::default();
    for trace in traces {
        analyzer.analyze_into(&trace.trace, &mut analysis);
        operations.add(&analysis);
        // The same analysis with the services as its operations, for the same percentiles.
        by_service.start_ns = analysis.start_ns;
        by_service.end_ns = analysis.end_ns;
        by_service.operations.clone_from(&analysis.services);
        by_service.path.clone_from(&analysis.path);
        for p in &mut by_service.path {
            let service = analysis
                .operations
                .get(p.operation_index)
                .map(|o| &o.service);
            p.operation_index = service
                .and_then(|s| analysis.services.iter().position(|x| x.service == *s))
                .unwrap_or(usize::MAX);
        }
        services.add(&by_service);
    }
    Contribution {
        operations: operations.finish(),
        services: services.finish(),
    }
}

#[derive(Serialize)]
struct ContributionJson<'a> {
    mode: Mode,
    traces: usize,
    matched: usize,
    aggregate: &'a Aggregate,
    services: &'a Aggregate,
}

#[derive(Serialize)]
struct SearchJson<'a> {
    traces: Vec<SummaryJson<'a>>,
    matched: usize,
    stored: usize,
    evicted_traces: u64,
    refused_traces: u64,
    generation: u64,
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    trace_id: &'a str,
    root_service: &'a str,
    root_operation: &'a str,
    start_unix_nano: u64,
    duration_ns: u64,
    spans: usize,
    errors: usize,
    services: Vec<ServiceCount<'a>>,
}

#[derive(Serialize)]
struct ServiceCount<'a> {
    service: &'a str,
    spans: usize,
}

fn summary_json(trace: &StoredTrace) -> SummaryJson<'_> {
    let s = &trace.summary;
    SummaryJson {
        trace_id: &s.trace_id,
        root_service: &s.root_service,
        root_operation: &s.root_operation,
        start_unix_nano: s.start_ns,
        duration_ns: s.duration_ns(),
        spans: s.spans,
        errors: s.errors,
        services: s
            .services
            .iter()
            .map(|(service, spans)| ServiceCount {
                service,
                spans: *spans,
            })
            .collect(),
    }
}

#[derive(Serialize)]
struct RowsJson<'a> {
    trace_id: &'a str,
    mode: Mode,
    start_unix_nano: u64,
    duration_ns: u64,
    spans: usize,
    visible_rows: usize,
    offset: usize,
    root_service: &'a str,
    root_operation: &'a str,
    critical_path_ns: u64,
    critical_spans: usize,
    diagnostics: &'a lightstep_analysis::Diagnostics,
    services: Vec<&'a str>,
    rows: Vec<RowJson<'a>>,
}

#[derive(Serialize)]
struct RowJson<'a> {
    row: usize,
    span_id: String,
    parent_span_id: Option<String>,
    parent_row: Option<usize>,
    depth: u32,
    service: &'a str,
    operation: &'a str,
    kind: &'static str,
    error: bool,
    start_ns: u64,
    duration_ns: u64,
    children: u32,
    collapsed: bool,
    critical: bool,
    critical_ns: u64,
    sections: Vec<[u64; 2]>,
}

fn rows_json<'a>(
    layout: &'a Layout,
    offset: usize,
    window: &crate::layout::Window<'a>,
    width_px: u64,
) -> RowsJson<'a> {
    let trace = &layout.trace;
    let spans = &trace.trace.spans;
    let t0 = layout.start_ns;
    let resolution_ns = layout
        .end_ns
        .saturating_sub(t0)
        .checked_div(width_px)
        .unwrap_or(0);
    RowsJson {
        trace_id: &trace.summary.trace_id,
        mode: layout.mode(),
        start_unix_nano: t0,
        duration_ns: layout.end_ns.saturating_sub(t0),
        spans: spans.len(),
        visible_rows: window.visible,
        offset,
        root_service: &trace.summary.root_service,
        root_operation: &trace.summary.root_operation,
        critical_path_ns: layout.analysis.critical_ns(),
        critical_spans: layout.analysis.path.len(),
        diagnostics: &layout.analysis.diagnostics,
        services: trace.summary.services.iter().map(|(s, _)| &**s).collect(),
        rows: window
            .rows
            .iter()
            .map(|r| {
                let span = &spans[r.span];
                RowJson {
                    row: r.row,
                    span_id: span.span_id().to_string(),
                    parent_span_id: span.parent_id().map(SpanId::to_string),
                    parent_row: r.parent_row,
                    depth: r.depth,
                    service: span.service(),
                    operation: span.name(),
                    kind: span.kind().as_str(),
                    error: span.status() == Status::Error,
                    start_ns: span.start_ns().saturating_sub(t0),
                    duration_ns: span.duration_ns(),
                    children: r.children,
                    collapsed: r.collapsed,
                    critical: r.critical,
                    critical_ns: r.critical_ns,
                    sections: merged_sections(r.sections, t0, resolution_ns),
                }
            })
            .collect(),
    }
}

/// A row's critical sections relative to `t0`, those separated by gaps of at most
/// `resolution_ns` (the time one pixel covers, when the page says how wide it draws the trace)
/// merged into one. A parent on the path between each of a million short children has a million
/// sections, which no screen can show apart and no page should receive. `0` keeps every section.
fn merged_sections(sections: &[(u64, u64)], t0: u64, resolution_ns: u64) -> Vec<[u64; 2]> {
    let mut merged: Vec<[u64; 2]> = Vec::new();
    for &(start, end) in sections {
        let (start, end) = (start.saturating_sub(t0), end.saturating_sub(t0));
        match merged.last_mut() {
            Some(last) if resolution_ns > 0 && start.saturating_sub(last[1]) <= resolution_ns => {
                last[1] = last[1].max(end);
            }
            _ => merged.push([start, end]),
        }
    }
    merged
}

#[derive(Serialize)]
struct AttributeJson<'a> {
    key: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    value: serde_json::Value,
}

fn attributes_json(attributes: &[KeyValue]) -> Vec<AttributeJson<'_>> {
    attributes
        .iter()
        .map(|kv| AttributeJson {
            key: &kv.key,
            kind: kv.value.type_name(),
            value: kv.value.to_json(),
        })
        .collect()
}

fn span_json(
    trace: &StoredTrace,
    index: usize,
    details: Option<&SpanDetails>,
) -> serde_json::Value {
    let span = &trace.trace.spans[index];
    let status = match span.status() {
        Status::Error => "error",
        Status::Ok => "ok",
        _ => "unset",
    };
    let links: Vec<serde_json::Value> = span
        .links()
        .iter()
        .enumerate()
        .map(|(k, link)| {
            let attributes = details
                .and_then(|d| d.links.get(k))
                .filter(|l| l.span_id == link.span_id)
                .map(|l| attributes_json(&l.attributes))
                .unwrap_or_default();
            serde_json::json!({
                "trace_id": link.trace_id.to_string(),
                "span_id": link.span_id.to_string(),
                "attributes": attributes,
            })
        })
        .collect();
    serde_json::json!({
        "trace_id": trace.summary.trace_id,
        "span_id": span.span_id().to_string(),
        "parent_span_id": span.parent_id().map(SpanId::to_string),
        "service": span.service(),
        "operation": span.name(),
        "kind": span.kind().as_str(),
        "status": {
            "code": status,
            "message": details.map_or("", |d| &*d.status_message),
        },
        "start_unix_nano": span.start_ns(),
        "end_unix_nano": span.end_ns(),
        "duration_ns": span.duration_ns(),
        "host": span.host(),
        "has_details": details.is_some(),
        "attributes": details.map(|d| attributes_json(&d.attributes)).unwrap_or_default(),
        "events": details.map(|d| d.events.iter().map(|e| serde_json::json!({
            "time_unix_nano": e.time_ns,
            "name": &*e.name,
            "attributes": attributes_json(&e.attributes),
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "links": links,
        "resource": details.map(|d| attributes_json(&d.resource)).unwrap_or_default(),
        "scope": details.map(|d| serde_json::json!({
            "name": &*d.scope.name,
            "version": &*d.scope.version,
            "attributes": attributes_json(&d.scope.attributes),
        })),
    })
}

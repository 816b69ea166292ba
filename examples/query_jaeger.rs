//! Critical-path analysis where the traces live: a trace fetched by id from Jaeger's query API
//! through `LightstepPerformance::analyze_critical_path`, then a search whose traces are
//! analyzed one by one as they arrive.
//!
//! ```sh
//! cargo run --example query_jaeger                                       # a stand-in Jaeger
//! cargo run --example query_jaeger -- --jaeger http://localhost:16686 \
//!     --service frontend [--trace-id ID]                                 # your Jaeger
//! ```
//!
//! With no `--jaeger`, the example starts a stand-in of Jaeger's query API on 127.0.0.1 (axum)
//! that serves `testdata/traces/deathstarbench/socialnetwork-compose-post.json` (relative to
//! the workspace root), 20 traces of DeathStarBench's social network, exactly as Jaeger answers
//! `GET /api/traces/{id}` and `GET /api/traces?service=...`. The same reads are the `lightstep
//! analyze --jaeger URL` command.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use lightstep::LightstepPerformance;
use lightstep::analysis::render::{format_duration, write_text};
use lightstep::analysis::{Options, analyze_critical_path};
use lightstep::query::{Jaeger, Search, TraceSource as _};
use lightstep_examples::chain;

/// The traces the stand-in serves, as Jaeger's JSON, with their ids.
type Traces = Arc<Vec<(String, serde_json::Value)>>;

#[tokio::main]
async fn main() -> ExitCode {
    let mut jaeger_url = None;
    let mut service = None;
    let mut trace_id = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--jaeger" => jaeger_url = args.next(),
            "--service" => service = args.next(),
            "--trace-id" => trace_id = args.next(),
            _ => {
                eprintln!("usage: query_jaeger [--jaeger URL --service NAME [--trace-id ID]]");
                return ExitCode::FAILURE;
            }
        }
    }
    match run(jaeger_url, service, trace_id).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            ExitCode::FAILURE
        }
    }
}

async fn run(
    jaeger_url: Option<String>,
    service: Option<String>,
    trace_id: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (url, service, trace_id) = match jaeger_url {
        Some(url) => (
            url,
            service.ok_or("--service NAME is needed with --jaeger")?,
            trace_id,
        ),
        None => {
            let traces = fixture_traces()?;
            let first = traces.first().map(|(id, _)| id.clone());
            let url = start_stand_in(traces).await?;
            println!("a stand-in Jaeger query API serves the fixture at {url}");
            (url, "compose-post-service".to_owned(), trace_id.or(first))
        }
    };
    let jaeger = Jaeger::builder(&url).build()?;

    // One trace by id: fetched, then analyzed off the async workers.
    if let Some(trace_id) = trace_id {
        let performance = LightstepPerformance::new(jaeger.clone());
        let analysis = performance.analyze_critical_path(&trace_id).await?;
        println!();
        write_text(&mut std::io::stdout().lock(), &analysis, 15)?;
    }

    // A search: each trace is analyzed as it arrives; the result set is never held.
    let search = Search::new()
        .with_service(&service)
        .with_lookback(std::time::Duration::from_secs(7 * 24 * 3600))
        .with_limit(5);
    println!("\nthe last 5 traces of {service}:");
    let mut traces = jaeger.search(&search);
    let mut count = 0;
    while let Some(trace) = traces.next().await {
        let trace = trace?;
        let analysis = analyze_critical_path(&trace, &Options::default());
        let top = analysis
            .operations
            .first()
            .map(|share| {
                format!(
                    "{} [{}] {:.0}%",
                    share.operation.as_deref().unwrap_or_default(),
                    share.service,
                    share.share * 100.0
                )
            })
            .unwrap_or_default();
        println!(
            "  {} {:>3} spans, {:>10} long, most of the critical path: {top}",
            analysis.trace_id,
            trace.spans.len(),
            format_duration(analysis.duration_ns()),
        );
        count += 1;
    }
    println!("{count} traces analyzed from {}", jaeger.name());
    Ok(())
}

/// `testdata/traces/deathstarbench/socialnetwork-compose-post.json` from the workspace root:
/// a Jaeger UI export, which is the query API's `{"data": [...]}`.
fn fixture_traces() -> Result<Traces, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces/deathstarbench/socialnetwork-compose-post.json");
    let text = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_slice(&text)?;
    let traces = doc["data"]
        .as_array()
        .ok_or("the fixture has no `data`")?
        .iter()
        .map(|trace| {
            let id = trace["traceID"].as_str().unwrap_or_default().to_owned();
            (id, trace.clone())
        })
        .collect();
    Ok(Arc::new(traces))
}

/// Jaeger's `GET /api/traces/{id}` and `GET /api/traces?service=&limit=` on 127.0.0.1.
async fn start_stand_in(traces: Traces) -> std::io::Result<String> {
    let app = axum::Router::new()
        .route("/api/traces/{id}", get(trace_by_id))
        .route("/api/traces", get(search))
        .with_state(traces);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn json(status: StatusCode, body: serde_json::Value) -> impl IntoResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn trace_by_id(
    State(traces): State<Traces>,
    UrlPath(id): UrlPath<String>,
) -> impl IntoResponse {
    match traces.iter().find(|(tid, _)| tid.eq_ignore_ascii_case(&id)) {
        Some((_, trace)) => json(StatusCode::OK, serde_json::json!({ "data": [trace] })),
        None => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"data": null, "errors": [{"code": 404, "msg": "trace not found"}]}),
        ),
    }
}

async fn search(State(traces): State<Traces>, RawQuery(query): RawQuery) -> impl IntoResponse {
    // The fixture's service names need no percent-decoding.
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let limit = param("limit").and_then(|v| v.parse().ok()).unwrap_or(20);
    let service = param("service").unwrap_or_default();
    let found: Vec<&serde_json::Value> = traces
        .iter()
        .map(|(_, trace)| trace)
        .filter(|trace| {
            trace["processes"]
                .as_object()
                .is_some_and(|p| p.values().any(|p| p["serviceName"] == service))
        })
        .take(limit)
        .collect();
    json(StatusCode::OK, serde_json::json!({ "data": found }))
}

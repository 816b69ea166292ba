//! The repository's fixtures (testdata/traces) as each store's API serves them, and the
//! analyses of the same traces read from their files, to compare with what is fetched.
//!
//! - Jaeger v1: the Jaeger query JSON of DeathStarBench (a Jaeger UI export, which is the
//!   API's answer) and of Jaeger UI's fixtures, one `{"data": [trace]}` per trace.
//! - Jaeger v3 and Tempo: the OTLP JSON fixtures; Jaeger wraps them in `{"result": ...}`;
//!   Tempo answers OTLP protobuf (encoded from the JSON with opentelemetry-proto) or jsonpb's
//!   JSON (`batches` in v1, `trace` in v2, ids in base64).
//! - Zipkin: the Zipkin v2 fixtures, which are the API's answer for one trace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use lightstep_analysis::{CriticalPathAnalysis, Options, analyze_critical_path};
use prost::Message as _;
use serde_json::{Value, json};

use crate::standin::{Recorded, Reply};

pub(crate) fn testdata(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/traces")
        .join(relative)
}

fn load(relative: &str) -> Value {
    let path = testdata(relative);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

/// The analyses of every trace in these files, by trace id (as the analysis writes it).
pub(crate) fn file_analyses(files: &[&str]) -> BTreeMap<String, CriticalPathAnalysis> {
    let mut out = BTreeMap::new();
    for file in files {
        lightstep_analysis::read::read_path(&testdata(file), None, |trace| {
            let analysis = analyze_critical_path(&trace, &Options::default());
            out.insert(analysis.trace_id.clone(), analysis);
            Ok(())
        })
        .unwrap();
    }
    out
}

pub(crate) const JAEGER_FILES: &[&str] = &[
    "deathstarbench/socialnetwork-compose-post.json",
    "jaeger/traceWithOverlappingChildren.json",
    "jaeger/spansAmongEachOther.json",
];

pub(crate) const OTLP_FILES: &[&str] = &[
    "otlp/jaeger-fixture-default.json",
    "otlp/jaeger-fixture-dur_trace.json",
    "otlp/jaeger-fixture-example_trace.json",
    "otlp/jaeger-fixture-link_attributes_trace.json",
    "otlp/jaeger-fixture-multiple1_trace.json",
    "otlp/jaeger-fixture-scope_attributes_trace.json",
    "otlp/opentelemetry-proto-example-trace.json",
];

pub(crate) const ZIPKIN_FILES: &[&str] = &[
    "zipkin/ascend.json",
    "zipkin/messaging-kafka.json",
    "zipkin/messaging.json",
    "zipkin/skew.json",
    "zipkin/yelp.json",
    "zipkin/smartthings-mobile-web-install.json",
];

/// Jaeger query JSON traces (`{traceID, spans, processes}`), keyed by lower-case id.
pub(crate) fn jaeger_traces() -> Vec<(String, Value)> {
    let mut traces = Vec::new();
    for file in JAEGER_FILES {
        let doc = load(file);
        let list = match doc.get("data") {
            Some(Value::Array(list)) => list.clone(),
            _ => vec![doc],
        };
        for trace in list {
            let id = trace["traceID"].as_str().unwrap().to_ascii_lowercase();
            traces.push((id, trace));
        }
    }
    traces
}

/// OTLP JSON documents, one trace each, keyed by lower-case 32-digit id.
pub(crate) fn otlp_traces() -> Vec<(String, Value)> {
    OTLP_FILES
        .iter()
        .map(|file| {
            let doc = load(file);
            let id = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
            (id, doc)
        })
        .collect()
}

/// Zipkin v2 traces (arrays of spans), keyed by lower-case id.
pub(crate) fn zipkin_traces() -> Vec<(String, Value)> {
    ZIPKIN_FILES
        .iter()
        .map(|file| {
            let spans = load(file);
            let id = spans[0]["traceId"].as_str().unwrap().to_ascii_lowercase();
            (id, spans)
        })
        .collect()
}

fn services_of_jaeger(trace: &Value) -> Vec<String> {
    trace["processes"]
        .as_object()
        .map(|p| {
            p.values()
                .filter_map(|p| p["serviceName"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn services_of_otlp(doc: &Value) -> Vec<String> {
    doc["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| {
            rs["resource"]["attributes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|kv| kv["key"] == "service.name")
        .filter_map(|kv| kv["value"]["stringValue"].as_str().map(str::to_owned))
        .collect()
}

fn same_id(a: &str, b: &str) -> bool {
    a.trim_start_matches('0')
        .eq_ignore_ascii_case(b.trim_start_matches('0'))
}

/// Jaeger's query API: v1 over the Jaeger JSON traces, v3 over the OTLP ones.
pub(crate) fn jaeger_api() -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let v1 = jaeger_traces();
    let v3 = otlp_traces();
    move |request| {
        let not_found = || {
            Reply::json(
                404,
                r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#,
            )
        };
        if let Some(id) = request.path.strip_prefix("/api/traces/") {
            return match v1.iter().find(|(tid, _)| same_id(tid, id)) {
                Some((_, trace)) => Reply::json(
                    200,
                    json!({"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": null})
                        .to_string(),
                ),
                None => not_found(),
            };
        }
        if request.path == "/api/traces" {
            let Some(service) = request.param("service") else {
                return Reply::json(
                    400,
                    r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"parameter 'service' is required"}]}"#,
                );
            };
            for required in ["start", "end", "limit"] {
                if request
                    .param(required)
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none()
                {
                    return Reply::json(
                        400,
                        format!(r#"{{"errors":[{{"code":400,"msg":"bad {required}"}}]}}"#),
                    );
                }
            }
            let limit: usize = request.param("limit").unwrap().parse().unwrap();
            let found: Vec<&Value> = v1
                .iter()
                .map(|(_, t)| t)
                .filter(|t| services_of_jaeger(t).iter().any(|s| s == service))
                .take(limit)
                .collect();
            return Reply::json(
                200,
                json!({"data": found, "total": 0, "limit": 0, "offset": 0, "errors": null})
                    .to_string(),
            );
        }
        if let Some(id) = request.path.strip_prefix("/api/v3/traces/") {
            return match v3.iter().find(|(tid, _)| same_id(tid, id)) {
                Some((_, doc)) => Reply::json(200, json!({ "result": doc }).to_string()),
                None => Reply::json(
                    404,
                    r#"{"error":{"httpCode":404,"message":"trace not found"}}"#,
                ),
            };
        }
        if request.path == "/api/v3/trace-summaries" {
            if request.param("query.startTimeMin").is_none()
                || request.param("query.startTimeMax").is_none()
            {
                return Reply::json(
                    400,
                    r#"{"error":{"httpCode":400,"message":"query.startTimeMin and query.startTimeMax are required"}}"#,
                );
            }
            let limit: usize = request
                .param("query.searchDepth")
                .map_or(100, |v| v.parse().unwrap());
            let service = request.param("query.serviceName");
            let summaries: Vec<Value> = v3
                .iter()
                .filter(|(_, doc)| {
                    service.is_none_or(|s| services_of_otlp(doc).iter().any(|x| x == s))
                })
                .take(limit)
                .map(|(id, _)| json!({"traceId": id, "spanCount": 1}))
                .collect();
            return Reply::json(200, json!({ "summaries": summaries }).to_string());
        }
        Reply::text(404, "404 page not found\n")
    }
}

/// How a stand-in Tempo answers.
#[derive(Clone, Copy, Default)]
pub(crate) struct TempoOptions {
    /// JSON whatever the `Accept` header says.
    pub(crate) json_only: bool,
    /// A multi-tenant Tempo: `X-Scope-OrgID` is required.
    pub(crate) tenant: Option<&'static str>,
}

/// OTLP JSON → `TracesData` protobuf, through opentelemetry-proto's serde mapping.
pub(crate) fn otlp_protobuf(doc: &Value) -> Vec<u8> {
    let data: opentelemetry_proto::tonic::trace::v1::TracesData =
        serde_json::from_value(doc.clone()).unwrap();
    data.encode_to_vec()
}

/// OTLP JSON → Tempo's jsonpb: the same document with ids in base64.
fn base64_ids(doc: &Value) -> Value {
    fn convert(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    if matches!(key.as_str(), "traceId" | "spanId" | "parentSpanId")
                        && let Some(hex) = inner.as_str()
                        && !hex.is_empty()
                    {
                        let bytes: Vec<u8> = (0..hex.len() / 2)
                            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                            .collect();
                        *inner =
                            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
                    } else {
                        convert(inner);
                    }
                }
            }
            Value::Array(list) => list.iter_mut().for_each(convert),
            _ => {}
        }
    }
    let mut doc = doc.clone();
    convert(&mut doc);
    doc
}

/// Tempo's HTTP API over the OTLP fixtures.
pub(crate) fn tempo_api(
    options: TempoOptions,
) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let traces = otlp_traces();
    move |request| {
        if let Some(tenant) = options.tenant
            && request.header("x-scope-orgid") != Some(tenant)
        {
            return Reply::text(401, "no org id\n");
        }
        let protobuf = !options.json_only
            && request
                .header("accept")
                .is_some_and(|a| a.contains("application/protobuf"));
        let (v2, id) = if let Some(id) = request.path.strip_prefix("/api/v2/traces/") {
            (true, Some(id))
        } else {
            (false, request.path.strip_prefix("/api/traces/"))
        };
        if let Some(id) = id {
            let Some((_, doc)) = traces.iter().find(|(tid, _)| same_id(tid, id)) else {
                return Reply::text(404, "");
            };
            return match (v2, protobuf) {
                (false, true) => Reply::protobuf(otlp_protobuf(doc)),
                (true, true) => {
                    // TraceByIDResponse { trace = 1; metrics = 2; status = 3 }.
                    let trace = otlp_protobuf(doc);
                    let mut body = Vec::new();
                    prost::encoding::bytes::encode(1, &trace, &mut body);
                    prost::encoding::bytes::encode(2, &vec![8u8, 42], &mut body);
                    prost::encoding::int32::encode(3, &0, &mut body);
                    Reply::protobuf(body)
                }
                (false, false) => {
                    let doc = base64_ids(doc);
                    Reply::json(200, json!({ "batches": doc["resourceSpans"] }).to_string())
                }
                (true, false) => {
                    let doc = base64_ids(doc);
                    Reply::json(
                        200,
                        json!({ "trace": doc, "metrics": {"inspectedBytes": "42"}, "status": "COMPLETE" })
                            .to_string(),
                    )
                }
            };
        }
        if request.path == "/api/search" {
            for required in ["start", "end"] {
                if request
                    .param(required)
                    .and_then(|v| v.parse::<u32>().ok())
                    .is_none()
                {
                    return Reply::text(400, format!("invalid {required}"));
                }
            }
            if request.param("tags").is_some() && request.param("q").is_some() {
                return Reply::text(
                    400,
                    "invalid request: can't specify tags and q in the same query",
                );
            }
            let limit: usize = request.param("limit").map_or(20, |v| v.parse().unwrap());
            // Only `service.name=` is understood here.
            let service = request.param("tags").and_then(|tags| {
                tags.split(' ')
                    .find_map(|kv| kv.strip_prefix("service.name="))
                    .map(str::to_owned)
            });
            let found: Vec<Value> = traces
                .iter()
                .filter(|(_, doc)| {
                    service
                        .as_ref()
                        .is_none_or(|s| services_of_otlp(doc).iter().any(|x| x == s))
                })
                .take(limit)
                .map(|(id, _)| {
                    // Tempo writes ids without their leading zeros.
                    let short = id.trim_start_matches('0');
                    json!({"traceID": short, "rootServiceName": "svc", "durationMs": 1})
                })
                .collect();
            return Reply::json(
                200,
                json!({ "traces": found, "metrics": {"inspectedTraces": traces.len()} })
                    .to_string(),
            );
        }
        Reply::text(404, "404 page not found\n")
    }
}

/// Zipkin's v2 API over the Zipkin fixtures.
pub(crate) fn zipkin_api() -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let traces = zipkin_traces();
    move |request| {
        if let Some(id) = request.path.strip_prefix("/api/v2/trace/") {
            return match traces.iter().find(|(tid, _)| same_id(tid, id)) {
                Some((_, spans)) => Reply::json(200, spans.to_string()),
                None => Reply::text(404, format!("{id} not found")),
            };
        }
        if request.path == "/api/v2/traces" {
            for required in ["endTs", "lookback", "limit"] {
                if request
                    .param(required)
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none()
                {
                    return Reply::text(400, format!("bad {required}"));
                }
            }
            let limit: usize = request.param("limit").unwrap().parse().unwrap();
            let service = request.param("serviceName");
            let found: Vec<&Value> = traces
                .iter()
                .map(|(_, spans)| spans)
                .filter(|spans| {
                    service.is_none_or(|s| {
                        spans
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|span| span["localEndpoint"]["serviceName"] == s)
                    })
                })
                .take(limit)
                .collect();
            return Reply::json(200, serde_json::to_string(&found).unwrap());
        }
        Reply::text(404, "Not Found")
    }
}

//! Files too large to keep their details when read: the details of a selected span are looked
//! up in the file, and equal what the same spans show when read from a small file.

use std::path::Path;

use lightstep_explorer::{DETAILED_FILE_BYTES, RunningExplorer, TraceStore};
use serde_json::{Value, json};

use crate::*;

/// Traces of padding, each with its own trace id, enough of them to pass the details limit.
const FILLER_TRACES: usize = 1_600;
const FILLER_SPANS: usize = 10;

fn pad() -> String {
    "x".repeat(500)
}

fn filler_trace_id(k: usize) -> String {
    format!("{:032x}", 0xfeed_0000_0000_u128 + k as u128)
}

fn filler_span_id(k: usize, j: usize) -> String {
    format!(
        "{:016x}",
        0xfeed_0000_0000_u64 + (k * FILLER_SPANS + j + 1) as u64
    )
}

/// One `resourceSpans` element of padding.
fn otlp_filler(k: usize) -> Value {
    let spans: Vec<Value> = (0..FILLER_SPANS)
        .map(|j| {
            json!({
                "traceId": filler_trace_id(k), "spanId": filler_span_id(k, j),
                "name": "pad", "startTimeUnixNano": "1000", "endTimeUnixNano": "2000",
                "attributes": [{"key": "pad", "value": {"stringValue": pad()}}],
            })
        })
        .collect();
    json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "filler"}}]},
        "scopeSpans": [{"scope": {"name": "filler"}, "spans": spans}],
    })
}

fn jaeger_filler(k: usize) -> Value {
    let spans: Vec<Value> = (0..FILLER_SPANS)
        .map(|j| {
            json!({
                "traceID": filler_trace_id(k), "spanID": filler_span_id(k, j),
                "operationName": "pad", "references": [], "startTime": 1, "duration": 1,
                "tags": [{"key": "pad", "type": "string", "value": pad()}], "logs": [],
                "processID": "p1",
            })
        })
        .collect();
    json!({
        "traceID": filler_trace_id(k), "spans": spans,
        "processes": {"p1": {"serviceName": "filler", "tags": []}},
    })
}

fn zipkin_filler(k: usize) -> Vec<Value> {
    (0..FILLER_SPANS)
        .map(|j| {
            json!({
                "traceId": filler_trace_id(k), "id": filler_span_id(k, j), "name": "pad",
                "timestamp": 1, "duration": 1, "localEndpoint": {"serviceName": "filler"},
                "tags": {"pad": pad()},
            })
        })
        .collect()
}

/// `items` (JSON texts) joined into a list, the fixture's between two halves of padding.
fn list_around(fixture: &[String], filler: impl Fn(usize) -> String) -> String {
    let half = FILLER_TRACES / 2;
    let items: Vec<String> = (0..half)
        .map(&filler)
        .chain(fixture.iter().cloned())
        .chain((half..FILLER_TRACES).map(&filler))
        .collect();
    format!("[{}]", items.join(","))
}

/// An OTLP `resourceSpans` element as text with its resource after its spans, as a writer that
/// does not order keys may put it.
fn resource_last(resource_spans: &Value) -> String {
    let mut rest = resource_spans.clone();
    let resource = rest.as_object_mut().unwrap().remove("resource");
    let mut text = serde_json::to_string(&rest).unwrap();
    if let Some(resource) = resource {
        text.pop();
        text.push_str(&format!(",\"resource\":{resource}}}"));
    }
    text
}

/// The large versions of a small fixture in its format: the fixture's traces among padding
/// traces, one file per encoding the format has.
fn large_versions(small: &Path, dir: &Path) -> Vec<std::path::PathBuf> {
    let text = std::fs::read(small).unwrap();
    let document: Value = serde_json::from_slice(&text).unwrap();
    let name = small.file_stem().unwrap().to_string_lossy().into_owned();
    let mut files = Vec::new();
    let mut write = |suffix: &str, bytes: Vec<u8>| {
        assert!(
            bytes.len() as u64 > DETAILED_FILE_BYTES,
            "{name}{suffix} is large"
        );
        let path = dir.join(format!("{name}{suffix}"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    };
    if let Some(resource_spans) = document.get("resourceSpans").and_then(Value::as_array) {
        let fixture: Vec<String> = resource_spans.iter().map(resource_last).collect();
        let filler = |k| otlp_filler(k).to_string();
        let json = format!("{{\"resourceSpans\":{}}}", list_around(&fixture, filler));
        let (protobuf, _) = lightstep_receiver::bench_support::json_to_protobuf(json.as_bytes());
        write(".pb", protobuf.expect("the large file transcodes"));
        write(".json", json.into_bytes());
        // JSON Lines: each element a request of its own.
        let lines: String = (0..FILLER_TRACES / 2)
            .map(|k| json!({"resourceSpans": [otlp_filler(k)]}))
            .chain(resource_spans.iter().map(|r| json!({"resourceSpans": [r]})))
            .chain(
                (FILLER_TRACES / 2..FILLER_TRACES)
                    .map(|k| json!({"resourceSpans": [otlp_filler(k)]})),
            )
            .map(|line| format!("{line}\n"))
            .collect();
        write(".jsonl", lines.into_bytes());
    } else if document.get("data").is_some() || document.get("spans").is_some() {
        // A Jaeger document, or a bare trace (which goes in as one of `data`).
        let fixture: Vec<String> = match document.get("data").and_then(Value::as_array) {
            Some(traces) => traces.iter().map(Value::to_string).collect(),
            None => vec![document.to_string()],
        };
        let data = list_around(&fixture, |k| jaeger_filler(k).to_string());
        write(".json", format!("{{\"data\":{data}}}").into_bytes());
    } else {
        let spans = document.as_array().expect("a Zipkin list");
        let fixture: Vec<String> = spans.iter().map(Value::to_string).collect();
        let list = list_around(&fixture, |k| {
            let spans: Vec<String> = zipkin_filler(k).iter().map(Value::to_string).collect();
            spans.join(",")
        });
        write(".json", list.into_bytes());
    }
    files
}

async fn explorer_reading(path: &Path) -> RunningExplorer {
    let store = TraceStore::default();
    store.read_path(path, None).expect("the file reads");
    serve(store).await
}

/// What the details pane shows of a span, beyond what the analysis's readers keep.
fn details_of(span: &Value) -> Value {
    json!({
        "has_details": span["has_details"],
        "status_message": span["status"]["message"],
        "attributes": span["attributes"],
        "events": span["events"],
        "links": span["links"],
        "resource": span["resource"],
        "scope": span["scope"],
    })
}

/// Each span of a Jaeger API answer by id, with its tags, logs, references and its process.
fn jaeger_spans(answer: &Value) -> std::collections::BTreeMap<String, Value> {
    let trace = &answer["data"][0];
    trace["spans"]
        .as_array()
        .expect("a trace")
        .iter()
        .map(|span| {
            let process = &trace["processes"][span["processID"].as_str().unwrap()];
            let id = span["spanID"].as_str().unwrap().to_owned();
            let mut span = span.clone();
            span["processID"] = process.clone();
            (id, span)
        })
        .collect()
}

#[tokio::test]
async fn large_files_show_the_details_a_small_file_shows() {
    let dir = tempfile::tempdir().unwrap();
    for small in [
        "otlp/opentelemetry-proto-example-trace.json",
        "otlp/jaeger-fixture-link_attributes_trace.json",
        "otlp/jaeger-fixture-scope_attributes_trace.json",
        "jaeger/genaiTestTrace.json",
        "deathstarbench/socialnetwork-compose-post.json",
        "zipkin/yelp.json",
        "zipkin/messaging-kafka.json",
    ] {
        let small_explorer = explorer_over(&[small]).await;
        let traces = read_fixture(small);
        for large in large_versions(&fixture(small), dir.path()) {
            let large_explorer = explorer_reading(&large).await;
            let mut with_attributes = 0;
            for trace in &traces {
                // Jaeger's API (what Jaeger UI and Grafana read) shows the same tags, logs and
                // processes.
                let path = format!("/api/traces/{}", trace.trace_id);
                assert_eq!(
                    jaeger_spans(&get_json(&large_explorer, &path).await),
                    jaeger_spans(&get_json(&small_explorer, &path).await),
                    "{} {path}",
                    large.display()
                );
                for span in &trace.spans {
                    let path = format!("/api/spans/{}/{}", trace.trace_id, span.span_id());
                    let expected = details_of(&get_json(&small_explorer, &path).await);
                    let found = details_of(&get_json(&large_explorer, &path).await);
                    assert_eq!(found, expected, "{} {path}", large.display());
                    if expected["attributes"]
                        .as_array()
                        .is_some_and(|a| !a.is_empty())
                    {
                        with_attributes += 1;
                    }
                }
            }
            assert!(
                with_attributes > 0,
                "{small}: some spans have attributes to compare"
            );
            large_explorer.shutdown().await;
        }
        small_explorer.shutdown().await;
    }
}

#[tokio::test]
async fn a_trace_larger_than_the_limit_shows_the_selected_spans_details() {
    let dir = tempfile::tempdir().unwrap();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let spans_needed = (DETAILED_FILE_BYTES as usize) / 500 + 2_000;
    let spans: Vec<Value> = (0..spans_needed)
        .map(|j| {
            let parent = if j == 0 {
                json!(null)
            } else {
                json!(format!("{:016x}", 1))
            };
            json!({
                "traceId": trace_id, "spanId": format!("{:016x}", j + 1), "parentSpanId": parent,
                "name": format!("op{}", j % 7), "startTimeUnixNano": "1000", "endTimeUnixNano": "2000",
                "attributes": [
                    {"key": "position", "value": {"intValue": j.to_string()}},
                    {"key": "pad", "value": {"stringValue": pad()}},
                ],
            })
        })
        .collect();
    let document = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "batch"}}]},
        "scopeSpans": [{"scope": {"name": "big", "version": "2"}, "spans": spans}],
    }]});
    let json = serde_json::to_vec(&document).unwrap();
    assert!(json.len() as u64 > DETAILED_FILE_BYTES);
    let (protobuf, _) = lightstep_receiver::bench_support::json_to_protobuf(&json);
    // The same trace in Jaeger JSON, its processes after its spans, and in Zipkin JSON.
    let jaeger_spans: Vec<String> = (0..spans_needed)
        .map(|j| {
            let references = if j == 0 {
                json!([])
            } else {
                json!([{"refType": "CHILD_OF", "traceID": trace_id, "spanID": format!("{:016x}", 1)}])
            };
            json!({
                "traceID": trace_id, "spanID": format!("{:016x}", j + 1),
                "operationName": format!("op{}", j % 7), "references": references,
                "startTime": 1, "duration": 1, "processID": "p1", "logs": [],
                "tags": [
                    {"key": "position", "type": "int64", "value": j},
                    {"key": "pad", "type": "string", "value": pad()},
                ],
            })
            .to_string()
        })
        .collect();
    let jaeger = format!(
        "{{\"data\":[{{\"traceID\":\"{trace_id}\",\"spans\":[{}],\"processes\":{{\"p1\":{{\"serviceName\":\"batch\",\"tags\":[]}}}}}}]}}",
        jaeger_spans.join(",")
    );
    let zipkin: Vec<Value> = (0..spans_needed)
        .map(|j| {
            let mut span = json!({
                "traceId": trace_id, "id": format!("{:016x}", j + 1), "name": format!("op{}", j % 7),
                "timestamp": 1, "duration": 1, "localEndpoint": {"serviceName": "batch"},
                "tags": {"position": j.to_string(), "pad": pad()},
            });
            if j > 0 {
                span["parentId"] = json!(format!("{:016x}", 1));
            }
            span
        })
        .collect();
    let otlp_position = |j: usize| json!({"key": "position", "type": "int", "value": j});
    let zipkin_position =
        |j: usize| json!({"key": "position", "type": "string", "value": j.to_string()});
    for (name, bytes, position) in [
        ("big.json", json, &otlp_position as &dyn Fn(usize) -> Value),
        ("big.pb", protobuf.unwrap(), &otlp_position),
        ("big-jaeger.json", jaeger.into_bytes(), &otlp_position),
        (
            "big-zipkin.json",
            serde_json::to_vec(&zipkin).unwrap(),
            &zipkin_position,
        ),
    ] {
        assert!(bytes.len() as u64 > DETAILED_FILE_BYTES, "{name}");
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let explorer = explorer_reading(&path).await;
        // The first span, the last, and one between, each looked up on its own.
        for j in [spans_needed - 1, 0, spans_needed / 2] {
            let span = get_json(&explorer, &format!("/api/spans/{trace_id}/{:016x}", j + 1)).await;
            assert_eq!(span["has_details"], true, "{name} {j}");
            let attributes = span["attributes"].as_array().unwrap();
            assert!(
                attributes.contains(&position(j)),
                "{name} {j}: {attributes:?}"
            );
            if name.ends_with(".pb") || name == "big.json" {
                assert_eq!(span["scope"]["version"], "2", "{name}");
            }
            let resource = span["resource"].as_array().unwrap();
            assert!(
                resource.iter().any(|kv| kv["value"] == "batch"),
                "{name} {j}: {resource:?}"
            );
        }
        explorer.shutdown().await;
    }
}

#[tokio::test]
async fn a_large_file_gone_since_it_was_read_leaves_its_spans_without_details() {
    let dir = tempfile::tempdir().unwrap();
    let small = "zipkin/yelp.json";
    let large = large_versions(&fixture(small), dir.path()).remove(0);
    let explorer = explorer_reading(&large).await;
    std::fs::remove_file(&large).unwrap();
    let trace = &read_fixture(small)[0];
    let span = trace.spans[0].span_id();
    let answer = get(&explorer, &format!("/api/spans/{}/{span}", trace.trace_id)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let span = answer.json();
    assert_eq!(span["has_details"], false, "{span}");
    assert_eq!(span["attributes"], json!([]), "{span}");
    // What the readers keep is still there.
    assert_eq!(span["trace_id"], trace.trace_id.to_string());
    explorer.shutdown().await;
}

#[tokio::test]
async fn the_details_pane_shows_a_large_files_tags_in_a_real_browser() {
    let Some(browser) = crate::webdriver::Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let small = "jaeger/genaiTestTrace.json";
    let large = large_versions(&fixture(small), dir.path()).remove(0);
    let explorer = explorer_reading(&large).await;
    let id = read_fixture(small)[0].trace_id.to_string();
    let url = format!("{}trace/{id}?span=0000000000000001", explorer.url());
    browser.goto(&url).await;
    crate::browser::wait_for_genai_details(&browser).await;
    browser.quit().await;
    explorer.shutdown().await;
}

#[tokio::test]
async fn a_trace_split_over_a_small_and_a_large_file_shows_every_spans_details() {
    let dir = tempfile::tempdir().unwrap();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let part = |span: &str, parent: Option<&str>, value: &str| {
        json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": value}}]},
            "scopeSpans": [{"scope": {"name": "split"}, "spans": [{
                "traceId": trace_id, "spanId": span, "parentSpanId": parent.unwrap_or(""),
                "name": value, "startTimeUnixNano": "1000", "endTimeUnixNano": "2000",
                "attributes": [{"key": "part", "value": {"stringValue": value}}],
            }]}],
        })
    };
    let small = dir.path().join("small.json");
    let small_part = part("00000000000000a1", None, "small");
    std::fs::write(&small, json!({"resourceSpans": [small_part]}).to_string()).unwrap();
    let large = dir.path().join("large.json");
    let large_part = part("00000000000000b2", Some("00000000000000a1"), "large").to_string();
    let text = format!(
        "{{\"resourceSpans\":{}}}",
        list_around(&[large_part], |k| otlp_filler(k).to_string())
    );
    std::fs::write(&large, text).unwrap();
    for order in [[&small, &large], [&large, &small]] {
        let store = TraceStore::default();
        for file in order {
            store.read_path(file, None).unwrap();
        }
        let explorer = serve(store).await;
        for (span, value) in [("00000000000000a1", "small"), ("00000000000000b2", "large")] {
            let found = get_json(&explorer, &format!("/api/spans/{trace_id}/{span}")).await;
            assert_eq!(found["has_details"], true, "{order:?} {span}: {found}");
            assert_eq!(
                found["attributes"],
                json!([{"key": "part", "type": "string", "value": value}]),
                "{order:?} {span}"
            );
        }
        let jaeger = jaeger_spans(&get_json(&explorer, &format!("/api/traces/{trace_id}")).await);
        for (span, value) in [("00000000000000a1", "small"), ("00000000000000b2", "large")] {
            let tags = jaeger[span]["tags"].as_array().unwrap();
            assert!(
                tags.iter()
                    .any(|t| t["key"] == "part" && t["value"] == value),
                "{order:?} {span}: {tags:?}"
            );
        }
        explorer.shutdown().await;
    }
}

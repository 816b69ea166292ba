//! Traces that come through the real embedded receiver (OTLP/HTTP JSON over a socket), and
//! OTLP files, keep their attributes, events, links, resource and scope.

use std::time::Duration;

use lightstep_explorer::TraceStore;
use lightstep_receiver::Receiver;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::*;

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";

fn export_body() -> Value {
    let attr = |key: &str, value: Value| json!({"key": key, "value": value});
    json!({"resourceSpans": [{
        "resource": {"attributes": [
            attr("service.name", json!({"stringValue": "checkout"})),
            attr("host.name", json!({"stringValue": "node-7"})),
        ]},
        "scopeSpans": [{
            "scope": {"name": "lightstep-test", "version": "1.2.3"},
            "spans": [
                {
                    "traceId": TRACE_ID, "spanId": "eee19b7ec3c1b173",
                    "name": "GET /cart", "kind": 2,
                    "startTimeUnixNano": "1700000000000000000",
                    "endTimeUnixNano": "1700000000900000000",
                    "attributes": [
                        attr("http.route", json!({"stringValue": "/cart"})),
                        attr("http.response.status_code", json!({"intValue": "503"})),
                        attr("big", json!({"intValue": "9007199254740993"})),
                        attr("retry", json!({"boolValue": true})),
                        attr("ratio", json!({"doubleValue": 0.25})),
                        attr("tags", json!({"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}})),
                    ],
                    "events": [{
                        "timeUnixNano": "1700000000100000000", "name": "cache miss",
                        "attributes": [attr("key", json!({"stringValue": "cart:42"}))],
                    }],
                    "links": [{
                        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
                        "attributes": [attr("why", json!({"stringValue": "batch"}))],
                    }],
                    "status": {"code": 2, "message": "upstream unavailable"},
                },
                {
                    "traceId": TRACE_ID, "spanId": "eee19b7ec3c1b174", "parentSpanId": "eee19b7ec3c1b173",
                    "name": "SELECT carts", "kind": 3,
                    "startTimeUnixNano": "1700000000200000000",
                    "endTimeUnixNano": "1700000000700000000",
                    "attributes": [attr("db.system.name", json!({"stringValue": "postgresql"}))],
                },
            ],
        }],
    }]})
}

async fn post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> u16 {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap()
}

/// What the details of the export's first span must read, from any source that carried them.
async fn check_details(explorer: &lightstep_explorer::RunningExplorer, source: &str) {
    let span = get_json(explorer, &format!("/api/spans/{TRACE_ID}/eee19b7ec3c1b173")).await;
    assert_eq!(span["has_details"], true, "{source}: {span}");
    assert_eq!(
        span["status"],
        json!({"code": "error", "message": "upstream unavailable"}),
        "{source}"
    );
    assert_eq!(
        span["attributes"],
        json!([
            {"key": "http.route", "type": "string", "value": "/cart"},
            {"key": "http.response.status_code", "type": "int", "value": 503},
            {"key": "big", "type": "int", "value": 9007199254740993i64},
            {"key": "retry", "type": "bool", "value": true},
            {"key": "ratio", "type": "double", "value": 0.25},
            {"key": "tags", "type": "array", "value": ["a", 2]},
        ]),
        "{source}"
    );
    assert_eq!(span["events"][0]["name"], "cache miss", "{source}");
    assert_eq!(span["links"][0]["span_id"], "b7ad6b7169203331", "{source}");
    assert_eq!(
        span["resource"][1],
        json!({"key": "host.name", "type": "string", "value": "node-7"}),
        "{source}"
    );
    assert_eq!(span["scope"]["version"], "1.2.3", "{source}");
    let child = get_json(explorer, &format!("/api/spans/{TRACE_ID}/eee19b7ec3c1b174")).await;
    assert_eq!(child["attributes"][0]["value"], "postgresql", "{source}");
}

#[tokio::test]
async fn otlp_files_keep_their_details() {
    let body = export_body();
    // The same spans as one document, as JSON Lines of one span each, and as protobuf.
    let mut lines = String::new();
    for k in 0..2 {
        let mut one = body.clone();
        let spans = one["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array_mut()
            .unwrap();
        spans.remove(1 - k);
        lines.push_str(&serde_json::to_string(&one).unwrap());
        lines.push('\n');
    }
    let json = serde_json::to_vec_pretty(&body).unwrap();
    let (protobuf, _) = lightstep_receiver::bench_support::json_to_protobuf(&json);
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("trace.json", json.clone()),
        ("trace.jsonl", lines.into_bytes()),
        ("trace.pb", protobuf.expect("the export transcodes")),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let store = TraceStore::default();
        let stats = store.read_path(&path, None).unwrap();
        assert_eq!((stats.traces, stats.spans), (1, 2), "{name}");
        let explorer = serve(store).await;
        check_details(&explorer, name).await;
        let found = get_json(&explorer, "/api/search?tag=http.route:/cart").await;
        assert_eq!(found["matched"], 1, "{name}");
        explorer.shutdown().await;
    }

    // A span the receiver would refuse leaves the file to the analysis's readers, which say
    // where it is.
    let mut broken = body.clone();
    broken["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
        .as_object_mut()
        .unwrap()
        .remove("spanId");
    let path = dir.path().join("broken.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&broken).unwrap()).unwrap();
    let error = TraceStore::default()
        .read_path(&path, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("broken.json:"), "{error}");
    assert!(error.contains("spanId"), "{error}");
}

#[tokio::test]
async fn received_traces_keep_their_details() {
    let receiver = Receiver::builder().start().await.expect("receiver starts");
    let store = TraceStore::default();
    let following = store.follow_receiver(receiver.store().clone(), Duration::from_millis(100));
    let explorer = serve(store).await;
    let body = serde_json::to_vec(&export_body()).unwrap();
    assert_eq!(post(receiver.http_addr(), "/v1/traces", &body).await, 200);

    // It appears once the receiver considers it complete.
    let mut listed = Value::Null;
    for _ in 0..300 {
        listed = get_json(&explorer, "/api/search").await;
        if listed["traces"].as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary = &listed["traces"][0];
    assert_eq!(summary["trace_id"], TRACE_ID);
    assert_eq!(summary["root_service"], "checkout");
    assert_eq!(summary["root_operation"], "GET /cart");
    assert_eq!(summary["spans"], 2);
    assert_eq!(summary["errors"], 1);
    assert_eq!(summary["duration_ns"], 900_000_000);

    let span = get_json(
        &explorer,
        &format!("/api/spans/{TRACE_ID}/eee19b7ec3c1b173"),
    )
    .await;
    assert_eq!(span["has_details"], true);
    assert_eq!(span["kind"], "server");
    assert_eq!(
        span["status"],
        json!({"code": "error", "message": "upstream unavailable"})
    );
    assert_eq!(
        span["attributes"],
        json!([
            {"key": "http.route", "type": "string", "value": "/cart"},
            {"key": "http.response.status_code", "type": "int", "value": 503},
            {"key": "big", "type": "int", "value": 9007199254740993i64},
            {"key": "retry", "type": "bool", "value": true},
            {"key": "ratio", "type": "double", "value": 0.25},
            {"key": "tags", "type": "array", "value": ["a", 2]},
        ])
    );
    assert_eq!(span["events"][0]["name"], "cache miss");
    assert_eq!(
        span["events"][0]["time_unix_nano"],
        1_700_000_000_100_000_000u64
    );
    assert_eq!(span["events"][0]["attributes"][0]["value"], "cart:42");
    assert_eq!(span["links"][0]["span_id"], "b7ad6b7169203331");
    assert_eq!(span["links"][0]["attributes"][0]["value"], "batch");
    assert_eq!(span["resource"][0]["value"], "checkout");
    assert_eq!(
        span["resource"][1],
        json!({"key": "host.name", "type": "string", "value": "node-7"})
    );
    assert_eq!(span["scope"]["name"], "lightstep-test");
    assert_eq!(span["scope"]["version"], "1.2.3");

    // In Jaeger's shape: attributes as typed tags (big integers as strings, arrays as JSON
    // text), OTLP fields as the tags OpenTelemetry's translation names, events as logs.
    let jaeger = get_json(&explorer, &format!("/api/traces/{TRACE_ID}")).await;
    let root = jaeger["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["spanID"] == "eee19b7ec3c1b173")
        .unwrap()
        .clone();
    let tag = |key: &str| {
        root["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no tag {key}: {}", root["tags"]))
    };
    assert_eq!(
        tag("http.response.status_code"),
        json!({"key": "http.response.status_code", "type": "int64", "value": 503})
    );
    assert_eq!(tag("big")["value"], "9007199254740993");
    assert_eq!(
        tag("ratio"),
        json!({"key": "ratio", "type": "float64", "value": 0.25})
    );
    assert_eq!(
        tag("tags"),
        json!({"key": "tags", "type": "string", "value": "[\"a\",2]"})
    );
    assert_eq!(tag("span.kind")["value"], "server");
    assert_eq!(
        tag("error"),
        json!({"key": "error", "type": "bool", "value": true})
    );
    assert_eq!(tag("otel.status_code")["value"], "ERROR");
    assert_eq!(
        tag("otel.status_description")["value"],
        "upstream unavailable"
    );
    assert_eq!(tag("otel.scope.name")["value"], "lightstep-test");
    assert_eq!(root["logs"][0]["timestamp"], 1_700_000_000_100_000u64);
    assert_eq!(
        root["logs"][0]["fields"][0],
        json!({"key": "event", "type": "string", "value": "cache miss"})
    );
    assert_eq!(root["references"][0]["refType"], "FOLLOWS_FROM");
    let process = &jaeger["data"][0]["processes"][root["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], "checkout");
    assert_eq!(
        process["tags"],
        json!([{"key": "host.name", "type": "string", "value": "node-7"}])
    );

    // Attributes and resource attributes are searchable.
    for query in [
        "tag=http.route:/cart",
        "tag=host.name:node-7",
        "tag=db.system.name:postgresql",
    ] {
        let found = get_json(&explorer, &format!("/api/search?{query}")).await;
        assert_eq!(found["matched"], 1, "{query}");
    }
    let none = get_json(&explorer, "/api/search?tag=http.route:/other").await;
    assert_eq!(none["matched"], 0);

    following.abort();
    explorer.shutdown().await;
    receiver.shutdown().await;
}

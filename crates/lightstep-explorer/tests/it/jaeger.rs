//! Jaeger's read endpoints over real trace files, checked against the files themselves (Jaeger
//! JSON written by Jaeger UI's own fixtures) and read back by the analysis crate's Jaeger
//! reader.

use std::collections::{BTreeMap, BTreeSet};

use lightstep_analysis::{Status, Trace};
use serde_json::Value;

use crate::*;

const GENAI: &str = "jaeger/genaiTestTrace.json";
const SOCIAL: &str = "deathstarbench/socialnetwork-compose-post.json";

fn duration_ns(trace: &Trace) -> u64 {
    let start = trace.spans.iter().map(|s| s.start_ns()).min().unwrap();
    let end = trace
        .spans
        .iter()
        .map(|s| s.end_ns().max(s.start_ns()))
        .max()
        .unwrap();
    end - start
}

#[tokio::test]
async fn services_and_operations_are_those_of_the_files() {
    let explorer = explorer_over(&[SOCIAL, GENAI]).await;
    let traces: Vec<Trace> = [SOCIAL, GENAI]
        .iter()
        .flat_map(|f| read_fixture(f))
        .collect();
    let services: BTreeSet<String> = traces
        .iter()
        .flat_map(|t| t.spans.iter().map(|s| s.service().to_owned()))
        .collect();
    let answer = get_json(&explorer, "/api/services").await;
    let listed: Vec<String> = serde_json::from_value(answer["data"].clone()).unwrap();
    assert_eq!(listed, services.iter().cloned().collect::<Vec<_>>());
    assert_eq!(answer["total"], services.len());
    assert!(answer["errors"].is_null());

    for service in &services {
        let expected: BTreeSet<String> = traces
            .iter()
            .flat_map(|t| t.spans.iter())
            .filter(|s| s.service() == service)
            .map(|s| s.name().to_owned())
            .collect();
        let path = format!(
            "/api/services/{}/operations",
            percent_encoding::utf8_percent_encode(service, percent_encoding::NON_ALPHANUMERIC)
        );
        let answer = get_json(&explorer, &path).await;
        let listed: Vec<String> = serde_json::from_value(answer["data"].clone()).unwrap();
        assert_eq!(
            listed,
            expected.into_iter().collect::<Vec<_>>(),
            "{service}"
        );
    }
    let none = get_json(&explorer, "/api/services/no-such-service/operations").await;
    assert_eq!(none["data"], serde_json::json!([]));
    explorer.shutdown().await;
}

/// Jaeger UI 2 lists services and operations and searches through Jaeger's v3 API: the same
/// services, operations and traces as the v1 API, in the shapes Jaeger UI checks (its Zod
/// schemas): trace ids of 32 hex digits, times as decimal strings of nanoseconds.
#[tokio::test]
async fn jaeger_ui_2_searches_through_the_v3_api() {
    let explorer = explorer_over(&[SOCIAL, GENAI]).await;
    let v1 = get_json(&explorer, "/api/services").await;
    let v3 = get_json(&explorer, "/api/v3/services").await;
    assert_eq!(v3["services"], v1["data"]);
    let services: Vec<String> = serde_json::from_value(v1["data"].clone()).unwrap();
    assert!(services.len() > 2, "{services:?}");
    let encode = |text: &str| {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let is_hex32 = |id: &str| {
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut seen = 0;
    for service in &services {
        let v1 = get_json(
            &explorer,
            &format!("/api/services/{}/operations", encode(service)),
        )
        .await;
        let v3 = get_json(
            &explorer,
            &format!("/api/v3/operations?service={}", encode(service)),
        )
        .await;
        // An operation comes once per kind; Jaeger UI lists each name once.
        let mut names: Vec<Value> = v3["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|op| {
                assert!(op["spanKind"].is_string(), "{op}");
                op["name"].clone()
            })
            .collect();
        names.dedup();
        assert_eq!(Value::Array(names), v1["data"], "{service}");

        let v1 = get_json(
            &explorer,
            &format!("/api/traces?service={}&limit=1000", encode(service)),
        )
        .await;
        let v3 = get_json(
            &explorer,
            &format!(
                "/api/v3/trace-summaries?query.serviceName={}&query.searchDepth=1000",
                encode(service)
            ),
        )
        .await;
        let mut expected: BTreeMap<String, usize> = BTreeMap::new();
        for trace in v1["data"].as_array().unwrap() {
            let id = trace["traceID"].as_str().unwrap();
            expected.insert(
                format!("{id:0>32}"),
                trace["spans"].as_array().unwrap().len(),
            );
        }
        let mut listed: BTreeMap<String, usize> = BTreeMap::new();
        for summary in v3["summaries"].as_array().unwrap() {
            let id = summary["traceId"].as_str().unwrap().to_owned();
            assert!(is_hex32(&id), "{summary}");
            let start: u64 = summary["minStartTimeUnixNano"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let end: u64 = summary["maxEndTimeUnixNano"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(start <= end && start > 0, "{summary}");
            assert!(
                summary["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["name"] == *service)
            );
            // The link Jaeger UI follows from a result.
            let trace = get_json(&explorer, &format!("/api/traces/{id}")).await;
            assert_eq!(trace["data"].as_array().unwrap().len(), 1, "{id}");
            listed.insert(id, summary["spanCount"].as_u64().unwrap() as usize);
        }
        assert_eq!(listed, expected, "{service}");
        seen += listed.len();
    }
    assert!(seen >= 21, "{seen}");

    // Times in RFC 3339 select as v1's microseconds do.
    let all = "/api/v3/trace-summaries?query.searchDepth=1000";
    let count = |v: &Value| v["summaries"].as_array().unwrap().len();
    let every = count(&get_json(&explorer, all).await);
    assert!(every >= 21);
    let late = get_json(
        &explorer,
        &format!("{all}&query.startTimeMin=2100-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(count(&late), 0);
    let early = get_json(
        &explorer,
        &format!("{all}&query.startTimeMax=1971-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(count(&early), 0);
    let wide = format!(
        "{all}&query.startTimeMin=1971-01-01T00:00:00Z&query.startTimeMax=2100-01-01T00:00:00%2B01:00"
    );
    assert_eq!(count(&get_json(&explorer, &wide).await), every);

    for (path, named) in [
        ("/api/v3/operations", "service"),
        (
            "/api/v3/trace-summaries?query.startTimeMin=1796661638481",
            "query.startTimeMin",
        ),
        (
            "/api/v3/trace-summaries?query.durationMin=soon",
            "query.durationMin",
        ),
    ] {
        let answer = get(&explorer, path).await;
        assert_eq!(answer.status, 400, "{path}");
        assert!(
            answer.text().contains(&format!("`{named}`")),
            "{path}: {}",
            answer.text()
        );
    }
    explorer.shutdown().await;
}

#[tokio::test]
async fn a_trace_comes_back_in_jaeger_shape() {
    let explorer = explorer_over(&[GENAI]).await;
    let original: Value = serde_json::from_slice(&std::fs::read(fixture(GENAI)).unwrap()).unwrap();
    let id = original["traceID"].as_str().unwrap();
    let answer = get_json(&explorer, &format!("/api/traces/{id}")).await;
    assert_eq!(answer["total"], 1);
    assert_eq!(
        (answer["limit"].as_u64(), answer["offset"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(answer["errors"].is_null());
    let trace = &answer["data"][0];
    assert_eq!(trace["traceID"], id);
    let processes = trace["processes"]
        .as_object()
        .expect("processes is an object");

    // Every span of the file, with its ids, times, parent and service.
    let spans = trace["spans"].as_array().unwrap();
    let originals = original["spans"].as_array().unwrap();
    assert_eq!(spans.len(), originals.len());
    let service_of = |doc: &Value, span: &Value| -> String {
        let pid = span["processID"].as_str().unwrap();
        doc["processes"][pid]["serviceName"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let served: BTreeMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["spanID"].as_str().unwrap(), s))
        .collect();
    for o in originals {
        let span_id = o["spanID"].as_str().unwrap();
        let s = served
            .get(span_id)
            .unwrap_or_else(|| panic!("span {span_id} missing"));
        assert_eq!(s["traceID"], id);
        for field in ["operationName", "startTime", "duration"] {
            assert_eq!(s[field], o[field], "{span_id} {field}");
        }
        assert_eq!(s["references"], o["references"], "{span_id}");
        assert_eq!(service_of(trace, s), service_of(&original, o), "{span_id}");
        assert!(s["tags"].is_array() && s["logs"].is_array());
        // Jaeger derives these tags from OTLP fields; the file's own say the same.
        let tag = |span: &Value, key: &str| -> Option<Value> {
            span["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["key"] == key)
                .map(|t| t["value"].clone())
        };
        assert_eq!(tag(s, "span.kind"), tag(o, "span.kind"), "{span_id}");
        // The file's own tags come back, each once, as the file typed them.
        for t in o["tags"].as_array().unwrap() {
            let key = t["key"].as_str().unwrap();
            let served: Vec<&Value> = s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|st| st["key"] == key)
                .collect();
            assert_eq!(served, [t], "{span_id} {key}");
        }
        if tag(o, "error") == Some(Value::Bool(true)) {
            assert_eq!(tag(s, "error"), Some(Value::Bool(true)), "{span_id}");
        }
    }
    // Every process is used and named.
    for (key, process) in processes {
        assert!(key.starts_with('p'), "{key}");
        assert!(process["serviceName"].is_string());
        assert!(spans.iter().any(|s| s["processID"] == key.as_str()));
    }

    // And the analysis crate's Jaeger reader reads it back as the file.
    let served: Vec<Trace> = {
        let mut out = Vec::new();
        let body = serde_json::to_vec(&serde_json::json!({ "data": answer["data"] })).unwrap();
        lightstep_analysis::read::read_traces(
            &body[..],
            "served.json".as_ref(),
            Some(lightstep_analysis::read::Format::JaegerJson),
            |t| {
                out.push(t);
                Ok(())
            },
        )
        .unwrap();
        out
    };
    let from_file = read_fixture(GENAI);
    assert_eq!(served, from_file);
    explorer.shutdown().await;
}

#[tokio::test]
async fn jaeger_files_keep_tags_logs_references_and_process_tags() {
    let trace_id = "00000000000000000000000000c0ffee";
    let document = serde_json::json!({"data": [{
        "traceID": trace_id,
        "spans": [
            {
                "traceID": trace_id, "spanID": "00000000000000a1", "operationName": "GET /cart",
                "startTime": 1_700_000_000_000_000u64, "duration": 900_000, "processID": "p1",
                "references": [],
                "tags": [
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "http.route", "type": "string", "value": "/cart"},
                    {"key": "http.response.status_code", "type": "int64", "value": 503},
                    {"key": "big", "type": "int64", "value": "9007199254740993"},
                    {"key": "ratio", "type": "float64", "value": 0.25},
                    {"key": "retry", "type": "bool", "value": true},
                    {"key": "otel.status_description", "type": "string", "value": "upstream unavailable"},
                ],
                "logs": [{"timestamp": 1_700_000_000_100_000u64, "fields": [
                    {"key": "event", "type": "string", "value": "cache miss"},
                    {"key": "key", "type": "string", "value": "cart:42"},
                ]}],
            },
            {
                "traceID": trace_id, "spanID": "00000000000000a2", "operationName": "SELECT",
                "startTime": 1_700_000_000_200_000u64, "duration": 500_000, "processID": "p2",
                "references": [
                    {"refType": "CHILD_OF", "traceID": trace_id, "spanID": "00000000000000a1"},
                    {"refType": "FOLLOWS_FROM", "traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "b7ad6b7169203331"},
                ],
                "tags": [{"key": "db.system.name", "type": "string", "value": "postgresql"}],
            },
        ],
        "processes": {
            "p1": {"serviceName": "checkout", "tags": [{"key": "host.name", "type": "string", "value": "node-7"}]},
            "p2": {"serviceName": "db", "tags": []},
        },
    }]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.json");
    std::fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
    let store = lightstep_explorer::TraceStore::default();
    let stats = store.read_path(&path, None).unwrap();
    assert_eq!((stats.traces, stats.spans), (1, 2));
    let explorer = serve(store).await;

    let root = get_json(
        &explorer,
        &format!("/api/spans/{trace_id}/00000000000000a1"),
    )
    .await;
    assert_eq!(root["has_details"], true, "{root}");
    assert_eq!(
        root["attributes"],
        serde_json::json!([
            {"key": "http.route", "type": "string", "value": "/cart"},
            {"key": "http.response.status_code", "type": "int", "value": 503},
            {"key": "big", "type": "int", "value": 9007199254740993i64},
            {"key": "ratio", "type": "double", "value": 0.25},
            {"key": "retry", "type": "bool", "value": true},
        ])
    );
    assert_eq!(root["status"]["message"], "upstream unavailable");
    assert_eq!(root["events"][0]["name"], "cache miss");
    assert_eq!(
        root["events"][0]["time_unix_nano"],
        1_700_000_000_100_000_000u64
    );
    assert_eq!(root["events"][0]["attributes"][0]["value"], "cart:42");
    assert_eq!(
        root["resource"],
        serde_json::json!([
            {"key": "service.name", "type": "string", "value": "checkout"},
            {"key": "host.name", "type": "string", "value": "node-7"},
        ])
    );
    let child = get_json(
        &explorer,
        &format!("/api/spans/{trace_id}/00000000000000a2"),
    )
    .await;
    assert_eq!(child["attributes"][0]["value"], "postgresql");
    assert_eq!(child["links"][0]["span_id"], "b7ad6b7169203331");
    let found = get_json(&explorer, "/api/search?tag=http.route:/cart").await;
    assert_eq!(found["matched"], 1);

    // Served in Jaeger's shape, the tags and logs are the file's.
    let answer = get_json(&explorer, &format!("/api/traces/{trace_id}")).await;
    let served = answer["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["spanID"] == "00000000000000a1")
        .unwrap()
        .clone();
    let original = &document["data"][0]["spans"][0];
    for t in original["tags"].as_array().unwrap() {
        let key = t["key"].as_str().unwrap();
        let same: Vec<&Value> = served["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| st["key"] == key)
            .collect();
        assert_eq!(same, [t], "{key}");
    }
    assert_eq!(
        served["logs"][0]["timestamp"],
        original["logs"][0]["timestamp"]
    );
    explorer.shutdown().await;
}

#[tokio::test]
async fn zipkin_files_keep_tags_annotations_and_endpoints() {
    const FILE: &str = "zipkin/yelp.json";
    let explorer = explorer_over(&[FILE]).await;
    let original: Value = serde_json::from_slice(&std::fs::read(fixture(FILE)).unwrap()).unwrap();
    let spans = original.as_array().unwrap();
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for s in spans {
        *counts
            .entry((s["traceId"].as_str().unwrap(), s["id"].as_str().unwrap()))
            .or_default() += 1;
    }
    let mut checked = 0;
    // Spans whose id is their own (a shared id is one span of the client and one of the server).
    for s in spans {
        let (trace, id) = (s["traceId"].as_str().unwrap(), s["id"].as_str().unwrap());
        if counts[&(trace, id)] > 1 {
            continue;
        }
        let served = get_json(&explorer, &format!("/api/spans/{trace:0>32}/{id:0>16}")).await;
        let tags = s["tags"].as_object().cloned().unwrap_or_default();
        let attributes: BTreeMap<String, Value> = served["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone()))
            .collect();
        for (key, value) in &tags {
            if key != "error" {
                assert_eq!(attributes.get(key), Some(value), "{id} {key}: {served}");
            }
        }
        let annotations: Vec<&Value> = s["annotations"]
            .as_array()
            .map(|a| a.iter().map(|a| &a["value"]).collect())
            .unwrap_or_default();
        let events: Vec<&Value> = served["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["name"])
            .collect();
        assert_eq!(events, annotations, "{id}");
        if let Some(name) = s["localEndpoint"]["serviceName"].as_str() {
            assert!(
                served["resource"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["key"] == "localEndpoint.serviceName" && r["value"] == name),
                "{id}: {served}"
            );
        }
        assert_eq!(served["has_details"], true, "{id}");
        checked += usize::from(!tags.is_empty() || !annotations.is_empty());
    }
    assert!(
        checked >= 5,
        "{checked} spans with tags or annotations checked"
    );

    // The two halves of a shared id keep their own tags: told apart by their kind.
    let mut shared = 0;
    for s in spans {
        let (trace, id) = (s["traceId"].as_str().unwrap(), s["id"].as_str().unwrap());
        let Some(kind) = s["kind"].as_str().filter(|_| counts[&(trace, id)] > 1) else {
            continue;
        };
        let answer = get_json(&explorer, &format!("/api/traces/{trace:0>32}")).await;
        let tag_of = |span: &Value, key: &str| {
            span["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["key"] == key)
                .map(|t| t["value"].clone())
        };
        let served = answer["data"][0]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| {
                x["spanID"]
                    .as_str()
                    .is_some_and(|x| x.starts_with(&format!("{id:0>16}")) || x.starts_with(id))
                    && tag_of(x, "span.kind") == Some(Value::from(kind.to_lowercase()))
            })
            .unwrap_or_else(|| panic!("the {kind} half of {id}"))
            .clone();
        for (key, value) in s["tags"].as_object().cloned().unwrap_or_default() {
            if key != "error" {
                assert_eq!(tag_of(&served, &key), Some(value), "{id} {kind} {key}");
            }
        }
        shared += 1;
    }
    assert!(shared >= 2, "{shared} halves of shared spans checked");
    explorer.shutdown().await;
}

/// What files written by hand or by other tools hold: Zipkin fragments of one span (a name
/// without a kind, then the timed side), ids in capitals, tags that are not strings, `null`
/// lists, times as floats; Jaeger's `null` tags and logs.
#[tokio::test]
async fn details_survive_fragments_capitals_nulls_and_odd_values() {
    let zipkin = serde_json::json!([
        {"traceId": "A1", "id": "1", "name": "x", "localEndpoint": {"serviceName": "s"}},
        {"traceId": "A1", "id": "1", "kind": "SERVER", "timestamp": 1_700_000_000_000_000u64,
         "duration": 2000, "localEndpoint": {"serviceName": "s"},
         "tags": {"k": "v", "http.status_code": 200}, "annotations": null},
        {"traceId": "A1", "id": "AB", "parentId": "1", "kind": "CLIENT",
         "timestamp": 1_700_000_000_000_100u64, "duration": 1000,
         "localEndpoint": {"serviceName": "s", "port": 8080}, "tags": {"c": "d"},
         "annotations": [{"timestamp": 1.7000000000002e15, "value": "sent"}]},
    ]);
    let jaeger = serde_json::json!({"data": [{"traceID": "b1", "spans": [
        {"traceID": "b1", "spanID": "1", "operationName": "y", "startTime": 1_700_000_000_000_000u64,
         "duration": 5, "processID": "p1", "tags": null, "logs": null, "references": null},
        {"traceID": "b1", "spanID": "2", "operationName": "z", "startTime": 1_700_000_000_000_001u64,
         "duration": 2, "processID": "p1",
         "references": [{"refType": "CHILD_OF", "traceID": "b1", "spanID": "1"}],
         "tags": [{"key": "t", "type": "string", "value": "u"}],
         "logs": [{"timestamp": 1.700000000000002e15, "fields": null}]},
    ], "processes": {"p1": {"serviceName": "svc", "tags": null}}}]});
    let dir = tempfile::tempdir().unwrap();
    let store = lightstep_explorer::TraceStore::default();
    for (name, doc) in [("zipkin.json", &zipkin), ("jaeger.json", &jaeger)] {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
        store.read_path(&path, None).unwrap();
    }
    let explorer = serve(store).await;
    let attributes = |span: &Value| -> BTreeMap<String, Value> {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone()))
            .collect()
    };
    let zipkin_trace = format!("{:0>32}", "a1");
    let server = get_json(
        &explorer,
        &format!("/api/spans/{zipkin_trace}/0000000000000001"),
    )
    .await;
    let server_attributes = attributes(&server);
    assert_eq!(
        server_attributes.get("k"),
        Some(&Value::from("v")),
        "{server}"
    );
    assert_eq!(
        server_attributes.get("http.status_code"),
        Some(&Value::from("200")),
        "{server}"
    );
    let client = get_json(
        &explorer,
        &format!("/api/spans/{zipkin_trace}/00000000000000ab"),
    )
    .await;
    assert_eq!(
        attributes(&client).get("c"),
        Some(&Value::from("d")),
        "{client}"
    );
    assert_eq!(client["events"][0]["name"], "sent", "{client}");
    assert_eq!(
        client["events"][0]["time_unix_nano"],
        1_700_000_000_000_200_000u64
    );
    assert!(
        client["resource"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == "localEndpoint.port" && r["value"] == 8080),
        "{client}"
    );
    let jaeger_trace = format!("{:0>32}", "b1");
    let child = get_json(
        &explorer,
        &format!("/api/spans/{jaeger_trace}/0000000000000002"),
    )
    .await;
    assert_eq!(
        attributes(&child).get("t"),
        Some(&Value::from("u")),
        "{child}"
    );
    assert_eq!(
        child["events"][0]["time_unix_nano"],
        1_700_000_000_000_002_000u64
    );
    let root = get_json(
        &explorer,
        &format!("/api/spans/{jaeger_trace}/0000000000000001"),
    )
    .await;
    assert_eq!(root["resource"][0]["value"], "svc", "{root}");
    explorer.shutdown().await;
}

#[tokio::test]
async fn search_filters_like_jaeger_does() {
    let explorer = explorer_over(&[SOCIAL, "crisp/err_pattern1/err1.json"]).await;
    let traces: Vec<Trace> = [SOCIAL, "crisp/err_pattern1/err1.json"]
        .iter()
        .flat_map(|f| read_fixture(f))
        .collect();
    let ids = |answer: &Value| -> BTreeSet<String> {
        answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap().to_owned())
            .collect()
    };
    let expect = |keep: &dyn Fn(&Trace) -> bool| -> BTreeSet<String> {
        traces
            .iter()
            .filter(|t| keep(t))
            .map(|t| t.trace_id.to_string())
            .collect()
    };

    let all = get_json(&explorer, "/api/traces").await;
    assert_eq!(ids(&all), expect(&|_| true));

    // By service and operation: any span of the trace.
    let service = traces[0].spans[3].service().to_owned();
    let operation = traces[0].spans[3].name().to_owned();
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let by_service = get_json(&explorer, &format!("/api/traces?service={}", enc(&service))).await;
    assert_eq!(
        ids(&by_service),
        expect(&|t| t.spans.iter().any(|s| s.service() == service))
    );
    let by_operation = get_json(
        &explorer,
        &format!(
            "/api/traces?service={}&operation={}",
            enc(&service),
            enc(&operation)
        ),
    )
    .await;
    assert_eq!(
        ids(&by_operation),
        expect(&|t| t
            .spans
            .iter()
            .any(|s| s.service() == service && s.name() == operation))
    );

    // By duration, between the shortest and the longest trace.
    let mut durations: Vec<u64> = traces.iter().map(duration_ns).collect();
    durations.sort_unstable();
    let (low, high) = (durations[3], durations[durations.len() - 4]);
    let window = get_json(
        &explorer,
        &format!(
            "/api/traces?minDuration={low}ns&maxDuration={}us",
            high / 1000
        ),
    )
    .await;
    assert_eq!(
        ids(&window),
        expect(&|t| duration_ns(t) >= low && duration_ns(t) <= high / 1000 * 1000)
    );

    // Failed spans, as Jaeger UI and Grafana ask for them.
    let errors = get_json(&explorer, "/api/traces?tags=%7B%22error%22%3A%22true%22%7D").await;
    let failed = expect(&|t| t.spans.iter().any(|s| s.status() == Status::Error));
    assert!(!failed.is_empty(), "the fixtures hold failed spans");
    assert_eq!(ids(&errors), failed);
    let errors = get_json(&explorer, "/api/traces?tag=error:true").await;
    assert_eq!(ids(&errors), failed);

    // By id, and a limit (newest first).
    let one = &traces[5].trace_id.to_string();
    let by_id = get_json(&explorer, &format!("/api/traces?traceID={one}")).await;
    assert_eq!(ids(&by_id), BTreeSet::from([one.clone()]));
    let limited = get_json(&explorer, "/api/traces?limit=3").await;
    assert_eq!(limited["data"].as_array().unwrap().len(), 3);
    let mut starts: Vec<u64> = traces
        .iter()
        .map(|t| t.spans.iter().map(|s| s.start_ns()).min().unwrap())
        .collect();
    starts.sort_unstable_by(|a, b| b.cmp(a));
    let first_start = limited["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["startTime"].as_u64().unwrap())
        .min()
        .unwrap();
    assert_eq!(first_start, starts[0] / 1000);

    // A time range in microseconds, as Grafana sends it.
    let from = starts[4] / 1000;
    let range = get_json(
        &explorer,
        &format!("/api/traces?start={from}&end={}", u64::MAX / 1000),
    )
    .await;
    assert_eq!(ids(&range).len(), 5);
    explorer.shutdown().await;
}

#[tokio::test]
async fn errors_are_json_with_the_status_and_the_parameter() {
    let explorer = explorer_over(&[GENAI]).await;
    for (path, status, needle) in [
        ("/api/traces?minDuration=soon", 400, "`minDuration`"),
        ("/api/traces?limit=many", 400, "`limit`"),
        ("/api/traces?start=monday", 400, "`start`"),
        ("/api/traces?tags=%5B1%5D", 400, "`tags`"),
        (
            "/api/critical-path/4a1b2c3d4e5f60718293a4b5c6d7e8f9?mode=fast",
            400,
            "`mode`",
        ),
        (
            "/api/trace-rows/4a1b2c3d4e5f60718293a4b5c6d7e8f9?limit=9999999",
            400,
            "`limit`",
        ),
        ("/api/traces/0123456789abcdef", 404, "`0123456789abcdef`"),
        (
            "/api/critical-path/0123456789abcdef",
            404,
            "`0123456789abcdef`",
        ),
        (
            "/api/spans/4a1b2c3d4e5f60718293a4b5c6d7e8f9/00000000000000ff",
            404,
            "`00000000000000ff`",
        ),
        ("/api/unknown", 404, "/api/unknown"),
    ] {
        let answer = get(&explorer, path).await;
        assert_eq!(answer.status, status, "{path}");
        let body = answer.json();
        assert!(body["data"].is_null(), "{path}");
        assert_eq!(body["errors"][0]["code"], status, "{path}");
        let msg = body["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.contains(needle), "{path}: {msg}");
    }
    explorer.shutdown().await;
}

/// Jaeger's v3 API lists an operation once per span kind it ran with, names a span of no kind
/// `internal`, and keeps the operations of one kind when asked.
#[tokio::test]
async fn v3_operations_carry_their_span_kinds() {
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = |id: &str, name: &str, kind: Option<u8>| {
        let mut span = serde_json::json!({
            "traceId": trace_id, "spanId": id, "name": name,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
        });
        if let Some(kind) = kind {
            span["kind"] = kind.into();
        }
        span
    };
    let resource = |service: &str, spans: Vec<Value>| {
        serde_json::json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"spans": spans}],
        })
    };
    // "work" runs as a server and as a client in `api`, "db" is a client in `other` only.
    let document = serde_json::json!({"resourceSpans": [
        resource("api", vec![
            span("00f067aa0ba902b1", "work", Some(2)),
            span("00f067aa0ba902b2", "work", Some(3)),
            span("00f067aa0ba902b3", "work", Some(2)),
            span("00f067aa0ba902b4", "idle", None),
            span("00f067aa0ba902b5", "send", Some(4)),
        ]),
        resource("other", vec![span("00f067aa0ba902b6", "db", Some(3))]),
    ]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kinds.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let store = lightstep_explorer::TraceStore::default();
    store.read_path(&path, None).unwrap();
    let explorer = serve(store).await;
    let pairs = |answer: &Value| -> Vec<(String, String)> {
        answer["operations"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|op| {
                let text = |key: &str| op[key].as_str().unwrap().to_owned();
                (text("name"), text("spanKind"))
            })
            .collect()
    };
    let owned = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(n, k)| ((*n).to_owned(), (*k).to_owned()))
            .collect()
    };
    let all = get_json(&explorer, "/api/v3/operations?service=api").await;
    assert_eq!(
        pairs(&all),
        owned(&[
            ("idle", "internal"),
            ("send", "producer"),
            ("work", "client"),
            ("work", "server"),
        ])
    );
    for (query, want) in [
        ("spanKind=server", vec![("work", "server")]),
        ("span_kind=CLIENT", vec![("work", "client")]),
        ("spanKind=internal", vec![("idle", "internal")]),
        ("spanKind=consumer", vec![]),
    ] {
        let answer = get_json(
            &explorer,
            &format!("/api/v3/operations?service=api&{query}"),
        )
        .await;
        assert_eq!(pairs(&answer), owned(&want), "{query}");
    }
    let v1 = get_json(&explorer, "/api/services/api/operations").await;
    assert_eq!(v1["data"], serde_json::json!(["idle", "send", "work"]));
    let bad = get(&explorer, "/api/v3/operations?service=api&spanKind=serverr").await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let message = bad.json()["errors"][0]["msg"].to_string();
    assert!(message.contains("`spanKind`"), "{message}");
    assert!(
        message.contains("client, consumer, internal, producer, server"),
        "{message}"
    );
    explorer.shutdown().await;
}

/// Spans whose resource has no `service.name` are, in Jaeger's API, under the service Jaeger
/// gives them, `OTLPResourceNoServiceName`: listed, addressable and searchable by it.
#[tokio::test]
async fn spans_without_a_service_name_are_under_jaegers_name_for_them() {
    const NAME: &str = "OTLPResourceNoServiceName";
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = |id: &str, name: &str| {
        serde_json::json!({
            "traceId": trace_id, "spanId": id, "name": name,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
        })
    };
    let document = serde_json::json!({"resourceSpans": [
        {"resource": {"attributes": []}, "scopeSpans": [{"spans": [span("00f067aa0ba902b7", "nameless work")]}]},
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "named"}}]},
         "scopeSpans": [{"spans": [span("00f067aa0ba902b8", "named work")]}]},
    ]});
    let dir = tempfile::tempdir().unwrap();
    let mut explorers = Vec::new();
    // Read with its details (a small file, through the receiver), and by the analysis's
    // reader alone.
    let path = dir.path().join("nameless.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let store = lightstep_explorer::TraceStore::default();
    store.read_path(&path, None).unwrap();
    explorers.push(serve(store).await);
    let store = lightstep_explorer::TraceStore::default();
    lightstep_analysis::read::read_traces(
        document.to_string().as_bytes(),
        "nameless.json".as_ref(),
        None,
        |t| {
            store.add(t);
            Ok(())
        },
    )
    .expect("the analysis reads it");
    explorers.push(serve(store).await);
    for explorer in &explorers {
        let services = get_json(explorer, "/api/services").await;
        assert_eq!(
            services["data"],
            serde_json::json!([NAME, "named"]),
            "{services}"
        );
        let v3 = get_json(explorer, "/api/v3/services").await;
        assert_eq!(v3["services"], serde_json::json!([NAME, "named"]), "{v3}");
        let operations = get_json(explorer, &format!("/api/services/{NAME}/operations")).await;
        assert_eq!(operations["data"], serde_json::json!(["nameless work"]));
        let v3 = get_json(explorer, &format!("/api/v3/operations?service={NAME}")).await;
        assert_eq!(v3["operations"][0]["name"], "nameless work", "{v3}");
        let found = get_json(explorer, &format!("/api/traces?service={NAME}")).await;
        assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
        let trace = get_json(explorer, &format!("/api/traces/{trace_id}")).await;
        let processes: BTreeSet<&str> = trace["data"][0]["processes"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p["serviceName"].as_str().unwrap())
            .collect();
        assert_eq!(processes, BTreeSet::from([NAME, "named"]), "{trace}");
        let summaries = get_json(
            explorer,
            &format!("/api/v3/trace-summaries?query.serviceName={NAME}&query.startTimeMin=2023-11-14T00:00:00Z&query.startTimeMax=2023-11-16T00:00:00Z"),
        )
        .await;
        let summary = &summaries["summaries"][0];
        assert_eq!(summary["rootServiceName"], NAME, "{summaries}");
        assert!(
            summary["services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == NAME),
            "{summaries}"
        );
    }
}

/// A file exported from Jaeger names such spans' service `OTLPResourceNoServiceName` itself:
/// that name finds them, and spans without a name beside them, as in Jaeger.
#[tokio::test]
async fn jaegers_own_name_for_no_service_finds_both_kinds_of_span() {
    const NAME: &str = "OTLPResourceNoServiceName";
    let jaeger = serde_json::json!({"data": [{
        "traceID": "0000000000000000000000000000a001",
        "spans": [{"traceID": "0000000000000000000000000000a001", "spanID": "00000000000000a1",
                   "operationName": "from jaeger", "references": [], "startTime": 1_700_000_000_000_000u64,
                   "duration": 10, "processID": "p1"}],
        "processes": {"p1": {"serviceName": NAME}},
    }]});
    let otlp = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0000000000000000000000000000b001", "spanId": "00000000000000b1",
        "name": "without a name", "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
    }]}]}]});
    let dir = tempfile::tempdir().unwrap();
    let store = lightstep_explorer::TraceStore::default();
    for (name, document) in [("jaeger.json", jaeger), ("otlp.json", otlp)] {
        let path = dir.path().join(name);
        std::fs::write(&path, document.to_string()).unwrap();
        store.read_path(&path, None).unwrap();
    }
    let explorer = serve(store).await;
    let services = get_json(&explorer, "/api/services").await;
    assert_eq!(services["data"], serde_json::json!([NAME]), "{services}");
    let operations = get_json(&explorer, &format!("/api/services/{NAME}/operations")).await;
    assert_eq!(
        operations["data"],
        serde_json::json!(["from jaeger", "without a name"])
    );
    let found = get_json(&explorer, &format!("/api/traces?service={NAME}")).await;
    assert_eq!(found["data"].as_array().unwrap().len(), 2, "{found}");
    let own = get_json(&explorer, &format!("/api/search?service={NAME}")).await;
    assert_eq!(own["matched"], 2, "{own}");
    explorer.shutdown().await;
}

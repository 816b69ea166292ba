//! The critical path, the contribution and the waterfall rows, each against what the analysis
//! crate computes for the same traces (what `lightstep analyze` prints).

use std::collections::{BTreeMap, BTreeSet};

use lightstep_analysis::aggregate::Aggregator;
use lightstep_analysis::render::JsonWriter;
use lightstep_analysis::{Mode, Options, Span, SpanId, Trace, TraceId, analyze_critical_path};
use lightstep_explorer::TraceStore;
use serde_json::Value;

use crate::*;

const SOCIAL: &str = "deathstarbench/socialnetwork-compose-post.json";
const MESSY: &[&str] = &[
    "jaeger/spanAmongEachOtherGroupedAndSpans.json",
    "jaeger/otlp2jaeger-in.json",
    // OTLP files are read the way the receiver takes exports, with their details.
    "otlp/jaeger-fixture-example_trace.json",
    "otlp/jaeger-fixture-link_attributes_trace.json",
    "otlp/opentelemetry-proto-example-trace.json",
    "zipkin/skew.json",
    // CRISP's traces all have the id `a`: one of them (traces of one id are one trace here).
    "crisp/15.json",
];

fn analyze_json(traces: &[Trace], mode: Mode, aggregate: bool) -> Value {
    let mut writer = JsonWriter::new(Vec::new()).unwrap();
    let mut aggregator = Aggregator::new();
    for trace in traces {
        let analysis = analyze_critical_path(trace, &Options::new(mode));
        writer.trace(&analysis).unwrap();
        aggregator.add(&analysis);
    }
    let aggregate = aggregate.then(|| aggregator.finish());
    serde_json::from_slice(&writer.finish(aggregate.as_ref()).unwrap()).unwrap()
}

#[tokio::test]
async fn the_critical_path_is_one_trace_of_analyze_json() {
    let mut files = vec![SOCIAL];
    files.extend_from_slice(MESSY);
    let explorer = explorer_over(&files).await;
    let traces: Vec<Trace> = files.iter().flat_map(|f| read_fixture(f)).collect();
    for mode in [Mode::Robust, Mode::Jaeger] {
        let expected = analyze_json(&traces, mode, false);
        for (trace, want) in traces.iter().zip(expected["traces"].as_array().unwrap()) {
            let path = format!(
                "/api/critical-path/{}?mode={}",
                trace.trace_id,
                mode.as_str()
            );
            let served = get_json(&explorer, &path).await;
            assert_eq!(&served, want, "{path}");
        }
    }
    // Robust is the default.
    let id = &traces[0].trace_id;
    assert_eq!(
        get_json(&explorer, &format!("/api/critical-path/{id}")).await,
        get_json(&explorer, &format!("/api/critical-path/{id}?mode=robust")).await
    );
    explorer.shutdown().await;
}

#[tokio::test]
async fn the_contribution_is_the_aggregate_of_the_selected_traces() {
    let explorer = explorer_over(&[SOCIAL, "zipkin/skew.json", "crisp/15.json"]).await;
    let traces: Vec<Trace> = [SOCIAL, "zipkin/skew.json", "crisp/15.json"]
        .iter()
        .flat_map(|f| read_fixture(f))
        .collect();
    for mode in [Mode::Robust, Mode::Jaeger] {
        let expected = analyze_json(&traces, mode, true);
        let served = get_json(
            &explorer,
            &format!("/api/contribution?mode={}&limit=1000", mode.as_str()),
        )
        .await;
        assert_eq!(served["aggregate"], expected["aggregate"], "{mode:?}");
        assert_eq!(served["traces"], traces.len());
        // Per service: the same computation, each service one row, adding up to the same.
        let total = |rows: &Value| -> u128 {
            rows.as_array()
                .unwrap()
                .iter()
                .map(|r| r["total_critical_ns"].as_u64().unwrap() as u128)
                .sum()
        };
        assert_eq!(
            total(&served["services"]["operations"]),
            total(&served["aggregate"]["operations"])
        );
        let services: BTreeSet<&str> = served["services"]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["service"].as_str().unwrap())
            .collect();
        let on_paths: BTreeSet<&str> = served["aggregate"]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["service"].as_str().unwrap())
            .collect();
        assert_eq!(services, on_paths);
    }
    // The search's filters select the traces: here those of the social network.
    let service = read_fixture(SOCIAL)[0].spans[0].service().to_owned();
    let social = read_fixture(SOCIAL);
    let expected = analyze_json(&social, Mode::Robust, true);
    let served = get_json(
        &explorer,
        &format!("/api/contribution?service={service}&limit=1000"),
    )
    .await;
    assert_eq!(served["aggregate"], expected["aggregate"]);
    assert_eq!(served["traces"], social.len());
    explorer.shutdown().await;
}

/// A root with `fan` children, each with a chain of `depth` spans: `1 + fan * depth` spans.
fn wide_trace(fan: u64, depth: u64) -> Trace {
    let t = TraceId::from_u128(0xabc);
    let mut spans = vec![
        Span::new(t.clone(), SpanId::from_u64(1), 0, 1_000_000)
            .with_service("front")
            .with_name("GET /"),
    ];
    let mut next = 2u64;
    for f in 0..fan {
        let mut parent = 1u64;
        for d in 0..depth {
            let start = 10 * f + d;
            spans.push(
                Span::new(
                    t.clone(),
                    SpanId::from_u64(next),
                    start,
                    500_000 + 100 * f - d,
                )
                .with_parent(SpanId::from_u64(parent))
                .with_service(format!("svc{}", f % 7))
                .with_name(format!("op{d}")),
            );
            parent = next;
            next += 1;
        }
    }
    Trace::new(t, spans)
}

#[tokio::test]
async fn rows_come_in_windows_with_every_span_once_and_the_path_marked() {
    let trace = wide_trace(50, 40);
    let store = TraceStore::default();
    store.add(trace.clone());
    let explorer = serve(store).await;
    let id = trace.trace_id.to_string();
    for mode in ["robust", "jaeger"] {
        let path = get_json(&explorer, &format!("/api/critical-path/{id}?mode={mode}")).await;
        let critical: BTreeSet<String> = path["critical_spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        let mut seen: BTreeMap<String, Value> = BTreeMap::new();
        let mut offset = 0;
        loop {
            let window = get_json(
                &explorer,
                &format!("/api/trace-rows/{id}?mode={mode}&offset={offset}&limit=300"),
            )
            .await;
            assert_eq!(window["visible_rows"], trace.spans.len());
            assert_eq!(window["spans"], trace.spans.len());
            let rows = window["rows"].as_array().unwrap();
            assert!(rows.len() <= 300);
            for (k, row) in rows.iter().enumerate() {
                assert_eq!(row["row"], offset + k);
                let span_id = row["span_id"].as_str().unwrap().to_owned();
                assert!(seen.insert(span_id, row.clone()).is_none(), "a span twice");
            }
            offset += rows.len();
            if rows.is_empty() || offset >= trace.spans.len() {
                break;
            }
        }
        assert_eq!(seen.len(), trace.spans.len());
        for span in &trace.spans {
            let row = &seen[&span.span_id().to_string()];
            // The declared parent, whose row comes before.
            assert_eq!(
                row["parent_span_id"].as_str(),
                span.parent_id().map(|p| p.to_string()).as_deref()
            );
            if let Some(parent) = span.parent_id() {
                let parent_row = &seen[&parent.to_string()];
                assert_eq!(row["parent_row"], parent_row["row"]);
                assert_eq!(row["depth"], parent_row["depth"].as_u64().unwrap() + 1);
            }
            let on_path = critical.contains(&span.span_id().to_string());
            assert_eq!(row["critical"], on_path, "{} in {mode}", span.span_id());
        }
    }

    // Collapsing the first child of the root hides its chain of 40, and the rows after it move
    // up with their parents' rows.
    let first = get_json(&explorer, &format!("/api/trace-rows/{id}?limit=3")).await;
    let child = first["rows"][1]["span_id"].as_str().unwrap().to_owned();
    let collapsed = get_json(
        &explorer,
        &format!("/api/trace-rows/{id}?offset=1&limit=3&collapsed={child}"),
    )
    .await;
    assert_eq!(collapsed["visible_rows"], trace.spans.len() - 39);
    assert_eq!(collapsed["rows"][0]["span_id"], child.as_str());
    assert_eq!(collapsed["rows"][0]["collapsed"], true);
    assert_eq!(collapsed["rows"][1]["depth"], 1);
    assert_eq!(collapsed["rows"][1]["parent_row"], 0);
    assert_eq!(collapsed["rows"][2]["depth"], 2);
    assert_eq!(collapsed["rows"][2]["parent_row"], 2);
    explorer.shutdown().await;
}

/// A root of 1,001 µs on the critical path between each of its 1,000 children of 900 ns: 1,001
/// sections, one pixel apart or less when drawn 1,000 pixels wide.
#[tokio::test]
async fn sections_closer_than_a_pixel_are_merged_when_the_page_gives_its_width() {
    let t = TraceId::from_u128(0x5ec7);
    let mut spans = vec![Span::new(t.clone(), SpanId::from_u64(1), 0, 1_001_000)];
    for i in 1..=1_000u64 {
        spans.push(
            Span::new(
                t.clone(),
                SpanId::from_u64(i + 1),
                1_000 * i,
                1_000 * i + 900,
            )
            .with_parent(SpanId::from_u64(1)),
        );
    }
    let store = TraceStore::default();
    store.add(Trace::new(t.clone(), spans));
    let explorer = serve(store).await;
    let root_sections = |query: &'static str| {
        let explorer = &explorer;
        let t = t.clone();
        async move {
            let rows = get_json(explorer, &format!("/api/trace-rows/{t}?limit=1{query}")).await;
            rows["rows"][0]["sections"].as_array().unwrap().clone()
        }
    };
    let exact = root_sections("").await;
    assert_eq!(exact.len(), 1_001);
    // At 2,000 pixels a pixel is 500 ns: the gaps of 900 ns stay.
    assert_eq!(root_sections("&px=2000").await, exact);
    // At 1,000 pixels (1,001 ns each) they merge: one section from the root's start to its end.
    let merged = root_sections("&px=1000").await;
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0], serde_json::json!([0, 1_001_000]));
    let bad = get(&explorer, &format!("/api/trace-rows/{t}?px=-1")).await;
    let body = String::from_utf8_lossy(&bad.body);
    assert_eq!(bad.status, 400, "{body}");
    assert!(body.contains("`px`"), "{body}");
    explorer.shutdown().await;
}

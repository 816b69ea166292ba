//! Calling contexts end to end: `lightstep analyze --format folded|flamegraph` on real
//! fixtures, on trace files written here with known times, and from a stand-in Jaeger.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{fixture, json, lightstep, stderr};

const COMPOSE_POST: &str = "deathstarbench/socialnetwork-compose-post.json";
/// 2023-11-14T22:13:20Z, in microseconds: the traces written here start from it.
const BASE_US: u64 = 1_700_000_000_000_000;

/// A span as written here: (id, parent id, service, operation, start and duration in µs from
/// the trace's start).
type SpanRow = (u64, Option<u64>, &'static str, String, u64, u64);

/// A Jaeger JSON document (`{"data": [...]}`) of traces, the `k`-th starting `k` ms after
/// [`BASE_US`].
fn jaeger_doc(traces: &[Vec<SpanRow>]) -> Value {
    let data: Vec<Value> = traces
        .iter()
        .enumerate()
        .map(|(k, spans)| {
            let trace_id = format!("{:032x}", k + 1);
            let start = BASE_US + 1_000 * k as u64;
            let mut processes = serde_json::Map::new();
            let spans: Vec<Value> = spans
                .iter()
                .map(|(id, parent, service, op, offset, duration)| {
                    processes.insert(service.to_string(), json!({ "serviceName": service }));
                    let references = match parent {
                        Some(p) => json!([{
                            "refType": "CHILD_OF",
                            "traceID": trace_id,
                            "spanID": format!("{p:016x}"),
                        }]),
                        None => json!([]),
                    };
                    json!({
                        "traceID": trace_id,
                        "spanID": format!("{id:016x}"),
                        "operationName": op,
                        "references": references,
                        "startTime": start + offset,
                        "duration": duration,
                        "processID": service,
                    })
                })
                .collect();
            json!({ "traceID": trace_id, "spans": spans, "processes": processes })
        })
        .collect();
    json!({ "data": data })
}

fn write(dir: &Path, name: &str, doc: &Value) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", stderr(output));
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// web:GET [0, 100] calls db:query [10, db_end], which calls cache:get [20, 30] (µs).
fn small(db_end: u64) -> Vec<SpanRow> {
    vec![
        (1, None, "web", "GET".into(), 0, 100),
        (2, Some(1), "db", "query".into(), 10, db_end - 10),
        (3, Some(2), "cache", "get".into(), 20, 10),
    ]
}

/// Every line as flamegraph.pl and inferno read it: the stack before the last space, split at
/// `;`, and an integer count after it.
fn parse_folded(text: &str) -> Vec<(Vec<String>, u64)> {
    text.lines()
        .map(|line| {
            let (stack, count) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no count: {line:?}"));
            let count = count
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("count not an integer: {line:?}"));
            (stack.split(';').map(str::to_owned).collect(), count)
        })
        .collect()
}

#[test]
fn folded_output_is_the_hand_computed_sum_per_calling_context() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "small.json",
        &jaeger_doc(&[small(60), small(80)]),
    );
    let text = stdout(&lightstep(&["analyze", "--format", "folded", &file]));
    // web: 10 + 40 then 10 + 20; db: 40 then 60; cache: 10 twice (µs, written in ns).
    assert_eq!(
        text,
        "web:GET 80000\nweb:GET;db:query 100000\nweb:GET;db:query;cache:get 20000\n"
    );
}

#[test]
fn folded_output_of_real_traces_adds_up_to_their_critical_paths() {
    let file = fixture(COMPOSE_POST);
    let text = stdout(&lightstep(&["analyze", "--format", "folded", &file]));
    let lines = parse_folded(&text);
    assert!(lines.len() > 20, "{text}");
    let doc = json(&lightstep(&["analyze", "--format", "json", &file]));
    let critical: u64 = doc["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["critical_path_ns"].as_u64().unwrap())
        .sum();
    assert_eq!(lines.iter().map(|(_, n)| n).sum::<u64>(), critical);
    // Every context starts at the request's entry point, and each frame is service:operation.
    for (stack, _) in &lines {
        assert!(
            stack[0].starts_with("nginx-web-server:/wrk2-api/post/compose"),
            "{stack:?}"
        );
        assert!(stack.iter().all(|frame| frame.contains(':')), "{stack:?}");
    }
    // Lines are sorted and unique, as flamegraph.pl's own collapse tools write them.
    let stacks: Vec<String> = text
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
        .collect();
    let mut sorted = stacks.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(stacks, sorted);
}

#[test]
fn deep_and_recursive_contexts_are_folded_visibly() {
    // A chain of 100 spans alternating two operations (no direct recursion), each 1 µs of
    // its own at either end, under which f calls itself 5 times.
    let mut spans: Vec<SpanRow> = (0..100u64)
        .map(|i| {
            let op = if i % 2 == 0 { "a" } else { "b" };
            (
                i + 1,
                (i > 0).then_some(i),
                "deep",
                op.to_owned(),
                i,
                400 - 2 * i,
            )
        })
        .collect();
    for r in 0..5u64 {
        let id = 101 + r;
        spans.push((id, Some(id - 1), "rec", "f".into(), 100 + r, 200 - 2 * r));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "deep.json", &jaeger_doc(&[spans]));
    let text = stdout(&lightstep(&["analyze", "--format", "folded", &file]));
    let lines = parse_folded(&text);
    let total: u64 = lines.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 400_000, "nothing is dropped: {text}");
    // 64 frames kept, then one frame for the 41 below them (36 of the chain, the recursion's 5).
    let deepest = lines.iter().max_by_key(|(stack, _)| stack.len()).unwrap();
    assert_eq!(deepest.0.len(), 65);
    assert_eq!(deepest.0[64], "…(41 more)");
    // 2 µs of each of the 36 chain spans below, 2 of the first four calls of f, 192 of the last.
    assert_eq!(deepest.1, (36 * 2 + 4 * 2 + 192) * 1000);

    // With room for all of it, the recursion is one frame that says how deep it went.
    let text = stdout(&lightstep(&[
        "analyze",
        "--format",
        "folded",
        "--max-depth",
        "200",
        &file,
    ]));
    let lines = parse_folded(&text);
    let last = lines.iter().max_by_key(|(stack, _)| stack.len()).unwrap();
    assert_eq!(last.0.len(), 101);
    assert_eq!(last.0[100], "rec:f (x5)");
    // Its own time: 1 µs at each end of the first four, all 192 µs of the last.
    assert_eq!(last.1, (4 * 2 + 192) * 1000);
}

#[test]
fn names_cannot_break_folded_lines_or_the_flame_graph() {
    let evil = "GET /a;b\n<script>alert(1)</script>&\u{1b}[2J 12";
    let spans: Vec<SpanRow> = vec![
        (1, None, "web", evil.to_owned(), 0, 100),
        (2, Some(1), "db", "query;x".into(), 10, 50),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "evil.json", &jaeger_doc(&[spans]));
    let text = stdout(&lightstep(&["analyze", "--format", "folded", &file]));
    assert!(!text.contains('\u{1b}'));
    let lines = parse_folded(&text);
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0].0.len(), 1);
    assert_eq!(
        lines[0].0[0],
        r"web:GET /a\u{3b}b\n<script>alert(1)</script>&\u{1b}[2J 12"
    );
    assert_eq!(lines[1].0[1], r"db:query\u{3b}x");
    assert_eq!(lines[0].1 + lines[1].1, 100_000);

    let svg = stdout(&lightstep(&["analyze", "--format", "flamegraph", &file]));
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
    assert!(doc.descendants().any(|n| {
        n.text()
            .is_some_and(|t| t.contains("<script>alert(1)</script>&"))
    }));
}

#[test]
fn flame_graphs_are_well_formed_and_grouped_per_entry_point() {
    let files = [fixture(COMPOSE_POST), fixture("zipkin/messaging2.json")];
    let svg = stdout(&lightstep(&[
        "analyze",
        "--format",
        "flamegraph",
        &files[0],
        &files[1],
    ]));
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    assert!(titles.iter().any(|t| t.starts_with("all — ")), "{titles:?}");
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("nginx-web-server:/wrk2-api/post/compose"))
    );

    let svg = stdout(&lightstep(&[
        "analyze",
        "--format",
        "flamegraph",
        "--by-root",
        &files[0],
        &files[1],
    ]));
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let headings: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("font-weight") == Some("bold"))
        .filter_map(|n| n.text())
        .collect();
    // The title, then one heading per entry point.
    assert_eq!(headings.len(), 3, "{headings:?}");
    assert!(
        headings[1].starts_with("nginx-web-server:/wrk2-api/post/compose")
            || headings[2].starts_with("nginx-web-server:/wrk2-api/post/compose"),
        "{headings:?}"
    );
    assert!(
        doc.descendants()
            .filter(|n| n.has_tag_name("title"))
            .all(|n| !n.text().unwrap_or("").starts_with("all"))
    );
}

#[test]
fn folded_output_from_a_store_is_the_files() {
    let standin = crate::stores::jaeger_standin();
    let from_file = stdout(&lightstep(&[
        "analyze",
        "--format",
        "folded",
        &fixture(COMPOSE_POST),
    ]));
    let from_store = stdout(&lightstep(&[
        "analyze",
        "--format",
        "folded",
        "--jaeger",
        &standin.url,
        "--service",
        "nginx-web-server",
    ]));
    assert_eq!(from_store, from_file);
}

#[test]
fn wrong_combinations_are_usage_errors() {
    let file = fixture(COMPOSE_POST);
    for args in [
        vec!["analyze", "--format", "text", "--by-root", &file],
        vec!["analyze", "--format", "json", "--max-depth", "8", &file],
        vec!["analyze", "--format", "folded", "--max-depth", "0", &file],
        vec!["analyze", "--format", "folded", "--aggregate", &file],
    ] {
        let output = lightstep(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{args:?}: {message}");
    }
}

//! Calling contexts and comparisons end to end: `lightstep analyze --format folded|flamegraph`
//! and `lightstep compare`, on real fixtures, on trace files written here with known times, and
//! from a stand-in Jaeger that answers searches by their time window.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::stores::StandIn;
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

    // The comparison's outputs too: the text escapes the names, the JSON keeps them exactly
    // (with the escape character as `\u001b`), the differential flame graph as text.
    let text = stdout(&lightstep(&["compare", &file, &file]));
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains(r"web: GET /a;b\n<script>"), "{text}");
    let output = lightstep(&["compare", "--format", "json", &file, &file]);
    assert!(!output.stdout.contains(&0x1b));
    let doc = json(&output);
    assert!(
        doc["operations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["operation"] == evil)
    );
    let svg = stdout(&lightstep(&[
        "compare",
        "--format",
        "flamegraph",
        &file,
        &file,
    ]));
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
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
        vec!["compare", &file],
        vec!["compare", &file, &file, &file],
        vec!["compare", "-", "-"],
        vec!["compare", "--alpha", "1.5", &file, &file],
        vec![
            "compare",
            "--jaeger",
            "http://127.0.0.1:9",
            "--service",
            "x",
        ],
        vec![
            "compare",
            "--jaeger",
            "http://127.0.0.1:9",
            "--service",
            "x",
            "--before",
            "2h/1h",
            "--after",
            "1h/1h",
            "--lookback",
            "1h",
        ],
        vec![
            "compare",
            "--jaeger",
            "http://127.0.0.1:9",
            "--service",
            "x",
            "--before",
            "2h/1h",
            "--after",
            "yesterday",
        ],
        vec![
            "compare",
            "--jaeger",
            "http://127.0.0.1:9",
            "--service",
            "x",
            "--before",
            "1h..2h",
            "--after",
            "1h/1h",
        ],
        vec![
            "compare", "--before", "2h/1h", "--after", "1h/1h", &file, &file,
        ],
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
    let output = lightstep(&["analyze", "--format", "flamegraph", "--aggregate", &file]);
    assert!(
        stderr(&output).contains("--aggregate has no flamegraph rendering"),
        "{}",
        stderr(&output)
    );
}

/// The DeathStarBench traces split in two files: the first ten, then the other ten.
fn halves(dir: &Path) -> (String, String) {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(fixture(COMPOSE_POST)).unwrap()).unwrap();
    let traces = doc["data"].as_array().unwrap();
    let before = write(dir, "before.json", &json!({ "data": traces[..10] }));
    let after = write(dir, "after.json", &json!({ "data": traces[10..] }));
    (before, after)
}

#[test]
fn comparing_two_halves_of_real_traces() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = halves(dir.path());
    let doc = json(&lightstep(&[
        "compare", "--format", "json", &before, &after,
    ]));
    assert_eq!(doc["test"], "mann-whitney-u");
    assert_eq!(doc["before"]["traces"], 10);
    assert_eq!(doc["after"]["traces"], 10);
    let operations = doc["operations"].as_array().unwrap();
    assert_eq!(
        operations.len(),
        32,
        "one row per (service, operation) of either half"
    );
    // Per set, the operations' critical-path time adds up to the set's.
    for side in ["before", "after"] {
        let sum: u64 = operations
            .iter()
            .map(|o| o[side]["total_ns"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, doc[side]["critical_ns"].as_u64().unwrap(), "{side}");
    }
    let contexts = doc["contexts"].as_array().unwrap();
    for c in contexts {
        let p = c["test"]["p_value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(c["test"]["change"] != "noise", p < 0.01, "{c}");
    }
    // The same sets with --against, and the text and the differential flame graph.
    let again = json(&lightstep(&[
        "compare",
        "--format",
        "json",
        &before,
        "--against",
        &after,
    ]));
    assert_eq!(again, doc);
    let text = stdout(&lightstep(&["compare", &before, &after]));
    assert!(
        text.starts_with("before: 10 traces, critical path "),
        "{text}"
    );
    assert!(text.contains("rows tested"), "{text}");
    assert!(
        text.contains("\nper operation (service: operation):\n"),
        "{text}"
    );
    assert!(
        text.contains("\nper calling context (its own time):\n"),
        "{text}"
    );
    let svg = stdout(&lightstep(&[
        "compare",
        "--format",
        "flamegraph",
        &before,
        &after,
    ]));
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    // A set compared with itself: nothing changed.
    let same = json(&lightstep(&[
        "compare", "--format", "json", &before, &before,
    ]));
    for row in same["operations"]
        .as_array()
        .unwrap()
        .iter()
        .chain(same["contexts"].as_array().unwrap())
    {
        assert_eq!(row["test"]["change"], "noise", "{row}");
        assert_eq!(row["change_mean_ns"], 0.0);
    }
}

/// 60 traces a set: db:query takes 40, 47 or 54 µs before and 40 more after; cache:get 10 µs
/// throughout, and on one trace in three web:GET also calls auth:check, in both sets.
fn shifted(after: bool) -> Vec<Vec<SpanRow>> {
    (0..60u64)
        .map(|k| {
            let db = if after { 80 } else { 40 } + (k * 7) % 21;
            let mut spans: Vec<SpanRow> = vec![
                (1, None, "web", "GET".into(), 0, 200),
                (2, Some(1), "db", "query".into(), 10, db),
                (3, Some(2), "cache", "get".into(), 12, 10),
            ];
            if k % 3 == 0 {
                spans.push((4, Some(1), "auth", "check".into(), 150 + k % 5, 20));
            }
            spans
        })
        .collect()
}

#[test]
fn a_known_shift_is_found_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let before = write(dir.path(), "before.json", &jaeger_doc(&shifted(false)));
    let after = write(dir.path(), "after.json", &jaeger_doc(&shifted(true)));
    let doc = json(&lightstep(&[
        "compare", "--format", "json", &before, &after,
    ]));
    let verdicts: BTreeMap<String, (String, f64)> = doc["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                format!(
                    "{}:{}",
                    o["service"].as_str().unwrap(),
                    o["operation"].as_str().unwrap()
                ),
                (
                    o["test"]["change"].as_str().unwrap().to_owned(),
                    o["change_mean_ns"].as_f64().unwrap(),
                ),
            )
        })
        .collect();
    // db:query 40 µs slower, web:GET as much faster (its own time is what db left it).
    let (change, mean) = &verdicts["db:query"];
    assert_eq!((change.as_str(), mean.round()), ("slower", 40_000.0));
    let (change, mean) = &verdicts["web:GET"];
    assert_eq!((change.as_str(), mean.round()), ("faster", -40_000.0));
    assert_eq!(verdicts["cache:get"].0, "noise");
    assert_eq!(verdicts["auth:check"].0, "noise");
    let context = doc["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["folded"] == "web:GET;db:query")
        .unwrap();
    assert_eq!(context["test"]["change"], "slower");
    // Its own time: db:query's 40, 47 or 54 µs less cache:get's 10, then 40 µs more.
    assert_eq!(context["before"]["p50_ns"], 37_000);
    assert_eq!(context["after"]["p50_ns"], 77_000);
    assert!(context["test"]["probability_slower"].as_f64().unwrap() > 0.99);

    let svg = stdout(&lightstep(&[
        "compare",
        "--format",
        "flamegraph",
        &before,
        &after,
    ]));
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let fill = |label: &str| {
        doc.descendants()
            .filter(|g| g.has_tag_name("g"))
            .find(|g| {
                g.children().any(|t| {
                    t.has_tag_name("title") && t.text().is_some_and(|t| t.starts_with(label))
                })
            })
            .and_then(|g| g.children().find(|r| r.has_tag_name("rect")))
            .and_then(|r| r.attribute("fill"))
            .unwrap()
            .to_owned()
    };
    assert!(
        fill("db:query —").starts_with("#ff"),
        "red: {}",
        fill("db:query —")
    );
    assert!(fill("web:GET —").ends_with("ff") && !fill("web:GET —").starts_with("#ff"));
    assert_eq!(fill("cache:get —"), "#dddddd");
}

/// A stand-in Jaeger holding the DeathStarBench traces whose searches answer the traces that
/// started in the `start`..`end` window asked for.
fn windowed_jaeger() -> StandIn {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(fixture(COMPOSE_POST)).unwrap()).unwrap();
    let traces = doc["data"].as_array().unwrap().clone();
    StandIn::start(move |request| {
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        if path != "/api/traces" {
            return (404, "text/plain", b"404 page not found".to_vec());
        }
        let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let micros = |key: &str| params[key].parse::<u64>().unwrap();
        let (start, end) = (micros("start"), micros("end"));
        let found: Vec<&Value> = traces
            .iter()
            .filter(|t| {
                let first = t["spans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["startTime"].as_u64().unwrap())
                    .min()
                    .unwrap();
                (start..end).contains(&first)
            })
            .collect();
        (
            200,
            "application/json",
            json!({ "data": found }).to_string().into_bytes(),
        )
    })
}

#[test]
fn comparing_two_windows_of_a_store_is_comparing_their_files() {
    let standin = windowed_jaeger();
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = halves(dir.path());
    let from_files = stdout(&lightstep(&[
        "compare", "--format", "json", &before, &after,
    ]));
    // The first ten traces start from 23:30:58.153 to .804, the others from .829 on.
    let from_store = stdout(&lightstep(&[
        "compare",
        "--format",
        "json",
        "--jaeger",
        &standin.url,
        "--service",
        "nginx-web-server",
        "--before",
        "2023-09-28T23:30:58Z/815ms",
        "--after",
        "2023-09-28T23:30:58.815Z..2023-09-28T23:31:01Z",
    ]));
    assert_eq!(from_store, from_files);
    let requests = standin.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    // Without --limit, each window asks for more than analyze's 20.
    assert!(
        requests.iter().all(|r| r.target.contains("limit=200")),
        "{requests:?}"
    );
}

#[test]
fn an_empty_set_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.json", &json!({ "data": [] }));
    let output = lightstep(&["compare", &fixture(COMPOSE_POST), &empty]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim_end(),
        format!("lightstep: no traces in {empty}")
    );
}

/// The peak resident memory of a running process, from the kernel.
#[cfg(target_os = "linux")]
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
#[cfg(target_os = "linux")]
fn memory_follows_the_contexts_not_the_traces() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    // Each trace: web:GET calls db:query for all its time (the critical path), and 98 short
    // calls beside it with names of their own (500 bytes each, off the path): 40 MB of names
    // over 800 traces, which a run holding traces, or giving every span a context, would keep.
    let trace = |t: u64| {
        let mut spans: Vec<SpanRow> = vec![
            (1, None, "web", "GET".into(), 0, 1_000),
            (2, Some(1), "db", "query".into(), 0, 1_000),
        ];
        for s in 3..=100u64 {
            let name = format!("{t:08}-{s:04}-{}", "x".repeat(486));
            spans.push((s, Some(1), "side", name, 10, 10));
        }
        let doc = jaeger_doc(&[spans]);
        let mut one = doc["data"][0].clone();
        let id = json!(format!("{:032x}", t + 1));
        one["traceID"] = id.clone();
        for span in one["spans"].as_array_mut().unwrap() {
            span["traceID"] = id.clone();
            if let Some(reference) = span["references"].get_mut(0) {
                reference["traceID"] = id.clone();
            }
        }
        one.to_string()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_lightstep"))
        .args([
            "analyze",
            "--format",
            "folded",
            "--input-format",
            "jaeger-json",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"data\":[").unwrap();
    let mut after_first = 0;
    for t in 0..800u64 {
        if t > 0 {
            stdin.write_all(b",").unwrap();
        }
        stdin.write_all(trace(t).as_bytes()).unwrap();
        if t == 79 {
            // All but the pipe's buffer of the first 80 traces has been read and analyzed.
            after_first = peak_rss_kib(pid);
        }
    }
    // Everything is read but the end of the document: the aggregation is at its largest.
    let after_all = peak_rss_kib(pid);
    stdin.write_all(b"]}").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let text = stdout(&output);
    // db:query holds the path all the time: 1 ms in each of 800 traces.
    assert_eq!(text, "web:GET;db:query 800000000\n");
    let grown_mib = after_all.saturating_sub(after_first) / 1024;
    eprintln!("peak resident memory: {after_first} KiB after 80 traces, {after_all} KiB after 800");
    assert!(
        grown_mib < 12,
        "peak memory grew by {grown_mib} MiB from 80 to 800 traces ({after_first} -> {after_all} KiB)"
    );
}

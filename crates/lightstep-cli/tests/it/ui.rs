//! `lightstep ui` as a user runs it: the real binary over real files and standard input, the
//! explorer read over a socket, SIGTERM to stop, its refusals, and its memory bound measured on
//! the process.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::dev::{KillOnDrop, lines, wait_for};
use crate::{BIN, fixture, json, lightstep, stderr};

const SOCIAL: &str = "deathstarbench/socialnetwork-compose-post.json";

/// A running `lightstep ui` and the address it printed.
struct Ui {
    child: KillOnDrop,
    addr: String,
    seen: Vec<String>,
    rx: std::sync::mpsc::Receiver<String>,
}

fn start(args: &[&str], stdin: Option<Vec<u8>>) -> Ui {
    let mut command = Command::new(BIN);
    command
        .arg("ui")
        .args(["--ui", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("run lightstep ui");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let rx = lines(&mut child);
    let mut seen = Vec::new();
    let line = wait_for(&rx, &mut seen, |l| l.contains("the explorer is at"));
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no URL in {line}"))
        .to_owned();
    Ui {
        child: KillOnDrop(child),
        addr,
        seen,
        rx,
    }
}

impl Ui {
    fn get(&self, path: &str) -> (u16, String) {
        let mut tcp = std::net::TcpStream::connect(&self.addr).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            self.child.0.wait().unwrap().success(),
            "SIGTERM is a clean stop; output:\n{}",
            self.seen.join("\n")
        );
        drop(self.rx);
    }
}

#[test]
fn serves_the_files_and_prints_where() {
    let ui = start(
        &[&fixture(SOCIAL), &fixture("jaeger/genaiTestTrace.json")],
        None,
    );
    assert!(ui.addr.starts_with("127.0.0.1:"), "{}", ui.addr);
    let line = ui.seen.last().unwrap();
    assert!(line.contains("21 traces, 717 spans"), "{line}");
    let found = ui.json("/api/search?limit=1000");
    assert_eq!(found["matched"], 21);
    let (status, page) = ui.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("/assets/app.js"), "{page}");
    ui.stop();
}

#[test]
fn a_stop_signal_right_after_the_url_is_a_clean_stop() {
    // A supervisor may stop the process as soon as it printed where it listens: the signal
    // must already be listened for then, or its default action kills the process.
    for _ in 0..20 {
        start(&[&fixture("zipkin/skew.json")], None).stop();
    }
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let input = std::fs::read(fixture(SOCIAL)).unwrap();
    let ui = start(&["-"], Some(input));
    assert_eq!(ui.json("/api/search?limit=1000")["matched"], 20);
    ui.stop();
}

#[test]
fn small_standard_input_keeps_the_details_a_file_keeps() {
    for name in [SOCIAL, "otlp/jaeger-fixture-scope_attributes_trace.json"] {
        let path = fixture(name);
        let from_file = start(&[&path], None);
        let from_stdin = start(&["-"], Some(std::fs::read(&path).unwrap()));
        let listed = from_file.json("/api/search?limit=1000");
        let ids: Vec<String> = listed["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["trace_id"].as_str().unwrap().to_owned())
            .collect();
        assert!(!ids.is_empty(), "{name}: {listed}");
        let mut tags = 0;
        for id in &ids {
            let file = from_file.json(&format!("/api/traces/{id}"));
            tags += file["data"][0]["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["tags"].as_array().map_or(0, Vec::len))
                .sum::<usize>();
            // Compared whole, reported short: a trace's JSON runs to pages.
            let stdin = from_stdin.json(&format!("/api/traces/{id}"));
            assert!(file == stdin, "{name} {id}: not what the file gives");
        }
        assert!(tags > 0, "{name}: the file's spans have details");
        from_file.stop();
        from_stdin.stop();
    }
}

#[test]
fn standard_input_past_the_details_limit_is_read_whole_its_details_looked_up_in_a_copy() {
    // About 9 MB of Jaeger JSON: more than standard input keeps to read details from.
    let mut doc = String::from("{\"data\":[");
    for t in 0..300u64 {
        if t > 0 {
            doc.push(',');
        }
        doc.push_str(&format!("{{\"traceID\":\"{:032x}\",\"spans\":[", t + 1));
        for s in 0..50u64 {
            if s > 0 {
                doc.push(',');
            }
            doc.push_str(&format!(
                "{{\"traceID\":\"{:032x}\",\"spanID\":\"{:016x}\",\"operationName\":\"{}\",\
                 \"references\":[],\"startTime\":{},\"duration\":10,\"processID\":\"p1\",\
                 \"tags\":[{{\"key\":\"k\",\"type\":\"string\",\"value\":\"v\"}}]}}",
                t + 1,
                s + 1,
                "x".repeat(500),
                1_700_000_000_000_000u64 + s
            ));
        }
        doc.push_str("],\"processes\":{\"p1\":{\"serviceName\":\"svc\"}}}");
    }
    doc.push_str("]}");
    assert!(doc.len() > 9 << 20, "{}", doc.len());
    let ui = start(&["-"], Some(doc.into_bytes()));
    let held = ui.json("/api/status");
    assert_eq!(
        (held["traces"].as_u64(), held["spans"].as_u64()),
        (Some(300), Some(15_000))
    );
    // Its details are looked up in the copy kept while it was read, as a large file's are.
    for (trace, span) in [(300u64, 50u64), (1, 1), (150, 7)] {
        let details = ui.json(&format!("/api/spans/{trace:032x}/{span:016x}"));
        assert_eq!(details["has_details"], true, "{details}");
        assert_eq!(
            details["attributes"],
            serde_json::json!([{"key": "k", "type": "string", "value": "v"}]),
            "{details}"
        );
        assert_eq!(details["resource"][0]["value"], "svc", "{details}");
    }
    // The copy has no name anyone else can open.
    #[cfg(unix)]
    {
        let prefix = format!("lightstep-ui-stdin-{}-", ui.pid());
        let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    ui.stop();
}

#[test]
fn the_contribution_is_what_analyze_aggregate_prints() {
    let files = [
        fixture(SOCIAL),
        fixture("zipkin/skew.json"),
        fixture("crisp/15.json"),
    ];
    let ui = start(&files.iter().map(String::as_str).collect::<Vec<_>>(), None);
    for mode in ["robust", "jaeger"] {
        let mut args = vec!["analyze", "--aggregate", "--format", "json", "--mode", mode];
        args.extend(files.iter().map(String::as_str));
        let analyzed = json(&lightstep(&args));
        let served = ui.json(&format!("/api/contribution?mode={mode}&limit=100000"));
        assert_eq!(served["aggregate"], analyzed["aggregate"], "{mode}");
        // And each trace's critical path is the trace analyze prints.
        for trace in analyzed["traces"].as_array().unwrap() {
            let id = trace["trace_id"].as_str().unwrap();
            let path = ui.json(&format!("/api/critical-path/{id}?mode={mode}"));
            assert_eq!(&path, trace, "{id} {mode}");
        }
    }
    ui.stop();
}

#[test]
fn refusals_are_clear() {
    let file = fixture(SOCIAL);
    let out = lightstep(&["ui", "--ui", "0.0.0.0:0", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("0.0.0.0:0") && stderr(&out).contains("not a loopback address"),
        "{}",
        stderr(&out)
    );
    let out = lightstep(&["ui", "--ui", "127.0.0.1:0", "/no/such/file.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/no/such/file.json"),
        "{}",
        stderr(&out)
    );
    let out = lightstep(&["ui", "--ui", "example.com:80", &file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("localhost:PORT"), "{}", stderr(&out));
    let out = lightstep(&["ui", "--ui", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "a file is required");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = lightstep(&["ui", "--ui", &addr, &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&addr) && stderr(&out).contains("another process"),
        "{}",
        stderr(&out)
    );
}

/// The process's resident memory at its peak, from the kernel.
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
fn memory_stays_within_the_span_bound_however_large_the_file() {
    // 400 traces of 100 spans with 512-byte names, about 40 MB of spans once read, in Jaeger
    // JSON: a format the readers hand over one trace at a time.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.json");
    let mut doc = String::from("{\"data\":[");
    for t in 0..400u64 {
        if t > 0 {
            doc.push(',');
        }
        let trace = format!("{:032x}", t + 1);
        doc.push_str(&format!("{{\"traceID\":\"{trace}\",\"spans\":["));
        for s in 0..100u64 {
            if s > 0 {
                doc.push(',');
            }
            let references = if s == 0 {
                String::new()
            } else {
                format!(
                    "{{\"refType\":\"CHILD_OF\",\"traceID\":\"{trace}\",\"spanID\":\"{:016x}\"}}",
                    1
                )
            };
            doc.push_str(&format!(
                "{{\"traceID\":\"{trace}\",\"spanID\":\"{:016x}\",\"operationName\":\"{t:08}-{s:04}-{}\",\
                 \"references\":[{references}],\"startTime\":{},\"duration\":1000,\"processID\":\"p1\"}}",
                s + 1,
                "x".repeat(500),
                1_700_000_000_000_000u64 + s
            ));
        }
        doc.push_str("],\"processes\":{\"p1\":{\"serviceName\":\"svc\"}}}");
    }
    doc.push_str("]}");
    std::fs::write(&path, doc).unwrap();
    let file = path.to_string_lossy().into_owned();

    let bounded = start(&["--max-spans", "2000", &file], None);
    let held = bounded.json("/api/status");
    assert_eq!(held["spans"], 2000);
    assert_eq!(held["evicted_traces"], 380);
    let bounded_kib = peak_rss_kib(bounded.pid());
    // The details of spans of a file this large are looked up in it, reading it again as a
    // stream: within the same bound.
    for (trace, span) in [(400, 100), (400, 1), (381, 50)] {
        let details = bounded.json(&format!("/api/spans/{trace:032x}/{span:016x}"));
        assert_eq!(details["has_details"], true, "{details}");
        assert_eq!(details["resource"][0]["value"], "svc", "{details}");
    }
    let looked_up_kib = peak_rss_kib(bounded.pid());
    bounded.stop();

    let unbounded = start(&[&file], None);
    assert_eq!(unbounded.json("/api/status")["spans"], 40_000);
    let unbounded_kib = peak_rss_kib(unbounded.pid());
    unbounded.stop();

    eprintln!(
        "peak resident memory: {bounded_kib} KiB holding 2,000 spans ({looked_up_kib} KiB after looking up details), {unbounded_kib} KiB holding 40,000"
    );
    // Holding 2,000 spans costs about a megabyte: the bounded process stays near what it
    // takes to run at all, while the measurement does see the 40,000 spans of the other.
    assert!(
        bounded_kib < 48 * 1024,
        "bounded: {bounded_kib} KiB at its peak"
    );
    assert!(
        looked_up_kib < 48 * 1024,
        "bounded: {looked_up_kib} KiB at its peak after looking up spans of the 42 MB file"
    );
    assert!(
        unbounded_kib > bounded_kib + 16 * 1024,
        "bounded {bounded_kib} KiB, unbounded {unbounded_kib} KiB"
    );
}

#[test]
fn serves_the_traces_of_a_store_by_search_and_by_id() {
    let standin = crate::stores::jaeger_standin();
    let ids = crate::stores::trace_ids(SOCIAL);
    let ui = start(
        &[
            "--jaeger",
            &standin.url,
            "--service",
            "nginx-web-server",
            "--limit",
            "5",
        ],
        None,
    );
    let listed = ui.json("/api/traces?limit=100");
    let mut found: Vec<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    let mut expected = ids[..5].to_vec();
    expected.sort();
    assert_eq!(found, expected);
    ui.stop();

    let ui = start(
        &[
            "--jaeger",
            &standin.url,
            "--trace-id",
            &ids[7],
            "--trace-id",
            &ids[3],
        ],
        None,
    );
    let trace = ui.json(&format!("/api/traces/{}", ids[7]));
    assert_eq!(trace["data"][0]["spans"].as_array().unwrap().len(), 33);
    assert_eq!(ui.get(&format!("/api/traces/{}", ids[0])).0, 404);
    ui.stop();

    // A store that fails is a one-line error before anything is served.
    let out = lightstep(&[
        "ui",
        "--jaeger",
        &standin.url,
        "--trace-id",
        "0123456789abcdef",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

/// A JSON Lines file in which one trace's spans are spread over every line, each under a
/// resource of about 4 KB: most of the file belongs to the trace, in resources.
fn spread_trace_file(dir: &std::path::Path, lines: usize) -> std::path::PathBuf {
    let path = dir.join("spread.jsonl");
    let mut text = String::new();
    for i in 0..lines {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("{:016x}", 1)
        };
        let line = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "svc"}},
                {"key": "labels", "value": {"stringValue": format!("{i}-{}", "y".repeat(4000))}},
            ]},
            "scopeSpans": [{"scope": {"name": "s"}, "spans": [{
                "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": format!("{:016x}", i + 1),
                "parentSpanId": parent, "name": "op",
                "startTimeUnixNano": "1000", "endTimeUnixNano": "2000",
                "attributes": [{"key": "position", "value": {"intValue": i.to_string()}}],
            }]}],
        }]});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
#[cfg(target_os = "linux")]
fn looking_up_a_span_of_a_large_file_holds_a_bounded_part_of_it() {
    let dir = tempfile::tempdir().unwrap();
    // 6,000 lines of about 4 KB: 25 MB, nearly all of it the looked-up trace's.
    let path = spread_trace_file(dir.path(), 6_000);
    let ui = start(&[&path.to_string_lossy()], None);
    let before_kib = peak_rss_kib(ui.pid());
    for span in [5u64, 6_000, 1] {
        let details = ui.json(&format!(
            "/api/spans/0af7651916cd43dd8448eb211c80319c/{span:016x}"
        ));
        assert_eq!(details["has_details"], true, "{details}");
        assert_eq!(details["attributes"][0]["value"], span - 1, "{details}");
        assert_eq!(details["resource"][1]["key"], "labels", "{details}");
    }
    let after_kib = peak_rss_kib(ui.pid());
    ui.stop();
    eprintln!("peak resident memory: {before_kib} KiB read, {after_kib} KiB after three lookups");
    assert!(
        after_kib < before_kib + 40 * 1024,
        "{before_kib} KiB after reading, {after_kib} KiB at the peak after the lookups"
    );
}

#[test]
#[cfg(unix)]
fn a_named_pipe_is_read_once_and_its_spans_answer_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("spans.pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap()
            .success()
    );
    // Larger than what is read with every detail, so that only the readers' pass reads it.
    let text = std::fs::read(spread_trace_file(dir.path(), 3_000)).unwrap();
    assert!(text.len() > 8 << 20);
    let writer = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::write(pipe, text).unwrap())
    };
    let ui = start(&[&pipe.to_string_lossy()], None);
    writer.join().unwrap();
    // Nothing to look the details up in: the span answers at once, without them (a second
    // open of the pipe would wait for a writer that never comes).
    let details = ui.json("/api/spans/0af7651916cd43dd8448eb211c80319c/0000000000000005");
    assert_eq!(details["has_details"], false, "{details}");
    assert_eq!(details["span_id"], "0000000000000005");
    ui.stop();
}

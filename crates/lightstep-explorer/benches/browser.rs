//! The explorer's speed in a real browser: headless Chromium driven over WebDriver, the
//! explorer in a process of its own (this executable started again as `serve`, so that its
//! peak resident memory is its own), and the page's own `performance` marks (see the top of
//! `assets/app.js`).
//!
//! Per trace shape and size, over repeated runs (each with a server just started):
//! - first visit: navigation start to the first rows painted with the critical path on them,
//!   the layout built for this very request;
//! - revisit: the same navigation again, the layout cached;
//! - far jumps: the waterfall scrolled to a far place, until every row in view is drawn;
//! - scrolling: the intervals between animation frames while the waterfall scrolls ten rows
//!   a frame for three seconds, and the frames shown with rows not yet there;
//! - memory: the tab's JavaScript heap after a `gc()` (`performance.memory`, exact with
//!   `--enable-precise-memory-info`), the renderer processes' and the server's peak resident
//!   memory (`VmHWM` in `/proc/<pid>/status`).
//!
//! And the search page over 10,000 held traces: the default list (100) and all 10,000 listed
//! (the page draws them a page at a time), and the next page drawn when the list is scrolled to
//! its end.
//!
//! `cargo bench -p lightstep-explorer --bench browser -- [--runs N] [FILTER...]` (a filter is a
//! part of a case's name, such as `random/1m` or `search`). The goals and the latest figures are
//! in `docs/benchmarks.md`; this prints the figures with the goals beside them and checks only
//! that what it measured happened (rows drawn, the critical path among them).

#![allow(missing_docs, unreachable_pub, clippy::print_stdout)]

// The benchmark uses part of the tests' client.
#[allow(dead_code)]
#[path = "../tests/support/webdriver.rs"]
mod webdriver;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lightstep_analysis::{Span, SpanId, Status, Trace, TraceId};
use lightstep_explorer::{Added, Explorer, TraceStore};
use serde_json::{Value, json};

use crate::webdriver::Browser;

const ROW_HEIGHT: f64 = 24.0;
/// The page scales its scrollbar past this many pixels (`MAX_SCROLL_PX` in `app.js`).
const MAX_SCROLL_PX: f64 = 8_000_000.0;
const SCROLL_ROWS_PER_FRAME: f64 = 10.0;
const SCROLL_MS: u64 = 3_000;
/// Where the far jumps go, as fractions of the waterfall's height.
const JUMPS: [f64; 10] = [0.5, 0.05, 0.95, 0.3, 0.7, 1.0, 0.15, 0.85, 0.4, 0.6];
const SEARCH_TRACES: usize = 10_000;

/// The shapes of the generated traces.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A root with every other span as its child, one after the other: every span is on the
    /// critical path.
    Wide,
    /// Each span the only child of the one before: as deep as the trace is large.
    Chain,
    /// Each span under a random earlier span, within its parent's window (a fixed seed).
    Random,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Wide => "wide",
            Shape::Chain => "chain",
            Shape::Random => "random",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Shape::Wide, Shape::Chain, Shape::Random]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// Twelve services and a hundred operations, shared by the spans as a reader shares them.
struct Names {
    services: Vec<Arc<str>>,
    operations: Vec<Arc<str>>,
}

impl Names {
    fn new() -> Self {
        Self {
            services: (0..12).map(|k| Arc::from(format!("service-{k}"))).collect(),
            operations: (0..100)
                .map(|k| Arc::from(format!("GET /api/v1/resource-{k}")))
                .collect(),
        }
    }

    fn span(&self, trace: &TraceId, id: u64, start: u64, end: u64, k: u64) -> Span {
        let span = Span::new(trace.clone(), SpanId::from_u64(id), start, end)
            .with_service(Arc::clone(&self.services[(k % 12) as usize]))
            .with_name(Arc::clone(&self.operations[(k % 100) as usize]));
        if k.is_multiple_of(97) {
            span.with_status(Status::Error)
        } else {
            span
        }
    }
}

/// A small xorshift generator: the same traces on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A trace of `n` spans in `shape`, starting at `t0` (nanoseconds since the epoch).
fn generate(shape: Shape, n: u64, id: TraceId, t0: u64, names: &Names) -> Trace {
    let mut spans = Vec::with_capacity(n as usize);
    match shape {
        Shape::Wide => {
            spans.push(names.span(&id, 1, t0, t0 + 1_000 * n + 1_000, 0));
            for i in 1..n {
                let start = t0 + 1_000 * i;
                spans.push(
                    names
                        .span(&id, i + 1, start, start + 900, i)
                        .with_parent(SpanId::from_u64(1)),
                );
            }
        }
        Shape::Chain => {
            for i in 0..n {
                let span = names.span(&id, i + 1, t0 + 1_000 * i, t0 + 1_000 * (2 * n - i), i);
                spans.push(if i == 0 {
                    span
                } else {
                    span.with_parent(SpanId::from_u64(i))
                });
            }
        }
        Shape::Random => {
            let mut random = Random(0x9e37_79b9_7f4a_7c15 ^ n);
            let mut windows: Vec<(u64, u64)> = Vec::with_capacity(n as usize);
            windows.push((t0, t0 + 10_000_000_000));
            spans.push(names.span(&id, 1, windows[0].0, windows[0].1, 0));
            for i in 1..n {
                let parent = random.below(i);
                let (ps, pe) = windows[parent as usize];
                let start = ps + random.below(pe - ps);
                let end = start + random.below(pe - start);
                windows.push((start, end));
                spans.push(
                    names
                        .span(&id, i + 1, start, end, random.next())
                        .with_parent(SpanId::from_u64(parent + 1)),
                );
            }
        }
    }
    Trace::new(id, spans)
}

// ---- the server process -------------------------------------------------------------------

/// `serve trace SHAPE SPANS` or `serve search TRACES`: holds the traces, serves the explorer
/// on an OS-assigned loopback port, prints `URL TRACE_ID`, and stops when its standard input
/// closes.
fn serve(args: &[String]) {
    let names = Names::new();
    let store = TraceStore::default();
    let t0 = 1_767_225_600_000_000_000; // 2026-01-01
    let first = match args {
        [kind, shape, spans] if kind == "trace" => {
            let shape = Shape::parse(shape).expect("a shape: wide, chain or random");
            let spans: u64 = spans.parse().expect("a number of spans");
            let id = TraceId::from_u128(0xbe9c_4000_0000_0000_0000_0000_0000_0001);
            let trace = generate(shape, spans, id, t0, &names);
            assert_eq!(store.add(trace), Added::New, "the trace fits the store");
            TraceId::from_u128(0xbe9c_4000_0000_0000_0000_0000_0000_0001)
        }
        [kind, traces] if kind == "search" => {
            let traces: u64 = traces.parse().expect("a number of traces");
            let mut random = Random(0x2545_f491_4f6c_dd1d);
            for k in 0..traces {
                let id = TraceId::from_u128(0x5ea4_0000_0000_0000_0000_0000_0000_0000 + k as u128);
                let spans = 5 + random.below(36);
                let trace = generate(Shape::Random, spans, id, t0 + k * 1_000_000_000, &names);
                assert_eq!(store.add(trace), Added::New, "the traces fit the store");
            }
            TraceId::from_u128(0x5ea4_0000_0000_0000_0000_0000_0000_0000)
        }
        _ => panic!("usage: serve trace wide|chain|random SPANS | serve search TRACES"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let explorer = Explorer::builder()
            .with_addr("127.0.0.1:0".parse().unwrap())
            .with_store(store)
            .start()
            .await
            .expect("the explorer starts");
        println!("{} {first}", explorer.url());
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| {
            let mut rest = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut rest);
        })
        .await
        .unwrap();
        explorer.shutdown().await;
    });
}

/// The server, as a child process.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    first_trace: String,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("this executable"))
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the server's URL");
        let (url, first_trace) = line
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("the server printed `{line}`"));
        Self {
            url: url.to_owned(),
            first_trace: first_trace.to_owned(),
            child,
            stdin,
        }
    }

    /// Peak resident memory so far, MiB.
    fn peak_mib(&self) -> f64 {
        status_kib(self.child.id(), "VmHWM").unwrap_or(0) as f64 / 1024.0
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `kB` line of `/proc/<pid>/status`.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The renderer process with the largest peak resident memory (the tab's): its peak and its
/// anonymous (private) resident memory now, MiB.
fn renderer_mib(browser: &Browser) -> Option<(f64, f64)> {
    let group = browser.process_group()?;
    let mut peak = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command's closing parenthesis: state, ppid, pgrp, ...
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        // Chromium rewrites its children's command lines into one string: a substring.
        let is_renderer = cmdline
            .windows(b"--type=renderer".len())
            .any(|w| w == b"--type=renderer");
        if pgrp == Some(group) && is_renderer {
            let mib = |key| status_kib(pid, key).unwrap_or(0) as f64 / 1024.0;
            let this = (mib("VmHWM"), mib("RssAnon"));
            peak = Some(peak.map_or(this, |p: (f64, f64)| if this.0 > p.0 { this } else { p }));
        }
    }
    peak
}

// ---- what the page is asked to do ---------------------------------------------------------

/// Waits for the mark `arguments[0]` and returns it with the navigation's timings and the
/// first request whose URL holds `arguments[1]`.
const AWAIT_MARK: &str = r#"
const [name, request] = arguments;
const done = arguments[arguments.length - 1];
const deadline = performance.now() + 90000;
(function poll() {
  const painted = performance.getEntriesByName(name)[0];
  if (!painted && performance.now() < deadline) return setTimeout(poll, 5);
  if (!painted) return done(null);
  const navigation = performance.getEntriesByType("navigation")[0];
  const fetched = performance.getEntriesByType("resource").find((e) => e.name.includes(request));
  done({
    at: painted.startTime,
    detail: painted.detail,
    document: navigation.responseEnd,
    request: fetched && {
      start: fetched.startTime,
      server: fetched.responseStart - fetched.requestStart,
      end: fetched.responseEnd,
      bytes: fetched.encodedBodySize,
    },
  });
})();
"#;

/// Scrolls the waterfall to each fraction of `arguments[0]` in turn; for each, the time until
/// a redraw with the rows in view all there.
const FAR_JUMPS: &str = r#"
const [fractions] = arguments;
const done = arguments[arguments.length - 1];
const v = document.getElementById("waterfall");
const out = [];
const next = (i) => {
  if (i === fractions.length) return done(out);
  const t0 = performance.now();
  v.scrollTop = Math.round(fractions[i] * (v.scrollHeight - v.clientHeight));
  const top = v.scrollTop;
  (function wait() {
    const m = performance.getEntriesByName("explorer:draw")[0];
    if (m && m.startTime >= t0 && m.detail.top === top && m.detail.missing === 0) {
      out.push(m.startTime - t0);
      return setTimeout(() => next(i + 1), 100);
    }
    if (performance.now() - t0 > 30000) {
      out.push(null);
      return next(i + 1);
    }
    setTimeout(wait, 1);
  })();
};
next(0);
"#;

/// Scrolls the waterfall from the top by `arguments[0]` pixels a frame for `arguments[1]` ms;
/// the intervals between frames, how many frames showed a redraw with rows missing, and what
/// the long frames spent their time on (Chromium's Long Animation Frames: script, then style,
/// layout and paint; the rest of a long frame is time the page did not run).
const SCROLL: &str = r#"
const [step, ms] = arguments;
const done = arguments[arguments.length - 1];
const v = document.getElementById("waterfall");
v.scrollTop = 0;
const frames = [];
let blank = 0;
let last = null;
let start = null;
const long = [];
const observer = new PerformanceObserver((list) => long.push(...list.getEntries()));
observer.observe({ type: "long-animation-frame" });
const finish = () => {
  long.push(...observer.takeRecords());
  observer.disconnect();
  const inRun = long.filter((e) => e.startTime >= start);
  done({ frames, blank, rows: v.scrollTop, long: inRun.map((e) => ({
    duration: e.duration,
    script: e.scripts.reduce((sum, s) => sum + s.duration, 0),
    render: e.renderStart ? e.startTime + e.duration - e.renderStart : 0,
    styleAndLayout: e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0,
    scripts: e.scripts.map((s) => [s.invoker, Math.round(s.duration), Math.round(s.forcedStyleAndLayoutDuration)]),
  })) });
};
setTimeout(() => requestAnimationFrame(function frame(ts) {
  if (last !== null) {
    frames.push(ts - last);
    const m = performance.getEntriesByName("explorer:draw")[0];
    if (m && m.detail.missing > 0) blank += 1;
  } else {
    start = ts;
  }
  last = ts;
  if (ts - start >= ms) return finish();
  v.scrollTop += step;
  requestAnimationFrame(frame);
}), 300);
"#;

/// The tab's JavaScript heap after a garbage collection, and the rows the page holds as
/// elements.
const MEMORY: &str = r##"
if (typeof gc === "function") gc();
return {
  heap: performance.memory.usedJSHeapSize,
  elements: document.querySelectorAll("#waterfall [data-span-id], #trace-list tr[data-trace-id]").length,
};
"##;

/// Scrolls the search list to its end `arguments[0]` times; for each, the time until the next
/// page of rows is drawn.
const LIST_MORE: &str = r##"
const [times] = arguments;
const done = arguments[arguments.length - 1];
const count = () => document.querySelectorAll("#trace-list tr[data-trace-id]").length;
const out = [];
const next = (i) => {
  if (i === times) return done(out);
  const before = count();
  const t0 = performance.now();
  window.scrollTo(0, document.body.scrollHeight);
  (function wait() {
    if (count() > before) {
      out.push(performance.now() - t0);
      return setTimeout(() => next(i + 1), 100);
    }
    if (performance.now() - t0 > 30000) return done(out);
    setTimeout(wait, 1);
  })();
};
next(0);
"##;

// ---- the cases ----------------------------------------------------------------------------

/// One run of a trace case.
#[derive(Debug, Default)]
struct TraceRun {
    first_ms: f64,
    first_server_ms: f64,
    revisit_ms: f64,
    jumps_ms: Vec<f64>,
    frames_ms: Vec<f64>,
    blank_frames: usize,
    /// Frames over 50 ms as Chromium reports them: (duration, script, rendering), ms.
    long_frames: Vec<(f64, f64, f64)>,
    heap_mib: f64,
    elements: u64,
    server_mib: f64,
    renderer_peak_mib: f64,
    renderer_anon_mib: f64,
}

async fn await_mark(browser: &Browser, mark: &str, request: &str) -> Value {
    let found = browser.js_async(AWAIT_MARK, json!([mark, request])).await;
    assert!(!found.is_null(), "the page did not record {mark}");
    found
}

async fn trace_run(browser: &Browser, shape: Shape, spans: u64) -> TraceRun {
    let server = Server::start(&["trace", shape.name(), &spans.to_string()]);
    let page = format!("{}trace/{}", server.url, server.first_trace);
    let mut run = TraceRun::default();

    browser.goto(&page).await;
    let first = await_mark(browser, "explorer:rows-painted", "/api/trace-rows/").await;
    assert!(
        first["detail"]["critical"].as_u64() > Some(0),
        "the first rows carry the critical path: {first}"
    );
    run.first_ms = first["at"].as_f64().unwrap();
    run.first_server_ms = first["request"]["server"].as_f64().unwrap_or(f64::NAN);

    browser.goto(&page).await;
    let again = await_mark(browser, "explorer:rows-painted", "/api/trace-rows/").await;
    run.revisit_ms = again["at"].as_f64().unwrap();

    let jumps = browser.js_async(FAR_JUMPS, json!([JUMPS])).await;
    run.jumps_ms = jumps
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j.as_f64().expect("every far jump was drawn"))
        .collect();

    let scale = (spans as f64 * ROW_HEIGHT / MAX_SCROLL_PX).max(1.0);
    let step = SCROLL_ROWS_PER_FRAME * ROW_HEIGHT / scale;
    let scrolled = browser.js_async(SCROLL, json!([step, SCROLL_MS])).await;
    run.frames_ms = scrolled["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    run.blank_frames = scrolled["blank"].as_u64().unwrap() as usize;
    if verbose() {
        println!("long frames: {}", scrolled["long"]);
    }
    run.long_frames = scrolled["long"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_f64().unwrap_or(0.0);
            (f("duration"), f("script"), f("render"))
        })
        .collect();

    let memory = browser.js(MEMORY, json!([])).await;
    run.heap_mib = memory["heap"].as_f64().unwrap() / (1024.0 * 1024.0);
    run.elements = memory["elements"].as_u64().unwrap();
    run.server_mib = server.peak_mib();
    (run.renderer_peak_mib, run.renderer_anon_mib) =
        renderer_mib(browser).unwrap_or((f64::NAN, f64::NAN));
    server.stop();
    run
}

/// One run of the search case.
#[derive(Debug, Default)]
struct SearchRun {
    default_ms: f64,
    default_rows: u64,
    all_ms: f64,
    all_server_ms: f64,
    all_rows: u64,
    all_listed: u64,
    more_ms: Vec<f64>,
    all_bytes: f64,
    heap_mib: f64,
    server_mib: f64,
}

async fn search_run(browser: &Browser) -> SearchRun {
    let server = Server::start(&["search", &SEARCH_TRACES.to_string()]);
    let mut run = SearchRun::default();
    browser.goto(&format!("{}search", server.url)).await;
    let listed = await_mark(browser, "explorer:list-painted", "/api/search").await;
    run.default_ms = listed["at"].as_f64().unwrap();
    run.default_rows = listed["detail"]["rows"].as_u64().unwrap();

    browser
        .goto(&format!("{}search?limit={SEARCH_TRACES}", server.url))
        .await;
    let listed = await_mark(browser, "explorer:list-painted", "/api/search").await;
    run.all_ms = listed["at"].as_f64().unwrap();
    run.all_rows = listed["detail"]["rows"].as_u64().unwrap();
    run.all_listed = listed["detail"]["listed"].as_u64().unwrap();
    run.more_ms = browser
        .js_async(LIST_MORE, json!([5]))
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    run.all_server_ms = listed["request"]["server"].as_f64().unwrap_or(f64::NAN);
    run.all_bytes = listed["request"]["bytes"].as_f64().unwrap_or(f64::NAN);
    let memory = browser.js(MEMORY, json!([])).await;
    run.heap_mib = memory["heap"].as_f64().unwrap() / (1024.0 * 1024.0);
    run.server_mib = server.peak_mib();
    server.stop();
    run
}

// ---- figures ------------------------------------------------------------------------------

fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

fn worst(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `median / worst`.
fn mw(values: &[f64]) -> String {
    format!("{:.0} / {:.0}", median(values), worst(values))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn print_trace_case(name: &str, spans: u64, runs: &[TraceRun], load: (&str, &str)) {
    let pick = |f: fn(&TraceRun) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let first = pick(|r| r.first_ms);
    let goal = match spans {
        0..=10_000 => 300.0,
        10_001..=100_000 => 1_500.0,
        _ => 2_000.0,
    };
    let jumps: Vec<f64> = runs.iter().flat_map(|r| r.jumps_ms.clone()).collect();
    let frames: Vec<f64> = runs.iter().flat_map(|r| r.frames_ms.clone()).collect();
    let long_frames = frames.iter().filter(|&&f| f > 50.0).count();
    let blank: usize = runs.iter().map(|r| r.blank_frames).sum();
    println!(
        "\n## {name} ({} runs; load average {} at the start, {} at the end)",
        runs.len(),
        load.0,
        load.1
    );
    println!("| measure | median / worst |");
    println!("|---|---|");
    println!(
        "| first visit: navigation to first rows painted, ms (goal under {goal:.0}: {}) | {} |",
        verdict(worst(&first) < goal),
        mw(&first)
    );
    println!(
        "| of which the server's answer to the first rows (layout built), ms | {} |",
        mw(&pick(|r| r.first_server_ms))
    );
    println!(
        "| revisit, layout cached, ms | {} |",
        mw(&pick(|r| r.revisit_ms))
    );
    println!(
        "| far jump to every row in view drawn, ms ({} jumps) | {} |",
        jumps.len(),
        mw(&jumps)
    );
    println!(
        "| frame interval scrolling {SCROLL_ROWS_PER_FRAME} rows a frame, ms ({} frames; p95 {:.1}; over 50 ms: {long_frames}) | {:.1} / {:.1} |",
        frames.len(),
        percentile(&frames, 0.95),
        median(&frames),
        worst(&frames)
    );
    println!(
        "| frames shown with rows not yet there | {blank} of {} |",
        frames.len()
    );
    let long: Vec<(f64, f64, f64)> = runs.iter().flat_map(|r| r.long_frames.clone()).collect();
    let part = |f: fn(&(f64, f64, f64)) -> f64| long.iter().map(f).collect::<Vec<f64>>();
    println!(
        "| long animation frames (over 50 ms): {}; their script / rendering / rest, ms | {} ; {} ; {} |",
        long.len(),
        mw(&part(|l| l.1)),
        mw(&part(|l| l.2)),
        mw(&part(|l| l.0 - l.1 - l.2)),
    );
    println!(
        "| tab: JavaScript heap after gc, MiB | {:.1} / {:.1} |",
        median(&pick(|r| r.heap_mib)),
        worst(&pick(|r| r.heap_mib))
    );
    println!(
        "| tab: span rows in the page | {} / {} |",
        median(&pick(|r| r.elements as f64)),
        worst(&pick(|r| r.elements as f64))
    );
    println!(
        "| tab: renderer's private resident memory after the run (RssAnon), MiB | {:.0} / {:.0} |",
        median(&pick(|r| r.renderer_anon_mib)),
        worst(&pick(|r| r.renderer_anon_mib))
    );
    println!(
        "| tab: renderer's peak resident memory, shared pages included (VmHWM; one browser per case), MiB | {:.0} / {:.0} |",
        median(&pick(|r| r.renderer_peak_mib)),
        worst(&pick(|r| r.renderer_peak_mib))
    );
    println!(
        "| server: peak resident (VmHWM), MiB | {:.0} / {:.0} |",
        median(&pick(|r| r.server_mib)),
        worst(&pick(|r| r.server_mib))
    );
}

fn print_search_case(runs: &[SearchRun], load: (&str, &str)) {
    let pick = |f: fn(&SearchRun) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let all = pick(|r| r.all_ms);
    let default = pick(|r| r.default_ms);
    println!(
        "\n## search/10k-traces ({} runs; load average {} at the start, {} at the end)",
        runs.len(),
        load.0,
        load.1
    );
    println!("| measure | median / worst |");
    println!("|---|---|");
    println!(
        "| default list ({} rows): navigation to list painted, ms (goal under 500: {}) | {} |",
        runs[0].default_rows,
        verdict(worst(&default) < 500.0),
        mw(&default)
    );
    println!(
        "| all {} listed ({} rows drawn at first): navigation to list painted, ms (goal under 500: {}) | {} |",
        runs[0].all_listed,
        runs[0].all_rows,
        verdict(worst(&all) < 500.0),
        mw(&all)
    );
    println!(
        "| of which the server's answer, ms ({:.0} KiB) | {} |",
        runs[0].all_bytes / 1024.0,
        mw(&pick(|r| r.all_server_ms))
    );
    let more: Vec<f64> = runs.iter().flat_map(|r| r.more_ms.clone()).collect();
    println!(
        "| scrolled to the end of the list: next page drawn, ms ({} scrolls) | {} |",
        more.len(),
        mw(&more)
    );
    println!(
        "| tab: JavaScript heap after gc, all listed, MiB | {:.1} / {:.1} |",
        median(&pick(|r| r.heap_mib)),
        worst(&pick(|r| r.heap_mib))
    );
    println!(
        "| server: peak resident (VmHWM), MiB | {:.0} / {:.0} |",
        median(&pick(|r| r.server_mib)),
        worst(&pick(|r| r.server_mib))
    );
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--verbose`: each long frame's scripts, as Chromium reports them.
fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        serve(&args[1..]);
        return;
    }
    let mut runs = 5usize;
    let mut filters = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--bench" => {}
            "--verbose" => VERBOSE.store(true, std::sync::atomic::Ordering::Relaxed),
            "--runs" => {
                runs = rest
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--runs takes a number")
            }
            filter => filters.push(filter.to_owned()),
        }
    }
    let mut cases: Vec<(String, Option<(Shape, u64)>)> = Vec::new();
    for (spans, label) in [(10_000u64, "10k"), (100_000, "100k"), (1_000_000, "1m")] {
        for shape in [Shape::Wide, Shape::Chain, Shape::Random] {
            cases.push((
                format!("trace/{}/{label}", shape.name()),
                Some((shape, spans)),
            ));
        }
    }
    cases.push(("search/10k-traces".to_owned(), None));
    cases.retain(|(name, _)| {
        filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
    });

    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let chromium = Command::new("chromium")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "# explorer in the browser: {date}, {} cores, {chromium}, {runs} runs per case",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        for (name, case) in cases {
            let Some(browser) =
                Browser::start_with(&["--enable-precise-memory-info", "--js-flags=--expose-gc"])
                    .await
            else {
                return;
            };
            let before = load_average();
            match case {
                Some((shape, spans)) => {
                    let mut done = Vec::new();
                    for _ in 0..runs {
                        done.push(trace_run(&browser, shape, spans).await);
                    }
                    print_trace_case(&name, spans, &done, (&before, &load_average()));
                }
                None => {
                    let mut done = Vec::new();
                    for _ in 0..runs {
                        done.push(search_run(&browser).await);
                    }
                    print_search_case(&done, (&before, &load_average()));
                }
            }
            browser.quit().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

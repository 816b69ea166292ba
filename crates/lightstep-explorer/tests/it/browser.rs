//! The pages in a real browser (headless Chromium over WebDriver), over traces from the real
//! exporter and the Python OpenTelemetry SDK through the embedded receiver, and from files:
//! the list, the waterfall (every span once under its parent, the critical path marked),
//! filters, collapse, keyboard, the mode switch, the back button, and payloads that must not
//! run.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lightstep_analysis::{Span, SpanId, Trace, TraceId};
use lightstep_config::{EnvSnapshot, LightstepConfig, Protocol};
use lightstep_explorer::{RunningExplorer, TraceStore};
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::{Receiver, RunningReceiver};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use serde_json::{Value, json};

use crate::webdriver::{Browser, keys};
use crate::*;

const GENAI: &str = "jaeger/genaiTestTrace.json";
const SOCIAL: &str = "deathstarbench/socialnetwork-compose-post.json";

/// Waits until the details pane of the Jaeger GenAI fixture's first span shows the file's
/// `http.route` tag.
pub(crate) async fn wait_for_genai_details(browser: &Browser) {
    browser
        .wait_for(
            "the file's tags in the span's details",
            "const d = document.querySelector('#details [data-details-span-id=\"0000000000000001\"]');
             return d !== null && d.closest('#details').textContent.includes('http.route') &&
                    d.closest('#details').textContent.includes('/api/graphql');",
            json!([]),
        )
        .await;
}

/// A receiver whose completed traces go into an explorer, which also serves `files`.
struct Setup {
    receiver: RunningReceiver,
    explorer: RunningExplorer,
    following: tokio::task::JoinHandle<()>,
}

impl Setup {
    async fn new(files: &[&str]) -> Self {
        let receiver = Receiver::builder().start().await.expect("receiver starts");
        let store = TraceStore::default();
        for file in files {
            store.read_path(&fixture(file), None).unwrap();
        }
        let following = store.follow_receiver(receiver.store().clone(), Duration::from_millis(200));
        let explorer = serve(store).await;
        Self {
            receiver,
            explorer,
            following,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.explorer.url(), path.trim_start_matches('/'))
    }

    /// Waits until the explorer holds `traces` traces.
    async fn wait_for_traces(&self, traces: usize) {
        for _ in 0..600 {
            if self.explorer.store().stats().traces >= traces {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "hang guard: the explorer holds {} traces, not {traces}",
            self.explorer.store().stats().traces
        );
    }

    async fn stop(self) {
        self.following.abort();
        self.explorer.shutdown().await;
        self.receiver.shutdown().await;
    }
}

/// The real exporter, sending as `service` to the receiver over OTLP/gRPC.
fn exporter(receiver: &RunningReceiver, service: &str) -> LightstepExporter {
    let config = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_protocol(Protocol::Grpc)
        .with_otlp_endpoint(receiver.grpc_endpoint())
        .with_service_name(service)
        .with_scheduled_delay(Duration::from_millis(50))
        .with_timeout(Duration::from_secs(5))
        .build()
        .expect("valid configuration");
    LightstepExporter::new(config).expect("exporter builds")
}

/// Sends `count` shop traces through two exporters (two services); returns their trace ids.
///
/// `GET /cart` (web-frontend, server) ── auth (web-frontend)
///                                     ├─ SELECT carts (cart-db, client) ── scan (cart-db)
///                                     └─ render (web-frontend, error)
async fn send_shop_traces(receiver: &RunningReceiver, count: usize) -> Vec<String> {
    let web = exporter(receiver, "web-frontend");
    let db = exporter(receiver, "cart-db");
    let (web_tracer, db_tracer) = (web.tracer(), db.tracer());
    let pause = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    let mut ids = Vec::new();
    for k in 0..count as u64 {
        let root = web_tracer
            .span_builder("GET /cart")
            .with_kind(SpanKind::Server)
            .with_attributes([KeyValue::new("http.route", "/cart")])
            .start(&web_tracer);
        ids.push(root.span_context().trace_id().to_string());
        let cx = Context::current_with_span(root);
        let mut auth = web_tracer.start_with_context("auth", &cx);
        pause(2).await;
        auth.end();
        let mut select = db_tracer
            .span_builder("SELECT carts")
            .with_kind(SpanKind::Client)
            .with_attributes([KeyValue::new("db.system.name", "postgresql")])
            .start_with_context(&db_tracer, &cx);
        let select_cx = cx.with_remote_span_context(select.span_context().clone());
        pause(3 + 4 * k).await;
        let mut scan = db_tracer.start_with_context("scan", &select_cx);
        pause(2).await;
        scan.end();
        select.end();
        let mut render = web_tracer.start_with_context("render", &cx);
        pause(2).await;
        render.set_status(Status::error("template missing"));
        render.end();
        cx.span().end();
    }
    web.shutdown().await.expect("web spans delivered");
    db.shutdown().await.expect("db spans delivered");
    ids
}

/// Every span row of the waterfall, from top to bottom, scrolling the viewport as a user does:
/// `(row, span id, parent span id, critical)`. Checks along the way that the page holds only
/// rows near the screen.
async fn scan_waterfall(
    browser: &Browser,
    rows: usize,
) -> Vec<(usize, String, Option<String>, bool)> {
    let mut seen: BTreeMap<usize, (String, Option<String>, bool)> = BTreeMap::new();
    let mut most_in_page = 0;
    let mut at = 0;
    while at < rows {
        browser
            .js(
                "document.getElementById('waterfall').scrollTop = arguments[0] * 24",
                json!([at]),
            )
            .await;
        let found = browser
            .wait_for(
                &format!("row {at} drawn"),
                "const v = document.getElementById('waterfall');
                 // Drawn since the scroll: the rows' layer follows the scroll position.
                 if (parseFloat(v.querySelector('.rows').style.top) !== v.scrollTop) return null;
                 if (!v.querySelector(`[data-row=\"${arguments[0]}\"]`)) return null;
                 return [...v.querySelectorAll('[data-span-id]')].map(r =>
                   [Number(r.dataset.row), r.dataset.spanId, r.dataset.parentSpanId || null,
                    r.dataset.critical === 'true']);",
                json!([at]),
            )
            .await;
        let found = found.as_array().unwrap();
        most_in_page = most_in_page.max(found.len());
        for r in found {
            let row = r[0].as_u64().unwrap() as usize;
            let entry = (
                r[1].as_str().unwrap().to_owned(),
                r[2].as_str().map(str::to_owned),
                r[3].as_bool().unwrap(),
            );
            if let Some(before) = seen.insert(row, entry.clone()) {
                assert_eq!(before, entry, "row {row} changed while scrolling");
            }
        }
        at += 20;
    }
    if rows > 400 {
        assert!(
            most_in_page < 200,
            "the page held {most_in_page} rows of {rows}: the waterfall is not virtualized"
        );
    }
    seen.into_iter()
        .map(|(row, (id, parent, critical))| (row, id, parent, critical))
        .collect()
}

/// The spans on the critical path, as the API gives them.
async fn critical_spans(explorer: &RunningExplorer, trace: &str, mode: &str) -> BTreeSet<String> {
    get_json(explorer, &format!("/api/critical-path/{trace}?mode={mode}")).await["critical_spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Checks the waterfall of `trace` in the page against the trace and the API.
async fn check_waterfall(browser: &Browser, explorer: &RunningExplorer, trace: &Trace, mode: &str) {
    let id = trace.trace_id.to_string();
    let rows = scan_waterfall(browser, trace.spans.len()).await;
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..trace.spans.len()).collect::<Vec<_>>(),
        "one row per span of {id} in {mode} mode: {rows:?}"
    );
    let shown: BTreeMap<&str, (&Option<String>, bool)> =
        rows.iter().map(|r| (r.1.as_str(), (&r.2, r.3))).collect();
    assert_eq!(shown.len(), trace.spans.len(), "every span once");
    for span in &trace.spans {
        let (parent, _) = shown
            .get(span.span_id().to_string().as_str())
            .unwrap_or_else(|| panic!("span {} missing", span.span_id()));
        assert_eq!(
            parent.as_deref(),
            span.parent_id().map(|p| p.to_string()).as_deref(),
            "parent of {}",
            span.span_id()
        );
    }
    let marked: BTreeSet<String> = rows.iter().filter(|r| r.3).map(|r| r.1.clone()).collect();
    assert_eq!(marked, critical_spans(explorer, &id, mode).await, "{mode}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_shows_every_trace() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let setup = Setup::new(&[SOCIAL, GENAI]).await;
    let sent = send_shop_traces(&setup.receiver, 3).await;
    setup.wait_for_traces(24).await;
    let mut expected: BTreeSet<String> = [SOCIAL, GENAI]
        .iter()
        .flat_map(|f| read_fixture(f))
        .map(|t| t.trace_id.to_string())
        .collect();
    expected.extend(sent);
    browser.goto(&setup.url("/search")).await;
    let listed = browser
        .wait_for(
            "24 traces listed",
            "const rows = [...document.querySelectorAll('#trace-list [data-trace-id]')];
             return rows.length === 24 ? rows.map(r => r.dataset.traceId) : null;",
            json!([]),
        )
        .await;
    let listed: BTreeSet<String> = serde_json::from_value(listed).unwrap();
    assert_eq!(listed, expected);
    // New traces appear without a reload.
    let more = send_shop_traces(&setup.receiver, 1).await;
    browser
        .wait_for(
            "the new trace listed",
            "return document.querySelector(`#trace-list [data-trace-id=\"${arguments[0]}\"]`) !== null",
            json!([more[0]]),
        )
        .await;
    browser.quit().await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waterfall_shows_every_span_once_under_its_parent_with_the_path_marked() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let setup = Setup::new(&[GENAI]).await;
    let sent = send_shop_traces(&setup.receiver, 1).await;
    setup.wait_for_traces(2).await;
    let genai = read_fixture(GENAI).remove(0);
    let id = genai.trace_id.to_string();

    browser.goto(&setup.url(&format!("/trace/{id}"))).await;
    check_waterfall(&browser, &setup.explorer, &genai, "robust").await;

    // The mode switch redraws the path; the back button returns to the robust view.
    browser.click("#mode-jaeger").await;
    browser
        .wait_for(
            "jaeger mode",
            "return location.search.includes('mode=jaeger') &&
                    document.getElementById('diagnostics').textContent.includes('jaeger mode')",
            json!([]),
        )
        .await;
    check_waterfall(&browser, &setup.explorer, &genai, "jaeger").await;
    browser.back().await;
    browser
        .wait_for(
            "robust mode again",
            "return !location.search.includes('mode=jaeger') &&
                    document.getElementById('mode-robust').getAttribute('aria-pressed') === 'true' &&
                    document.getElementById('diagnostics').textContent.includes('robust mode')",
            json!([]),
        )
        .await;
    check_waterfall(&browser, &setup.explorer, &genai, "robust").await;

    // A span of the file, selected by the URL: its details show the file's tags.
    browser
        .goto(&setup.url(&format!("/trace/{id}?span=0000000000000001")))
        .await;
    wait_for_genai_details(&browser).await;

    // A trace from the real exporter: two services, parents across them.
    let received = setup.explorer.store().stats().traces;
    assert_eq!(received, 2);
    let shop: Trace = {
        let answer = get_json(&setup.explorer, &format!("/api/traces/{}", sent[0])).await;
        let body = serde_json::to_vec(&json!({ "data": answer["data"] })).unwrap();
        let mut out = Vec::new();
        lightstep_analysis::read::read_traces(&body[..], "shop".as_ref(), None, |t| {
            out.push(t);
            Ok(())
        })
        .unwrap();
        out.remove(0)
    };
    assert_eq!(shop.spans.len(), 5);
    browser
        .goto(&setup.url(&format!("/trace/{}", sent[0])))
        .await;
    check_waterfall(&browser, &setup.explorer, &shop, "robust").await;
    browser.quit().await;
    setup.stop().await;
}

/// A root with `fan` children, each the head of a chain of `depth` spans.
fn fan_trace(fan: u64, depth: u64) -> Trace {
    let t = TraceId::from_u128(0xfa11);
    let mut spans = vec![
        Span::new(t.clone(), SpanId::from_u64(1), 0, 10_000_000)
            .with_service("front")
            .with_name("GET /"),
    ];
    let mut next = 2;
    for f in 0..fan {
        let mut parent = 1;
        for d in 0..depth {
            spans.push(
                Span::new(
                    t.clone(),
                    SpanId::from_u64(next),
                    100 * f + d,
                    5_000_000 + 1000 * f - d,
                )
                .with_parent(SpanId::from_u64(parent))
                .with_service(format!("svc{}", f % 5))
                .with_name(format!("step {d}")),
            );
            parent = next;
            next += 1;
        }
    }
    Trace::new(t, spans)
}

async fn explorer_with(traces: Vec<Trace>) -> RunningExplorer {
    let store = TraceStore::default();
    for trace in traces {
        store.add(trace);
    }
    serve(store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_waterfall_holds_only_the_rows_on_screen() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let trace = fan_trace(100, 30);
    let explorer = explorer_with(vec![trace.clone()]).await;
    browser
        .goto(&format!("{}trace/{}", explorer.url(), trace.trace_id))
        .await;
    check_waterfall(&browser, &explorer, &trace, "robust").await;
    // The measurement hooks the browser benchmark reads: the first rows drawn, the critical
    // path among them, once the frame showing them was rendered.
    let marks = browser
        .wait_for(
            "the first rows marked as painted",
            "const m = (n) => performance.getEntriesByName(n);
             const drawn = m('explorer:rows-drawn'), painted = m('explorer:rows-painted');
             return painted.length === 1 ? [drawn.length, drawn[0].detail, painted[0].detail] : null;",
            json!([]),
        )
        .await;
    assert_eq!(marks[0], 1, "{marks}");
    assert_eq!(marks[1], marks[2], "{marks}");
    assert_eq!(marks[1]["first"], 0, "{marks}");
    assert_eq!(marks[1]["missing"], 0, "{marks}");
    assert!(marks[1]["critical"].as_u64() > Some(0), "{marks}");
    // Scrolled through its 16 pages of rows, the page holds those near the screen only: at
    // most two on screen and two on either side.
    let draw = browser
        .js(
            "return performance.getEntriesByName('explorer:draw')[0].detail",
            json!([]),
        )
        .await;
    let pages = draw["pages"].as_u64().expect("the pages held");
    assert!(pages <= 6, "{draw}");
    // A small scroll moves the rows still on screen rather than building them again.
    browser
        .wait_for(
            "row 20 drawn near the top",
            "const v = document.getElementById('waterfall');
             v.scrollTop = 240;
             return v.querySelector('[data-row=\"20\"]') !== null;",
            json!([]),
        )
        .await;
    let kept = browser
        .js_async(
            "const done = arguments[arguments.length - 1];
             const v = document.getElementById('waterfall');
             const before = v.querySelector('[data-row=\"20\"]');
             v.scrollTop = 264;
             requestAnimationFrame(() => requestAnimationFrame(() => {
               const after = v.querySelector('[data-row=\"20\"]');
               done([before !== null, after !== null, before === after,
                     parseFloat(v.querySelector('.rows').style.top) === v.scrollTop]);
             }));",
            json!([]),
        )
        .await;
    assert_eq!(kept, json!([true, true, true, true]));
    browser.quit().await;
    explorer.shutdown().await;
}

/// Trace `k` of a list: two spans, starting `k` milliseconds in.
fn small_trace(k: u64) -> Trace {
    let t = TraceId::from_u128(0x1157_0000 + u128::from(k));
    let start = 1_000_000 * k;
    let spans = vec![
        Span::new(t.clone(), SpanId::from_u64(1), start, start + 5_000)
            .with_service("front")
            .with_name("GET /"),
        Span::new(t.clone(), SpanId::from_u64(2), start + 10, start + 4_000)
            .with_parent(SpanId::from_u64(1))
            .with_service("back")
            .with_name("query"),
    ];
    Trace::new(t, spans)
}

/// Spans whose resource has no `service.name` show, on every page, under the name the search
/// page's list of services offers for them (Jaeger's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_without_a_service_show_under_the_name_the_list_offers() {
    const NAME: &str = "OTLPResourceNoServiceName";
    let Some(browser) = Browser::start().await else {
        return;
    };
    let t = TraceId::from_u128(0x5e41_ce00);
    let trace = Trace::new(
        t.clone(),
        vec![
            Span::new(t.clone(), SpanId::from_u64(1), 1_000, 9_000).with_name("nameless root"),
            Span::new(t.clone(), SpanId::from_u64(2), 2_000, 5_000)
                .with_parent(SpanId::from_u64(1))
                .with_service("named")
                .with_name("query"),
        ],
    );
    let id = t.to_string();
    let explorer = explorer_with(vec![trace]).await;
    let services = get_json(&explorer, "/api/services").await;
    assert_eq!(services["data"], json!([NAME, "named"]), "{services}");
    let pages = [
        ("/search".to_owned(), "#trace-list [data-trace-id]"),
        (format!("/trace/{id}?span=0000000000000001"), "#details"),
        (
            format!("/trace/{id}"),
            "#waterfall [data-span-id=\"0000000000000001\"]",
        ),
        ("/contribution".to_owned(), "tr[data-service=\"\"]"),
        (format!("/compare/{id}/{id}"), "tr[data-service=\"\"]"),
    ];
    for (page, shown_in) in pages {
        browser
            .goto(&format!(
                "{}{}",
                explorer.url(),
                page.trim_start_matches('/')
            ))
            .await;
        let text = browser
            .wait_for(
                &format!("{shown_in} on {page}"),
                "const e = document.querySelector(arguments[0]);
                 return e && e.textContent.includes(arguments[1]) ? e.textContent : null;",
                json!([shown_in, NAME]),
            )
            .await;
        assert!(text.as_str().unwrap().contains(NAME), "{page}: {text}");
    }
    browser.quit().await;
    explorer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_list_draws_its_rows_a_page_at_a_time() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let traces: Vec<Trace> = (0..1_000u64).map(small_trace).collect();
    let expected: BTreeSet<String> = traces.iter().map(|t| t.trace_id.to_string()).collect();
    let explorer = explorer_with(traces).await;
    browser
        .goto(&format!("{}search?limit=1000", explorer.url()))
        .await;
    let rows = "return [...document.querySelectorAll('#trace-list [data-trace-id]')]
                .map(r => r.dataset.traceId);";
    let first = browser
        .wait_for(
            "the first page of the list",
            "const n = document.querySelectorAll('#trace-list [data-trace-id]').length;
             return n > 0 && document.getElementById('search-summary').textContent.includes('1000 of 1000') ? n : null;",
            json!([]),
        )
        .await;
    assert!(
        first.as_u64() <= Some(200),
        "a page of rows drawn at first, not the whole list: {first}"
    );
    // Scrolling to the end draws the rest, each trace once.
    let all = browser
        .wait_for(
            "every trace drawn after scrolling",
            "window.scrollTo(0, document.body.scrollHeight);
             const n = document.querySelectorAll('#trace-list [data-trace-id]').length;
             return n === 1000 && document.getElementById('list-more').textContent === '';",
            json!([]),
        )
        .await;
    assert_eq!(all, Value::Bool(true));
    let listed: Vec<String> = serde_json::from_value(browser.js(rows, json!([])).await).unwrap();
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), expected);
    browser.quit().await;
    explorer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arriving_traces_keep_the_lists_ticks_and_drawn_rows() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let explorer = explorer_with((0..300u64).map(small_trace).collect()).await;
    browser
        .goto(&format!("{}search?limit=1000", explorer.url()))
        .await;
    let drawn = "return document.querySelectorAll('#trace-list [data-trace-id]').length;";
    // Scrolled down past the first page, two traces ticked for comparison.
    let before = browser
        .wait_for(
            "a second page drawn",
            "window.scrollTo(0, document.body.scrollHeight);
             const n = document.querySelectorAll('#trace-list [data-trace-id]').length;
             return n >= 200 ? n : null;",
            json!([]),
        )
        .await;
    let ticked = browser
        .js(
            "const rows = document.querySelectorAll('#trace-list [data-trace-id]');
             const picked = [rows[3], rows[150]];
             for (const row of picked) row.querySelector('input[type=checkbox]').click();
             return picked.map((r) => r.dataset.traceId);",
            json!([]),
        )
        .await;
    let enabled = "return !document.getElementById('compare-selected').disabled;";
    assert_eq!(browser.js(enabled, json!([])).await, Value::Bool(true));
    // A trace arrives; the page learns of it from its status poll and lists it.
    let newcomer = small_trace(5_000);
    let newcomer_id = newcomer.trace_id.to_string();
    explorer.store().add(newcomer);
    browser
        .wait_for(
            "the arriving trace listed",
            "return document.querySelector(`#trace-list [data-trace-id=\"${arguments[0]}\"]`) !== null;",
            json!([newcomer_id]),
        )
        .await;
    let still = browser
        .js(
            "return arguments[0].map((id) => document
               .querySelector(`#trace-list [data-trace-id=\"${id}\"] input[type=checkbox]`).checked);",
            json!([ticked]),
        )
        .await;
    assert_eq!(still, json!([true, true]), "ticks kept for {ticked}");
    assert_eq!(browser.js(enabled, json!([])).await, Value::Bool(true));
    let after = browser.js(drawn, json!([])).await;
    assert!(
        after.as_u64() >= before.as_u64(),
        "rows drawn before the redraw: {before}, after: {after}"
    );
    browser.quit().await;
    explorer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collapse_and_keyboard_work_as_in_a_tree() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Rows: 0 root; 1, 2, 3 the first chain; 4, 5, 6 the second; ...
    let trace = fan_trace(5, 3);
    let explorer = explorer_with(vec![trace.clone()]).await;
    browser
        .goto(&format!("{}trace/{}", explorer.url(), trace.trace_id))
        .await;
    let selected = "const r = document.querySelector('#waterfall .row[aria-selected=\"true\"]');
                    return r && Number(r.dataset.row) === arguments[0] ? r.dataset.spanId : null;";
    let span_at = "const r = document.querySelector(`#waterfall [data-row=\"${arguments[0]}\"]`);
                   return r ? r.dataset.spanId : null;";
    let id = |n: u64| SpanId::from_u64(n).to_string();
    browser.wait_for("rows", span_at, json!([0])).await;
    browser.click("#waterfall [data-row=\"0\"]").await;
    browser
        .wait_for("row 0 selected", selected, json!([0]))
        .await;
    browser
        .wait_for(
            "the root's details",
            "return document.querySelector(`#details [data-details-span-id=\"${arguments[0]}\"]`) !== null",
            json!([id(1)]),
        )
        .await;

    browser.send_keys("#waterfall", keys::DOWN).await;
    assert_eq!(browser.wait_for("row 1", selected, json!([1])).await, id(2));
    // Left on an open parent collapses it: the second chain moves up to row 2.
    browser.send_keys("#waterfall", keys::LEFT).await;
    browser
        .wait_for(
            "the first chain collapsed",
            "const r = document.querySelector('#waterfall [data-row=\"1\"]');
             const next = document.querySelector('#waterfall [data-row=\"2\"]');
             return r && r.getAttribute('aria-expanded') === 'false' && next &&
                    next.dataset.spanId === arguments[0];",
            json!([id(5)]),
        )
        .await;
    // Right opens it again, and right again steps into it.
    browser.send_keys("#waterfall", keys::RIGHT).await;
    browser
        .wait_for(
            "the first chain open",
            "const next = document.querySelector('#waterfall [data-row=\"2\"]');
             return next && next.dataset.spanId === arguments[0];",
            json!([id(3)]),
        )
        .await;
    browser.send_keys("#waterfall", keys::RIGHT).await;
    assert_eq!(browser.wait_for("row 2", selected, json!([2])).await, id(3));
    // Left on a collapsed or childless row goes to its parent; up and home go up.
    browser.send_keys("#waterfall", keys::LEFT).await;
    browser
        .wait_for(
            "row 2 collapsed",
            "const r = document.querySelector('#waterfall [data-row=\"2\"]');
             return r && r.getAttribute('aria-expanded') === 'false';",
            json!([]),
        )
        .await;
    browser.send_keys("#waterfall", keys::LEFT).await;
    assert_eq!(
        browser.wait_for("parent row 1", selected, json!([1])).await,
        id(2)
    );
    browser.send_keys("#waterfall", keys::UP).await;
    assert_eq!(browser.wait_for("row 0", selected, json!([0])).await, id(1));
    browser.send_keys("#waterfall", keys::END).await;
    // 16 spans, one hidden under the collapsed row 2: the last row is 14.
    assert_eq!(
        browser
            .wait_for("the last row", selected, json!([14]))
            .await,
        id(16)
    );
    browser.send_keys("#waterfall", keys::HOME).await;
    browser.wait_for("row 0 again", selected, json!([0])).await;

    // The toggle of a row collapses it with the mouse.
    browser.click("#waterfall [data-row=\"4\"] .toggle").await;
    browser
        .wait_for(
            "row 4 collapsed",
            "const r = document.querySelector('#waterfall [data-row=\"4\"]');
             const next = document.querySelector('#waterfall [data-row=\"5\"]');
             return r && r.getAttribute('aria-expanded') === 'false' &&
                    next && next.dataset.spanId === arguments[0];",
            json!([id(8)]),
        )
        .await;
    browser.quit().await;
    explorer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_the_back_button_work() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let setup = Setup::new(&[SOCIAL]).await;
    let sent: BTreeSet<String> = send_shop_traces(&setup.receiver, 3)
        .await
        .into_iter()
        .collect();
    setup.wait_for_traces(23).await;
    let listed = "const rows = [...document.querySelectorAll('#trace-list [data-trace-id]')];
                  const none = document.querySelector('#results p.muted');
                  if (rows.length !== arguments[0] && !(arguments[0] === 0 && none)) return null;
                  return rows.map(r => r.dataset.traceId);";

    browser.goto(&setup.url("/search")).await;
    browser.wait_for("every trace", listed, json!([23])).await;
    browser
        .wait_for(
            "the services listed",
            "return document.querySelector('#f-service option[value=\"web-frontend\"]') !== null",
            json!([]),
        )
        .await;
    browser
        .click("#f-service option[value=\"web-frontend\"]")
        .await;
    browser.click("#f-submit").await;
    let found = browser
        .wait_for("the shop traces", listed, json!([3]))
        .await;
    let found: BTreeSet<String> = serde_json::from_value(found).unwrap();
    assert_eq!(found, sent);
    assert!(browser.url().await.contains("service=web-frontend"));

    // Errors only: the shop traces fail in render; the social network's never do.
    browser.goto(&setup.url("/search")).await;
    browser.wait_for("every trace", listed, json!([23])).await;
    browser.click("#f-errors").await;
    browser.click("#f-submit").await;
    let found = browser
        .wait_for("the failed traces", listed, json!([3]))
        .await;
    assert_eq!(
        serde_json::from_value::<BTreeSet<String>>(found).unwrap(),
        sent
    );

    // An attribute, a duration, an operation.
    browser.goto(&setup.url("/search")).await;
    browser.wait_for("every trace", listed, json!([23])).await;
    browser
        .send_keys("#f-attribute", "db.system.name=postgresql")
        .await;
    browser.click("#f-submit").await;
    browser
        .wait_for("the traces with the attribute", listed, json!([3]))
        .await;
    browser.goto(&setup.url("/search")).await;
    browser.wait_for("every trace", listed, json!([23])).await;
    browser.send_keys("#f-minDuration", "1h").await;
    browser.click("#f-submit").await;
    browser
        .wait_for("no trace that long", listed, json!([0]))
        .await;

    // Into a trace and back: the filtered list is there again.
    browser
        .goto(&setup.url("/search?service=web-frontend"))
        .await;
    browser
        .wait_for("the shop traces", listed, json!([3]))
        .await;
    browser
        .click("#trace-list [data-trace-id] a.trace-link")
        .await;
    browser
        .wait_for(
            "the trace page",
            "return location.pathname.startsWith('/trace/') &&
                    document.querySelector('#waterfall [data-span-id]') !== null",
            json!([]),
        )
        .await;
    browser.back().await;
    browser
        .wait_for("the filtered list again", listed, json!([3]))
        .await;
    assert!(
        browser
            .url()
            .await
            .ends_with("/search?service=web-frontend")
    );
    browser
        .wait_for(
            "the filter shown",
            "return document.getElementById('f-service').value === 'web-frontend'",
            json!([]),
        )
        .await;
    browser.quit().await;
    setup.stop().await;
}

/// A server that counts the connections it gets: a payload that runs would call it.
async fn canary() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((_tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_in_names_and_attributes_do_not_run() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (canary, hits) = canary().await;
    let run = |n: u32| {
        format!(
            "window.__pwned={n};document.title='pwned';fetch('http://{canary}/{n}');\
             new Image().src='http://{canary}/i{n}'"
        )
    };
    let payloads = [
        format!("<img src=x onerror=\"{}\">", run(1)),
        format!("<script>{}</script>", run(2)),
        format!("javascript:{}", run(3)),
        format!("<svg onload=\"{}\"></svg>", run(4)),
        format!("\"><iframe src=\"javascript:{}\"></iframe>", run(5)),
    ];
    let setup = Setup::new(&[]).await;
    let evil = exporter(&setup.receiver, &payloads[0]);
    let tracer = evil.tracer();
    let root = tracer
        .span_builder(payloads[1].clone())
        .with_kind(SpanKind::Server)
        .with_attributes(
            payloads
                .iter()
                .enumerate()
                .map(|(k, p)| KeyValue::new(format!("{p}{k}"), p.clone()))
                .collect::<Vec<_>>(),
        )
        .start(&tracer);
    let trace_id = root.span_context().trace_id().to_string();
    let root_id = root.span_context().span_id().to_string();
    let cx = Context::current_with_span(root);
    for p in &payloads {
        let mut child = tracer.start_with_context(p.clone(), &cx);
        child.add_event(p.clone(), vec![KeyValue::new(p.clone(), p.clone())]);
        child.set_status(Status::error(p.clone()));
        tokio::time::sleep(Duration::from_millis(1)).await;
        child.end();
    }
    cx.span().end();
    evil.shutdown().await.expect("delivered");
    setup.wait_for_traces(1).await;

    let pages = [
        "/search".to_owned(),
        format!(
            "/search?service={}",
            percent_encoding::utf8_percent_encode(&payloads[0], percent_encoding::NON_ALPHANUMERIC)
        ),
        format!("/trace/{trace_id}?span={root_id}"),
        format!("/trace/{trace_id}?mode=jaeger"),
        "/contribution".to_owned(),
        format!("/compare/{trace_id}/{trace_id}"),
    ];
    for page in &pages {
        browser.goto(&setup.url(page)).await;
        // The payloads are on the page, as text.
        browser
            .wait_for(
                &format!("the payloads shown as text on {page}"),
                "return document.body.textContent.includes(arguments[0]) ||
                        document.body.textContent.includes(arguments[1])",
                json!([payloads[0], payloads[1]]),
            )
            .await;
        if page.contains("span=") {
            browser
                .wait_for(
                    "the details with the attributes",
                    "const d = document.getElementById('details');
                     return d.textContent.includes(arguments[0]) && d.textContent.includes(arguments[1]);",
                    json!([payloads[3], format!("{}0", payloads[0])]),
                )
                .await;
        }
        // Click what can be clicked: rows, links made of ids.
        if page.starts_with("/trace/") {
            browser.click("#waterfall [data-row=\"1\"]").await;
            browser
                .wait_for(
                    "a child's details",
                    "return document.querySelector('#details [data-details-span-id]') !== null",
                    json!([]),
                )
                .await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let state = browser
            .js(
                "return {pwned: window.__pwned === undefined ? null : window.__pwned,
                         title: document.title,
                         injected: document.querySelectorAll('main img, main script, main svg, main iframe').length};",
                json!([]),
            )
            .await;
        assert_eq!(state["pwned"], Value::Null, "{page}: {state}");
        assert!(
            !state["title"].as_str().unwrap().contains("pwned"),
            "{page}: {state}"
        );
        assert_eq!(state["injected"], 0, "{page}: {state}");
        assert!(!browser.title().await.contains("pwned"));
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a payload reached the canary server"
    );
    browser.quit().await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_from_the_python_sdk_show_in_the_list_and_the_waterfall() {
    let Some(python) = crate::python::peer_python().await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let setup = Setup::new(&[]).await;
    let summary = crate::python::send_spans(&python, &setup.receiver.http_traces_url(), 12).await;
    let trace_id = summary["trace_id"].as_str().unwrap().to_owned();
    let root_id = summary["root_span_id"].as_str().unwrap().to_owned();
    setup.wait_for_traces(1).await;
    browser.goto(&setup.url("/search")).await;
    browser
        .wait_for(
            "the Python trace listed",
            "return document.querySelector(`#trace-list [data-trace-id=\"${arguments[0]}\"]`) !== null",
            json!([trace_id]),
        )
        .await;
    browser.click("#trace-list a.trace-link").await;
    browser
        .wait_for(
            "its waterfall",
            "return document.querySelector('#waterfall [data-row=\"11\"]') !== null",
            json!([]),
        )
        .await;
    let rows = scan_waterfall(&browser, 12).await;
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[0].1, root_id);
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.2.as_deref() == Some(root_id.as_str()))
    );
    let marked: BTreeSet<String> = rows.iter().filter(|r| r.3).map(|r| r.1.clone()).collect();
    assert_eq!(
        marked,
        critical_spans(&setup.explorer, &trace_id, "robust").await
    );
    browser.quit().await;
    setup.stop().await;
}

/// Screenshots of the three pages. With `LIGHTSTEP_WRITE_SCREENSHOTS=1` they replace those in
/// `docs/img/`; otherwise they are only checked to be taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_the_pages() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let setup = Setup::new(&[SOCIAL, GENAI]).await;
    send_shop_traces(&setup.receiver, 3).await;
    setup.wait_for_traces(24).await;
    let genai = read_fixture(GENAI).remove(0).trace_id.to_string();
    let shots = [
        (
            "explorer-search.png",
            "/search".to_owned(),
            "#trace-list [data-trace-id]",
        ),
        (
            "explorer-trace.png",
            format!("/trace/{genai}?span=0000000000000004"),
            "#details [data-details-span-id]",
        ),
        (
            "explorer-contribution.png",
            "/contribution".to_owned(),
            "#per-operation tbody tr",
        ),
    ];
    let write = EnvSnapshot::from_process()
        .get("LIGHTSTEP_WRITE_SCREENSHOTS")
        .is_some();
    for (name, page, ready) in shots {
        browser.goto(&setup.url(&page)).await;
        browser
            .wait_for(
                &format!("{page} drawn"),
                "return document.querySelector(arguments[0]) !== null",
                json!([ready]),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = browser.screenshot().await;
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
        if write {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs/img")
                .join(name);
            std::fs::write(&path, &png).unwrap();
        }
    }
    browser.quit().await;
    setup.stop().await;
}

#!/usr/bin/env python3
"""Times a trace page from navigation to its first span rows: Jaeger UI against the explorer.

    python3 bench_ui.py --jaeger-ui-build DIR [--lightstep PATH] [--out DIR] [--traces DIR]
                        [--runs 3] [--timeout 120] [--targets jaeger explorer]
                        [--sizes 2000 10000 100000]

For each size, target and run, everything starts afresh: an explorer (`lightstep ui --ui
127.0.0.1:0 wide-N.json`), for Jaeger UI a serve.py in front of it, and a headless Chromium with
an empty cache (the flags of the explorer's own browser bench, plus
--enable-precise-memory-info --js-flags=--expose-gc). The browser then opens the trace page
directly:
  Jaeger UI: PROXY/trace/ID, span rows are `.span-row` elements;
  explorer:  EXPLORER/trace/ID, span rows are `[data-span-id]` elements.

A probe installed before the page's own scripts (CDP Page.addScriptToEvaluateOnNewDocument)
looks at the DOM on every animation frame. `rows_ms` is performance.now() (ms since navigation
start) at the first frame whose DOM holds a span row, and `painted_ms` is the next animation
frame, by which time the frame holding the rows has been produced. The probe is read through
WebDriver afterwards, so WebDriver's round trips are not in the figures. One second later the
script reads the span rows in the DOM, the JS heap (performance.memory.usedJSHeapSize) before
and after gc(), the renderer's RssAnon and VmHWM, and the resource timing of the trace request.
A case gives up --timeout seconds after navigation.

The traces are generated into --traces if they are not there (gen_traces.py). Each run is
appended to OUT/results.jsonl as one JSON line, so several invocations add up; summarize.py
turns the file into a table. The proxy's request log goes to OUT/proxy.log.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Keep the source tree free of __pycache__ directories.
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import gen_traces  # noqa: E402
from wd import Browser  # noqa: E402

REPO = gen_traces.REPO
DEFAULT_LIGHTSTEP = os.path.join(REPO, "target", "release", "lightstep")
DEFAULT_OUT_ROOT = os.path.join(REPO, "target", "jaeger-ui-bench")

PROBE = r"""
(() => {
  const SEL = %s;
  const p = { rows_ms: null, painted_ms: null, rows_at_first: 0 };
  window.__probe = p;
  function tick() {
    const n = document.querySelectorAll(SEL).length;
    if (n > 0) {
      p.rows_ms = performance.now();
      p.rows_at_first = n;
      requestAnimationFrame(() => { p.painted_ms = performance.now(); });
      return;
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""

AFTER = r"""
const sel = arguments[0], api = arguments[1];
const res = performance.getEntriesByType('resource').filter(e => e.name.includes(api))
  .map(e => ({name: e.name.replace(location.origin, ''), start: Math.round(e.startTime),
              end: Math.round(e.responseEnd), bytes: e.encodedBodySize}));
const nav = performance.getEntriesByType('navigation')[0];
const heap = performance.memory.usedJSHeapSize;
let heapGc = null;
if (typeof gc === 'function') { gc(); heapGc = performance.memory.usedJSHeapSize; }
return {rows_in_dom: document.querySelectorAll(sel).length, heap: heap, heap_after_gc: heapGc,
        requests: res.slice(0, 5), dom_content_loaded: nav ? Math.round(nav.domContentLoadedEventEnd) : null,
        error_text: [...document.querySelectorAll('.ErrorMessage, .ant-alert-error, [class*=ErrorMessage]')].map(e => e.innerText).join(' | ').slice(0, 300)};
"""


def add_common_args(ap, out_name):
    """The options every script that starts explorers shares."""
    ap.add_argument("--lightstep", default=DEFAULT_LIGHTSTEP, metavar="PATH",
                    help=f"the lightstep binary (default: {DEFAULT_LIGHTSTEP})")
    ap.add_argument("--jaeger-ui-build", metavar="DIR",
                    help="Jaeger UI's build output, JAEGER_UI_SOURCE/packages/jaeger-ui/build "
                         "(needed for the jaeger target)")
    default_out = os.path.join(DEFAULT_OUT_ROOT, out_name)
    ap.add_argument("--out", default=default_out, metavar="DIR", help=f"output directory (default: {default_out})")


def add_case_args(ap, timeout_help):
    """The cases to run: traces, sizes, UIs, runs, and how long to wait."""
    ap.add_argument("--traces", default=gen_traces.DEFAULT_DIR, metavar="DIR",
                    help=f"where the generated traces are kept (default: {gen_traces.DEFAULT_DIR})")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120, help=timeout_help)
    ap.add_argument("--targets", nargs="+", choices=["jaeger", "explorer"], default=["jaeger", "explorer"])
    ap.add_argument("--sizes", nargs="+", type=int, default=gen_traces.DEFAULT_SIZES)


def check_common_args(ap, a, need_jaeger_ui):
    if not os.access(a.lightstep, os.X_OK):
        ap.error(f"no lightstep binary at {a.lightstep}: build it with "
                 "`cargo build --release -p lightstep-cli`, or pass --lightstep PATH")
    a.lightstep = os.path.abspath(a.lightstep)
    if need_jaeger_ui:
        if not a.jaeger_ui_build:
            ap.error("--jaeger-ui-build DIR is needed for the jaeger target")
        if not os.path.isfile(os.path.join(a.jaeger_ui_build, "index.html")):
            ap.error(f"no index.html in {a.jaeger_ui_build}: build Jaeger UI with build_jaeger_ui.sh")
        a.jaeger_ui_build = os.path.abspath(a.jaeger_ui_build)
    os.makedirs(a.out, exist_ok=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def start_proc(args, pattern, timeout=300):
    """Starts a process that prints `... http://127.0.0.1:PORT/ ...`; returns (process, URL)."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    t0 = time.time()
    while time.time() - t0 < timeout:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"{args[0]} exited: rc={p.poll()}")
        if pattern in line:
            url = "http://" + line.split("http://", 1)[1].split("/", 1)[0].strip()
            # Keep reading its output, so that the process never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return p, url
    stop(p)
    raise RuntimeError(f"{args[0]} did not print its URL within {timeout} s")


def start_explorer(lightstep, files):
    return start_proc([lightstep, "ui", "--ui", "127.0.0.1:0", *files], "http://")


def start_proxy(jaeger_ui_build, explorer_url, log=None):
    args = [sys.executable, os.path.join(HERE, "serve.py"), "--jaeger-ui-build", jaeger_ui_build,
            "--backend", explorer_url]
    if log:
        args += ["--log", log]
    return start_proc(args, "listening on")


def stop(p):
    if p and p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def proc_memory(pid):
    """VmHWM and RssAnon of a process, in MiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM", "RssAnon")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0]) // 1024
    except OSError:
        pass
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def one_run(a, target, n):
    tid = gen_traces.trace_id(n)
    path = gen_traces.ensure(a.traces, n)
    exp = proxy = b = None
    rec = {"target": target, "spans": n, "trace_id": tid, "t": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        t0 = time.time()
        exp, exp_url = start_explorer(a.lightstep, [path])
        rec["explorer_load_s"] = round(time.time() - t0, 2)
        if target == "jaeger":
            proxy, base = start_proxy(a.jaeger_ui_build, exp_url, os.path.join(a.out, "proxy.log"))
            sel, api = ".span-row", f"/api/traces/{tid}"
        else:
            base = exp_url
            sel, api = "[data-span-id]", "/api/"
        b = Browser(["--enable-precise-memory-info", "--js-flags=--expose-gc"])
        rec["chromium"] = b.caps.get("browserVersion")
        b.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE % json.dumps(sel)})
        nav0 = time.time()
        b.get(f"{base}/trace/{tid}")
        probe = None
        while True:
            left = a.timeout - (time.time() - nav0)
            if left <= 0:
                rec["gave_up_after_s"] = a.timeout
                break
            try:
                probe = b.cmd("POST", "/execute/sync", {"script": "return window.__probe || null", "args": []},
                              timeout=max(5, left + 5))
            except Exception as e:
                # The page's thread can stay busy past the limit, and WebDriver times out.
                rec["probe_error"] = str(e)[:200]
                if time.time() - nav0 >= a.timeout:
                    rec["gave_up_after_s"] = a.timeout
                    break
                continue
            if probe and probe.get("painted_ms") is not None:
                break
            time.sleep(0.1)
        rec["wall_s_to_probe"] = round(time.time() - nav0, 2)
        if probe:
            rec.update({k: (round(v, 1) if isinstance(v, float) else v) for k, v in probe.items()})
        if "gave_up_after_s" not in rec:
            time.sleep(1.0)  # what the page holds once it has settled, not mid-render
            rec.update(b.cmd("POST", "/execute/sync", {"script": AFTER, "args": [sel, api]}, timeout=120))
        rec["renderers"] = [proc_memory(p) for p in b.renderer_pids()]
        rec["explorer_mib"] = proc_memory(exp.pid)
        if target == "jaeger":
            rec["console"] = [l["message"][:300] for l in b.logs() if l.get("level") == "SEVERE"][:5]
    finally:
        if b:
            b.quit()
        stop(proxy)
        stop(exp)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "bench")
    add_case_args(ap, "seconds before a case gives up (default: 120)")
    a = ap.parse_args()
    check_common_args(ap, a, "jaeger" in a.targets)
    out = os.path.join(a.out, "results.jsonl")
    binary = {"lightstep": a.lightstep, "lightstep_sha256": sha256(a.lightstep)}
    print(json.dumps(binary), flush=True)
    for n in a.sizes:
        for target in a.targets:
            recs = []
            for r in range(a.runs):
                before = loadavg()
                rec = one_run(a, target, n)
                rec.update(binary)
                rec["run"] = r + 1
                rec["loadavg_before"] = before
                rec["loadavg_after"] = loadavg()
                recs.append(rec)
                with open(out, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps({k: rec.get(k) for k in ("target", "spans", "run", "rows_ms", "painted_ms",
                                  "rows_at_first", "rows_in_dom", "heap", "heap_after_gc", "gave_up_after_s",
                                  "wall_s_to_probe", "requests", "loadavg_before", "error_text", "console")}),
                      flush=True)
            done = [x["painted_ms"] for x in recs if x.get("painted_ms") is not None]
            if done:
                print(f"== {target} {n}: painted median {statistics.median(done):.0f} ms, worst {max(done):.0f} ms, "
                      f"{len(done)}/{len(recs)} runs", flush=True)
            else:
                print(f"== {target} {n}: no span row in any of {len(recs)} runs", flush=True)
    print(f"results appended to {out}", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Scrolls a trace's waterfall after its first rows and times the frames: Jaeger UI against the explorer.

    python3 scroll_ui.py --jaeger-ui-build DIR [--lightstep PATH] [--out DIR] [--traces DIR]
                         [--runs 3] [--timeout 120] [--targets jaeger explorer]
                         [--sizes 2000 10000 100000]

The same set-up as bench_ui.py: a new explorer, proxy and Chromium for every run, and the page
opened directly on the trace. Once span rows are shown and a second has passed, a
requestAnimationFrame loop in the page scrolls the page's scroller (its largest scrollable
element, else the document) by 10 row heights a frame for 3 s, as the explorer's own bench
does. It records every frame interval, and whether a span row is under the middle of the
waterfall at that frame: a frame without one shows blank space where rows should be.
Each run is appended to OUT/results.jsonl as one JSON line.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Keep the source tree free of __pycache__ directories.
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import gen_traces  # noqa: E402
from bench_ui import add_case_args, add_common_args, check_common_args, loadavg, start_explorer, start_proxy, stop  # noqa: E402
from wd import Browser  # noqa: E402

SCROLL = r"""
const sel = arguments[0], done = arguments[arguments.length - 1];
const rows = document.querySelectorAll(sel);
const rowH = rows.length > 1 ? Math.abs(rows[1].getBoundingClientRect().top - rows[0].getBoundingClientRect().top) || 24 : 24;
// Scroll what the page scrolls: its largest scrollable element, else the document.
let sc = document.scrollingElement, best = sc.scrollHeight - sc.clientHeight;
for (const e of document.querySelectorAll('*')) {
  const s = getComputedStyle(e);
  if (/(auto|scroll)/.test(s.overflowY) && e.scrollHeight - e.clientHeight > best) { sc = e; best = e.scrollHeight - e.clientHeight; }
}
const r0 = rows[0].getBoundingClientRect();
const x = r0.left + Math.min(200, r0.width / 2);
const y = Math.min(window.innerHeight - 20, Math.max(r0.top, 0) + (window.innerHeight - Math.max(r0.top, 0)) / 2);
const intervals = [], blanks = [];
let last = null;
const t0 = performance.now();
function frame(t) {
  if (last !== null) intervals.push(t - last);
  last = t;
  const under = document.elementFromPoint(x, y);
  blanks.push(!(under && under.closest(sel)));
  if (t - t0 > 3000) {
    done({rowH, scroller: sc === document.scrollingElement ? 'document' : (sc.className || sc.tagName),
          scrollTop: sc.scrollTop, scrollMax: best, intervals, blank_frames: blanks.filter(Boolean).length});
    return;
  }
  sc.scrollTop += 10 * rowH;
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
"""


def one(a, target, n):
    tid = gen_traces.trace_id(n)
    path = gen_traces.ensure(a.traces, n)
    exp = proxy = b = None
    rec = {"target": target, "spans": n}
    try:
        exp, exp_url = start_explorer(a.lightstep, [path])
        if target == "jaeger":
            proxy, base = start_proxy(a.jaeger_ui_build, exp_url)
            sel = ".span-row"
        else:
            base, sel = exp_url, "[data-span-id]"
        b = Browser(["--enable-precise-memory-info", "--js-flags=--expose-gc"])
        b.get(f"{base}/trace/{tid}")
        t0 = time.time()
        while time.time() - t0 < a.timeout:
            try:
                if b.cmd("POST", "/execute/sync",
                         {"script": f"return document.querySelectorAll({json.dumps(sel)}).length", "args": []},
                         timeout=a.timeout):
                    break
            except Exception:
                pass  # the page can be too busy to answer; try again until the limit
            time.sleep(0.2)
        else:
            rec["gave_up_after_s"] = a.timeout
            return rec
        time.sleep(1.0)
        r = b.cmd("POST", "/execute/async", {"script": SCROLL, "args": [sel]}, timeout=120)
        iv = sorted(r.pop("intervals"))
        rec.update(r)
        rec.update({"frames": len(iv), "median_ms": round(statistics.median(iv), 1),
                    "p95_ms": round(iv[int(0.95 * (len(iv) - 1))], 1), "worst_ms": round(iv[-1], 1),
                    "over_50ms": sum(1 for v in iv if v > 50)})
    finally:
        if b:
            b.quit()
        stop(proxy)
        stop(exp)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "scroll")
    add_case_args(ap, "seconds to wait for the first rows (default: 120)")
    a = ap.parse_args()
    check_common_args(ap, a, "jaeger" in a.targets)
    out = os.path.join(a.out, "results.jsonl")
    for n in a.sizes:
        for t in a.targets:
            for r in range(a.runs):
                before = loadavg()
                rec = one(a, t, n)
                rec["run"], rec["loadavg_before"] = r + 1, before
                with open(out, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)
    print(f"results appended to {out}", flush=True)


if __name__ == "__main__":
    main()

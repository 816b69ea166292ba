#!/usr/bin/env python3
"""Opens the explorer's traces in the real Jaeger UI and checks that every span is drawn.

    python3 compat.py --jaeger-ui-build DIR [--lightstep PATH] [--out DIR] [--skip-search] FILE...

Each FILE gets an explorer of its own (`lightstep ui --ui 127.0.0.1:0 FILE`) with serve.py in
front of it, so that each trace is shown exactly as its file holds it: the explorer merges
spans of one trace id across the files it is given, and some test fixtures reuse trace ids.
Then, in headless Chromium:

1. Unless --skip-search: Jaeger UI's search page (/search), and a search by URL
   (/search?service=S...) as pressing "Find Traces" does; the text the page shows, its console
   messages and a screenshot are kept.
2. For every trace the explorer holds (listed through its Jaeger API, /api/traces?service=S):
   Jaeger UI's trace page /trace/ID. Its span rows (`.span-row`) are counted once they stop
   changing and compared with the spans in /api/traces/ID; console warnings and errors and any
   error text on the page are kept, with a screenshot when something is off.

Writes OUT/NAME/compat.json (NAME: the file's name without .json), the screenshots and the
proxy's log of the API requests Jaeger UI made (OUT/NAME/proxy.log), and prints one line per
trace. Exits with status 1 if any trace page did not show all of its spans.
"""

import argparse
import json
import os
import sys
import time
import urllib.parse
import urllib.request

# Keep the source tree free of __pycache__ directories.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ui import add_common_args, check_common_args, start_explorer, start_proxy, stop  # noqa: E402
from wd import Browser  # noqa: E402


def get_json(url):
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read())


ROWS_JS = """
if (!document.body) return {rows: 0, err: '', header: ''};
const rows = document.querySelectorAll('.span-row');
const err = [...document.querySelectorAll('.ErrorMessage, .ant-alert-error, .ant-result-error, [class*=ErrorMessage]')]
  .map(e => e.innerText).join(' | ');
return {rows: rows.length, err: err,
        header: (document.querySelector('.TracePageHeader, .TracePageHeader--titleRow') || {}).innerText || ''};
"""


def wait_rows(b, timeout=30):
    """The page's span rows once their count has held for a second (Jaeger UI draws in steps)."""
    t0 = time.time()
    last, stable_since = None, None
    while time.time() - t0 < timeout:
        st = b.js(ROWS_JS)
        if st["err"]:
            return st
        if st["rows"] and st["rows"] == last:
            if time.time() - stable_since > 1.0:
                return st
        else:
            last, stable_since = st["rows"], time.time()
        time.sleep(0.1)
    st = b.js(ROWS_JS)
    st["timeout"] = True
    return st


def check(b, ui, out, skip_search):
    result = {"chromium": b.caps.get("browserVersion")}
    services = get_json(ui + "/api/services")["data"] or []
    result["services"] = services
    if not skip_search:
        b.get(ui + "/search")
        time.sleep(5)
        result["search_page"] = {"text": b.js("return document.body.innerText.slice(0, 600)"), "console": b.logs()}
        b.screenshot(os.path.join(out, "search.png"))

        svc = next((s for s in services if s), None)
        if svc is not None:
            q = urllib.parse.urlencode({"service": svc, "limit": 20, "lookback": "custom",
                                        "start": 0, "end": int(time.time() * 1e6)})
            b.get(f"{ui}/search?{q}")
            time.sleep(5)
            result["search_by_url"] = {"url": f"/search?{q}",
                                       "text": b.js("return document.body.innerText.slice(0, 800)"),
                                       "console": b.logs()}
            b.screenshot(os.path.join(out, "search-by-url.png"))

    ids = set()
    for s in services:
        path = "/api/traces?" + urllib.parse.urlencode({"service": s, "limit": 10000})
        ids.update(t["traceID"] for t in get_json(ui + path)["data"] or [])
    result["traces"] = []
    for tid in sorted(ids):
        full = get_json(f"{ui}/api/traces/{tid}")
        n_api = sum(len(t["spans"]) for t in full["data"] or [])
        b.get(f"{ui}/trace/{tid}")
        st = wait_rows(b)
        logs = [l for l in b.logs() if l.get("level") in ("SEVERE", "WARNING")]
        entry = {"traceID": tid, "spans_api": n_api, "span_rows": st["rows"],
                 "all_rows": st["rows"] == n_api, "error_text": st["err"],
                 "timeout": st.get("timeout", False), "console": logs, "header": st["header"][:200]}
        if not entry["all_rows"] or entry["error_text"] or logs:
            b.screenshot(os.path.join(out, f"trace-{tid}.png"))
        result["traces"].append(entry)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, "compat")
    ap.add_argument("--skip-search", action="store_true", help="only the trace pages")
    ap.add_argument("files", nargs="+", metavar="FILE", help="trace files the explorer can read")
    a = ap.parse_args()
    check_common_args(ap, a, True)
    failed = total = 0
    names = set()
    for path in a.files:
        name = os.path.basename(path).removesuffix(".json")
        while name in names:
            name += "_"
        names.add(name)
        out = os.path.join(a.out, name)
        os.makedirs(out, exist_ok=True)
        exp = proxy = b = None
        try:
            exp, exp_url = start_explorer(a.lightstep, [path])
            proxy, ui = start_proxy(a.jaeger_ui_build, exp_url, os.path.join(out, "proxy.log"))
            b = Browser()
            result = {"file": path, "ui": ui} | check(b, ui, out, a.skip_search)
        finally:
            if b:
                b.quit()
            stop(proxy)
            stop(exp)
        with open(os.path.join(out, "compat.json"), "w") as f:
            json.dump(result, f, indent=1)
        for e in result["traces"]:
            total += 1
            failed += not e["all_rows"]
            print(json.dumps({"file": name} | {k: e[k] for k in ("traceID", "spans_api", "span_rows", "error_text")}
                             | {"console": len(e["console"])}), flush=True)
    print(f"{total - failed} of {total} traces drawn with all their spans; details in {a.out}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

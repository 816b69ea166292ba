#!/usr/bin/env python3
"""Turns bench_ui.py's results into a Markdown table, each cell the median / worst of the runs.

    python3 summarize.py [RESULTS]     (default: target/jaeger-ui-bench/bench/results.jsonl)

A case in which no run showed a span row before the time limit is reported as given up.
"""

import argparse
import json
import os
import statistics
import sys

# Keep the source tree free of __pycache__ directories.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ui import DEFAULT_OUT_ROOT  # noqa: E402

MiB = 1024 * 1024
LABEL = {"jaeger": "Jaeger UI", "explorer": "lightstep explorer"}


def median_worst(xs, fmt="{:.0f}"):
    xs = [x for x in xs if x is not None]
    return f"{fmt.format(statistics.median(xs))} / {fmt.format(max(xs))}" if xs else "-"


def main():
    default = os.path.join(DEFAULT_OUT_ROOT, "bench", "results.jsonl")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="?", default=default, metavar="RESULTS", help=f"default: {default}")
    a = ap.parse_args()
    with open(a.results) as f:
        recs = [json.loads(line) for line in f if line.strip()]

    print("| target | spans | runs done | rows painted, ms (median / worst) | trace request done, ms "
          "| painted minus request done, ms | JS heap at rows, MiB | JS heap after gc(), MiB "
          "| span rows in DOM | renderer RssAnon, MiB | renderer VmHWM, MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sorted({r["spans"] for r in recs}):
        for t in ("jaeger", "explorer"):
            rs = [r for r in recs if r["spans"] == n and r["target"] == t]
            if not rs:
                continue
            done = [r for r in rs if r.get("painted_ms") is not None and not r.get("gave_up_after_s")]
            if not done:
                print(f"| {LABEL[t]} | {n:,} | 0/{len(rs)}: no span row after {rs[0].get('gave_up_after_s')} s "
                      "(gave up) | | | | | | | | |")
                continue
            # When the page's own request for the trace had fully arrived.
            req = [max((q["end"] for q in r.get("requests", []) if "/api/trace" in q["name"]), default=None)
                   for r in done]
            ren = [max(r.get("renderers") or [{}], key=lambda d: d.get("VmHWM", 0)) for r in done]
            print(f"| {LABEL[t]} | {n:,} | {len(done)}/{len(rs)} "
                  f"| {median_worst([r['painted_ms'] for r in done])} "
                  f"| {median_worst(req)} "
                  f"| {median_worst([r['painted_ms'] - q for r, q in zip(done, req) if q is not None])} "
                  f"| {median_worst([r.get('heap', 0) / MiB for r in done], '{:.1f}')} "
                  f"| {median_worst([(r.get('heap_after_gc') or 0) / MiB for r in done], '{:.1f}')} "
                  f"| {median_worst([r.get('rows_in_dom') for r in done])} "
                  f"| {median_worst([d.get('RssAnon') for d in ren])} | {median_worst([d.get('VmHWM') for d in ren])} |")
    print()
    print("load average (1 min) before each run:",
          ", ".join(f"{r['target']} {r['spans']:,} #{r['run']}: {r['loadavg_before'][0]}" for r in recs))
    shas = sorted({r["lightstep_sha256"][:12] for r in recs if r.get("lightstep_sha256")})
    if shas:
        print("lightstep binary sha256:", ", ".join(shas))


if __name__ == "__main__":
    main()

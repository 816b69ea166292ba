#!/usr/bin/env python3
"""Writes Jaeger-JSON traces of the `wide` shape of lightstep-explorer's browser bench.

    python3 gen_traces.py [--out DIR] [SIZE...]

SIZE defaults to 2000 10000 100000 spans; DIR to target/jaeger-ui-bench/traces in this
repository. Each trace goes to DIR/wide-SIZE.json. bench_ui.py and scroll_ui.py write the files
they need themselves; this script is for making them ahead of time, or larger ones
(1000000 spans is a 336 MB file).

The shape: a root span and N-1 children of it, one after the other; twelve services
(service-0..11, one process each) and a hundred operations (GET /api/v1/resource-0..99), span
k having service k % 12 and operation k % 100, and an `error=true` tag on every 97th span (the
bench's status Error). Times are the bench's nanoseconds times 1000, in Jaeger's microseconds:
child i starts at t0 + 1000*i and lasts 900 us, the root lasts 1000*N + 1000 us. The trace id
has 32 hex digits, N in the last 16, so each size has its own.
"""

import argparse
import json
import os

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".."))
DEFAULT_DIR = os.path.join(REPO, "target", "jaeger-ui-bench", "traces")
DEFAULT_SIZES = [2000, 10000, 100000]

T0 = 1_765_000_000_000_000  # microseconds since the epoch


def trace_id(n):
    return f"{0xabc0000000000000:016x}{n:016x}"


def trace(n):
    tid = trace_id(n)
    processes = {f"p{k}": {"serviceName": f"service-{k}", "tags": []} for k in range(12)}
    spans = []
    for i in range(n):
        spans.append({
            "traceID": tid,
            "spanID": f"{i + 1:016x}",
            "flags": 1,
            "operationName": f"GET /api/v1/resource-{i % 100}",
            "references": [] if i == 0 else [{"refType": "CHILD_OF", "traceID": tid, "spanID": f"{1:016x}"}],
            "startTime": T0 + 1000 * i,
            "duration": (1000 * n + 1000) if i == 0 else 900,
            "tags": [{"key": "error", "type": "bool", "value": True}] if i % 97 == 0 else [],
            "logs": [],
            "processID": f"p{i % 12}",
            "warnings": None,
        })
    return {"data": [{"traceID": tid, "spans": spans, "processes": processes, "warnings": None}],
            "total": 0, "limit": 0, "offset": 0, "errors": None}


def trace_path(directory, n):
    return os.path.join(directory, f"wide-{n}.json")


def ensure(directory, n):
    """The path of the N-span trace in `directory`, written first if it is not there yet."""
    path = trace_path(directory, n)
    if not os.path.isfile(path):
        os.makedirs(directory, exist_ok=True)
        # Written under another name first, so that an interrupted run leaves no half file
        # that a later run would take for a whole one.
        tmp = path + ".partial"
        with open(tmp, "w") as f:
            json.dump(trace(n), f, separators=(",", ":"))
        os.replace(tmp, path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_DIR, metavar="DIR", help=f"default: {DEFAULT_DIR}")
    ap.add_argument("sizes", nargs="*", type=int, metavar="SIZE", help="spans per trace (default: 2000 10000 100000)")
    a = ap.parse_args()
    for n in a.sizes or DEFAULT_SIZES:
        path = trace_path(a.out, n)
        if os.path.exists(path):
            os.remove(path)
        ensure(a.out, n)
        print(path, n, trace_id(n), os.path.getsize(path))


if __name__ == "__main__":
    main()

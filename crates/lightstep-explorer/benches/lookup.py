#!/usr/bin/env python3
"""Times the lookup of span details in large trace files, as `lightstep ui FILE` does it.

For each file: starts `lightstep ui --ui 127.0.0.1:0 FILE`, waits for its URL, reads the
process's resident memory (VmRSS and its peak VmHWM, from /proc), then asks for the details of
spans (`GET /api/spans/{trace}/{span}`) of the first trace the search lists: `--spans` spans
spread over the trace, each a lookup of its own when the trace is over the lookup budget (one
read of the file each), or one lookup then answers from what it kept. Prints, per file, the
time of the first lookup, the median and worst time of the others, whether each answer had
details, and the memory after reading and after the lookups.

  python3 crates/lightstep-explorer/benches/lookup.py --binary target/release/lightstep \\
      --spans 5 DIR/random.otlp.json DIR/random.otlp.pb DIR/many.otlp.json ...
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time
import urllib.request


def memory(pid):
    """(VmRSS, VmHWM) of `pid`, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        text = status.read()
    value = lambda key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) / 1024
    return value("VmRSS"), value("VmHWM")


def get(base, path):
    started = time.monotonic()
    with urllib.request.urlopen(base + path, timeout=600) as answer:
        body = json.load(answer)
    return time.monotonic() - started, body


def measure(binary, path, spans):
    ui = subprocess.Popen(
        [binary, "ui", "--ui", "127.0.0.1:0", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = None
        for line in ui.stdout:
            found = re.search(r"(http://[0-9.:]+/)", line)
            if found:
                base = found.group(1)
                break
        if base is None:
            raise RuntimeError(f"{path}: lightstep ui printed no URL")
        read_mib = memory(ui.pid)
        _, search = get(base, "api/search?limit=1&sort=start")
        trace = search["traces"][0]
        _, rows = get(base, f"api/trace-rows/{trace['trace_id']}?offset=0&limit=1")
        total = rows["visible_rows"]
        step = max(1, total // spans)
        times, details = [], []
        for k in range(spans):
            _, row = get(base, f"api/trace-rows/{trace['trace_id']}?offset={min(k * step, total - 1)}&limit=1")
            span = row["rows"][0]["span_id"]
            took, body = get(base, f"api/spans/{trace['trace_id']}/{span}")
            times.append(took)
            details.append(body["has_details"])
        after_mib = memory(ui.pid)
        return {
            "file": path,
            "trace_spans": total,
            "first_s": times[0],
            "others_median_s": statistics.median(times[1:]) if len(times) > 1 else None,
            "others_worst_s": max(times[1:]) if len(times) > 1 else None,
            "with_details": f"{sum(details)}/{len(details)}",
            "rss_after_read_mib": round(read_mib[0], 1),
            "rss_after_lookups_mib": round(after_mib[0], 1),
            "peak_mib": round(after_mib[1], 1),
        }
    finally:
        ui.terminate()
        ui.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--spans", type=int, default=5)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    for path in args.files:
        result = measure(args.binary, path, args.spans)
        print(json.dumps(result))
        sys.stdout.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times `lightstep analyze --format json FILE` for two builds side by side, with /usr/bin/time -v.

For each file, the new build (A) and the baseline (B) run in turn, A B A B ..., after one
warm-up run each (which also brings the file into the page cache); the output goes to
/dev/null. Prints, per file and build, the median over the runs of wall time, user+sys CPU and
peak resident memory (maximum resident set size), the latter also per span when --spans is
given, and the median of the ratios A/B of wall time taken run by run. A build whose warm-up
run takes longer than --timeout seconds is stopped and not run again on that file: its row says
so.

  python3 time_analyze.py --new target/release/lightstep --old /tmp/lightstep-old \\
      --spans 1000000 --runs 5 DIR/sequential.otlp.json DIR/chain.otlp.json ...
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys


def run(binary, path, timeout=None):
    """One run: (wall seconds, user+sys seconds, peak resident bytes); None past `timeout`."""
    # In a session of its own, so that a run past the timeout is stopped with what it started.
    child = subprocess.Popen(
        ["/usr/bin/time", "-v", binary, "analyze", "--format", "json", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, report = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return None
    if child.returncode != 0:
        sys.exit("%s %s failed:\n%s" % (binary, path, report[-2000:]))

    def field(name):
        match = re.search(r"^\s*%s: (.*)$" % re.escape(name), report, re.MULTILINE)
        if not match:
            sys.exit("no %r in /usr/bin/time's report:\n%s" % (name, report[-2000:]))
        return match.group(1).strip()

    clock = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    wall = 0.0
    for part in clock.split(":"):
        wall = wall * 60 + float(part)
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    peak = int(field("Maximum resident set size (kbytes)")) * 1024
    return wall, cpu, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new", required=True, help="the lightstep binary measured (A)")
    parser.add_argument("--old", required=True, help="the baseline lightstep binary (B)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--spans", type=int, help="spans per file, for bytes per span")
    parser.add_argument("--timeout", type=float, default=120, help="seconds for a warm-up run")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    print("| file | build | wall (s) | user+sys (s) | peak RSS (MB) | bytes/span | wall A/B |")
    print("|---|---|---|---|---|---|---|")
    for path in args.files:
        builds = [b for b in (args.new, args.old) if run(b, path, args.timeout) is not None]
        runs = {b: [] for b in builds}
        for _ in range(args.runs):
            for binary in builds:
                runs[binary].append(run(binary, path))
        name = path.rsplit("/", 1)[-1]
        ratio = None
        if len(builds) == 2:
            ratio = statistics.median(
                a[0] / b[0] for a, b in zip(runs[args.new], runs[args.old])
            )
        for label, binary in (("new", args.new), ("old", args.old)):
            if binary not in builds:
                print("| %s | %s | over %.0f (stopped) | | | | |" % (name, label, args.timeout))
                continue
            wall = statistics.median(r[0] for r in runs[binary])
            cpu = statistics.median(r[1] for r in runs[binary])
            peak = statistics.median(r[2] for r in runs[binary])
            per_span = "%.0f" % (peak / args.spans) if args.spans else ""
            print(
                "| %s | %s | %.2f | %.2f | %.0f | %s | %s |"
                % (name, label, wall, cpu, peak / 1e6, per_span,
                   "%.2f" % ratio if label == "new" and ratio else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Resident memory per span that `lightstep dev` holds, for one or more builds side by side.

Three measures, each on a fresh `lightstep dev` process:

- receiver: the spans of incomplete traces, waiting in the embedded receiver's store (started
  with a long `--idle`, so that no trace completes while it is measured);
- explorer: completed traces, held by the trace explorer in the analysis's span model (a short
  `--idle`, then a wait until the explorer holds every trace);
- none held: the same without the explorer (`--no-ui`), three seconds after the last request,
  when every trace has completed, been printed and dropped: what the process keeps of having
  received and analyzed them (memory the allocator holds for reuse), which the explorer's
  figure includes too. With `--rounds R` the spans are sent R times, three seconds apart, and
  the growth is still divided by the spans of one round: whether what is kept grows with what
  was received.

The spans are the first traces of an OTLP protobuf file of many small traces (`many.otlp.pb`
from `crates/lightstep-analysis/benches/make_big_traces.py`), posted to the OTLP/HTTP listener
in requests of about 1 MB. Each figure is the growth of the process's resident memory
(`VmRSS` in /proc/<pid>/status) from before the first request to after the last (receiver) or
once the explorer holds them all (explorer), divided by the number of spans; builds are run in
turn (A B A B ...) and the median of the runs is printed.

    python3 crates/lightstep-cli/benches/dev_memory.py --runs 3 \\
        --build new=target/release/lightstep --build old=/tmp/old/target/release/lightstep \\
        /tmp/big/many.otlp.pb
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def varint(data, i):
    value, shift = 0, 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def resource_spans(data):
    """The top-level `resource_spans` fields of a TracesData message, each whole."""
    i = 0
    while i < len(data):
        start = i
        key, i = varint(data, i)
        if key != 0x0A:
            sys.exit("not an OTLP TracesData file of resource_spans only (key %d at %d)" % (key, start))
        length, i = varint(data, i)
        i += length
        yield data[start:i]


def count_spans(message):
    """Spans in one ResourceSpans message (field 2 ScopeSpans, its field 2 spans)."""
    spans = 0
    _, i = varint(message, 0)
    _, i = varint(message, i)
    end = len(message)
    while i < end:
        key, i = varint(message, i)
        length, i = varint(message, i)
        if key == 0x12:
            j = i
            while j < i + length:
                inner_key, j = varint(message, j)
                inner_length, j = varint(message, j)
                if inner_key == 0x12:
                    spans += 1
                j += inner_length
        i += length
    return spans


def requests(path, traces, request_bytes=1 << 20):
    """Request bodies of the file's first `traces` ResourceSpans (each a trace of its own, as in
    `many.otlp.pb`), the spans in them and the traces taken."""
    data = open(path, "rb").read()
    bodies, body, spans, taken = [], [], 0, 0
    for message in resource_spans(data):
        if taken == traces:
            break
        taken += 1
        spans += count_spans(message)
        body.append(message)
        if sum(map(len, body)) >= request_bytes:
            bodies.append(b"".join(body))
            body = []
    if body:
        bodies.append(b"".join(body))
    return bodies, spans, taken


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_for(what, check, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("gave up waiting for %s" % what)


def measure(binary, bodies, spans, traces, mode, rounds=1):
    http, grpc, ui = free_port(), free_port(), free_port()
    args = [binary, "dev", "--http", "127.0.0.1:%d" % http, "--grpc", "127.0.0.1:%d" % grpc]
    explorer = mode == "explorer"
    if explorer:
        args += ["--idle", "200ms", "--ui", "127.0.0.1:%d" % ui]
    elif mode == "receiver":
        args += ["--idle", "3600s", "--no-ui"]
    else:
        args += ["--idle", "200ms", "--no-ui"]
    child = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        def listening(port):
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        wait_for("the OTLP/HTTP listener", lambda: listening(http))
        if explorer:
            wait_for("the explorer", lambda: listening(ui))
        time.sleep(0.5)
        before = rss(child.pid)
        url = "http://127.0.0.1:%d/v1/traces" % http
        for sent in range(rounds):
            if sent > 0:
                time.sleep(3)
            for body in bodies:
                request = urllib.request.Request(
                    url, data=body, headers={"Content-Type": "application/x-protobuf"}
                )
                with urllib.request.urlopen(request, timeout=30) as answer:
                    answer.read()
        if explorer:
            status = "http://127.0.0.1:%d/api/status" % ui

            def all_held():
                with urllib.request.urlopen(status, timeout=5) as answer:
                    return json.load(answer)["traces"] >= traces

            wait_for("the explorer to hold every trace", all_held)
        time.sleep(0.5 if mode != "none" else 3)
        return (rss(child.pid) - before) / spans
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="append", required=True, help="NAME=PATH of a lightstep binary")
    parser.add_argument("--traces", type=int, default=3000, help="traces to send (default 3000; the receiver holds at most 200,000 spans)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times the spans are sent for the 'none held' measure, each after the last completed"
        " (default 1); its figure is still per span of one round",
    )
    parser.add_argument("file", help="an OTLP protobuf file of many traces (many.otlp.pb)")
    args = parser.parse_args()
    builds = [b.split("=", 1) for b in args.build]
    bodies, spans, traces = requests(args.file, args.traces)
    print("%d traces, %d spans, %d requests" % (traces, spans, len(bodies)))
    modes = ("receiver", "explorer", "none")
    print("| build | receiver store | explorer | none held |")
    print("|---|---|---|---|")
    figures = {(name, mode): [] for name, _ in builds for mode in modes}
    for _ in range(args.runs):
        for name, binary in builds:
            for mode in modes:
                rounds = args.rounds if mode == "none" else 1
                figures[name, mode].append(measure(binary, bodies, spans, traces, mode, rounds))
    for name, _ in builds:
        cells = ["%.0f B" % statistics.median(figures[name, mode]) for mode in modes]
        print("| %s | %s |" % (name, " | ".join(cells)))


if __name__ == "__main__":
    main()

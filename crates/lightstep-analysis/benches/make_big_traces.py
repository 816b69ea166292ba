#!/usr/bin/env python3
"""Writes the trace files of the end-to-end benchmark in docs/benchmarks.md.

Four shapes of 1,000,000 spans (the count can be changed with --spans):
  sequential  one trace: a root with 999,999 sequential children
  chain       one trace: a chain 1,000,000 spans deep
  random      one trace: a random tree (each span's parent drawn among the spans before it)
  many        20,000 traces of 50 spans each, each a random tree
in four formats:
  otlp-json   one document (many: JSON Lines, one document per trace, as the Collector's
              file exporter writes)
  otlp-proto  one TracesData
  jaeger-json the query API's {"data": [...]}
  zipkin-json one trace: an array of spans; many: an array of traces

Every format describes the same spans: times are whole microseconds (Jaeger and Zipkin count
in microseconds), kinds are internal, server and client in turn, and client spans name their
peer (server.address and server.port, a Zipkin remote endpoint).

  python3 make_big_traces.py --out DIR            # all sixteen files, DIR/<shape>.<format>
  python3 make_big_traces.py SHAPE FORMAT > FILE  # one of them
"""
import argparse
import json
import os
import random
import struct
import sys

SHAPES = ("sequential", "chain", "random", "many")
FORMATS = ("otlp-json", "otlp-proto", "jaeger-json", "zipkin-json")
BASE_US = 1_700_000_000_000_000
TRACES_IN_MANY = 20_000
KINDS = ("internal", "server", "client")


def trace_hex(t):
    return "5b8efff798038103d269b633%08x" % t


def spans_of(shape, n):
    """Yields (trace, span number, parent number or None, start us, end us), numbers from 1."""
    if shape == "sequential":
        yield (0, 1, None, BASE_US, BASE_US + (n - 1) * 1000 + 1000)
        for i in range(1, n):
            start = BASE_US + (i - 1) * 1000 + 100
            yield (0, i + 1, 1, start, start + 800)
    elif shape == "chain":
        for i in range(n):
            yield (0, i + 1, i if i else None, BASE_US + i, BASE_US + 2 * n - i)
    elif shape == "random":
        yield from random_tree(random.Random(7), 0, 0, n, 10**9)
    elif shape == "many":
        rng = random.Random(7)
        per = max(n // TRACES_IN_MANY, 1)
        for t in range(n // per):
            yield from random_tree(rng, t, t * per, per, 10**6)
    else:
        raise SystemExit("unknown shape %r; shapes: %s" % (shape, ", ".join(SHAPES)))


def random_tree(rng, t, first, n, window):
    base = BASE_US + t * window
    win = [(base, base + window)]
    yield (t, first + 1, None, base, base + window)
    for i in range(1, n):
        parent = rng.randrange(i)
        ps, pe = win[parent]
        s = ps + rng.randrange(max(pe - ps, 1))
        e = s + rng.randrange(max(pe - s, 1))
        win.append((s, e))
        yield (t, first + i + 1, first + parent + 1, s, e)


def by_trace(spans):
    """Groups consecutive spans of the same trace."""
    current, group = None, []
    for span in spans:
        if span[0] != current and group:
            yield current, group
            group = []
        current = span[0]
        group.append(span)
    if group:
        yield current, group


def service(t):
    return "svc%d" % (t % 10)


# ---- OTLP JSON ------------------------------------------------------------------------------

def otlp_json_span(t, i, parent, s, e):
    kind = 1 + i % 3
    parent_field = '"parentSpanId":"%016x",' % parent if parent else ""
    peer = (
        ',{"key":"server.address","value":{"stringValue":"db"}},'
        '{"key":"server.port","value":{"intValue":"5432"}}'
        if kind == 3
        else ""
    )
    return (
        '{"traceId":"%s","spanId":"%016x",%s"name":"op%d","kind":%d,'
        '"startTimeUnixNano":"%d","endTimeUnixNano":"%d",'
        '"attributes":[{"key":"k","value":{"stringValue":"v"}}%s],"status":{}}'
        % (trace_hex(t), i, parent_field, i % 50, kind, s * 1000, e * 1000, peer)
    )


def otlp_json(out, shape, n):
    head = (
        '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
        '{"stringValue":"%s"}}]},"scopeSpans":[{"scope":{"name":"gen"},"spans":[\n'
    )
    if shape == "many":
        for t, group in by_trace(spans_of(shape, n)):
            out.write(head.replace("\n", "") % service(t))
            out.write(",".join(otlp_json_span(*span) for span in group))
            out.write("]}]}]}\n")
        return
    out.write(head % "bench")
    first = True
    for span in spans_of(shape, n):
        if not first:
            out.write(",\n")
        first = False
        out.write(otlp_json_span(*span))
    out.write("\n]}]}]}\n")


# ---- OTLP protobuf --------------------------------------------------------------------------

def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def string_kv(key, value):
    return field(1, key.encode()) + field(2, field(1, value.encode()))


def int_kv(key, value):
    return field(1, key.encode()) + field(2, varint(3 << 3) + varint(value))


def otlp_proto_span(t, i, parent, s, e):
    kind = 1 + i % 3
    body = field(1, bytes.fromhex(trace_hex(t))) + field(2, struct.pack(">Q", i))
    if parent:
        body += field(4, struct.pack(">Q", parent))
    body += field(5, b"op%d" % (i % 50)) + varint(6 << 3) + varint(kind)
    body += varint(7 << 3 | 1) + struct.pack("<Q", s * 1000)
    body += varint(8 << 3 | 1) + struct.pack("<Q", e * 1000)
    body += field(9, string_kv("k", "v"))
    if kind == 3:
        body += field(9, string_kv("server.address", "db")) + field(9, int_kv("server.port", 5432))
    body += field(15, b"")
    return field(2, body)


def resource_spans(name, spans):
    resource = field(1, field(1, string_kv("service.name", name)))
    scope = field(1, field(1, b"gen")) + b"".join(otlp_proto_span(*s) for s in spans)
    return field(1, resource + field(2, scope))


def otlp_proto(out, shape, n):
    if shape == "many":
        for t, group in by_trace(spans_of(shape, n)):
            out.write(resource_spans(service(t), group))
    else:
        out.write(resource_spans("bench", list(spans_of(shape, n))))


# ---- Jaeger JSON ----------------------------------------------------------------------------

def jaeger_span(t, i, parent, s, e):
    kind = KINDS[i % 3]
    refs = (
        '{"refType":"CHILD_OF","traceID":"%s","spanID":"%016x"}' % (trace_hex(t), parent)
        if parent
        else ""
    )
    peer = (
        ',{"key":"server.address","type":"string","value":"db"},'
        '{"key":"server.port","type":"int64","value":5432}'
        if kind == "client"
        else ""
    )
    return (
        '{"traceID":"%s","spanID":"%016x","operationName":"op%d","references":[%s],'
        '"startTime":%d,"duration":%d,"tags":[{"key":"span.kind","type":"string","value":"%s"},'
        '{"key":"k","type":"string","value":"v"}%s],"logs":[],"processID":"p1","warnings":null}'
        % (trace_hex(t), i, i % 50, refs, s, e - s, kind, peer)
    )


def jaeger_json(out, shape, n):
    out.write('{"data":[')
    for k, (t, group) in enumerate(by_trace(spans_of(shape, n))):
        name = service(t) if shape == "many" else "bench"
        out.write("," if k else "")
        out.write('{"traceID":"%s","spans":[\n' % trace_hex(t))
        out.write(",\n".join(jaeger_span(*span) for span in group))
        out.write(
            '],"processes":{"p1":{"serviceName":"%s","tags":[{"key":"hostname","type":"string",'
            '"value":"h1"}]}},"warnings":null}' % name
        )
    out.write('],"total":0,"limit":0,"offset":0,"errors":null}\n')


# ---- Zipkin JSON ----------------------------------------------------------------------------

def zipkin_span(name, t, i, parent, s, e):
    kind = KINDS[i % 3]
    fields = ['"traceId":"%s"' % trace_hex(t), '"id":"%016x"' % i]
    if parent:
        fields.append('"parentId":"%016x"' % parent)
    if kind != "internal":
        fields.append('"kind":"%s"' % kind.upper())
    fields.append('"name":"op%d","timestamp":%d,"duration":%d' % (i % 50, s, e - s))
    fields.append('"localEndpoint":{"serviceName":"%s","ipv4":"10.0.0.1"}' % name)
    if kind == "client":
        fields.append('"remoteEndpoint":{"serviceName":"db","port":5432}')
    fields.append('"tags":{"k":"v"}')
    return "{" + ",".join(fields) + "}"


def zipkin_json(out, shape, n):
    if shape == "many":
        out.write("[")
        for k, (t, group) in enumerate(by_trace(spans_of(shape, n))):
            out.write(",\n" if k else "")
            out.write("[" + ",".join(zipkin_span(service(t), *s) for s in group) + "]")
        out.write("]\n")
        return
    out.write("[\n")
    first = True
    for span in spans_of(shape, n):
        if not first:
            out.write(",\n")
        first = False
        out.write(zipkin_span("bench", *span))
    out.write("\n]\n")


WRITERS = {
    "otlp-json": (otlp_json, "otlp.json", "w"),
    "otlp-proto": (otlp_proto, "otlp.pb", "wb"),
    "jaeger-json": (jaeger_json, "jaeger.json", "w"),
    "zipkin-json": (zipkin_json, "zipkin.json", "w"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shape", nargs="?", choices=SHAPES)
    parser.add_argument("format", nargs="?", choices=FORMATS)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--out", help="write every shape in every format to this folder")
    args = parser.parse_args()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for shape in SHAPES:
            for fmt, (write, suffix, mode) in WRITERS.items():
                path = os.path.join(args.out, "%s.%s" % (shape, suffix))
                with open(path, mode) as out:
                    write(out, shape, args.spans)
                print(path, os.path.getsize(path), file=sys.stderr)
        return
    if not (args.shape and args.format):
        parser.error("name a shape and a format, or --out DIR")
    write, _, mode = WRITERS[args.format]
    out = sys.stdout.buffer if mode == "wb" else sys.stdout
    write(out, args.shape, args.spans)


if __name__ == "__main__":
    main()

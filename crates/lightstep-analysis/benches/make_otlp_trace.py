#!/usr/bin/env python3
# Writes one OTLP JSON trace of N spans (default 1,000,000; a random tree, one attribute per
# span, string timestamps) to stdout, for the end-to-end measurement in docs/benchmarks.md:
#   python3 crates/lightstep-analysis/benches/make_otlp_trace.py > /tmp/span1m.json
import random, sys
random.seed(7)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
out = sys.stdout
out.write('{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"bench"}}]},"scopeSpans":[{"scope":{"name":"gen"},"spans":[\n')
base = 1_700_000_000_000_000_000
win = [(base, base + 10**12)]
for i in range(n):
    if i == 0:
        s, e, p = win[0][0], win[0][1], None
    else:
        p = random.randrange(i)
        ps, pe = win[p]
        s = ps + random.randrange(max(pe - ps, 1))
        e = s + random.randrange(max(pe - s, 1))
        win.append((s, e))
    parent = '' if p is None else '"parentSpanId":"%016x",' % (p + 1)
    sep = ',\n' if i else ''
    out.write('%s{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"%016x",%s"name":"op%d","kind":%d,"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[{"key":"k","value":{"stringValue":"v"}}],"status":{}}' % (sep, i + 1, parent, i % 50, 1 + i % 5, s, e))
out.write(']}]}]}\n')

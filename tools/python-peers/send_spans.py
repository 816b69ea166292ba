#!/usr/bin/env python3
"""Send spans with the Python OpenTelemetry SDK's OTLP exporters, exactly as an application would.

One trace: a root span `py-root` and COUNT-1 children `py-child-<i>`, each with attributes
py.index (int), py.label (str), py.ratio (float), py.flag (bool) and py.list (int array), under
the resource service.name=SERVICE. The spans go through the SDK's BatchSpanProcessor to the
exporter for PROTOCOL; the exporter's results are checked.

Prints one JSON line on stdout: {"trace_id": "<32 hex>", "root_span_id": "<16 hex>",
"exported": N, "failed_exports": F}. Exits 0 only when every span was exported.

Usage: send_spans.py --endpoint URL --protocol grpc|http/protobuf --count N
                     [--token T] [--service NAME] [--gzip] [--ca-file PEM]
For http/protobuf, ENDPOINT is the full traces URL (…/v1/traces).
"""

import argparse
import json
import os
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)


class CheckedExporter(SpanExporter):
    """Counts what the real exporter reports, so a failed export fails the script."""

    def __init__(self, inner):
        self.inner = inner
        self.exported = 0
        self.failed_exports = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed_exports += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def make_exporter(args):
    headers = {"lightstep-access-token": args.token} if args.token else {}
    if args.protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        kwargs = {}
        if args.ca_file:
            with open(args.ca_file, "rb") as f:
                kwargs["credentials"] = grpc.ssl_channel_credentials(f.read())
            kwargs["insecure"] = False
        else:
            kwargs["insecure"] = True
        return OTLPSpanExporter(
            endpoint=args.endpoint,
            headers=headers,
            timeout=args.timeout,
            compression=grpc.Compression.Gzip if args.gzip else grpc.Compression.NoCompression,
            **kwargs,
        )
    if args.protocol == "http/protobuf":
        if args.ca_file:
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override the
            # CA file the exporter sets on its session (psf/requests#3829), so a machine that
            # sets them would never trust our test CA.
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
            os.environ.pop("CURL_CA_BUNDLE", None)
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=args.endpoint,
            headers=headers,
            timeout=args.timeout,
            certificate_file=args.ca_file,
            compression=Compression.Gzip if args.gzip else Compression.NoCompression,
        )
    raise SystemExit(f"unknown protocol {args.protocol!r}: use grpc or http/protobuf")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", required=True, choices=["grpc", "http/protobuf"])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--token")
    parser.add_argument("--service", default="python-peer")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--ca-file")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if args.count < 1:
        raise SystemExit("--count must be at least 1")

    exporter = CheckedExporter(make_exporter(args))
    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=64))
    tracer = provider.get_tracer("python-peers", "1.0")

    with tracer.start_as_current_span("py-root", attributes={"py.index": 0}) as root:
        ctx = root.get_span_context()
        for i in range(1, args.count):
            with tracer.start_as_current_span(f"py-child-{i}") as child:
                child.set_attribute("py.index", i)
                child.set_attribute("py.label", f"label-{i}")
                child.set_attribute("py.ratio", i / 4)
                child.set_attribute("py.flag", i % 2 == 0)
                child.set_attribute("py.list", [i, i + 1, i + 2])

    flushed = provider.force_flush(int(args.timeout * 1000) * 2)
    provider.shutdown()
    print(
        json.dumps(
            {
                "trace_id": format(ctx.trace_id, "032x"),
                "root_span_id": format(ctx.span_id, "016x"),
                "exported": exporter.exported,
                "failed_exports": exporter.failed_exports,
            }
        )
    )
    if not flushed or exporter.exported != args.count or exporter.failed_exports:
        print(
            f"send_spans.py: exported {exporter.exported} of {args.count} spans, "
            f"{exporter.failed_exports} failed exports, flushed={flushed}",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()

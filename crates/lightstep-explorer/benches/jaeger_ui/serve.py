#!/usr/bin/env python3
"""Serve Jaeger UI's built static files and forward /api/* to a running lightstep explorer.

    python3 serve.py --jaeger-ui-build JAEGER_UI/packages/jaeger-ui/build \
        --backend http://127.0.0.1:PORT [--listen 127.0.0.1:0] [--log FILE]

Prints `listening on http://HOST:PORT/` once ready. Unknown paths that are not files fall back
to index.html (Jaeger UI is a single-page app). /api/* is forwarded with the Host header set to
the explorer's own address (the explorer refuses any other Host). Every forwarded request is
appended to --log as one JSON line: method, path, status, bytes, ms.
"""

import argparse
import http.client
import json
import mimetypes
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate", "content-length"}


def make_handler(static_root, backend, log_path):
    b = urllib.parse.urlsplit(backend)
    bhost, bport = b.hostname, b.port or 80
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            # Forwarded requests go to --log; per-asset lines on stderr would only be noise.
            pass

        def _log(self, status, nbytes, ms):
            if not log_path:
                return
            with log_lock, open(log_path, "a") as f:
                f.write(json.dumps({"t": time.time(), "method": self.command, "path": self.path,
                                    "status": status, "bytes": nbytes, "ms": round(ms, 1)}) + "\n")

        def _proxy(self):
            t0 = time.perf_counter()
            body = None
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                body = self.rfile.read(n)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP and k.lower() != "host"}
            headers["Host"] = f"{bhost}:{bport}"
            conn = http.client.HTTPConnection(bhost, bport, timeout=600)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except Exception as e:  # the explorer is gone or did not answer
                data = f"proxy error: {e}\n".encode()
                self.send_response(502)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self._log(502, len(data), (time.perf_counter() - t0) * 1000)
                return
            finally:
                conn.close()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self._log(resp.status, len(data), (time.perf_counter() - t0) * 1000)

        def _static(self):
            path = urllib.parse.urlsplit(self.path).path
            rel = os.path.normpath(urllib.parse.unquote(path)).lstrip("/")
            full = os.path.join(static_root, rel)
            if rel.startswith("..") or not os.path.isfile(full):
                # Jaeger UI's index.html guesses its base path from the URL, so a trace id that
                # itself holds "/trace" (such as trace-123, under /trace/) makes it ask for
                # /trace/static/...: serve such an asset by its place under static/. (Its router
                # still shows "Page not found" for such an id; that is Jaeger UI's own limit.)
                tail = rel.split("static/", 1)[1] if "static/" in rel else None
                cand = os.path.join(static_root, "static", tail) if tail else None
                full = cand if cand and ".." not in tail and os.path.isfile(cand) else os.path.join(static_root, "index.html")
            with open(full, "rb") as f:
                data = f.read()
            ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _dispatch(self):
            if self.path.startswith("/api/") or self.path == "/api":
                self._proxy()
            elif self.command in ("GET", "HEAD"):
                self._static()
            else:
                self.send_error(405)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jaeger-ui-build", required=True, metavar="DIR",
                    help="Jaeger UI's build output (packages/jaeger-ui/build in its checkout)")
    ap.add_argument("--backend", required=True, help="the explorer's URL, http://127.0.0.1:PORT")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--log", default=None, metavar="FILE", help="append one JSON line per forwarded request")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost", "::1"):
        # The proxy forwards anything under /api to the explorer; keep it off the network.
        sys.exit("--listen must be a loopback address")
    if not os.path.isfile(os.path.join(a.jaeger_ui_build, "index.html")):
        sys.exit(f"no index.html in {a.jaeger_ui_build}: build Jaeger UI first (build_jaeger_ui.sh)")
    mimetypes.add_type("application/javascript", ".js")
    mimetypes.add_type("text/css", ".css")
    srv = ThreadingHTTPServer((host, int(port)), make_handler(a.jaeger_ui_build, a.backend, a.log))
    srv.daemon_threads = True
    print(f"listening on http://{host}:{srv.server_address[1]}/", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

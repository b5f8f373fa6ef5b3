"""A local OTLP/HTTP trace receiver for benchmarks: ``python -m bench.otlp_sink PORT``.

Stands in for the collector a deployment runs beside the services (no collector or Jaeger binary
comes from the registries this project installs from). It does what a collector's receiver does
before its pipeline: reads each ``POST /v1/traces`` body, decodes the protobuf
``ExportTraceServiceRequest``, counts spans, and answers an empty ``ExportTraceServiceResponse``.
``GET /readyz`` answers 200; ``GET /stats`` the counts as JSON. Runs in its own process, so its CPU
competes with the service on the machine's cores as a local collector's would.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MAX_BODY = 16 << 20
_lock = threading.Lock()
_stats = {"requests": 0, "spans": 0, "bytes": 0, "rejected": 0}
_empty = ExportTraceServiceResponse().SerializeToString()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: one line per export would be the loudest thing in the benchmark

    def _answer(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/stats":
            with _lock:
                body = json.dumps(_stats).encode()
            self._answer(200, body, "application/json")
        else:
            self._answer(200 if self.path == "/readyz" else 404, b"", "text/plain")

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        if self.path != "/v1/traces" or not 0 < size <= MAX_BODY:
            with _lock:
                _stats["rejected"] += 1
            self._answer(400, b"", "text/plain")
            return
        body = self.rfile.read(size)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with _lock:
            _stats["requests"] += 1
            _stats["spans"] += spans
            _stats["bytes"] += size
        self._answer(200, _empty, "application/x-protobuf")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()

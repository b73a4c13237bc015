"""A minimal OTLP/HTTP trace receiver for benchmarks: `keiko serve` exports its spans
(KEIKO_OTLP_ENDPOINT, http/protobuf) to it, and the bench reads where an operation's
time went, hop by hop, from the spans of its trace.

    with SpanSink() as sink:
        env = sink.env()            # for the server's environment
        ...
        sink.spans                  # every span received so far
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    name: str
    service: str
    start_ns: int
    end_ns: int


class SpanSink:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                sink._receive(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def env(self) -> dict[str, str]:
        """The server's environment to export here, in batches every 200 ms."""
        port = self._server.server_address[1]
        return {
            "KEIKO_OTLP_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def _receive(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            span.trace_id.hex(),
                            span.name,
                            service,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                        )
                    )
        with self._lock:
            self.spans += received

    def trace_of(self, name_contains: str, after_ns: int) -> list[ReceivedSpan]:
        """The spans of the first trace (by start) with a span named like
        ``name_contains`` that started at or after ``after_ns``."""
        with self._lock:
            spans = list(self.spans)
        roots = sorted(
            (s for s in spans if name_contains in s.name and s.start_ns >= after_ns),
            key=lambda s: s.start_ns,
        )
        if not roots:
            return []
        trace_id = roots[0].trace_id
        return sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: s.start_ns)

    def __enter__(self) -> SpanSink:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

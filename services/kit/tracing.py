"""OpenTelemetry traces: off by default, exported over OTLP when an endpoint is set.

A request is followed from the gateway (one SERVER span per HTTP request, one span per
GraphQL operation) through every gRPC hop (CLIENT span in the caller, SERVER span in the
callee, the W3C ``traceparent`` carried in the call's metadata), across the event bus
(the producer's context travels with the event, the consumer's handling is a CONSUMER
span under it) into the chain translator, and to the chain node (one CLIENT span per
JSON-RPC call, the ``traceparent`` in the HTTP headers). docs/observability.md says how
to turn it on and what each span is.

Off (no endpoint configured, nothing installed) every hook here is a check of one
module global: no interceptor is installed, no span object is made, no header added.

    configure(service_name, endpoint)      # at process start (keiko.cli)
    install(provider)                      # tests: a TracerProvider with an in-memory exporter
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

__all__ = [
    "Link",
    "SpanKind",
    "configure",
    "consumer_span",
    "current_traceparent",
    "enabled",
    "event_span",
    "inject",
    "install",
    "parent_from_span_context",
    "parent_of",
    "remember_event",
    "remembered_event",
    "set_error",
    "shutdown",
    "span",
    "span_context_of",
    "uninstall",
]

TRACEPARENT = "traceparent"
# Outbox rows whose producer context is kept until the relay publishes them (per process).
_MAX_REMEMBERED_EVENTS = 10_000

_tracer: trace.Tracer | None = None
_provider: Any = None
_event_contexts: OrderedDict[str, str] = OrderedDict()


def enabled() -> bool:
    return _tracer is not None


def install(provider: Any) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``) from now on."""
    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer("keiko")


def uninstall() -> None:
    """Back to off (tests)."""
    global _tracer, _provider
    _tracer = None
    _provider = None
    _event_contexts.clear()


def endpoint_from_env(explicit: str = "") -> str:
    """KEIKO_OTLP_ENDPOINT (``explicit``), else the standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    or OTEL_EXPORTER_OTLP_ENDPOINT; empty = tracing off."""
    return (
        explicit
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    ).strip()


def configure(service_name: str, endpoint: str = "") -> bool:
    """Export spans over OTLP to ``endpoint`` (see endpoint_from_env) in batches; returns
    whether tracing is on. The protocol is OTEL_EXPORTER_OTLP_PROTOCOL: ``http/protobuf``
    (the default, port 4318, ``/v1/traces`` is appended to a bare endpoint) or ``grpc``
    (port 4317). OTEL_SERVICE_NAME overrides ``service_name``."""
    target = endpoint_from_env(endpoint)
    if not target:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    exporter: SpanExporter
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        exporter = GrpcExporter(endpoint=target)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        if not target.rstrip("/").endswith("/v1/traces"):
            target = target.rstrip("/") + "/v1/traces"
        exporter = HttpExporter(endpoint=target)
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return True


def shutdown() -> None:
    """Flush and stop the exporter (process exit)."""
    provider = _provider
    uninstall()
    if provider is not None:
        provider.shutdown()


@contextmanager
def span(
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    *,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, str | int | bool] | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Span | None]:
    """A span around the block (None, and nothing done, when tracing is off). An
    exception leaving the block marks the span as an error."""
    tracer = _tracer
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=dict(attributes or {}),
        links=list(links),
        record_exception=True,
        set_status_on_exception=True,
    ) as current:
        yield current


@contextmanager
def consumer_span(topic: str, traceparent: str) -> Iterator[Span | None]:
    """A CONSUMER span around handling one event, child of its producer's context."""
    with event_span(
        f"{topic} process", traceparent, SpanKind.CONSUMER, topic, "process"
    ) as current:
        yield current


@contextmanager
def event_span(
    name: str, traceparent: str, kind: SpanKind, topic: str, operation: str
) -> Iterator[Span | None]:
    """A span in the trace of the event whose producer context is ``traceparent``, a
    child of that context: ``operation`` ("publish", "receive", "process") says what is
    done with the event (``messaging.operation.type``)."""
    if _tracer is None:
        yield None
        return
    parent = parent_of({TRACEPARENT: traceparent}) if traceparent else None
    attributes = {
        "messaging.system": "keiko",
        "messaging.destination.name": topic,
        "messaging.operation.type": operation,
    }
    with span(name, kind, parent=parent, attributes=attributes) as current:
        yield current


def set_error(current: Span | None, description: str) -> None:
    if current is not None:
        current.set_status(Status(StatusCode.ERROR, description))


def inject(carrier: dict[str, str]) -> None:
    """Add the current context's ``traceparent`` (and ``tracestate``) to ``carrier``."""
    if _tracer is not None:
        propagate.inject(carrier)


def parent_of(carrier: Mapping[str, str]) -> otel_context.Context:
    """The context a caller propagated in ``carrier`` (headers, metadata, event fields)."""
    return propagate.extract(carrier)


def current_traceparent() -> str:
    """The current context as a ``traceparent`` value ("" when off or outside a span)."""
    if _tracer is None:
        return ""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT, "")


def span_context_of(traceparent: str) -> trace.SpanContext | None:
    """The remote span a ``traceparent`` names (for links), or None."""
    if not traceparent:
        return None
    context = trace.get_current_span(parent_of({TRACEPARENT: traceparent})).get_span_context()
    return context if context.is_valid else None


def parent_from_span_context(span_context: trace.SpanContext) -> otel_context.Context:
    """A context whose parent is ``span_context`` (e.g. a remote span from a traceparent)."""
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


# -- events through the outbox ------------------------------------------------------------
#
# An outbox row has no column for the producer's context: the process that wrote the row
# (whose relay publishes it) keeps it here from enqueue to publication. A row relayed by
# another process, or after a restart, is published without one (its consumer span then
# starts a trace of its own).


def remember_event(event_id: str, traceparent: str) -> None:
    if _tracer is None or not traceparent:
        return
    _event_contexts[event_id] = traceparent
    while len(_event_contexts) > _MAX_REMEMBERED_EVENTS:
        _event_contexts.popitem(last=False)


def remembered_event(event_id: str) -> str:
    """The producer context of an outbox row ("" if unknown); kept until evicted, so a
    publish that fails and is retried still carries it."""
    if not _event_contexts:
        return ""
    return _event_contexts.get(event_id, "")

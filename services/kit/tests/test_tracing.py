"""Tracing is off by default and then costs nothing: no span, no carried context, no
extra field on events; on, an event made in a span carries that span's context through
its fields (Redis entries, the in-process copy) and the outbox's relay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit import tracing
from services.kit.events import Event


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()


def test_off_by_default_nothing_is_made_or_carried() -> None:
    assert not tracing.enabled()
    with tracing.span("nothing") as span:
        assert span is None
    carrier: dict[str, str] = {}
    tracing.inject(carrier)
    assert carrier == {}
    event = Event("learning.interaction_recorded", key="k", payload={})
    assert event.traceparent == ""
    assert "traceparent" not in event.to_fields()


def test_an_event_carries_its_producers_context(spans: InMemorySpanExporter) -> None:
    with tracing.span("produce") as span:
        assert span is not None
        event = Event("learning.interaction_recorded", key="k", payload={"a": 1})
        tracing.remember_event(event.id, event.traceparent)
    copy = Event.from_fields(event.to_fields())
    assert copy.traceparent == event.traceparent != ""
    assert tracing.remembered_event(event.id) == event.traceparent
    with tracing.consumer_span(copy.topic, copy.traceparent):
        pass
    produced, consumed = spans.get_finished_spans()
    assert consumed.parent is not None
    assert consumed.parent.span_id == produced.context.span_id
    assert consumed.context.trace_id == produced.context.trace_id

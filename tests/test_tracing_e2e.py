"""Traces end to end (docs/observability.md), on the real platform and the Keikochain dev
node, both engines: one GraphQL ``recordInteraction`` makes one trace that runs from the
gateway's HTTP span through the gRPC hop into learning, across the event bus into the
translator's intake, into the batch that anchors the record, and to the JSON-RPC calls
that send it to the node. Spans are collected with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from keiko import registry
from keiko.platform import RunningPlatform, running_platform
from services.kit import tracing
from tests.e2e_support import (
    GraphQLClient,
    e2e_settings,
    engine_env,
    gateway_http,
    migrate_all,
    sign_up_and_log_in,
)

RECORD = """
mutation Record($input: InteractionInput!) {
  recordInteraction(input: $input) { id anchor { status } }
}"""
ANCHOR = "query Anchor($id: ID!) { interaction(id: $id) { anchor { status } } }"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.install(provider)
    try:
        yield spans
    finally:
        tracing.uninstall()
        provider.shutdown()


@pytest.fixture
async def platform(
    exporter: InMemorySpanExporter,
    tmp_path: Path,
    database_url: str,
    event_bus_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[RunningPlatform]:
    engine_env(monkeypatch, database_url, batch_max_leaves="1", batch_max_wait_ms="200")
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    await migrate_all(database_url)
    async with running_platform(settings, registry.resolve(None)) as running:
        yield running


def _one(spans: list[ReadableSpan], **attributes: object) -> ReadableSpan:
    """The first span with all of these attributes."""
    for span in spans:
        if all((span.attributes or {}).get(k) == v for k, v in attributes.items()):
            return span
    raise AssertionError(f"no span with {attributes} among {sorted({s.name for s in spans})}")


def _parent(spans: list[ReadableSpan], child: ReadableSpan) -> ReadableSpan:
    assert child.parent is not None, f"{child.name} has no parent"
    by_id = {s.context.span_id: s for s in spans}
    assert child.parent.span_id in by_id, f"the parent of {child.name} was not exported"
    return by_id[child.parent.span_id]


async def test_one_record_interaction_is_one_trace_from_gateway_to_node(
    platform: RunningPlatform, exporter: InMemorySpanExporter
) -> None:
    async with gateway_http(platform) as http:
        gql = GraphQLClient(http)
        await sign_up_and_log_in(gql, "tia@example.org", "Tia")
        exporter.clear()
        recorded = await gql(
            RECORD,
            input={
                "interactionType": "ANSWER",
                "activityId": "https://keiko.example/activities/traced",
                "title": "traced",
                "content": "what is 2 squared?",
                "response": "4",
            },
        )
        interaction_id = recorded["recordInteraction"]["id"]
        for _ in range(120):
            anchor = (await gql(ANCHOR, id=interaction_id))["interaction"]["anchor"]
            if anchor["status"] == "ANCHORED":
                break
            await asyncio.sleep(0.5)
        assert anchor["status"] == "ANCHORED", anchor

    # The watcher may confirm the batch from the chain's events before the engine's send
    # (the "anchor batch" span) has its receipt: wait for that span to end (bounded).
    for _ in range(120):
        spans = list(exporter.get_finished_spans())
        if any(s.name == "anchor batch" for s in spans):
            break
        await asyncio.sleep(0.5)
    operation = _one(spans, **{"graphql.operation.name": "Record"})
    assert operation.name == "graphql mutation Record"
    trace_id = operation.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]

    # gateway: HTTP server span, the GraphQL operation under it
    http_span = _parent(in_trace, operation)
    assert (http_span.kind, http_span.name) == (SpanKind.SERVER, "POST /graphql")
    # gateway -> learning over gRPC: client span in the gateway, server span in learning
    (learning,) = (
        s
        for s in in_trace
        if s.kind is SpanKind.SERVER
        and (s.attributes or {}).get("rpc.method") == "RecordInteraction"
    )
    assert learning.name == "keiko.learning.v1.LearningService/RecordInteraction"
    client = _parent(in_trace, learning)
    assert client.kind is SpanKind.CLIENT and client.name == learning.name
    assert _parent(in_trace, client) is operation
    # learning -> translator through the event bus: the translator's intake is one of the
    # consumers of the event (the passport is another), each a CONSUMER span under learning
    consumers = [
        s
        for s in in_trace
        if (s.attributes or {}).get("messaging.destination.name") == "learning.interaction_recorded"
        and (s.attributes or {}).get("messaging.operation.type") == "process"
    ]
    for consumer in consumers:
        assert consumer.kind is SpanKind.CONSUMER
        assert consumer.name == "learning.interaction_recorded process"
        assert _parent(in_trace, consumer) is learning
    # translator -> node: the batch carrying the record is a child of the intake's span,
    # linked to it; the JSON-RPC calls sending it are under the batch
    batch = _one(in_trace, **{"keiko.batch.domain": "learning"})
    assert batch.name == "anchor batch"
    intake = _parent(in_trace, batch)
    assert intake in consumers
    assert [link.context.span_id for link in batch.links] == [intake.context.span_id]
    invoke = _one(in_trace, **{"rpc.method": "starknet_addInvokeTransaction"})
    assert (invoke.kind, invoke.attributes["rpc.system"]) == (SpanKind.CLIENT, "jsonrpc")
    ancestor = invoke
    while ancestor is not batch:
        ancestor = _parent(in_trace, ancestor)  # fails if the call is not under the batch

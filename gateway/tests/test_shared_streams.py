"""gateway.shared_streams: subscriptions with the same request and credentials read one
upstream stream; errors, expiry, slow readers and leaving behave as with a stream each.
gateway.ws_sharing shares executions of subscriptions only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import ClientError
from gateway.shared_streams import OVERFLOW_MESSAGE, SharedStreams
from gateway.ws_sharing import MAX_SHARED_DOCUMENT_TOKENS, _is_subscription, _small_text
from services.kit.clock import FixedClock
from services.kit.grpc.testing import access_token, token_pair


class FakeUpstream:
    """A server stream fed by the test: ``opened`` counts streams, ``push`` sends."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.queue: asyncio.Queue[int | Exception | None] = asyncio.Queue()

    async def stream(self) -> AsyncIterator[int]:
        self.opened += 1
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed += 1


async def _collect(items: AsyncIterator[int], into: list[int]) -> None:
    async for item in items:
        into.append(item)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def tokens(clock: FixedClock) -> tuple[str, str, SharedStreams]:
    issuer, verifier = token_pair(clock, ttl=timedelta(minutes=5))
    ana = f"Bearer {access_token(issuer, 'ana')}"
    ben = f"Bearer {access_token(issuer, 'ben')}"
    return ana, ben, SharedStreams(verifier, queue_size=4)


async def test_one_upstream_for_the_same_request_and_token(
    tokens: tuple[str, str, SharedStreams],
) -> None:
    ana, ben, streams = tokens
    upstream, other = FakeUpstream(), FakeUpstream()
    got: list[list[int]] = [[], [], []]
    readers = [
        asyncio.create_task(_collect(streams.subscribe("watch", ana, upstream.stream), got[0])),
        asyncio.create_task(_collect(streams.subscribe("watch", ana, upstream.stream), got[1])),
        # Another caller never reads Ana's stream.
        asyncio.create_task(_collect(streams.subscribe("watch", ben, other.stream), got[2])),
    ]
    await _settle()
    assert (upstream.opened, other.opened, len(streams)) == (1, 1, 2)
    upstream.queue.put_nowait(1)
    other.queue.put_nowait(7)
    await _settle()
    # A late joiner sees what comes after it joined.
    got.append([])
    readers.append(
        asyncio.create_task(_collect(streams.subscribe("watch", ana, upstream.stream), got[3]))
    )
    await _settle()
    upstream.queue.put_nowait(2)
    upstream.queue.put_nowait(None)  # the service ends the stream
    other.queue.put_nowait(None)
    await asyncio.gather(*readers)
    assert got == [[1, 2], [1, 2], [7], [2]]
    assert upstream.opened == 1
    assert len(streams) == 0


async def test_the_upstream_error_reaches_every_sharer_and_a_new_stream_opens_after(
    tokens: tuple[str, str, SharedStreams],
) -> None:
    ana, _, streams = tokens
    upstream = FakeUpstream()
    errors: list[BaseException] = []

    async def read() -> None:
        try:
            async for _ in streams.subscribe("watch", ana, upstream.stream):
                pass
        except ClientError as error:
            errors.append(error)

    readers = [asyncio.create_task(read()) for _ in range(3)]
    await _settle()
    upstream.queue.put_nowait(ClientError("access token expired", "UNAUTHENTICATED"))
    await asyncio.gather(*readers)
    assert [e.extensions for e in errors] == [{"code": "UNAUTHENTICATED"}] * 3  # type: ignore[attr-defined]
    assert len({id(e) for e in errors}) == 3  # each its own instance
    again: list[int] = []
    reader = asyncio.create_task(_collect(streams.subscribe("watch", ana, upstream.stream), again))
    await _settle()
    upstream.queue.put_nowait(5)
    upstream.queue.put_nowait(None)
    await reader
    assert (upstream.opened, again) == (2, [5])


async def test_an_expired_token_cannot_join_an_open_stream(clock: FixedClock) -> None:
    issuer, verifier = token_pair(clock, ttl=timedelta(minutes=1))
    streams = SharedStreams(verifier)
    ana = f"Bearer {access_token(issuer, 'ana')}"
    upstream = FakeUpstream()
    first = asyncio.create_task(_collect(streams.subscribe("watch", ana, upstream.stream), []))
    await _settle()
    clock.advance(timedelta(minutes=2))
    with pytest.raises(ClientError) as refused:
        async for _ in streams.subscribe("watch", ana, upstream.stream):
            pass
    assert refused.value.message == "token expired"
    assert refused.value.extensions == {"code": "UNAUTHENTICATED"}
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await _settle()
    assert (upstream.opened, upstream.closed) == (1, 1)


async def test_a_slow_sharer_is_cut_off_and_the_last_to_leave_closes_the_upstream(
    tokens: tuple[str, str, SharedStreams],
) -> None:
    ana, _, streams = tokens  # queues of 4
    upstream = FakeUpstream()
    fast: list[int] = []
    reader = asyncio.create_task(_collect(streams.subscribe("watch", ana, upstream.stream), fast))
    slow = streams.subscribe("watch", ana, upstream.stream)
    first = asyncio.ensure_future(anext(slow))
    await _settle()
    for item in range(1, 8):
        upstream.queue.put_nowait(item)
        await _settle()
    assert await first == 1
    with pytest.raises(ClientError) as cut:
        async for _ in slow:
            pass
    assert (cut.value.message, cut.value.extensions) == (
        OVERFLOW_MESSAGE,
        {"code": "SERVICE_UNAVAILABLE"},
    )
    assert fast == list(range(1, 8))
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await _settle()
    assert (upstream.closed, len(streams)) == (1, 0)


def test_only_subscriptions_are_executed_once_for_their_sharers() -> None:
    """Two identical mutations over one socket are two mutations: never shared."""
    assert _is_subscription("subscription { passportUpdated { kind } }", None)
    assert _is_subscription(
        "subscription { a: passportUpdated { kind } interactionAnchored { statementId } }", None
    )
    assert not _is_subscription("mutation { passportUpdated }", None)
    assert not _is_subscription("{ passportUpdated }", None)
    both = "query Q { passportUpdated } subscription S { passportUpdated { kind } }"
    assert _is_subscription(both, "S")
    assert not _is_subscription(both, "Q")
    assert not _is_subscription(both, None)  # ambiguous: Strawberry reports it
    assert not _is_subscription("subscription {", None)
    # Streams that start with a snapshot (Health.Watch's current status) are not shared:
    # a joiner would miss it.
    assert not _is_subscription("subscription { serviceHealth { status } }", None)
    assert not _is_subscription(
        "subscription { ...F } fragment F on Subscription { passportUpdated { kind } }", None
    )
    long = "subscription { " + "passportUpdated " * MAX_SHARED_DOCUMENT_TOKENS + "}"
    assert not _is_subscription(long, None)
    # What the client's JSON carries is checked before it is parsed or cached.
    assert _small_text("S", 256)
    assert not _small_text("x" * 257, 256)
    assert not _small_text({"query": "subscription { b }"}, 256)

"""One upstream gRPC server stream per (RPC, request, credentials), shared by the
gateway's subscriptions that would each have opened the same one.

A learner with a thousand open tabs (or a thousand devices on one session) subscribed to
`passportUpdated` used to hold a thousand identical WatchPassport streams: the service
encoded every update a thousand times and the gateway decoded it a thousand times.
Subscriptions that send the very same request with the very same `authorization` value
now read one stream, and each update is decoded and converted once, then handed to
every subscriber as the same object.

Authorization is unchanged because sharing needs the same credentials verbatim: the
service authorized the upstream for exactly this token, and checks it (expiry and
revoked sessions) before each message, ending it UNAUTHENTICATED for every sharer at
once, as it would have ended each of their own streams. A subscriber joining a stream
that is already open has its token checked here for expiry first (the service would
have refused a new stream with an expired token at once).

A subscriber that falls `queue_size` messages behind is cut off with
SERVICE_UNAVAILABLE (resubscribe), as the services' own fan-out does, rather than
holding the others back or buffering without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

from gateway.errors import ClientError
from services.kit.auth import TokenVerifier, bearer_token
from services.kit.errors import Unauthenticated

T = TypeVar("T")

log = structlog.get_logger("keiko.gateway.streams")

DEFAULT_QUEUE_SIZE = 256
OVERFLOW_MESSAGE = "too many events pending: subscribe again"


@dataclass(frozen=True)
class _End:
    """The upstream finished: cleanly (error None) or with the error every sharer gets."""

    error: BaseException | None


@dataclass(eq=False)
class _Sharer(Generic[T]):
    queue: asyncio.Queue[T | _End]


@dataclass(eq=False)
class _Upstream(Generic[T]):
    sharers: set[_Sharer[T]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    ended: bool = False


class SharedStreams:
    """`async for item in streams.subscribe(key, authorization, open_stream): ...` - the
    first subscriber of (``key``, ``authorization``) opens the stream (``open_stream()``,
    already converted: each item is made once for every sharer), later ones join it; the
    last to leave cancels it. Items received after a subscriber joined are delivered to
    it, in order. ``verifier`` checks a joiner's token (the gateway's, with the services'
    public key)."""

    def __init__(self, verifier: TokenVerifier, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._verifier = verifier
        self._queue_size = queue_size
        self._upstreams: dict[Hashable, _Upstream[Any]] = {}

    def __len__(self) -> int:
        """Upstream streams open now."""
        return len(self._upstreams)

    async def subscribe(
        self, key: Hashable, authorization: str, open_stream: Callable[[], AsyncIterable[T]]
    ) -> AsyncIterator[T]:
        """The items of the stream that ``open_stream`` opens with ``authorization``."""
        key = (key, authorization)
        upstream: _Upstream[T] | None = self._upstreams.get(key)
        if upstream is not None and not upstream.ended:
            self._check_token(authorization)
        sharer: _Sharer[T] = _Sharer(asyncio.Queue(self._queue_size))
        if upstream is None or upstream.ended:
            upstream = _Upstream()
            self._upstreams[key] = upstream
            upstream.sharers.add(sharer)
            upstream.task = asyncio.create_task(self._pump(key, upstream, open_stream))
        else:
            upstream.sharers.add(sharer)
        try:
            while True:
                item = await sharer.queue.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise _own_copy(item.error)
                    return
                yield item
        finally:
            self._leave(key, upstream, sharer)

    def _check_token(self, authorization: str) -> None:
        """What the service would say to a new stream with this token (signature and
        expiry): it authorized the open stream for the same token, so the rest holds."""
        try:
            self._verifier.verify(bearer_token(authorization))
        except Unauthenticated as refused:
            raise ClientError(refused.message, "UNAUTHENTICATED") from None

    def _leave(self, key: Hashable, upstream: _Upstream[T], sharer: _Sharer[T]) -> None:
        upstream.sharers.discard(sharer)
        if upstream.sharers or upstream.ended:
            return
        # The last one left: nobody reads the stream any more.
        upstream.ended = True
        if self._upstreams.get(key) is upstream:
            del self._upstreams[key]
        if upstream.task is not None:
            upstream.task.cancel()

    async def _pump(
        self, key: Hashable, upstream: _Upstream[T], open_stream: Callable[[], AsyncIterable[T]]
    ) -> None:
        error: BaseException | None = None
        try:
            async for item in open_stream():
                for sharer in list(upstream.sharers):
                    if sharer.queue.qsize() >= self._queue_size - 1:
                        # Cut off: the last slot carries the end, so it always fits.
                        upstream.sharers.discard(sharer)
                        sharer.queue.put_nowait(
                            _End(ClientError(OVERFLOW_MESSAGE, "SERVICE_UNAVAILABLE"))
                        )
                    else:
                        sharer.queue.put_nowait(item)
        except asyncio.CancelledError:
            raise  # every sharer left
        except Exception as exc:  # the upstream's final status, for every sharer
            error = exc
        finally:
            upstream.ended = True
            if self._upstreams.get(key) is upstream:
                del self._upstreams[key]
            for sharer in upstream.sharers:
                with contextlib.suppress(asyncio.QueueFull):
                    sharer.queue.put_nowait(_End(error))


def _own_copy(error: BaseException) -> BaseException:
    """The upstream's error for one sharer: each raises its own instance (one raised in
    many tasks would gather all their tracebacks). Other errors are masked anyway."""
    if isinstance(error, ClientError):
        return ClientError(error.message, **(error.extensions or {}))
    return error

"""In-process calls: a grpc.aio.Channel for the services this process hosts itself.

`keiko serve` runs the gateway next to the services it calls. Over loopback gRPC each call
paid the HTTP/2 framing, gRPC's C core and its poller threads twice, on both sides of the
same process (a third of the CPU of an xAPI read). A `LocalChannel` runs a hosted method
the way `GrpcHost` serves it, without the socket: the host's interceptor chain (tracing,
authentication, request id, metrics, limits), its method handlers and their
(de)serializers (so a request is decoded and limit-checked exactly as off the wire, and
neither side shares a message object with the other), in a task of its own with a fresh
context like a served RPC, ended by the caller's deadline or cancellation. Errors reach
the caller as the grpc.aio.AioRpcError it would have received: the same code, details,
trailing metadata (the servicer's rich status) and initial metadata. Methods the host
does not serve here go to the `fallback` channel.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import inspect
import re
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterator,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc.aio import AbortError

from services.kit.grpc.client import RoutedChannel, service_of

# An in-process caller is this host, as the gateway calling over the loopback was: a
# trusted proxy whose x-forwarded-for is believed (interceptors.TRUSTED_PROXIES), and whose
# own address, when it forwards none, is the loopback's. A network peer cannot present
# it: gRPC fills a served call's peer from its socket.
IN_PROCESS_PEER = "ipv4:127.0.0.1:0"
# A server stream's messages the servicer may be ahead of its reader by (gRPC's flow
# control plays this part over the wire: a slow subscriber holds its servicer back).
STREAM_BUFFER = 16

Metadata = tuple[tuple[str, str | bytes], ...]


class _HandlerCallDetails(
    collections.namedtuple("_HandlerCallDetails", ("method", "invocation_metadata")),
    grpc.HandlerCallDetails,  # type: ignore[misc]
):
    """What grpc.aio's server gives its interceptors: the method and the caller's metadata."""


@dataclass
class LocalHost:
    """What a `GrpcHost` serves, for its in-process callers."""

    handlers: dict[str, grpc.RpcMethodHandler]  # by full method name
    interceptors: Sequence[grpc.aio.ServerInterceptor]
    max_message_bytes: int
    # Cleared when the host stops: calls then fail UNAVAILABLE, as at a stopped server.
    serving: bool = True
    # The context served RPCs start from, as grpc.aio's server tasks do: the one the host
    # was started in (GrpcHost.start), never a caller's (its span, its bound log fields).
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


@dataclass
class _Status:
    """How a call ended (OK for a stream's end)."""

    code: grpc.StatusCode
    details: str = ""
    trailing_metadata: Metadata = ()


_KEY = re.compile(r"[0-9a-z_.\-]+")
_VALUE = re.compile(r"[\x20-\x7e]*")


def _metadata(pairs: Any) -> Metadata:
    if not pairs:
        return ()
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return tuple((key, value) for key, value in items)


def _valid_metadata(pairs: Metadata) -> Metadata:
    """The caller's metadata, refused as gRPC's core refuses it before sending (keys of
    lowercase letters, digits and `-_.`; text values of printable ASCII; bytes for
    `-bin` keys): what cannot be sent over the wire is not accepted in process either."""
    for key, value in pairs:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"metadata key {key!r} is invalid")
        if key.endswith("-bin"):
            if not isinstance(value, bytes):
                raise TypeError(f'Binary metadata key="{key}" expected bytes, got {type(value)}')
        elif not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise ValueError(f"metadata value for key {key} is invalid")
    return pairs


class LocalServicerContext(grpc.aio.ServicerContext):  # type: ignore[misc]
    """The servicer's side of an in-process call: what grpc.aio's ServicerContext gives a
    handler and the interceptors, with the same abort semantics."""

    def __init__(self, metadata: Metadata, deadline: float | None) -> None:
        self._invocation_metadata = metadata
        self._deadline = deadline  # time.monotonic() clock
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self._trailing_metadata: Metadata = ()
        self.sent_initial_metadata: Metadata = ()
        self._aborted = False
        self._cancelled = False
        self._done = False
        self._done_callbacks: list[Callable[[Any], None]] = []
        # A write-API server stream's sink (_Call._stream).
        self.writer: Callable[[Any], Awaitable[None]] | None = None

    # -- what the servicer reads
    def invocation_metadata(self) -> Metadata:
        return self._invocation_metadata

    def peer(self) -> str:
        return IN_PROCESS_PEER

    def peer_identities(self) -> None:
        return None

    def peer_identity_key(self) -> None:
        return None

    def auth_context(self) -> dict[str, Any]:
        return {}

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(self._deadline - time.monotonic(), 0.0)

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._done_callbacks.append(callback)

    # -- what the servicer sets
    async def send_initial_metadata(self, initial_metadata: Any) -> None:
        if self.sent_initial_metadata:
            raise grpc.aio.UsageError("initial metadata has already been sent")
        self.sent_initial_metadata = _metadata(initial_metadata)

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        self._trailing_metadata = _metadata(trailing_metadata)

    def trailing_metadata(self) -> Metadata:
        return self._trailing_metadata

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_details(self, details: str) -> None:
        self._details = details

    def details(self) -> str | None:
        return self._details

    def set_compression(self, compression: Any) -> None:
        """Nothing is compressed in process."""

    def disable_next_message_compression(self) -> None:
        """Nothing is compressed in process."""

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        # As grpc.aio's: once only; an empty argument keeps what was set before; OK is
        # not an error status and becomes UNKNOWN.
        if self._aborted:
            raise grpc.aio.UsageError("Abort already called!")
        self._aborted = True
        if trailing_metadata:
            self._trailing_metadata = _metadata(trailing_metadata)
        if details or self._details is None:
            self._details = details
        self._code = grpc.StatusCode.UNKNOWN if code is grpc.StatusCode.OK else code
        raise AbortError("Locally aborted.")

    async def abort_with_status(self, status: grpc.Status) -> None:
        await self.abort(status.code, status.details, status.trailing_metadata)

    async def read(self) -> Any:
        raise grpc.aio.UsageError("Keiko's RPCs do not stream requests")

    async def write(self, message: Any) -> None:
        """A write-API server stream's message (e.g. grpc.health's Watch)."""
        if self.writer is None:
            raise grpc.aio.UsageError("write() is for server streams")
        await self.writer(message)

    # -- the end of the call
    def status(self) -> _Status:
        code = self._code or grpc.StatusCode.OK
        return _Status(code, self._details or "", self._trailing_metadata)

    def finish(self, cancelled: bool) -> None:
        self._cancelled = cancelled
        self._done = True
        for callback in self._done_callbacks:
            callback(self)


async def _intercepted(
    interceptors: Iterator[grpc.aio.ServerInterceptor],
    find: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
    details: grpc.HandlerCallDetails,
) -> grpc.RpcMethodHandler | None:
    """The handler after every interceptor, outermost first, as grpc.aio's server builds it."""
    interceptor = next(interceptors, None)
    if interceptor is None:
        return find(details)

    async def continuation(d: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return await _intercepted(interceptors, find, d)

    return await interceptor.intercept_service(continuation, details)  # type: ignore[no-any-return]


class _TooLarge(Exception):
    """A message over the host's size limit (grpc.max_send_message_length)."""


class _Call:
    """One in-process RPC: the servicer's side runs in its own task (a fresh context, as
    a served RPC has), started at once like grpc.aio's calls. The task's result is the
    response's bytes (unary) or the call's final status."""

    def __init__(
        self,
        channel: LocalChannel,
        method: str,
        request: bytes,
        metadata: Metadata,
        timeout: float | None,
        stream: bool,
    ) -> None:
        self._channel = channel
        self._method = method
        self._timeout = timeout
        deadline = time.monotonic() + timeout if timeout is not None else None
        self.context = LocalServicerContext(metadata, deadline)
        self.queue: asyncio.Queue[bytes] | None = asyncio.Queue(STREAM_BUFFER) if stream else None
        self.task: asyncio.Task[bytes | _Status] = channel.spawn(self._serve(request))

    def initial_metadata(self) -> grpc.aio.Metadata:
        return grpc.aio.Metadata(*self.context.sent_initial_metadata)

    def error(self, status: _Status) -> grpc.aio.AioRpcError:
        return grpc.aio.AioRpcError(
            status.code,
            self.initial_metadata(),
            grpc.aio.Metadata(*status.trailing_metadata),
            details=status.details,
        )

    async def _serve(self, request: bytes) -> bytes | _Status:
        cancelled = False
        try:
            return await self._run(request)
        except asyncio.CancelledError:
            cancelled = True  # the caller went away
            raise
        finally:
            self.context.finish(cancelled)

    async def _run(self, request: bytes) -> bytes | _Status:
        host, context = self._channel.host, self.context
        if not host.serving:
            return _Status(grpc.StatusCode.UNAVAILABLE, "the server has stopped")
        deadline = asyncio.timeout(self._timeout)
        try:
            async with deadline:
                details = _HandlerCallDetails(self._method, context.invocation_metadata())
                handler = await _intercepted(
                    iter(host.interceptors), lambda d: host.handlers.get(d.method), details
                )
                if handler is None:
                    return _Status(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
                deserialize = handler.request_deserializer or _same
                serialize = handler.response_serializer or _same
                message = deserialize(request)
                if self.queue is None:
                    response = await handler.unary_unary(message, context)
                    if context.status().code is not grpc.StatusCode.OK:
                        return context.status()  # set_code() without an abort
                    return self._sized(serialize(response))
                await self._stream(handler, message, serialize)
                return context.status()
        except AbortError:
            return context.status()
        except _TooLarge as error:
            return _Status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))
        except Exception as error:
            if isinstance(error, TimeoutError) and deadline.expired():
                return _Status(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            # What grpc.aio's server answers for an exception out of a handler.
            code = context.code()
            return _Status(
                grpc.StatusCode.UNKNOWN if code in (None, grpc.StatusCode.OK) else code,
                f"Unexpected {type(error)}: {error}",
                context.trailing_metadata(),
            )

    async def _stream(
        self, handler: grpc.RpcMethodHandler, message: Any, serialize: Callable[[Any], bytes]
    ) -> None:
        queue = self.queue
        assert queue is not None
        behaviour = handler.unary_stream
        if not inspect.isasyncgenfunction(behaviour):
            # The write API (`await context.write(...)`), e.g. grpc.health's Watch.
            self.context.writer = lambda response: queue.put(self._sized(serialize(response)))
            await behaviour(message, self.context)
            return
        responses = behaviour(message, self.context)
        async for response in responses:
            try:
                await queue.put(self._sized(serialize(response)))
            except asyncio.CancelledError:
                # The reader left while this message waited: the servicer is cancelled
                # where it yielded (its interceptors count CANCELLED), not left suspended.
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await responses.athrow(asyncio.CancelledError())
                raise

    def _sized(self, data: bytes) -> bytes:
        limit = self._channel.host.max_message_bytes
        if len(data) > limit:
            raise _TooLarge(f"Sent message larger than max ({len(data)} vs. {limit})")
        return data


def _same(data: Any) -> Any:
    return data


class _CallView:
    """What grpc.aio's call objects share: cancellation and the call's metadata."""

    def __init__(self, call: _Call, deserialize: Callable[[bytes], Any]) -> None:
        self._call = call
        self._deserialize = deserialize

    def cancel(self) -> bool:
        return self._call.task.cancel()

    def cancelled(self) -> bool:
        return self._call.task.cancelled()

    def done(self) -> bool:
        return self._call.task.done()

    async def initial_metadata(self) -> grpc.aio.Metadata:
        return self._call.initial_metadata()


class _UnaryUnaryCall(_CallView):
    """The caller's side of a unary call: awaitable, like grpc.aio.UnaryUnaryCall."""

    def __await__(self) -> Generator[Any, None, Any]:
        return self._response().__await__()

    async def _response(self) -> Any:
        # Awaiting the task: the caller's cancellation (a client that disconnected, a
        # GraphQL deadline) cancels the servicer's.
        outcome = await self._call.task
        if isinstance(outcome, _Status):
            raise self._call.error(outcome)
        return self._deserialize(outcome)

    async def initial_metadata(self) -> grpc.aio.Metadata:
        await asyncio.wait([self._call.task])  # sent at the latest with the response
        return self._call.initial_metadata()


class _UnaryStreamCall(_CallView):
    """The caller's side of a server stream: async-iterable, like grpc.aio.UnaryStreamCall;
    `cancel()` cancels the servicer (a subscriber that leaves)."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Any]:
        while (message := await self.read()) is not grpc.aio.EOF:
            yield message

    async def read(self) -> Any:
        queue, task = self._call.queue, self._call.task
        assert queue is not None
        while queue.empty():
            if task.done():
                if task.cancelled():
                    raise asyncio.CancelledError
                status = task.result()
                assert isinstance(status, _Status)
                if status.code is grpc.StatusCode.OK:
                    return grpc.aio.EOF
                raise self._call.error(status)
            # The next message, or the servicer's end (its status, or its cancellation).
            get = asyncio.ensure_future(queue.get())
            await asyncio.wait([get, task], return_when=asyncio.FIRST_COMPLETED)
            if get.done():
                return self._deserialize(get.result())
            get.cancel()
        return self._deserialize(queue.get_nowait())


@dataclass
class _MultiCallable:
    channel: LocalChannel
    method: str
    request_serializer: Callable[[Any], bytes] | None
    response_deserializer: Callable[[bytes], Any] | None
    stream: bool
    default_timeout: float | None = field(default=None)

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        **_options: Any,
    ) -> Any:
        data = self.request_serializer(request) if self.request_serializer else request
        if self.default_timeout is not None and (timeout is None or timeout > self.default_timeout):
            timeout = self.default_timeout  # as services.kit.grpc.client.UnaryDeadline
        pairs = _valid_metadata(_metadata(metadata))
        call = _Call(self.channel, self.method, data, pairs, timeout, self.stream)
        deserialize = self.response_deserializer or _same
        if self.stream:
            return _UnaryStreamCall(call, deserialize)
        return _UnaryUnaryCall(call, deserialize)


class LocalChannel(grpc.aio.Channel):  # type: ignore[misc]
    """Calls the methods `host` serves in process (except those of `remote` services,
    which are configured to run elsewhere); every other call goes to `fallback`.
    `deadline_seconds` bounds every unary call, as open_channel's does."""

    def __init__(
        self,
        host: LocalHost,
        fallback: grpc.aio.Channel,
        *,
        deadline_seconds: float | None = None,
        remote: frozenset[str] = frozenset(),
    ) -> None:
        self.host = host
        self.fallback = fallback
        self._deadline_seconds = deadline_seconds
        self._methods = frozenset(m for m in host.handlers if service_of(m) not in remote)
        self._tasks: set[asyncio.Task[Any]] = set()

    def serves(self, method: str) -> bool:
        return method in self._methods

    def spawn(self, serve: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        loop = asyncio.get_running_loop()
        task: asyncio.Task[Any] = self.host.context.run(loop.create_task, serve)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def channels(self) -> list[grpc.aio.Channel]:
        """The network channels behind this one (for their health)."""
        if isinstance(self.fallback, RoutedChannel):
            return self.fallback.channels()
        return [self.fallback]

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **options: Any,
    ) -> Any:
        if method not in self._methods:
            return self.fallback.unary_unary(
                method, request_serializer, response_deserializer, **options
            )
        return _MultiCallable(
            self, method, request_serializer, response_deserializer, False, self._deadline_seconds
        )

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **options: Any,
    ) -> Any:
        if method not in self._methods:
            return self.fallback.unary_stream(
                method, request_serializer, response_deserializer, **options
            )
        return _MultiCallable(self, method, request_serializer, response_deserializer, True)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.fallback.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.fallback.stream_stream(method, *args, **kwargs)

    async def channel_ready(self) -> None:
        await self.fallback.channel_ready()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.fallback.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.fallback.wait_for_state_change(last_observed_state)

    async def close(self, grace: float | None = None) -> None:
        """Cancels the in-process calls still running (after `grace` seconds), then closes
        the fallback channel."""
        if self._tasks and grace:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await self.fallback.close(grace)

    async def __aenter__(self) -> LocalChannel:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close(None)

"""HTTP limits every gateway route shares (docs/limits.md): URL length, body size, and
headers that can travel on as gRPC metadata. A request over a limit gets 413 or 414
with a reason before any route reads it."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_URL_BYTES = 8 * 1024  # path + query string; what common proxies accept
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_REQUEST_ID_CHARS = 128


def forwardable(value: str) -> bool:
    """True when `value` can be sent as gRPC metadata (printable ASCII)."""
    return value.isascii() and value.isprintable()


def request_id_or_none(value: str | None) -> str | None:
    """A client's x-request-id, when it is one we can log and forward as is."""
    if value and len(value) <= MAX_REQUEST_ID_CHARS and forwardable(value):
        return value
    return None


class _BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes its limit; a Starlette
    HTTPException, so the route's exception middleware answers 413 with the reason."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body larger than {limit} bytes")


def _reply(status: int, reason: str) -> list[Message]:
    body = json.dumps({"error": reason}).encode()
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        },
        {"type": "http.response.body", "body": body},
    ]


class RequestLimits:
    """ASGI middleware: 414 for a URL over MAX_URL_BYTES, 413 for a body over the limit
    of its path prefix (declared in Content-Length, or counted as it streams in)."""

    def __init__(self, app: ASGIApp, body_limits: Mapping[str, int]) -> None:
        self.app = app
        # Longest prefix first, so "/graphql" wins over "/".
        self.body_limits = sorted(body_limits.items(), key=lambda kv: -len(kv[0]))

    def _body_limit(self, path: str) -> int:
        for prefix, limit in self.body_limits:
            if path.startswith(prefix):
                return limit
        return DEFAULT_MAX_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(
            scope.get("query_string", b"")
        )
        if url_bytes > MAX_URL_BYTES:
            await _send_all(send, scope, 414, f"URL longer than {MAX_URL_BYTES} bytes")
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._body_limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _send_all(send, scope, 413, f"body larger than {limit} bytes")
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge as too_large:
            if started:
                raise
            await _send_all(send, scope, 413, too_large.detail)


async def _send_all(send: Send, scope: Scope, status: int, reason: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1009, "reason": reason[:120]})
        return
    for message in _reply(status, reason):
        await send(message)

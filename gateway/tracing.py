"""The gateway's spans (services.kit.tracing): one SERVER span per HTTP request, child of
a caller's ``traceparent`` header, and one span per GraphQL operation under it. Both are
installed only when tracing is on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from services.kit import tracing

# Paths whose second segment names the resource (/xapi/statements); others are named by
# their first segment only (/verify/<passport id> -> /verify), so span names stay few.
_TWO_SEGMENT_PREFIXES = frozenset({"xapi", "passports", "share", "credentials", "webhooks"})


def route_name(path: str) -> str:
    segments = [s for s in path.split("/") if s]
    if not segments:
        return "/"
    keep = 2 if segments[0] in _TWO_SEGMENT_PREFIXES and segments[0] != "webhooks" else 1
    return "/" + "/".join(segments[:keep])


class HttpTracing:
    """ASGI middleware: a SERVER span around each HTTP request (WebSockets pass: a
    subscription lives for hours, its messages are not one request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate")
        }
        method = scope.get("method", "GET")
        path = scope.get("path", "/")
        with tracing.span(
            f"{method} {route_name(path)}",
            tracing.SpanKind.SERVER,
            parent=tracing.parent_of(carrier),
            attributes={"http.request.method": method, "url.path": path[:256]},
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start" and span is not None:
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        tracing.set_error(span, str(status))
                await send(message)

            await self.app(scope, receive, traced_send)


class OperationTracing(SchemaExtension):
    """A span around each GraphQL operation's execution (after parsing and validation),
    named by its type and name ("graphql mutation recordInteraction")."""

    def on_execute(self) -> Iterator[None]:
        context: Any = self.execution_context
        name = context.operation_name or _first_field(context) or "anonymous"
        try:
            kind = context.operation_type.value
        except RuntimeError:  # the document did not parse
            kind = "invalid"
        with tracing.span(
            f"graphql {kind} {name}",
            attributes={"graphql.operation.type": kind, "graphql.operation.name": name},
        ):
            yield


def _first_field(context: Any) -> str | None:
    """The first root field of an unnamed operation (``{ passport { ... } }`` -> passport)."""
    document = context.graphql_document
    if document is None:
        return None
    for definition in document.definitions:
        selections = getattr(getattr(definition, "selection_set", None), "selections", None)
        if selections:
            return str(selections[0].name.value)
    return None

"""graphql-transport-ws with identical subscriptions executed and rendered once.

A caller's subscriptions that send the same document, variables and operation name with
the same `authorization` value get the same results: the gateway runs that subscription
once (one resolver, one graphql-core execution of the selection per event), encodes each
event's payload once, and sends the same bytes to every such subscriber, framed with its
own operation id. With a thousand subscribers of one passport, this was a thousand
executions and JSON encodings of the same event, one after another on one event loop.

Only subscriptions of the fields in SHARED_FIELDS are shared: event streams without an
initial snapshot (a query or mutation sent over the socket runs on its own: two identical
mutations are two mutations), and only when the document is small (8 KiB, 2,000 tokens)
and parses here; everything else takes Strawberry's own path. Authorization is
that of gateway.shared_streams: the same token verbatim, checked by the gateway when a
subscriber joins an open execution, and by the services before each message of their
streams. What differs from running each alone: the execution uses the context of the
subscriber that opened it (its request id and client address go to the services).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import FieldNode, GraphQLError, OperationType, get_operation_ast, parse
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    NextMessagePayload,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from gateway.context import GatewayContext

# Documents longer than this are not worth sharing (and not parsed twice); the length
# bound also bounds what the cache of `_is_subscription` holds (512 documents).
MAX_SHARED_DOCUMENT_TOKENS = 2000
MAX_SHARED_DOCUMENT_CHARS = 8192
# Subscriptions that only stream events from when they start, so one that joins an open
# execution misses nothing it would have had alone. Not serviceHealth, for one: gRPC's
# Health.Watch first sends the current status, which a joiner would not get.
SHARED_FIELDS = frozenset({"passportUpdated", "interactionAnchored"})


class PreEncoded(dict[str, Any]):
    """A protocol message whose JSON text is already made (`KeikoGraphQL.encode_json`
    sends ``text`` as is); the mapping keeps the fields Strawberry's handler reads."""

    def __init__(self, operation_id: str, payload_json: str) -> None:
        super().__init__(id=operation_id, type="next")
        self.text = f'{{"id":{json.dumps(operation_id)},"type":"next","payload":{payload_json}}}'


@dataclass(frozen=True)
class _Shared:
    """One result of the shared execution, with its payload's JSON when it is a `next`."""

    result: Any
    payload_json: str | None


def _small_text(value: object, limit: int) -> bool:
    """A string of at most ``limit`` characters (the client's JSON may carry anything)."""
    return isinstance(value, str) and len(value) <= limit


@lru_cache(maxsize=512)
def _is_subscription(query: str, operation_name: str | None) -> bool:
    """Whether the operation is a subscription of event streams only (SHARED_FIELDS)."""
    try:
        operation = get_operation_ast(
            parse(query, max_tokens=MAX_SHARED_DOCUMENT_TOKENS), operation_name
        )
    except GraphQLError:
        return False  # Strawberry's own path reports it
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        return False
    selections = operation.selection_set.selections
    return bool(selections) and all(
        isinstance(s, FieldNode) and s.name.value in SHARED_FIELDS for s in selections
    )


class SharedTransportWSHandler(BaseGraphQLTransportWSHandler[GatewayContext, None]):
    async def run_operation(self, operation: Operation[GatewayContext, None]) -> None:
        context = self.context
        streams = getattr(context, "streams", None)
        authorization = getattr(context, "authorization", None)
        if (
            streams is None
            or not authorization
            or not _small_text(operation.query, MAX_SHARED_DOCUMENT_CHARS)
            or not (operation.operation_name is None or _small_text(operation.operation_name, 256))
            or not _is_subscription(operation.query, operation.operation_name)
        ):
            await super().run_operation(operation)
            return
        key = (
            "document",
            operation.query,
            json.dumps(operation.variables, sort_keys=True, default=str),
            operation.operation_name,
        )
        try:
            source = streams.subscribe(key, authorization, lambda: self._execute(operation))
            async with aclosing(source):
                await self._send_shared(operation, source)
            await operation.send_operation_message(
                CompleteMessage(id=operation.id, type="complete")
            )
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _execute(self, operation: Operation[GatewayContext, None]) -> AsyncIterator[_Shared]:
        """The subscription run once for every subscriber that shares it."""
        results = await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=self.context,
            root_value=self.root_value,
            operation_name=operation.operation_name,
        )
        async with aclosing(results):
            async for result in results:
                payload_json = None
                if isinstance(result, ExecutionResult) and not isinstance(
                    result, PreExecutionError
                ):
                    payload_json = self.view.encode_json_string(_next_payload(result))
                yield _Shared(result, payload_json)

    async def _send_shared(
        self, operation: Operation[GatewayContext, None], source: AsyncIterator[_Shared]
    ) -> None:
        """Strawberry's `_send_result_stream`, sending the payload encoded once."""
        first = True
        async for shared in source:
            result = shared.result
            if first and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            if shared.payload_json is None:
                await self._reject_incremental_delivery(operation)
                return
            await operation.send_operation_message(
                PreEncoded(operation.id, shared.payload_json)  # type: ignore[arg-type]
            )
            first = False


def _next_payload(result: ExecutionResult) -> NextMessagePayload:
    """What Strawberry's `Operation.send_next` sends."""
    payload: NextMessagePayload = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload

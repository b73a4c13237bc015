"""Calling any operation generically: gRPC through dynamic messages built from the
descriptor set (requests as proto JSON dicts), GraphQL through a document generated from
the schema (`{ field(args) { __typename } }`), subscriptions over graphql-transport-ws.
Each call reports the status code it ended with ("OK" or the error code)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from google.protobuf import json_format, message_factory
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLUnionType,
    get_named_type,
)
from websockets.asyncio.client import connect

from tests.authz.operations import Kind, Operation, graphql_schema, pool

# A ceiling for a stream's first message or error; never a timing assertion.
STREAM_CEILING_S = 30.0


@dataclass(frozen=True)
class Result:
    code: str
    message: str = ""
    data: Any = None


def _message_class(full_name: str) -> Any:
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(full_name))


class GrpcCalls:
    """Unary and server-streaming calls of any keiko RPC over one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel

    def _metadata(self, token: str | None) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token}")] if token else []

    def _encode(self, op: Operation, request: Mapping[str, Any]) -> bytes:
        message = _message_class(op.request_type)()
        json_format.ParseDict(dict(request), message)
        return bytes(message.SerializeToString())

    def _decode(self, op: Operation, payload: bytes) -> dict[str, Any]:
        message = _message_class(op.response_type).FromString(payload)
        return dict(json_format.MessageToDict(message))

    async def unary(self, op: Operation, request: Mapping[str, Any], token: str | None) -> Result:
        call = self.channel.unary_unary(
            op.path, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        try:
            reply = await call(
                self._encode(op, request), metadata=self._metadata(token), timeout=60
            )
        except grpc.aio.AioRpcError as error:
            return Result(error.code().name, error.details() or "")
        return Result("OK", data=self._decode(op, reply))

    def stream(
        self, op: Operation, request: Mapping[str, Any], token: str | None
    ) -> grpc.aio.UnaryStreamCall:
        call = self.channel.unary_stream(
            op.path, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        return call(self._encode(op, request), metadata=self._metadata(token))

    async def first(self, op: Operation, stream: grpc.aio.UnaryStreamCall) -> Result:
        """The stream's first message (OK) or the status it ended with."""
        try:
            message = await asyncio.wait_for(stream.read(), STREAM_CEILING_S)
        except grpc.aio.AioRpcError as error:
            return Result(error.code().name, error.details() or "")
        except TimeoutError:
            return Result("NO_MESSAGE", f"nothing within {STREAM_CEILING_S} s")
        finally:
            stream.cancel()
        if message is grpc.aio.EOF:
            code = await stream.code()
            return Result(code.name if code else "EOF", await stream.details() or "")
        return Result("OK", data=self._decode(op, message))


def _type_ref(arg_type: Any) -> str:
    return str(arg_type)


def _selection(return_type: Any) -> str:
    named = get_named_type(return_type)
    if isinstance(named, GraphQLObjectType | GraphQLUnionType):
        return " { __typename }"
    return ""


def graphql_document(op: Operation, variables: Mapping[str, Any]) -> str:
    """`query Q($id: ID!) { user(id: $id) { __typename } }` with the arguments given."""
    schema = graphql_schema()
    root = {
        Kind.QUERY: schema.query_type,
        Kind.MUTATION: schema.mutation_type,
        Kind.SUBSCRIPTION: schema.subscription_type,
    }[op.kind]
    assert root is not None
    field = root.fields[op.field]
    unknown = set(variables) - set(field.args)
    if unknown:
        raise AssertionError(f"{op.key}: no argument(s) {sorted(unknown)}")
    declared = ", ".join(f"${name}: {_type_ref(field.args[name].type)}" for name in variables)
    passed = ", ".join(f"{name}: ${name}" for name in variables)
    keyword = {Kind.QUERY: "query", Kind.MUTATION: "mutation", Kind.SUBSCRIPTION: "subscription"}[
        op.kind
    ]
    head = f"{keyword} Matrix({declared})" if declared else keyword
    call = f"{op.field}({passed})" if passed else op.field
    return f"{head} {{ {call}{_selection(field.type)} }}"


def _unwrap(t: Any) -> Any:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


def graphql_result(body: Mapping[str, Any]) -> Result:
    errors = body.get("errors")
    if errors:
        first = errors[0]
        code = (first.get("extensions") or {}).get("code", "NO_CODE")
        return Result(str(code), str(first.get("message", "")))
    return Result("OK", data=body.get("data"))


class GraphQLCalls:
    def __init__(self, http: httpx.AsyncClient, ws_url: str) -> None:
        self.http = http
        self.ws_url = ws_url

    async def execute(
        self, op: Operation, variables: Mapping[str, Any], token: str | None
    ) -> Result:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        query = graphql_document(op, variables)
        files = {name: value for name, value in variables.items() if isinstance(value, bytes)}
        if files:
            # GraphQL multipart request: the upload variables are null in `operations`.
            plain = {k: (None if k in files else v) for k, v in variables.items()}
            response = await self.http.post(
                "/graphql",
                data={
                    "operations": json.dumps({"query": query, "variables": plain}),
                    "map": json.dumps({str(i): [f"variables.{n}"] for i, n in enumerate(files)}),
                },
                files={str(i): (n, files[n] or b"\0") for i, n in enumerate(files)},
                headers=headers,
            )
        else:
            response = await self.http.post(
                "/graphql", json={"query": query, "variables": dict(variables)}, headers=headers
            )
        if response.status_code != 200:
            return Result(f"HTTP_{response.status_code}", response.text[:300])
        return graphql_result(response.json())

    async def raw(self, query: str, variables: Mapping[str, Any], token: str | None) -> Any:
        """A hand-written document; fails the caller on any error (fixture building)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": dict(variables)}, headers=headers
        )
        body = response.json()
        if "errors" in body:
            raise AssertionError(f"fixture call failed: {body['errors']}")
        return body["data"]

    async def subscription(
        self, op: Operation, variables: Mapping[str, Any], token: str | None
    ) -> GraphQLSubscription:
        sub = GraphQLSubscription(self.ws_url, graphql_document(op, variables), variables, token)
        await sub.open()
        return sub


class GraphQLSubscription:
    """One graphql-transport-ws connection carrying one subscription."""

    def __init__(
        self, url: str, query: str, variables: Mapping[str, Any], token: str | None
    ) -> None:
        self.url, self.query, self.variables, self.token = url, query, variables, token
        self._connection: Any = None
        self.ws: Any = None

    async def open(self) -> None:
        self._connection = connect(self.url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        self.ws = await self._connection.__aenter__()
        payload = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        await self.ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(self.ws.recv(), STREAM_CEILING_S))
        if ack.get("type") != "connection_ack":
            raise AssertionError(f"no connection_ack: {ack}")
        await self.ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": self.query, "variables": dict(self.variables)},
                }
            )
        )

    async def first(self) -> Result:
        try:
            while True:
                raw = await asyncio.wait_for(self.ws.recv(), STREAM_CEILING_S)
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                    continue
                if kind == "next":
                    return graphql_result(message["payload"])
                if kind == "error":
                    return graphql_result({"errors": message["payload"]})
                if kind == "complete":
                    return Result("COMPLETE", "completed without a message")
        except TimeoutError:
            return Result("NO_MESSAGE", f"nothing within {STREAM_CEILING_S} s")
        finally:
            await self.close()

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.__aexit__(None, None, None)

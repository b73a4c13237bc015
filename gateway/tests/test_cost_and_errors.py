"""Operation cost (gateway.cost) and what a client is told about a failed RPC
(gateway.errors): never a transport message, RATE_LIMITED only for rate limits."""

from __future__ import annotations

import grpc
from graphql import parse

from gateway.cost import FragmentCycle, operation_cost
from gateway.errors import RpcFailure, describe_rpc_error
from gateway.schema import build_schema
from services.kit.errors import NotFound, RateLimited, Unavailable
from services.kit.grpc.errors import to_grpc_status

SCHEMA = build_schema()._schema


def cost(query: str, **variables: object) -> int:
    return operation_cost(SCHEMA, parse(query), None, variables)


def test_cost_counts_fields_pages_and_expensive_items() -> None:
    assert cost("{ __typename }") == 1
    # 1 for the connection field, 50 (its default page) x 1 for its one field.
    assert cost("{ interactions { hasNextPage } }") == 1 + 50 * 1
    assert cost("{ interactions(first: 10) { hasNextPage nodes { id title } } }") == 1 + 10 * 4
    assert cost("query($n: Int!) { interactions(first: $n) { hasNextPage } }", n=7) == 8
    # A verification item weighs 20 more than a plain one.
    assert cost("{ passportVerification(first: 100) { verifiedCount } }") == 1 + 100 * 21
    # Fragments are expanded: the same selection spread twice costs twice.
    twice = "{ ...A ...A } fragment A on Query { interactions(first: 2) { hasNextPage } }"
    assert cost(twice) == 2 * (1 + 2)
    inline = "{ ... on Query { interactions(first: 3) { hasNextPage } } }"
    assert cost(inline) == 1 + 3


def test_nested_fragments_cost_what_execution_would_pay() -> None:
    levels = 40  # 10^39 leaves: costed exactly, in a blink (each fragment once)
    parts = ["query { ...F0 }"]
    for i in range(levels - 1):
        parts.append(f"fragment F{i} on Query {{ {' '.join([f'...F{i + 1}'] * 10)} }}")
    parts.append(f"fragment F{levels - 1} on Query {{ __typename }}")
    assert cost("\n".join(parts)) == 10 ** (levels - 1)
    try:
        cost("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    except FragmentCycle as cycle:
        assert cycle.name == "A"
    else:
        raise AssertionError("a fragment cycle must be refused")


def rpc_error(code: grpc.StatusCode, details: str, trailing: tuple = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details
    )


def from_servicer(error: Exception) -> grpc.aio.AioRpcError:
    status = to_grpc_status(error)  # type: ignore[arg-type]
    return rpc_error(status.code, status.details, status.trailing_metadata)


def test_transport_messages_never_reach_a_client() -> None:
    # The answers: these were shown verbatim, labelled RATE_LIMITED.
    too_big = rpc_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Received message larger than max (12477090 vs. 4194304)",
    )
    assert describe_rpc_error(too_big) is None  # ours to fix: masked
    removed = rpc_error(grpc.StatusCode.UNAVAILABLE, "Stream removed")
    assert describe_rpc_error(removed) == RpcFailure(
        "SERVICE_UNAVAILABLE", 503, "a backend service is unavailable; retry shortly"
    )
    deadline = rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    assert describe_rpc_error(deadline) == RpcFailure(
        "TIMEOUT", 504, "the operation did not finish within its deadline"
    )
    assert describe_rpc_error(rpc_error(grpc.StatusCode.INTERNAL, "boom")) is None
    # A servicer's own answers keep their words; only a rate limit is RATE_LIMITED.
    limited = from_servicer(RateLimited("too many attempts; retry in 3 s"))
    assert describe_rpc_error(limited) == RpcFailure(
        "RATE_LIMITED", 429, "too many attempts; retry in 3 s"
    )
    down = from_servicer(Unavailable("the chain node is not reachable"))
    assert describe_rpc_error(down) == RpcFailure(
        "SERVICE_UNAVAILABLE", 503, "the chain node is not reachable"
    )
    # A trailer whose code disagrees with the call's (gRPC replaced the status when the
    # trailer was too large) is read as "no servicer status", never an exception.
    status = to_grpc_status(NotFound("no such source"))
    mismatched = rpc_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "trailer too large", status.trailing_metadata
    )
    assert describe_rpc_error(mismatched) is None


def test_long_domain_messages_are_clipped_to_fit_a_trailer() -> None:
    status = to_grpc_status(NotFound("no webhook source " + "a" * 10_000))
    assert len(status.details) == 1024
    assert status.details.endswith("…")


async def test_a_document_found_valid_is_not_validated_again_but_still_limited() -> None:
    """ValidDocumentCache: a valid document's text is remembered per schema; the cost limit
    (per caller) still refuses it, and another schema's stricter limits still apply."""
    from types import SimpleNamespace

    def caller(authenticated: bool) -> SimpleNamespace:
        return SimpleNamespace(authenticated=authenticated)

    document = "{ __schema { queryType { name } mutationType { name } } }"
    schema = build_schema(max_cost=100, max_anonymous_cost=2)
    for _ in range(2):
        signed_in = await schema.execute(document, context_value=caller(True))
        assert signed_in.errors is None
        assert signed_in.data == {
            "__schema": {"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}}
        }
        assert document in schema.__dict__["_keiko_valid_documents"]
        anonymous = await schema.execute(document, context_value=caller(False))
        assert anonymous.errors is not None
        code = anonymous.errors[0].extensions or {}
        assert (code["code"], code["cost"], code["limit"]) == ("OPERATION_TOO_COSTLY", 5, 2)
    aliased = "{ a: __typename b: __typename c: __typename }"
    assert (await schema.execute(aliased, context_value=caller(True))).errors is None
    few_aliases = build_schema(max_aliases=2)
    refused = await few_aliases.execute(aliased, context_value=caller(True))
    assert refused.errors is not None
    invalid = "{ nope }"
    for _ in range(2):
        answer = await schema.execute(invalid, context_value=caller(True))
        assert answer.errors is not None
        assert answer.errors[0].message == "Cannot query field 'nope' on type 'Query'."
    assert invalid not in schema.__dict__["_keiko_valid_documents"]


async def test_a_document_is_parsed_once_and_a_broken_one_every_time() -> None:
    """ParsedDocumentCache: executions share the parsed document; a document that does not
    parse is refused with GRAPHQL_PARSE_FAILED each time and never kept."""
    from types import SimpleNamespace

    schema = build_schema(max_tokens=20)
    caller = SimpleNamespace(authenticated=True)
    for _ in range(2):
        assert (await schema.execute("{ __typename }", context_value=caller)).errors is None
    parsed = schema.__dict__["_keiko_parsed_documents"]
    assert [text for text, _ in parsed] == ["{ __typename }"]
    for broken in ("{ __typename", "{ " + "a: __typename " * 10 + "}"):  # syntax, tokens
        for _ in range(2):
            answer = await schema.execute(broken, context_value=caller)
            assert answer.errors is not None
            assert (answer.errors[0].extensions or {})["code"] == "GRAPHQL_PARSE_FAILED"
    assert len(parsed) == 1

"""Every hostile or careless request of issue 10, against the real platform (every service,
the gateway and the Keikochain dev node), on both engines: each gets the exact client
error it gets now (a GraphQL error with its code, or a 4xx with its reason), never a 500,
a masked internal error or a gRPC transport message. The nested-fragment query is refused
before anything executes while /healthz keeps answering. No timing is asserted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from services.api.keiko.learning import v1 as learning_pb
from services.api.keiko.passport import v1 as passport_pb
from services.kit.grpc.client import MAX_MESSAGE_BYTES, stub
from services.kit.limits import NAME_MAX_CHARS
from services.learning.common.usecases import MAX_LIST_PAGE
from services.passport.domain import MAX_PAGE as MAX_TIMELINE_PAGE
from tests.e2e_support import RECORD, Platform, rpc_count, signed_in_platform

XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3", "content-type": "application/json"}
TOO_COSTLY = "OPERATION_TOO_COSTLY"
RANGE = "must be between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z (exclusive)"


def nested_fragments(levels: int, fanout: int = 10, leaf: str = "__typename") -> str:
    """`query { ...F0 }`, each fragment spreading the next `fanout` times: the expanded
    operation has fanout**(levels-1) leaves."""
    parts = ["query { ...F0 }"]
    for i in range(levels - 1):
        spreads = " ".join([f"...F{i + 1}"] * fanout)
        parts.append(f"fragment F{i} on Query {{ {spreads} }}")
    parts.append(f"fragment F{levels - 1} on Query {{ {leaf} }}")
    return "\n".join(parts)


@pytest.fixture
async def platform(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Platform]:
    async with signed_in_platform(
        tmp_path, database_url, event_bus_url, monkeypatch, "mallory@example.org", "Mallory"
    ) as started:
        yield started


def only_error(result: dict[str, Any]) -> dict[str, Any]:
    assert result.get("data") is None, result
    [error] = result["errors"]
    return dict(error)


async def check_a_small_query_of_nested_fragments_is_refused_before_it_runs(
    platform: Platform,
) -> None:
    # The 646-byte query: 10^7 leaves once expanded (it ran for 19 s).
    query = nested_fragments(8)
    assert len(query.encode()) == 646
    anonymous = await platform.http.post("/graphql", json={"query": query})
    error = only_error(anonymous.json())
    assert error["extensions"] == {"code": TOO_COSTLY, "cost": 10**7, "limit": 10_000}
    assert error["message"] == (
        "operation cost 10000000 exceeds the limit of 10000 for anonymous callers "
        "(each field costs 1, paged fields multiply by their page size)"
    )
    # Signed in, the limit is higher and the answer the same.
    error = only_error(await platform.graphql(query))
    assert error["extensions"] == {"code": TOO_COSTLY, "cost": 10**7, "limit": 25_000}

    # Nothing executes: with a resolver at the leaves (a GetPassport each), no RPC runs.
    calls = await rpc_count(platform.http, "GetPassport", "NOT_FOUND")
    leaves = nested_fragments(10, leaf='passport(id: "nobody") { id }')
    before_ok = await rpc_count(platform.http, "GetPassport", "OK")

    async def health() -> httpx.Response:
        return await platform.http.get("/healthz")

    rejected, healthy = await asyncio.gather(
        platform.http.post("/graphql", json={"query": leaves}), health()
    )
    assert only_error(rejected.json())["extensions"]["code"] == TOO_COSTLY
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok"})
    assert await rpc_count(platform.http, "GetPassport", "NOT_FOUND") == calls
    assert await rpc_count(platform.http, "GetPassport", "OK") == before_ok

    # A fragment that spreads itself is refused by the same check.
    cyclic = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    error = only_error((await platform.http.post("/graphql", json={"query": cyclic})).json())
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert error["message"] == 'fragment "A" spreads itself'

    # Thirty aliases of passportVerification(first: 500): over the limit, and 500 is
    # past the verification page size anyway.
    aliases = " ".join(
        f"a{i}: passportVerification(first: 500) {{ verifiedCount }}" for i in range(30)
    )
    error = only_error(await platform.graphql("{ " + aliases + " }"))
    assert error["extensions"]["code"] == TOO_COSTLY
    assert error["extensions"]["cost"] == 30 * (1 + 500 * (20 + 1))
    one = await platform.graphql("{ passportVerification(first: 500) { verifiedCount } }")
    error = only_error(one)
    assert error["message"] == "first must be between 1 and 100"
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    fine = await platform.graphql("{ passportVerification(first: 100) { verifiedCount } }")
    assert fine == {"data": {"passportVerification": {"verifiedCount": 0}}}


async def check_malformed_http_requests_are_4xx_with_a_reason(platform: Platform) -> None:
    http = platform.http
    # GraphQL bodies that are not a JSON object, not UTF-8, or nested 100,000 deep.
    for body in (b"5", b'"x"', b"null"):
        response = await http.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )
        assert (response.status_code, response.text) == (400, "the body must be a JSON object")
    not_utf8 = b'{"query": "{ __typename }", "variables": {"a": "\xff"}}'
    response = await http.post(
        "/graphql", content=not_utf8, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.text) == (400, "body is not UTF-8")
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await http.post(
        "/graphql", content=deep, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.text) == (400, "JSON nested deeper than 64 levels")
    response = await http.post(
        "/xapi/statements",
        content=deep,
        headers={**XAPI_HEADERS, **platform.bearer},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "JSON nested deeper than 64 levels", "field": "statements"}

    # A body over its route's limit, declared or streamed.
    response = await http.post(
        "/xapi/statements",
        content=b"[" + b" " * (5 * 1024 * 1024) + b"]",
        headers={**XAPI_HEADERS, **platform.bearer},
    )
    assert response.status_code == 413
    assert response.json() == {"error": "body larger than 5242880 bytes"}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield b" " * (1024 * 1024)

    response = await http.post(
        "/xapi/statements", content=chunks(), headers={**XAPI_HEADERS, **platform.bearer}
    )
    assert response.status_code == 413
    assert "body larger than 5242880 bytes" in response.text

    # xAPI limit=² (a Unicode digit int() refuses) and a year-9999 timestamp whose
    # offset would overflow on conversion to UTC.
    response = await http.get(
        "/xapi/statements", params={"limit": "²"}, headers={**XAPI_HEADERS, **platform.bearer}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "must be a non-negative integer", "field": "limit"}
    statement = {
        "actor": {"mbox": "mailto:mallory@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": "https://keiko.example/activities/1"},
        "timestamp": "9999-12-31T23:59:59-23:59",
    }
    response = await http.post(
        "/xapi/statements", json=statement, headers={**XAPI_HEADERS, **platform.bearer}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": f'{RANGE}, got "9999-12-31T23:59:59-23:59"',
        "field": "statements[0].timestamp",
    }

    # Webhook source ids: a URL over 8 KiB is 414; a long id within it, 400.
    response = await http.post("/webhooks/" + "a" * 10_000, content=b"{}")
    assert response.status_code == 414
    assert response.json() == {"error": "URL longer than 8192 bytes"}
    response = await http.post("/webhooks/" + "a" * 5_000, content=b"{}")
    assert response.status_code == 400
    assert response.json() == {
        "error": "must be at most 2048 characters",
        "field": "source_id",
    }

    # Headers that cannot travel as gRPC metadata: a request id with a tab is replaced,
    # an authorization with one is refused.
    result = await platform.graphql("{ passport { id } }", **{"x-request-id": "a\tb"})
    assert "errors" not in result, result
    result = await platform.graphql("{ passport { id } }", authorization="Bearer a\tb")
    assert only_error(result)["extensions"] == {"code": "UNAUTHENTICATED"}
    assert only_error(result)["message"] == (
        "the authorization header is malformed (printable ASCII only)"
    )


async def check_wrongly_typed_or_out_of_range_inputs_are_bad_user_input(
    platform: Platform,
) -> None:
    valid = {
        "interactionType": "QUESTION",
        "activityId": "https://keiko.example/activities/q1",
        "title": "Question 1",
        "content": "What is 2 + 2?",
    }

    async def record(**changes: Any) -> dict[str, Any]:
        return only_error(await platform.graphql(RECORD, {"input": {**valid, **changes}}))

    def variable_error(at: str, reason: str) -> dict[str, Any]:
        return {
            "message": f"Variable '$input' has invalid value at .{at}: {reason}",
            "locations": [{"line": 2, "column": 17}],
            "extensions": {"code": "BAD_USER_INPUT"},
        }

    def datetime_error(value: str, why: str) -> dict[str, Any]:
        return variable_error("occurredAt", f'Value cannot represent a DateTime: "{value}". {why}')

    assert await record(interactionType="NOPE") == variable_error(
        "interactionType", "Value 'NOPE' does not exist in 'InteractionType' enum."
    )
    assert await record(occurredAt="2020-13-45T00:00:00Z") == datetime_error(
        "2020-13-45T00:00:00Z", "month must be in 1..12"
    )
    assert await record(occurredAt="2026-01-31T12:00:00") == datetime_error(
        "2026-01-31T12:00:00", "It needs a time zone offset (e.g. Z or +02:00)."
    )
    for instant in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        assert await record(occurredAt=instant) == datetime_error(instant, f"It {RANGE}.")
    missing = only_error(await platform.graphql(RECORD, {"input": {"title": "x"}}))
    assert missing["extensions"] == {"code": "BAD_USER_INPUT"}
    assert missing["message"] == (
        "Variable '$input' has invalid value: Expected value of type 'InteractionInput' "
        "to include required field 'interactionType', found: {'title': 'x'}."
    )
    page = "query($n: Int!) { interactions(first: $n) { hasNextPage } }"
    for value, reason in (
        ("x", "Int cannot represent non-integer value: 'x'"),
        (2**31, "Int cannot represent non 32-bit signed integer value: 2147483648"),
    ):
        error = only_error(await platform.graphql(page, {"n": value}))
        assert error["extensions"] == {"code": "BAD_USER_INPUT"}
        assert error["message"] == f"Variable '$n' has invalid value: {reason}"

    error = await record(durationSeconds=1e308)
    assert error["message"] == "durationSeconds must be between 0 and 316224000 (3660 days)"
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "durationSeconds"}

    # A million-character title: refused, naming the field and the limit.
    error = await record(title="x" * 1_000_000)
    assert error["message"] == "interaction.title: must be at most 200 characters"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "interaction.title"
    # A lone surrogate (only expressible as a JSON escape): not encodable, refused.
    body = json.dumps({"query": RECORD, "variables": {"input": valid}}).replace(
        "Question 1", "Question \\ud800"
    )
    response = await platform.http.post(
        "/graphql",
        content=body.encode(),
        headers={**platform.bearer, "content-type": "application/json"},
    )
    error = only_error(response.json())
    assert error["message"] == (
        "interaction.title: must be valid Unicode text (it has a lone surrogate)"
    )
    assert error["extensions"]["field"] == "interaction.title"

    # A space availability window in year 9999 or year 1.
    availability = """query($w: TimeWindowInput!) {
      spaceAvailability(spaceId: "space-1", window: $w) { startTime } }"""
    for year in ("9999", "0001"):
        window = {"startTime": f"{year}-06-01T00:00:00Z", "endTime": f"{year}-06-02T00:00:00Z"}
        result = await platform.graphql(availability, {"w": window})
        assert result["data"] is None
        assert [e["extensions"]["code"] for e in result["errors"]] == ["BAD_USER_INPUT"] * 2
        assert result["errors"][0]["message"] == (
            "Variable '$w' has invalid value at .startTime: Value cannot represent a "
            f'DateTime: "{year}-06-01T00:00:00Z". It {RANGE}.'
        )

    # Within the limits, the same mutation records the interaction.
    ok = await platform.graphql(RECORD, {"input": valid, "requestId": "hostile-ok"})
    assert "errors" not in ok, ok


async def check_largest_pages_fit_in_a_message(platform: Platform) -> None:
    """An interaction with every text field at its limit, in the worst encoding (4 bytes
    a character): the largest page of such records fits in one gRPC message, so no valid
    request produces a response the transport refuses (the issue's "Received message
    larger than max", after five long titles)."""
    wide = "\U0001f600"  # 4 bytes in UTF-8, also in the statement JSON (not escaped)
    largest = {
        "interactionType": "ANSWER",
        "activityId": "https://keiko.example/activities/" + "a" * 1_900,
        "title": wide * NAME_MAX_CHARS["title"],
        "content": wide * NAME_MAX_CHARS["content"],
        "response": wide * NAME_MAX_CHARS["response"],
    }
    recorded = await platform.graphql(RECORD, {"input": largest, "requestId": "largest"})
    assert "errors" not in recorded, recorded
    async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.running.grpc_port}") as channel:
        learning = stub(learning_pb.LearningServiceStub, channel, access_token=platform.gql.token)
        page = await learning.list_interactions(
            learning_pb.ListInteractionsRequest(learner_id=platform.user_id, page_size=10)
        )
        passport = stub(passport_pb.PassportServiceStub, channel, access_token=platform.gql.token)
        entry_bytes = 0
        for _ in range(300):  # the passport learns of it by event: bounded wait
            timeline = await passport.get_timeline(passport_pb.GetTimelineRequest(page_size=10))
            entry_bytes = max((len(bytes(e)) for e in _entries(timeline.groups)), default=0)
            if entry_bytes > 4 * NAME_MAX_CHARS["content"]:
                break
            await asyncio.sleep(0.1)
    item_bytes = max(len(bytes(item)) for item in page.interactions)
    entry_bytes += 1024  # its group
    assert item_bytes > 4 * 2 * NAME_MAX_CHARS["content"]  # the text really is in it
    assert item_bytes * MAX_LIST_PAGE + 64 * 1024 <= MAX_MESSAGE_BYTES, item_bytes
    assert entry_bytes > 4 * NAME_MAX_CHARS["content"]  # the large record is in it
    assert entry_bytes * MAX_TIMELINE_PAGE + 64 * 1024 <= MAX_MESSAGE_BYTES, entry_bytes


def _entries(groups: list[passport_pb.TimelineGroup]) -> list[passport_pb.PassportEntry]:
    found: list[passport_pb.PassportEntry] = []
    for group in groups:
        found.extend(group.entries)
        found.extend(_entries(group.children))
    return found


async def check_nul_characters_are_bad_user_input(platform: Platform) -> None:
    """What the fuzzer (tests/test_fuzz.py) found on PostgreSQL: an id with a NUL character
    reached the database, which cannot store it, and came back a masked internal error."""
    reason = "must not contain the NUL character (U+0000)"
    for operation, field in (
        ("query($v0: ID!) { tutorSession(id: $v0) { __typename } }", "session_id"),
        ("query($v0: ID!) { tutorialSession(id: $v0) { __typename } }", "session_id"),
        ("mutation($v0: ID!) { revokeLrsClient(id: $v0) { __typename } }", "client_id"),
        ("mutation($v0: ID!) { revokeWebhookSource(id: $v0) { __typename } }", "source_id"),
    ):
        error = only_error(await platform.graphql(operation, {"v0": "a\x00b"}))
        assert error["message"] == f"{field}: {reason}"
        assert error["extensions"] == {
            "code": "BAD_USER_INPUT",
            "field": field,
            "violations": [{"field": field, "reason": reason}],
        }


async def test_hostile_and_careless_requests_get_exact_client_errors(platform: Platform) -> None:
    """One platform for every case (starting one is the expensive part)."""
    await check_a_small_query_of_nested_fragments_is_refused_before_it_runs(platform)
    await check_malformed_http_requests_are_4xx_with_a_reason(platform)
    await check_wrongly_typed_or_out_of_range_inputs_are_bad_user_input(platform)
    await check_largest_pages_fit_in_a_message(platform)
    await check_nul_characters_are_bad_user_input(platform)

"""The credential REST routes that need no service (contexts, request parsing); the rest
run end to end in tests/test_credentials_e2e.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from starlette.applications import Starlette

from chain.credentials.documents import BUNDLED, KEIKO_CREDENTIALS_V1, bundled_context
from gateway.credentials_api import ApiError, credential_routes, issue_request
from services.api.keiko.passport import v1 as pb


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # never called by these routes
    app = Starlette(routes=credential_routes(channel))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http
    await channel.close()


async def test_contexts_are_served_as_bundled(client: httpx.AsyncClient) -> None:
    keiko = await client.get("/ns/credentials/v1")
    context = bundled_context(KEIKO_CREDENTIALS_V1)
    assert context is not None
    assert keiko.status_code == 200 and keiko.content == context.body
    assert keiko.headers["content-type"].startswith("application/ld+json")
    for name in BUNDLED.values():
        assert (await client.get(f"/contexts/{name}")).status_code == 200
    missing = await client.get("/contexts/other.jsonld")
    assert missing.status_code == 404 and missing.json() == {"error": "not a context Keiko bundles"}


async def test_issuing_needs_a_token_and_a_valid_body(client: httpx.AsyncClient) -> None:
    anonymous = await client.post("/credentials", content=json.dumps({"format": "per_entry"}))
    assert anonymous.status_code == 401
    bad = await client.post("/credentials", content=b"[1, ", headers={"authorization": "Bearer x"})
    assert bad.status_code == 400


def test_issue_request_names_the_bad_field() -> None:
    request = issue_request(
        {
            "format": "open_badge",
            "statement_ids": ["a"],
            "achievement": {"id": "https://x", "name": "n", "description": "d", "criteria": "c"},
        }
    )
    assert request.format == pb.CredentialFormat.OPEN_BADGE and request.achievement.name == "n"
    for body, field in [
        ({"format": "diploma"}, "format"),
        ({"format": "per_entry", "statement_ids": "a"}, "statement_ids"),
        ({"format": "per_entry", "course_id": 3}, "course_id"),
        ({"format": "open_badge", "achievement": []}, "achievement"),
    ]:
        with pytest.raises(ApiError) as err:
            issue_request(body)
        assert err.value.status == 400 and err.value.field == field

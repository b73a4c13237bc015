"""The xAPI Statements resource over HTTP (httpx against a live gateway: uvicorn + the
gateway app with the /xapi and /webhooks routes mounted, in front of a live learning
gRPC host on a migrated database)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import strawberry
import uvicorn

from gateway.app import create_app
from gateway.schema import build_schema
from gateway.server import _EmbeddedServer
from services.api.keiko.learning import v1 as pb
from services.kit.auth import TokenIssuer
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.grpc.client import stub
from services.kit.grpc.testing import access_token, token_pair
from services.learning.service import LearningService
from services.learning.servicer import LearningServicer
from services.learning.tests.test_service import statement
from services.learning.tests.test_servicer import relaying, serving

V = {"X-Experience-API-Version": "1.0.3"}


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[int]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise OSError("gateway failed to start")
        await asyncio.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


@dataclass
class LiveLearning:
    http: httpx.AsyncClient
    ws_url: str
    issuer: TokenIssuer
    clock: FixedClock
    channel: Any
    service: LearningService

    def token(self, user: str, *roles: str) -> str:
        return access_token(self.issuer, user, *roles)

    def grpc(self, user: str, *roles: str) -> pb.LearningServiceStub:
        return stub(pb.LearningServiceStub, self.channel, access_token=self.token(user, *roles))

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@asynccontextmanager
async def live_learning(
    database: Database,
    bus: EventBus,
    clock: FixedClock,
    schema: strawberry.Schema | None = None,
) -> AsyncIterator[LiveLearning]:
    issuer, verifier = token_pair(clock)
    service = LearningService(database, clock)
    fanout = EventFanout(bus, name="learning-gateway-test")
    async with (
        relaying(database, bus) as relay,
        serving([LearningServicer(service, fanout)], verifier) as channel,
    ):
        service.on_commit.append(relay.notify)
        app = create_app(schema or build_schema(), channel, clock=clock)
        async with serve_app(app) as port:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                yield LiveLearning(
                    http, f"ws://127.0.0.1:{port}/graphql", issuer, clock, channel, service
                )
    await fanout.close()


@pytest.fixture
async def gw(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[LiveLearning]:
    async with live_learning(migrated_database, event_bus, clock) as live:
        yield live


def basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


async def lrs_headers(gw: LiveLearning, user: str = "ana") -> dict[str, str]:
    registered = await gw.grpc(user).register_lrs_client(pb.RegisterLrsClientRequest(name="LMS"))
    return {**V, **basic(registered.client.key, registered.secret)}


async def test_about_and_version_header(gw: LiveLearning) -> None:
    about = await gw.http.get("/xapi/about")
    assert about.json() == {"version": ["1.0.3", "2.0.0"], "extensions": {}}
    headers = await lrs_headers(gw)
    missing = await gw.http.get(
        "/xapi/statements", headers={"Authorization": headers["Authorization"]}
    )
    assert missing.status_code == 400
    assert missing.json() == {"error": "header is required", "field": "X-Experience-API-Version"}
    wrong = await gw.http.get(
        "/xapi/statements", headers={**headers, **{"X-Experience-API-Version": "0.95"}}
    )
    assert wrong.status_code == 400 and wrong.json()["field"] == "X-Experience-API-Version"
    ok = await gw.http.get(
        "/xapi/statements", headers={**headers, "X-Experience-API-Version": "2.0.0"}
    )
    assert ok.status_code == 200
    assert ok.headers["X-Experience-API-Version"] == "2.0.0"
    assert ok.headers["X-Experience-API-Consistent-Through"] == "2026-01-01T00:00:00.000Z"
    assert ok.json() == {"statements": [], "more": ""}


async def test_authentication(gw: LiveLearning) -> None:
    anonymous = await gw.http.get("/xapi/statements", headers=V)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="Keiko xAPI"'
    bad = await gw.http.get("/xapi/statements", headers={**V, **basic("lrs_nope", "x")})
    assert (bad.status_code, bad.json()) == (401, {"error": "invalid LRS client credentials"})
    bearer = await gw.http.get(
        "/xapi/statements", headers={**V, "Authorization": f"Bearer {gw.token('ana')}"}
    )
    assert bearer.status_code == 200


async def test_put_post_get_and_conflicts(gw: LiveLearning) -> None:
    headers = await lrs_headers(gw)
    sid = str(uuid.uuid4())
    put = await gw.http.put(
        "/xapi/statements", params={"statementId": sid}, json=statement(), headers=headers
    )
    assert put.status_code == 204, put.text
    assert put.headers["X-Experience-API-Version"] == "1.0.3"
    again = await gw.http.put(
        "/xapi/statements", params={"statementId": sid}, json=statement(), headers=headers
    )
    assert again.status_code == 204
    conflict = await gw.http.put(
        "/xapi/statements",
        params={"statementId": sid},
        json=statement(activity="https://example.org/other"),
        headers=headers,
    )
    assert conflict.status_code == 409
    assert conflict.json() == {
        "error": f"statements[0].id: statement {sid} is already stored with different content"
    }
    mismatch = await gw.http.put(
        "/xapi/statements",
        params={"statementId": sid},
        json=statement(id=str(uuid.uuid4())),
        headers=headers,
    )
    assert mismatch.json() == {"error": "does not match the statement's id", "field": "statementId"}
    no_id = await gw.http.put("/xapi/statements", json=statement(), headers=headers)
    assert no_id.json() == {"error": "query parameter is required", "field": "statementId"}

    posted = await gw.http.post(
        "/xapi/statements", json=[statement(), statement()], headers=headers
    )
    assert posted.status_code == 200 and len(posted.json()) == 2
    single = await gw.http.post("/xapi/statements", json=statement(), headers=headers)
    assert len(single.json()) == 1

    got = await gw.http.get("/xapi/statements", params={"statementId": sid}, headers=headers)
    assert got.status_code == 200 and got.json()["id"] == sid
    assert got.json()["authority"]["account"]["name"] == "ana"
    missing = await gw.http.get(
        "/xapi/statements", params={"statementId": str(uuid.uuid4())}, headers=headers
    )
    assert missing.status_code == 404


async def test_bad_statement_names_the_path(gw: LiveLearning) -> None:
    headers = await lrs_headers(gw)
    bad = statement()
    bad["actor"] = {"mbox": "ana@example.org"}
    response = await gw.http.post("/xapi/statements", json=[statement(), bad], headers=headers)
    assert response.status_code == 400
    assert response.json()["field"] == "statements[1].actor.mbox"
    dup = await gw.http.post("/xapi/statements", content=b'{"id": "a", "id": "b"}', headers=headers)
    assert dup.status_code == 400 and dup.json()["field"] == "statement"
    not_json = await gw.http.post("/xapi/statements", content=b"{", headers=headers)
    assert not_json.status_code == 400 and not_json.json()["field"] == "statements"
    other = await gw.http.post("/xapi/statements", json=[statement("ben")], headers=headers)
    assert other.status_code == 403
    attachments = await gw.http.post(
        "/xapi/statements",
        content=b"--x--",
        headers={**headers, "Content-Type": "multipart/mixed; boundary=x"},
    )
    assert attachments.status_code == 400 and attachments.json()["field"] == "Content-Type"
    unknown = await gw.http.get("/xapi/statements", params={"colour": "red"}, headers=headers)
    assert unknown.json() == {"error": "unknown query parameter", "field": "colour"}
    since = await gw.http.get("/xapi/statements", params={"since": "yesterday"}, headers=headers)
    assert since.json()["field"] == "since"


async def test_query_with_more_links_and_voiding(gw: LiveLearning) -> None:
    headers = await lrs_headers(gw)
    ids = []
    for _ in range(5):
        posted = await gw.http.post("/xapi/statements", json=statement(), headers=headers)
        ids += posted.json()
        gw.clock.advance(timedelta(seconds=1))
    agent = json.dumps({"account": {"homePage": "https://keiko.network", "name": "ana"}})
    params = {"agent": agent, "limit": "2", "ascending": "true"}
    page = (await gw.http.get("/xapi/statements", params=params, headers=headers)).json()
    seen = [s["id"] for s in page["statements"]]
    assert page["more"].startswith("/xapi/statements?")
    # A statement arriving between pages does not shift the next pages.
    late = (await gw.http.post("/xapi/statements", json=statement(), headers=headers)).json()
    while page["more"]:
        page = (await gw.http.get(page["more"], headers=headers)).json()
        seen += [s["id"] for s in page["statements"]]
    assert seen == ids + late

    voided_id = ids[0]
    voiding = statement(verb="http://adlnet.gov/expapi/verbs/voided")
    voiding["object"] = {"objectType": "StatementRef", "id": voided_id}
    assert (
        await gw.http.post("/xapi/statements", json=voiding, headers=headers)
    ).status_code == 200
    hidden = await gw.http.get(
        "/xapi/statements", params={"statementId": voided_id}, headers=headers
    )
    assert hidden.status_code == 404
    shown = await gw.http.get(
        "/xapi/statements", params={"voidedStatementId": voided_id}, headers=headers
    )
    assert shown.status_code == 200 and shown.json()["id"] == voided_id
    listing = (await gw.http.get("/xapi/statements", headers=headers)).json()
    assert voided_id not in [s["id"] for s in listing["statements"]]
    by_verb = (
        await gw.http.get(
            "/xapi/statements",
            params={"verb": "http://adlnet.gov/expapi/verbs/voided"},
            headers=headers,
        )
    ).json()
    assert len(by_verb["statements"]) == 1

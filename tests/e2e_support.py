"""Helpers shared by the end-to-end tests that run the whole platform (services, gateway,
Keikochain dev node): settings, GraphQL over HTTP, WebAuthn sign-up and login, and a small
graphql-transport-ws client. Every wait is bounded, so a broken flow fails, never hangs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from chain.node.process import free_port
from keiko import registry
from keiko.authenticator import SoftwareAuthenticator
from keiko.platform import RunningPlatform, migrate, running_platform
from keiko.settings import Settings
from services.kit.db import Database
from services.kit.events.fanout import EventFanout

ORIGIN = "http://localhost:8000"


def e2e_settings(data_dir: Path, database_url: str, event_bus_url: str, **extra: Any) -> Settings:
    """Settings of a test platform. Concrete free ports (not 0): share-link URLs and the
    passport's proof source are built from the configured ports before anything listens."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        event_bus_url=event_bus_url,
        grpc_port=free_port(),
        http_port=free_port(),
        chain_node_port=0,
        webauthn_origins=[ORIGIN],
        shutdown_grace_seconds=0.5,
        log_json=False,
        log_level="WARNING",
        **extra,
    )


async def migrate_all(database_url: str) -> None:
    """`keiko migrate` (the platform migrates by itself only on SQLite)."""
    definitions = registry.resolve(None)
    database = Database(database_url, schemas=[d.name for d in definitions])
    try:
        await migrate(database, definitions)
    finally:
        await database.dispose()


def engine_env(monkeypatch: pytest.MonkeyPatch, database_url: str, **chain: str) -> None:
    """Translator tuning (``KEIKO_CHAIN_*``) and, off the embedded default, a KEK."""
    for name, value in chain.items():
        monkeypatch.setenv(f"KEIKO_CHAIN_{name.upper()}", value)
    if not database_url.startswith("sqlite"):
        from chain.translator.keys import KeyVault

        monkeypatch.setenv("KEIKO_KEK", KeyVault.new_kek())


def gateway_http(running: RunningPlatform) -> httpx.AsyncClient:
    """An HTTP client of the platform's gateway. No keep-alive: the server closes idle
    connections (uvicorn, 5 s), and a POST racing that close fails with ReadError."""
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{running.http_port}",
        timeout=60,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.token: str | None = None

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return dict(body["data"])


REGISTER = """
mutation Begin($email: String!, $name: String!) {
  beginRegistration(email: $email, displayName: $name) { id optionsJson }
}"""
FINISH_REGISTRATION = """
mutation Finish($id: ID!, $credential: String!) {
  finishRegistration(registrationId: $id, credentialJson: $credential) { user { id } }
}"""
LOGIN = "mutation Login($email: String!) { beginLogin(email: $email) { id optionsJson } }"
FINISH_LOGIN = """
mutation FinishLogin($id: ID!, $credential: String!) {
  finishLogin(loginId: $id, credentialJson: $credential) {
    user { id } tokens { accessToken }
  }
}"""


async def sign_up_and_log_in(
    gql: GraphQLClient, email: str, name: str, authenticator: SoftwareAuthenticator | None = None
) -> str:
    """WebAuthn registration then login through GraphQL; sets and returns the user id.
    Keep ``authenticator`` to log in again later (`log_in`)."""
    authenticator = authenticator or SoftwareAuthenticator(origin=ORIGIN, rp_id="localhost")
    begun = (await gql(REGISTER, email=email, name=name))["beginRegistration"]
    credential = authenticator.create(begun["optionsJson"])
    user_id = (await gql(FINISH_REGISTRATION, id=begun["id"], credential=credential))[
        "finishRegistration"
    ]["user"]["id"]
    assert await log_in(gql, email, authenticator) == user_id
    return str(user_id)


async def log_in(gql: GraphQLClient, email: str, authenticator: SoftwareAuthenticator) -> str:
    """A WebAuthn login through GraphQL (a fresh access token); returns the user id."""
    gql.token = None  # an expired token would be refused before the login is looked at
    login = (await gql(LOGIN, email=email))["beginLogin"]
    assertion = authenticator.get(login["optionsJson"])
    session = (await gql(FINISH_LOGIN, id=login["id"], credential=assertion))["finishLogin"]
    gql.token = session["tokens"]["accessToken"]
    return str(session["user"]["id"])


RECORD = """
mutation Record($input: InteractionInput!, $requestId: String) {
  recordInteraction(input: $input, requestId: $requestId) { id anchor { status } }
}"""


async def record_interactions(gql: GraphQLClient, count: int, *, label: str) -> list[str]:
    """Record ``count`` question/answer interactions through GraphQL (a few at a time)."""
    kinds = ["QUESTION", "ANSWER", "EXERCISE", "EVALUATION"]

    async def one(i: int) -> str:
        data = await gql(
            RECORD,
            input={
                "interactionType": kinds[i % len(kinds)],
                "activityId": f"https://keiko.example/activities/{label}/{i}",
                "title": f"{label} item {i}",
                "content": f"what is {i} squared?",
                "response": f"answer {i}",
                "score": {"scaled": round((i % 10) / 10, 1)},
                "success": i % 2 == 0,
            },
            requestId=f"{label}-{i}-{uuid.uuid4().hex[:8]}",
        )
        return str(data["recordInteraction"]["id"])

    ids: list[str] = []
    for start in range(0, count, 5):
        ids += await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(start, min(start + 5, count)))), 60
        )
    assert len(set(ids)) == count
    return ids


INTERACTIONS = """
query Interactions($after: String) {
  interactions(first: 100, after: $after) {
    nodes {
      id signatureHex publicKeyHex
      anchor { status batchId merkleRoot txHash blockNumber failureReason }
    }
    endCursor hasNextPage
  }
}"""


async def all_interactions(gql: GraphQLClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await gql(INTERACTIONS, after=after))["interactions"]
        out += page["nodes"]
        if not page["hasNextPage"]:
            return out
        after = page["endCursor"]


def platform_fanout(running: RunningPlatform) -> EventFanout:
    for servicer in running.host.servicers:
        fanout = getattr(servicer, "fanout", None)
        if type(servicer).__name__ == "PassportServicer" and isinstance(fanout, EventFanout):
            return fanout
    raise AssertionError("no passport servicer with an event fanout in the platform")


@dataclass
class Subscriptions:
    """One graphql-transport-ws connection (authenticated in ``connection_init``)."""

    ws: ClientConnection

    async def subscribe(self, sub_id: str, query: str) -> None:
        await self.ws.send(
            json.dumps({"id": sub_id, "type": "subscribe", "payload": {"query": query}})
        )

    async def next(self, timeout: float) -> dict[str, Any]:
        """The next ``next`` message's data (fails on error / complete / timeout)."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] == "pong":
                continue
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            return dict(message["payload"]["data"])


@asynccontextmanager
async def subscriptions(http_port: int, token: str) -> AsyncIterator[Subscriptions]:
    url = f"ws://127.0.0.1:{http_port}/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert ack["type"] == "connection_ack", ack
        yield Subscriptions(ws)


async def rpc_count(http: httpx.AsyncClient, method: str, code: str) -> float:
    """``keiko_grpc_server_handled_total`` of one method and status code (gateway /metrics)."""
    text = (await http.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("keiko_grpc_server_handled_total{") and (
            f'method="{method}"' in line and f'code="{code}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_for_watchers(fanout: EventFanout, count: int, timeout: float = 30) -> None:
    """Until ``count`` listeners are registered on the fanout (the subscription reached
    WatchPassport), so no event published after this can be missed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(fanout._watchers) < count:
        if loop.time() > deadline:
            pytest.fail("the subscription never reached WatchPassport")
        await asyncio.sleep(0.05)


@dataclass
class Platform:
    """A running platform, its gateway's HTTP client and one signed-in user."""

    running: RunningPlatform
    http: httpx.AsyncClient
    gql: GraphQLClient
    user_id: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.gql.token}"}

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={**self.bearer, **headers},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@asynccontextmanager
async def signed_in_platform(
    tmp_path: Path,
    database_url: str,
    event_bus_url: str,
    monkeypatch: pytest.MonkeyPatch,
    email: str,
    name: str,
) -> AsyncIterator[Platform]:
    """The whole platform on the test's engine (no humanity decoder warm-up) with one user
    signed up and logged in through GraphQL."""
    engine_env(monkeypatch, database_url)
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url, humanity_warm_up=False)
    await migrate_all(database_url)
    async with (
        running_platform(settings, registry.resolve(None)) as running,
        gateway_http(running) as http,
    ):
        gql = GraphQLClient(http)
        user_id = await sign_up_and_log_in(gql, email, name)
        yield Platform(running, http, gql, user_id)

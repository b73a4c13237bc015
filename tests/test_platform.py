"""The whole platform as `keiko serve` runs it: every service on one gRPC port, the
gateway in front, a GraphQL client going through WebAuthn sign-up and login."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpclib.const import Cardinality

from keiko import registry
from keiko.authenticator import SoftwareAuthenticator
from keiko.platform import RunningPlatform, migrate, running_platform
from keiko.settings import Settings
from services.kit.auth import Principal, TokenIssuer
from services.kit.clock import SystemClock
from services.kit.db import Database
from services.kit.grpc import adapter
from tests.e2e_support import engine_env

ORIGIN = "http://localhost:8000"
SEVEN_SERVICES = {
    "keiko.identity.v1.IdentityService",
    "keiko.learning.v1.LearningService",
    "keiko.passport.v1.PassportService",
    "keiko.reputation.v1.ReputationService",
    "keiko.governance.v1.GovernanceService",
    "keiko.marketplace.v1.MarketplaceService",
    "keiko.chain.v1.ChainService",
}


@pytest.fixture
async def platform(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningPlatform, httpx.AsyncClient]]:
    engine_env(monkeypatch, database_url)  # a KEK off the embedded default
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        event_bus_url=event_bus_url,
        grpc_port=0,
        http_port=0,
        webauthn_origins=[ORIGIN],
        shutdown_grace_seconds=0.5,
        humanity_warm_up=False,  # no enrollment here: skip the decoder's JIT compile
    )
    definitions = registry.resolve(None)
    database = Database(database_url, schemas=[d.name for d in definitions])
    await migrate(database, definitions)  # `keiko migrate`; automatic only on SQLite
    await database.dispose()
    async with (
        running_platform(settings, definitions, with_chain=False) as running,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.http_port}", timeout=30) as http,
    ):
        yield running, http


def platform_token(running: RunningPlatform, user_id: str = "user-1") -> str:
    """A token signed with the key the platform made in its data dir."""
    key = running.settings.jwt_key_path.read_bytes()
    issuer = TokenIssuer(key, SystemClock(), timedelta(minutes=5))
    return issuer.issue(Principal(user_id=user_id, roles=frozenset({"learner"}))).token


async def graphql(http: httpx.AsyncClient, query: str, token: str | None = None, **variables):  # type: ignore[no-untyped-def]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


async def test_health_reflection_and_unimplemented_services(platform) -> None:  # type: ignore[no-untyped-def]
    running, _ = platform
    target = f"127.0.0.1:{running.grpc_port}"
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", *sorted(SEVEN_SERVICES)]:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service

        # RPCs not built yet answer UNIMPLEMENTED, naming the method.
        token = platform_token(running)
        for servicer in running.host.servicers:
            for method in adapter.describe(servicer):
                if method.implemented or method.cardinality is not Cardinality.UNARY_UNARY:
                    continue
                call = channel.unary_unary(
                    method.full_name, request_serializer=bytes, response_deserializer=bytes
                )
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call(
                        method.request_type(), metadata=[("authorization", f"Bearer {token}")]
                    )
                assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
                assert caught.value.details() == (
                    f"{method.service}.{method.name} is not implemented in this Keiko release"
                )
                break

    def reflected() -> set[str]:
        with grpc.insecure_channel(target) as sync_channel:
            return set(ProtoReflectionDescriptorDatabase(sync_channel).get_services())

    assert await asyncio.to_thread(reflected) >= SEVEN_SERVICES


REGISTER = """
mutation Begin($email: String!, $name: String!) {
  beginRegistration(email: $email, displayName: $name) { id optionsJson }
}"""
FINISH_REGISTRATION = """
mutation Finish($id: ID!, $credential: String!) {
  finishRegistration(registrationId: $id, credentialJson: $credential) {
    user { id email displayName roles }
    tokens { accessToken refreshToken sessionId }
  }
}"""
LOGIN = """
mutation Login($email: String!) { beginLogin(email: $email) { id optionsJson } }"""
FINISH_LOGIN = """
mutation FinishLogin($id: ID!, $credential: String!) {
  finishLogin(loginId: $id, credentialJson: $credential) {
    user { id } tokens { accessToken refreshToken sessionId }
  }
}"""
ME = "query { me { id email displayName roles humanVerified } }"


STATEMENTS = "query { statements(first: 1) { __typename } }"


async def test_graphql_client_registers_logs_in_and_queries_me(platform) -> None:  # type: ignore[no-untyped-def]
    _, http = platform
    authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id="localhost")

    begun = (await graphql(http, REGISTER, email="Ana@Example.org", name="Ana"))[
        "beginRegistration"
    ]
    credential = authenticator.create(begun["optionsJson"])
    registered = (await graphql(http, FINISH_REGISTRATION, id=begun["id"], credential=credential))[
        "finishRegistration"
    ]
    assert registered["user"]["email"] == "ana@example.org"
    assert registered["user"]["roles"] == ["LEARNER"]

    login = (await graphql(http, LOGIN, email="ana@example.org"))["beginLogin"]
    assertion = authenticator.get(login["optionsJson"])
    session = (await graphql(http, FINISH_LOGIN, id=login["id"], credential=assertion))[
        "finishLogin"
    ]
    assert session["user"]["id"] == registered["user"]["id"]

    me = (await graphql(http, ME, token=session["tokens"]["accessToken"]))["me"]
    assert me == {
        "id": registered["user"]["id"],
        "email": "ana@example.org",
        "displayName": "Ana",
        "roles": ["LEARNER"],
        "humanVerified": False,
    }

    refreshed = await graphql(
        http,
        "mutation R($t: String!) { refreshTokens(refreshToken: $t) { accessToken refreshToken } }",
        t=session["tokens"]["refreshToken"],
    )
    new_tokens = refreshed["refreshTokens"]
    assert new_tokens["refreshToken"] != session["tokens"]["refreshToken"]
    # another service (learning) takes the access token while the session is live
    assert await graphql(http, STATEMENTS, token=new_tokens["accessToken"]) == {
        "statements": {"__typename": "StatementConnection"}
    }

    logged_out = await graphql(
        http,
        "mutation L($t: String!) { logout(refreshToken: $t) }",
        token=new_tokens["accessToken"],
        t=new_tokens["refreshToken"],
    )
    assert logged_out == {"logout": True}

    # Logout revoked the session: identity announces it and every service refuses its
    # access tokens, well before they expire.
    errors: list[dict[str, object]] = []
    for _ in range(300):  # a ceiling (30 s) for the event to arrive, not a timing assertion
        response = await http.post(
            "/graphql",
            json={"query": STATEMENTS},
            headers={"authorization": f"Bearer {new_tokens['accessToken']}"},
        )
        errors = response.json().get("errors") or []
        if errors:
            break
        await asyncio.sleep(0.1)
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == [  # type: ignore[index]
        ("session has been revoked", "UNAUTHENTICATED")
    ]


async def test_graphql_bad_email_names_the_field(platform) -> None:  # type: ignore[no-untyped-def]
    _, http = platform
    response = await http.post(
        "/graphql",
        json={"query": REGISTER, "variables": {"email": "not-an-email", "name": "Ana"}},
    )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "email"


async def test_ops_endpoints(platform) -> None:  # type: ignore[no-untyped-def]
    running, http = platform
    # Asked for port 0: services were built with the ports that were actually bound.
    assert running.settings.grpc_port == running.grpc_port != 0
    assert running.settings.http_port == running.http_port != 0
    assert (await http.get("/readyz")).json() == {"status": "serving"}
    metrics = (await http.get("/metrics")).text
    assert "keiko_grpc_server_handled_total" in metrics


async def test_services_call_this_process_own_services_in_process(tmp_path: Path) -> None:
    """keiko.runtime's open_channel (how identity, passport and governance reach the
    translator): in process for this process's own gRPC address once the platform has set
    its host, over the network for any other address or with KEIKO_LOCAL_CALLS=0."""
    from keiko.runtime import ServiceRuntime
    from services.api import DESCRIPTOR_SET_PATH
    from services.kit.grpc.local import LocalChannel
    from services.kit.grpc.server import GrpcHost
    from services.kit.grpc.testing import token_pair

    _, verifier = token_pair(SystemClock())
    host = GrpcHost([], token_verifier=verifier, descriptor_set=DESCRIPTOR_SET_PATH.read_bytes())

    def runtime(**settings: object) -> ServiceRuntime:
        return ServiceRuntime(
            settings=Settings(data_dir=tmp_path, grpc_port=50999, **settings),  # type: ignore[arg-type]
            database=None,  # type: ignore[arg-type]
            event_bus=None,  # type: ignore[arg-type]
            clock=SystemClock(),
            token_verifier=verifier,
            jwt_private_key_pem=None,
            fanout=None,  # type: ignore[arg-type]
        )

    own = "127.0.0.1:50999"
    on, off = runtime(), runtime(local_calls=False)
    opened = [on.open_channel(own)]  # before the platform set its host
    on.co_host = off.co_host = host
    opened += [on.open_channel(own), on.open_channel("10.0.0.7:50051"), off.open_channel(own)]
    try:
        assert [isinstance(c, LocalChannel) for c in opened] == [False, True, False, False]
    finally:
        for channel in opened:
            await channel.close()

"""Operator commands against the whole platform, on both engines:

``keiko admin bootstrap`` (the database is its authority: the operator signs up over the
gateway with a passkey file, then gets ADMIN), then ``keiko users``, ``keiko lrs-clients``
and ``keiko webhooks`` as GraphQL clients authenticated with that passkey. The LRS
credentials work on /xapi and stop working once revoked. Nobody else gets around
authorization: a learner's token cannot list users or grant itself a role, and a second
bootstrap is refused once an admin exists.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest

from keiko import registry
from keiko.cli import main as keiko_main
from keiko.platform import RunningPlatform, running_platform
from tests.e2e_support import (
    ORIGIN,
    GraphQLClient,
    e2e_settings,
    engine_env,
    gateway_http,
    migrate_all,
    sign_up_and_log_in,
)


@pytest.fixture
async def platform(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningPlatform]:
    engine_env(monkeypatch, database_url)
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    settings = settings.model_copy(
        update={"webauthn_origins_setting": [ORIGIN, f"http://localhost:{settings.http_port}"]}
    )
    # The command line reads the same configuration from the environment.
    monkeypatch.setenv("KEIKO_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KEIKO_DATABASE_URL", database_url)
    monkeypatch.setenv("KEIKO_HTTP_PORT", str(settings.http_port))
    monkeypatch.setenv("KEIKO_OPERATOR_PASSKEY", str(tmp_path / "operator-passkey.json"))
    monkeypatch.delenv("KEIKO_TOKEN", raising=False)
    await migrate_all(database_url)
    async with running_platform(settings, registry.resolve(None)) as running:
        yield running


async def keiko(*argv: str) -> tuple[int, str, str]:
    """`keiko ...` in a thread (it is a blocking client of the platform in this loop)."""

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = keiko_main(list(argv))
        return code, out.getvalue(), err.getvalue()

    return await asyncio.wait_for(asyncio.to_thread(run), 120)


async def keiko_json(*argv: str) -> Any:
    code, out, err = await keiko(*argv, "--json")
    assert code == 0, (argv, out, err)
    return json.loads(out)


async def test_bootstrap_users_lrs_clients_and_webhooks(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    passkey = tmp_path / "operator-passkey.json"
    booted = await keiko_json("admin", "bootstrap", "--email", "root@example.org")
    assert booted["email"] == "root@example.org" and "ADMIN" in booted["roles"]
    assert passkey.stat().st_mode & 0o077 == 0, "the passkey file is readable by its owner only"

    # Bootstrap makes the first admin only.
    code, _, err = await keiko("admin", "bootstrap", "--email", "eve@example.org")
    assert code == 2 and "an admin exists already" in err

    # A learner signs up in the usual way; the operator makes them a tutor.
    async with gateway_http(platform) as http:
        learner = GraphQLClient(http)
        ana_id = await sign_up_and_log_in(learner, "ana@example.org", "Ana")

        # The learner cannot list users or give themself a role.
        for query in (
            "{ users { nodes { id } } }",
            f'mutation {{ setUserRoles(userId: "{ana_id}", roles: [ADMIN]) {{ id }} }}',
        ):
            reply = await http.post(
                "/graphql",
                json={"query": query},
                headers={"authorization": f"Bearer {learner.token}"},
            )
            assert reply.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN", reply.text

    listed = await keiko_json("users", "list")
    assert {u["email"] for u in listed} == {"root@example.org", "ana@example.org"}
    granted = await keiko_json("users", "grant-role", "ana@example.org", "TUTOR")
    assert set(granted["roles"]) == {"LEARNER", "TUTOR"}
    tutors = await keiko_json("users", "list", "--role", "TUTOR")
    assert [u["email"] for u in tutors] == ["ana@example.org"]
    revoked = await keiko_json("users", "revoke-role", ana_id, "TUTOR")
    assert set(revoked["roles"]) == {"LEARNER"}
    code, _, err = await keiko("users", "grant-role", "nobody@example.org", "TUTOR")
    assert code == 2 and "no user with the email" in err

    # LRS credentials: made, working on /xapi, listed, revoked, refused.
    made = await keiko_json("lrs-clients", "create", "Moodle of the school")
    key, secret = made["client"]["key"], made["secret"]
    assert made["endpoint"].endswith("/xapi/")
    async with gateway_http(platform) as http:
        query = await http.get(
            "/xapi/statements",
            auth=(key, secret),
            headers={"x-experience-api-version": "1.0.3"},
        )
        assert query.status_code == 200, query.text
        listed_clients = await keiko_json("lrs-clients", "list")
        assert [c["key"] for c in listed_clients] == [key]
        gone = await keiko_json("lrs-clients", "revoke", made["client"]["id"])
        assert gone["revokedAt"]
        refused = await http.get(
            "/xapi/statements",
            auth=(key, secret),
            headers={"x-experience-api-version": "1.0.3"},
        )
        assert refused.status_code == 401

    # Webhook sources.
    canvas = "https://canvas.school.example"
    source = await keiko_json("webhooks", "create", canvas, "--kind", "CANVAS")
    assert source["generatedSecret"] and source["url"].endswith(source["source"]["endpointPath"])
    assert [s["name"] for s in await keiko_json("webhooks", "list")] == [canvas]
    assert (await keiko_json("webhooks", "revoke", source["source"]["id"]))["revokedAt"]

    # Without the passkey file or a token: a clear error, nothing sent.
    passkey.rename(tmp_path / "elsewhere.json")
    code, _, err = await keiko("users", "list")
    assert code == 2 and "no passkey file" in err

    await lrs_clients_are_per_owner(platform)


async def lrs_clients_are_per_owner(platform: RunningPlatform) -> None:
    """Issue 11: LRS clients over GraphQL, for people who do not write gRPC; one user
    neither sees nor revokes another's. (Same platform as above: one start-up.)"""
    async with gateway_http(platform) as http:
        ana, ben = GraphQLClient(http), GraphQLClient(httpx.AsyncClient(base_url=http.base_url))
        await sign_up_and_log_in(ana, "ana2@example.org", "Ana")
        await sign_up_and_log_in(ben, "ben@example.org", "Ben")
        made = (
            await ana(
                'mutation { registerLrsClient(name: "H5P", requestId: "r1") '
                "{ client { id key } secret } }"
            )
        )["registerLrsClient"]
        assert len(made["secret"]) >= 32
        assert (await ben("{ lrsClients { nodes { id } } }"))["lrsClients"]["nodes"] == []
        reply = await ben.http.post(
            "/graphql",
            json={
                "query": f'mutation {{ revokeLrsClient(id: "{made["client"]["id"]}") {{ id }} }}'
            },
            headers={"authorization": f"Bearer {ben.token}"},
        )
        assert reply.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        await ben.http.aclose()
        mine = (await ana("{ lrsClients { nodes { id revokedAt } } }"))["lrsClients"]["nodes"]
        assert mine == [{"id": made["client"]["id"], "revokedAt": None}]

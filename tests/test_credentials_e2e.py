"""Verifiable Credentials end to end on the real platform (every service, the gateway, the
Keikochain dev node), on both engines.

A learner records interactions over GraphQL; once anchored, they issue a compact learning
record, one credential per entry and an Open Badge. The credentials are signed by the
chain translator with the learner's custodial key and verify:

* with `keiko passport verify` (a share link fetched as a presentation with the
  verifier's challenge and domain: holder binding, each credential's proofs, its status
  list served by the gateway, and every record's anchor read from the dev node);
* with the independent verifier (Digital Bazaar's VC libraries under Node.js), the status
  list fetched from the gateway;

and a revocation over REST is seen by the next verification.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chain.credentials.badge_schema import open_badge_errors
from chain.verify import cli
from chain.verify.credentials_cli import HttpStatusLists
from keiko import registry
from keiko.platform import RunningPlatform, running_platform
from tests.e2e_support import (
    GraphQLClient,
    e2e_settings,
    engine_env,
    gateway_http,
    migrate_all,
    record_interactions,
    sign_up_and_log_in,
)

COUNT = 4
ISSUE = """
mutation Issue($input: IssueCredentialsInput!) {
  issueCredentials(input: $input) {
    id format issuerDid subjectDid statementIds statusListUrl document
  }
}"""
TIMELINE = """
{ passportTimeline(first: 50) { edges { node { entries { statementId anchor { status } } } } } }
"""
SHARE = """
mutation Share($input: CreateShareLinkInput!) {
  createShareLink(input: $input) { token url link { id } }
}"""


@pytest.fixture
async def platform(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningPlatform, GraphQLClient]]:
    engine_env(monkeypatch, database_url, batch_max_leaves="4", batch_max_wait_ms="500")
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    await migrate_all(database_url)
    async with (
        running_platform(settings, registry.resolve(None)) as running,
        gateway_http(running) as http,
    ):
        yield running, GraphQLClient(http)


async def anchored_entries(gql: GraphQLClient, count: int) -> list[str]:
    """The passport's entries once all are anchored (bounded wait)."""
    for _ in range(600):
        data = await gql(TIMELINE)
        entries = [e for edge in data["passportTimeline"]["edges"] for e in edge["node"]["entries"]]
        if len(entries) == count and all(e["anchor"]["status"] == "ANCHORED" for e in entries):
            return [e["statementId"] for e in entries]
        await asyncio.sleep(0.2)
    pytest.fail("the entries were never anchored")


async def issue(gql: GraphQLClient, **request: Any) -> list[dict[str, Any]]:
    """issueCredentials, retried while the anchors' proofs reach the passport."""
    query = {"query": ISSUE, "variables": {"input": request}}
    headers = {"authorization": f"Bearer {gql.token}"}
    for _ in range(100):
        response = await gql.http.post("/graphql", json=query, headers=headers)
        body = response.json()
        if "errors" not in body:
            return list(body["data"]["issueCredentials"])
        assert body["errors"][0]["extensions"]["code"] == "FAILED_PRECONDITION", body
        await asyncio.sleep(0.2)
    pytest.fail(f"credentials never issued: {body}")


def verify(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(argv, out=out), out.getvalue()


def node_verify(document: dict[str, Any], status_lists: dict[str, Any]) -> dict[str, Any]:
    import subprocess

    from chain.credentials.documents import KEIKO_CREDENTIALS_V1, bundled_context

    context = bundled_context(KEIKO_CREDENTIALS_V1)
    assert context is not None
    request = {
        "keikoContext": context.document,
        "statusLists": status_lists,
        "checks": [{"kind": "credential", "document": document}],
    }
    script = Path(__file__).parent / "interop" / "vc-js" / "verify.mjs"
    done = subprocess.run(
        ["node", str(script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    return dict(result)


async def test_issue_verify_present_and_revoke(
    platform: tuple[RunningPlatform, GraphQLClient], tmp_path: Path
) -> None:
    running, gql = platform
    await sign_up_and_log_in(gql, "ana@example.org", "Ana")
    await record_interactions(gql, COUNT, label="vc")
    statement_ids = await anchored_entries(gql, COUNT)

    [compact] = await issue(gql, format="LEARNING_RECORD")
    assert sorted(compact["statementIds"]) == sorted(statement_ids)
    assert compact["issuerDid"] == compact["subjectDid"]  # the learner's own key
    per_entry = await issue(gql, format="PER_ENTRY", statementIds=statement_ids[:2])
    assert len(per_entry) == 2
    [badge] = await issue(
        gql,
        format="OPEN_BADGE",
        statementIds=statement_ids[:1],
        achievement={
            "id": "https://keiko.example/courses/algebra",
            "name": "Algebra",
            "description": "Linear equations",
            "criteria": "Answered the course's questions.",
        },
    )
    assert open_badge_errors(json.loads(badge["document"])) == []

    # The gateway serves the contexts and the issuer's status list.
    http = gql.http
    assert (await http.get("/ns/credentials/v1")).status_code == 200
    assert (await http.get("/contexts/ob-v3p0-context-3.0.3.jsonld")).status_code == 200
    status_url = compact["statusListUrl"]
    status_path = status_url.split("://", 1)[1].split("/", 1)[1]
    listed = await http.get(f"/{status_path}")
    assert listed.status_code == 200, listed.text
    status_list = listed.json()

    # Independent verification of what the platform issued (Node.js, npm libraries).
    if shutil.which("node"):
        result = await asyncio.to_thread(
            node_verify, json.loads(compact["document"]), {status_url: status_list}
        )
        assert result == {"verified": True, "errors": []}, result

    # A share link, fetched as a presentation the learner's key signs for this verifier.
    share = (await gql(SHARE, input={"label": "employer"}))["createShareLink"]
    response = await http.get(
        f"/share/{share['token']}/presentation",
        params={"challenge": "nonce-42", "domain": "employer.example"},
    )
    assert response.status_code == 200, response.text
    presentation = tmp_path / "presentation.json"
    presentation.write_text(response.text)
    args = [str(presentation), "--rpc", str(running.chain_rpc_url)]
    code, out = await asyncio.to_thread(
        verify, [*args, "--challenge", "nonce-42", "--domain", "employer.example"]
    )
    assert code == cli.EXIT_OK, out
    assert out.count("credential urn:uuid:") == 4 and "RESULT: VERIFIED" in out
    page = await http.get(share["url"].split(str(running.http_port), 1)[1])
    assert page.status_code == 200 and 'class="credential"' in page.text

    # Revoked over REST: the next verification sees the status list's bit.
    revoked = await http.post(
        f"/credentials/{per_entry[0]['id']}/revoke",
        headers={"authorization": f"Bearer {gql.token}"},
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revocation_reason"] == "revoked_by_learner"
    document = json.loads(per_entry[0]["document"])
    assert await HttpStatusLists().fetch(document["credentialStatus"]["statusListCredential"])
    credential = tmp_path / "revoked.json"
    credential.write_text(json.dumps(document))
    code, out = await asyncio.to_thread(verify, [str(credential), *args[1:]])
    assert code == cli.EXIT_FAILED and "revoked" in out, out

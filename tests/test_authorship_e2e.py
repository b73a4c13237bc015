"""Authorship end to end, on the real platform and the Keikochain dev node, both engines:

a tutor invites a student to a tutorial session, the student accepts, the tutor starts
it; the student records an answer of their own and the tutor records feedback about them
(refused before the student accepted). The answer is signed with
the student's key, the feedback with the tutor's; the translator binds both keys to their
holders in the chain's key directory; the student's passport shows the feedback as
attested by the tutor, by name; ``keiko passport verify <share link>`` passes with roots
and keys read from the chain and says whose key signed each entry. Presenting the tutor's
feedback as the student's own, or swapping its author's key, fails that entry alone.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chain.verify import cli
from keiko import registry
from keiko.platform import RunningPlatform, running_platform
from tests.e2e_support import (
    GraphQLClient,
    e2e_settings,
    engine_env,
    gateway_http,
    migrate_all,
    sign_up_and_log_in,
)

CREATE_SESSION = """
mutation Plan($input: TutorialSessionInput!) { createTutorialSession(input: $input) { id } }"""
START_SESSION = "mutation Start($id: ID!) { startTutorialSession(id: $id) { id } }"
INVITATIONS = "{ invitations(statuses: [PENDING]) { id kind subjectId inviterId } }"
ACCEPT = "mutation Accept($id: ID!) { acceptInvitation(id: $id) { status } }"
RECORD = """
mutation Record($input: InteractionInput!) { recordInteraction(input: $input) { id } }"""
ENTRY = """
statementId author { kind id displayName label legacy publicKeyHex }
verification { status reason keyHolder keyRegistration keyCustody }"""
TIMELINE = (
    "{ passportTimeline(first: 50) { edges { node { entries {"
    + ENTRY
    + "} children { entries {"
    + ENTRY
    + "} children { entries {"
    + ENTRY
    + "} } } } } } }"
)
SHARE = """
mutation Share($input: CreateShareLinkInput!) { createShareLink(input: $input) { url token } }"""


@pytest.fixture
async def platform(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningPlatform]:
    engine_env(monkeypatch, database_url, batch_max_leaves="2", batch_max_wait_ms="500")
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    await migrate_all(database_url)
    async with running_platform(settings, registry.resolve(None)) as running:
        yield running


def _entries(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for group in groups:
        out += group["entries"]
        out += _entries(group.get("children", []))
    return out


async def timeline(gql: GraphQLClient) -> dict[str, dict[str, Any]]:
    edges = (await gql(TIMELINE))["passportTimeline"]["edges"]
    return {e["statementId"]: e for e in _entries([edge["node"] for edge in edges])}


async def settled(gql: GraphQLClient, ids: set[str], timeout: float = 240) -> dict[str, Any]:
    """Ana's entries once each is verified on chain, its key is bound there, and an
    attesting author's name has arrived (identity announces it asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await timeline(gql)
        done = {
            i: e
            for i, e in found.items()
            if e["verification"]
            and e["verification"]["status"] == "verified"
            and e["verification"]["keyRegistration"] == "registered on chain"
            and (e["author"]["kind"] == "SELF" or e["author"]["displayName"])
        }
        if set(done) >= ids:
            return found
        assert loop.time() < deadline, f"not settled in {timeout} s: {found}"
        await asyncio.sleep(1)


def verify(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(argv, out=out), out.getvalue()


async def averify(argv: list[str]) -> tuple[int, str]:
    return await asyncio.wait_for(asyncio.to_thread(verify, argv), 300)


@pytest.mark.timeout(600)
async def test_tutor_feedback_is_attested_by_the_tutor_and_verifies_on_chain(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    async with gateway_http(platform) as http:
        ana, tom = GraphQLClient(http), GraphQLClient(http)
        ana_id = await sign_up_and_log_in(ana, "ana@example.org", "Ana")
        tom_id = await sign_up_and_log_in(tom, "tom@example.org", "Tom Tutor")

        session = (
            await tom(CREATE_SESSION, input={"sessionType": "HUMAN", "studentIds": [ana_id]})
        )["createTutorialSession"]["id"]
        await tom(START_SESSION, id=session)
        feedback_input = {
            "interactionType": "FEEDBACK",
            "learnerId": ana_id,
            "tutorialSessionId": session,
            "content": "Right, and well explained.",
        }
        # Invited, not yet accepted: the tutor records nothing about Ana.
        refused = await tom.http.post(
            "/graphql",
            json={"query": RECORD, "variables": {"input": feedback_input}},
            headers={"authorization": f"Bearer {tom.token}"},
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused.text
        (invitation,) = (await ana(INVITATIONS))["invitations"]
        assert invitation["kind"] == "TUTORIAL_SESSION" and invitation["subjectId"] == session
        assert invitation["inviterId"] == tom_id
        assert (await ana(ACCEPT, id=invitation["id"]))["acceptInvitation"]["status"] == (
            "ACCEPTED"
        )
        answer = (
            await ana(
                RECORD,
                input={
                    "interactionType": "ANSWER",
                    "tutorialSessionId": session,
                    "activityId": "https://keiko.example/activities/authorship/q1",
                    "response": "x = 4",
                },
            )
        )["recordInteraction"]["id"]
        feedback = (await tom(RECORD, input=feedback_input))["recordInteraction"]["id"]

        entries = await settled(ana, {answer, feedback})
        own, attested = entries[answer], entries[feedback]
        assert own["author"]["kind"] == "SELF" and own["author"]["label"] == "self"
        assert attested["author"] == {
            "kind": "USER",
            "id": tom_id,
            "displayName": "Tom Tutor",
            "label": f"attested by Tom Tutor ({tom_id})",
            "legacy": False,
            "publicKeyHex": attested["author"]["publicKeyHex"],
        }
        # Two authors, two keys, each bound on chain to its own holder.
        assert own["author"]["publicKeyHex"] != attested["author"]["publicKeyHex"]
        assert own["verification"]["keyHolder"] == ana_id
        assert attested["verification"]["keyHolder"] == tom_id
        assert own["verification"]["keyCustody"] == "custodial"

        # Independent verification: the share link alone, roots and keys read from chain.
        share = (await ana(SHARE, input={"label": "authorship"}))["createShareLink"]
        code, output = await averify([share["url"], "--json"])
        assert code == cli.EXIT_OK, output
        report = json.loads(output)
        assert report["ok"] and report["counts"]["verified"] == 2
        authors = {e["entry_id"]: e["author"] for e in report["entries"]}
        assert authors[answer]["kind"] == "self" and authors[answer]["key_holder"] == ana_id
        assert authors[feedback]["kind"] == "user" and authors[feedback]["id"] == tom_id
        assert authors[feedback]["label"] == f"attested by Tom Tutor ({tom_id})"
        assert authors[feedback]["registration"] == "registered on chain"
        assert authors[feedback]["custody"] == "custodial"
        code, text = await averify([share["url"]])
        assert code == cli.EXIT_OK, text
        assert f"author: attested by Tom Tutor ({tom_id}); the author's key" in text

        # Tampering with the exported document, one way at a time: only that entry fails.
        reply = await http.get(f"/share/{share['token']}/export.json")
        assert reply.status_code == 200, reply.text
        document = reply.json()

        async def tampered(change: Any, name: str) -> dict[str, Any]:
            copy = json.loads(json.dumps(document))
            change(next(e for e in copy["entries"] if e["entry_id"] == feedback))
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(copy))
            code, output = await averify([str(path), "--json"])
            assert code == cli.EXIT_FAILED, output
            report = json.loads(output)
            (failed,) = [e for e in report["entries"] if e["status"] == "failed"]
            assert failed["entry_id"] == feedback, output
            return dict(failed)

        def as_own(entry: dict[str, Any]) -> None:
            entry["author"] = {
                "kind": "self",
                "id": ana_id,
                "public_key": entry["public_key"],
            }

        failed = await tampered(as_own, "presented-as-own")
        reasons = {p["reason"] for p in failed["problems"]}
        assert "presented as the learner's own but not the learner's" in reasons
        assert "key is registered on chain to another holder" in reasons

        def swapped_key(entry: dict[str, Any]) -> None:
            entry["author"]["public_key"] = own["author"]["publicKeyHex"]

        failed = await tampered(swapped_key, "swapped-key")
        assert failed["reason"] == "author key is not the signing key"

"""The timeline as one JSON document (GetTimelineRequest.groups_json, what the gateway
asks for) and as TimelineGroup messages (what it falls back to, and what other callers
get) give the same GraphQL result: every field of groups, entries, anchors and authors,
for the owner and for viewers of a public passport with limited disclosures."""

from __future__ import annotations

from typing import Any

from nacl.signing import SigningKey

from gateway.tests import test_passport_graphql as graphql_tests
from gateway.tests.test_passport_graphql import CountingServicer, Gw, _renamed
from services.passport.domain import Disclosure, PrivacySettings
from services.passport.tests.conftest import ANA, consume
from services.passport.tests.factories import batch, interaction, minutes, recorded_event

ENTRY = """statementId interactionType summary timestamp scoreScaled statementJson
  signatureHex publicKeyHex proofLeaf proof
  anchor { status batchId merkleRoot txHash blockNumber failureReason anchoredAt }
  author { kind id displayName publicKeyHex legacy label }"""
GROUP = "level id title entries { " + ENTRY + " }"
TIMELINE = (
    "timeline(first: $first) { pageInfo { hasNextPage endCursor } edges { cursor node { "
    + GROUP
    + " children { "
    + GROUP
    + " children { "
    + GROUP
    + " } } } } }"
)
OWN = "query($first: Int!) { passport { id " + TIMELINE + " } }"
PUBLIC = "query($first: Int!, $id: ID!) { passport(id: $id) { id " + TIMELINE + " } }"
# Through a share link: GetSharedPassport.
SHARED = (
    "query($first: Int!, $token: String!) { sharedPassport(token: $token, first: 1) { passport { "
    + TIMELINE
    + " } } }"
)

gw = graphql_tests.gw  # the live gateway over the passport service


async def _both_forms(
    gw: Gw, user: str, query: str, root: str = "passport", **variables: Any
) -> dict[str, Any]:
    """The query's result with the JSON form, after checking the message form gives the
    same. Each read has its own token, so neither is served from the response cache."""
    results = []
    for message_form in (False, True):
        CountingServicer.message_form = message_form
        calls = CountingServicer.timeline_calls
        reply = await gw.live.graphql(query, variables, token=gw.token(user))
        assert "errors" not in reply, reply
        assert CountingServicer.timeline_calls > calls  # executed, not cached
        results.append(reply["data"][root])
    CountingServicer.message_form = False
    assert results[0] == results[1]
    return results[0]


def _entries(passport: dict[str, Any]) -> list[dict[str, Any]]:
    def walk(group: dict[str, Any]) -> list[dict[str, Any]]:
        found = list(group["entries"])
        for child in group.get("children") or []:
            found += walk(child)
        return found

    return [e for edge in passport["timeline"]["edges"] for e in walk(edge["node"])]


def _levels(passport: dict[str, Any]) -> set[str]:
    def walk(group: dict[str, Any]) -> set[str]:
        return {group["level"]}.union(*(walk(c) for c in group.get("children") or []))

    return set().union(*(walk(edge["node"]) for edge in passport["timeline"]["edges"]))


async def test_json_and_message_forms_give_the_same_timeline(gw: Gw) -> None:
    now = gw.service.clock.now()
    tom = SigningKey.generate()
    titles = {"course": "Linear Algebra", "class": "Monday", "tutorial-session": "Tutorial 1"}
    own = interaction(gw.key, "ana", now, session_id="t-1", titles=titles, signer="ana")
    question = interaction(gw.key, "ana", now + minutes(1), kind="question", score=None)
    feedback = interaction(
        tom, "ana", now + minutes(2), kind="feedback", author="tom", signer="tom"
    )
    legacy = interaction(gw.key, "ana", now + minutes(3), kind="feedback", author="tom")
    legacy.signer_id = "ana"
    attended = interaction(SigningKey.generate(), "ana", now + minutes(4), author="keiko-learning")
    other_course = interaction(gw.key, "ana", now + minutes(5), course_id="course-2")
    ungrouped = interaction(gw.key, "ana", now + minutes(6), course_id="", class_id="")
    no_proof = interaction(gw.key, "ana", now + minutes(7))
    anchored = batch([own, question, feedback, legacy, attended])
    await consume(
        gw.service,
        _renamed("tom", "Tom Tutor"),
        *(
            recorded_event(i)
            for i in (own, question, feedback, legacy, attended, other_course, ungrouped)
        ),
        recorded_event(no_proof),
        *anchored.events(),
        *batch([no_proof]).events(with_proof=False),
    )

    mine = await _both_forms(gw, "ana", OWN, first=50)
    entries = {e["statementId"]: e for e in _entries(mine)}
    assert len(entries) == 8
    assert _levels(mine) == {"COURSE", "CLASS", "TUTORIAL_SESSION", "UNGROUPED"}
    assert entries[own.statement_id]["anchor"]["status"] == "ANCHORED"
    assert entries[own.statement_id]["anchor"]["anchoredAt"] is not None
    assert entries[own.statement_id]["proof"] and entries[own.statement_id]["statementJson"]
    assert entries[ungrouped.statement_id]["anchor"]["status"] == "PENDING"
    assert entries[no_proof.statement_id]["anchor"]["status"] == "PENDING"  # no proof yet
    assert entries[question.statement_id]["scoreScaled"] is None
    assert entries[own.statement_id]["scoreScaled"] == 0.8
    assert entries[own.statement_id]["author"]["id"] == "ana"
    assert entries[feedback.statement_id]["author"]["label"] == "attested by Tom Tutor (tom)"
    assert entries[legacy.statement_id]["author"]["legacy"] is True
    assert entries[attended.statement_id]["author"]["kind"] == "SERVICE"
    # A page cut short: the same cursor either way.
    short = await _both_forms(gw, "ana", OWN, first=3)
    assert short["timeline"]["pageInfo"]["hasNextPage"] is True

    # Public, disclosing answers and feedback of course-1 only, no scores, no content,
    # no identity: decided by the service, the same in both forms.
    await gw.service.update_privacy(
        ANA,
        PrivacySettings(
            public=True,
            public_disclosure=Disclosure(
                interaction_types=frozenset({"answer", "feedback"}),
                course_ids=frozenset({"course-1"}),
            ),
        ),
    )
    seen = await _both_forms(gw, "ben", PUBLIC, first=50, id=mine["id"])
    shown = {e["statementId"]: e for e in _entries(seen)}
    assert set(shown) == {
        own.statement_id,
        feedback.statement_id,
        legacy.statement_id,
        attended.statement_id,
        no_proof.statement_id,
    }
    assert all(e["scoreScaled"] is None and e["statementJson"] is None for e in shown.values())
    assert shown[own.statement_id]["author"]["id"] == ""
    assert "(0.8)" not in shown[own.statement_id]["summary"]
    # Disclosing scores, content and identity: all of it shows.
    await gw.service.update_privacy(
        ANA,
        PrivacySettings(
            public=True,
            public_disclosure=Disclosure(show_scores=True, show_identity=True, show_content=True),
        ),
    )
    full = await _both_forms(gw, "ben", PUBLIC, first=50, id=mine["id"])
    assert len(_entries(full)) == 8

    created = await gw.service.create_link(
        ANA, "ACME", Disclosure(course_ids=frozenset({"course-1"})), None, "r-1"
    )
    shared = await _both_forms(gw, "ben", SHARED, "sharedPassport", first=10, token=created.token)
    shown = {e["statementId"]: e for e in _entries(shared["passport"])}
    assert own.statement_id in shown and other_course.statement_id not in shown

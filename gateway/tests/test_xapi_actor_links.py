"""Actor linking end to end over the gateway, both engines: the learner's code over
GraphQL, the institution's LRS client confirming at /xapi/extensions/keiko/actor-links,
statements reporting whether they entered a passport (X-Keiko-Passport-Entries /
X-Keiko-LRS-Only), listing and revoking."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.tests.test_xapi_resource import LiveLearning, live_learning, lrs_headers
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus

LINKS = "/xapi/extensions/keiko/actor-links"
MAIL = {"objectType": "Agent", "mbox": "mailto:ana@uni.example"}


@pytest.fixture
async def gw(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[LiveLearning]:
    async with live_learning(migrated_database, event_bus, clock) as live:
        yield live


def about(actor: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "actor": actor,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"objectType": "Activity", "id": "https://lms.uni.example/course/1"},
    }


async def test_learner_code_institution_confirms_statements_reach_the_passport(
    gw: LiveLearning,
) -> None:
    ana = gw.token("ana")
    made = await gw.graphql("mutation { createActorLinkCode { code expiresAt } }", token=ana)
    code = made["data"]["createActorLinkCode"]["code"]
    for version in ("1.0.3", "2.0.0"):
        uni = {**await lrs_headers(gw, "uni"), "X-Experience-API-Version": version}
        before = await gw.http.post("/xapi/statements", json=about(MAIL), headers=uni)
        assert before.headers["X-Keiko-LRS-Only"] == "1"
        assert before.headers["X-Keiko-Passport-Entries"] == "0"
    wrong = await gw.http.post(LINKS, json={"agent": MAIL, "code": "WRONG-CODE"}, headers=uni)
    assert wrong.status_code == 404
    confirmed = await gw.http.post(LINKS, json={"agent": MAIL, "code": code}, headers=uni)
    assert confirmed.status_code == 200, confirmed.text
    link = confirmed.json()
    assert (link["learnerId"], link["institutionId"], link["agent"]) == ("ana", "uni", MAIL)
    other = {"objectType": "Agent", "mbox": "mailto:someone@uni.example"}
    posted = await gw.http.post("/xapi/statements", json=[about(MAIL), about(other)], headers=uni)
    assert posted.status_code == 200
    assert posted.headers["X-Keiko-Passport-Entries"] == "1"
    assert posted.headers["X-Keiko-LRS-Only"] == "1"
    mine = await gw.http.get(
        "/xapi/statements",
        params={"statementId": posted.json()[0]},
        headers={"X-Experience-API-Version": "1.0.3", "Authorization": f"Bearer {ana}"},
    )
    assert mine.status_code == 200  # the learner reads it: it is theirs now
    listed = await gw.graphql("{ actorLinks { nodes { id institutionId agent } } }", token=ana)
    [node] = listed["data"]["actorLinks"]["nodes"]
    assert node["id"] == link["id"] and node["agent"] == MAIL
    listing = await gw.http.get(LINKS, headers=uni)
    assert listing.json()["links"][0]["id"] == link["id"], listing.text
    gone = await gw.http.delete(LINKS, params={"linkId": link["id"]}, headers=uni)
    assert gone.status_code == 204
    after = await gw.http.post("/xapi/statements", json=about(MAIL), headers=uni)
    assert after.headers["X-Keiko-LRS-Only"] == "1"
    bad = await gw.http.post(LINKS, content=json.dumps({"agent": "x"}), headers=uni)
    assert bad.status_code == 400 and bad.json()["field"] == "agent"

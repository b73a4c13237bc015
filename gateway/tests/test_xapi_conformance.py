"""Statement resource requirements over HTTP, for xAPI 1.0.3 and 2.0 (IEEE 9274.1.1), on
both engines; each test names the sections it covers (1.0.3 Communication / Data)."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from gateway.tests.test_xapi_resource import LiveLearning, live_learning, lrs_headers
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus

VERSIONS = ("1.0.3", "2.0.0")
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
STATEMENTS = "/xapi/statements"


@pytest.fixture
async def gw(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[LiveLearning]:
    async with live_learning(migrated_database, event_bus, clock) as live:
        yield live


def mbox(name: str) -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:{name}@example.org"}


def stmt(actor: dict[str, Any], activity: str = "https://example.org/a", **extra: Any) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "actor": actor,
        "verb": {"id": ANSWERED, "display": {"en-US": "answered", "es": "respondió"}},
        "object": {"objectType": "Activity", "id": activity},
        **extra,
    }


async def versioned(gw: LiveLearning, version: str) -> dict[str, str]:
    return {**await lrs_headers(gw), "X-Experience-API-Version": version}


async def ids_for(gw: LiveLearning, h: dict[str, str], **params: str) -> list[str]:
    got = await gw.http.get(STATEMENTS, params=params, headers=h)
    assert got.status_code == 200, got.text
    return [s["id"] for s in got.json()["statements"]]


async def test_versions_headers_head_and_about(gw: LiveLearning) -> None:
    """Communication 3.3 (2.0: a request without the header is 400 answered with the
    latest version, 2.0.0), 2.8 (About lists both versions, no header needed), 1.1 HEAD,
    2.1.3.s2.b8 Last-Modified = stored."""
    h = await lrs_headers(gw)
    auth = {"Authorization": h["Authorization"]}
    missing = await gw.http.get(STATEMENTS, headers=auth)
    assert missing.status_code == 400
    assert missing.headers["X-Experience-API-Version"] == "2.0.0"
    about = await gw.http.get("/xapi/about")
    assert about.json() == {"version": ["1.0.3", "2.0.0"], "extensions": {}}
    assert about.headers["X-Experience-API-Version"] == "2.0.0"
    for version in VERSIONS:
        hv = {**h, "X-Experience-API-Version": version}
        s = stmt(mbox("head"))
        assert (await gw.http.post(STATEMENTS, json=s, headers=hv)).status_code == 200
        got = await gw.http.get(STATEMENTS, params={"statementId": s["id"]}, headers=hv)
        assert got.headers["X-Experience-API-Version"] == version
        assert got.headers["Last-Modified"] == _http_date(got.json()["stored"])
        head = await gw.http.head(STATEMENTS, params={"statementId": s["id"]}, headers=hv)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["Last-Modified"] == got.headers["Last-Modified"]


def _http_date(stored: str) -> str:
    return format_datetime(datetime.fromisoformat(stored.replace("Z", "+00:00")), usegmt=True)


async def test_alternate_request_syntax(gw: LiveLearning) -> None:
    """Communication 1.3: POST ?method=... with headers, parameters and content as form."""
    h = await lrs_headers(gw)
    for version in VERSIONS:
        s = stmt(mbox("alt"))
        form = {
            "Authorization": h["Authorization"],
            "X-Experience-API-Version": version,
            "Content-Type": "application/json",
            "statementId": s["id"],
            "content": json.dumps(s),
        }
        put = await gw.http.post(
            STATEMENTS,
            params={"method": "PUT"},
            content=urllib.parse.urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert put.status_code == 204, put.text
        assert put.headers["X-Experience-API-Version"] == version
        get = await gw.http.post(
            STATEMENTS,
            params={"method": "GET"},
            data={
                "Authorization": h["Authorization"],
                "X-Experience-API-Version": version,
                "statementId": s["id"],
            },
        )
        assert get.status_code == 200 and get.json()["id"] == s["id"]
        state = await gw.http.post(
            "/xapi/activities/state",
            params={"method": "PUT"},
            data={
                "Authorization": h["Authorization"],
                "X-Experience-API-Version": version,
                "Content-Type": "application/json",
                "activityId": "https://example.org/a",
                "agent": json.dumps(mbox("alt")),
                "stateId": f"alt-{version}",
                "content": '{"via": "form"}',
            },
        )
        assert state.status_code == 204, state.text
        extra = await gw.http.post(
            STATEMENTS,
            params={"method": "GET", "statementId": s["id"]},
            data={"Authorization": h["Authorization"], "X-Experience-API-Version": version},
        )
        assert extra.status_code == 400 and extra.json()["field"] == "method"


async def test_agent_filters_refs_and_voiding(gw: LiveLearning) -> None:
    """Communication 2.1.3 agent / related_agents / related_activities, 2.1.3.s3 StatementRef
    targeting, 2.1.4.s1.b2 voiding statements returned; Data 2.3.2 a voiding statement
    for a statement not stored is accepted."""
    for version in VERSIONS:
        h = await versioned(gw, version)
        ben, eva = mbox(f"ben{version}"), mbox(f"eva{version}")
        group = {"objectType": "Group", "member": [ben, mbox("other")]}
        parent = f"https://example.org/parent/{version}"
        acted = stmt(ben)
        as_object = stmt(eva, object=ben)
        in_group = stmt(group)
        instructed = stmt(eva, context={"instructor": ben})
        in_context = stmt(eva, context={"contextActivities": {"parent": [{"id": parent}]}})
        body = [acted, as_object, in_group, instructed, in_context]
        assert (await gw.http.post(STATEMENTS, json=body, headers=h)).status_code == 200
        agent = json.dumps(ben)
        # One batch shares one `stored`, so compare as sets.
        direct = set(await ids_for(gw, h, agent=agent))
        assert direct == {acted["id"], as_object["id"], in_group["id"]}
        related = set(await ids_for(gw, h, agent=agent, related_agents="true"))
        assert related == {*direct, instructed["id"]}
        assert await ids_for(gw, h, activity=parent) == []
        assert await ids_for(gw, h, activity=parent, related_activities="true") == [
            in_context["id"]
        ]
        # A statement about Ben's statement matches his filter too (StatementRef).
        about = stmt(eva, object={"objectType": "StatementRef", "id": acted["id"]})
        assert (await gw.http.post(STATEMENTS, json=about, headers=h)).status_code == 200
        # Voiding: the voided statement disappears, the voiding one matches Ben.
        void = stmt(
            eva, verb={"id": VOIDED}, object={"objectType": "StatementRef", "id": acted["id"]}
        )
        assert (await gw.http.post(STATEMENTS, json=void, headers=h)).status_code == 200
        after = set(await ids_for(gw, h, agent=agent))
        assert after == {as_object["id"], in_group["id"], about["id"], void["id"]}
        missing = str(uuid.uuid4())
        early = stmt(eva, verb={"id": VOIDED}, object={"objectType": "StatementRef", "id": missing})
        assert (await gw.http.post(STATEMENTS, json=early, headers=h)).status_code == 200


async def test_formats_ids_and_canonical(gw: LiveLearning) -> None:
    """Communication 2.1.3 format (ids, canonical with Accept-Language, 2.1.3.s4), 2.5
    Activities resource, 2.4 Agents resource."""
    for version in VERSIONS:
        h = await versioned(gw, version)
        activity = f"https://example.org/course/{version}"
        first = stmt(
            mbox("fmt"),
            activity,
            object={
                "objectType": "Activity",
                "id": activity,
                "definition": {"name": {"en-US": "Algebra", "fr": "Algèbre"}},
            },
        )
        later = stmt(
            mbox("fmt"),
            object={
                "objectType": "Activity",
                "id": activity,
                "definition": {"name": {"es": "Álgebra"}, "description": {"en-US": "Linear"}},
            },
        )
        assert (await gw.http.post(STATEMENTS, json=[first, later], headers=h)).status_code == 200
        canonical = await gw.http.get(
            STATEMENTS,
            params={"statementId": first["id"], "format": "canonical"},
            headers={**h, "Accept-Language": "es, en;q=0.5"},
        )
        definition = canonical.json()["object"]["definition"]
        assert definition == {"name": {"es": "Álgebra"}, "description": {"en-US": "Linear"}}
        assert canonical.json()["verb"]["display"] == {"es": "respondió"}
        ids = await gw.http.get(
            STATEMENTS, params={"statementId": first["id"], "format": "ids"}, headers=h
        )
        assert ids.json()["object"] == {"objectType": "Activity", "id": activity}
        assert ids.json()["verb"] == {"id": ANSWERED}
        assert ids.json()["actor"] == {"objectType": "Agent", "mbox": "mailto:fmt@example.org"}
        exact = await gw.http.get(STATEMENTS, params={"statementId": first["id"]}, headers=h)
        assert exact.json()["object"] == first["object"]
        known = await gw.http.get("/xapi/activities", params={"activityId": activity}, headers=h)
        assert known.json() == {
            "objectType": "Activity",
            "id": activity,
            "definition": {
                "name": {"en-US": "Algebra", "fr": "Algèbre", "es": "Álgebra"},
                "description": {"en-US": "Linear"},
            },
        }
        unknown = await gw.http.get(
            "/xapi/activities", params={"activityId": "https://example.org/none"}, headers=h
        )
        assert unknown.json() == {"objectType": "Activity", "id": "https://example.org/none"}
        person = await gw.http.get(
            "/xapi/agents", params={"agent": json.dumps({**mbox("p"), "name": "P"})}, headers=h
        )
        assert person.json() == {
            "objectType": "Person",
            "name": ["P"],
            "mbox": ["mailto:p@example.org"],
        }
        bad = await gw.http.get(STATEMENTS, params={"format": "pretty"}, headers=h)
        assert (bad.status_code, bad.json()["field"]) == (400, "format")


async def test_value_rules_and_authority(gw: LiveLearning) -> None:
    """Data 2.4.9 (a client's invalid authority is 400), 2.4.4.1 (`{}` definition),
    2.4.10 ("1.0"), 4.6 (P4W1D)."""
    for version in VERSIONS:
        h = await versioned(gw, version)
        lower = stmt(mbox("a"), authority={"objectType": "agent", "mbox": "mailto:x@x.org"})
        three = stmt(
            mbox("a"),
            authority={"objectType": "Group", "member": [mbox("x"), mbox("y"), mbox("z")]},
        )
        for bad in (lower, three):
            answer = await gw.http.post(STATEMENTS, json=bad, headers=h)
            assert answer.status_code == 400, answer.text
            assert answer.json()["field"].startswith("statements[0].authority")
        weeks = stmt(mbox("a"), result={"duration": "P4W1D"})
        assert (await gw.http.post(STATEMENTS, json=weeks, headers=h)).status_code == 400
        fine = stmt(
            mbox("a"),
            object={"objectType": "Activity", "id": "https://example.org/x", "definition": {}},
            version="1.0",
        )
        assert (await gw.http.post(STATEMENTS, json=fine, headers=h)).status_code == 200


async def test_head_on_every_resource(gw: LiveLearning) -> None:
    """Communication 1.1.s3.b1 (HEAD answers as GET without a body: same status and
    headers) on every resource, 2.8 About included; 2.6.s4 / 2.7.s4 profile ids listings
    with `since` (Communication 2.3 Table, `since`: only documents stored later)."""
    for version in VERSIONS:
        h = await versioned(gw, version)
        activity = f"https://example.org/head/{version}"
        agent = json.dumps(mbox(f"head{version}"))
        s = stmt(mbox(f"head{version}"), activity)
        assert (await gw.http.post(STATEMENTS, json=s, headers=h)).status_code == 200
        documents = [
            ("/xapi/activities/state", {"activityId": activity, "agent": agent}, "stateId"),
            ("/xapi/activities/profile", {"activityId": activity}, "profileId"),
            ("/xapi/agents/profile", {"agent": agent}, "profileId"),
        ]
        for path, context, id_param in documents:
            start = gw.clock.now()
            for name in ("old", "new"):
                put = await gw.http.put(
                    path,
                    params={**context, id_param: name},
                    json={"name": name},
                    headers={**h, "If-None-Match": "*"},
                )
                assert put.status_code == 204, (path, put.text)
                gw.clock.advance(timedelta(seconds=5))
            since = (start + timedelta(seconds=1)).isoformat()
            later = await gw.http.get(path, params={**context, "since": since}, headers=h)
            assert later.json() == ["new"], path
            assert (await gw.http.get(path, params=context, headers=h)).json() == ["new", "old"]
        requests: list[tuple[str, dict[str, str]]] = [
            (STATEMENTS, {"statementId": s["id"]}),
            (STATEMENTS, {"activity": activity}),
            ("/xapi/activities", {"activityId": activity}),
            ("/xapi/agents", {"agent": agent}),
            ("/xapi/about", {}),
            ("/xapi/extensions/keiko/actor-links", {}),
            *((path, {**context, id_param: "new"}) for path, context, id_param in documents),
            *((path, context) for path, context, _ in documents),
        ]
        for path, params in requests:
            got = await gw.http.get(path, params=params, headers=h)
            head = await gw.http.head(path, params=params, headers=h)
            assert got.status_code == 200 and got.content, (path, params, got.text)
            assert (head.status_code, head.content) == (200, b""), (path, params)
            for header in ("Content-Type", "ETag", "Last-Modified", "X-Experience-API-Version"):
                assert head.headers.get(header) == got.headers.get(header), (path, header)
        missing = {"activityId": activity, "agent": agent, "stateId": "none"}
        gone = await gw.http.head("/xapi/activities/state", params=missing, headers=h)
        assert (gone.status_code, gone.content) == (404, b"")


async def test_limit_zero_is_the_server_maximum(gw: LiveLearning) -> None:
    """Communication 2.1.3 `limit`: 0, the default, returns as many statements as the
    server allows (500 a page); a positive limit pages."""
    for version in VERSIONS:
        h = await versioned(gw, version)
        activity = f"https://example.org/limit/{version}"
        batch = [stmt(mbox("many"), activity) for _ in range(60)]
        assert (await gw.http.post(STATEMENTS, json=batch, headers=h)).status_code == 200
        for params in ({"activity": activity}, {"activity": activity, "limit": "0"}):
            page = (await gw.http.get(STATEMENTS, params=params, headers=h)).json()
            assert (len(page["statements"]), page["more"]) == (60, "")
        small = (
            await gw.http.get(STATEMENTS, params={"activity": activity, "limit": "7"}, headers=h)
        ).json()
        assert len(small["statements"]) == 7 and small["more"]

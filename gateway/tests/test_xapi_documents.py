"""The document resources over HTTP, both xAPI versions, both engines: State, Activity
Profile and Agent Profile (xAPI 1.0.3 Communication 2.2, 2.3, 2.6, 2.7; IEEE 9274.1.1
keeps them), concurrency (Communication 3.1), HEAD (1.1), limits (3.2)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from gateway.tests.test_xapi_resource import LiveLearning, live_learning, lrs_headers
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.learning.documents.domain import MAX_DOCUMENT_BYTES

VERSIONS = ("1.0.3", "2.0.0")
AGENT = json.dumps({"objectType": "Agent", "mbox": "mailto:learner@example.org"})
ACTIVITY = "https://example.org/course/1"
STATE = "/xapi/activities/state"
ACTIVITY_PROFILE = "/xapi/activities/profile"
AGENT_PROFILE = "/xapi/agents/profile"


@pytest.fixture
async def gw(
    migrated_database: Database, event_bus: EventBus, clock: FixedClock
) -> AsyncIterator[LiveLearning]:
    async with live_learning(migrated_database, event_bus, clock) as live:
        yield live


def state(state_id: str, **extra: str) -> dict[str, str]:
    return {"activityId": ACTIVITY, "agent": AGENT, "stateId": state_id, **extra}


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


async def versioned(gw: LiveLearning, version: str, user: str = "ana") -> dict[str, str]:
    return {**await lrs_headers(gw, user), "X-Experience-API-Version": version}


async def test_state_document_lifecycle(gw: LiveLearning) -> None:
    for version in VERSIONS:
        h = await versioned(gw, version)
        sid = f"bookmark-{version}"
        body = {"page": 3, "chapter": "2"}
        put = await gw.http.put(STATE, params=state(sid), json=body, headers=h)
        assert put.status_code == 204, put.text
        assert put.headers["X-Experience-API-Version"] == version
        got = await gw.http.get(STATE, params=state(sid), headers=h)
        assert got.status_code == 200 and got.json() == body
        # 3.1.s4.b1/b2/b4: the ETag is the quoted SHA-1 hex of the content.
        assert got.headers["ETag"] == f'"{sha1(got.content)}"'
        assert got.headers["Content-Type"].startswith("application/json")
        # 2.2.s6.b1: Last-Modified of a single document.
        assert parsedate_to_datetime(got.headers["Last-Modified"]) == gw.clock.now().replace(
            microsecond=0
        )
        # 1.1.s3.b1: HEAD answers as GET without the body.
        head = await gw.http.head(STATE, params=state(sid), headers=h)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["ETag"] == got.headers["ETag"]
        # 2.2.s7: POST merges top-level properties of JSON objects.
        merged = await gw.http.post(
            STATE, params=state(sid), json={"chapter": "3", "done": False}, headers=h
        )
        assert merged.status_code == 204
        after = (await gw.http.get(STATE, params=state(sid), headers=h)).json()
        assert after == {"page": 3, "chapter": "3", "done": False}
        # 2.2.s8.b1: a non-JSON POST onto a JSON document is 400 and changes nothing.
        text = await gw.http.post(
            STATE,
            params=state(sid),
            content=b"abc",
            headers={**h, "Content-Type": "text/plain"},
        )
        assert text.status_code == 400
        assert (await gw.http.get(STATE, params=state(sid), headers=h)).json() == after
        # A POST for a document not stored yet stores it; any content type is kept.
        raw = await gw.http.post(
            STATE,
            params=state(f"raw-{version}"),
            content=b"\x00\x01binary",
            headers={**h, "Content-Type": "application/octet-stream"},
        )
        assert raw.status_code == 204
        fetched = await gw.http.get(STATE, params=state(f"raw-{version}"), headers=h)
        assert fetched.content == b"\x00\x01binary"
        assert fetched.headers["Content-Type"] == "application/octet-stream"


async def test_state_ids_registration_since_and_delete(gw: LiveLearning) -> None:
    h = await versioned(gw, "1.0.3")
    registration = str(uuid.uuid4())
    start = gw.clock.now()
    for name in ("a", "b"):
        await gw.http.put(STATE, params=state(name), json={"n": name}, headers=h)
    gw.clock.advance(timedelta(seconds=5))
    await gw.http.put(STATE, params=state("c"), json={"n": "c"}, headers=h)
    await gw.http.put(
        STATE, params=state("r", registration=registration), json={"n": "r"}, headers=h
    )
    context = {"activityId": ACTIVITY, "agent": AGENT}
    ids = await gw.http.get(STATE, params=context, headers=h)
    assert ids.json() == ["a", "b", "c"]  # 2.3.s4: the registration is another context
    assert ids.headers["ETag"].startswith('"')
    since = (start + timedelta(seconds=1)).isoformat()
    later = await gw.http.get(STATE, params={**context, "since": since}, headers=h)
    assert later.json() == ["c"]
    with_registration = await gw.http.get(
        STATE, params={**context, "registration": registration}, headers=h
    )
    assert with_registration.json() == ["r"]
    # 2.3.s5: DELETE without stateId removes the context's documents (not the other ones).
    assert (await gw.http.delete(STATE, params=context, headers=h)).status_code == 204
    assert (await gw.http.get(STATE, params=context, headers=h)).json() == []
    assert (
        await gw.http.get(STATE, params={**context, "registration": registration}, headers=h)
    ).json() == ["r"]
    gone = await gw.http.get(STATE, params=state("a"), headers=h)
    assert gone.status_code == 404


async def test_parameters_limits_and_owners(gw: LiveLearning) -> None:
    await _documents_belong_to_their_owner(gw)
    h = await versioned(gw, "2.0.0")
    missing = await gw.http.put(STATE, params={"agent": AGENT, "stateId": "x"}, json={}, headers=h)
    assert (missing.status_code, missing.json()["field"]) == (400, "activityId")
    bad_agent = await gw.http.put(
        STATE, params={**state("x"), "agent": '{"name": "nobody"}'}, json={}, headers=h
    )
    assert (bad_agent.status_code, bad_agent.json()["field"]) == (400, "agent")
    group = json.dumps({"objectType": "Group", "member": [{"mbox": "mailto:a@x.org"}]})
    as_group = await gw.http.put(
        AGENT_PROFILE, params={"agent": group, "profileId": "p"}, json={}, headers=h
    )
    assert as_group.status_code == 400 and as_group.json()["field"] == "agent.objectType"
    # 3.2.s3.b8: a parameter in another case is unknown, 400.
    case = await gw.http.get(STATE, params={**state("x"), "StateId": "y"}, headers=h)
    assert (case.status_code, case.json()["field"]) == (400, "StateId")
    registration = await gw.http.get(STATE, params=state("x", registration="not-a-uuid"), headers=h)
    assert registration.json()["field"] == "registration"
    # 3.2.s3.b11: a document larger than the limit is 413.
    big = await gw.http.put(
        STATE, params=state("big"), content=b"x" * (MAX_DOCUMENT_BYTES + 1), headers=h
    )
    assert big.status_code == 413
    no_id = await gw.http.delete(ACTIVITY_PROFILE, params={"activityId": ACTIVITY}, headers=h)
    assert no_id.status_code == 400 and no_id.json()["field"] == "profileId"


async def test_concurrency_rules(gw: LiveLearning) -> None:
    """Communication 3.1: If-Match, If-None-Match, 409 without a precondition."""
    for version in VERSIONS:
        await _concurrency_rules(gw, version)


async def _concurrency_rules(gw: LiveLearning, version: str) -> None:
    h = await versioned(gw, version)
    resources: list[tuple[str, dict[str, str]]] = [
        (STATE, state(f"s-{version}")),
        (ACTIVITY_PROFILE, {"activityId": ACTIVITY, "profileId": f"p-{version}"}),
        (AGENT_PROFILE, {"agent": AGENT, "profileId": f"p-{version}"}),
    ]
    for path, params in resources:
        created = await gw.http.put(
            path, params=params, json={"v": 1}, headers={**h, "If-None-Match": "*"}
        )
        assert created.status_code == 204, (path, created.text)
        etag = (await gw.http.get(path, params=params, headers=h)).headers["ETag"]
        again = await gw.http.put(
            path, params=params, json={"v": 2}, headers={**h, "If-None-Match": "*"}
        )
        assert again.status_code == 412
        wrong = await gw.http.put(
            path,
            params=params,
            json={"v": 2},
            headers={**h, "If-Match": '"1111111111111111111111111111111111111111"'},
        )
        assert wrong.status_code == 412
        bare = await gw.http.put(path, params=params, json={"v": 3}, headers=h)
        # 3.1.s3: 1.0.3 lets State be replaced without headers; 2.0 and the profiles do not.
        if path == STATE and version == "1.0.3":
            assert bare.status_code == 204
            etag = (await gw.http.get(path, params=params, headers=h)).headers["ETag"]
        else:
            assert bare.status_code == 409 and "If-Match" in bare.json()["error"]
            assert (await gw.http.get(path, params=params, headers=h)).json() == {"v": 1}
        ok = await gw.http.put(path, params=params, json={"v": 4}, headers={**h, "If-Match": etag})
        assert ok.status_code == 204
        stale = await gw.http.post(
            path, params=params, json={"w": 1}, headers={**h, "If-Match": etag}
        )
        assert stale.status_code == 412
        stale_delete = await gw.http.delete(path, params=params, headers={**h, "If-Match": etag})
        assert stale_delete.status_code == 412
        assert (await gw.http.get(path, params=params, headers=h)).json() == {"v": 4}
        current = (await gw.http.get(path, params=params, headers=h)).headers["ETag"]
        deleted = await gw.http.delete(path, params=params, headers={**h, "If-Match": current})
        assert deleted.status_code == 204
        assert (await gw.http.get(path, params=params, headers=h)).status_code == 404


async def test_twenty_concurrent_writers_one_wins_each_round(gw: LiveLearning) -> None:
    """Each round, 20 writers PUT with the ETag they all read: exactly one gets 204, the
    other 19 get 412 and change nothing; the stored document is the winner's. Then 20
    concurrent merges without preconditions: every one is applied, nothing lost."""
    for version in VERSIONS:
        h = await versioned(gw, version)
        params = {"activityId": ACTIVITY, "profileId": f"race-{version}"}
        await gw.http.put(
            ACTIVITY_PROFILE, params=params, json={"round": -1}, headers={**h, "If-None-Match": "*"}
        )
        for round_ in range(3):
            await _one_round(gw, h, params, round_)
        await _concurrent_merges(gw, h, state(f"merge-{version}"))


async def _one_round(
    gw: LiveLearning, h: dict[str, str], params: dict[str, str], round_: int
) -> None:
    etag = (await gw.http.get(ACTIVITY_PROFILE, params=params, headers=h)).headers["ETag"]

    async def write(writer: int) -> httpx.Response:
        return await gw.http.put(
            ACTIVITY_PROFILE,
            params=params,
            json={"round": round_, "writer": writer},
            headers={**h, "If-Match": etag},
        )

    answers = await asyncio.gather(*(write(w) for w in range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [204] + [412] * 19, codes
    winner = next(w for w, a in enumerate(answers) if a.status_code == 204)
    stored = (await gw.http.get(ACTIVITY_PROFILE, params=params, headers=h)).json()
    assert stored == {"round": round_, "writer": winner}


async def _concurrent_merges(gw: LiveLearning, h: dict[str, str], params: dict[str, str]) -> None:
    async def merge(writer: int) -> httpx.Response:
        return await gw.http.post(STATE, params=params, json={f"k{writer}": writer}, headers=h)

    merged = await asyncio.gather(*(merge(w) for w in range(20)))
    assert [m.status_code for m in merged] == [204] * 20
    final = (await gw.http.get(STATE, params=params, headers=h)).json()
    assert final == {f"k{w}": w for w in range(20)}


async def _documents_belong_to_their_owner(gw: LiveLearning) -> None:
    ana = await versioned(gw, "1.0.3", "ana")
    ben = await versioned(gw, "1.0.3", "ben")
    params = {"agent": AGENT, "profileId": "shared-name"}
    await gw.http.put(AGENT_PROFILE, params=params, json={"owner": "ana"}, headers=ana)
    assert (await gw.http.get(AGENT_PROFILE, params=params, headers=ben)).status_code == 404
    await gw.http.put(AGENT_PROFILE, params=params, json={"owner": "ben"}, headers=ben)
    assert (await gw.http.get(AGENT_PROFILE, params=params, headers=ana)).json() == {"owner": "ana"}
    listed: Any = (await gw.http.get(AGENT_PROFILE, params={"agent": AGENT}, headers=ben)).json()
    assert listed == ["shared-name"]

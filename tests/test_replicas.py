"""Replicas, the production shape, under faults (PostgreSQL + Redis only).

Two replicas of every service and two gateways, each its own process (tests/replica_rig.py),
on a throwaway PostgreSQL database and a private Redis. Three learners record interactions
through both gateways (GraphQL, each write with a requestId, retried on UNAVAILABLE) while
the test SIGKILLs one learning replica, then one translator replica, then restarts Redis
(which keeps nothing). Afterwards:

- every interaction is anchored exactly once: one translator record per interaction, no
  leaf twice in a batch, the batches' leaf counts add up, every batch anchored;
- no event lost or duplicated: every outbox is drained, each interaction has exactly one
  ``learning.interaction_recorded`` event and one passport entry, anchored;
- an ``interactionAnchored`` subscription the client drops and reopens (on the other
  gateway) gets the anchors of everything recorded after it reconnected, across the
  Redis restart;
- the recovery times are printed (kill -> first successful write through each gateway,
  kill -> anchoring resumed). No timing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from chain.translator.storage import ANCHORED, batches, records
from services.kit.db import Database
from tests.e2e_support import GraphQLClient, all_interactions, sign_up_and_log_in, subscriptions
from tests.replica_rig import Gateway, Rig, need_engines, running_rig

pytestmark = [pytest.mark.engines, pytest.mark.timeout(900)]

LEARNERS = 3
PER_PHASE = 6  # per learner: 4 phases x 3 learners x 6 = 72 interactions
PHASES = 4
RECORD = """
mutation Record($input: InteractionInput!, $requestId: String) {
  recordInteraction(input: $input, requestId: $requestId) { id }
}"""
ANCHORED_SUB = "subscription { interactionAnchored { statementId anchor { status } } }"
RETRYABLE = {"SERVICE_UNAVAILABLE", "TIMEOUT", "DEADLINE_EXCEEDED"}
SCHEMAS = ("identity", "learning", "passport", "reputation", "governance", "marketplace", "chain")


@dataclass
class Learner:
    name: str
    token: str = ""
    user_id: str = ""
    ids: list[str] = field(default_factory=list)


@dataclass
class Clock:
    """Wall-clock marks (monotonic) of the faults and of what followed them."""

    start: float = field(default_factory=time.monotonic)
    writes: list[tuple[float, int]] = field(default_factory=list)  # (done at, gateway)

    def first_write_after(self, mark: float, gateway: int) -> float | None:
        done = [t for t, g in self.writes if g == gateway and t > mark]
        return min(done) - mark if done else None


class Driver:
    """Records interactions through the gateways, retrying with the same requestId."""

    def __init__(self, rig: Rig, clock: Clock) -> None:
        self.rig = rig
        self.clock = clock
        self.retries: Counter[str] = Counter()
        self.turn = 0

    async def record(self, learner: Learner, label: str) -> str:
        request_id = f"{learner.name}-{label}-{uuid.uuid4().hex[:8]}"
        payload = {
            "query": RECORD,
            "variables": {
                "requestId": request_id,
                "input": {
                    "interactionType": "QUESTION",
                    "activityId": f"https://keiko.example/replicas/{request_id}",
                    "title": f"{learner.name} {label}",
                    "content": "what survives a replica?",
                },
            },
        }
        headers = {"authorization": f"Bearer {learner.token}"}
        first: str | None = None
        deadline = time.monotonic() + 120
        while True:
            index = self.turn % len(self.rig.gateways)
            self.turn += 1
            gateway = self.rig.gateways[index]
            reason = await self._try(gateway, payload, headers)
            if isinstance(reason, tuple):
                statement_id = reason[1]
                self.clock.writes.append((time.monotonic(), index))
                # A retry of the same requestId answers the first write's id.
                assert first is None or first == statement_id
                learner.ids.append(statement_id)
                return statement_id
            self.retries[reason] += 1
            if time.monotonic() > deadline:
                pytest.fail(f"recordInteraction never succeeded: {reason}")
            await asyncio.sleep(0.1)

    async def _try(
        self, gateway: Gateway, payload: dict[str, Any], headers: dict[str, str]
    ) -> str | tuple[str, str]:
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
                response = await http.post("/graphql", json=payload, headers=headers)
        except httpx.TransportError as exc:
            return f"transport {type(exc).__name__}"
        assert response.status_code == 200, response.text
        body = response.json()
        if body.get("errors"):
            code = str(body["errors"][0].get("extensions", {}).get("code", ""))
            assert code in RETRYABLE, body["errors"]
            return code
        return ("ok", str(body["data"]["recordInteraction"]["id"]))


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def sign_up(gateway: Gateway, learner: Learner) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        gql = GraphQLClient(http)
        learner.user_id = await sign_up_and_log_in(
            gql, f"{learner.name}-{uuid.uuid4().hex[:6]}@replicas.example", learner.name
        )
        assert gql.token is not None
        learner.token = gql.token


async def anchored_records(db: Database) -> dict[str, datetime | None]:
    """record id -> its batch's anchor time, for learning records anchored."""
    query = select(records.c.record_id, records.c.anchored_at).where(
        records.c.domain == "learning", records.c.status == ANCHORED
    )
    async with db.session() as session:
        return {r.record_id: r.anchored_at for r in (await session.execute(query)).all()}


async def test_replicas_survive_kills_and_a_redis_restart(
    tmp_path: Path, database_url: str
) -> None:
    need_engines()
    with running_rig(tmp_path, database_url) as rig:
        await _exercise(rig)


async def _exercise(rig: Rig) -> None:
    clock = Clock()
    driver = Driver(rig, clock)
    learners = [Learner(f"learner{i}") for i in range(LEARNERS)]
    for i, learner in enumerate(learners):
        await sign_up(rig.gateways[i % 2], learner)
    db = Database(rig.database_url, schemas=list(SCHEMAS))
    try:
        await _faults_and_checks(rig, driver, clock, learners, db)
    finally:
        await db.dispose()


async def _faults_and_checks(
    rig: Rig, driver: Driver, clock: Clock, learners: list[Learner], db: Database
) -> None:
    watched = learners[0]
    seen: list[tuple[int, str]] = []  # (connection, statement id) of ANCHORED pushes

    async def watch(connection: int, gateway: Gateway, ready: asyncio.Event) -> None:
        async with subscriptions(gateway.http_port, watched.token) as ws:
            await ws.subscribe("anchored", ANCHORED_SUB)
            ready.set()
            while True:
                data = (await ws.next(timeout=300))["interactionAnchored"]
                if data["anchor"]["status"] == "ANCHORED":
                    seen.append((connection, data["statementId"]))

    async def phase(label: str) -> None:
        await asyncio.gather(*(_record_many(driver, learner, label) for learner in learners))

    first_ready = asyncio.Event()
    first = asyncio.create_task(watch(1, rig.gateways[1], first_ready))
    await asyncio.wait_for(first_ready.wait(), 30)
    await asyncio.sleep(1)  # the WatchPassport stream reaches the passport replica

    marks: dict[str, float] = {}
    walls: dict[str, datetime] = {}

    async def phase_with_fault(label: str, fault: str, act: Callable[[], None]) -> None:
        """A phase of traffic with a fault one second into it."""
        traffic = asyncio.create_task(phase(label))
        await asyncio.sleep(1)
        marks[fault], walls[fault] = time.monotonic(), datetime.now(UTC)
        await asyncio.to_thread(act)
        await traffic

    await phase("p1")
    # 1. A learning replica dies mid-traffic.
    await phase_with_fault("p2", "learning", rig.replicas["learning"][0].process.kill)
    # The client drops its subscription; it reconnects on the other gateway.
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    reconnected = len(watched.ids)
    second_ready = asyncio.Event()
    second = asyncio.create_task(watch(2, rig.gateways[0], second_ready))
    await asyncio.wait_for(second_ready.wait(), 30)
    await asyncio.sleep(1)
    # 2. A translator replica dies mid-traffic (with whatever it had claimed or read).
    await phase_with_fault("p3", "translator", rig.replicas["chain"][0].process.kill)
    # 3. Redis restarts mid-traffic and comes back empty.
    await phase_with_fault("p4", "redis", rig.restart_redis)

    everyone = [i for learner in learners for i in learner.ids]
    assert len(everyone) == len(set(everyone)) == LEARNERS * PHASES * PER_PHASE

    async def all_anchored() -> bool:
        return set(everyone) <= set(await anchored_records(db))

    await until(all_anchored, "every interaction anchored", timeout=180)
    anchored_at = [t for t in (await anchored_records(db)).values() if t is not None]

    after_reconnect = set(watched.ids[reconnected:])

    async def pushed() -> bool:
        if second.done():
            second.result()  # the subscription ended: fail with its own error, not a timeout
        return after_reconnect <= {sid for conn, sid in seen if conn == 2}

    await until(pushed, "the reopened subscription's anchors", timeout=120)
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    # Each anchor pushed once per connection, even across the Redis restart (replayed
    # events are deduped by the passport's consumer and by the fan-out).
    assert max(Counter(seen).values()) == 1, Counter(seen).most_common(3)
    assert {sid for _, sid in seen} <= set(watched.ids)

    walls["all anchored"] = datetime.now(UTC)

    # The anchors reach the outboxes, the passport and the statements through events that
    # may still be in flight for the other learners: wait for them to settle, then check.
    async def settled() -> bool:
        return not await _unpublished(db) and await _passport_entries(db, everyone) >= set(everyone)

    await until(settled, "every outbox drained and every interaction in the passport")
    sealed = await _check_exactly_once(db, everyone)
    await until(lambda: _all_shown_anchored(rig, learners), "every interaction shown anchored")
    await _check_through_graphql(rig, learners)
    _report(clock, marks, walls, anchored_at, driver, seen)
    origin = walls["learning"]
    for b in sealed:
        sealed_at = (b.created_at - origin).total_seconds()
        print(
            f"  batch {b.seq}: {b.leaf_count} leaves, sealed {sealed_at:.1f}"
            f", anchored {(b.anchored_at - origin).total_seconds():.1f}, attempts {b.attempts}, "
            f"confirmed by {b.confirmed_by}"
        )


async def _record_many(driver: Driver, learner: Learner, label: str) -> None:
    for n in range(PER_PHASE):
        await driver.record(learner, f"{label}-{n}")


async def _check_exactly_once(db: Database, everyone: list[str]) -> list[Any]:
    async with db.session() as session:
        rows = (
            await session.execute(
                select(records.c.record_id, records.c.batch_id, records.c.leaf).where(
                    records.c.domain == "learning"
                )
            )
        ).all()
        per_record = Counter(r.record_id for r in rows)
        assert set(per_record) == set(everyone)
        assert max(per_record.values()) == 1, "an interaction anchored twice"
        leaves_per_batch: dict[str, Counter[str]] = {}
        for row in rows:
            leaves_per_batch.setdefault(row.batch_id, Counter())[row.leaf] += 1
        for batch_id, leaves in leaves_per_batch.items():
            assert max(leaves.values()) == 1, f"a leaf twice in batch {batch_id}"
        sealed = (
            await session.execute(
                select(batches).where(batches.c.domain == "learning").order_by(batches.c.seq)
            )
        ).all()
        assert {b.state for b in sealed} == {ANCHORED}
        assert sum(b.leaf_count for b in sealed) == len(rows)
        assert {b.batch_id for b in sealed} == set(leaves_per_batch)
        # No outbox row left behind, in any service.
        assert await _unpublished(db) == {}
        # One event per interaction, one passport entry per interaction.
        events = (
            await session.execute(
                text(
                    "SELECT payload->>'statement_id' AS id, count(*) AS n FROM learning.outbox "
                    "WHERE topic = 'learning.interaction_recorded' GROUP BY 1"
                )
            )
        ).all()
        assert {e.id: e.n for e in events} == dict.fromkeys(everyone, 1)
        entries = (
            await session.execute(
                text(
                    "SELECT statement_id, count(*) AS n FROM passport.entries "
                    "WHERE statement_id = ANY(:ids) GROUP BY 1"
                ),
                {"ids": everyone},
            )
        ).all()
        assert {e.statement_id: e.n for e in entries} == dict.fromkeys(everyone, 1)
        total = (await session.execute(select(func.count()).select_from(records))).scalar_one()
        assert total >= len(everyone)
    return list(sealed)


async def _unpublished(db: Database) -> dict[str, int]:
    """schema -> its outbox's unpublished rows, for the schemas that have any."""
    left: dict[str, int] = {}
    async with db.session() as session:
        for schema in SCHEMAS:
            count = (
                await session.execute(
                    text(f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL')
                )
            ).scalar_one()
            if count:
                left[schema] = int(count)
    return left


async def _passport_entries(db: Database, ids: list[str]) -> set[str]:
    """The ones of ``ids`` with a passport entry."""
    query = text(
        "SELECT DISTINCT statement_id FROM passport.entries WHERE statement_id = ANY(:ids)"
    )
    async with db.session() as session:
        return {str(r[0]) for r in (await session.execute(query, {"ids": ids})).all()}


async def _interactions(rig: Rig, learners: list[Learner]) -> list[dict[str, Any]]:
    """Each learner's interactions as GraphQL shows them (id -> node)."""
    out = []
    for i, learner in enumerate(learners):
        async with httpx.AsyncClient(base_url=rig.gateways[i % 2].url, timeout=60) as http:
            gql = GraphQLClient(http)
            gql.token = learner.token
            out.append({n["id"]: n for n in await all_interactions(gql)})
    return out


async def _all_shown_anchored(rig: Rig, learners: list[Learner]) -> bool:
    shown = await _interactions(rig, learners)
    return all(
        set(mine) == set(learner.ids)
        and all(n["anchor"]["status"] == "ANCHORED" for n in mine.values())
        for learner, mine in zip(learners, shown, strict=True)
    )


async def _check_through_graphql(rig: Rig, learners: list[Learner]) -> None:
    for learner, mine in zip(learners, await _interactions(rig, learners), strict=True):
        assert set(mine) == set(learner.ids)
        assert {n["anchor"]["status"] for n in mine.values()} == {"ANCHORED"}


def _report(
    clock: Clock,
    marks: dict[str, float],
    walls: dict[str, datetime],
    anchored_at: list[datetime],
    driver: Driver,
    seen: list[tuple[int, str]],
) -> None:
    lines = [f"replicas: load {os.getloadavg()[0]:.2f} (shared machine)"]
    for fault in ("learning", "translator", "redis"):
        for gateway in (0, 1):
            waited = clock.first_write_after(marks[fault], gateway)
            shown = "none" if waited is None else f"{waited:.2f} s"
            lines.append(f"  {fault}: first write through gateway-{'ab'[gateway]} after {shown}")
    for fault, wall in walls.items():
        if fault == "all anchored":
            continue
        later = [t for t in anchored_at if t > wall]
        shown = f"{(min(later) - wall).total_seconds():.2f} s" if later else "none"
        lines.append(f"  {fault}: first anchor after {shown}")
    origin = walls["learning"]
    lines.append(
        "  timeline (s from the learning kill): "
        + ", ".join(f"{k} {(w - origin).total_seconds():.1f}" for k, w in walls.items())
    )
    lines.append(f"  retries by reason: {dict(driver.retries)}")
    lines.append(f"  subscription pushes: {len(seen)}")
    print("\n".join(lines))

"""A chain outage in the middle of a batch, on the real platform and both engines.

The test runs the Keikochain dev node itself and the platform against it. It records
interactions through GraphQL, stops the node as soon as a batch has been sealed (its
leaves fixed, its `anchor_batch` transaction about to be sent or in flight), records
more while the chain is down (they stay visible as PENDING), restarts the node on the
same data dir and port, and checks that every interaction ends anchored exactly once:
in the learning service, in the passport, in the translator's records, and on chain
(`batch_count`, `get_batch` of every batch: roots and leaf counts add up, no leaf
anchored twice). The passport then verifies independently against the restarted node.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chain.client import KeikoChain
from chain.node.process import NodeProcess, astart_node_process
from chain.translator.felts import parse_felt
from chain.translator.storage import ANCHORED, SEALED, SUBMITTED, batches, records
from chain.verify import cli
from keiko import registry
from keiko.platform import RunningPlatform, running_platform
from services.kit.db import Database
from tests.e2e_support import (
    GraphQLClient,
    all_interactions,
    e2e_settings,
    engine_env,
    gateway_http,
    migrate_all,
    record_interactions,
    sign_up_and_log_in,
)

BATCH = 10
BEFORE, DURING_BATCH, WHILE_DOWN = 10, 13, 12
TOTAL = BEFORE + DURING_BATCH + WHILE_DOWN
SHARE = 'mutation { createShareLink(input: {label: "fault"}) { token url } }'


@dataclass
class FaultRig:
    running: RunningPlatform
    gql: GraphQLClient
    node: NodeProcess
    chain_dir: Path

    async def stop_node(self) -> None:
        await self.node.astop()
        assert not self.node.is_running()

    async def restart_node(self) -> None:
        self.node = await astart_node_process(
            self.chain_dir,
            self.node.host,
            self.node.port,
            log_path=self.chain_dir / "node.log",
        )


@pytest.fixture
async def rig(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FaultRig]:
    # Small batches; quick retries and a short circuit-breaker reset so recovery after the
    # restart is prompt (the defaults back off up to 60 s).
    engine_env(
        monkeypatch,
        database_url,
        batch_max_leaves=str(BATCH),
        batch_max_wait_ms="1000",
        retry_initial_ms="200",
        retry_max_delay_s="2",
        breaker_reset_s="2",
    )
    data_dir = tmp_path / "data"
    chain_dir = data_dir / "chain"  # where the services find deployment.json and accounts
    node = await astart_node_process(chain_dir, log_path=chain_dir / "node.log")
    settings = e2e_settings(data_dir, database_url, event_bus_url, chain_rpc_url=node.rpc_url)
    await migrate_all(database_url)
    fault = FaultRig(None, None, node, chain_dir)  # type: ignore[arg-type]
    try:
        async with (
            running_platform(settings, registry.resolve(None)) as running,
            gateway_http(running) as http,
        ):
            fault.running, fault.gql = running, GraphQLClient(http)
            yield fault
    finally:
        await fault.node.astop()


def translator_db(running: RunningPlatform) -> Database:
    for servicer in running.host.servicers:
        translator = getattr(servicer, "translator", None)
        if translator is not None and hasattr(translator, "store"):
            return translator.store.db  # type: ignore[no-any-return]
    raise AssertionError("no chain translator in the platform")


async def translator_rows(db: Database, table: Any) -> list[dict[str, Any]]:
    async with db.session() as session:
        return [dict(r._mapping) for r in (await session.execute(select(table))).all()]


async def until(check: Any, what: str, timeout: float = 180, every: float = 0.2) -> Any:
    """Poll ``await check()`` until truthy (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def test_chain_outage_mid_batch_anchors_everything_exactly_once(rig: FaultRig) -> None:
    running, gql = rig.running, rig.gql
    await sign_up_and_log_in(gql, "ana@example.org", "Ana")
    db = translator_db(running)

    async def states() -> dict[str, dict[str, Any]]:
        return {i["id"]: i["anchor"] for i in await all_interactions(gql)}

    # 1. The chain is up: a first batch anchors.
    first = await record_interactions(gql, BEFORE, label="before")

    async def first_anchored() -> bool:
        now = await states()
        return all(now[i]["status"] == "ANCHORED" for i in first)

    await until(first_anchored, "the first batch to anchor")
    anchored_before = {
        b["batch_id"] for b in await translator_rows(db, batches) if b["state"] == ANCHORED
    }

    # 2. Record a full batch and more; stop the node as soon as that batch is sealed
    #    (its transaction about to be sent or in flight): a crash in the middle of it.
    second = await record_interactions(gql, DURING_BATCH, label="during")

    async def in_flight() -> list[dict[str, Any]]:
        rows = await translator_rows(db, batches)
        return [r for r in rows if r["batch_id"] not in anchored_before]

    caught = await until(in_flight, "a new batch to be sealed", timeout=60, every=0.01)
    await rig.stop_node()
    assert caught[0]["state"] in (SEALED, SUBMITTED, ANCHORED), caught

    # 3. The chain is down: recording goes on, nothing is lost, the state says pending.
    third = await record_interactions(gql, WHILE_DOWN, label="down")
    down = await states()
    assert all(down[i]["status"] == "PENDING" for i in third), {i: down[i] for i in third}
    assert not any(down[i]["status"] == "FAILED" for i in first + second + third)

    async def outage_seen() -> bool:
        rows = await translator_rows(db, batches)
        return any(b["state"] != ANCHORED and b["attempts"] >= 1 for b in rows)

    # The anchoring engine met the outage (a failed attempt, retried later), not a
    # quiet pause: only then is the restart a recovery.
    await until(outage_seen, "an anchoring attempt to fail while the node is down", 60)

    # 4. Restart the node on the same data dir and port: everything anchors.
    await rig.restart_node()
    ids = first + second + third

    async def all_anchored() -> dict[str, dict[str, Any]] | None:
        now = await states()
        return now if all(now[i]["status"] == "ANCHORED" for i in ids) else None

    final = await until(all_anchored, "every interaction to anchor after the restart")
    assert set(final) == set(ids) and len(ids) == TOTAL

    # The translator: one record per interaction, each in exactly one anchored batch.
    rows = [r for r in await translator_rows(db, records) if r["domain"] == "learning"]
    assert Counter(r["record_id"] for r in rows) == Counter(ids), "one record each"
    assert {r["status"] for r in rows} == {ANCHORED}
    placed = Counter((r["batch_id"], r["leaf_index"]) for r in rows)
    assert max(placed.values()) == 1, "no two records share a leaf"
    translator_batches = await translator_rows(db, batches)
    anchored_batches = {b["batch_id"]: b for b in translator_batches if b["state"] == ANCHORED}
    assert {r["batch_id"] for r in rows} == set(anchored_batches)
    assert all(b["state"] == ANCHORED for b in translator_batches), translator_batches
    # The learning service shows each interaction in the batch the translator put it in.
    assert {i: final[i]["batchId"] for i in ids} == {r["record_id"]: r["batch_id"] for r in rows}

    # The chain itself: exactly these batches, each root and leaf count as recorded.
    deployment = rig.chain_dir / "deployment.json"
    chain = await KeikoChain.connect(rig.node.rpc_url, 0x1, 0x1, deployment)
    try:
        assert await chain.anchor.batch_count() == len(anchored_batches)
        leaves_on_chain = 0
        for batch_id, batch in anchored_batches.items():
            on_chain = await chain.anchor.get_batch(parse_felt(batch_id, "batch_id"))
            assert on_chain is not None, batch_id
            assert on_chain.root == parse_felt(batch["root"], "root")
            assert on_chain.leaf_count == batch["leaf_count"]
            assert on_chain.leaf_count == sum(1 for r in rows if r["batch_id"] == batch_id)
            leaves_on_chain += on_chain.leaf_count
        assert leaves_on_chain == TOTAL, "every interaction anchored once, none twice"
    finally:
        await chain.close()

    # The passport agrees, and verifies independently against the restarted node.
    share = (await gql(SHARE))["createShareLink"]
    out = io.StringIO()
    argv = [
        share["url"],
        "--rpc",
        rig.node.rpc_url,
        "--deployment",
        str(deployment),
        "--json",
    ]
    code = await asyncio.wait_for(asyncio.to_thread(cli.main, argv, out=out), 300)
    report = json.loads(out.getvalue())
    assert code == cli.EXIT_OK, report
    assert sorted(e["entry_id"] for e in report["entries"]) == sorted(ids)
    assert report["counts"]["verified"] == TOTAL
    by_entry = {e["entry_id"]: e for e in report["entries"]}
    for i in ids:
        assert by_entry[i]["batch_id"] == hex(parse_felt(final[i]["batchId"], "batch_id"))

"""The event intake: domain events in, leaves queued, anchors announced with what the
passport needs (signature, key, proof)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time

import pytest
from nacl.signing import SigningKey
from sqlalchemy import select, update

from chain.tests.translator_service.conftest import statement
from chain.tests.translator_service.fakes import FakeAnchorChain
from chain.translator.anchoring import AnchoringEngine
from chain.translator.batching import Domain
from chain.translator.intake import (
    LEARNING_RECORDED,
    PROPOSAL_FINALIZED,
    RATING_REVEALED,
    AnchorIntake,
)
from chain.translator.keys import KeyVault
from chain.translator.leaves import compute_leaf
from chain.translator.merkle import verify_inclusion
from chain.translator.service import ChainTranslator, StatementToQueue, record_leaf
from chain.translator.signing import canonical_bytes, verify
from chain.translator.storage import (
    ANCHORED,
    FAILED,
    PENDING,
    TOPIC_ANCHOR_FAILED,
    TOPIC_INTERACTION_ANCHORED,
    ChainStore,
    outbox,
    records,
)
from chain.translator.watcher import ChainWatcher
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.errors import AlreadyExists, PermissionDenied, ValidationError
from services.kit.events import Event, EventBus


@pytest.fixture
def translator(store: ChainStore, clock: FixedClock) -> ChainTranslator:
    chain = FakeAnchorChain()
    engine = AnchoringEngine(store, chain, clock)
    return ChainTranslator(store, KeyVault(os.urandom(32)), chain, engine)


def recorded(i: int, learner: str = "ana", device: dict[str, str] | None = None) -> Event:
    st = statement(i, learner)
    return Event(
        LEARNING_RECORDED,
        key=learner,
        payload={
            "statement_id": st["id"],
            "learner_id": learner,
            "statement_json": json.dumps(st),  # not canonical: the translator canonicalizes
            "device_signature": device,
        },
    )


async def outbox_payloads(store: ChainStore, topic: str) -> list[dict[str, object]]:
    async with store.db.session() as s:
        rows = (await s.execute(select(outbox.c.payload).where(outbox.c.topic == topic))).all()
    return [dict(r.payload) for r in rows]


async def anchor(translator: ChainTranslator) -> None:
    await translator.engine.step(force=True)
    await ChainWatcher(translator.store, translator.chain).catch_up()


async def test_custodial_statement_is_signed_anchored_and_announced(
    translator: ChainTranslator, store: ChainStore
) -> None:
    intake = AnchorIntake(translator)
    event = recorded(1)
    assert await intake.handle(event) == "queued"
    assert await intake.handle(event) == "queued"  # redelivery: same leaf, no duplicate
    assert await store.count_records() == 1
    await anchor(translator)
    [payload] = await outbox_payloads(store, TOPIC_INTERACTION_ANCHORED)
    st = statement(1)
    assert payload["record_id"] == st["id"] and payload["learner_id"] == "ana"
    signature = bytes.fromhex(str(payload["signature"]))
    public_key = bytes.fromhex(str(payload["public_key"]))
    assert verify(st, signature, public_key).ok  # over the RFC 8785 bytes
    leaf = compute_leaf(st, signature, public_key)
    assert payload["leaf"] == hex(leaf)
    proof = [int(str(x), 16) for x in payload["proof"]]  # type: ignore[attr-defined]
    assert verify_inclusion(leaf, 0, proof, int(str(payload["root"]), 16), leaf_count=1)


async def test_device_statements_need_the_registered_key(
    translator: ChainTranslator, store: ChainStore
) -> None:
    intake = AnchorIntake(translator)
    device = SigningKey.generate()
    st = statement(2, "bo")
    signed = {
        "signature_hex": bytes(device.sign(canonical_bytes(st)).signature).hex(),
        "public_key_hex": bytes(device.verify_key).hex(),
    }
    assert await intake.handle(recorded(2, "bo", signed)) == "failed"
    row = await store.get_record(Domain.LEARNING, str(st["id"]))
    assert row is not None and row.status == FAILED
    assert row.failure_reason == "device signature rejected: the author has no registered key"
    [failed] = await outbox_payloads(store, TOPIC_ANCHOR_FAILED)
    assert failed["record_id"] == st["id"] and failed["status"] == FAILED

    await store.set_registered_key("bo", bytes(device.verify_key), "test")
    assert await intake.handle(recorded(3, "bo", {**signed})) == "failed"  # wrong statement
    st4 = statement(4, "bo")
    ok = {
        "signature_hex": bytes(device.sign(canonical_bytes(st4)).signature).hex(),
        "public_key_hex": bytes(device.verify_key).hex(),
    }
    assert await intake.handle(recorded(4, "bo", ok)) == "queued"
    assert await store.get_key_record("bo") is None  # never re-signed custodially


async def test_unsigned_records_from_services(
    translator: ChainTranslator, store: ChainStore
) -> None:
    intake = AnchorIntake(translator)
    leaf_data = '{"rating_id":"r1","score":5}'
    rating = Event(RATING_REVEALED, key="u", payload={"record_id": "r1", "leaf_data": leaf_data})
    assert await intake.handle(rating) == "queued"
    row = await store.get_record(Domain.REPUTATION, "r1")
    assert row is not None and row.leaf == record_leaf(leaf_data.encode())
    assert row.statement_sha256 == hashlib.sha256(leaf_data.encode()).hexdigest()

    result = {"proposal_id": "p1", "winner": 0}
    digest = hashlib.sha256(canonical_bytes(result)).hexdigest()
    finalized = Event(
        PROPOSAL_FINALIZED,
        key="p1",
        payload={"proposal_id": "p1", "result": result, "tally_digest": digest},
    )
    assert await intake.handle(finalized) == "queued"
    bad = Event(
        PROPOSAL_FINALIZED,
        key="p2",
        payload={"proposal_id": "p2", "result": result, "tally_digest": "00" * 32},
    )
    assert await intake.handle(bad) == "rejected"
    external = Event(LEARNING_RECORDED, key="x", payload={"learner_id": "", "statement_id": "s"})
    assert await intake.handle(external) == "skipped"
    await anchor(translator)
    anchored = await store.get_record(Domain.GOVERNANCE, "p1")
    assert anchored is not None and anchored.status == ANCHORED

    # Through SubmitForAnchoring: unsigned records are for services, never for learning.
    service = Principal("reputation-svc", frozenset({"service"}))
    learner = Principal("ana", frozenset({"learner"}))
    with pytest.raises(PermissionDenied):
        await translator.submit(learner, Domain.REPUTATION, "r2", b"{}")
    with pytest.raises(ValidationError) as err:
        await translator.submit(service, Domain.LEARNING, "r2", b"{}")
    assert err.value.field.startswith("leaf_data")
    again = await translator.submit(service, Domain.REPUTATION, "r1", leaf_data.encode())
    assert again.status == PENDING or again.status == ANCHORED


async def test_intake_job_consumes_the_bus(
    translator: ChainTranslator, store: ChainStore, event_bus: EventBus
) -> None:
    stop = asyncio.Event()
    job = asyncio.create_task(AnchorIntake(translator).job(event_bus)(stop))
    try:
        await asyncio.sleep(0.2)  # the consumer group exists before we publish
        await event_bus.publish(recorded(5))
        deadline = time.monotonic() + 20
        while await store.count_records() == 0:
            assert time.monotonic() < deadline, "the intake never queued the statement"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(job, 10)


async def test_a_page_of_events_is_queued_together_and_a_bad_one_only_fails_itself(
    translator: ChainTranslator, store: ChainStore
) -> None:
    """handle_page: statements signed and queued in one INSERT (a redelivered one within
    the page or already stored is not queued twice); a page with a statement whose key is
    taken by other data raises, and the page consumer's one-by-one fallback (handle) then
    queues the rest and rejects only that one."""
    intake = AnchorIntake(translator)
    assert await intake.handle(recorded(1)) == "queued"
    rating = Event(
        RATING_REVEALED, key="r-1", payload={"record_id": "r-1", "leaf_data": "rating 1"}
    )
    external = Event(LEARNING_RECORDED, key="x", payload={"statement_json": "{}"})
    await intake.handle_page([recorded(1), recorded(2), recorded(2, "ana"), rating, external])
    assert await store.count_records() == 3  # statements 1 and 2, the rating
    rows = await translator.queue_statements(
        [StatementToQueue("ana", str(statement(n)["id"]), statement(n)) for n in (3, 1)]
    )
    assert [row.record_id for row in rows] == [statement(3)["id"], statement(1)["id"]]
    assert rows[1] == await store.get_record(Domain.LEARNING, str(statement(1)["id"]))

    taken = recorded(4, "bo")
    taken.payload["statement_id"] = statement(1)["id"]  # ana's statement 1 is stored
    page = [recorded(5), taken]
    with pytest.raises(AlreadyExists):
        await intake.handle_page(page)
    assert [await intake.handle(event) for event in page] == ["queued", "rejected"]
    assert await store.count_records() == 5
    await anchor(translator)
    anchored = await outbox_payloads(store, TOPIC_INTERACTION_ANCHORED)
    assert len(anchored) == 5 and len({p["record_id"] for p in anchored}) == 5


async def test_a_statement_queued_as_keiko_leaf_v1_is_the_same_record_when_redelivered(
    translator: ChainTranslator, store: ChainStore
) -> None:
    """New statements get keiko.leaf.v2 leaves; one queued before (a v1 leaf, as the
    migration leaves it) and delivered again is recognised in its stored encoding, not
    rejected as other leaf data; a v1 leaf of other data still is."""
    intake = AnchorIntake(translator)
    assert await intake.handle(recorded(1)) == "queued"
    row = await store.get_record(Domain.LEARNING, str(statement(1)["id"]))
    assert row is not None and row.leaf_encoding == "keiko.leaf.v2"
    assert row.leaf == compute_leaf(
        statement(1), bytes.fromhex(row.signature), bytes.fromhex(row.public_key)
    )
    v1 = compute_leaf(
        statement(1), bytes.fromhex(row.signature), bytes.fromhex(row.public_key), "keiko.leaf.v1"
    )
    async with store.db.transaction() as s:
        await s.execute(
            update(records)
            .where(records.c.record_id == row.record_id)
            .values(leaf=hex(v1), leaf_encoding="keiko.leaf.v1")
        )
    assert await intake.handle(recorded(1)) == "queued"
    await intake.handle_page([recorded(1)])
    again = await store.get_record(Domain.LEARNING, row.record_id)
    assert again is not None and (again.leaf, again.leaf_encoding) == (v1, "keiko.leaf.v1")
    async with store.db.transaction() as s:
        await s.execute(
            update(records).where(records.c.record_id == row.record_id).values(leaf=hex(v1 ^ 1))
        )
    assert await intake.handle(recorded(1)) == "rejected"

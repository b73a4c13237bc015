"""Authorship: a statement is signed by its author. The learner's key signs only the
learner's own statements; a tutor's feedback carries the tutor's signature, an attendance
record the learning service's; nobody can be made to sign what they did not write."""

from __future__ import annotations

import json
import os

import pytest
from nacl.signing import SigningKey
from sqlalchemy import select

from chain.tests.translator_service.conftest import statement
from chain.tests.translator_service.fakes import FakeAnchorChain
from chain.translator.anchoring import AnchoringEngine
from chain.translator.authors import KEIKO_HOME_PAGE, SERVICE_AUTHORS
from chain.translator.batching import Domain
from chain.translator.intake import LEARNING_RECORDED, AnchorIntake
from chain.translator.keys import KeyVault
from chain.translator.service import ChainTranslator, anchor_leaf_data
from chain.translator.signing import canonical_bytes, verify
from chain.translator.storage import (
    FAILED,
    TOPIC_INTERACTION_ANCHORED,
    ChainStore,
    key_registrations,
    outbox,
)
from chain.translator.watcher import ChainWatcher
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.errors import PermissionDenied, ValidationError
from services.kit.events import Event

SERVICE = Principal("keiko-learning-svc", frozenset({"service"}))


@pytest.fixture
def translator(store: ChainStore, clock: FixedClock) -> ChainTranslator:
    chain = FakeAnchorChain()
    return ChainTranslator(
        store, KeyVault(os.urandom(32)), chain, AnchoringEngine(store, chain, clock)
    )


def agent(user: str) -> dict[str, object]:
    return {"objectType": "Agent", "account": {"homePage": KEIKO_HOME_PAGE, "name": user}}


def by(i: int, learner: str, author: str | None) -> dict[str, object]:
    st = statement(i, learner)
    if author is not None:
        st["authority"] = agent(author)
    return st


def recorded(st: dict[str, object], learner: str, recorded_by: str = "", **extra: object) -> Event:
    return Event(
        LEARNING_RECORDED,
        key=learner,
        payload={
            "statement_id": st["id"],
            "learner_id": learner,
            "recorded_by": recorded_by,
            "statement_json": json.dumps(st),
            **extra,
        },
    )


async def anchored_payloads(store: ChainStore) -> dict[str, dict[str, object]]:
    async with store.db.session() as s:
        rows = (
            await s.execute(
                select(outbox.c.payload).where(outbox.c.topic == TOPIC_INTERACTION_ANCHORED)
            )
        ).all()
    return {str(r.payload["record_id"]): dict(r.payload) for r in rows}


async def custody(store: ChainStore) -> dict[str, tuple[str, str]]:
    async with store.db.session() as s:
        rows = (await s.execute(select(key_registrations))).all()
    return {r.public_key: (r.holder_id, r.custody) for r in rows}


async def test_each_statement_is_signed_by_its_author(
    translator: ChainTranslator, store: ChainStore, clock: FixedClock
) -> None:
    intake = AnchorIntake(translator)
    own = by(1, "ana", "ana")
    feedback = by(2, "ana", "tutor-tom")
    attended = by(3, "ana", "keiko-learning")
    legacy_shape = statement(4, "ana")  # no authority: the learner's own
    assert await intake.handle(recorded(own, "ana", "ana")) == "queued"
    assert await intake.handle(recorded(feedback, "ana", "tutor-tom")) == "queued"
    assert await intake.handle(recorded(attended, "ana", "keiko-learning")) == "queued"
    assert await intake.handle(recorded(legacy_shape, "ana")) == "queued"
    await translator.engine.step(force=True)
    await ChainWatcher(store, translator.chain).catch_up()
    anchored = await anchored_payloads(store)

    keys = {
        who: await translator.keys.custodial_key(who, create=False)
        for who in ("ana", "tutor-tom", "keiko-learning")
    }
    assert len({k for k in keys.values()}) == 3  # three holders, three keys
    for st, author in (
        (own, "ana"),
        (feedback, "tutor-tom"),
        (attended, "keiko-learning"),
        (legacy_shape, "ana"),
    ):
        payload = anchored[str(st["id"])]
        assert payload["learner_id"] == "ana" and payload["author_id"] == author
        public_key = bytes.fromhex(str(payload["public_key"]))
        assert public_key == keys[author]
        assert verify(st, bytes.fromhex(str(payload["signature"])), public_key).ok
    # The tutor's feedback is not signed with the learner's key.
    assert anchored[str(feedback["id"])]["public_key"] != keys["ana"].hex()  # type: ignore[union-attr]
    # Every key is queued for the on-chain key directory with its custody.
    assert await custody(store) == {
        keys["ana"].hex(): ("ana", "custodial"),  # type: ignore[union-attr]
        keys["tutor-tom"].hex(): ("tutor-tom", "custodial"),  # type: ignore[union-attr]
        keys["keiko-learning"].hex(): ("keiko-learning", "service"),  # type: ignore[union-attr]
    }


@pytest.mark.parametrize(
    ("st", "recorded_by", "field"),
    [
        (by(5, "ana", "ana"), "tutor-tom", "recorded_by"),  # recorder contradicts authority
        (
            {**statement(6, "ana"), "authority": {"mbox": "mailto:x@example.com"}},
            "",
            "statement.authority",
        ),
        (
            {
                **statement(7, "ana"),
                "authority": {"account": {"homePage": "https://other.example", "name": "ana"}},
            },
            "",
            "statement.authority",
        ),
    ],
)
async def test_nobody_signs_what_they_did_not_write(
    translator: ChainTranslator,
    store: ChainStore,
    st: dict[str, object],
    recorded_by: str,
    field: str,
) -> None:
    with pytest.raises(ValidationError) as err:
        await translator.queue_statement("ana", str(st["id"]), st, recorded_by=recorded_by)
    assert err.value.field == field
    assert await AnchorIntake(translator).handle(recorded(st, "ana", recorded_by)) == "rejected"
    assert await store.count_records() == 0
    assert await store.get_key_record("ana") is None  # nothing was signed


async def test_a_device_signature_is_checked_against_the_authors_key(
    translator: ChainTranslator, store: ChainStore
) -> None:
    tutor_device, learner_device = SigningKey.generate(), SigningKey.generate()
    await store.set_registered_key("tutor-tom", bytes(tutor_device.verify_key), "test")
    await store.set_registered_key("ana", bytes(learner_device.verify_key), "test")
    intake = AnchorIntake(translator)

    def device(key: SigningKey, st: dict[str, object]) -> dict[str, str]:
        return {
            "signature_hex": bytes(key.sign(canonical_bytes(st)).signature).hex(),
            "public_key_hex": bytes(key.verify_key).hex(),
        }

    feedback = by(8, "ana", "tutor-tom")
    # The learner's device cannot sign the tutor's feedback as if it were the tutor.
    stolen = recorded(
        feedback, "ana", "tutor-tom", device_signature=device(learner_device, feedback)
    )
    assert await intake.handle(stolen) == "failed"
    row = await store.get_record(Domain.LEARNING, str(feedback["id"]))
    assert row is not None and row.status == FAILED and row.author_id == "tutor-tom"
    assert row.failure_reason == (
        "device signature rejected: public key is not the author's registered key"
    )
    feedback2 = by(9, "ana", "tutor-tom")
    good = recorded(feedback2, "ana", "tutor-tom", device_signature=device(tutor_device, feedback2))
    assert await intake.handle(good) == "queued"
    row = await store.get_record(Domain.LEARNING, str(feedback2["id"]))
    assert row is not None and row.public_key == bytes(tutor_device.verify_key).hex()
    assert await store.get_key_record("tutor-tom") is None  # never re-signed custodially
    # Both device keys are queued for the key directory as device keys.
    assert set((await custody(store)).values()) == {("tutor-tom", "device"), ("ana", "device")}


async def test_sign_and_submit_as_the_author_only(translator: ChainTranslator) -> None:
    ana = Principal("ana", frozenset({"learner"}))
    own = json.dumps(by(10, "ana", "ana"), separators=(",", ":"), sort_keys=True)
    own = canonical_bytes(json.loads(own)).decode()
    signed = await translator.sign_interaction(ana, "ana", own)
    assert signed.public_key == await translator.keys.custodial_key("ana", create=False)

    feedback = by(11, "ana", "tutor-tom")
    text = canonical_bytes(feedback).decode()
    # The learner cannot have the tutor's key sign, nor the tutor sign about the learner
    # through the translator directly (attestations go through the learning service).
    with pytest.raises(PermissionDenied):
        await translator.sign_interaction(ana, "ana", text)
    with pytest.raises(PermissionDenied):
        await translator.sign_interaction(Principal("tutor-tom"), "ana", text)
    assert await translator.keys.custodial_key("tutor-tom", create=False) is None
    # A Keiko service signs as the author the statement names.
    by_service = await translator.sign_interaction(SERVICE, "ana", text)
    tutor_key = await translator.keys.custodial_key("tutor-tom", create=False)
    assert by_service.public_key == tutor_key

    # SubmitForAnchoring: the key must be the author's.
    wrong = anchor_leaf_data("ana", feedback, signed.signature, signed.public_key)
    with pytest.raises(ValidationError) as err:
        await translator.submit(SERVICE, Domain.LEARNING, "f-1", wrong)
    assert err.value.field in ("leaf_data.signature", "leaf_data.public_key")
    ana_key = SigningKey.generate()  # a valid signature by a key that is not the tutor's
    forged = anchor_leaf_data(
        "ana",
        feedback,
        bytes(ana_key.sign(canonical_bytes(feedback)).signature),
        bytes(ana_key.verify_key),
    )
    with pytest.raises(ValidationError) as err:
        await translator.submit(SERVICE, Domain.LEARNING, "f-1", forged)
    assert err.value.field == "leaf_data.public_key" and "tutor-tom" in err.value.reason
    data = anchor_leaf_data("ana", feedback, by_service.signature, by_service.public_key)
    row = await translator.submit(SERVICE, Domain.LEARNING, "f-1", data)
    assert row.author_id == "tutor-tom" and row.learner_id == "ana"
    # The tutor may read the anchor state of what they wrote.
    assert (await translator.record(Principal("tutor-tom"), Domain.LEARNING, "f-1")).seq == row.seq


def test_the_services_agree_on_authors() -> None:
    """What the learning service writes is what the translator signs for: its own author
    id is a known Keiko service, and Keiko accounts are read on the same home page."""
    from gateway.xapi.http import KEIKO_HOME_PAGE as GATEWAY_HOME
    from services.learning.hierarchy.domain import KEIKO_HOME_PAGE as LEARNING_HOME
    from services.learning.statements.domain import SERVICE_USER_ID

    assert SERVICE_USER_ID in SERVICE_AUTHORS
    assert LEARNING_HOME == GATEWAY_HOME == KEIKO_HOME_PAGE

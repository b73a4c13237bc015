"""SignCredential: the translator signs credentials with keys it never exports, and each
key signs only what its holder stands behind."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest

from chain.credentials.integrity import verify_proofs
from chain.credentials.learning_credentials import (
    Achievement,
    Issuer,
    learning_record_credential,
    open_badge_credential,
)
from chain.credentials.multikey import did_key
from chain.credentials.presentations import presentation
from chain.credentials.records import AnchoredRecord, AnchorEvidence, AuthorKind, RecordAuthor
from chain.credentials.status_list import Bitstring, status_list_credential
from chain.tests.translator_service.fakes import FakeAnchorChain
from chain.tests.translator_service.test_authorship import by, recorded
from chain.translator.anchoring import AnchoringEngine
from chain.translator.authors import author_kind
from chain.translator.batching import Domain
from chain.translator.credentials import CredentialPurpose
from chain.translator.intake import AnchorIntake
from chain.translator.keys import KeyVault
from chain.translator.service import ChainTranslator
from chain.translator.servicer import credential_purpose_from_pb
from chain.translator.storage import ChainStore
from chain.translator.watcher import ChainWatcher
from chain.verify.credentials import verify_credential
from chain.verify.reader import AnchorTransaction, BatchInfo, KeyInfo
from services.api.keiko.chain import v1 as pb
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.errors import FailedPrecondition, PermissionDenied, ValidationError

ANA = Principal("ana")
MALLORY = Principal("mallory")
PASSPORT = Principal("keiko-passport", frozenset({"service"}))
CHAIN_ID = 0x4B45494B4F
CONTRACT = 0xA
ISSUE, STATUS, PRESENT = (
    CredentialPurpose.ISSUE,
    CredentialPurpose.STATUS_LIST,
    CredentialPurpose.PRESENT,
)


class FakeChainReader:
    """The verifier's view of the fake chain (batches, roots, anchoring receipts)."""

    def __init__(self, chain: FakeAnchorChain) -> None:
        self.chain = chain

    async def is_root_anchored(self, root: int) -> bool:
        return root in self.chain.roots

    async def get_batch(self, batch_id: int) -> BatchInfo | None:
        b = self.chain.batches.get(batch_id)
        return None if b is None else BatchInfo(b.root, b.leaf_count, b.domain, b.block_number)

    async def anchor_transaction(self, tx_hash: int) -> AnchorTransaction | None:
        events = [e for e in self.chain.log if e.tx_hash == tx_hash]
        if not events:
            return None
        anchors = frozenset((e["batch_id"], e["root"]) for e in events)
        return AnchorTransaction(events[0].block_number or 0, True, anchors)

    async def key_binding(self, public_key: bytes) -> KeyInfo | None:
        binding = self.chain.keys.get(public_key)
        if binding is None:
            return None
        revoked = binding.revoked_block if binding.revoked else None
        return KeyInfo(binding.subject, binding.kind, binding.registered_block, revoked)


@pytest.fixture
def chain() -> FakeAnchorChain:
    return FakeAnchorChain()


@pytest.fixture
def translator(store: ChainStore, clock: FixedClock, chain: FakeAnchorChain) -> ChainTranslator:
    return ChainTranslator(
        store, KeyVault(os.urandom(32)), chain, AnchoringEngine(store, chain, clock)
    )


@pytest.fixture
async def records(translator: ChainTranslator, store: ChainStore) -> dict[str, AnchoredRecord]:
    """Ana's own answer, tutor Tom's feedback about Ana, and one still unanchored."""
    intake = AnchorIntake(translator)
    statements = {"own": by(1, "ana", "ana"), "feedback": by(2, "ana", "tutor-tom")}
    for name, st in statements.items():
        assert await intake.handle(recorded(st, "ana", "ana" if name == "own" else "tutor-tom"))
    await translator.engine.step(force=True)
    await ChainWatcher(store, translator.chain).catch_up()
    pending = by(3, "ana", "ana")
    assert await intake.handle(recorded(pending, "ana", "ana"))
    out = {}
    for name, st in [*statements.items(), ("pending", pending)]:
        row = await store.get_record(Domain.LEARNING, str(st["id"]))
        assert row is not None
        anchor = None
        if row.batch_id is not None and row.root is not None:
            anchor = AnchorEvidence(
                CHAIN_ID,
                CONTRACT,
                row.batch_id,
                row.domain,
                row.tx_hash or 0,
                row.block or 0,
                row.root,
                row.leaf,
                row.leaf_index or 0,
                row.proof or (),
                row.leaf_encoding,
            )
        out[name] = AnchoredRecord(
            statement_id=row.record_id,
            statement=st,
            signature=bytes.fromhex(row.signature),
            author=RecordAuthor(
                author_kind(row.author_id, "ana"),
                row.author_id,
                bytes.fromhex(row.public_key),
                "",
            ),
            anchor=anchor,
        )
    return out


def credential(records: list[AnchoredRecord], issuer: str = "did:key:placeholder") -> str:
    placeholder = did_key(b"\x01" * 32)
    unsigned = learning_record_credential(
        "urn:uuid:00000000-0000-4000-8000-00000000c001",
        Issuer(placeholder if issuer == "did:key:placeholder" else issuer, "Ana"),
        placeholder,
        records,
        FixedClock().now(),
        name="Learning record",
        description="Ana's interactions",
    )
    return json.dumps(unsigned)


async def test_learner_exports_own_and_attested_records_and_they_verify(
    translator: ChainTranslator, records: dict[str, AnchoredRecord], chain: FakeAnchorChain
) -> None:
    ana_key = await translator.keys.custodial_key("ana", create=False)
    tom_key = await translator.keys.custodial_key("tutor-tom", create=False)
    assert ana_key is not None and tom_key is not None
    # Ana's compilation of everything about her, signed with her key.
    doc = credential([records["own"], records["feedback"]])
    signed = await translator.credentials.sign(ANA, ISSUE, "ana", "ana", doc)
    assert signed.document["issuer"]["id"] == did_key(ana_key)  # written by the translator
    assert signed.document["credentialSubject"]["id"] == did_key(ana_key)
    assert signed.verification_method.startswith(did_key(ana_key) + "#")
    report = await verify_credential(
        signed.document, FakeChainReader(chain), now=FixedClock().now()
    )
    assert report.ok, [str(p) for p in report.problems]
    # Tom's feedback as a credential issued by Tom's key, at Ana's request.
    tom = await translator.credentials.sign(
        PASSPORT, ISSUE, "tutor-tom", "ana", credential([records["feedback"]])
    )
    assert tom.document["issuer"]["id"] == did_key(tom_key)
    report = await verify_credential(tom.document, FakeChainReader(chain), now=FixedClock().now())
    assert report.ok, [str(p) for p in report.problems]


async def test_open_badge_is_signed_too(
    translator: ChainTranslator, records: dict[str, AnchoredRecord]
) -> None:
    unsigned = open_badge_credential(
        "urn:uuid:00000000-0000-4000-8000-00000000c002",
        Issuer(did_key(b"\x01" * 32), "Ana"),
        did_key(b"\x01" * 32),
        Achievement("https://keiko.example/course/1", "Course", "A course", "Completed it"),
        [records["own"]],
        FixedClock().now(),
    )
    signed = await translator.credentials.sign(ANA, ISSUE, "ana", "ana", json.dumps(unsigned))
    assert all(c.ok for c in verify_proofs(signed.document))


async def test_a_key_signs_only_what_its_holder_stands_behind(
    translator: ChainTranslator, records: dict[str, AnchoredRecord]
) -> None:
    own, feedback = records["own"], records["feedback"]
    sign = translator.credentials.sign
    with pytest.raises(PermissionDenied, match="not written by tutor-tom"):
        await sign(ANA, ISSUE, "tutor-tom", "ana", credential([own, feedback]))
    with pytest.raises(PermissionDenied, match="only their own"):
        await sign(MALLORY, ISSUE, "mallory", "ana", credential([own]))
    with pytest.raises(PermissionDenied, match="not a record of this learner"):
        await sign(MALLORY, ISSUE, "mallory", "mallory", credential([own]))
    with pytest.raises(PermissionDenied, match="not a record of this learner"):
        await sign(PASSPORT, ISSUE, "ana", "bob", credential([own]))
    changed = copy.deepcopy(dict(own.statement))
    changed["result"] = {"score": {"scaled": 1.0}}
    forged = AnchoredRecord(own.statement_id, changed, own.signature, own.author, own.anchor)
    with pytest.raises(PermissionDenied, match="differs from the record as it was signed"):
        await sign(ANA, ISSUE, "ana", "ana", credential([forged]))
    assert own.anchor is not None
    moved = AnchorEvidence(**_moved(own.anchor))
    with pytest.raises(PermissionDenied, match="evidence is not the record's anchor"):
        await sign(ANA, ISSUE, "ana", "ana", credential([_with_anchor(own, moved)]))
    relabeled = AnchoredRecord(
        feedback.statement_id,
        feedback.statement,
        feedback.signature,
        RecordAuthor(AuthorKind.SELF, "tutor-tom", feedback.author.public_key),
        feedback.anchor,
    )
    with pytest.raises(PermissionDenied, match="author kind"):
        await sign(ANA, ISSUE, "ana", "ana", credential([relabeled]))
    with pytest.raises(ValidationError) as err:
        await sign(ANA, ISSUE, "ana", "ana", credential([records["pending"]]))
    assert err.value.field == "records[0]"  # the builder refuses an unanchored record
    pending = records["pending"]
    faked = _with_anchor(pending, own.anchor)
    with pytest.raises(FailedPrecondition, match="not anchored yet"):
        await sign(ANA, ISSUE, "ana", "ana", credential([faked]))
    with pytest.raises(ValidationError) as err:
        await sign(ANA, ISSUE, "ana", "ana", '{"type": ["VerifiableCredential"]}')
    assert err.value.field.startswith("document_json.")


def _moved(anchor: AnchorEvidence) -> dict[str, Any]:
    return {**{f: getattr(anchor, f) for f in AnchorEvidence.__slots__}, "leaf_index": 5}


def _with_anchor(record: AnchoredRecord, anchor: AnchorEvidence | None) -> AnchoredRecord:
    return AnchoredRecord(
        record.statement_id, record.statement, record.signature, record.author, anchor
    )


async def test_status_lists_are_signed_for_their_holder_only(
    translator: ChainTranslator, records: dict[str, AnchoredRecord]
) -> None:
    url = "https://keiko.test/credentials/status/1"
    doc = json.dumps(
        status_list_credential(url, "did:key:x", Bitstring.with_bits([3]), FixedClock().now())
    )
    signed = await translator.credentials.sign(ANA, STATUS, "ana", "", doc)
    ana_key = await translator.keys.custodial_key("ana", create=False)
    assert ana_key is not None and signed.document["issuer"] == did_key(ana_key)
    assert all(c.ok for c in verify_proofs(signed.document))
    assert (await translator.credentials.sign(PASSPORT, STATUS, "tutor-tom", "", doc)).document
    with pytest.raises(PermissionDenied, match="only the holder"):
        await translator.credentials.sign(ANA, STATUS, "tutor-tom", "", doc)
    with pytest.raises(ValidationError):
        await translator.credentials.sign(ANA, STATUS, "ana", "", credential([records["own"]]))


async def test_presentations_are_the_learners_over_their_credentials(
    translator: ChainTranslator, records: dict[str, AnchoredRecord]
) -> None:
    issued = await translator.credentials.sign(
        ANA, ISSUE, "ana", "ana", credential([records["own"]])
    )
    vp = json.dumps(
        presentation(
            "urn:uuid:00000000-0000-4000-8000-00000000e001",
            did_key(b"\x02" * 32),
            [issued.document],
        )
    )
    signed = await translator.credentials.sign(
        PASSPORT, PRESENT, "ana", "ana", vp, challenge="c-9", domain="jobs.example"
    )
    [rdfc, jcs] = signed.document["proof"]
    assert rdfc["proofPurpose"] == "authentication" and jcs["challenge"] == "c-9"
    assert signed.document["holder"] == issued.document["issuer"]["id"]
    with pytest.raises(ValidationError) as err:
        await translator.credentials.sign(PASSPORT, PRESENT, "ana", "ana", vp, domain="x")
    assert err.value.field == "challenge"
    with pytest.raises(PermissionDenied, match="only the learner presents"):
        await translator.credentials.sign(
            PASSPORT, PRESENT, "tutor-tom", "ana", vp, challenge="c", domain="d"
        )
    tom = await translator.credentials.sign(
        PASSPORT, ISSUE, "tutor-tom", "ana", credential([records["feedback"]])
    )
    ok = json.loads(vp)
    ok["verifiableCredential"].append(tom.document)  # also about Ana: presentable
    assert await translator.credentials.sign(
        ANA, PRESENT, "ana", "ana", json.dumps(ok), challenge="c", domain="d"
    )
    tampered = json.loads(vp)
    tampered["verifiableCredential"][0]["name"] = "Doctorate"
    with pytest.raises(ValidationError, match="signature invalid"):
        await translator.credentials.sign(
            ANA, PRESENT, "ana", "ana", json.dumps(tampered), challenge="c", domain="d"
        )
    mallorys = await translator.credentials.sign(MALLORY, STATUS, "mallory", "", _status_doc())
    foreign = json.loads(vp)
    foreign["verifiableCredential"] = [mallorys.document]
    with pytest.raises(ValidationError):
        await translator.credentials.sign(
            ANA, PRESENT, "ana", "ana", json.dumps(foreign), challenge="c", domain="d"
        )


def _status_doc() -> str:
    url = "https://keiko.test/credentials/status/9"
    return json.dumps(
        status_list_credential(url, "did:key:x", Bitstring.with_bits([]), FixedClock().now())
    )


def test_purpose_must_be_named() -> None:
    assert credential_purpose_from_pb(int(pb.CredentialPurpose.ISSUE)) is ISSUE
    with pytest.raises(ValidationError) as err:
        credential_purpose_from_pb(0)
    assert err.value.field == "purpose"

"""Independent verification of passport exports against a fake in-memory chain."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from nacl.signing import SigningKey

from chain.client.core import TxResult
from chain.client.events import ChainEvent
from chain.translator.batching import Batcher, BatchPolicy, Domain, SealedBatch
from chain.translator.felts import FELT_PRIME
from chain.translator.leaves import LEAF_ENCODING_V1 as V1
from chain.translator.leaves import compute_leaf
from chain.translator.signing import public_key_of, sign
from chain.verify import (
    AnchorProof,
    AnchorTransaction,
    BatchInfo,
    EntryStatus,
    Failure,
    InMemoryChainReader,
    KeyInfo,
    PassportExport,
    averify_passport,
    build_entry,
    parse_export,
    render_text,
    verify_passport,
)
from services.kit.clock import FixedClock
from services.kit.errors import ValidationError

KEY = SigningKey(bytes(range(32)))
GENERATED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ANCHOR_ADDRESS = 0xA11C


def statement(i: int) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "actor": {"objectType": "Agent", "mbox": "mailto:ana@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": f"https://keiko.example/courses/linear-algebra/class-2/q{i}"},
        "result": {"score": {"scaled": round(0.1 * (i % 10), 1)}},
        "timestamp": "2026-01-01T00:00:00Z",
    }


def make_passport(
    count: int = 10, batch_size: int = 4
) -> tuple[dict[str, Any], InMemoryChainReader]:
    """Sign ``count`` statements, batch and anchor them on a fake chain, export (a
    version 1 document, without authors: its entries are keiko.leaf.v1)."""
    clock = FixedClock()
    batcher: Batcher[int] = Batcher(Domain.LEARNING, BatchPolicy.of(batch_size, 500), clock)
    batches = []
    for i in range(count):
        batches += batcher.add(i)
    last = batcher.flush()
    if last is not None:
        batches.append(last)

    signed = {i: (statement(i), sign(statement(i), KEY)) for i in range(count)}
    pk = public_key_of(KEY)
    reader = InMemoryChainReader()
    entries = []
    for block, batch in enumerate(batches, start=100):
        leaves = [compute_leaf(signed[i][0], signed[i][1], pk, V1) for i in batch.items]
        sealed = SealedBatch.build(batch.batch_id, batch.domain, leaves)
        tx_hash = 0x7000 + block
        reader.add_batch(
            batch.batch_id,
            BatchInfo(sealed.root, sealed.leaf_count, Domain.LEARNING.felt, block),
            tx_hash,
        )
        for i, proof in zip(batch.items, sealed.proofs, strict=True):
            anchor = AnchorProof.from_inclusion(batch.batch_id, batch.domain, proof, tx_hash, block)
            entries.append(
                build_entry(f"stmt-{i}", signed[i][0], signed[i][1], pk, anchor, leaf_encoding=V1)
            )
    export = PassportExport("passport-ana", GENERATED_AT, tuple(entries), learner_id="ana")
    return json.loads(export.dumps()), reader


def only_failure(report: Any) -> Any:
    assert not report.ok
    (failed,) = report.failed
    return failed


def test_good_passport_verifies() -> None:
    document, reader = make_passport()
    report = verify_passport(json.dumps(document), reader)
    assert report.ok
    assert len(report.verified) == 10 and not report.failed
    assert report.passport_id == "passport-ana" and report.learner_id == "ana"
    # one chain read per distinct batch, root and transaction: 3 of each
    assert reader.reads == 9
    text = render_text(report)
    assert "RESULT: VERIFIED" in text and "stmt-0" in text and "stmt-9" in text
    assert "batch learning/3  leaf 1  block 102" in text


def test_export_roundtrip_and_format() -> None:
    document, _ = make_passport(3, 2)
    assert document["format"] == "keiko.passport.export" and document["version"] == 1
    assert document["leaf_encoding"] == "keiko.leaf.v1"
    assert document["tree_encoding"] == "keiko.merkle.v1"
    entry = document["entries"][0]
    assert set(entry) == {
        "entry_id",
        "statement",
        "statement_sha256",
        "signature",
        "public_key",
        "leaf",
        "anchor",
    }
    assert set(entry["anchor"]) == {
        "batch_id",
        "domain",
        "leaf_index",
        "proof",
        "root",
        "tx_hash",
        "block",
    }
    parsed = parse_export(document)
    assert json.loads(parsed.dumps()) == document


def test_tampered_statement_names_the_entry() -> None:
    document, reader = make_passport()
    document["entries"][5]["statement"]["result"]["score"]["scaled"] = 1.0
    failed = only_failure(verify_passport(document, reader))
    assert failed.entry_id == "stmt-5"
    assert failed.reason == "statement does not match signature"
    reasons = {p.reason for p in failed.problems}
    assert Failure.PROOF_FAILED in reasons and Failure.LEAF_MISMATCH in reasons


def test_tampered_signature_names_the_entry() -> None:
    document, reader = make_passport()
    sig = document["entries"][2]["signature"]
    document["entries"][2]["signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    failed = only_failure(verify_passport(document, reader))
    assert failed.entry_id == "stmt-2" and failed.reason == "signature invalid"
    assert Failure.PROOF_FAILED in {p.reason for p in failed.problems}


def test_tampered_proof_sibling_names_the_entry() -> None:
    document, reader = make_passport()
    proof = document["entries"][7]["anchor"]["proof"]
    proof[1] = hex(int(proof[1], 16) ^ 1)
    failed = only_failure(verify_passport(document, reader))
    assert failed.entry_id == "stmt-7" and failed.reason == "proof does not reach root"


def test_tampered_root_in_export_is_caught_against_the_chain() -> None:
    document, reader = make_passport()
    document["entries"][0]["anchor"]["root"] = hex(12345)
    failed = only_failure(verify_passport(document, reader))
    assert failed.entry_id == "stmt-0" and failed.reason == "batch root mismatch"
    reasons = [p.reason for p in failed.problems]
    assert Failure.ROOT_NOT_ANCHORED in reasons
    assert Failure.PROOF_FAILED not in reasons  # the proof is checked against the chain root


def test_root_forged_consistently_is_not_anchored() -> None:
    """An attacker rebuilds the tree with a forged statement and ships a matching root:
    the chain does not know that root, so every forged entry fails."""
    document, reader = make_passport(2, 2)
    forged = statement(99)
    forged_sig = sign(forged, SigningKey(b"\x09" * 32))
    forged_pk = public_key_of(SigningKey(b"\x09" * 32))
    leaves = [compute_leaf(forged, forged_sig, forged_pk, V1), 777]
    sealed = SealedBatch.build(
        int(document["entries"][0]["anchor"]["batch_id"], 16), Domain.LEARNING, leaves
    )
    entry = build_entry(
        "stmt-0",
        forged,
        forged_sig,
        forged_pk,
        AnchorProof.from_inclusion(sealed.batch_id, Domain.LEARNING, sealed.proofs[0], 0x7064, 100),
        leaf_encoding=V1,
    )
    document["entries"][0] = entry.to_json()
    failed = only_failure(verify_passport(document, reader))
    assert failed.entry_id == "stmt-0" and failed.reason == "batch root mismatch"
    assert {Failure.ROOT_NOT_ANCHORED, Failure.PROOF_FAILED} <= {p.reason for p in failed.problems}
    # and if the learner's key is known, the foreign key is named too
    report = verify_passport(document, reader, expected_public_keys=[public_key_of(KEY)])
    assert Failure.KEY_NOT_LEARNERS in {p.reason for p in report.failed[0].problems}


def test_unknown_batch_is_root_not_anchored() -> None:
    document, reader = make_passport()
    document["entries"][3]["anchor"]["batch_id"] = hex((Domain.LEARNING.felt << 64) | 999)
    failed = only_failure(verify_passport(document, reader))
    assert failed.entry_id == "stmt-3" and failed.reason == "root not anchored on chain"


def test_chain_root_not_anchored() -> None:
    document, _ = make_passport(2, 2)
    entry = document["entries"][0]["anchor"]
    lying = InMemoryChainReader()
    lying._batches[int(entry["batch_id"], 16)] = BatchInfo(
        int(entry["root"], 16), 2, "learning", entry["block"]
    )
    report = verify_passport(document, lying)
    assert [e.reason for e in report.failed] == ["root not anchored on chain"] * 2


def test_index_domain_and_block_mismatches() -> None:
    document, reader = make_passport()
    document["entries"][0]["anchor"]["leaf_index"] = 4  # batch of 4 leaves
    document["entries"][1]["anchor"]["domain"] = "reputation"
    document["entries"][2]["anchor"]["block"] = 1
    document["entries"][3]["anchor"]["proof"].append("0x1")
    report = verify_passport(document, reader)
    by_id = {e.entry_id: e for e in report.failed}
    assert by_id["stmt-0"].reason == "leaf index outside the batch"
    assert by_id["stmt-1"].reason == "batch domain mismatch"
    assert by_id["stmt-2"].reason == "anchor block mismatch"
    assert by_id["stmt-3"].reason == "proof does not reach root"
    assert len(report.verified) == 6


def test_the_named_transaction_must_be_the_one_that_anchored_the_batch() -> None:
    document, reader = make_passport()
    entries = document["entries"]
    batch_id = int(entries[0]["anchor"]["batch_id"], 16)
    assert all(int(e["anchor"]["batch_id"], 16) == batch_id for e in entries[:4])
    batch = reader.get_batch(batch_id)
    assert batch is not None
    anchors = frozenset({(batch_id, batch.root)})
    reader.add_transaction(0xBAD, AnchorTransaction(batch.block, False, anchors))
    reader.add_transaction(0xB10C, AnchorTransaction(batch.block + 7, True, anchors))
    other = frozenset({(batch_id + 1, batch.root), (batch_id, batch.root + 1)})
    reader.add_transaction(0xE15E, AnchorTransaction(batch.block, True, other))
    for entry, tx_hash in zip(entries, ("0xdead", "0xbad", "0xb10c", "0xe15e"), strict=False):
        entry["anchor"]["tx_hash"] = tx_hash
    report = verify_passport(document, reader)
    reason = "anchor transaction mismatch"
    assert {e.entry_id: str(e.problems[0]) for e in report.failed} == {
        "stmt-0": f"{reason}: transaction 0xdead is not on the chain",
        "stmt-1": f"{reason}: transaction 0xbad reverted",
        "stmt-2": f"{reason}: transaction 0xb10c is in block {batch.block + 7}, "
        f"the batch in {batch.block}",
        "stmt-3": f"{reason}: transaction 0xe15e did not anchor batch {hex(batch_id)} "
        f"with root {hex(batch.root)}",
    }
    assert all(len(e.problems) == 1 for e in report.failed)
    assert len(report.verified) == 6


def test_moving_a_proof_to_another_index_fails() -> None:
    document, reader = make_passport()
    a, b = document["entries"][0]["anchor"], document["entries"][1]["anchor"]
    a["leaf_index"], b["leaf_index"] = b["leaf_index"], a["leaf_index"]
    report = verify_passport(document, reader)
    assert {e.entry_id for e in report.failed} == {"stmt-0", "stmt-1"}


def test_malformed_entries_are_reported_not_raised() -> None:
    document, reader = make_passport(4, 4)
    document["entries"][0]["signature"] = "zz"
    del document["entries"][1]["entry_id"]
    document["entries"][2]["anchor"]["proof"] = [hex(FELT_PRIME)]
    document["entries"][3]["statement"]["result"]["score"]["raw"] = 2**60
    report = verify_passport(document, reader)
    assert [e.status for e in report.entries] == [EntryStatus.FAILED] * 4
    assert all(e.reason == "malformed entry" for e in report.entries)
    assert report.entries[0].entry_id == "stmt-0" and "signature" in str(
        report.entries[0].problems[0]
    )
    assert report.entries[1].label == "#2"
    text = render_text(report)
    assert "RESULT: FAILED: 4 of 4" in text and "#2 (malformed entry)" in text


def test_unanchored_entries() -> None:
    document, reader = make_passport(3, 3)
    document["entries"][2]["anchor"] = None
    strict = verify_passport(document, reader)
    assert only_failure(strict).reason == "entry not anchored"
    lenient = verify_passport(document, reader, require_anchored=False)
    assert lenient.ok and len(lenient.unanchored) == 1 and len(lenient.verified) == 2
    assert "not yet anchored" in render_text(lenient)


class BrokenReader:
    def is_root_anchored(self, root: int) -> bool:
        raise ConnectionError("connection refused")

    def get_batch(self, batch_id: int) -> BatchInfo | None:
        raise ConnectionError("connection refused")

    def anchor_transaction(self, tx_hash: int) -> AnchorTransaction | None:
        raise ConnectionError("connection refused")

    def key_binding(self, public_key: bytes) -> KeyInfo | None:
        raise ConnectionError("connection refused")


def test_chain_outage_fails_entries_with_a_reason() -> None:
    document, _ = make_passport(2, 2)
    report = verify_passport(document, BrokenReader())
    assert [e.reason for e in report.failed] == ["chain read failed"] * 2
    assert "ConnectionError" in str(report.failed[0].problems[0])


class AsyncReader:
    def __init__(self, inner: InMemoryChainReader) -> None:
        self.inner = inner

    async def is_root_anchored(self, root: int) -> bool:
        await asyncio.sleep(0)
        return self.inner.is_root_anchored(root)

    async def get_batch(self, batch_id: int) -> BatchInfo | None:
        await asyncio.sleep(0)
        return self.inner.get_batch(batch_id)

    async def anchor_transaction(self, tx_hash: int) -> AnchorTransaction | None:
        await asyncio.sleep(0)
        return self.inner.anchor_transaction(tx_hash)

    async def key_binding(self, public_key: bytes) -> KeyInfo | None:
        await asyncio.sleep(0)
        return self.inner.key_binding(public_key)


def test_async_verification() -> None:
    document, reader = make_passport()
    report = asyncio.run(averify_passport(document, AsyncReader(reader)))
    assert report.ok and len(report.verified) == 10
    bad = copy.deepcopy(document)
    bad["entries"][9]["statement"]["verb"]["id"] = "http://adlnet.gov/expapi/verbs/passed"
    report = asyncio.run(averify_passport(bad, AsyncReader(reader), max_concurrency=1))
    assert only_failure(report).entry_id == "stmt-9"
    with pytest.raises(ValidationError):
        asyncio.run(averify_passport(bad, AsyncReader(reader), max_concurrency=0))


def test_reader_returning_garbage_is_a_chain_failure() -> None:
    document, _ = make_passport(2, 2)
    reader = InMemoryChainReader()
    batch_id = int(document["entries"][0]["anchor"]["batch_id"], 16)
    reader._batches[batch_id] = BatchInfo(-5, 0, "learning", 1)  # type: ignore[arg-type]
    report = verify_passport(document, reader)
    assert [e.reason for e in report.failed] == ["chain read failed"] * 2


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=4), "version"),
        (lambda d: d.update(leaf_encoding="keiko.leaf.v2"), "leaf_encoding"),
        (lambda d: d.update(entries="x"), "entries"),
        (lambda d: d.update(generated_at="yesterday"), "generated_at"),
        (lambda d: d.pop("passport_id"), "passport_id"),
    ],
)
def test_unusable_documents_raise(mutate: Any, field: str) -> None:
    document, reader = make_passport(1, 1)
    mutate(document)
    with pytest.raises(ValidationError) as err:
        verify_passport(document, reader)
    assert err.value.field == field


def test_not_json_raises() -> None:
    with pytest.raises(ValidationError):
        verify_passport("{not json", InMemoryChainReader())
    with pytest.raises(ValidationError):
        verify_passport("[]", InMemoryChainReader())


def test_report_json() -> None:
    document, reader = make_passport(2, 2)
    document["entries"][1]["signature"] = "00" * 64
    data = verify_passport(document, reader).to_json()
    assert data["ok"] is False and data["counts"] == {
        "entries": 2,
        "verified": 1,
        "unanchored": 0,
        "failed": 1,
    }
    assert data["entries"][1]["reason"] == "signature invalid"
    json.dumps(data)


def test_anchor_contract_adapter() -> None:
    """The chain client's binding returns AnchoredBatch-like objects; the adapter maps them."""
    from dataclasses import dataclass

    from chain.verify import AnchorContractReader

    @dataclass(frozen=True)
    class AnchoredBatch:  # the shape of chain.client.contracts.AnchoredBatch
        batch_id: int
        root: int
        leaf_count: int
        domain: str
        anchored_by: int
        block_number: int
        block_timestamp: int

    document, reader = make_passport(5, 4)

    class FakeAnchorContract:
        async def get_batch(self, batch_id: int) -> AnchoredBatch | None:
            info = reader.get_batch(batch_id)
            if info is None:
                return None
            return AnchoredBatch(
                batch_id, info.root, info.leaf_count, "learning", 0x1, info.block, 0
            )

        async def is_root_anchored(self, root: int) -> bool:
            return reader.is_root_anchored(root)

        async def get_key(self, public_key: bytes) -> None:
            return None

        address = ANCHOR_ADDRESS

        async def transaction_events(self, tx_hash: int) -> TxResult | None:
            tx = reader.anchor_transaction(tx_hash)
            if tx is None:
                return None
            events = [
                ChainEvent(
                    "interaction_anchor",
                    name,
                    from_address,
                    {"batch_id": batch_id, "root": root},
                    [],
                    [],
                )
                for batch_id, root in tx.anchors
                # the same event from another contract, another event: both ignored
                for name, from_address in (
                    ("BatchAnchored", ANCHOR_ADDRESS),
                    ("BatchAnchored", ANCHOR_ADDRESS + 1),
                    ("RecordAnchored", ANCHOR_ADDRESS),
                )
            ]
            return TxResult(tx_hash, tx.block, "SUCCEEDED", None, 0, events)

    adapter = AnchorContractReader(FakeAnchorContract())
    report = asyncio.run(averify_passport(document, adapter))
    assert report.ok and len(report.verified) == 5
    document["entries"][4]["anchor"]["batch_id"] = hex((Domain.LEARNING.felt << 64) | 77)
    report = asyncio.run(averify_passport(document, adapter))
    assert only_failure(report).reason == "root not anchored on chain"

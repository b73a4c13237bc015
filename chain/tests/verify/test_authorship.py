"""Authorship in exports: each entry says who wrote it and whose key signed it; the
verifier checks that against the signed statement and the chain's key directory, and a
tampered entry fails alone, named."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from nacl.signing import SigningKey

from chain.client import TransactionRejected
from chain.translator.authors import KEIKO_HOME_PAGE, Author, AuthorKind, subject_of
from chain.translator.batching import Domain
from chain.translator.leaves import LEAF_ENCODING
from chain.translator.merkle import MerkleTree
from chain.translator.signing import public_key_of, sign
from chain.verify import (
    AnchorProof,
    AuthorReport,
    BatchInfo,
    EntryStatus,
    Failure,
    InMemoryChainReader,
    KeyInfo,
    PassportExport,
    Registration,
    build_entry,
    render_text,
    verify_passport,
)
from chain.verify.reader import AnchorContractReader, NoKeyDirectory
from services.kit.errors import ValidationError

ANA = SigningKey(bytes(range(32)))
TOM = SigningKey(bytes(range(1, 33)))
SERVICE = SigningKey(bytes(range(2, 34)))
MALLORY = SigningKey(bytes(range(3, 35)))
BATCH = (2 << 64) | 1  # learning/1 style id; any felt will do
BLOCK = 40
TX = 0x7777


def agent(user: str) -> dict[str, Any]:
    return {"objectType": "Agent", "account": {"homePage": KEIKO_HOME_PAGE, "name": user}}


def statement(i: int, authority: str | None) -> dict[str, Any]:
    st: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "actor": agent("ana"),
        "verb": {"id": "http://adlnet.gov/expapi/verbs/commented"},
        "object": {"id": f"https://keiko.network/interactions/{i}"},
        "timestamp": "2026-01-01T00:00:00Z",
    }
    if authority is not None:
        st["authority"] = agent(authority)
    return st


# (entry id, statement, signing key, stated author, legacy)
def plan() -> list[tuple[str, dict[str, Any], SigningKey, Author, bool]]:
    def author(kind: AuthorKind, who: str, name: str, key: SigningKey) -> Author:
        return Author(kind, who, name, public_key_of(key))

    return [
        ("own", statement(1, "ana"), ANA, author(AuthorKind.SELF, "ana", "", ANA), False),
        (
            "feedback",
            statement(2, "tutor-tom"),
            TOM,
            author(AuthorKind.USER, "tutor-tom", "Tom Tutor", TOM),
            False,
        ),
        (
            "attended",
            statement(3, "keiko-learning"),
            SERVICE,
            author(AuthorKind.SERVICE, "keiko-learning", "Keiko learning service", SERVICE),
            False,
        ),
        (
            "old-feedback",
            statement(4, "tutor-tom"),
            ANA,
            author(AuthorKind.USER, "tutor-tom", "Tom Tutor", ANA),
            True,
        ),
    ]


def bound_reader() -> InMemoryChainReader:
    reader = InMemoryChainReader()
    reader.bind_key(public_key_of(ANA), KeyInfo(subject_of("ana"), "custodial", 3))
    reader.bind_key(public_key_of(TOM), KeyInfo(subject_of("tutor-tom"), "device", 4))
    reader.bind_key(public_key_of(SERVICE), KeyInfo(subject_of("keiko-learning"), "service", 2))
    return reader


def make_passport(
    reader: InMemoryChainReader | None = None, encoding: str = LEAF_ENCODING
) -> tuple[dict[str, Any], Any]:
    reader = reader or bound_reader()
    items = plan()
    signatures = [sign(st, key) for _, st, key, _, _ in items]
    entries = [
        build_entry(
            eid, st, sig, public_key_of(key), None, author, legacy=legacy, leaf_encoding=encoding
        )
        for (eid, st, key, author, legacy), sig in zip(items, signatures, strict=True)
    ]
    tree = MerkleTree([e.leaf for e in entries if e.leaf is not None])
    reader.add_batch(BATCH, BatchInfo(tree.root, len(entries), Domain.LEARNING.felt, BLOCK), TX)
    anchored = [
        build_entry(
            e.entry_id,
            e.statement,
            e.signature,
            e.public_key,
            AnchorProof.from_inclusion(BATCH, Domain.LEARNING, tree.proof(i), TX, BLOCK),
            e.author,
            legacy=e.legacy,
            leaf_encoding=encoding,
        )
        for i, e in enumerate(entries)
    ]
    export = PassportExport(
        "passport-ana", datetime(2026, 1, 2, tzinfo=UTC), tuple(anchored), "ana"
    )
    return json.loads(export.dumps()), reader


def entry(document: dict[str, Any], entry_id: str) -> dict[str, Any]:
    return next(e for e in document["entries"] if e["entry_id"] == entry_id)


def author_of(report: Any) -> AuthorReport:
    assert report.author is not None
    return report.author


def only_failure(report: Any) -> Any:
    assert not report.ok
    (failed,) = report.failed
    return failed


def test_authors_are_stated_checked_and_looked_up_on_chain() -> None:
    document, reader = make_passport()
    assert document["version"] == 3
    assert entry(document, "feedback")["author"] == {
        "kind": "user",
        "id": "tutor-tom",
        "name": "Tom Tutor",
        "public_key": public_key_of(TOM).hex(),
    }
    assert entry(document, "old-feedback")["legacy"] is True
    report = verify_passport(document, reader)
    assert report.ok and len(report.verified) == 4
    authors = {e.entry_id: author_of(e) for e in report.entries}
    assert authors["own"].label == "self"
    assert authors["feedback"].label == "attested by Tom Tutor (tutor-tom)"
    assert authors["attended"].label == "attested by Keiko learning service (Keiko service)"
    assert authors["old-feedback"].label == (
        "recorded by Tom Tutor, signed with the learner's key (legacy)"
    )
    assert authors["feedback"].registration is Registration.REGISTERED
    assert (authors["feedback"].custody, authors["feedback"].block) == ("device", 4)
    assert authors["old-feedback"].holder == "ana"
    text = render_text(report)
    assert "author: attested by Tom Tutor (tutor-tom); the author's key" in text
    assert "registered on chain as a device key at block 4" in text
    assert report.to_json()["entries"][1]["author"]["key_holder"] == "tutor-tom"


def test_a_key_not_in_the_directory_is_reported_not_registered() -> None:
    reader = InMemoryChainReader()  # no key is bound
    document, reader = make_passport(reader)
    report = verify_passport(document, reader)
    assert report.ok  # truthful, not a failure: keys are bound by a background job
    assert {author_of(e).registration for e in report.entries} == {Registration.NOT_REGISTERED}
    assert "not registered on chain" in render_text(report)


def test_tutor_entry_presented_as_the_learners_own_fails_alone() -> None:
    document, reader = make_passport()
    forged = entry(document, "feedback")
    forged["author"] = {"kind": "self", "id": "ana", "public_key": forged["public_key"]}
    failed = only_failure(verify_passport(document, reader))
    assert failed.entry_id == "feedback"
    assert failed.reason == Failure.NOT_LEARNERS_OWN.value
    assert "written by tutor-tom" in str(failed.problems[0])
    # The tampered label, the key checks: the key is the tutor's on chain, not ana's.
    assert Failure.KEY_NOT_AUTHORS in {p.reason for p in failed.problems}


def test_a_statement_signed_by_another_key_presented_as_the_learners_fails_alone() -> None:
    document, reader = make_passport()
    own = entry(document, "own")
    # Someone holding another registered key signs ana's own statement as if it were hers.
    own["signature"] = sign(own["statement"], TOM).hex()
    own["public_key"] = own["author"]["public_key"] = public_key_of(TOM).hex()
    own.pop("leaf")
    failed = only_failure(verify_passport(document, reader))
    assert failed.entry_id == "own"
    reasons = {p.reason for p in failed.problems}
    assert Failure.KEY_NOT_AUTHORS in reasons  # bound on chain to tutor-tom, not ana
    assert Failure.PROOF_FAILED in reasons  # and the anchored leaf named the real key


def test_an_attested_entry_with_a_swapped_author_key_fails_alone() -> None:
    document, reader = make_passport()
    swapped = copy.deepcopy(document)
    entry(swapped, "feedback")["author"]["public_key"] = public_key_of(MALLORY).hex()
    failed = only_failure(verify_passport(swapped, reader))
    assert (failed.entry_id, failed.reason) == ("feedback", Failure.AUTHOR_KEY_MISMATCH.value)

    # Key and signature swapped together: a valid signature by a key that is not the
    # tutor's (bound to someone else), and a leaf the chain never anchored.
    resigned = copy.deepcopy(document)
    feedback = entry(resigned, "feedback")
    feedback["signature"] = sign(feedback["statement"], SERVICE).hex()
    feedback["public_key"] = feedback["author"]["public_key"] = public_key_of(SERVICE).hex()
    feedback.pop("leaf")
    failed = only_failure(verify_passport(resigned, reader))
    assert failed.entry_id == "feedback"
    assert {Failure.KEY_NOT_AUTHORS, Failure.PROOF_FAILED} <= {p.reason for p in failed.problems}


def test_an_attested_author_must_be_the_signed_authority() -> None:
    document, reader = make_passport()
    relabeled = entry(document, "attended")
    relabeled["author"]["id"] = "tutor-tom"  # claim the tutor attested it
    failed = only_failure(verify_passport(document, reader))
    assert (failed.entry_id, failed.reason) == ("attended", Failure.AUTHOR_NOT_AUTHORITY.value)
    assert "written by keiko-learning" in str(failed.problems[0])


def test_a_legacy_entry_must_be_signed_by_the_learners_key() -> None:
    document, reader = make_passport()
    entry(document, "feedback")["legacy"] = True  # claim ana's key signed the tutor's entry
    failed = only_failure(verify_passport(document, reader))
    assert (failed.entry_id, failed.reason) == ("feedback", Failure.KEY_NOT_AUTHORS.value)


def test_an_entry_about_someone_else_fails() -> None:
    document, reader = make_passport()
    document["learner_id"] = "bo"
    report = verify_passport(document, reader)
    assert {e.reason for e in report.failed} == {Failure.ENTRY_NOT_LEARNERS.value}
    assert len(report.failed) == 4


def test_revocation_matters_only_after_it() -> None:
    reader = bound_reader()
    reader.bind_key(public_key_of(TOM), KeyInfo(subject_of("tutor-tom"), "device", 4, BLOCK))
    document, reader = make_passport(reader)
    report = verify_passport(document, reader)
    assert report.ok  # anchored at the block it was revoked: still valid
    assert author_of(report.entries[1]).registration is Registration.REVOKED
    reader.bind_key(public_key_of(TOM), KeyInfo(subject_of("tutor-tom"), "device", 4, BLOCK - 1))
    failed = only_failure(verify_passport(document, reader))
    assert (failed.entry_id, failed.reason) == ("feedback", Failure.KEY_REVOKED.value)


def test_an_unreadable_key_directory_fails_only_the_entries_of_that_key() -> None:
    document, reader = make_passport()

    class Broken(InMemoryChainReader):
        def key_binding(self, public_key: bytes) -> KeyInfo | None:
            if public_key == public_key_of(SERVICE):
                raise ConnectionError("node down")
            return super().key_binding(public_key)

    broken = Broken()
    broken.__dict__.update(reader.__dict__)
    failed = only_failure(verify_passport(document, broken))
    assert (failed.entry_id, failed.reason) == ("attended", Failure.CHAIN_READ_FAILED.value)
    assert author_of(failed).registration is Registration.UNREADABLE


def test_version_1_documents_still_verify_without_authors() -> None:
    document, reader = make_passport(encoding="keiko.leaf.v1")  # as they were then
    document["version"] = 1
    for e in document["entries"]:
        e.pop("author")
        e.pop("legacy", None)
    report = verify_passport(document, reader)
    assert report.ok and all(e.author is None for e in report.entries)
    assert "author: not stated (a version 1 export)" in render_text(report)
    document["version"] = 2  # a version 2 document must state them
    assert {e.status for e in verify_passport(document, reader).entries} == {EntryStatus.FAILED}


def test_a_chain_without_a_key_directory_is_said_so_and_fails_nothing() -> None:
    document, reader = make_passport()

    class OldChain(InMemoryChainReader):
        def key_binding(self, public_key: bytes) -> KeyInfo | None:
            raise NoKeyDirectory("anchor contract deployed before the key directory")

    old = OldChain()
    old.__dict__.update(reader.__dict__)
    report = verify_passport(document, old)
    assert report.ok
    assert {author_of(e).registration for e in report.entries} == {Registration.NO_DIRECTORY}
    assert "no key directory on this chain" in render_text(report)


def test_the_contract_adapter_tells_a_missing_directory_from_an_outage() -> None:
    class Contract:
        address = 0xA
        error: Exception

        async def get_key(self, public_key: bytes) -> None:
            raise self.error

    contract = Contract()
    reader = AnchorContractReader(contract)  # type: ignore[arg-type]
    contract.error = TransactionRejected(21, "Requested entry point does not exist")
    with pytest.raises(NoKeyDirectory):
        asyncio.run(reader.key_binding(bytes(32)))
    contract.error = TransactionRejected(63, "unexpected error")
    with pytest.raises(TransactionRejected):
        asyncio.run(reader.key_binding(bytes(32)))


def test_version_2_documents_still_verify_their_entries_as_v1() -> None:
    """A version 2 export (authors, one document-level keiko.leaf.v1) reads as before: an
    entry member naming another encoding is not part of that format and changes nothing."""
    document, reader = make_passport(encoding="keiko.leaf.v1")
    document["version"] = 2
    document["leaf_encoding"] = "keiko.leaf.v1"
    for e in document["entries"]:
        e.pop("leaf_encoding")
    report = verify_passport(document, reader)
    assert report.ok and {e.leaf_encoding for e in report.entries} == {"keiko.leaf.v1"}
    document["entries"][0]["leaf_encoding"] = "keiko.leaf.v2"
    assert verify_passport(document, reader).ok
    document["leaf_encoding"] = "keiko.leaf.v2"  # version 2 knew one encoding only
    with pytest.raises(ValidationError):
        verify_passport(document, reader)

"""Keiko's independent credential verifier: a credential verifies with its proofs, status
and anchors read from the chain; changing any claim, the proof, the evidence or the
status fails with a named reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from chain.credentials.records import AuthorKind
from chain.credentials.status_list import StatusEntry
from chain.tests.credentials.factory import (
    ANA,
    CHAIN_ID,
    CONTRACT,
    MALLORY,
    NOW,
    TUTOR,
    Ledger,
    StatusLists,
    badge_credential,
    person,
    record_credential,
    signed_presentation,
    statement,
)
from chain.translator.authors import subject_of
from chain.verify.credentials import (
    ChainExpectation,
    CredentialFailure,
    CredentialReport,
    PresentationReport,
    StatusState,
    verify_credential,
    verify_document,
    verify_presentation,
)
from chain.verify.reader import KeyInfo

Doc = dict[str, Any]


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def lists() -> StatusLists:
    return StatusLists()


def own_records(ledger: Ledger, count: int = 2) -> list[Any]:
    return ledger.anchor([(statement(ANA, n), ANA, AuthorKind.SELF) for n in range(count)])


async def check(doc: Doc, ledger: Ledger, lists: StatusLists | None = None) -> CredentialReport:
    return await verify_credential(
        doc,
        ledger.reader,
        status_source=lists,
        now=NOW,
        chain=ChainExpectation(CHAIN_ID, CONTRACT),
    )


async def test_learning_record_credential_verifies_against_the_chain(
    ledger: Ledger, lists: StatusLists
) -> None:
    url = lists.publish(ANA, revoked=[9])
    credential = record_credential(ANA, ANA, own_records(ledger), status=StatusEntry(url, 3))
    report = await check(credential, ledger, lists)
    assert report.ok, report.problems
    assert report.status is StatusState.ACTIVE
    assert [r.status.value for r in report.records] == ["verified", "verified"]
    assert [p.cryptosuite for p in report.proofs] == ["eddsa-rdfc-2022", "eddsa-jcs-2022"]
    assert report.to_json()["kind"] == "learning_record"
    ledger.reader.reads = 0
    await check(credential, ledger, lists)
    assert ledger.reader.reads > 0  # roots come from the chain on every verification


async def test_records_anchored_in_either_leaf_encoding_verify(ledger: Ledger) -> None:
    """A credential of a record anchored before keiko.leaf.v2 and one anchored since: each
    evidence names its record's encoding and each verifies in it. Evidence naming the
    other encoding, or one the verifier does not know, fails that record alone (here
    issued and signed so: the proofs are valid, the leaf is not)."""
    [old] = ledger.anchor([(statement(ANA, 1), ANA, AuthorKind.SELF)], "keiko.leaf.v1")
    [new] = ledger.anchor([(statement(ANA, 2), ANA, AuthorKind.SELF)], "keiko.leaf.v2")
    credential = record_credential(ANA, ANA, [old, new])
    assert [e["leafEncoding"] for e in credential["evidence"]] == [
        "keiko.leaf.v1",
        "keiko.leaf.v2",
    ]
    report = await check(credential, ledger)
    assert report.ok, report.problems
    assert [r.leaf_encoding for r in report.records] == ["keiko.leaf.v1", "keiko.leaf.v2"]
    for encoding, reason in (
        ("keiko.leaf.v2", "leaf does not match entry data"),
        ("keiko.leaf.v7", "unknown leaf encoding"),
    ):
        assert old.anchor is not None
        relabelled = replace(old, anchor=replace(old.anchor, leaf_encoding=encoding))
        report = await check(record_credential(ANA, ANA, [relabelled, new]), ledger)
        assert report.reasons == [CredentialFailure.RECORD_FAILED], report.problems
        assert [r.status.value for r in report.records] == ["failed", "verified"]
        assert report.records[0].reason == reason


async def test_attested_record_issued_by_its_author(ledger: Ledger) -> None:
    [record] = ledger.anchor([(statement(ANA, 7, author=TUTOR), TUTOR, AuthorKind.USER)])
    report = await check(record_credential(TUTOR, ANA, [record]), ledger)
    assert report.ok, report.problems


async def test_open_badge_verifies(ledger: Ledger) -> None:
    report = await check(badge_credential(ANA, ANA, own_records(ledger, 1)), ledger)
    assert report.ok, report.problems and report.kind == "open_badge"


def _set(path: list[Any], value: Any) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


RECORD = ["credentialSubject", "learningRecord", 0]
EVIDENCE = ["evidence", 0]

TAMPERING: dict[str, tuple[Callable[[Doc], None], set[CredentialFailure]]] = {
    "claim: the score": (
        _set([*RECORD, "statement", "result", "score", "scaled"], 1.0),
        {CredentialFailure.PROOF_INVALID, CredentialFailure.RECORD_FAILED},
    ),
    "claim: the credential's name": (
        _set(["name"], "Doctorate"),
        {CredentialFailure.PROOF_INVALID},
    ),
    "claim: the subject": (
        _set(["credentialSubject", "id"], MALLORY.did),
        {CredentialFailure.PROOF_INVALID, CredentialFailure.AUTHOR_MISMATCH},
    ),
    "proof: the signature": (
        _set(["proof", 0, "proofValue"], "z" + "1" * 87),
        {CredentialFailure.PROOF_INVALID},
    ),
    "proof: the JCS proof removed": (
        lambda doc: doc["proof"].pop(1),
        {CredentialFailure.NO_JCS_PROOF},
    ),
    "proof: re-signed by another key": (
        _set(["proof", 1, "verificationMethod"], MALLORY.method),
        {CredentialFailure.PROOF_INVALID},
    ),
    "evidence: the leaf index": (
        _set([*EVIDENCE, "leafIndex"], 1),
        {CredentialFailure.PROOF_INVALID, CredentialFailure.RECORD_FAILED},
    ),
    "evidence: the root": (
        _set([*EVIDENCE, "merkleRoot"], "0x1234"),
        {CredentialFailure.PROOF_INVALID, CredentialFailure.RECORD_FAILED},
    ),
    "evidence: the inclusion proof order": (
        lambda doc: doc["evidence"][0]["inclusionProof"].reverse(),
        {CredentialFailure.PROOF_INVALID, CredentialFailure.RECORD_FAILED},
    ),
    "evidence: the contract": (
        _set([*EVIDENCE, "contract"], "0x99"),
        {CredentialFailure.PROOF_INVALID, CredentialFailure.WRONG_CONTRACT},
    ),
    "evidence: removed": (
        lambda doc: doc.pop("evidence"),
        {CredentialFailure.PROOF_INVALID, CredentialFailure.NOT_ANCHORED},
    ),
    "status: another slot": (
        _set(["credentialStatus", "statusListIndex"], "9"),
        {CredentialFailure.PROOF_INVALID, CredentialFailure.REVOKED},
    ),
    "status: removed": (
        lambda doc: doc.pop("credentialStatus"),
        {CredentialFailure.PROOF_INVALID},
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPERING))
async def test_any_change_fails_with_a_reason(
    name: str, ledger: Ledger, lists: StatusLists
) -> None:
    url = lists.publish(ANA, revoked=[9])
    records = own_records(ledger, 4)
    credential = record_credential(ANA, ANA, records, status=StatusEntry(url, 3))
    change, expected = TAMPERING[name]
    tampered = copy.deepcopy(credential)
    change(tampered)
    report = await check(tampered, ledger, lists)
    assert not report.ok
    assert set(report.reasons) == expected, [str(p) for p in report.problems]
    assert all(str(p) for p in report.problems)


async def test_revoked_credential_fails(ledger: Ledger, lists: StatusLists) -> None:
    url = lists.publish(ANA, revoked=[3])
    credential = record_credential(ANA, ANA, own_records(ledger), status=StatusEntry(url, 3))
    report = await check(credential, ledger, lists)
    assert report.reasons == [CredentialFailure.REVOKED]
    assert report.status is StatusState.REVOKED
    assert "bit 3" in str(report.problems[0])


async def test_status_list_forged_by_another_key_or_unreachable(
    ledger: Ledger, lists: StatusLists
) -> None:
    url = lists.publish(ANA)
    credential = record_credential(ANA, ANA, own_records(ledger), status=StatusEntry(url, 3))
    lists.publish(MALLORY, name="1")  # same URL, Mallory's list claiming nothing is revoked
    report = await check(credential, ledger, lists)
    assert report.reasons == [CredentialFailure.STATUS_INVALID]
    assert report.status is StatusState.UNCHECKED
    forged = copy.deepcopy(lists.documents[url])
    lists.publish(ANA, name="1")
    forged = copy.deepcopy(lists.documents[url])
    forged["credentialSubject"]["encodedList"] = lists.documents[url]["credentialSubject"][
        "encodedList"
    ].replace("A", "B", 1)
    lists.documents[url] = forged
    assert (await check(credential, ledger, lists)).reasons == [CredentialFailure.STATUS_INVALID]
    lists.documents.clear()
    report = await check(credential, ledger, lists)
    assert report.reasons == [CredentialFailure.STATUS_UNAVAILABLE]
    assert (await check(credential, ledger, None)).status is StatusState.UNCHECKED


async def test_record_not_on_the_chain_fails(lists: StatusLists) -> None:
    other = Ledger()
    credential = record_credential(ANA, ANA, own_records(other))
    report = await check(credential, Ledger(), lists)
    assert report.reasons == [CredentialFailure.RECORD_FAILED] * 2
    assert "not on the chain" in str(report.problems[0])


async def test_authorship_is_checked(ledger: Ledger) -> None:
    # Mallory's statement presented as Ana's own record, in a credential Ana signed.
    [forged] = ledger.anchor([(statement(ANA, 1), MALLORY, AuthorKind.SELF)])
    report = await check(record_credential(ANA, ANA, [forged]), ledger)
    assert report.reasons == [CredentialFailure.AUTHOR_MISMATCH]
    # The learner's own statement relabelled as a tutor's attestation.
    [relabelled] = ledger.anchor([(statement(ANA, 3), ANA, AuthorKind.USER)])
    report = await check(record_credential(ANA, ANA, [relabelled]), ledger)
    assert report.reasons == [CredentialFailure.AUTHOR_MISMATCH]
    assert "attested by" in str(report.problems[0])
    # A tutor issuing a credential for a record the tutor did not write.
    [own] = ledger.anchor([(statement(ANA, 2), ANA, AuthorKind.SELF)])
    report = await check(record_credential(TUTOR, ANA, [own]), ledger)
    assert report.reasons == [CredentialFailure.ISSUER_NOT_AUTHOR]


async def test_wrong_chain_and_validity_window(ledger: Ledger) -> None:
    credential = record_credential(ANA, ANA, own_records(ledger, 1))
    report = await verify_credential(
        credential, ledger.reader, now=NOW, chain=ChainExpectation(chain_id=1)
    )
    assert report.reasons == [CredentialFailure.WRONG_CHAIN]
    early = await verify_credential(credential, ledger.reader, now=NOW.replace(year=2025))
    assert early.reasons == [CredentialFailure.NOT_YET_VALID]


async def test_malformed_documents_report_the_field(ledger: Ledger) -> None:
    report = await verify_credential({"type": ["VerifiableCredential"]}, ledger.reader, now=NOW)
    assert report.reasons == [CredentialFailure.MALFORMED]
    assert "type" in str(report.problems[0])
    with pytest.raises(Exception, match="not valid JSON"):
        await verify_credential(b"{", ledger.reader)


async def test_presentation_holder_binding(ledger: Ledger, lists: StatusLists) -> None:
    url = lists.publish(ANA)
    credential = record_credential(ANA, ANA, own_records(ledger), status=StatusEntry(url, 3))
    vp = signed_presentation(ANA, [credential], challenge="c-1", domain="jobs.example")

    async def run(doc: Doc, challenge: str = "c-1", domain: str = "jobs.example") -> Any:
        return await verify_presentation(
            doc, ledger.reader, challenge=challenge, domain=domain, status_source=lists, now=NOW
        )

    report = await run(vp)
    assert report.ok and report.challenge_checked, report.to_json()
    replayed = await run(vp, challenge="c-2")
    assert not replayed.ok
    assert {p.reason for p in replayed.problems} == {CredentialFailure.PROOF_INVALID}
    assert "challenge does not match" in str(replayed.problems[0])
    assert not (await run(vp, domain="other.example")).ok
    # Mallory presents Ana's credential as holder: the credential is not about Mallory.
    stolen = signed_presentation(MALLORY, [credential], challenge="c-1", domain="jobs.example")
    report = await run(stolen)
    assert [p.reason for p in report.problems] == [CredentialFailure.SUBJECT_NOT_HOLDER]
    # Mallory swaps the holder after Ana signed: the proof is not the holder's.
    swapped = copy.deepcopy(vp)
    swapped["holder"] = MALLORY.did
    reasons = {p.reason for p in (await run(swapped)).problems}
    assert CredentialFailure.PROOF_INVALID in reasons
    assert CredentialFailure.SUBJECT_NOT_HOLDER in reasons
    # A tampered credential inside fails the presentation.
    inner = copy.deepcopy(vp)
    inner["verifiableCredential"][0]["name"] = "Doctorate"
    report = await run(inner)
    assert not report.ok and not report.credentials[0].ok
    detected = await verify_document(vp, ledger.reader, status_source=lists, now=NOW)
    assert isinstance(detected, PresentationReport) and not detected.challenge_checked


async def test_a_learners_device_key_counts_once_the_chain_binds_it(ledger: Ledger) -> None:
    """Ana's own record signed on her device: her credential's subject is her custodial
    key; the chain's key directory must bind both keys to her."""
    device = person(11, "Ana's phone")
    [record] = ledger.anchor([(statement(ANA, 5), device, AuthorKind.SELF)])
    credential = record_credential(ANA, ANA, [record])
    report = await check(credential, ledger)
    assert report.reasons == [CredentialFailure.AUTHOR_MISMATCH]
    assert "does not bind to the learner" in str(report.problems[0])
    ana = subject_of(ANA.user_id)
    ledger.reader.bind_key(ANA.public_key, KeyInfo(ana, "custodial", 3))
    ledger.reader.bind_key(device.public_key, KeyInfo(subject_of("mallory"), "device", 4))
    assert (await check(credential, ledger)).reasons == [CredentialFailure.AUTHOR_MISMATCH]
    ledger.reader.bind_key(device.public_key, KeyInfo(ana, "device", 4))
    assert (await check(credential, ledger)).ok
    ledger.reader.bind_key(device.public_key, KeyInfo(ana, "device", 4, revoked_block=9))
    assert (await check(credential, ledger)).reasons == [CredentialFailure.AUTHOR_MISMATCH]

"""did:key, the offline document loader, Data Integrity checks and the status bitstring."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chain.credentials import integrity as di
from chain.credentials.documents import (
    BUNDLED,
    KEIKO_CREDENTIALS_V1,
    OPEN_BADGES_V3,
    bundled_contexts,
    context_by_file,
    document_loader,
)
from chain.credentials.multikey import (
    did_document,
    did_key,
    public_key_from_did,
    resolve_verification_method,
)
from chain.credentials.status_list import (
    LIST_BITS,
    Bitstring,
    StatusEntry,
    parse_status_list_credential,
    status_list_credential,
)
from chain.tests.credentials.factory import ANA, MALLORY, NOW
from services.kit.errors import ValidationError

# The specification's own example of an all-zero 16 KiB list (Bitstring Status List v1.0).
SPEC_EMPTY_LIST = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"


def test_did_key_round_trip_and_offline_document() -> None:
    did = did_key(ANA.public_key)
    assert did.startswith("did:key:z6Mk") and len(did) == len("did:key:") + 48
    assert public_key_from_did(did, "did") == ANA.public_key
    method = resolve_verification_method(ANA.method)
    assert (method.controller, method.public_key) == (did, ANA.public_key)
    document = did_document(did)
    assert document["assertionMethod"] == [ANA.method] == document["authentication"]
    assert document["verificationMethod"][0]["publicKeyMultibase"] == did[len("did:key:") :]


@pytest.mark.parametrize(
    "url",
    [
        "did:web:keiko.test#key-1",
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",  # no fragment
        f"{ANA.did}#{MALLORY.did[len('did:key:') :]}",  # a key that is not the DID's
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme#x",  # secp256k1
        "did:key:z0OIl",  # not base58btc
    ],
)
def test_only_the_did_keys_own_ed25519_key_resolves(url: str) -> None:
    with pytest.raises(ValidationError) as err:
        resolve_verification_method(url)
    assert err.value.field == "verificationMethod"


def test_loader_serves_bundled_contexts_and_never_fetches() -> None:
    load = document_loader()
    assert load(KEIKO_CREDENTIALS_V1, None)["document"]["@context"]["keiko"]
    assert "OpenBadgeCredential" in load(OPEN_BADGES_V3, None)["document"]["@context"]
    with pytest.raises(ValidationError, match="not a context this verifier knows offline"):
        load("https://evil.example/context.jsonld", None)
    assert {c.url for c in bundled_contexts()} == set(BUNDLED)
    assert context_by_file("keiko-credentials-v1.jsonld") is not None
    assert context_by_file("../etc/passwd") is None


def _doc(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:00000000-0000-4000-8000-000000000009",
        "type": ["VerifiableCredential"],
        "issuer": ANA.did,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": ANA.did, "name": "Ana"},
        **(extra or {}),
    }


def _signed(document: dict[str, Any]) -> dict[str, Any]:
    return di.add_proof_set(document, ANA.method, NOW, ANA.sign)


def test_proof_set_has_both_suites_and_verifies() -> None:
    signed = _signed(_doc())
    assert [p["cryptosuite"] for p in signed["proof"]] == ["eddsa-rdfc-2022", "eddsa-jcs-2022"]
    assert "@context" in signed["proof"][1] and "@context" not in signed["proof"][0]
    assert [c.ok for c in di.verify_proofs(signed)] == [True, True]


def test_a_changed_claim_fails_both_proofs() -> None:
    changed = copy.deepcopy(_signed(_doc()))
    changed["credentialSubject"]["name"] = "Mallory"
    checks = di.verify_proofs(changed)
    assert [c.failure for c in checks] == [di.ProofFailure.SIGNATURE_INVALID] * 2


@pytest.mark.parametrize(
    ("change", "failure"),
    [
        (lambda p: p.update(proofPurpose="authentication"), di.ProofFailure.WRONG_PURPOSE),
        (
            lambda p: p.update(cryptosuite="ecdsa-rdfc-2019"),
            di.ProofFailure.UNSUPPORTED_CRYPTOSUITE,
        ),
        (lambda p: p.update(proofValue="zzz"), di.ProofFailure.MALFORMED),
        (lambda p: p.update(verificationMethod=MALLORY.method), di.ProofFailure.SIGNATURE_INVALID),
        (lambda p: p.update(verificationMethod="https://x#k"), di.ProofFailure.UNRESOLVABLE_METHOD),
        (lambda p: p.update(created="yesterday"), di.ProofFailure.CANONICALIZATION_FAILED),
        (lambda p: p.update(type="Ed25519Signature2020"), di.ProofFailure.MALFORMED),
    ],
)
def test_each_changed_proof_fails_with_its_reason(change: Any, failure: di.ProofFailure) -> None:
    signed = _signed(_doc())
    change(signed["proof"][0])
    check = di.verify_proofs(signed)[0]
    assert not check.ok and check.failure is failure, str(check)


def test_jcs_proof_context_must_prefix_the_documents() -> None:
    signed = _signed(_doc())
    signed["proof"][1]["@context"] = ["https://www.w3.org/ns/credentials/examples/v2"]
    assert di.verify_proofs(signed)[1].failure is di.ProofFailure.CONTEXT_MISMATCH


def test_presentation_purpose_challenge_and_domain() -> None:
    signed = di.add_proof_set(
        _doc(),
        ANA.method,
        NOW,
        ANA.sign,
        purpose=di.ProofPurpose.AUTHENTICATION,
        challenge="c1",
        domain="d.example",
    )
    ok = di.verify_proofs(
        signed, purpose=di.ProofPurpose.AUTHENTICATION, challenge="c1", domain="d.example"
    )
    assert all(c.ok for c in ok)
    wrong = di.verify_proofs(signed, purpose=di.ProofPurpose.AUTHENTICATION, challenge="c2")
    assert {c.failure for c in wrong} == {di.ProofFailure.CHALLENGE_MISMATCH}
    other = di.verify_proofs(signed, purpose=di.ProofPurpose.AUTHENTICATION, domain="e.example")
    assert {c.failure for c in other} == {di.ProofFailure.DOMAIN_MISMATCH}
    assert {c.failure for c in di.verify_proofs(signed)} == {di.ProofFailure.WRONG_PURPOSE}


def test_rdfc_safe_mode_refuses_undefined_terms_relative_iris_and_unknown_contexts() -> None:
    with pytest.raises(ValidationError, match="undefined term"):
        di.canonical_rdf(_doc({"shoeSize": 42}))
    with pytest.raises(ValidationError, match="relative IRI"):
        di.canonical_rdf(_doc({"id": "credentials/1"}))
    with pytest.raises(ValidationError, match="not a context this verifier knows offline"):
        di.canonical_rdf({**_doc(), "@context": ["https://attacker.example/ctx"]})
    assert di.verify_proofs(_doc())[0].failure is di.ProofFailure.MISSING


def test_status_bitstring_matches_the_specification() -> None:
    bits = Bitstring.decode(SPEC_EMPTY_LIST)
    assert bits.length == LIST_BITS and bits.set_indices() == []
    bits.set(0)
    bits.set(LIST_BITS - 1)
    again = Bitstring.decode(bits.encode())
    assert again.get(0) and again.get(LIST_BITS - 1) and not again.get(1)
    assert again.set_indices() == [0, LIST_BITS - 1]
    # bit 0 is the most significant bit of the first byte
    assert Bitstring.with_bits([0], 8)._bytes == bytearray(b"\x80")


@pytest.mark.parametrize("encoded", ["zabc", "u!!!", "uH4sIAAAA", 42])
def test_status_bitstring_refuses_what_is_not_a_gzip_list(encoded: object) -> None:
    with pytest.raises(ValidationError):
        Bitstring.decode(encoded)


def test_status_entry_and_list_credential_round_trip() -> None:
    entry = StatusEntry("https://keiko.test/credentials/status/1", 94567)
    assert StatusEntry.parse(entry.to_json()) == entry
    unsigned = status_list_credential(entry.list_credential, ANA.did, Bitstring.with_bits([5]), NOW)
    subject = parse_status_list_credential(unsigned)
    assert subject.purpose == "revocation" and subject.bits.set_indices() == [5]
    with pytest.raises(ValidationError):
        StatusEntry.parse({**entry.to_json(), "statusListIndex": 94567})

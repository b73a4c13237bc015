"""The W3C vc-di-eddsa test vectors (TestVectors/ of the specification's repository, the
Alumni credential signed by ``did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2``'s
key), reproduced byte for byte by Keiko's cryptosuites."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from chain.credentials import integrity as di
from chain.credentials.documents import document_loader
from chain.credentials.multikey import (
    VerificationMethod,
    did_key,
    multibase_encode,
    private_key_from_multibase,
    public_key_from_multibase,
)

VECTORS = Path(__file__).parent / "vectors"
EXAMPLES_CONTEXT = "https://www.w3.org/ns/credentials/examples/v2"
LOADER = document_loader(
    {EXAMPLES_CONTEXT: json.loads((VECTORS / "credentials-examples-v2.jsonld").read_text())}
)
KEYS = json.loads((VECTORS / "keyPair.json").read_text())
SIGNING_KEY = SigningKey(private_key_from_multibase(KEYS["privateKeyMultibase"], "key"))
PUBLIC_KEY = public_key_from_multibase(KEYS["publicKeyMultibase"], "key")

SUITES = {
    "eddsa-jcs-2022": {
        "signed": "signedJCS.json",
        "config": "proofConfigJCS.json",
        "proof_canon": "proofCanonJCS.txt",
        "proof_hash": "proofHashJCS.txt",
        "combined": "combinedHashJCS.txt",
        "sig_hex": "sigHexJCS.txt",
        "sig_b58": "sigBTC58JCS.txt",
    },
    "eddsa-rdfc-2022": {
        "signed": "signedDataInt.json",
        "config": "proofConfigDataInt.json",
        "proof_canon": "proofCanonDataInt.txt",
        "proof_hash": "proofHashDataInt.txt",
        "combined": "combinedHashDataInt.txt",
        "sig_hex": "sigHexDataInt.txt",
        "sig_b58": "sigBTC58DataInt.txt",
    },
}


def vector(suite: str, name: str) -> str:
    return (VECTORS / suite / SUITES[suite][name]).read_text()


def signed(suite: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(vector(suite, "signed"))
    return document


def test_key_pair_is_the_vectors_did_key() -> None:
    assert bytes(SIGNING_KEY.verify_key) == PUBLIC_KEY
    assert did_key(PUBLIC_KEY) == "did:key:" + KEYS["publicKeyMultibase"]


def test_jcs_canonical_document_and_hash() -> None:
    unsecured = di.unsecured_document(signed("eddsa-jcs-2022"))
    canonical = di.canonical_json(unsecured)
    assert canonical.decode() == (VECTORS / "eddsa-jcs-2022" / "canonDocJCS.txt").read_text()
    assert (
        hashlib.sha256(canonical).hexdigest()
        == (VECTORS / "eddsa-jcs-2022" / "docHashJCS.txt").read_text()
    )


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_proof_configuration_canonical_form_and_hashes(suite: str) -> None:
    unsecured = di.unsecured_document(signed(suite))
    config = json.loads(vector(suite, "config"))
    cryptosuite = di.Cryptosuite(suite)
    built = di.proof_configuration(unsecured, {k: v for k, v in config.items()}, cryptosuite)
    assert built == config
    canonical = (
        di.canonical_json(built)
        if cryptosuite is di.Cryptosuite.EDDSA_JCS_2022
        else di.canonical_rdf(built, LOADER)
    )
    assert canonical.decode() == vector(suite, "proof_canon")
    assert hashlib.sha256(canonical).hexdigest() == vector(suite, "proof_hash")
    assert di.hash_data(unsecured, config, cryptosuite, LOADER).hex() == vector(suite, "combined")


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_signature_and_signed_document_reproduce_exactly(suite: str) -> None:
    expected = signed(suite)
    proof = expected["proof"]
    options = di.ProofOptions(
        di.Cryptosuite(suite),
        proof["verificationMethod"],
        di.parse_datetime(proof["created"], "created"),
    )
    produced = di.add_proof(
        di.unsecured_document(expected),
        options,
        lambda data: SIGNING_KEY.sign(data).signature,
        LOADER,
    )
    assert produced == expected
    signature = SIGNING_KEY.sign(bytes.fromhex(vector(suite, "combined"))).signature
    assert signature.hex() == vector(suite, "sig_hex")
    assert multibase_encode(signature) == vector(suite, "sig_b58") == proof["proofValue"]


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_signed_vectors_verify_and_a_changed_claim_does_not(suite: str) -> None:
    document = signed(suite)
    issuer_key = VerificationMethod(
        document["proof"]["verificationMethod"], document["issuer"], PUBLIC_KEY
    )

    def check(doc: dict[str, Any]) -> list[di.ProofCheck]:
        return di.verify_proofs(doc, loader=LOADER, resolve=lambda _url: issuer_key)

    assert [c.ok for c in check(document)] == [True]
    document["credentialSubject"]["alumniOf"] = "Another School"
    [failed] = check(document)
    assert failed.failure is di.ProofFailure.SIGNATURE_INVALID

"""Keiko's passport exports verify with an independent implementation: a small Node.js
verifier (``tests/interop/leaf-js``, installed by ``make test``) on ``@scure/starknet``'s
Poseidon (keiko.leaf.v1 and the keiko.merkle.v1 nodes), Node's sha256 (keiko.leaf.v2) and
Ed25519, and ``canonicalize`` (RFC 8785). It shares no code with Keiko: it recomputes each
entry's leaf in the entry's encoding and walks its proof to the export's root.

One export holds v1 and v2 entries in one batch; a tampered entry, a v1 entry relabelled
v2 and an unknown encoding fail there, each alone.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from chain.translator.authors import KEIKO_HOME_PAGE, Author, AuthorKind
from chain.translator.batching import Domain
from chain.translator.leaves import LEAF_ENCODING_V1, LEAF_ENCODING_V2, compute_leaf
from chain.translator.merkle import MerkleTree
from chain.translator.signing import public_key_of, sign
from chain.verify import AnchorProof, PassportExport, build_entry
from tests.interop.node_tool import NODE, run_node

LEAF_JS = Path(__file__).parent / "leaf-js"
KEY = SigningKey(bytes(range(32)))
BATCH_ID = 0x1EAF
ENCODINGS = [
    LEAF_ENCODING_V1,
    LEAF_ENCODING_V2,
    LEAF_ENCODING_V1,
    LEAF_ENCODING_V2,
    LEAF_ENCODING_V2,
]

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def statement(i: int) -> dict[str, Any]:
    ana = {"objectType": "Agent", "account": {"homePage": KEIKO_HOME_PAGE, "name": "ana"}}
    return {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "actor": ana,
        "authority": ana,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": f"https://keiko.example/q/{i}"},
        "result": {"score": {"scaled": 0.5}, "response": "déjà vu ✓"},
        "timestamp": "2026-01-01T00:00:00Z",
    }


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """Five entries of one batch: v1 (anchored before keiko.leaf.v2) and v2 mixed."""
    pk = public_key_of(KEY)
    signed = [(statement(i), sign(statement(i), KEY)) for i in range(len(ENCODINGS))]
    leaves = [
        compute_leaf(st, sig, pk, enc) for (st, sig), enc in zip(signed, ENCODINGS, strict=True)
    ]
    tree = MerkleTree(leaves)
    entries = tuple(
        build_entry(
            st["id"],
            st,
            sig,
            pk,
            AnchorProof.from_inclusion(BATCH_ID, Domain.LEARNING, tree.proof(i), 0x7, 3),
            Author(AuthorKind.SELF, "ana", "Ana", pk),
            leaf_encoding=enc,
        )
        for i, ((st, sig), enc) in enumerate(zip(signed, ENCODINGS, strict=True))
    )
    export = PassportExport("p-ana", datetime(2026, 1, 2, tzinfo=UTC), entries, "ana")
    return json.loads(export.dumps())


def js_verify(doc: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = run_node(
        LEAF_JS, "verify.mjs", "@scure/starknet", doc, timeout=60
    )
    assert len(results) == len(doc["entries"])
    return results


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    return [r["verdict"] for r in results]


def test_v1_and_v2_entries_verify_with_the_same_leaves(document: dict[str, Any]) -> None:
    results = js_verify(document)
    assert verdicts(results) == ["verified"] * len(ENCODINGS), results
    assert [r["leaf_encoding"] for r in results] == ENCODINGS
    assert [r["leaf"] for r in results] == [e["leaf"] for e in document["entries"]]


def _statement(doc: dict[str, Any]) -> None:
    doc["entries"][1]["statement"]["result"]["score"]["scaled"] = 1.0


def _signature(doc: dict[str, Any]) -> None:
    sig = doc["entries"][1]["signature"]
    doc["entries"][1]["signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]


def _key(doc: dict[str, Any]) -> None:
    key = doc["entries"][1]["public_key"]
    doc["entries"][1]["public_key"] = ("0" if key[0] != "0" else "1") + key[1:]


def _v1_relabelled_v2(doc: dict[str, Any]) -> None:
    doc["entries"][0]["leaf_encoding"] = LEAF_ENCODING_V2
    del doc["entries"][0]["leaf"]  # only the proof can tell


def _v2_relabelled_v1(doc: dict[str, Any]) -> None:
    doc["entries"][1]["leaf_encoding"] = LEAF_ENCODING_V1


def _unknown(doc: dict[str, Any]) -> None:
    doc["entries"][1]["leaf_encoding"] = "keiko.leaf.v9"


def _sibling(doc: dict[str, Any]) -> None:
    proof = doc["entries"][1]["anchor"]["proof"]
    proof[0] = hex(int(proof[0], 16) ^ 1)


@pytest.mark.parametrize(
    ("tamper", "bad", "problem"),
    [
        (_statement, 1, "statement hash mismatch"),
        (_signature, 1, "signature invalid"),
        (_key, 1, "signature invalid"),
        (_v1_relabelled_v2, 0, "proof does not reach root"),
        (_v2_relabelled_v1, 1, "leaf mismatch"),
        (_unknown, 1, 'unknown leaf encoding "keiko.leaf.v9"'),
        (_sibling, 1, "proof does not reach root"),
    ],
)
def test_a_tampered_entry_fails_alone(
    document: dict[str, Any], tamper: Any, bad: int, problem: str
) -> None:
    doc = copy.deepcopy(document)
    tamper(doc)
    results = js_verify(doc)
    expected = ["verified"] * len(ENCODINGS)
    expected[bad] = "failed"
    assert verdicts(results) == expected, results
    assert problem in results[bad]["problems"], results[bad]


def test_a_version_2_export_is_all_v1(document: dict[str, Any]) -> None:
    """Version 2 had one document-level keiko.leaf.v1: its entries are v1 there too."""
    doc = copy.deepcopy(document)
    doc["version"] = 2
    for e in doc["entries"]:
        del e["leaf_encoding"]
    results = js_verify(doc)
    assert [r["leaf_encoding"] for r in results] == [LEAF_ENCODING_V1] * len(ENCODINGS)
    assert verdicts(results) == [
        "verified" if enc == LEAF_ENCODING_V1 else "failed" for enc in ENCODINGS
    ]

"""Keiko's credentials verify with an independent implementation: Digital Bazaar's VC
libraries from the npm registry (``tests/interop/vc-js``, installed by ``make test``),
run under Node.js. They share no code with Keiko: JSON-LD expansion and RDF
canonicalization (jsonld.js, rdf-canonize), did:key resolution, Ed25519 and the
``eddsa-rdfc-2022`` cryptosuite, and the Bitstring Status List check. The JSON-LD
contexts come from the npm packages that publish them (only Keiko's own context is ours).

Changing a claim, the proof, the evidence or the status fails there too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from chain.credentials.documents import KEIKO_CREDENTIALS_V1, bundled_context
from chain.credentials.records import AuthorKind
from chain.credentials.status_list import StatusEntry
from chain.tests.credentials.factory import (
    ANA,
    MALLORY,
    TUTOR,
    Ledger,
    StatusLists,
    badge_credential,
    record_credential,
    signed_presentation,
    statement,
)
from tests.interop.node_tool import NODE, run_node

VC_JS = Path(__file__).parent / "vc-js"

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def js_verify(
    lists: StatusLists, checks: list[tuple[str, dict[str, Any], str, str]]
) -> list[dict[str, Any]]:
    """Run the independent verifier once on ``(kind, document, challenge, domain)``
    checks (one Node.js process: loading the libraries is most of the cost)."""
    context = bundled_context(KEIKO_CREDENTIALS_V1)
    assert context is not None
    request = {
        "keikoContext": context.document,
        "statusLists": lists.documents,
        "now": "2026-03-02T00:00:00Z",
        "checks": [
            {"kind": kind, "document": doc, "challenge": challenge, "domain": domain}
            for kind, doc, challenge, domain in checks
        ],
    }
    results: list[dict[str, Any]] = run_node(
        VC_JS, "verify.mjs", "@digitalbazaar/vc", request, timeout=300
    )
    assert len(results) == len(checks)
    return results


@pytest.fixture(scope="module")
def issued() -> dict[str, Any]:
    """One of each: a compact learning record, an attested record, a badge, and a
    presentation of them, with a status list where slot 9 is revoked."""
    ledger = Ledger()
    lists = StatusLists()
    ana_list = lists.publish(ANA, revoked=[9], name="ana")
    tutor_list = lists.publish(TUTOR, name="tutor")
    own = ledger.anchor([(statement(ANA, n), ANA, AuthorKind.SELF) for n in range(3)])
    [attested] = ledger.anchor([(statement(ANA, 10, author=TUTOR), TUTOR, AuthorKind.USER)])
    record = record_credential(ANA, ANA, own, status=StatusEntry(ana_list, 3))
    tutors = record_credential(TUTOR, ANA, [attested], status=StatusEntry(tutor_list, 4))
    badge = badge_credential(ANA, ANA, own[:1], status=StatusEntry(ana_list, 5))
    revoked = record_credential(ANA, ANA, own[1:], status=StatusEntry(ana_list, 9))
    vp = signed_presentation(ANA, [record, badge])
    return {
        "lists": lists,
        "record": record,
        "tutors": tutors,
        "badge": badge,
        "revoked": revoked,
        "vp": vp,
    }


def _claim(doc: dict[str, Any]) -> None:
    doc["credentialSubject"]["learningRecord"][0]["statement"]["result"]["score"]["scaled"] = 1


def _proof(doc: dict[str, Any]) -> None:
    doc["proof"][0]["proofValue"] = doc["proof"][1]["proofValue"]


def _evidence(doc: dict[str, Any]) -> None:
    doc["evidence"][0]["leafIndex"] = 2


def _status(doc: dict[str, Any]) -> None:
    doc["credentialStatus"]["statusListIndex"] = "4"


def _issuer(doc: dict[str, Any]) -> None:
    doc["issuer"]["id"] = MALLORY.did


CHANGES = {"claim": _claim, "proof": _proof, "evidence": _evidence, "status": _status}
CHANGES["issuer"] = _issuer


@pytest.fixture(scope="module")
def verdicts(issued: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every check of this module, in one run of the independent verifier."""
    checks: dict[str, tuple[str, dict[str, Any], str, str]] = {
        name: ("credential", issued[name], "", "") for name in ("record", "tutors", "badge")
    }
    checks["revoked"] = ("credential", issued["revoked"], "", "")
    checks["vp"] = ("presentation", issued["vp"], "challenge-1", "verifier.example")
    checks["vp replayed"] = ("presentation", issued["vp"], "another", "verifier.example")
    checks["vp elsewhere"] = ("presentation", issued["vp"], "challenge-1", "x.example")
    for name, change in CHANGES.items():
        tampered = copy.deepcopy(issued["record"])
        change(tampered)
        checks[f"changed {name}"] = ("credential", tampered, "", "")
    results = js_verify(issued["lists"], list(checks.values()))
    return dict(zip(checks, results, strict=True))


@pytest.mark.parametrize("name", ["record", "tutors", "badge"])
def test_independent_verifier_accepts_keiko_credentials(
    verdicts: dict[str, dict[str, Any]], name: str
) -> None:
    assert verdicts[name] == {"verified": True, "errors": []}


def test_independent_verifier_accepts_the_presentation_with_holder_binding(
    verdicts: dict[str, dict[str, Any]],
) -> None:
    assert verdicts["vp"] == {"verified": True, "errors": []}
    assert verdicts["vp replayed"]["verified"] is False
    assert verdicts["vp elsewhere"]["verified"] is False


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_independent_verifier_refuses_any_change(
    verdicts: dict[str, dict[str, Any]], name: str
) -> None:
    result = verdicts[f"changed {name}"]
    assert result["verified"] is False
    assert result["errors"], "a failure comes with a reason"


def test_independent_verifier_sees_revocation_and_forged_lists(
    issued: dict[str, Any], verdicts: dict[str, dict[str, Any]]
) -> None:
    assert verdicts["revoked"]["verified"] is False
    assert any("revoked" in e for e in verdicts["revoked"]["errors"])
    url = issued["record"]["credentialStatus"]["statusListCredential"]
    mallory = StatusLists()
    mallory.publish(MALLORY, name="ana")
    forged = StatusLists()
    forged.documents = {**issued["lists"].documents, url: mallory.documents[url]}
    [result] = js_verify(forged, [("credential", issued["record"], "", "")])
    assert result["verified"] is False

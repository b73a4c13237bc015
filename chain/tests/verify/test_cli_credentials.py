"""``keiko passport verify`` on a W3C credential and a presentation, against a real
Keikochain dev node: proofs, the status list (served over HTTP), and every record's anchor
read from the chain. A changed claim, proof, evidence or status fails with its reason."""

from __future__ import annotations

import asyncio
import copy
import functools
import http.server
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain.client import Deployment, KeikoChain
from chain.credentials.records import AnchoredRecord, AnchorEvidence, AuthorKind, RecordAuthor
from chain.credentials.status_list import StatusEntry
from chain.node.process import NodeProcess
from chain.tests.credentials.factory import (
    ANA,
    StatusLists,
    record_credential,
    signed_presentation,
    statement,
)
from chain.tests.node.conftest import devchain, node  # noqa: F401  (fixtures)
from chain.tests.node.harness import DevChain
from chain.translator.batching import Domain, make_batch_id
from chain.translator.leaves import LEAF_ENCODING, compute_leaf
from chain.translator.merkle import MerkleTree
from chain.translator.signing import canonical_bytes
from chain.verify.cli import main


@dataclass
class Issued:
    credential: dict[str, Any]
    revoked: dict[str, Any]
    rpc_url: str
    lists: StatusLists


@pytest.fixture(scope="module")
def status_server() -> Iterator[tuple[str, Path]]:
    """A plain HTTP server for the status lists (as the gateway publishes them)."""
    import tempfile

    root = Path(tempfile.mkdtemp())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def issued(
    node: NodeProcess,  # noqa: F811
    devchain: DevChain,  # noqa: F811
    status_server: tuple[str, Path],
) -> Issued:
    items = [statement(ANA, 900 + n) for n in range(3)]
    signatures = [ANA.sign(canonical_bytes(st)) for st in items]
    leaves = [
        compute_leaf(canonical_bytes(st), sig, ANA.public_key)
        for st, sig in zip(items, signatures, strict=True)
    ]
    tree = MerkleTree(leaves)
    batch_id = make_batch_id(Domain.LEARNING, 900_001)
    deployment = Deployment.from_file(node.deployment_file)
    contract = devchain.address("interaction_anchor")

    async def anchor() -> tuple[int, int, int]:
        account = devchain.accounts[0]
        chain = await KeikoChain.connect(
            node.rpc_url, account.address, account.private_key, node.deployment_file
        )
        try:
            result = await chain.anchor.anchor_batch(
                batch_id, tree.root, tree.leaf_count, "learning"
            )
        finally:
            await chain.close()
        assert result.succeeded and result.block_number is not None
        assert deployment.chain_id is not None  # the dev node's deployment names its chain
        return result.tx_hash, result.block_number, deployment.chain_id

    tx_hash, block, chain_id = asyncio.run(anchor())
    records = [
        AnchoredRecord(
            st["id"],
            st,
            sig,
            RecordAuthor(AuthorKind.SELF, ANA.user_id, ANA.public_key, ANA.name),
            AnchorEvidence(
                chain_id,
                contract,
                batch_id,
                Domain.LEARNING,
                tx_hash,
                block,
                tree.root,
                leaves[i],
                i,
                tree.proof(i).siblings,
                LEAF_ENCODING,
            ),
        )
        for i, (st, sig) in enumerate(zip(items, signatures, strict=True))
    ]
    base, root = status_server
    lists = StatusLists(base)
    url = lists.publish(ANA, revoked=[7], name="ana")
    (root / "ana").write_text(json.dumps(lists.documents[url]))
    return Issued(
        credential=record_credential(ANA, ANA, records, status=StatusEntry(url, 2)),
        revoked=record_credential(ANA, ANA, records[:1], status=StatusEntry(url, 7)),
        rpc_url=node.rpc_url,
        lists=lists,
    )


def run_cli(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(args, out=out)
    return code, out.getvalue()


def write(tmp_path: Path, document: dict[str, Any], name: str = "credential.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_credential_verifies_with_proofs_status_and_chain(issued: Issued, tmp_path: Path) -> None:
    code, out = run_cli([write(tmp_path, issued.credential), "--rpc", issued.rpc_url, "--json"])
    report = json.loads(out)
    assert code == 0 and report["ok"], out
    assert report["status"] == "active"
    assert [r["status"] for r in report["records"]] == ["verified"] * 3


def test_revoked_credential_fails(issued: Issued, tmp_path: Path) -> None:
    code, out = run_cli([write(tmp_path, issued.revoked), "--rpc", issued.rpc_url])
    assert code == 1 and "revoked: bit 7" in out and "status : revoked" in out, out


def test_changed_evidence_fails_naming_the_record(issued: Issued, tmp_path: Path) -> None:
    # (Changes to claims, proofs and status: chain/tests/credentials and tests/interop.)
    doc = copy.deepcopy(issued.credential)
    doc["evidence"][1]["merkleRoot"] = "0x1"
    code, out = run_cli([write(tmp_path, doc), "--rpc", issued.rpc_url])
    assert code == 1 and "batch root mismatch" in out and "proof invalid" in out, out
    record = doc["credentialSubject"]["learningRecord"][1]["id"].removeprefix("urn:uuid:")
    assert [line for line in out.splitlines() if "[FAIL]" in line] == [
        line for line in out.splitlines() if "[FAIL]" in line and record in line
    ]


def test_presentation_checks_the_holders_challenge(issued: Issued, tmp_path: Path) -> None:
    vp = signed_presentation(ANA, [issued.credential], challenge="n-1", domain="hr.example")
    path = write(tmp_path, vp, "vp.json")
    args = [path, "--rpc", issued.rpc_url, "--challenge", "n-1", "--domain", "hr.example"]
    code, out = run_cli(args)
    assert code == 0 and f"presentation by {ANA.did}" in out, out
    code, out = run_cli([path, "--rpc", issued.rpc_url, "--challenge", "n-2", "--domain", "x"])
    assert code == 1 and "challenge does not match" in out, out


def test_a_credential_needs_an_rpc_and_the_right_chain(issued: Issued, tmp_path: Path) -> None:
    path = write(tmp_path, issued.credential)
    assert run_cli([path])[0] == 2
    doc = copy.deepcopy(issued.credential)
    for item in doc["evidence"]:
        item["chainId"] = "0x1234"
    code, out = run_cli([write(tmp_path, doc), "--rpc", issued.rpc_url, "--no-status"])
    assert code == 1 and "not the chain the credential was anchored on" in out, out

"""``keiko passport verify`` against a real Keikochain dev node (a child process).

One small batch of real signed interactions is anchored with the chain client (leaves
and Merkle tree from the translator core); the export is written to a file (and served
over HTTP for the gateway path). The batch mixes an entry anchored before
``keiko.leaf.v2`` (a ``keiko.leaf.v1`` leaf, announced without its encoding as the
translator then did) with new ``keiko.leaf.v2`` ones: the good passport passes;
tampering with a statement, a signature, a key, a proof sibling, a root or an entry's
leaf encoding makes verification fail and name the entry.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import http.server
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from chain.client import KeikoChain
from chain.node.process import NodeProcess
from chain.tests.node.conftest import devchain, node  # noqa: F401  (fixtures)
from chain.tests.node.harness import DevChain
from chain.translator.authors import Author, AuthorKind
from chain.translator.batching import Domain
from chain.translator.leaves import LEAF_ENCODING_V1
from chain.verify import AnchorProof, PassportExport, build_entry
from chain.verify.cli import CliError, export_url, main
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import ValidationError
from services.passport.tests.factories import Batch, batch, interaction


@dataclass
class Anchored:
    document: dict[str, Any]
    entry_ids: list[str]
    rpc_url: str
    deployment: Path
    anchor_address: str
    batch: Batch


@pytest.fixture(scope="module")
def anchored(node: NodeProcess, devchain: DevChain) -> Anchored:  # noqa: F811
    key = SigningKey.generate()
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    items = [interaction(key, "ana", start + timedelta(minutes=i)) for i in range(3)]
    items[0] = replace(items[0], leaf_encoding="")  # an old record: v1, announced as such
    built = batch(items)

    async def anchor() -> tuple[int, int]:
        account = devchain.accounts[0]
        chain = await KeikoChain.connect(
            node.rpc_url,
            account.address,
            account.private_key,
            node.deployment_file,
            poll_interval=0.05,
        )
        try:
            result = await chain.anchor.anchor_batch(
                built.batch_id, built.tree.root, built.tree.leaf_count, "learning"
            )
        finally:
            await chain.close()
        assert result.succeeded and result.block_number is not None
        return result.tx_hash, result.block_number

    tx_hash, block = asyncio.run(anchor())
    export = PassportExport(
        passport_id="passport-ana",
        generated_at=start + timedelta(days=1),
        entries=tuple(
            build_entry(
                item.statement_id,
                item.statement,
                item.signature,
                item.public_key,
                AnchorProof.from_inclusion(
                    built.batch_id, Domain.LEARNING, built.tree.proof(i), tx_hash, block
                ),
                Author(AuthorKind.SELF, "ana", "", item.public_key),
                leaf_encoding=item.leaf_encoding or LEAF_ENCODING_V1,
            )
            for i, item in enumerate(items)
        ),
    )
    return Anchored(
        export.to_json(),
        [i.statement_id for i in items],
        node.rpc_url,
        node.deployment_file,
        hex(devchain.address("interaction_anchor")),
        Batch(built.batch_id, built.tree, items, block, tx_hash),
    )


def run_cli(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(args, out=out)
    return code, out.getvalue()


def write(tmp_path: Path, document: dict[str, Any], name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def verify_file(anchored: Anchored, tmp_path: Path, doc: dict[str, Any]) -> tuple[int, str]:
    """The CLI on ``doc`` written to a file, against the dev node."""
    deployment = str(anchored.deployment)
    return run_cli(
        [str(write(tmp_path, doc)), "--rpc", anchored.rpc_url, "--deployment", deployment]
    )


def test_good_passport_passes(anchored: Anchored, tmp_path: Path) -> None:
    path = write(tmp_path, anchored.document)
    code, out = run_cli(
        [str(path), "--rpc", anchored.rpc_url, "--deployment", str(anchored.deployment)]
    )
    assert code == 0, out
    assert "3 verified" in out and "0 failed" in out
    # The same with only the contract address, and as JSON.
    code, out = run_cli(
        [
            str(path),
            "--rpc",
            anchored.rpc_url,
            "--anchor-address",
            anchored.anchor_address,
            "--json",
        ]
    )
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] and report["counts"]["verified"] == 3


def _tamper_statement(doc: dict[str, Any]) -> None:
    doc["entries"][1]["statement"]["result"]["score"]["scaled"] = 1.0


def _tamper_signature(doc: dict[str, Any]) -> None:
    sig = doc["entries"][1]["signature"]
    doc["entries"][1]["signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]


def _tamper_proof(doc: dict[str, Any]) -> None:
    proof = doc["entries"][1]["anchor"]["proof"]
    proof[0] = hex(int(proof[0], 16) ^ 1)


def _tamper_root(doc: dict[str, Any]) -> None:
    doc["entries"][1]["anchor"]["root"] = hex(int(doc["entries"][1]["anchor"]["root"], 16) ^ 1)


def test_the_export_names_each_entrys_leaf_encoding(anchored: Anchored) -> None:
    document = anchored.document
    assert document["version"] == 3 and "leaf_encoding" not in document
    assert [e["leaf_encoding"] for e in document["entries"]] == [
        "keiko.leaf.v1",
        "keiko.leaf.v2",
        "keiko.leaf.v2",
    ]


def _tamper_key(doc: dict[str, Any]) -> None:
    key = doc["entries"][1]["public_key"]
    doc["entries"][1]["public_key"] = ("0" if key[0] != "0" else "1") + key[1:]


def _relabel_v2_as_v1(doc: dict[str, Any]) -> None:
    doc["entries"][1]["leaf_encoding"] = "keiko.leaf.v1"


def _unknown_encoding(doc: dict[str, Any]) -> None:
    doc["entries"][1]["leaf_encoding"] = "keiko.leaf.v9"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_tamper_key, "signature invalid"),
        (_relabel_v2_as_v1, "leaf does not match entry data"),
        (_unknown_encoding, "unknown leaf encoding"),
        (_tamper_statement, "statement does not match signature"),
        (_tamper_signature, "signature invalid"),
        (_tamper_proof, "proof does not reach root"),
        (_tamper_root, "batch root mismatch"),
    ],
)
def test_tampering_fails_naming_the_entry(
    anchored: Anchored, tmp_path: Path, tamper: Any, reason: str
) -> None:
    doc = copy.deepcopy(anchored.document)
    tamper(doc)
    code, out = verify_file(anchored, tmp_path, doc)
    assert code == 1, out
    bad = anchored.entry_ids[1]
    fail_lines = [line for line in out.splitlines() if "[FAIL]" in line]
    assert len(fail_lines) == 1 and bad in fail_lines[0], out
    assert reason in out
    assert "2 verified" in out


@pytest.mark.parametrize("drop_leaf", [False, True])
def test_a_v1_entry_relabelled_v2_fails(
    anchored: Anchored, tmp_path: Path, drop_leaf: bool
) -> None:
    """The old entry claimed as keiko.leaf.v2: its v2 leaf is not the one in the tree
    (with the recorded leaf dropped, the proof is what fails)."""
    doc = copy.deepcopy(anchored.document)
    doc["entries"][0]["leaf_encoding"] = "keiko.leaf.v2"
    if drop_leaf:
        del doc["entries"][0]["leaf"]
    code, out = verify_file(anchored, tmp_path, doc)
    assert code == 1, out
    fail_lines = [line for line in out.splitlines() if "[FAIL]" in line]
    assert len(fail_lines) == 1 and anchored.entry_ids[0] in fail_lines[0], out
    assert "proof does not reach root" in out and "2 verified" in out
    assert ("leaf does not match entry data" in out) is not drop_leaf


def test_a_version_2_reader_rejects_the_document_as_a_whole(
    anchored: Anchored, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a verifier of version 2 does with a version 3 document: it refuses the version,
    never recomputing v2 leaves as v1 (the check it runs, with version 3 unknown)."""
    from chain.verify import export as export_format

    monkeypatch.setattr(export_format, "READABLE_VERSIONS", (1, 2))
    with pytest.raises(ValidationError) as err:
        export_format.parse_export(copy.deepcopy(anchored.document))
    assert err.value.field == "version" and "unsupported version 3" in err.value.reason


def test_unknown_batch_on_chain_fails(anchored: Anchored, tmp_path: Path) -> None:
    doc = copy.deepcopy(anchored.document)
    doc["entries"][0]["anchor"]["batch_id"] = hex(
        int(doc["entries"][0]["anchor"]["batch_id"], 16) + 1
    )
    code, out = verify_file(anchored, tmp_path, doc)
    assert code == 1 and "root not anchored on chain" in out and anchored.entry_ids[0] in out


@pytest.fixture
def served(anchored: Anchored, tmp_path: Path) -> Iterator[str]:
    """The export at the gateway's URLs (a plain HTTP server in a thread)."""
    root = tmp_path / "site"
    for rel in ("passports/passport-ana/export.json", "share/tok-123/export.json"):
        target = root / rel
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(anchored.document))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetches_from_the_gateway(anchored: Anchored, served: str) -> None:
    common = ["--rpc", anchored.rpc_url, "--deployment", str(anchored.deployment)]
    code, out = run_cli(["passport-ana", "--gateway", served, *common])
    assert code == 0 and "3 verified" in out, out
    code, out = run_cli([f"{served}/verify/share/tok-123", *common])
    assert code == 0, out
    code, _ = run_cli(["someone-else", "--gateway", served, *common])
    assert code == 2


def test_export_urls_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gw = "http://gw:8000/"
    assert export_url("abc", gw) == "http://gw:8000/passports/abc/export.json"
    assert export_url("https://k.app/verify/share/T0k", gw) == "https://k.app/share/T0k/export.json"
    assert export_url("https://k.app/verify/abc", gw) == "https://k.app/passports/abc/export.json"
    with pytest.raises(CliError):
        export_url("https://k.app/elsewhere", gw)
    code, _ = run_cli(
        [
            str(tmp_path / "missing.json"),
            "--rpc",
            "http://127.0.0.1:1/rpc",
            "--anchor-address",
            "0x1",
        ]
    )
    assert code == 2 and "missing.json" in capsys.readouterr().err
    bad = write(tmp_path, {"format": "other"})
    code, _ = run_cli([str(bad), "--rpc", "http://127.0.0.1:1/rpc", "--anchor-address", "0x1"])
    assert code == 2 and "format" in capsys.readouterr().err
    # A document that names no chain needs both from the options.
    bare = write(
        tmp_path,
        {
            "format": "keiko.passport.export",
            "version": 1,
            "passport_id": "p",
            "generated_at": "2026-01-01T00:00:00Z",
            "entries": [],
        },
        "bare.json",
    )
    code, _ = run_cli([str(bare), "--anchor-address", "0x1"])
    assert code == 2 and "pass --rpc" in capsys.readouterr().err
    code, _ = run_cli([str(bare), "--rpc", "http://127.0.0.1:1/rpc"])
    assert code == 2 and "--anchor-address" in capsys.readouterr().err


@pytest.mark.schemas("passport")
async def test_through_the_passport_service_and_gateway_routes(
    anchored: Anchored, migrated_database: Database, clock: FixedClock
) -> None:
    """The real path: events -> passport service -> gRPC -> the gateway's export route ->
    the CLI; and the service's own VerifyPassport reading the dev node's contract."""
    from starlette.applications import Starlette

    from gateway.tests.test_verify_page import serving
    from gateway.verify_page import verify_routes
    from services.api.keiko.passport import v1 as pb
    from services.kit.grpc.client import stub
    from services.kit.grpc.testing import running_server, token_pair
    from services.passport.domain import DEFAULT_PUBLIC, PrivacySettings
    from services.passport.service import PassportService
    from services.passport.servicer import PassportServicer
    from services.passport.tests.conftest import ANA, consume
    from services.passport.tests.factories import recorded_event
    from services.passport.wiring import chain_reader_factory

    service = PassportService(
        migrated_database,
        clock,
        chain_reader=chain_reader_factory(anchored.rpc_url, anchored.deployment),
    )
    items = anchored.batch.items
    await consume(service, *(recorded_event(i) for i in items), *anchored.batch.events())
    await service.update_privacy(ANA, PrivacySettings(True, DEFAULT_PUBLIC, DEFAULT_PUBLIC))
    passport_id = (await service.own_passport(ANA)).id
    _, verifier = token_pair(clock)
    async with running_server([PassportServicer(service)], token_verifier=verifier) as channel:
        reply = await stub(pb.PassportServiceStub, channel).verify_passport(
            pb.VerifyPassportRequest(passport_id=passport_id)
        )
        assert (reply.verified_count, reply.failed_count) == (3, 0)
        assert all(e.root_on_chain for e in reply.entries)
        app = Starlette(routes=verify_routes(channel, chain_rpc_url=anchored.rpc_url))
        async with serving(app) as url:
            args = [passport_id, "--gateway", url, "--rpc", anchored.rpc_url]
            code, out = await asyncio.to_thread(
                run_cli, [*args, "--deployment", str(anchored.deployment)]
            )
            assert code == 0 and "3 verified" in out, out
            import httpx

            async with httpx.AsyncClient(base_url=url) as http:
                receipt = await http.get(f"/verify/tx/{hex(anchored.batch.tx_hash)}")
            assert receipt.status_code == 200, receipt.text
            assert receipt.json()["transaction_hash"] == hex(anchored.batch.tx_hash)

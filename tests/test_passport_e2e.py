"""The passport end to end, on the real platform (every service, the gateway and the
Keikochain dev node executing the compiled Cairo contracts), on both engines, twice: with
the platform's embedded node, and against a node started empty onto which
`keiko chain deploy` put Keiko's contracts (the production path onto any Starknet):

log in with WebAuthn over GraphQL, open the `interactionAnchored` subscription, record
100 interactions through GraphQL, receive each anchoring exactly once, then verify the
passport with the command line verifier (`keiko passport verify <share link> --rpc ...`)
against the dev node: every entry verified. Tampering with a statement, a signature, a
proof sibling or a root in the exported document makes verification fail (exit 1) and
name the tampered entry.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chain.node.accounts import read_accounts_file
from chain.node.process import NodeProcess, astart_node_process
from chain.verify import cli
from keiko import registry
from keiko.cli import main as keiko_main
from keiko.platform import RunningPlatform, running_platform
from tests.e2e_support import (
    GraphQLClient,
    all_interactions,
    e2e_settings,
    engine_env,
    gateway_http,
    migrate_all,
    platform_fanout,
    record_interactions,
    rpc_count,
    sign_up_and_log_in,
    subscriptions,
    wait_for_watchers,
)

COUNT = 100
ANCHORED_SUBSCRIPTION = """
subscription {
  interactionAnchored { statementId anchor { status batchId txHash blockNumber } }
}"""
SHARE = """
mutation Share($input: CreateShareLinkInput!) {
  createShareLink(input: $input) { token url link { id } }
}"""


async def deployed_chain(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> NodeProcess:
    """A dev node started without Keiko's contracts, then `keiko chain deploy` onto it, as
    onto any Starknet chain: the platform runs against that deployment."""
    node = await astart_node_process(
        tmp_path / "external-chain",
        accounts=2,
        log_path=tmp_path / "external-chain.log",
        extra_args=["--no-keiko-contracts"],
    )
    operator = read_accounts_file(node.accounts_file)[0]
    out = data_dir / "chain" / "deployment.json"
    args = [
        "chain",
        "deploy",
        "--rpc",
        node.rpc_url,
        "--account",
        hex(operator.address),
        "--private-key",
        hex(operator.private_key),
        "--out",
        str(out),
    ]
    code = await asyncio.to_thread(keiko_main, args)
    assert code == 0, "keiko chain deploy failed"
    monkeypatch.setenv("KEIKO_CHAIN_ACCOUNT_ADDRESS", hex(operator.address))
    monkeypatch.setenv("KEIKO_CHAIN_PRIVATE_KEY", hex(operator.private_key))
    return node


@pytest.fixture(params=["embedded-node", "deployed"])
async def platform(
    tmp_path: Path,
    database_url: str,
    event_bus_url: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[RunningPlatform, GraphQLClient]]:
    # 100 interactions in a handful of batches: a batch closes at 25 leaves or 1.5 s.
    engine_env(monkeypatch, database_url, batch_max_leaves="25", batch_max_wait_ms="1500")
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    node: NodeProcess | None = None
    if request.param == "deployed":
        node = await deployed_chain(tmp_path, settings.data_dir, monkeypatch)
        settings = settings.model_copy(update={"chain_rpc_url": node.rpc_url})
    await migrate_all(database_url)
    try:
        async with (
            running_platform(settings, registry.resolve(None)) as running,
            gateway_http(running) as http,
        ):
            yield running, GraphQLClient(http)
    finally:
        if node is not None:
            await node.astop()


def verify(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(argv, out=out)
    return code, out.getvalue()


async def averify(argv: list[str]) -> tuple[int, str]:
    """The CLI verifier in-process (it runs its own event loop: in a thread)."""
    return await asyncio.wait_for(asyncio.to_thread(verify, argv), 300)


@pytest.mark.timeout(600)  # a hang guard: the deployed variant also starts and deploys a chain
async def test_record_anchor_subscribe_verify_and_detect_tampering(
    platform: tuple[RunningPlatform, GraphQLClient], tmp_path: Path
) -> None:
    running, gql = platform
    await sign_up_and_log_in(gql, "ana@example.org", "Ana")
    passport_id = (await gql("{ passport { id } }"))["passport"]["id"]
    assert gql.token is not None

    fanout = platform_fanout(running)
    internal_before = await rpc_count(gql.http, "WatchPassport", "INTERNAL")
    cancelled_before = await rpc_count(gql.http, "WatchPassport", "CANCELLED")
    async with subscriptions(running.http_port or 0, gql.token) as subs:
        watchers = len(fanout._watchers)
        await subs.subscribe("anchored", ANCHORED_SUBSCRIPTION)
        await wait_for_watchers(fanout, watchers + 1)

        ids = await record_interactions(gql, COUNT, label="e2e")

        received: list[str] = []
        anchors: dict[str, dict[str, Any]] = {}
        while len(received) < COUNT:
            data = (await subs.next(timeout=120))["interactionAnchored"]
            received.append(data["statementId"])
            anchors[data["statementId"]] = data["anchor"]
        # Nothing more arrives: no interaction was announced twice.
        with pytest.raises(TimeoutError):
            extra = await subs.next(timeout=3)
            received.append(extra["interactionAnchored"]["statementId"])
    assert sorted(received) == sorted(ids), "each interaction anchored exactly once"

    # Closing the subscription cancels its WatchPassport stream: counted as CANCELLED,
    # not as an INTERNAL failure of the passport service.
    async def stream_closed() -> bool:
        return await rpc_count(gql.http, "WatchPassport", "CANCELLED") > cancelled_before

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not await stream_closed():
        assert loop.time() < deadline, "the WatchPassport stream was never closed"
        await asyncio.sleep(0.1)
    assert await rpc_count(gql.http, "WatchPassport", "INTERNAL") == internal_before
    assert all(a["status"] == "ANCHORED" and a["txHash"] for a in anchors.values())
    batches = {a["batchId"] for a in anchors.values()}
    assert 1 < len(batches) < COUNT, f"batched anchoring: {len(batches)} batches"

    # The learning service agrees: every interaction anchored, with its batch, and shows
    # the signature and key that verify it.
    listed = await all_interactions(gql)
    signed = {i["id"]: (i["signatureHex"], i["publicKeyHex"]) for i in listed}
    assert all(len(sig) == 128 and len(key) == 64 for sig, key in signed.values()), signed
    stored = {i["id"]: i["anchor"] for i in listed}
    assert set(stored) == set(ids)
    assert all(stored[i]["status"] == "ANCHORED" for i in ids)
    assert {i: stored[i]["batchId"] for i in ids} == {i: anchors[i]["batchId"] for i in ids}

    # Independent verification through a share link, roots read from the dev node.
    share = (await gql(SHARE, input={"label": "verifier"}))["createShareLink"]
    assert share["url"].endswith(f"/verify/share/{share['token']}")
    deployment = running.settings.data_dir / "chain" / "deployment.json"
    chain_args = ["--rpc", str(running.chain_rpc_url), "--deployment", str(deployment)]
    # The link alone: the export names the chain, the anchor contract and a node.
    code, output = await averify([share["url"], "--json"])
    assert code == cli.EXIT_OK, output
    report = json.loads(output)
    assert report["ok"] is True
    assert report["counts"] == {"entries": COUNT, "verified": COUNT, "unanchored": 0, "failed": 0}
    assert {e["entry_id"] for e in report["entries"]} == set(ids)
    assert all(e["status"] == "verified" and e["chain_root"] for e in report["entries"])

    # The readable report of the same check.
    code, text = await averify([share["url"]])
    assert code == cli.EXIT_OK, text
    assert f"RESULT: VERIFIED: all {COUNT} anchored entries check out" in text
    named = json.loads(deployment.read_text())
    assert f"interaction_anchor {named['contracts']['interaction_anchor']['address']}" in text

    # Tampering: the exported document, changed in one entry at a time.
    response = await gql.http.get(f"/share/{share['token']}/export.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["passport_id"] == passport_id
    entries = {e["entry_id"]: e for e in document["entries"]}
    assert set(entries) == set(ids)
    assert {i: (e["signature"], e["public_key"]) for i, e in entries.items()} == signed
    chain = document["chain"]
    assert chain["rpc_url"] == running.chain_rpc_url
    assert int(chain["chain_id"], 16) == int(named["chain_id"], 16)
    assert chain["anchor_contract"] == named["contracts"]["interaction_anchor"]["address"]
    original = tmp_path / "export.json"
    original.write_text(json.dumps(document))
    code, output = await averify([str(original), *chain_args, "--json"])
    assert code == cli.EXIT_OK, output  # the untouched file verifies
    code, output = await averify([str(original)])  # with the chain the file names
    assert code == cli.EXIT_OK, output

    # Another chain id than the node's: not the chain the passport was anchored on.
    elsewhere = copy.deepcopy(document)
    elsewhere["chain"]["chain_id"] = "0x4f54484552"
    other_chain = tmp_path / "other-chain.json"
    other_chain.write_text(json.dumps(elsewhere))
    code, text = await averify([str(other_chain)])
    assert code == cli.EXIT_FAILED and "not the chain this passport was anchored on" in text

    def flip_hex(value: str) -> str:
        """The same hex string with its last digit changed."""
        last = value[-1]
        return value[:-1] + ("1" if last != "1" else "2")

    def statement_field(entry: dict[str, Any]) -> None:
        entry["statement"]["object"]["id"] += "-rewritten"

    def signature(entry: dict[str, Any]) -> None:
        entry["signature"] = flip_hex(entry["signature"])

    def proof_sibling(entry: dict[str, Any]) -> None:
        assert entry["anchor"]["proof"], "a batch of several leaves has siblings"
        entry["anchor"]["proof"][0] = flip_hex(entry["anchor"]["proof"][0])

    def root(entry: dict[str, Any]) -> None:
        entry["anchor"]["root"] = flip_hex(entry["anchor"]["root"])

    def anchor_batch(entry: dict[str, Any]) -> None:
        # Point the entry at another batch actually anchored on chain: its root differs.
        other = next(b for b in sorted(batches) if b != entry["anchor"]["batch_id"])
        entry["anchor"]["batch_id"] = other

    def transaction(entry: dict[str, Any]) -> None:
        # Name the real anchor transaction of another batch: on chain, but not this anchor.
        mine = entry["anchor"]
        entry["anchor"]["tx_hash"] = next(
            e["anchor"]["tx_hash"]
            for e in document["entries"]
            if e.get("anchor") and e["anchor"]["tx_hash"] != mine["tx_hash"]
        )

    # (tamper, the failure reasons it may be reported with: the first check it breaks)
    tampers = {
        "statement": (
            statement_field,
            {"statement hash does not match statement", "statement does not match signature"},
        ),
        "signature": (signature, {"signature invalid"}),
        "proof": (proof_sibling, {"proof does not reach root"}),
        "root": (root, {"batch root mismatch"}),
        "anchor-batch": (
            anchor_batch,
            {"batch root mismatch", "proof does not reach root", "anchor block mismatch"},
        ),
        "transaction": (transaction, {"anchor transaction mismatch"}),
    }
    for position, (name, (tamper, reasons)) in enumerate(tampers.items()):
        victim = ids[position * 17 + 3]
        changed = copy.deepcopy(document)
        tamper(next(e for e in changed["entries"] if e["entry_id"] == victim))
        path = tmp_path / f"tampered-{name}.json"
        path.write_text(json.dumps(changed))

        code, output = await averify([str(path), *chain_args, "--json"])
        assert code == cli.EXIT_FAILED, (name, output)
        report = json.loads(output)
        failed = [e for e in report["entries"] if e["status"] == "failed"]
        assert [e["entry_id"] for e in failed] == [victim], (name, failed)
        assert {p["reason"] for p in failed[0]["problems"]} & reasons, (name, failed)
        assert report["counts"]["verified"] == COUNT - 1, name

    # The readable report names the failed entry too (the last tampered file).
    code, text = await averify([str(path), *chain_args])
    assert code == cli.EXIT_FAILED, text
    verdict = text.strip().splitlines()[-1]
    assert verdict.startswith(f"RESULT: FAILED: 1 of {COUNT} entries failed: {victim} ("), verdict

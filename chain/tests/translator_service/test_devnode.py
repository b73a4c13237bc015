"""The translator against the real embedded Keikochain node (a child process per test).

Each signed invoke costs the node ~0.3 s of CPU, so these tests anchor few, large
batches. They wait for outcomes (with a generous ceiling) and never assert durations;
the durations they print are the figures quoted in the report.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from nacl.signing import SigningKey

from chain.node.process import NodeProcess, free_port, start_node_process
from chain.tests.translator_service.conftest import statement
from chain.translator.anchoring import AnchoringEngine, EngineSettings
from chain.translator.batching import BackoffPolicy, BatchPolicy, Domain
from chain.translator.keys import KeyVault
from chain.translator.learner_accounts import LearnerAccounts, LearnerAccountStore
from chain.translator.ports import ChainConnection, ClientAnchorChain, chain_config_from_env
from chain.translator.service import ChainTranslator, anchor_leaf_data
from chain.translator.servicer import ChainServicer
from chain.translator.signing import canonical_bytes
from chain.translator.storage import ANCHORED, ChainStore, outbox
from chain.translator.watcher import ChainWatcher
from chain.verify import AnchorContractReader, AnchorProof, PassportExport, averify_passport
from chain.verify.export import build_entry
from services.api.keiko.chain import v1 as pb
from services.api.keiko.common import v1 as common
from services.kit.clock import SystemClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import stub
from services.kit.grpc.testing import access_token, running_server, token_pair

LEARNING = pb.AnchorDomain.from_string("LEARNING")
WAIT_CEILING_S = 240.0


@dataclass
class Stack:
    node: NodeProcess
    node_dir: Path
    port: int
    store: ChainStore
    engine: AnchoringEngine
    watcher: ChainWatcher
    translator: ChainTranslator
    connection: ChainConnection
    client: pb.ChainServiceStub
    public: pb.ChainServiceStub

    def restart_node(self) -> None:
        self.node = start_node_process(
            self.node_dir, port=self.port, accounts=4, log_path=self.node_dir.parent / "node.log"
        )


@pytest.fixture
async def stack(
    tmp_path: Path, chain_db: Database, event_bus: EventBus, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    policy: BatchPolicy = request.param
    node_dir = tmp_path / "chain"
    port = free_port()
    node = await asyncio.to_thread(
        start_node_process, node_dir, port=port, accounts=4, log_path=tmp_path / "node.log"
    )
    clock = SystemClock()
    config = chain_config_from_env(data_dir=tmp_path, rpc_url=node.rpc_url, environ={})
    connection = ChainConnection(config.rpc_url, config.account, config.deployment_file)
    chain = ClientAnchorChain(connection)
    store = ChainStore(chain_db, clock)
    relay = OutboxRelay(chain_db, outbox, event_bus, clock=clock, poll_interval=0.05)
    settings = EngineSettings(
        policy=policy,
        backoff=BackoffPolicy(
            initial=timedelta(milliseconds=200), max_delay=timedelta(seconds=2), jitter=0.5
        ),
        breaker_failure_threshold=2,
        breaker_reset_timeout=timedelta(seconds=1),
        poll_interval=0.05,
    )
    engine = AnchoringEngine(store, chain, clock, settings, on_change=relay.notify)
    watcher = ChainWatcher(store, chain, poll_interval=0.1, on_change=relay.notify)
    vault = KeyVault(os.urandom(32))
    translator = ChainTranslator(
        store,
        vault,
        chain,
        engine,
        connection=connection,
        accounts=LearnerAccounts(LearnerAccountStore(chain_db, clock), vault, connection),
    )
    stop = asyncio.Event()
    jobs = [asyncio.create_task(j(stop)) for j in (engine.run, watcher.run, relay.run)]
    issuer, verifier = token_pair(clock)
    holder: list[Stack] = []
    try:
        async with running_server([ChainServicer(translator)], token_verifier=verifier) as ch:
            token = access_token(issuer, "learning-svc", "service")
            holder.append(
                Stack(
                    node,
                    node_dir,
                    port,
                    store,
                    engine,
                    watcher,
                    translator,
                    connection,
                    stub(pb.ChainServiceStub, ch, access_token=token),
                    stub(pb.ChainServiceStub, ch),
                )
            )
            yield holder[0]
    finally:
        stop.set()
        await asyncio.gather(*jobs, return_exceptions=True)
        await connection.close()
        await asyncio.to_thread(node.stop)
        if holder and holder[0].node is not node:  # restarted by the test
            await asyncio.to_thread(holder[0].node.stop)


async def submit(s: Stack, i: int, learner: str = "ana") -> tuple[bytes, bytes]:
    text = canonical_bytes(statement(i, learner)).decode()
    signed = await s.client.sign_interaction(
        pb.SignInteractionRequest(learner_id=learner, canonical_statement_json=text)
    )
    data = anchor_leaf_data(
        learner,
        statement(i, learner),
        bytes.fromhex(signed.signature_hex),
        bytes.fromhex(signed.public_key_hex),
    )
    await s.client.submit_for_anchoring(
        pb.SubmitForAnchoringRequest(domain=LEARNING, record_id=f"st-{i}", leaf_data=data)
    )
    return bytes.fromhex(signed.signature_hex), bytes.fromhex(signed.public_key_hex)


async def passport_export(s: Stack, signed: list[tuple[bytes, bytes]]) -> PassportExport:
    """What the passport service will export, built from the translator's RPCs."""
    entries = []
    for i, (signature, public_key) in enumerate(signed):
        proof = await s.public.get_inclusion_proof(
            pb.GetInclusionProofRequest(domain=LEARNING, record_id=f"st-{i}")
        )
        anchor = AnchorProof(
            batch_id=int(proof.proof.batch_id, 16),
            domain=Domain.LEARNING,
            leaf_index=proof.proof.leaf_index,
            proof=tuple(int(x, 16) for x in proof.proof.siblings),
            root=int(proof.proof.merkle_root, 16),
            tx_hash=int(proof.tx_hash, 16),
            block=proof.block_number,
        )
        assert proof.proof.leaf_encoding == "keiko.leaf.v2"
        entries.append(
            build_entry(
                f"st-{i}",
                statement(i),
                signature,
                public_key,
                anchor,
                leaf_encoding=proof.proof.leaf_encoding,
            )
        )
    return PassportExport("passport-ana", datetime.now(UTC), tuple(entries), "ana")


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_CEILING_S
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def all_anchored(s: Stack, n: int) -> bool:
    return await s.store.count_records(status=ANCHORED) == n


async def check_exactly_once_and_proofs(s: Stack, n: int) -> None:
    """Every record anchored in exactly one batch; every proof verifies against the root
    the chain holds (VerifyInclusion reads it from the chain), and the chain holds
    exactly our batches."""
    chain = await s.connection.get()
    batches = await s.store.list_batches()
    assert sum(b.leaf_count for b in batches) == n
    assert await chain.anchor.batch_count() == len(batches)
    for batch in batches:
        on_chain = await chain.anchor.get_batch(batch.batch_id)
        assert on_chain is not None and on_chain.root == batch.root
        assert on_chain.leaf_count == batch.leaf_count
    seen: set[str] = set()
    for i in range(n):
        proof = await s.public.get_inclusion_proof(
            pb.GetInclusionProofRequest(domain=LEARNING, record_id=f"st-{i}")
        )
        assert proof.proof.leaf not in seen
        seen.add(proof.proof.leaf)
        checked = await s.public.verify_inclusion(pb.VerifyInclusionRequest(proof=proof.proof))
        assert checked.proof_valid and checked.root_on_chain, checked.reason
        assert checked.tx_hash == proof.tx_hash and checked.block_number == proof.block_number


@pytest.mark.parametrize(
    "stack", [BatchPolicy(max_leaves=20, max_wait=timedelta(seconds=60))], indirect=True
)
async def test_twenty_records_one_batch_anchored_and_proven(stack: Stack) -> None:
    s = stack
    started = time.perf_counter()
    signed = [await submit(s, i) for i in range(20)]
    submitted = time.perf_counter()
    await wait_for(lambda: all_anchored(s, 20), "20 anchored records")
    anchored = time.perf_counter()
    batches = await s.store.list_batches()
    assert len(batches) == 1 and batches[0].leaf_count == 20
    # From its receipt or, when the watcher polled first, from the same event.
    assert batches[0].confirmed_by in ("receipt", "event")
    await check_exactly_once_and_proofs(s, 20)
    # The independent verifier (chain/verify) accepts every entry against the dev node.
    export = await passport_export(s, signed)
    report = await averify_passport(export, AnchorContractReader((await s.connection.get()).anchor))
    assert report.ok and len(report.verified) == 20
    print(
        f"\n[figures] 20 records: submit {submitted - started:.2f}s, "
        f"seal->anchored (event) {anchored - submitted:.2f}s, "
        f"end to end {20 / (anchored - started):.1f} records/s"
    )

    info = await s.public.get_chain_info(pb.GetChainInfoRequest())
    assert info.latest_block >= 1 and info.translator_address
    assert {c.name for c in info.contracts} == {"anchor", "humanity_registry", "governance"}
    assert info.chain_id and info.rpc_url == s.node.rpc_url

    # Humanity: registered from a dedicated registrant account, then used for device mode.
    device = SigningKey.generate()
    pk = bytes(device.verify_key)
    registered = await s.client.register_humanity(
        pb.RegisterHumanityRequest(
            user_id="bo", commitment="0xc0ffee", ed25519_public_key=pk.hex(), request_id="r1"
        )
    )
    assert registered.status == common.AnchorStatus.ANCHORED and registered.tx_hash
    replay = await s.client.register_humanity(
        pb.RegisterHumanityRequest(
            user_id="bo", commitment="0xc0ffee", ed25519_public_key=pk.hex(), request_id="r1"
        )
    )
    assert replay.tx_hash == registered.tx_hash
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await s.client.register_humanity(
            pb.RegisterHumanityRequest(
                user_id="cy", commitment="0xc0ffee", ed25519_public_key=pk.hex()
            )
        )
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    found = await s.public.get_humanity_registration(
        pb.GetHumanityRegistrationRequest(commitment="0xc0ffee")
    )
    assert found.registered and found.ed25519_public_key == pk.hex()
    assert found.tx_hash == registered.tx_hash
    canonical = canonical_bytes(statement(99, "bo"))
    by_device = await s.client.sign_interaction(
        pb.SignInteractionRequest(
            learner_id="bo",
            canonical_statement_json=canonical.decode(),
            device_signature=common.DeviceSignature(
                signature_hex=bytes(device.sign(canonical).signature).hex(),
                public_key_hex=pk.hex(),
            ),
        )
    )
    assert by_device.device_signed


@pytest.mark.parametrize(
    "stack", [BatchPolicy(max_leaves=10, max_wait=timedelta(milliseconds=400))], indirect=True
)
async def test_node_stopped_mid_batch_then_every_record_anchored_once(stack: Stack) -> None:
    s = stack
    for i in range(10):
        await submit(s, i)
    await wait_for(lambda: all_anchored(s, 10), "the first batch")
    # Five records open the next batch, then the chain goes away mid-batch.
    for i in range(10, 15):
        await submit(s, i)
    await asyncio.to_thread(s.node.stop)
    down_at = time.perf_counter()
    for i in range(15, 32):  # more records while the chain is down
        await submit(s, i)

    async def outage_seen() -> bool:
        pending = [b for b in await s.store.list_batches() if b.state != ANCHORED]
        return len(pending) >= 2 and all(b.attempts >= 1 for b in pending[:1])

    await wait_for(outage_seen, "failed attempts during the outage")
    pending = [b for b in await s.store.list_batches() if b.state != ANCHORED]
    assert all(b.last_error for b in pending if b.attempts)
    status = await s.client.get_anchor_status(
        pb.GetAnchorStatusRequest(domain=LEARNING, record_id="st-20")
    )
    assert status.anchor.status == common.AnchorStatus.PENDING

    await asyncio.to_thread(s.restart_node)
    restarted = time.perf_counter()
    await wait_for(lambda: all_anchored(s, 32), "every record after the restart")
    recovered = time.perf_counter()
    await check_exactly_once_and_proofs(s, 32)
    sizes = [b.leaf_count for b in await s.store.list_batches()]
    print(
        f"\n[figures] outage {restarted - down_at:.2f}s; after restart all 32 anchored in "
        f"{recovered - restarted:.2f}s; batch sizes {sizes}"
    )

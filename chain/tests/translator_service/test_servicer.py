"""keiko.chain.v1.ChainService over real gRPC, with the in-memory chain double underneath."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from nacl.signing import SigningKey

from chain.tests.translator_service.conftest import statement
from chain.tests.translator_service.fakes import FakeAnchorChain
from chain.translator.anchoring import AnchoringEngine, EngineSettings
from chain.translator.keys import KeyVault
from chain.translator.service import ChainTranslator, anchor_leaf_data
from chain.translator.servicer import ChainServicer
from chain.translator.signing import canonical_bytes
from chain.translator.storage import ChainStore, outbox
from chain.translator.watcher import ChainWatcher
from services.api.keiko.chain import v1 as pb
from services.api.keiko.common import v1 as common
from services.kit.auth import TokenIssuer
from services.kit.clock import FixedClock
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import access_token, running_server, token_pair

LEARNING = pb.AnchorDomain.from_string("LEARNING")


@dataclass
class Harness:
    chain: FakeAnchorChain
    store: ChainStore
    engine: AnchoringEngine
    watcher: ChainWatcher
    relay: OutboxRelay
    channel: grpc.aio.Channel
    issuer: TokenIssuer

    def client(self, user: str | None = None, *roles: str) -> pb.ChainServiceStub:
        token = None if user is None else access_token(self.issuer, user, *roles)
        return stub(pb.ChainServiceStub, self.channel, access_token=token)

    @property
    def service(self) -> pb.ChainServiceStub:
        return self.client("learning-svc", "service")

    async def anchor_all(self) -> None:
        await self.engine.step(force=True)
        await self.watcher.catch_up()
        await self.relay.relay_once()


@pytest.fixture
async def harness(
    store: ChainStore, clock: FixedClock, event_bus: EventBus
) -> AsyncIterator[Harness]:
    chain = FakeAnchorChain()
    relay = OutboxRelay(store.db, outbox, event_bus, clock=clock)
    engine = AnchoringEngine(store, chain, clock, EngineSettings(), on_change=relay.notify)
    watcher = ChainWatcher(store, chain)
    translator = ChainTranslator(store, KeyVault(os.urandom(32)), chain, engine)
    fanout = EventFanout(event_bus, name="chain-test")
    issuer, verifier = token_pair(clock)
    async with running_server([ChainServicer(translator, fanout)], token_verifier=verifier) as ch:
        yield Harness(chain, store, engine, watcher, relay, ch, issuer)
    await fanout.close()


def json_of(i: int, learner: str = "ana") -> str:
    return canonical_bytes(statement(i, learner)).decode()


async def sign_and_submit(
    h: Harness, i: int, learner: str = "ana"
) -> pb.SubmitForAnchoringResponse:
    signed = await h.service.sign_interaction(
        pb.SignInteractionRequest(learner_id=learner, canonical_statement_json=json_of(i, learner))
    )
    data = anchor_leaf_data(
        learner,
        statement(i, learner),
        bytes.fromhex(signed.signature_hex),
        bytes.fromhex(signed.public_key_hex),
    )
    response = await h.service.submit_for_anchoring(
        pb.SubmitForAnchoringRequest(domain=LEARNING, record_id=f"st-{i}", leaf_data=data)
    )
    assert response.leaf == signed.leaf
    return response


async def rpc_error(coro: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro  # type: ignore[misc]
    return info.value


async def test_sign_submit_anchor_prove_verify(harness: Harness) -> None:
    h = harness
    first = await sign_and_submit(h, 1)
    assert first.anchor.status == common.AnchorStatus.PENDING and first.anchor.batch_id == ""
    for i in range(2, 6):
        await sign_and_submit(h, i)
    # Not batched yet: no proof.
    err = await rpc_error(
        h.client().get_inclusion_proof(
            pb.GetInclusionProofRequest(domain=LEARNING, record_id="st-1")
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION

    await h.anchor_all()
    status = await h.service.get_anchor_status(
        pb.GetAnchorStatusRequest(domain=LEARNING, record_id="st-3")
    )
    assert status.anchor.status == common.AnchorStatus.ANCHORED
    assert status.anchor.block_number == 1 and status.anchor.tx_hash.startswith("0x")
    assert status.anchor.leaf_index == 2 and status.anchor.merkle_root

    # Public: proof and verification need no token; the root is read from the chain.
    anonymous = h.client()
    proof = await anonymous.get_inclusion_proof(
        pb.GetInclusionProofRequest(domain=LEARNING, record_id="st-3")
    )
    assert proof.block_number == 1 and proof.tx_hash == status.anchor.tx_hash
    checked = await anonymous.verify_inclusion(pb.VerifyInclusionRequest(proof=proof.proof))
    assert checked.proof_valid and checked.root_on_chain and checked.reason == ""
    assert checked.tx_hash == status.anchor.tx_hash and checked.block_number == 1

    tampered = proof.proof
    tampered.siblings[0] = hex(int(tampered.siblings[0], 16) ^ 1)
    bad = await anonymous.verify_inclusion(pb.VerifyInclusionRequest(proof=tampered))
    assert not bad.proof_valid and bad.root_on_chain and "does not reach" in bad.reason
    unknown_root = common.InclusionProof(
        leaf=proof.proof.leaf, leaf_index=2, siblings=list(proof.proof.siblings), merkle_root="0x5"
    )
    off_chain = await anonymous.verify_inclusion(pb.VerifyInclusionRequest(proof=unknown_root))
    assert not off_chain.root_on_chain and "not anchored" in off_chain.reason

    batch = await h.service.get_batch(pb.GetBatchRequest(batch_id=status.anchor.batch_id))
    assert batch.batch.leaf_count == 5 and batch.batch.status == common.AnchorStatus.ANCHORED
    assert batch.batch.merkle_root == status.anchor.merkle_root

    info = await anonymous.get_chain_info(pb.GetChainInfoRequest())
    assert info.latest_block == 1


async def test_idempotent_submit_and_conflict(harness: Harness) -> None:
    h = harness
    await sign_and_submit(h, 7)
    again = await sign_and_submit(h, 7)  # same content: the original state
    assert again.anchor.status == common.AnchorStatus.PENDING
    other = canonical_bytes(statement(8))
    signed = await h.service.sign_interaction(
        pb.SignInteractionRequest(learner_id="ana", canonical_statement_json=other.decode())
    )
    data = anchor_leaf_data(
        "ana",
        statement(8),
        bytes.fromhex(signed.signature_hex),
        bytes.fromhex(signed.public_key_hex),
    )
    err = await rpc_error(
        h.service.submit_for_anchoring(
            pb.SubmitForAnchoringRequest(domain=LEARNING, record_id="st-7", leaf_data=data)
        )
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert await h.store.count_records() == 1


async def test_device_signed_mode_verifies_and_never_resigns(harness: Harness) -> None:
    h = harness
    device = SigningKey.generate()
    pk = bytes(device.verify_key)
    canonical = canonical_bytes(statement(3, "bo"))
    sig = bytes(device.sign(canonical).signature)
    request = pb.SignInteractionRequest(
        learner_id="bo",
        canonical_statement_json=canonical.decode(),
        device_signature=common.DeviceSignature(signature_hex=sig.hex(), public_key_hex=pk.hex()),
    )
    err = await rpc_error(h.service.sign_interaction(request))
    assert field_violations(err) == [("device_signature", "the author has no registered key")]
    await h.store.set_registered_key("bo", pk, "test")
    signed = await h.client("bo").sign_interaction(request)  # the learner themself
    assert signed.device_signed and signed.signature_hex == sig.hex()
    assert await h.store.get_key_record("bo") is None  # no custodial key was made
    request.device_signature.signature_hex = bytes(64).hex()
    err = await rpc_error(h.service.sign_interaction(request))
    assert field_violations(err) == [("device_signature", "signature invalid")]
    # The device-signed record is accepted for anchoring (the key is registered).
    data = anchor_leaf_data("bo", statement(3, "bo"), sig, pk)
    ok = await h.client("bo").submit_for_anchoring(
        pb.SubmitForAnchoringRequest(domain=LEARNING, record_id="bo-3", leaf_data=data)
    )
    assert ok.leaf == signed.leaf


async def test_bad_input_names_the_field(harness: Harness) -> None:
    h = harness
    cases: list[tuple[object, str]] = [
        (
            h.service.sign_interaction(
                pb.SignInteractionRequest(
                    learner_id="ana", canonical_statement_json='{"b":1, "a":2}'
                )
            ),
            "canonical_statement_json",
        ),
        (
            h.service.sign_interaction(pb.SignInteractionRequest(canonical_statement_json="{}")),
            "learner_id",
        ),
        (
            h.service.submit_for_anchoring(
                pb.SubmitForAnchoringRequest(record_id="x", leaf_data=b"{}")
            ),
            "domain",
        ),
        (
            h.service.submit_for_anchoring(
                pb.SubmitForAnchoringRequest(domain=LEARNING, record_id="x", leaf_data=b"{ }")
            ),
            "leaf_data",
        ),
        (
            h.service.submit_for_anchoring(
                pb.SubmitForAnchoringRequest(
                    domain=LEARNING,
                    record_id="x",
                    leaf_data=anchor_leaf_data("ana", statement(1), bytes(64), bytes(32)),
                )
            ),
            "leaf_data.signature",
        ),
        (
            h.client().verify_inclusion(
                pb.VerifyInclusionRequest(
                    proof=common.InclusionProof(leaf="0x1", siblings=["zz"], merkle_root="0x2")
                )
            ),
            "proof.siblings[0]",
        ),
        (h.service.get_batch(pb.GetBatchRequest(batch_id="12")), "batch_id"),
    ]
    for call, field in cases:
        err = await rpc_error(call)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field_violations(err)[0][0] == field

    # A valid signature by a key that is not the learner's is refused too.
    stranger = SigningKey.generate()
    canonical = canonical_bytes(statement(1))
    data = anchor_leaf_data(
        "ana", statement(1), bytes(stranger.sign(canonical).signature), bytes(stranger.verify_key)
    )
    err = await rpc_error(
        h.service.submit_for_anchoring(
            pb.SubmitForAnchoringRequest(domain=LEARNING, record_id="x", leaf_data=data)
        )
    )
    assert field_violations(err)[0][0] == "leaf_data.public_key"


async def test_authorization(harness: Harness) -> None:
    h = harness
    await sign_and_submit(h, 1, "ana")
    bob = h.client("bob")
    err = await rpc_error(
        bob.sign_interaction(
            pb.SignInteractionRequest(learner_id="ana", canonical_statement_json=json_of(2))
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await rpc_error(
        bob.get_anchor_status(pb.GetAnchorStatusRequest(domain=LEARNING, record_id="st-1"))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND  # no hint that ana's record exists
    err = await rpc_error(
        h.client().submit_for_anchoring(pb.SubmitForAnchoringRequest(domain=LEARNING))
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = await rpc_error(
        bob.register_humanity(
            pb.RegisterHumanityRequest(
                user_id="bob", commitment="0x1", ed25519_public_key="00" * 32
            )
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # The learner reads their own record.
    own = await h.client("ana").get_anchor_status(
        pb.GetAnchorStatusRequest(domain=LEARNING, record_id="st-1")
    )
    assert own.anchor.status == common.AnchorStatus.PENDING


async def test_watch_anchors_shows_each_learner_only_their_own(harness: Harness) -> None:
    h = harness
    received: dict[str, list[pb.WatchAnchorsResponse]] = {"ana": [], "svc": []}

    async def watch(name: str, client: pb.ChainServiceStub, count: int) -> None:
        async for item in client.watch_anchors(pb.WatchAnchorsRequest()):
            received[name].append(item)
            if len(received[name]) == count:
                return

    ana = asyncio.create_task(watch("ana", h.client("ana"), 2))
    svc = asyncio.create_task(watch("svc", h.service, 3))
    await asyncio.sleep(0.3)  # let both streams subscribe (no assertion depends on time)
    await sign_and_submit(h, 1, "ana")
    await sign_and_submit(h, 2, "bo")
    await sign_and_submit(h, 3, "ana")
    await h.anchor_all()
    await asyncio.wait_for(asyncio.gather(ana, svc), 20)
    assert sorted(e.event.record_id for e in received["ana"]) == ["st-1", "st-3"]
    assert sorted(e.event.record_id for e in received["svc"]) == ["st-1", "st-2", "st-3"]
    event = received["ana"][0].event
    assert event.domain == LEARNING and event.anchor.status == common.AnchorStatus.ANCHORED
    assert event.anchor.tx_hash and event.anchor.block_number == 1


async def test_watch_one_record_and_failures(harness: Harness) -> None:
    h = harness
    err = await rpc_error(_first(h.service.watch_anchors(pb.WatchAnchorsRequest(record_id="x"))))
    assert field_violations(err) == [("domain", "is required when record_id is given")]

    watching = asyncio.create_task(
        _first(h.service.watch_anchors(pb.WatchAnchorsRequest(domain=LEARNING, record_id="st-2")))
    )
    await asyncio.sleep(0.3)  # let the stream subscribe (no assertion depends on time)
    await sign_and_submit(h, 1)
    await sign_and_submit(h, 2)
    h.chain.down = True
    [batch] = await h.engine.seal_ready(force=True)
    await h.store.mark_failed(batch.batch_id, "chain unreachable for good (test)")
    await h.relay.relay_once()
    event = (await asyncio.wait_for(watching, 20)).event
    assert event.record_id == "st-2" and event.anchor.status == common.AnchorStatus.FAILED
    assert event.anchor.failure_reason == "chain unreachable for good (test)"
    status = await h.service.get_anchor_status(
        pb.GetAnchorStatusRequest(domain=LEARNING, record_id="st-1")
    )
    assert status.anchor.status == common.AnchorStatus.FAILED
    failed = await h.service.get_batch(pb.GetBatchRequest(batch_id=status.anchor.batch_id))
    assert failed.batch.failure_reason == "chain unreachable for good (test)"


async def _first(stream: AsyncIterator[pb.WatchAnchorsResponse]) -> pb.WatchAnchorsResponse:
    async for item in stream:
        return item
    raise AssertionError("the stream ended without an event")

"""EnrollHumanity against a real embedded Keikochain node: the identity service registers
the commitment through the chain translator's RegisterHumanity (over gRPC, with its own
service token), the translator sends the humanity_registry transaction from the user's
dedicated registrant account, and the registration is readable from chain.

One node process and one registry invoke (about a second of node CPU); outcomes are
awaited, durations are not asserted.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from chain.client import KeikoChain
from chain.node.process import free_port, start_node_process
from chain.translator.anchoring import AnchoringEngine, EngineSettings
from chain.translator.batching import BackoffPolicy, BatchPolicy
from chain.translator.keys import KeyVault
from chain.translator.learner_accounts import LearnerAccounts, LearnerAccountStore
from chain.translator.ports import (
    ChainConfig,
    ChainConnection,
    ClientAnchorChain,
    chain_config_from_env,
)
from chain.translator.service import ChainTranslator
from chain.translator.servicer import ChainServicer
from chain.translator.storage import MIGRATIONS_DIR, ChainStore
from services.api.keiko.chain import v1 as chain_pb
from services.api.keiko.identity import v1 as pb
from services.identity.humanity import pipeline
from services.identity.humanity import synthetic as syn
from services.identity.humanity_registrar import TranslatorRegistrar
from services.identity.humanity_service import HumanityService
from services.identity.humanity_storage import outbox
from services.identity.service import IdentityService
from services.identity.servicer import HumanityIdentityServicer
from services.identity.tests.test_humanity_rpcs import SEED, Humanity, RecordingRegistrar, sample
from services.identity.wiring import SERVICE_PRINCIPAL
from services.kit.auth import TokenIssuer, TokenVerifier
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import stub
from services.kit.grpc.testing import running_host
from services.kit.migrations import upgrade


@dataclass
class OnChain:
    humanity: Humanity
    public: chain_pb.ChainServiceStub
    config: ChainConfig


@pytest.fixture(scope="module", autouse=True)
def _warm_pipeline() -> None:
    pipeline.warm_up()


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("identity", "chain")


@pytest.fixture
async def on_chain(
    tmp_path: Path,
    service: IdentityService,
    issuer: TokenIssuer,
    verifier: TokenVerifier,
    clock: FixedClock,
    migrated_database: Database,
    event_bus: EventBus,
) -> AsyncIterator[OnChain]:
    await upgrade(migrated_database, "chain", MIGRATIONS_DIR)
    node = await asyncio.to_thread(
        start_node_process,
        tmp_path / "chain",
        port=free_port(),
        accounts=3,
        log_path=tmp_path / "node.log",
    )
    config = chain_config_from_env(data_dir=tmp_path, rpc_url=node.rpc_url, environ={})
    connection = ChainConnection(config.rpc_url, config.account, config.deployment_file)
    anchor_chain = ClientAnchorChain(connection)
    store = ChainStore(migrated_database, clock)
    engine = AnchoringEngine(
        store,
        anchor_chain,
        clock,
        EngineSettings(
            policy=BatchPolicy.of(16, 500),
            backoff=BackoffPolicy(initial=timedelta(seconds=1), max_delay=timedelta(seconds=5)),
        ),
    )
    vault = KeyVault(os.urandom(32))
    translator = ChainTranslator(
        store,
        vault,
        anchor_chain,
        engine,
        connection=connection,
        accounts=LearnerAccounts(LearnerAccountStore(migrated_database, clock), vault, connection),
    )
    relay = OutboxRelay(migrated_database, outbox, event_bus, clock=clock)
    registrar = TranslatorRegistrar("", lambda: issuer.issue(SERVICE_PRINCIPAL).token)
    humanity = HumanityService(
        migrated_database, clock, registrar=registrar, on_commit=relay.notify
    )
    servicers = [HumanityIdentityServicer(service, humanity), ChainServicer(translator)]
    try:
        async with running_host(servicers, token_verifier=verifier) as host:
            registrar.translator.target = f"127.0.0.1:{host.port}"
            async with grpc.aio.insecure_channel(registrar.translator.target) as channel:
                yield OnChain(
                    Humanity(
                        channel,
                        service,
                        humanity,
                        RecordingRegistrar(),  # unused: the real registrar is wired
                        relay,
                        event_bus,
                        clock,
                        migrated_database,
                    ),
                    stub(chain_pb.ChainServiceStub, channel),
                    config,
                )
    finally:
        await registrar.close()
        await connection.close()
        await asyncio.to_thread(node.stop)


async def test_enrollment_registers_the_commitment_on_a_real_dev_node(
    on_chain: OnChain,
) -> None:
    hum = on_chain.humanity
    ana_person = syn.make_person(SEED, 1)
    ana_id, ana = await hum.user("ana")
    enrolled = await hum.client(ana).enroll_humanity(
        pb.EnrollHumanityRequest(sample=sample(ana_person, 0), request_id="r-1")
    )
    assert enrolled.registry_tx_hash.startswith("0x")
    status = (await hum.client(ana).get_humanity_status(pb.GetHumanityStatusRequest())).status
    assert status.registered_on_chain and status.registry_tx_hash == enrolled.registry_tx_hash
    assert (await hum.client(ana).get_me(pb.GetMeRequest())).user.human_verified
    assert await hum.events(1) == [
        {"user_id": ana_id, "humanity_commitment": enrolled.humanity_commitment}
    ]

    # Anyone can check it without trusting identity: the translator's public read...
    found = await on_chain.public.get_humanity_registration(
        chain_pb.GetHumanityRegistrationRequest(commitment=enrolled.humanity_commitment)
    )
    assert found.registered and found.tx_hash == enrolled.registry_tx_hash
    assert found.ed25519_public_key == enrolled.ed25519_public_key
    # ... and the registry contract itself (the operator account, used only to read)
    config = on_chain.config
    assert config.account is not None
    async with await KeikoChain.connect(
        config.rpc_url, config.account.address, config.account.private_key, config.deployment_file
    ) as reader:
        commitment = int(enrolled.humanity_commitment, 16)
        account = await reader.registry.account_by_commitment(commitment)
        assert account is not None and account != config.account.address
        assert await reader.registry.is_human(account)
        assert await reader.registry.get_key(account) == bytes.fromhex(enrolled.ed25519_public_key)

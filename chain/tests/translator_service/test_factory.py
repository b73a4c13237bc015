"""build_chain_servicer: the translator as the platform hosts it, on a real dev node.

Checks the wiring the lead relies on: settings -> chain URL, account 0 and deployment
from the node's data dir, the KEK file, the three background jobs, and one record going
through gRPC to an anchored state through those jobs."""

from __future__ import annotations

import asyncio
import contextlib
import stat
import time
from pathlib import Path

import pytest

from chain.node.process import start_node_process
from chain.tests.translator_service.conftest import statement
from chain.translator.keys import ENV_KEK, KeyVault
from chain.translator.service import anchor_leaf_data
from chain.translator.servicer import KEK_FILE, build_chain_servicer, load_vault
from chain.translator.signing import canonical_bytes
from chain.translator.storage import MIGRATIONS_DIR
from keiko.runtime import ServiceRuntime
from keiko.settings import Settings
from services.api.keiko.chain import v1 as pb
from services.api.keiko.common import v1 as common
from services.kit.clock import SystemClock
from services.kit.db import Database
from services.kit.errors import FailedPrecondition
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.grpc.client import stub
from services.kit.grpc.testing import access_token, running_server, token_pair
from services.kit.migrations import upgrade


def test_kek_generated_once_with_mode_0600_on_embedded_only(tmp_path: Path) -> None:
    first = load_vault(tmp_path, embedded=True, environ={})
    path = tmp_path / KEK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_vault(tmp_path, embedded=True, environ={})
    assert first.current_kek_id == again.current_kek_id
    with pytest.raises(FailedPrecondition):
        load_vault(tmp_path / "prod", embedded=False, environ={})
    from_env = load_vault(tmp_path, embedded=False, environ={ENV_KEK: path.read_text()})
    assert from_env.current_kek_id == first.current_kek_id


async def test_factory_wires_chain_jobs_and_anchors(
    tmp_path: Path, database_url: str, event_bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KEIKO_CHAIN_ACCOUNT_ADDRESS", "KEIKO_CHAIN_PRIVATE_KEY", ENV_KEK):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEIKO_CHAIN_BATCH_MAX_LEAVES", "3")
    embedded = database_url.startswith("sqlite")
    if not embedded:  # production engines: the KEK must come from the environment
        monkeypatch.setenv(ENV_KEK, KeyVault.new_kek())
    data_dir = tmp_path / "data"
    node = await asyncio.to_thread(
        start_node_process, data_dir / "chain", accounts=2, log_path=tmp_path / "node.log"
    )
    clock = SystemClock()
    database = Database(database_url, schemas=["chain"])
    issuer, verifier = token_pair(clock)
    fanout = EventFanout(event_bus, name="factory-test")
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await database.create_schemas()
        await upgrade(database, "chain", MIGRATIONS_DIR)
        settings = Settings(
            data_dir=data_dir,
            database_url=database_url,
            chain_node_host=node.host,
            chain_node_port=node.port,  # the platform's embedded node: no chain_rpc_url
        )
        runtime = ServiceRuntime(
            settings=settings,
            database=database,
            event_bus=event_bus,
            clock=clock,
            token_verifier=verifier,
            jwt_private_key_pem=None,
            fanout=fanout,
        )
        servicer = build_chain_servicer(runtime)
        assert set(runtime.jobs) == {
            "chain.anchoring",
            "chain.watcher",
            "chain.outbox",
            "chain.intake",
            "chain.key_rewrap",
            "chain.key_registrar",
        }
        assert servicer.public_methods == {
            "GetChainInfo",
            "GetInclusionProof",
            "VerifyInclusion",
            "GetHumanityRegistration",
        }
        tasks = [asyncio.create_task(job(stop)) for job in runtime.jobs.values()]
        async with running_server([servicer], token_verifier=verifier) as channel:
            client = stub(
                pb.ChainServiceStub,
                channel,
                access_token=access_token(issuer, "learning-svc", "service"),
            )
            info = await client.get_chain_info(pb.GetChainInfoRequest())
            assert info.rpc_url == node.rpc_url and info.translator_address
            for i in range(3):
                text = canonical_bytes(statement(i)).decode()
                signed = await client.sign_interaction(
                    pb.SignInteractionRequest(learner_id="ana", canonical_statement_json=text)
                )
                data = anchor_leaf_data(
                    "ana",
                    statement(i),
                    bytes.fromhex(signed.signature_hex),
                    bytes.fromhex(signed.public_key_hex),
                )
                await client.submit_for_anchoring(
                    pb.SubmitForAnchoringRequest(
                        domain=pb.AnchorDomain.from_string("LEARNING"),
                        record_id=f"st-{i}",
                        leaf_data=data,
                    )
                )
            if embedded:
                assert stat.S_IMODE((data_dir / KEK_FILE).stat().st_mode) == 0o600
            else:
                assert not (data_dir / KEK_FILE).exists()
            deadline = time.monotonic() + 240
            while True:
                status = await client.get_anchor_status(
                    pb.GetAnchorStatusRequest(
                        domain=pb.AnchorDomain.from_string("LEARNING"), record_id="st-2"
                    )
                )
                if status.anchor.status == common.AnchorStatus.ANCHORED:
                    break
                assert time.monotonic() < deadline, "record never anchored"
                await asyncio.sleep(0.1)
            assert status.anchor.tx_hash and status.anchor.block_number >= 1
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        await fanout.close()
        await database.dispose()
        await asyncio.to_thread(node.stop)

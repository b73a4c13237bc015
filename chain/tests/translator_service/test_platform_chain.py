"""The translator inside `keiko serve`: the platform starts the embedded node, builds the
servicer through a registry definition (as keiko/registry.py will), migrates the chain
schema from chain/translator/migrations, runs the background jobs; a statement recorded
by the learning service (its event on the bus) ends anchored."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from chain.node.process import free_port
from chain.tests.translator_service.conftest import statement
from chain.translator.keys import ENV_KEK, KeyVault
from keiko import registry
from keiko.platform import migrate, running_platform
from keiko.registry import ServiceDefinition
from keiko.settings import Settings
from services.api.keiko.chain import v1 as pb
from services.api.keiko.common import v1 as common
from services.kit.auth import Principal, TokenIssuer
from services.kit.clock import SystemClock
from services.kit.db import Database
from services.kit.events import Event, event_bus_from_url
from services.kit.grpc.client import stub


async def test_statement_event_to_anchor_inside_the_platform(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KEIKO_CHAIN_ACCOUNT_ADDRESS", "KEIKO_CHAIN_PRIVATE_KEY", ENV_KEK):
        monkeypatch.delenv(name, raising=False)
    if not database_url.startswith("sqlite"):
        monkeypatch.setenv(ENV_KEK, KeyVault.new_kek())
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        event_bus_url=event_bus_url,
        grpc_port=0,
        chain_node_port=free_port(),
        shutdown_grace_seconds=0.5,
    )
    definitions: list[ServiceDefinition] = registry.resolve(["chain"])
    database = Database(database_url, schemas=["chain"])
    await migrate(database, definitions)  # automatic on SQLite, `keiko migrate` elsewhere
    await database.dispose()
    bus = event_bus_from_url(event_bus_url)
    async with running_platform(settings, definitions, with_gateway=False) as running:
        assert running.chain_rpc_url is not None
        issuer = TokenIssuer(
            settings.jwt_key_path.read_bytes(), SystemClock(), timedelta(minutes=5)
        )
        token = issuer.issue(Principal("learning-svc", frozenset({"service"}))).token
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            client = stub(pb.ChainServiceStub, channel, access_token=token)
            info = await client.get_chain_info(pb.GetChainInfoRequest())
            assert info.rpc_url == running.chain_rpc_url and len(info.contracts) == 3
            st = statement(1)
            await asyncio.sleep(0.3)  # the intake's consumer group is created at start
            await bus.publish(
                Event(
                    "learning.interaction_recorded",
                    key="ana",
                    payload={
                        "statement_id": st["id"],
                        "learner_id": "ana",
                        "statement_json": json.dumps(st),
                        "device_signature": None,
                    },
                )
            )
            request = pb.GetAnchorStatusRequest(
                domain=pb.AnchorDomain.from_string("LEARNING"), record_id=str(st["id"])
            )
            deadline = time.monotonic() + 240
            while True:
                try:
                    status = await client.get_anchor_status(request)
                except grpc.aio.AioRpcError as err:
                    assert err.code() == grpc.StatusCode.NOT_FOUND
                else:
                    if status.anchor.status == common.AnchorStatus.ANCHORED:
                        break
                assert time.monotonic() < deadline, "the statement was never anchored"
                await asyncio.sleep(0.1)
            assert status.anchor.tx_hash and status.anchor.block_number >= 1
    await bus.close()

"""passportUpdated through a gateway that verifies tokens itself: the subscriptions of one
caller (same token) read one WatchPassport stream, every one of them gets every update,
and another caller's subscription stays on its own stream (gateway.shared_streams)."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from websockets.asyncio.client import ClientConnection, connect

import gateway.schema as gateway_schema
from gateway.tests.conftest import GatewayFactory
from gateway.tests.test_passport_graphql import WIRED, _build_schema
from services.kit.auth import TokenIssuer, TokenVerifier, generate_signing_key_pem, public_key_pem
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.testing import access_token
from services.passport.service import PassportService
from services.passport.servicer import PassportServicer
from services.passport.storage import outbox
from services.passport.tests.conftest import consume
from services.passport.tests.factories import interaction, minutes, recorded_event

pytestmark = pytest.mark.schemas("passport")

UPDATED = "subscription { passportUpdated { kind entry { statementId } } }"
# Another selection: its own execution, on the same upstream stream.
UPDATED_TOO = "subscription Mine { passportUpdated { occurredAt entry { statementId } kind } }"


async def _subscribe(
    stack: AsyncExitStack, url: str, token: str, document: str = UPDATED
) -> ClientConnection:
    ws = await stack.enter_async_context(connect(url, subprotocols=["graphql-transport-ws"]))  # type: ignore[list-item]
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await ws.send(json.dumps(init))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    subscribe = {"id": f"op-{id(ws)}", "type": "subscribe", "payload": {"query": document}}
    await ws.send(json.dumps(subscribe))
    return ws


async def _received(ws: ClientConnection, statement_ids: set[str], wait: float) -> bool:
    """Whether the update of one of ``statement_ids`` arrives within ``wait`` seconds,
    under this socket's operation id (other updates are skipped)."""
    try:
        async with asyncio.timeout(wait):
            while True:
                message = json.loads(await ws.recv())
                assert message["type"] not in ("error", "complete"), message
                if message["type"] != "next":
                    continue
                assert message["id"] == f"op-{id(ws)}", message
                update = message["payload"]["data"]["passportUpdated"]
                assert update["kind"] == "ENTRY_ADDED", message
                if update["entry"]["statementId"] in statement_ids:
                    return True
    except TimeoutError:
        return False


async def test_one_callers_subscriptions_share_one_watch_stream(
    live_gateway: GatewayFactory,
    migrated_database: Database,
    event_bus: EventBus,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not WIRED:
        monkeypatch.setattr(gateway_schema, "build_schema", _build_schema)
    # The gateway checks tokens with the system clock: tokens issued now.
    clock = FixedClock(datetime.now(UTC))
    private = generate_signing_key_pem()
    public_file = tmp_path / "jwt.pub"
    public_file.write_bytes(public_key_pem(private))
    issuer = TokenIssuer(private, clock, timedelta(minutes=15))
    verifier = TokenVerifier(public_key_pem(private), clock)
    service = PassportService(migrated_database, clock, share_base_url="https://gw.test")
    fanout = EventFanout(event_bus, name="gw-shared-watch-test")
    relay = OutboxRelay(migrated_database, outbox, event_bus)
    key = SigningKey.generate()
    written = 0

    async def record_for_ana() -> str:
        nonlocal written
        written += 1
        item = interaction(key, "ana", clock.now() + minutes(written))
        await consume(service, recorded_event(item))
        while await relay.relay_once():
            pass
        return item.statement_id

    try:
        async with (
            live_gateway(
                [PassportServicer(service, fanout)],
                clock=clock,
                issuer_verifier=(issuer, verifier),
                jwt_public_key_file=public_file,
            ) as live,
            AsyncExitStack() as stack,
        ):
            ana, ben = access_token(issuer, "ana"), access_token(issuer, "ben")
            for token in (ana, ben):
                await live.graphql("{ passport { id } }", token=token)
            anas = [await _subscribe(stack, live.ws_url, ana) for _ in range(3)]
            anas.append(await _subscribe(stack, live.ws_url, ana, UPDATED_TOO))
            bens = await _subscribe(stack, live.ws_url, ben)
            # Subscriptions are not acknowledged: updates until each of Ana's has one.
            # Any update counts, a late one too: on a loaded machine an update may take
            # longer than one round's wait, and waiting for the newest only would skip it.
            pending = set(range(len(anas)))
            recorded: set[str] = set()
            for _ in range(20):
                recorded.add(await record_for_ana())
                pending -= {i for i in pending if await _received(anas[i], recorded, 0.5)}
                if not pending:
                    break
            assert not pending, "some subscriptions never received an update"
            assert len(fanout._watchers) == 2  # Ana's four share one stream; Ben has his

            statement_id = await record_for_ana()
            for ws in anas:
                assert await _received(ws, {statement_id}, 10)
            with pytest.raises(TimeoutError):  # never an update of Ana's passport
                await asyncio.wait_for(bens.recv(), 0.2)
    finally:
        await fanout.close()

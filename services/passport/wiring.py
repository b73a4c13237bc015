"""The passport service on the platform's runtime (keiko.registry): the chain reader and
proof source verification uses, the outbox relay, credential signing through the
translator, and the consumer of learning and chain events."""

from __future__ import annotations

import asyncio
import os
import socket
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

from chain.verify import AsyncChainReader
from services.kit.auth import TokenIssuer
from services.kit.clock import Clock
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import (
    Deduplicator,
    handle_batch_once,
    handle_once,
    run_page_consumer,
)
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import ChannelOpener, LazyChannel, channel_opener, open_channel
from services.kit.runtime import BackgroundJob, ServiceRuntime
from services.passport.credentials.service import CredentialService
from services.passport.credentials.signing import SERVICE_PRINCIPAL, TranslatorSigning
from services.passport.service import (
    CONSUMED_TOPICS,
    ChainReaderFactory,
    PassportService,
    ProofSource,
)
from services.passport.servicer import PassportServicer
from services.passport.storage import outbox, processed_events

CONSUMER_GROUP = "passport"


def chain_reader_factory(rpc_url: str, deployment: Path | str) -> ChainReaderFactory:
    """Readers over the anchoring contract at ``rpc_url`` (read-only: no account used)."""
    from chain.verify.cli import anchor_reader

    def factory() -> AbstractAsyncContextManager[AsyncChainReader]:
        return anchor_reader(rpc_url, deployment=deployment)

    return factory


class GrpcProofSource:
    """Inclusion proofs from the translator's public GetInclusionProof (one channel,
    opened on first use)."""

    def __init__(self, target: str, connect: ChannelOpener = open_channel) -> None:
        self.translator = LazyChannel(target, connect)

    async def siblings(self, domain: str, record_id: str) -> list[str]:
        from services.api.keiko.chain import v1 as chain_pb

        client = self.translator.stub(chain_pb.ChainServiceStub)
        reply = await client.get_inclusion_proof(
            chain_pb.GetInclusionProofRequest(
                domain=chain_pb.AnchorDomain.from_string(domain.upper()), record_id=record_id
            ),
            timeout=10,
        )
        return list(reply.proof.siblings)

    async def close(self) -> None:
        await self.translator.close()


def build_passport_servicer(
    runtime: ServiceRuntime,
    *,
    chain_reader: ChainReaderFactory | None = None,
    proof_source: ProofSource | None = None,
    share_base_url: str | None = None,
) -> PassportServicer:
    """Composition-root factory: the servicer plus its background jobs (outbox relay and
    the consumer of learning and chain events). Verification uses ``chain_reader``, by
    default the anchoring contract at ``settings.chain_rpc_url`` (or the embedded node's
    URL) with ``KEIKO_CHAIN_DEPLOYMENT_FILE`` or ``<data dir>/chain/deployment.json`` (as
    the translator); share-link URLs start with ``settings.public_gateway_url``
    (``KEIKO_PUBLIC_BASE_URL``, default ``http://localhost:<http port>``); proofs missing
    from anchor events come from the translator (:func:`translator_target`)."""
    settings = runtime.settings
    default_reader = chain_reader is None
    if chain_reader is None:
        from chain.translator.ports import chain_config_from_env

        config = chain_config_from_env(
            data_dir=settings.data_dir,
            rpc_url=settings.chain_rpc_url,
            node_host=settings.chain_node_host,
            node_port=settings.chain_node_port,
        )
        chain_reader = chain_reader_factory(config.rpc_url, config.deployment_file)
    if proof_source is None:
        proof_source = GrpcProofSource(translator_target(settings), channel_opener(runtime))
    base = share_base_url or settings.public_gateway_url
    service = PassportService(
        runtime.database,
        runtime.clock,
        share_base_url=base,
        chain_reader=chain_reader,
        proof_source=proof_source,
        # The default reader opens its own connection per use: safe on a worker thread.
        verify_in_thread=default_reader,
    )
    relay = OutboxRelay(runtime.database, outbox, runtime.event_bus, clock=runtime.clock)
    service.on_commit.append(relay.notify)
    runtime.run_in_background("passport.outbox_relay", relay.run)
    credentials = CredentialService(service, credential_signing(runtime), public_base_url=base)
    service.on_commit.append(credentials.notify)
    runtime.run_in_background("passport.status_publisher", credentials.publisher)
    runtime.run_in_background(
        "passport.consumer", consumer_job(service, runtime.event_bus, runtime.clock, relay)
    )
    return PassportServicer(service, runtime.fanout, credentials=credentials)


def credential_signing(runtime: ServiceRuntime) -> TranslatorSigning | None:
    """The translator's SignCredential with the passport's own service token, minted with
    the platform's JWT key; None (issuing answers UNAVAILABLE) in a process without it."""
    private_pem: bytes | None = getattr(runtime, "jwt_private_key_pem", None)
    if private_pem is None:
        return None
    issuer = TokenIssuer(private_pem, runtime.clock, timedelta(minutes=5))
    return TranslatorSigning(
        translator_target(runtime.settings),
        lambda: issuer.issue(SERVICE_PRINCIPAL).token,
        connect=channel_opener(runtime),
    )


def translator_target(settings: Any) -> str:
    """Where the chain translator answers: ``chain_translator_target`` (its replicas, when
    it runs apart), else this platform's own gRPC target."""
    return str(getattr(settings, "chain_translator_target", "") or settings.gateway_target)


def consumer_job(
    service: PassportService, bus: EventBus, clock: Clock, relay: OutboxRelay | None = None
) -> BackgroundJob:
    """Consume learning and chain events into the timeline, each event once in effect."""
    dedupe = Deduplicator(processed_events, group=CONSUMER_GROUP, clock=clock)

    async def on_event(event: Event) -> None:
        prepared = await service.prepare_event(event)
        if await handle_once(service.db, dedupe, prepared, service.handle_event) and relay:
            relay.notify()

    async def on_page(events: list[Event]) -> None:
        prepared = [await service.prepare_event(event) for event in events]
        if await handle_batch_once(service.db, dedupe, prepared, service.handle_events) and relay:
            relay.notify()

    async def run(stop: asyncio.Event) -> None:
        subscription = bus.subscribe(
            list(CONSUMED_TOPICS),
            group=CONSUMER_GROUP,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
            start="earliest",
        )
        consumer = asyncio.create_task(run_page_consumer(subscription, on_page, on_event))
        await stop.wait()
        await subscription.close()
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)

    return run

"""The identity service on the platform's runtime (keiko.registry): its settings out of
`KEIKO_*`, the servicer with or without proof of humanity, the identity outbox relay, and
the background jobs (purging expired rows, retrying on-chain humanity registrations,
warming up the humanity pipeline)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.identity import humanity as humanity_pipeline
from services.identity.humanity import IndexKey
from services.identity.humanity_registrar import TranslatorRegistrar
from services.identity.humanity_service import HumanityService
from services.identity.humanity_storage import outbox as identity_outbox
from services.identity.service import IdentityService
from services.identity.servicer import (
    ClientInfoProvider,
    HumanityIdentityServicer,
    IdentityServicer,
)
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal, TokenIssuer
from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import channel_opener
from services.kit.logging import get_logger

log = get_logger(__name__)


class PlatformSettings(Protocol):
    """The `KEIKO_*` settings the identity service reads (keiko.settings.Settings)."""

    @property
    def webauthn_rp_id(self) -> str: ...
    @property
    def webauthn_rp_name(self) -> str: ...
    @property
    def webauthn_origins(self) -> Sequence[str]: ...
    @property
    def access_token_ttl_seconds(self) -> int: ...
    @property
    def refresh_token_ttl_days(self) -> int: ...
    @property
    def gateway_target(self) -> str: ...
    @property
    def chain_rpc_url(self) -> str: ...
    @property
    def chain_translator_target(self) -> str: ...
    @property
    def humanity_warm_up(self) -> bool: ...
    @property
    def humanity_index_key_file(self) -> Path | None: ...


class IdentityRuntime(Protocol):
    """What the identity service takes from the process (keiko.runtime.ServiceRuntime)."""

    @property
    def settings(self) -> PlatformSettings: ...
    @property
    def database(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def jwt_private_key_pem(self) -> bytes | None: ...
    def run_in_background(
        self, name: str, job: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    ) -> None: ...


PURGE_INTERVAL_S = 3600.0


def identity_settings_from(runtime: IdentityRuntime) -> IdentitySettings:
    """The identity settings out of the platform's `KEIKO_*` configuration."""
    settings = runtime.settings
    return IdentitySettings(
        rp_id=settings.webauthn_rp_id,
        rp_name=settings.webauthn_rp_name,
        allowed_origins=tuple(settings.webauthn_origins),
        access_token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_token_ttl=timedelta(days=settings.refresh_token_ttl_days),
    )


def build_identity_servicer(
    runtime: IdentityRuntime, *, client_info: ClientInfoProvider | None = None
) -> IdentityServicer:
    """Composition-root factory (keiko.registry): the servicer on the runtime's database,
    clock and JWT signing key."""
    if runtime.jwt_private_key_pem is None:
        raise RuntimeError("the identity service needs the JWT signing key (Ed25519 PEM)")
    settings = identity_settings_from(runtime)
    issuer = TokenIssuer(runtime.jwt_private_key_pem, runtime.clock, settings.access_token_ttl)
    # The identity outbox (identity.session_revoked, identity.humanity_verified).
    event_bus: EventBus | None = getattr(runtime, "event_bus", None)
    relay = None
    if event_bus is not None:
        relay = OutboxRelay(runtime.database, identity_outbox, event_bus, clock=runtime.clock)
        runtime.run_in_background("identity.outbox", relay.run)
    else:
        log.warning("identity.events_disabled", reason="the runtime has no event bus")
    service = IdentityService(
        runtime.database,
        settings,
        runtime.clock,
        issuer,
        on_commit=relay.notify if relay is not None else None,
    )
    runtime.run_in_background("identity.purge_expired", purge_job(service))
    humanity = None if relay is None else build_humanity_service(runtime, issuer, relay)
    if humanity is None:
        return IdentityServicer(service, client_info=client_info)
    return HumanityIdentityServicer(service, humanity, client_info=client_info)


# The identity service's own principal towards other services (the chain translator's
# RegisterHumanity accepts trusted callers only: role "service").
SERVICE_PRINCIPAL = Principal(user_id="keiko-identity", roles=frozenset({"service"}))
REGISTRATION_INTERVAL_S = 30.0


def build_humanity_service(
    runtime: IdentityRuntime,
    issuer: TokenIssuer,
    relay: OutboxRelay,
) -> HumanityService:
    """Proof of humanity on the runtime: the service (its events go out through the
    identity outbox `relay`), the pipeline warm-up (`settings.humanity_warm_up`) and, when
    the platform has a chain (`settings.chain_rpc_url`), the registrar (the chain
    translator's RegisterHumanity at `settings.chain_translator_target`, default the
    platform's gRPC target) and the registration retry job. Without a chain, enrollments
    stay pending until a process with one retries them. A runtime without an event bus gets
    no humanity service (the RPCs answer UNIMPLEMENTED)."""
    registrar: TranslatorRegistrar | None = None
    settings = runtime.settings
    if settings.chain_rpc_url:
        target = settings.chain_translator_target or settings.gateway_target
        registrar = TranslatorRegistrar(
            target,
            lambda: issuer.issue(SERVICE_PRINCIPAL).token,
            connect=channel_opener(runtime),
        )
    humanity = HumanityService(
        runtime.database,
        runtime.clock,
        registrar=registrar,
        on_commit=relay.notify,
        index_key=humanity_index_key(settings.humanity_index_key_file, runtime.jwt_private_key_pem),
    )
    if settings.humanity_warm_up:
        runtime.run_in_background("identity.humanity_warm_up", warm_up_job(humanity.index_key))
    if registrar is not None:
        runtime.run_in_background(
            "identity.humanity_registration", registration_job(humanity, registrar)
        )
    return humanity


def humanity_index_key(key_file: Path | None, jwt_private_key_pem: bytes | None) -> IndexKey:
    """The duplicate-check index key: the file's bytes (at least 32 random bytes) when one
    is configured; otherwise derived from the identity signing key (HKDF with its own
    label), so the replicas of a deployment agree without more configuration. A new key
    leaves earlier enrollments without usable tags: they are then decoded by every
    duplicate check (correct, slower) until re-enrolled."""
    if key_file is not None:
        return IndexKey(key_file.read_bytes())
    if jwt_private_key_pem is None:
        raise RuntimeError("the humanity index needs a key file or the identity signing key")
    secret = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"keiko/humanity-index-key/v1"
    ).derive(jwt_private_key_pem)
    return IndexKey(secret)


def warm_up_job(index_key: IndexKey) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Build the BCH codes, compile the decoder and tabulate the index key's iris tags
    once, off the event loop (seconds)."""

    async def run(stop: asyncio.Event) -> None:
        try:
            await asyncio.to_thread(humanity_pipeline.warm_up, index_key)
        except Exception:
            log.exception("identity.humanity_warm_up_failed")
        await stop.wait()

    return run


def registration_job(
    humanity: HumanityService,
    registrar: TranslatorRegistrar,
    interval_s: float = REGISTRATION_INTERVAL_S,
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Background job: retry pending on-chain registrations that are due, every
    `interval_s`, until `stop` is set."""

    async def run(stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await humanity.register_due()
                except Exception:
                    log.exception("identity.humanity_registration_failed")
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
                except TimeoutError:
                    continue
        finally:
            await registrar.close()

    return run


def purge_job(
    service: IdentityService, interval_s: float = PURGE_INTERVAL_S
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Background job: delete expired ceremonies, refresh tokens, old failures and idle
    rate-limit buckets every `interval_s`, until `stop` is set. Any replica may run it."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                removed = await service.purge_expired()
                if removed:
                    log.info("identity.purged", rows=removed)
            except Exception:
                log.exception("identity.purge_failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                continue

    return run

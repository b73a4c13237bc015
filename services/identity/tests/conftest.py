"""Fixtures of the identity tests: a migrated identity schema, the service, an authenticator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from keiko.authenticator import SoftwareAuthenticator
from services.identity.service import ClientInfo, IdentityService, SignedIn
from services.identity.settings import IdentitySettings, RateLimit
from services.kit.auth import (
    TokenIssuer,
    TokenVerifier,
    generate_signing_key_pem,
    public_key_pem,
)
from services.kit.clock import FixedClock
from services.kit.db import Database

RP_ID = "keiko.test"
ORIGIN = "https://app.keiko.test"
CLIENT = ClientInfo(address="203.0.113.7", user_agent="pytest-browser/1.0")


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("identity",)


@pytest.fixture(scope="session")
def signing_key_pem() -> bytes:
    return generate_signing_key_pem()


@pytest.fixture
def settings() -> IdentitySettings:
    return IdentitySettings(
        rp_id=RP_ID,
        rp_name="Keiko (test)",
        allowed_origins=(ORIGIN,),
        lockout_threshold=3,
        lockout_window=timedelta(minutes=15),
        lockout_duration=timedelta(minutes=30),
        # Generous: only the rate-limit tests tighten it.
        ceremony_rate_limit=RateLimit(capacity=1000, refill_per_second=100),
    )


@pytest.fixture
def issuer(signing_key_pem: bytes, clock: FixedClock, settings: IdentitySettings) -> TokenIssuer:
    return TokenIssuer(signing_key_pem, clock, settings.access_token_ttl)


@pytest.fixture
def verifier(signing_key_pem: bytes, clock: FixedClock) -> TokenVerifier:
    return TokenVerifier(public_key_pem(signing_key_pem), clock)


@pytest.fixture
def service(
    migrated_database: Database,
    settings: IdentitySettings,
    clock: FixedClock,
    issuer: TokenIssuer,
) -> IdentityService:
    return IdentityService(migrated_database, settings, clock, issuer)


@pytest.fixture
def authenticator() -> SoftwareAuthenticator:
    return SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)


async def register(
    service: IdentityService,
    authenticator: SoftwareAuthenticator,
    email: str = "ana@example.org",
    display_name: str = "Ana",
    *,
    fmt: str = "none",
) -> SignedIn:
    started = await service.begin_registration(email, display_name, CLIENT)
    response = authenticator.create(started.options_json, fmt=fmt)  # type: ignore[arg-type]
    return await service.finish_registration(started.ceremony_id, response, "", CLIENT)


async def login(
    service: IdentityService,
    authenticator: SoftwareAuthenticator,
    email: str = "ana@example.org",
    **knobs: object,
) -> SignedIn:
    started = await service.begin_login(email, CLIENT)
    response = authenticator.get(started.options_json, **knobs)  # type: ignore[arg-type]
    return await service.finish_login(started.ceremony_id, response, CLIENT)

"""Fixtures of the passport tests: a migrated passport schema, the service on a fixed
clock, and a helper that feeds events through the kit's deduplicating consumer."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from nacl.signing import SigningKey

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event
from services.kit.events.dedupe import Deduplicator, handle_once
from services.passport.service import PassportService
from services.passport.storage import processed_events


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("passport",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> PassportService:
    return PassportService(migrated_database, clock, share_base_url="https://keiko.test")


@pytest.fixture
def ana_key() -> SigningKey:
    return SigningKey.generate()


def user(user_id: str, *roles: str) -> Principal:
    return Principal(user_id=user_id, roles=frozenset(roles or ("learner",)))


ANA = user("ana")
BEN = user("ben")


async def consume(service: PassportService, *events: Event) -> list[bool]:
    dedupe = Deduplicator(processed_events, group="passport", clock=service.clock)
    done = []
    for event in events:
        prepared = await service.prepare_event(event)
        done.append(await handle_once(service.db, dedupe, prepared, service.handle_event))
    return done

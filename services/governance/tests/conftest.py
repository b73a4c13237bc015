"""Fixtures of the governance tests: a migrated governance schema, the service on a fixed
clock, principals and a way to mark users as verified humans (through identity events)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

import pytest

from services.governance import domain as d
from services.governance.humanity import (
    TOPIC_HUMANITY_REVOKED,
    TOPIC_HUMANITY_VERIFIED,
    HumanityMirror,
)
from services.governance.service import GovernanceService
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("governance",)


@pytest.fixture
def service(migrated_database: Database, clock: FixedClock) -> GovernanceService:
    return GovernanceService(migrated_database, clock)


@pytest.fixture
def mirror(migrated_database: Database, clock: FixedClock) -> HumanityMirror:
    return HumanityMirror(migrated_database, clock)


def user(name: str = "", *roles: str) -> Principal:
    """A caller with a fresh user id (the token's subject)."""
    return Principal(user_id=str(uuid.uuid4()), roles=frozenset(roles or ("learner",)))


def humanity_event(user_id: str, verified: bool = True, clock: FixedClock | None = None) -> Event:
    topic = TOPIC_HUMANITY_VERIFIED if verified else TOPIC_HUMANITY_REVOKED
    when = clock.now() if clock else FixedClock().now()
    return Event(topic, key=user_id, payload={"user_id": user_id}, occurred_at=when)


async def verify(mirror: HumanityMirror, clock: FixedClock, *principals: Principal) -> None:
    for principal in principals:
        await mirror.handle(humanity_event(principal.user_id, True, clock))


def rules(**changes: object) -> d.CommunityRules:
    base = d.CommunityRules(
        voting_method=d.VotingMethod.SINGLE_CHOICE,
        voting_mode=d.VotingMode.OFF_CHAIN,
        quorum_bps=5_000,
        approval_threshold_bps=5_001,
        default_voting_period=timedelta(days=3),
        proposer_role=d.MemberRole.MEMBER,
        open_membership=True,
        quadratic_credit_budget=0,
    )
    from dataclasses import replace

    return replace(base, **changes)  # type: ignore[arg-type]

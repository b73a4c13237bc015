"""A client's retry racing its first attempt (same request id, both running at once), made
deterministic by `services.kit.races`: the retry answers what a later retry would, nothing
is stored twice, no INTERNAL. One case per capability that takes a request id; both
engines (on PostgreSQL the retry is seen waiting for the first call's commit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Table, func, select

from services.kit.auth import Principal
from services.kit.db import Database
from services.kit.races import twin_calls
from services.marketplace.reservations.domain import ReservationInput
from services.marketplace.reservations.storage import reservations
from services.marketplace.service import MarketplaceService
from services.marketplace.spaces.domain import SpaceInput
from services.marketplace.spaces.servicer import availability_from_pb
from services.marketplace.spaces.storage import spaces
from services.marketplace.tests.conftest import ALL_WEEK, at
from services.marketplace.tutor_sessions.domain import SessionInput
from services.marketplace.tutor_sessions.storage import tutor_sessions
from services.marketplace.verification.storage import certifications

OWNER = Principal("owner-1", frozenset({"space_owner"}))
TUTOR = Principal("tutor-1", frozenset({"tutor"}))


def space_input(request_id: str = "") -> SpaceInput:
    return SpaceInput(
        name="Biblioteca Norte",
        description="",
        address="Calle Mayor 1, Madrid",
        geo=None,
        time_zone="UTC",
        capacity=8,
        amenities=(),
        accessibility_features=(),
        rate_currency="EUR",
        rate_minor=2000,
        availability=availability_from_pb(ALL_WEEK, "space.availability"),
        request_id=request_id,
    )


def ident(result: Any) -> Any:
    """What identifies a call's answer: its object's id (the first of a pair)."""
    return (result[0] if isinstance(result, tuple) else result).id


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[MarketplaceService, str], Awaitable[Any]]  # (service, space id)
    table: Table  # where each call stores one row


CASES = [
    Case("create_space", lambda s, _: s.spaces.create_space(OWNER, space_input("r1")), spaces),
    Case(
        "create_reservation",
        lambda s, space: s.reservations.create_reservation(
            TUTOR,
            ReservationInput(space, "", "student-1", at(10, 10), at(10, 11), request_id="r1"),
        ),
        reservations,
    ),
    Case(
        "book_tutor_session",
        lambda s, space: s.tutor_sessions.book_tutor_session(
            TUTOR,
            SessionInput(
                space, "", "student-1", at(10, 10), at(10, 11), "Algebra", request_id="r1"
            ),
        ),
        tutor_sessions,
    ),
    Case(
        "add_certification",
        lambda s, space: s.verification.add_certification(
            OWNER,
            space,
            name="Fire safety",
            issuer="City",
            reference="",
            valid_until=None,
            request_id="r1",
        ),
        certifications,
    ),
]


async def count(db: Database, table: Table) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_retry_racing_its_first_call_answers_as_a_later_retry(
    case: Case, service: MarketplaceService, migrated_database: Database
) -> None:
    db = migrated_database
    space = await service.spaces.create_space(OWNER, space_input())
    before = await count(db, case.table)
    twins = await twin_calls(db, lambda: case.call(service, space.id))
    if db.dialect == "postgresql":
        assert twins.second_waited or twins.second_finished_first
    first, second = twins.results()
    assert ident(first) == ident(second)
    assert ident(await case.call(service, space.id)) == ident(first)
    assert await count(db, case.table) == before + 1

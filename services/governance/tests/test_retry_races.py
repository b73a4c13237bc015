"""A client's retry racing its first attempt (same request id, both running at once), made
deterministic by `services.kit.races`: the retry answers what a later retry would, nothing
is stored twice, no INTERNAL. Every governance write that takes a request id; both
engines (on PostgreSQL the retry is seen waiting for the first call's commit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import Table, func, select

from services.governance import domain as d
from services.governance.humanity import HumanityMirror
from services.governance.service import GovernanceService
from services.governance.storage.communities import communities
from services.governance.storage.proposals import proposals
from services.governance.storage.voting import votes
from services.governance.tests.conftest import rules, user
from services.governance.tests.test_service import community, members, proposal_input
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.races import twin_calls


@dataclass(frozen=True)
class Setup:
    admin: Principal
    voter: Principal
    community: d.Community
    proposal: d.Proposal


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[GovernanceService, Setup], Awaitable[Any]]
    table: Table  # where each call stores one row


CASES = [
    Case(
        "create_community",
        lambda s, at: s.communities.create_community(
            at.admin,
            name="Physics",
            description="",
            rules=rules(),
            initial_standards="",
            initial_validation_rules="",
            request_id="r1",
        ),
        communities,
    ),
    Case(
        "create_proposal",
        lambda s, at: s.proposals.create_proposal(
            at.admin, replace(proposal_input(at.community.id), request_id="r1")
        ),
        proposals,
    ),
    Case(
        "cast_vote",
        lambda s, at: s.voting.cast_vote(at.voter, at.proposal.id, [d.Choice(0)], "r1"),
        votes,
    ),
]


def ident(result: Any) -> Any:
    """What identifies a call's answer: the vote itself, else its object's id."""
    if isinstance(result, tuple):
        return result[0]
    return getattr(result, "proposal", result).id


async def count(db: Database, table: Table) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_retry_racing_its_first_call_answers_as_a_later_retry(
    case: Case,
    service: GovernanceService,
    mirror: HumanityMirror,
    clock: FixedClock,
    migrated_database: Database,
) -> None:
    db = migrated_database
    admin = user()
    circle = await community(service, admin)
    [voter] = await members(service, circle.id, 1, mirror, clock)
    view = await service.proposals.create_proposal(admin, proposal_input(circle.id))
    setup = Setup(admin, voter, circle, view.proposal)
    before = await count(db, case.table)
    twins = await twin_calls(db, lambda: case.call(service, setup))
    if db.dialect == "postgresql":
        assert twins.second_waited or twins.second_finished_first
    first, second = twins.results()
    assert ident(first) == ident(second)
    assert ident(await case.call(service, setup)) == ident(first)
    assert await count(db, case.table) == before + 1

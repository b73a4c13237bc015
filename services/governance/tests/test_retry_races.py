"""A client's retry racing its first attempt (same request id, both running at once), made
deterministic by `services.kit.races`: the retry answers what a later retry would, nothing
is stored twice, no INTERNAL. Every governance write that takes a request id; both
engines (on PostgreSQL the retry is seen waiting for the first call's commit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Table, func, select

from services.governance import domain as d
from services.governance.humanity import HumanityMirror
from services.governance.onchain import ChainProposal
from services.governance.service import GovernanceService, NewProposal
from services.governance.storage import GovernanceRepository
from services.governance.storage.communities import communities
from services.governance.storage.proposals import proposal_requests, proposals
from services.governance.storage.voting import votes
from services.governance.tests.conftest import rules, user
from services.governance.tests.test_onchain_votes import RecordingChain
from services.governance.tests.test_service import community, members, proposal_input
from services.governance.usecases.context import new_id
from services.governance.usecases.proposals import CLAIM_ABANDONED_AFTER
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import Unavailable
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


@dataclass
class FailingOnce(RecordingChain):
    """The chain port whose first create_proposal fails as an unreachable node does."""

    failed: bool = False

    async def create_proposal(self, **kwargs: object) -> ChainProposal:
        if not self.failed:
            self.failed = True
            raise Unavailable("chain unavailable: connection refused")
        return await super().create_proposal(**kwargs)


async def on_chain_setup(
    db: Database, clock: FixedClock, chain: RecordingChain
) -> tuple[GovernanceService, Principal, NewProposal]:
    service = GovernanceService(db, clock, onchain=chain)
    admin = user()
    circle = await community(service, admin, voting_mode=d.VotingMode.ON_CHAIN)
    return service, admin, replace(proposal_input(circle.id), request_id="r1")


async def test_a_retry_racing_an_on_chain_create_sends_one_proposal_to_the_chain(
    clock: FixedClock, migrated_database: Database
) -> None:
    db = migrated_database
    chain = RecordingChain()
    service, admin, new = await on_chain_setup(db, clock, chain)
    twins = await twin_calls(db, lambda: service.proposals.create_proposal(admin, new))
    if db.dialect == "postgresql":
        assert twins.second_waited  # on the request's claim, before any send
    first, second = twins.results()
    assert chain.proposals == 1
    assert first.proposal.id == second.proposal.id
    assert second.proposal.onchain_proposal_id == "0x1"
    again = await service.proposals.create_proposal(admin, new)
    assert again.proposal.id == first.proposal.id and chain.proposals == 1
    assert await count(db, proposals) == 1


async def test_a_failed_on_chain_send_lets_the_request_go(
    clock: FixedClock, migrated_database: Database
) -> None:
    db = migrated_database
    chain = FailingOnce()
    service, admin, new = await on_chain_setup(db, clock, chain)
    with pytest.raises(Unavailable):
        await service.proposals.create_proposal(admin, new)
    assert await count(db, proposals) == 0 and await count(db, proposal_requests) == 0
    view = await service.proposals.create_proposal(admin, new)  # the client's retry
    assert view.proposal.onchain_proposal_id == "0x1" and chain.proposals == 1


async def test_a_retry_racing_a_failing_on_chain_create_does_the_work_itself(
    clock: FixedClock, migrated_database: Database
) -> None:
    db = migrated_database
    chain = FailingOnce()
    service, admin, new = await on_chain_setup(db, clock, chain)
    twins = await twin_calls(db, lambda: service.proposals.create_proposal(admin, new))
    assert isinstance(twins.first, Unavailable)
    assert not isinstance(twins.second, BaseException)
    assert twins.second.proposal.onchain_proposal_id == "0x1" and chain.proposals == 1
    assert await count(db, proposals) == 1


async def test_a_claim_abandoned_mid_send_is_taken_over(
    clock: FixedClock, migrated_database: Database
) -> None:
    db = migrated_database
    chain = RecordingChain()
    service, admin, new = await on_chain_setup(db, clock, chain)
    async with db.transaction() as session:  # a call that died after claiming
        await GovernanceRepository(session).claim_proposal_request(
            admin.user_id, "r1", new_id(), clock.now()
        )
    clock.advance(CLAIM_ABANDONED_AFTER + timedelta(seconds=1))
    view = await service.proposals.create_proposal(admin, new)
    assert view.proposal.onchain_proposal_id == "0x1" and chain.proposals == 1

"""The governance service on a real database (SQLite, and PostgreSQL in the real pass):
authorization of every write, bad input, lifecycle on a fixed clock, voting methods end
to end, one human one vote under concurrency, standards versioning, the humanity mirror."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.governance import domain as d
from services.governance.humanity import HumanityMirror
from services.governance.service import GovernanceService, NewProposal
from services.governance.storage import outbox
from services.governance.tests.conftest import humanity_event, rules, user, verify
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
)

S = d.ProposalStatus


async def community(
    service: GovernanceService,
    admin: Principal,
    name: str = "Algebra circle",
    **rule_changes: object,
) -> d.Community:
    return await service.communities.create_community(
        admin,
        name=name,
        description="people learning algebra",
        rules=rules(**rule_changes),
        initial_standards="# Be kind",
        initial_validation_rules='{"min_score": 0}',
        request_id="",
    )


def proposal_input(community_id: str, **changes: object) -> NewProposal:
    base = NewProposal(
        community_id=community_id,
        title="Meet on Fridays",
        body="Move the weekly session to Friday.",
        kind=d.ProposalKind.GENERAL,
        options=(),
        standards_change=None,
        rules_change=None,
        voting_starts_at=None,
        voting_ends_at=None,
        request_id="",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def members(
    service: GovernanceService, community_id: str, n: int, mirror: HumanityMirror, clock: FixedClock
) -> list[Principal]:
    people = [user() for _ in range(n)]
    for person in people:
        await service.communities.join_community(person, community_id)
    await verify(mirror, clock, *people)
    return people


async def fails(error: type[DomainError], coro: object) -> DomainError:
    with pytest.raises(error) as caught:
        await coro  # type: ignore[misc]
    return caught.value


# -- communities ------------------------------------------------------------------------------


async def test_create_community_makes_the_creator_admin_and_is_idempotent(
    service: GovernanceService,
) -> None:
    ana = user()
    first = await service.communities.create_community(
        ana,
        name="Physics",
        description="",
        rules=rules(),
        initial_standards="",
        initial_validation_rules="",
        request_id="req-1",
    )
    again = await service.communities.create_community(
        ana,
        name="Physics",
        description="",
        rules=rules(),
        initial_standards="",
        initial_validation_rules="",
        request_id="req-1",
    )
    assert again.id == first.id
    found, membership = await service.communities.get_community(ana, first.id)
    assert found.member_count == 1
    assert membership is not None and membership.role is d.MemberRole.ADMIN
    err = await fails(
        AlreadyExists,
        service.communities.create_community(
            user(),
            name="PHYSICS",
            description="",
            rules=rules(),
            initial_standards="",
            initial_validation_rules="",
            request_id="",
        ),
    )
    assert "already exists" in err.message


async def test_create_community_bad_input(service: GovernanceService) -> None:
    ana = user()

    async def create(**kw: object) -> ValidationError:
        args: dict[str, object] = {
            "name": "X",
            "description": "",
            "rules": rules(),
            "initial_standards": "",
            "initial_validation_rules": "",
            "request_id": "",
        }
        args.update(kw)
        err = await fails(ValidationError, service.communities.create_community(ana, **args))  # type: ignore[arg-type]
        assert isinstance(err, ValidationError)
        return err

    assert ((e := await create(name="  ")).field, e.reason) == ("name", "is required")
    assert (await create(name="x" * 121)).field == "name"
    assert (await create(rules=rules(quorum_bps=20_000))).field == "rules.quorum_bps"
    assert ((e := await create(initial_validation_rules="{nope")).field, e.reason) == (
        "initial_validation_rules.content",
        "is not valid JSON",
    )
    assert (await create(request_id="x" * 200)).field == "request_id"


async def test_on_chain_mode_is_refused_honestly(service: GovernanceService) -> None:
    err = await fails(
        FailedPrecondition, community(service, user(), voting_mode=d.VotingMode.ON_CHAIN)
    )
    assert "on-chain voting is not available" in err.message


async def test_join_leave_and_roles(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin, bea, carl = user(), user(), user()
    c = await community(service, admin)
    joined = await service.communities.join_community(bea, c.id)
    assert joined.role is d.MemberRole.MEMBER
    assert (
        await service.communities.join_community(bea, c.id)
    ).joined_at == joined.joined_at  # no-op
    # Non-admins cannot change roles, not even their own.
    await fails(
        PermissionDenied,
        service.communities.set_member_role(bea, c.id, bea.user_id, d.MemberRole.ADMIN),
    )
    await fails(
        PermissionDenied,
        service.communities.set_member_role(carl, c.id, bea.user_id, d.MemberRole.ADMIN),
    )
    promoted = await service.communities.set_member_role(
        admin, c.id, bea.user_id, d.MemberRole.MODERATOR
    )
    assert promoted.role is d.MemberRole.MODERATOR
    # A moderator is not an admin either.
    await fails(
        PermissionDenied,
        service.communities.set_member_role(bea, c.id, carl.user_id, d.MemberRole.MEMBER),
    )
    # The last admin can neither step down nor leave.
    err = await fails(
        FailedPrecondition,
        service.communities.set_member_role(admin, c.id, admin.user_id, d.MemberRole.MEMBER),
    )
    assert "last admin" in err.message
    await fails(FailedPrecondition, service.communities.leave_community(admin, c.id))
    await service.communities.leave_community(bea, c.id)
    await service.communities.leave_community(bea, c.id)  # a retried leave is a no-op
    page = await service.communities.list_members(admin, c.id, None, 0, "")
    assert [m.user_id for m in page.items] == [admin.user_id]
    await fails(PermissionDenied, service.communities.list_members(carl, c.id, None, 0, ""))
    await fails(
        NotFound, service.communities.join_community(carl, "00000000-0000-0000-0000-000000000000")
    )
    await fails(NotFound, service.communities.join_community(carl, "not-a-uuid"))
    err = await fails(ValidationError, service.communities.join_community(carl, ""))
    assert isinstance(err, ValidationError) and err.field == "community_id"


async def test_closed_community_is_joined_by_admin_approval(service: GovernanceService) -> None:
    admin, dan = user(), user()
    c = await community(service, admin, open_membership=False)
    err = await fails(PermissionDenied, service.communities.join_community(dan, c.id))
    assert "by approval" in err.message
    added = await service.communities.set_member_role(admin, c.id, dan.user_id, d.MemberRole.MEMBER)
    assert added.user_id == dan.user_id and not added.human_verified


async def test_list_communities_by_name_and_membership(service: GovernanceService) -> None:
    ana, bob = user(), user()
    await community(service, ana, "Algebra circle")
    geo = await community(service, bob, "Geometry club")
    await community(service, bob, "100% Algebra")
    page = await service.communities.list_communities(
        ana, query="algebra", member_only=False, requested_size=1, page_token=""
    )
    assert [c.name for c in page.items] == ["100% Algebra"] and page.next_page_token
    page = await service.communities.list_communities(
        ana, query="algebra", member_only=False, requested_size=1, page_token=page.next_page_token
    )
    assert [c.name for c in page.items] == ["Algebra circle"] and not page.next_page_token
    mine = await service.communities.list_communities(
        bob, query="", member_only=True, requested_size=0, page_token=""
    )
    assert {c.id for c in mine.items} >= {geo.id} and len(mine.items) == 2
    assert (
        await service.communities.list_communities(
            ana, query="%", member_only=False, requested_size=0, page_token=""
        )
    ).items[0].name == "100% Algebra"
    err = await fails(
        ValidationError,
        service.communities.list_communities(
            ana, query="", member_only=False, requested_size=-1, page_token=""
        ),
    )
    assert isinstance(err, ValidationError) and err.field == "page_size"
    err = await fails(
        ValidationError,
        service.communities.list_communities(
            ana, query="", member_only=False, requested_size=0, page_token="!!"
        ),
    )
    assert isinstance(err, ValidationError) and err.field == "page_token"


# -- proposals and lifecycle ---------------------------------------------------------------------


async def test_proposal_lifecycle_on_a_fixed_clock(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin = user()
    c = await community(service, admin, quorum_bps=5_000)
    voters = await members(service, c.id, 3, mirror, clock)
    await verify(mirror, clock, admin)
    start = clock.now() + timedelta(hours=1)
    view = await service.proposals.create_proposal(
        voters[0],
        proposal_input(c.id, voting_starts_at=start, voting_ends_at=start + timedelta(days=1)),
    )
    p = view.proposal
    assert view.status is S.PENDING and p.voting_method is d.VotingMethod.SINGLE_CHOICE
    err = await fails(
        FailedPrecondition, service.voting.cast_vote(voters[0], p.id, [d.Choice(0)], "")
    )
    assert "voting opens at" in err.message
    clock.advance(timedelta(hours=1))
    got, _ = await service.proposals.get_proposal(voters[1], p.id)
    assert got.status is S.ACTIVE  # derived from the clock before the job ran
    assert await service.lifecycle.advance() == 1  # the job persists it and snapshots eligibility
    got, _ = await service.proposals.get_proposal(voters[1], p.id)
    assert got.proposal.status is S.ACTIVE and got.proposal.eligible_voters == 4
    for v, option in zip(voters, (0, 0, 1), strict=True):
        await service.voting.cast_vote(v, p.id, [d.Choice(option)], "")
    err = await fails(FailedPrecondition, service.lifecycle.finalize_proposal(admin, p.id))
    assert "voting is open until" in err.message
    await fails(FailedPrecondition, service.lifecycle.execute_proposal(admin, p.id))
    clock.advance(timedelta(days=1))
    await fails(FailedPrecondition, service.voting.cast_vote(admin, p.id, [d.Choice(0)], ""))
    await fails(FailedPrecondition, service.lifecycle.cancel_proposal(voters[0], p.id, "too late"))
    final = await service.lifecycle.finalize_proposal(admin, p.id)
    assert final.status is S.SUCCEEDED and final.tally_final
    assert final.tally.total_voters == 3 and final.tally.eligible_voters == 4
    assert final.tally.quorum_reached and final.tally.leading_option_index == 0
    assert len(final.proposal.tally_digest) == 64
    assert final.proposal.anchor.status is d.AnchorStatus.PENDING
    again = await service.lifecycle.finalize_proposal(voters[2], p.id)  # idempotent
    assert again.proposal.tally_digest == final.proposal.tally_digest
    executed = await service.lifecycle.execute_proposal(voters[1], p.id)
    assert executed.proposal.status is S.EXECUTED and executed.adopted is None
    assert (await service.lifecycle.execute_proposal(voters[1], p.id)).proposal.status is S.EXECUTED
    await fails(FailedPrecondition, service.lifecycle.cancel_proposal(admin, p.id, ""))
    await fails(PermissionDenied, service.lifecycle.execute_proposal(user(), p.id))


async def test_quorum_missed_is_defeated_by_the_background_job(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin = user()
    c = await community(service, admin, quorum_bps=5_000)
    voters = await members(service, c.id, 4, mirror, clock)
    p = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    assert p.eligible_voters == 4  # admin is not verified
    await service.voting.cast_vote(voters[0], p.id, [d.Choice(0)], "")
    clock.advance(timedelta(days=3))
    assert await service.lifecycle.advance() == 1
    view, _ = await service.proposals.get_proposal(admin, p.id)
    assert view.status is S.DEFEATED and not view.tally.quorum_reached
    await fails(FailedPrecondition, service.lifecycle.execute_proposal(admin, p.id))


async def test_result_digest_is_reproducible_from_the_tally(
    service: GovernanceService,
    migrated_database: Database,
    mirror: HumanityMirror,
    clock: FixedClock,
) -> None:
    admin = user()
    c = await community(service, admin)
    voters = await members(service, c.id, 2, mirror, clock)
    p = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    for v in voters:
        await service.voting.cast_vote(v, p.id, [d.Choice(0)], "")
    clock.advance(timedelta(days=3))
    final = await service.lifecycle.finalize_proposal(admin, p.id)
    async with migrated_database.session() as s:
        rows = (
            await s.execute(select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.seq))
        ).all()
    finalized = [r.payload for r in rows if r.topic == "governance.proposal_finalized"]
    assert len(finalized) == 1
    event = finalized[0]
    assert event["tally_digest"] == final.proposal.tally_digest == d.tally_digest(event["result"])
    ballots = [d.Ballot(v.user_id, (d.Choice(0),)) for v in voters]
    assert event["ballots_digest"] == d.ballots_digest(p.id, ballots)
    recomputed = d.canonical_result(
        proposal_id=p.id,
        community_id=c.id,
        method=p.voting_method,
        quorum_bps=p.quorum_bps,
        approval_threshold_bps=p.approval_threshold_bps,
        status=final.status,
        tally=final.tally,
        ballots_sha256=d.ballots_digest(p.id, ballots),
    )
    assert d.tally_digest(recomputed) == final.proposal.tally_digest


async def test_proposal_authorization_and_bad_input(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin, member, outsider = user(), user(), user()
    c = await community(service, admin, proposer_role=d.MemberRole.MODERATOR)
    await service.communities.join_community(member, c.id)
    err = await fails(
        PermissionDenied, service.proposals.create_proposal(member, proposal_input(c.id))
    )
    assert "moderator" in err.message
    await fails(PermissionDenied, service.proposals.create_proposal(outsider, proposal_input(c.id)))
    await fails(
        NotFound,
        service.proposals.create_proposal(
            admin, proposal_input("7d3b4a56-5b8e-4d51-9a53-2b0b8a5d9b11")
        ),
    )

    async def bad(**changes: object) -> tuple[str, str]:
        e = await fails(
            ValidationError,
            service.proposals.create_proposal(admin, proposal_input(c.id, **changes)),
        )
        assert isinstance(e, ValidationError)
        return e.field, e.reason

    assert await bad(title="") == ("title", "is required")
    assert await bad(kind=None) == ("kind", "is required")
    assert await bad(options=(d.ProposalOption(0, "Only"),)) == (
        "options",
        "must hold between 2 and 16 options",
    )
    assert await bad(kind=d.ProposalKind.STANDARDS_CHANGE) == (
        "standards_change",
        "is required for a STANDARDS_CHANGE proposal",
    )
    assert await bad(kind=d.ProposalKind.RULES_CHANGE) == (
        "rules_change",
        "is required for a RULES_CHANGE proposal",
    )
    assert await bad(
        standards_change=d.StandardsChange(
            d.StandardsKind.COMMUNITY_STANDARDS, "x", "text/markdown"
        )
    ) == ("change", "a GENERAL proposal carries no change")
    assert await bad(
        kind=d.ProposalKind.STANDARDS_CHANGE,
        standards_change=d.StandardsChange(d.StandardsKind.COMMUNITY_STANDARDS, "x", "markdown"),
    ) == ("standards_change.content_type", "must be a media type like text/markdown")
    assert await bad(
        kind=d.ProposalKind.STANDARDS_CHANGE,
        standards_change=d.StandardsChange(d.StandardsKind.COMMUNITY_STANDARDS, "x", "text/plain"),
        options=(d.ProposalOption(0, "A"), d.ProposalOption(1, "B")),
    ) == ("options", "a change proposal is voted For/Against/Abstain: leave options empty")
    assert await bad(kind=d.ProposalKind.RULES_CHANGE, rules_change=rules(quorum_bps=10_001)) == (
        "rules_change.quorum_bps",
        "must be between 0 and 10000",
    )
    assert await bad(voting_starts_at=clock.now() - timedelta(minutes=1)) == (
        "voting_starts_at",
        "must not be in the past",
    )
    assert await bad(voting_ends_at=clock.now()) == (
        "voting_ends_at",
        "must be after voting_starts_at",
    )


async def test_create_proposal_is_idempotent_by_request_id(service: GovernanceService) -> None:
    admin = user()
    c = await community(service, admin)
    first = await service.proposals.create_proposal(admin, proposal_input(c.id, request_id="p-1"))
    again = await service.proposals.create_proposal(admin, proposal_input(c.id, request_id="p-1"))
    assert again.proposal.id == first.proposal.id
    page = await service.proposals.list_proposals(admin, c.id, [], 0, "")
    assert len(page.items) == 1


async def test_cancel_authorization(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin, author, other, moderator = user(), user(), user(), user()
    c = await community(service, admin)
    for m in (author, other, moderator):
        await service.communities.join_community(m, c.id)
    await service.communities.set_member_role(
        admin, c.id, moderator.user_id, d.MemberRole.MODERATOR
    )
    p1 = (await service.proposals.create_proposal(author, proposal_input(c.id))).proposal
    p2 = (await service.proposals.create_proposal(author, proposal_input(c.id))).proposal
    err = await fails(PermissionDenied, service.lifecycle.cancel_proposal(other, p1.id, "nope"))
    assert "author or a moderator" in err.message
    await fails(PermissionDenied, service.lifecycle.cancel_proposal(user(), p1.id, ""))
    e = await fails(ValidationError, service.lifecycle.cancel_proposal(author, p1.id, "x" * 1001))
    assert isinstance(e, ValidationError) and e.field == "reason"
    canceled = await service.lifecycle.cancel_proposal(author, p1.id, "duplicate")
    assert canceled.status is S.CANCELED and canceled.proposal.cancel_reason == "duplicate"
    retried = await service.lifecycle.cancel_proposal(author, p1.id, "again")  # idempotent
    assert retried.proposal.cancel_reason == "duplicate"
    await fails(PermissionDenied, service.lifecycle.cancel_proposal(other, p1.id, ""))
    await fails(FailedPrecondition, service.lifecycle.finalize_proposal(author, p1.id))
    assert (await service.lifecycle.cancel_proposal(moderator, p2.id, "")).status is S.CANCELED
    page = await service.proposals.list_proposals(admin, c.id, [S.CANCELED], 0, "")
    assert {v.proposal.id for v in page.items} == {p1.id, p2.id}
    assert (await service.proposals.list_proposals(admin, c.id, [S.ACTIVE], 0, "")).items == ()


# -- voting ---------------------------------------------------------------------------------


async def test_only_verified_members_vote_once(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin, unverified, outsider = user(), user(), user()
    c = await community(service, admin)
    (voter,) = await members(service, c.id, 1, mirror, clock)
    await service.communities.join_community(unverified, c.id)
    await verify(mirror, clock, outsider)
    p = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    err = await fails(PermissionDenied, service.voting.cast_vote(outsider, p.id, [d.Choice(0)], ""))
    assert "not a member" in err.message
    err = await fails(
        FailedPrecondition, service.voting.cast_vote(unverified, p.id, [d.Choice(0)], "")
    )
    assert "verified humans" in err.message
    e = await fails(ValidationError, service.voting.cast_vote(voter, p.id, [d.Choice(7)], ""))
    assert isinstance(e, ValidationError) and (e.field, e.reason) == (
        "choices[0].option_index",
        "must be between 0 and 2",
    )
    vote, view = await service.voting.cast_vote(voter, p.id, [d.Choice(1)], "v-1")
    assert view.tally.total_voters == 1 and not view.tally_final
    replay, _ = await service.voting.cast_vote(voter, p.id, [d.Choice(1)], "v-1")
    assert replay == vote
    await fails(AlreadyExists, service.voting.cast_vote(voter, p.id, [d.Choice(0)], "v-2"))
    await fails(AlreadyExists, service.voting.cast_vote(voter, p.id, [d.Choice(1)], ""))
    _, mine = await service.proposals.get_proposal(voter, p.id)
    assert mine == vote
    await fails(PermissionDenied, service.proposals.get_proposal(outsider, p.id))
    await fails(
        NotFound,
        service.voting.cast_vote(voter, "0b1e6d35-6b43-4f57-9d5f-56b7a8c1c111", [d.Choice(0)], ""),
    )
    # Revoked humanity: no more votes.
    await mirror.handle(humanity_event(voter.user_id, False, clock))
    p2 = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    await fails(FailedPrecondition, service.voting.cast_vote(voter, p2.id, [d.Choice(0)], ""))


@pytest.mark.parametrize(
    ("method", "ballots", "expected_votes", "passed"),
    [
        (
            d.VotingMethod.APPROVAL,
            [[(0, 0, 0), (2, 0, 0)], [(0, 0, 0)], [(1, 0, 0)]],
            [2.0, 1.0, 1.0],
            True,
        ),
        (
            d.VotingMethod.WEIGHTED,
            [[(0, 80, 0), (1, 20, 0)], [(0, 100, 0)], [(1, 60, 0), (2, 40, 0)]],
            [1.8, 0.8, 0.4],
            True,
        ),
        (
            d.VotingMethod.QUADRATIC,
            [[(0, 0, 100)], [(1, 0, 49), (2, 0, 51)], [(1, 0, 16)]],
            [10.0, 11.0, 7.141428],
            False,
        ),
    ],
)
async def test_each_method_end_to_end(
    service: GovernanceService,
    mirror: HumanityMirror,
    clock: FixedClock,
    method: d.VotingMethod,
    ballots: list[list[tuple[int, int, int]]],
    expected_votes: list[float],
    passed: bool,
) -> None:
    admin = user()
    budget = 100 if method is d.VotingMethod.QUADRATIC else 0
    c = await community(
        service, admin, voting_method=method, quadratic_credit_budget=budget, quorum_bps=0
    )
    voters = await members(service, c.id, len(ballots), mirror, clock)
    p = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    assert p.voting_method is method and p.quadratic_credit_budget == budget
    for voter, choices in zip(voters, ballots, strict=True):
        await service.voting.cast_vote(voter, p.id, [d.Choice(*ch) for ch in choices], "")
    clock.advance(timedelta(days=3))
    final = await service.lifecycle.finalize_proposal(admin, p.id)
    assert [o.votes for o in final.tally.options] == expected_votes
    assert final.status is (S.SUCCEEDED if passed else S.DEFEATED)


async def test_quadratic_budget_violation_and_frozen_method(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin = user()
    c = await community(
        service, admin, voting_method=d.VotingMethod.QUADRATIC, quadratic_credit_budget=50
    )
    (voter,) = await members(service, c.id, 1, mirror, clock)
    p = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    e = await fails(
        ValidationError,
        service.voting.cast_vote(voter, p.id, [d.Choice(0, 0, 30), d.Choice(1, 0, 25)], ""),
    )
    assert isinstance(e, ValidationError) and (e.field, e.reason) == (
        "choices",
        "credits spent (55) exceed the budget of 50",
    )
    e = await fails(
        ValidationError, service.voting.cast_vote(voter, p.id, [d.Choice(0, 10, 0)], "")
    )
    assert isinstance(e, ValidationError) and e.field == "choices[0].weight"
    # The rules in force when voting started stay frozen on the proposal.
    assert p.quadratic_credit_budget == 50
    await service.voting.cast_vote(voter, p.id, [d.Choice(0, 0, 49)], "")


async def test_twenty_concurrent_votes_by_one_member_count_once(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin = user()
    c = await community(service, admin)
    (voter,) = await members(service, c.id, 1, mirror, clock)
    p = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    results = await asyncio.gather(
        *(service.voting.cast_vote(voter, p.id, [d.Choice(i % 3)], f"r-{i}") for i in range(20)),
        return_exceptions=True,
    )
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(accepted) == 1
    assert all(isinstance(r, AlreadyExists) for r in refused), refused
    view, mine = await service.proposals.get_proposal(voter, p.id)
    assert view.tally.total_voters == 1 and mine is not None
    # Twenty retries of the same request all return the original vote.
    replays = await asyncio.gather(
        *(
            service.voting.cast_vote(voter, p.id, [d.Choice(0)], mine.request_id or "")
            for _ in range(20)
        )
    )
    assert {r[0] for r in replays} == {mine}


# -- standards and rules ---------------------------------------------------------------------


async def pass_proposal(
    service: GovernanceService,
    clock: FixedClock,
    author: Principal,
    voters: list[Principal],
    new: NewProposal,
) -> d.Proposal:
    p = (await service.proposals.create_proposal(author, new)).proposal
    for v in voters:
        await service.voting.cast_vote(v, p.id, [d.Choice(0)], "")
    clock.advance(timedelta(days=3))
    final = await service.lifecycle.finalize_proposal(author, p.id)
    assert final.status is S.SUCCEEDED
    return p


async def test_standards_are_versioned_by_passed_proposals(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin = user()
    c = await community(service, admin)
    voters = await members(service, c.id, 2, mirror, clock)
    v1 = await service.standards.get_standards(user(), c.id, d.StandardsKind.COMMUNITY_STANDARDS, 0)
    assert (v1.version, v1.content, v1.proposal_id) == (1, "# Be kind", "")
    change = d.StandardsChange(
        d.StandardsKind.COMMUNITY_STANDARDS, "# Be kind\n# Cite sources", "text/markdown"
    )
    p = await pass_proposal(
        service,
        clock,
        voters[0],
        voters,
        proposal_input(c.id, kind=d.ProposalKind.STANDARDS_CHANGE, standards_change=change),
    )
    executed = await service.lifecycle.execute_proposal(voters[1], p.id)
    assert executed.adopted is not None and executed.adopted.version == 2
    assert executed.adopted.content_hash == d.content_hash(change.content)
    replay = await service.lifecycle.execute_proposal(voters[1], p.id)
    assert replay.adopted == executed.adopted
    current = await service.standards.get_standards(
        admin, c.id, d.StandardsKind.COMMUNITY_STANDARDS, 0
    )
    assert current.version == 2 and current.proposal_id == p.id
    old = await service.standards.get_standards(admin, c.id, d.StandardsKind.COMMUNITY_STANDARDS, 1)
    assert old.content == "# Be kind"
    page = await service.standards.list_standards_versions(
        admin, c.id, d.StandardsKind.COMMUNITY_STANDARDS, 0, ""
    )
    assert [doc.version for doc in page.items] == [2, 1]
    await fails(
        NotFound,
        service.standards.get_standards(admin, c.id, d.StandardsKind.COMMUNITY_STANDARDS, 3),
    )
    rules_v = await service.standards.get_standards(
        admin, c.id, d.StandardsKind.VALIDATION_RULES, 0
    )
    assert rules_v.version == 1 and rules_v.content_type == "application/json"


async def test_a_closed_communitys_standards_are_for_its_members(
    service: GovernanceService,
) -> None:
    """Issue 9: a non-member reads an open community's standards, not a closed one's
    (PERMISSION_DENIED, like its proposals and members); members and admins do."""
    admin, member, outsider = user(), user(), user()
    platform_admin = Principal("platform-admin", frozenset({"admin"}))
    closed = await community(service, admin, "Closed circle", open_membership=False)
    await service.communities.set_member_role(admin, closed.id, member.user_id, d.MemberRole.MEMBER)
    kind = d.StandardsKind.COMMUNITY_STANDARDS
    err = await fails(
        PermissionDenied, service.standards.get_standards(outsider, closed.id, kind, 0)
    )
    assert err.message == "only members of the community may see this"
    await fails(
        PermissionDenied,
        service.standards.list_standards_versions(outsider, closed.id, kind, 0, ""),
    )
    for reader in (admin, member, platform_admin):
        doc = await service.standards.get_standards(reader, closed.id, kind, 0)
        assert doc.content == "# Be kind"
    opened = await community(service, admin, "Open circle")
    assert (await service.standards.get_standards(outsider, opened.id, kind, 0)).version == 1


async def test_rules_change_only_through_a_passed_proposal(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin = user()
    c = await community(service, admin)
    voters = await members(service, c.id, 2, mirror, clock)
    new_rules = rules(voting_method=d.VotingMethod.APPROVAL, quorum_bps=1_000)
    pending = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    p = await pass_proposal(
        service,
        clock,
        voters[0],
        voters,
        proposal_input(c.id, kind=d.ProposalKind.RULES_CHANGE, rules_change=new_rules),
    )
    await service.lifecycle.execute_proposal(voters[0], p.id)
    updated, _ = await service.communities.get_community(admin, c.id)
    assert updated.rules == new_rules
    # Proposals created before keep the method they were created with.
    older, _ = await service.proposals.get_proposal(admin, pending.id)
    assert older.proposal.voting_method is d.VotingMethod.SINGLE_CHOICE
    newer = await service.proposals.create_proposal(admin, proposal_input(c.id))
    assert newer.proposal.voting_method is d.VotingMethod.APPROVAL


async def test_a_defeated_change_is_not_applied(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin = user()
    c = await community(service, admin)
    voters = await members(service, c.id, 2, mirror, clock)
    change = d.StandardsChange(
        d.StandardsKind.COMMUNITY_STANDARDS, "# Anything goes", "text/markdown"
    )
    p = (
        await service.proposals.create_proposal(
            admin,
            proposal_input(c.id, kind=d.ProposalKind.STANDARDS_CHANGE, standards_change=change),
        )
    ).proposal
    for v in voters:
        await service.voting.cast_vote(v, p.id, [d.Choice(1)], "")
    clock.advance(timedelta(days=3))
    assert (await service.lifecycle.finalize_proposal(admin, p.id)).status is S.DEFEATED
    await fails(FailedPrecondition, service.lifecycle.execute_proposal(admin, p.id))
    current = await service.standards.get_standards(
        admin, c.id, d.StandardsKind.COMMUNITY_STANDARDS, 0
    )
    assert current.version == 1


# -- humanity mirror --------------------------------------------------------------------------


async def test_humanity_mirror_dedupes_and_ignores_stale_events(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin = user()
    c = await community(service, admin)
    verified = humanity_event(admin.user_id, True, clock)
    assert await mirror.handle(verified)
    assert not await mirror.handle(verified)  # redelivery
    stale = humanity_event(admin.user_id, False, FixedClock(clock.now() - timedelta(days=1)))
    await mirror.handle(stale)
    _, me = await service.communities.get_community(admin, c.id)
    assert me is not None and me.human_verified
    clock.advance(timedelta(minutes=1))
    await mirror.handle(humanity_event(admin.user_id, False, clock))
    _, me = await service.communities.get_community(admin, c.id)
    assert me is not None and not me.human_verified


async def test_humanity_mirror_consumes_the_bus(
    migrated_database: Database,
    event_bus: object,
    mirror: HumanityMirror,
    clock: FixedClock,
    service: GovernanceService,
) -> None:
    from services.kit.events import EventBus

    assert isinstance(event_bus, EventBus)
    ana = user()
    stop = asyncio.Event()
    job = asyncio.create_task(mirror.job(event_bus, "test")(stop))
    try:
        await event_bus.publish(humanity_event(ana.user_id, True, clock))
        for _ in range(200):
            if await service.ctx.humanity.is_verified_human(ana.user_id):
                break
            await asyncio.sleep(0.02)
        assert await service.ctx.humanity.is_verified_human(ana.user_id)
    finally:
        stop.set()
        await job


async def test_members_who_join_after_voting_opened_cannot_vote_on_it(
    service: GovernanceService, mirror: HumanityMirror, clock: FixedClock
) -> None:
    admin, late = user(), user()
    c = await community(service, admin)
    p = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    clock.advance(timedelta(minutes=5))
    await service.communities.join_community(late, c.id)
    await verify(mirror, clock, late)
    err = await fails(PermissionDenied, service.voting.cast_vote(late, p.id, [d.Choice(0)], ""))
    assert "joined before voting opened" in err.message
    later = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    await service.voting.cast_vote(late, later.id, [d.Choice(0)], "")


async def test_anchor_events_update_the_result(
    service: GovernanceService, migrated_database: Database, clock: FixedClock
) -> None:
    from services.governance.anchoring import AnchorMirror
    from services.kit.events import Event

    admin = user()
    c = await community(service, admin, quorum_bps=0)
    p = (await service.proposals.create_proposal(admin, proposal_input(c.id))).proposal
    clock.advance(timedelta(days=3))
    await service.lifecycle.finalize_proposal(admin, p.id)
    anchors = AnchorMirror(migrated_database, clock)

    def event(topic: str, domain: str = "governance", **extra: object) -> Event:
        payload = {"domain": domain, "record_id": p.id, "batch_id": "0x1", **extra}
        return Event(topic, key="k", payload=payload, occurred_at=clock.now())

    assert not await anchors.handle(event("chain.interaction_anchored", domain="learning"))
    await anchors.handle(event("chain.anchor_failed", failure_reason="node down"))
    view, _ = await service.proposals.get_proposal(admin, p.id)
    assert view.proposal.anchor.status is d.AnchorStatus.FAILED
    assert view.proposal.anchor.failure_reason == "node down"
    await anchors.handle(event("chain.interaction_anchored", block=7, tx_hash="0x9", root="0x5"))
    await anchors.handle(event("chain.anchor_failed", failure_reason="late duplicate"))
    view, _ = await service.proposals.get_proposal(admin, p.id)
    anchor = view.proposal.anchor
    assert (anchor.status, anchor.block_number, anchor.tx_hash) == (
        d.AnchorStatus.ANCHORED,
        7,
        "0x9",
    )
    assert anchor.anchored_at == clock.now()

"""Governance rules without I/O: ballots, tallies per method, quorum, lifecycle, digests."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.governance import domain as d
from services.kit.errors import FailedPrecondition, ValidationError

M = d.VotingMethod
S = d.ProposalStatus


def ballot(voter: str, *choices: tuple[int, int, int]) -> d.Ballot:
    return d.Ballot(voter, tuple(d.Choice(*c) for c in choices))


def tally(method: d.VotingMethod, ballots: list[d.Ballot], **kw: object) -> d.Tally:
    args: dict[str, object] = {
        "eligible_voters": 10,
        "quorum_bps": 2_000,
        "approval_threshold_bps": 5_001,
        "yes_no": True,
    }
    args.update(kw)
    return d.compute_tally(method, 3, ballots, **args)  # type: ignore[arg-type]


# -- ballots --------------------------------------------------------------------------------


def invalid(method: d.VotingMethod, choices: list[d.Choice], budget: int = 0) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        d.validate_ballot(method, 3, choices, budget)
    return caught.value


def test_single_choice_takes_exactly_one_option() -> None:
    assert d.validate_ballot(M.SINGLE_CHOICE, 3, [d.Choice(2)], 0) == (d.Choice(2),)
    e = invalid(M.SINGLE_CHOICE, [d.Choice(0), d.Choice(1)])
    assert (e.field, e.reason) == ("choices", "single choice voting takes exactly one choice")
    e = invalid(M.SINGLE_CHOICE, [])
    assert (e.field, e.reason) == ("choices", "at least one choice is required")
    e = invalid(M.SINGLE_CHOICE, [d.Choice(3)])
    assert (e.field, e.reason) == ("choices[0].option_index", "must be between 0 and 2")
    e = invalid(M.SINGLE_CHOICE, [d.Choice(0, weight=5)])
    assert (e.field, e.reason) == ("choices[0].weight", "applies to weighted voting only")


def test_approval_rejects_duplicates() -> None:
    assert len(d.validate_ballot(M.APPROVAL, 3, [d.Choice(2), d.Choice(0)], 0)) == 2
    e = invalid(M.APPROVAL, [d.Choice(1), d.Choice(1)])
    assert (e.field, e.reason) == ("choices[1].option_index", "option chosen twice")


def test_weighted_points_sum_to_100() -> None:
    d.validate_ballot(M.WEIGHTED, 3, [d.Choice(0, 60), d.Choice(1, 40)], 0)
    e = invalid(M.WEIGHTED, [d.Choice(0, 60), d.Choice(1, 30)])
    assert (e.field, e.reason) == ("choices", "weights must sum to 100 points (got 90)")
    e = invalid(M.WEIGHTED, [d.Choice(0, 0), d.Choice(1, 100)])
    assert (e.field, e.reason) == ("choices[0].weight", "must be positive")


def test_quadratic_budget_is_enforced() -> None:
    d.validate_ballot(M.QUADRATIC, 3, [d.Choice(0, 0, 64), d.Choice(1, 0, 36)], 100)
    e = invalid(M.QUADRATIC, [d.Choice(0, 0, 81), d.Choice(1, 0, 25)], budget=100)
    assert (e.field, e.reason) == ("choices", "credits spent (106) exceed the budget of 100")
    e = invalid(M.QUADRATIC, [d.Choice(0, 0, 0)], budget=100)
    assert (e.field, e.reason) == ("choices[0].credits", "must be positive")
    e = invalid(M.APPROVAL, [d.Choice(0, 0, 4)])
    assert (e.field, e.reason) == ("choices[0].credits", "applies to quadratic voting only")


# -- tallies --------------------------------------------------------------------------------


def test_single_choice_tally_and_yes_no_outcome() -> None:
    t = tally(
        M.SINGLE_CHOICE,
        [ballot("a", (0, 0, 0)), ballot("b", (0, 0, 0)), ballot("c", (1, 0, 0))],
    )
    assert [(o.voters, o.votes) for o in t.options] == [(2, 2.0), (1, 1.0), (0, 0.0)]
    assert t.leading_option_index == 0 and t.quorum_reached and t.passed


def test_abstain_counts_for_quorum_not_for_the_threshold() -> None:
    # For 1, Against 1, Abstain 3: a tie between For and Against; no leader among all.
    ballots = [ballot("a", (0, 0, 0)), ballot("b", (1, 0, 0))] + [
        ballot(v, (2, 0, 0)) for v in "cde"
    ]
    t = tally(M.SINGLE_CHOICE, ballots)
    assert t.leading_option_index == 2 and t.quorum_reached and not t.passed
    # For 2, Against 1, Abstain 1: For leads with 2/3 of For+Against.
    t = tally(
        M.SINGLE_CHOICE,
        [
            ballot("a", (0, 0, 0)),
            ballot("b", (0, 0, 0)),
            ballot("c", (1, 0, 0)),
            ballot("d", (2, 0, 0)),
        ],
    )
    assert t.passed


def test_against_winning_defeats() -> None:
    t = tally(
        M.SINGLE_CHOICE, [ballot("a", (1, 0, 0)), ballot("b", (1, 0, 0)), ballot("c", (0, 0, 0))]
    )
    assert t.leading_option_index == 1 and not t.passed


def test_tie_has_no_leader() -> None:
    t = tally(M.SINGLE_CHOICE, [ballot("a", (0, 0, 0)), ballot("b", (1, 0, 0))])
    assert t.leading_option_index is None and not t.passed


def test_approval_tally_counts_each_approved_option() -> None:
    t = tally(
        M.APPROVAL,
        [ballot("a", (0, 0, 0), (2, 0, 0)), ballot("b", (0, 0, 0)), ballot("c", (1, 0, 0))],
        yes_no=False,
    )
    assert [(o.voters, o.votes) for o in t.options] == [(2, 2.0), (1, 1.0), (1, 1.0)]
    # 2 of 4 counted votes = 50% < 50.01%: leads but does not pass the threshold.
    assert t.leading_option_index == 0 and not t.passed
    assert tally(M.APPROVAL, [ballot("a", (0, 0, 0))], yes_no=False, eligible_voters=2).passed


def test_weighted_tally_is_points_over_100() -> None:
    t = tally(
        M.WEIGHTED,
        [ballot("a", (0, 70, 0), (1, 30, 0)), ballot("b", (1, 50, 0), (2, 50, 0))],
        yes_no=False,
    )
    assert [o.votes for o in t.options] == [0.7, 0.8, 0.5]
    assert [o.voters for o in t.options] == [1, 2, 1]
    assert t.leading_option_index == 1
    assert not t.passed  # 0.8 of 2.0 counted votes is 40%


def test_quadratic_tally_is_sqrt_of_credits() -> None:
    # One whale spending 100 credits gets 10 votes; 4 members spending 36 each get 6 each.
    ballots = [ballot("whale", (1, 0, 100))] + [ballot(v, (0, 0, 36)) for v in "abcd"]
    t = tally(M.QUADRATIC, ballots, eligible_voters=5)
    assert t.options[0].votes == 24.0 and t.options[1].votes == 10.0
    assert t.leading_option_index == 0 and t.passed
    t = tally(M.QUADRATIC, [ballot("a", (0, 0, 2))])
    assert t.options[0].votes == round(math.sqrt(2), d.VOTE_DECIMALS)


@pytest.mark.parametrize(
    ("voters", "eligible", "bps", "reached"),
    [
        (2, 10, 2_000, True),
        (1, 10, 2_000, False),
        (0, 0, 0, True),
        (3, 7, 4_286, False),
        (3, 7, 4_285, True),
        (10, 10, 10_000, True),
    ],
)
def test_quorum_is_integer_basis_points(
    voters: int, eligible: int, bps: int, reached: bool
) -> None:
    assert d.quorum_reached(voters, eligible, bps) is reached


def test_quorum_missed_defeats_even_a_unanimous_vote() -> None:
    t = tally(M.SINGLE_CHOICE, [ballot("a", (0, 0, 0))], eligible_voters=10, quorum_bps=2_000)
    assert not t.quorum_reached and not t.passed


# -- lifecycle ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.ACTIVE),
        (S.PENDING, S.CANCELED),
        (S.ACTIVE, S.SUCCEEDED),
        (S.ACTIVE, S.DEFEATED),
        (S.ACTIVE, S.CANCELED),
        (S.SUCCEEDED, S.EXECUTED),
    ],
)
def test_allowed_transitions(current: d.ProposalStatus, target: d.ProposalStatus) -> None:
    assert d.transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.SUCCEEDED),
        (S.DEFEATED, S.EXECUTED),
        (S.EXECUTED, S.CANCELED),
        (S.CANCELED, S.ACTIVE),
        (S.SUCCEEDED, S.CANCELED),
        (S.ACTIVE, S.EXECUTED),
    ],
)
def test_invalid_transitions_fail_precondition(
    current: d.ProposalStatus, target: d.ProposalStatus
) -> None:
    with pytest.raises(FailedPrecondition):
        d.transition(current, target)


def test_status_is_derived_from_the_clock() -> None:
    start = datetime(2026, 1, 2, tzinfo=UTC)
    assert d.status_at(S.PENDING, start, start - timedelta(seconds=1)) is S.PENDING
    assert d.status_at(S.PENDING, start, start) is S.ACTIVE
    assert d.status_at(S.CANCELED, start, start) is S.CANCELED


def test_voting_window_validation() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    w = d.voting_window(now, None, None, timedelta(days=2))
    assert (w.starts_at, w.ends_at) == (now, now + timedelta(days=2))
    with pytest.raises(ValidationError) as caught:
        d.voting_window(now, now - timedelta(hours=1), None, timedelta(days=2))
    assert (caught.value.field, caught.value.reason) == (
        "voting_starts_at",
        "must not be in the past",
    )
    with pytest.raises(ValidationError) as caught:
        d.voting_window(now, None, now, timedelta(days=2))
    assert caught.value.field == "voting_ends_at"


def test_rules_validation_paths() -> None:
    base = d.CommunityRules()
    cases = [
        (d.CommunityRules(quorum_bps=10_001), "rules.quorum_bps"),
        (d.CommunityRules(approval_threshold_bps=0), "rules.approval_threshold_bps"),
        (
            d.CommunityRules(default_voting_period=timedelta(seconds=5)),
            "rules.default_voting_period",
        ),
        (d.CommunityRules(voting_method=M.QUADRATIC), "rules.quadratic_credit_budget"),
        (d.CommunityRules(quadratic_credit_budget=5), "rules.quadratic_credit_budget"),
        (
            d.CommunityRules(voting_mode=d.VotingMode.ON_CHAIN, voting_method=M.APPROVAL),
            "rules.voting_method",
        ),
    ]
    assert d.validate_rules(base, "rules") is base
    for rules, path in cases:
        with pytest.raises(ValidationError) as caught:
            d.validate_rules(rules, "rules")
        assert caught.value.field == path


def test_options_default_and_validation() -> None:
    options, yes_no = d.validate_options([])
    assert [o.label for o in options] == ["For", "Against", "Abstain"] and yes_no
    with pytest.raises(ValidationError) as caught:
        d.validate_options([d.ProposalOption(0, "A")])
    assert caught.value.field == "options"
    with pytest.raises(ValidationError) as caught:
        d.validate_options([d.ProposalOption(0, "A"), d.ProposalOption(1, " a ")])
    assert (caught.value.field, caught.value.reason) == (
        "options[1].label",
        "duplicates another option",
    )
    with pytest.raises(ValidationError) as caught:
        d.validate_options([d.ProposalOption(0, "A"), d.ProposalOption(5, "B")])
    assert caught.value.field == "options[1].index"


# -- digests --------------------------------------------------------------------------------


def test_result_digest_is_canonical_and_order_independent() -> None:
    b1 = [ballot("b", (0, 0, 0)), ballot("a", (1, 0, 0))]
    b2 = list(reversed(b1))
    assert d.ballots_digest("p", b1) == d.ballots_digest("p", b2)
    t = tally(M.SINGLE_CHOICE, b1)
    result = d.canonical_result(
        proposal_id="p",
        community_id="c",
        method=M.SINGLE_CHOICE,
        quorum_bps=2_000,
        approval_threshold_bps=5_001,
        status=S.DEFEATED,
        tally=t,
        ballots_sha256=d.ballots_digest("p", b1),
    )
    assert result["options"][0] == {"option_index": 0, "voters": 1, "votes": "1.000000"}
    digest = d.tally_digest(result)
    assert len(digest) == 64 and digest == d.tally_digest(dict(reversed(list(result.items()))))
    assert digest != d.tally_digest({**result, "status": "succeeded"})


def test_tally_json_round_trip() -> None:
    t = tally(M.QUADRATIC, [ballot("a", (0, 0, 7))])
    assert d.Tally.from_json(t.to_json()) == t


# -- properties -------------------------------------------------------------------------------


@st.composite
def weighted_ballot(draw: st.DrawFn) -> tuple[d.Choice, ...]:
    options = draw(st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True))
    cuts = sorted(
        draw(
            st.lists(
                st.integers(1, 99),
                min_size=len(options) - 1,
                max_size=len(options) - 1,
                unique=True,
            )
        )
    )
    bounds = [0, *cuts, 100]
    return tuple(d.Choice(o, bounds[i + 1] - bounds[i]) for i, o in enumerate(options))


@settings(max_examples=60, deadline=None)
@given(st.lists(weighted_ballot(), max_size=20), st.integers(0, 30), st.integers(0, 10_000))
def test_weighted_tally_invariants(
    ballots: list[tuple[d.Choice, ...]], extra_eligible: int, quorum_bps: int
) -> None:
    for choices in ballots:
        d.validate_ballot(M.WEIGHTED, 3, choices, 0)  # the strategy only makes valid ballots
    counted = [d.Ballot(f"v{i}", c) for i, c in enumerate(ballots)]
    eligible = len(counted) + extra_eligible
    t = d.compute_tally(
        M.WEIGHTED,
        3,
        counted,
        eligible_voters=eligible,
        quorum_bps=quorum_bps,
        approval_threshold_bps=5_001,
        yes_no=True,
    )
    # Each voter distributes exactly one vote; order of ballots does not matter.
    assert math.isclose(sum(o.votes for o in t.options), len(counted), abs_tol=1e-5)
    assert t.total_voters == len(counted)
    assert sum(o.voters for o in t.options) == sum(len(c) for c in ballots)
    assert t == d.compute_tally(
        M.WEIGHTED,
        3,
        list(reversed(counted)),
        eligible_voters=eligible,
        quorum_bps=quorum_bps,
        approval_threshold_bps=5_001,
        yes_no=True,
    )
    assert t.passed <= t.quorum_reached


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 100), min_size=1, max_size=3), max_size=10))
def test_quadratic_never_buys_more_than_sqrt_of_the_budget(spends: list[list[int]]) -> None:
    budget = 100
    ballots = []
    for i, credits in enumerate(spends):
        choices = [d.Choice(j, 0, c) for j, c in enumerate(credits)]
        if sum(credits) > budget:
            with pytest.raises(ValidationError):
                d.validate_ballot(M.QUADRATIC, 3, choices, budget)
            continue
        ballots.append(d.Ballot(f"v{i}", d.validate_ballot(M.QUADRATIC, 3, choices, budget)))
    t = d.compute_tally(
        M.QUADRATIC,
        3,
        ballots,
        eligible_voters=len(ballots),
        quorum_bps=0,
        approval_threshold_bps=5_001,
        yes_no=False,
    )
    # Concentrating the whole budget on one option is the most one voter can give it.
    for option in t.options:
        assert option.votes <= option.voters * math.sqrt(budget) + 1e-6

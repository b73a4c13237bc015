"""Voting: ballots per voting method (`validate_ballot`), what a choice counts, the
quorum and the tally (`compute_tally`, `tally_from_counts`), and the vote record."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.governance.domain.common import MAX_BPS
from services.governance.domain.communities import VotingMethod
from services.kit.errors import ValidationError

WEIGHTED_POINTS = 100


@dataclass(frozen=True)
class Choice:
    option_index: int
    weight: int = 0
    credits: int = 0


def validate_ballot(
    method: VotingMethod,
    option_count: int,
    choices: Sequence[Choice],
    quadratic_budget: int,
) -> tuple[Choice, ...]:
    """A ballot valid for `method`, choices sorted by option. Field paths: `choices`,
    `choices[i].option_index|weight|credits`."""
    if not choices:
        raise ValidationError("choices", "at least one choice is required")
    if len(choices) > option_count:
        raise ValidationError("choices", f"at most {option_count} choices (one per option)")
    seen: set[int] = set()
    for i, choice in enumerate(choices):
        if not 0 <= choice.option_index < option_count:
            raise ValidationError(
                f"choices[{i}].option_index", f"must be between 0 and {option_count - 1}"
            )
        if choice.option_index in seen:
            raise ValidationError(f"choices[{i}].option_index", "option chosen twice")
        seen.add(choice.option_index)
        if method is not VotingMethod.WEIGHTED and choice.weight:
            raise ValidationError(f"choices[{i}].weight", "applies to weighted voting only")
        if method is not VotingMethod.QUADRATIC and choice.credits:
            raise ValidationError(f"choices[{i}].credits", "applies to quadratic voting only")
        if method is VotingMethod.WEIGHTED and choice.weight <= 0:
            raise ValidationError(f"choices[{i}].weight", "must be positive")
        if method is VotingMethod.QUADRATIC and choice.credits <= 0:
            raise ValidationError(f"choices[{i}].credits", "must be positive")
    if method is VotingMethod.SINGLE_CHOICE and len(choices) != 1:
        raise ValidationError("choices", "single choice voting takes exactly one choice")
    if method is VotingMethod.WEIGHTED:
        total = sum(c.weight for c in choices)
        if total != WEIGHTED_POINTS:
            raise ValidationError(
                "choices", f"weights must sum to {WEIGHTED_POINTS} points (got {total})"
            )
    if method is VotingMethod.QUADRATIC:
        spent = sum(c.credits for c in choices)
        if spent > quadratic_budget:
            raise ValidationError(
                "choices", f"credits spent ({spent}) exceed the budget of {quadratic_budget}"
            )
    return tuple(sorted(choices, key=lambda c: c.option_index))


def choice_votes(method: VotingMethod, choice: Choice) -> float:
    """What one choice counts: 1 (single choice, approval), points/100 (weighted),
    sqrt(credits) (quadratic: n votes cost n*n credits)."""
    if method is VotingMethod.WEIGHTED:
        return choice.weight / WEIGHTED_POINTS
    if method is VotingMethod.QUADRATIC:
        return math.sqrt(choice.credits)
    return 1.0


def choices_to_json(choices: Sequence[Choice]) -> list[list[int]]:
    return [[c.option_index, c.weight, c.credits] for c in choices]


def choices_from_json(data: Sequence[Sequence[int]]) -> tuple[Choice, ...]:
    return tuple(Choice(int(i), int(w), int(c)) for i, w, c in data)


@dataclass(frozen=True)
class Ballot:
    voter_id: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class OptionTally:
    option_index: int
    voters: int
    votes: float


@dataclass(frozen=True)
class Tally:
    options: tuple[OptionTally, ...]
    total_voters: int
    eligible_voters: int
    quorum_reached: bool
    leading_option_index: int | None
    passed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "options": [[o.option_index, o.voters, o.votes] for o in self.options],
            "total_voters": self.total_voters,
            "eligible_voters": self.eligible_voters,
            "quorum_reached": self.quorum_reached,
            "leading_option_index": self.leading_option_index,
            "passed": self.passed,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Tally:
        return Tally(
            options=tuple(OptionTally(int(i), int(n), float(v)) for i, n, v in data["options"]),
            total_voters=int(data["total_voters"]),
            eligible_voters=int(data["eligible_voters"]),
            quorum_reached=bool(data["quorum_reached"]),
            leading_option_index=data["leading_option_index"],
            passed=bool(data["passed"]),
        )


# Votes are compared after rounding to this many decimals so float noise (sqrt) never
# breaks or makes a tie; the canonical JSON uses the same precision.
VOTE_DECIMALS = 6


def quorum_reached(total_voters: int, eligible_voters: int, quorum_bps: int) -> bool:
    """At least quorum_bps/10000 of the eligible voters voted (integer arithmetic)."""
    return total_voters * MAX_BPS >= quorum_bps * eligible_voters


def compute_tally(
    method: VotingMethod,
    option_count: int,
    ballots: Sequence[Ballot],
    *,
    eligible_voters: int,
    quorum_bps: int,
    approval_threshold_bps: int,
    yes_no: bool,
) -> Tally:
    """Count `ballots`. The proposal passes when quorum is reached and:

    - `yes_no` (the default For/Against/Abstain options): For leads and holds at least the
      approval threshold of For + Against votes (Abstain counts for quorum only);
    - otherwise (a choice among alternatives): one option leads alone and holds at least
      the threshold of all counted votes; that option is the community's decision.
    """
    voters = [0] * option_count
    votes = [0.0] * option_count
    for ballot in ballots:
        for choice in ballot.choices:
            voters[choice.option_index] += 1
            votes[choice.option_index] += choice_votes(method, choice)
    return _decide(
        voters,
        votes,
        len(ballots),
        eligible_voters=eligible_voters,
        quorum_bps=quorum_bps,
        approval_threshold_bps=approval_threshold_bps,
        yes_no=yes_no,
    )


def tally_from_counts(
    counts: Sequence[int],
    total_voters: int,
    *,
    eligible_voters: int,
    quorum_bps: int,
    approval_threshold_bps: int,
    yes_no: bool,
) -> Tally:
    """The tally of single-choice votes counted elsewhere (the governance contract)."""
    return _decide(
        list(counts),
        [float(c) for c in counts],
        total_voters,
        eligible_voters=eligible_voters,
        quorum_bps=quorum_bps,
        approval_threshold_bps=approval_threshold_bps,
        yes_no=yes_no,
    )


def _decide(
    voters: list[int],
    votes: list[float],
    total_voters: int,
    *,
    eligible_voters: int,
    quorum_bps: int,
    approval_threshold_bps: int,
    yes_no: bool,
) -> Tally:
    option_count = len(voters)
    rounded = [round(v, VOTE_DECIMALS) for v in votes]
    options = tuple(OptionTally(i, voters[i], rounded[i]) for i in range(option_count))
    best = max(rounded) if rounded else 0.0
    leaders = [i for i, v in enumerate(rounded) if v == best]
    leading = leaders[0] if best > 0 and len(leaders) == 1 else None
    reached = quorum_reached(total_voters, eligible_voters, quorum_bps)
    passed = False
    if reached and leading is not None:
        if yes_no:
            decisive = rounded[0] + rounded[1]
            passed = leading == 0 and rounded[0] * MAX_BPS >= approval_threshold_bps * decisive
        else:
            passed = rounded[leading] * MAX_BPS >= approval_threshold_bps * sum(rounded)
    return Tally(options, total_voters, eligible_voters, reached, leading, passed)


@dataclass(frozen=True)
class Vote:
    proposal_id: str
    voter_id: str
    choices: tuple[Choice, ...]
    cast_at: datetime
    request_id: str | None = None
    tx_hash: str = ""

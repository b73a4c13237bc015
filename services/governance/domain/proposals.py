"""Proposals: their options (`validate_options`), kinds and voting window
(`voting_window`), and the proposal record."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.governance.domain.common import bounded_text, required_text
from services.governance.domain.communities import (
    MAX_VOTING_PERIOD,
    MIN_VOTING_PERIOD,
    CommunityRules,
    VotingMethod,
    VotingMode,
)
from services.governance.domain.lifecycle import Anchor, ProposalStatus, status_at
from services.governance.domain.standards import StandardsChange
from services.governance.domain.voting import Tally
from services.kit.errors import ValidationError
from services.kit.limits import NAME_MAX_CHARS

MAX_TITLE_CHARS = NAME_MAX_CHARS["title"]
MAX_BODY_CHARS = 20_000
MAX_LABEL_CHARS = 200
MAX_OPTION_DESCRIPTION_CHARS = 2_000
MIN_OPTIONS = 2
# The governance Cairo contract accepts at most 16 options; off-chain uses the same cap.
MAX_OPTIONS = 16
# How far ahead a proposal may schedule its voting window.
MAX_START_DELAY = timedelta(days=365)
DEFAULT_OPTION_LABELS = ("For", "Against", "Abstain")


class ProposalKind(enum.StrEnum):
    GENERAL = "general"
    STANDARDS_CHANGE = "standards_change"
    RULES_CHANGE = "rules_change"


@dataclass(frozen=True)
class ProposalOption:
    index: int
    label: str
    description: str = ""


def default_options() -> tuple[ProposalOption, ...]:
    return tuple(ProposalOption(i, label) for i, label in enumerate(DEFAULT_OPTION_LABELS))


def validate_options(options: Sequence[ProposalOption]) -> tuple[tuple[ProposalOption, ...], bool]:
    """The option list (indices = positions) and whether it is the default For/Against/
    Abstain list. Empty means the default."""
    if not options:
        return default_options(), True
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise ValidationError(
            "options", f"must hold between {MIN_OPTIONS} and {MAX_OPTIONS} options"
        )
    seen: set[str] = set()
    out: list[ProposalOption] = []
    for position, option in enumerate(options):
        if option.index != position:
            raise ValidationError(
                f"options[{position}].index", f"must equal its position ({position})"
            )
        label = required_text(option.label, f"options[{position}].label", MAX_LABEL_CHARS)
        if label.casefold() in seen:
            raise ValidationError(f"options[{position}].label", "duplicates another option")
        seen.add(label.casefold())
        description = bounded_text(
            option.description, f"options[{position}].description", MAX_OPTION_DESCRIPTION_CHARS
        )
        out.append(ProposalOption(position, label, description))
    labels = tuple(o.label for o in out)
    return tuple(out), labels == DEFAULT_OPTION_LABELS


@dataclass(frozen=True)
class VotingWindow:
    starts_at: datetime
    ends_at: datetime


def voting_window(
    now: datetime,
    starts_at: datetime | None,
    ends_at: datetime | None,
    default_period: timedelta,
) -> VotingWindow:
    """The window of a new proposal. Unset start: now; unset end: start + default period."""
    start = starts_at if starts_at is not None else now
    if starts_at is not None:
        if starts_at < now:
            raise ValidationError("voting_starts_at", "must not be in the past")
        if starts_at - now > MAX_START_DELAY:
            raise ValidationError("voting_starts_at", "must be within 365 days")
    end = ends_at if ends_at is not None else start + default_period
    if end <= start:
        raise ValidationError("voting_ends_at", "must be after voting_starts_at")
    if end - start < MIN_VOTING_PERIOD:
        raise ValidationError("voting_ends_at", "the voting window must last at least 1 minute")
    if end - start > MAX_VOTING_PERIOD:
        raise ValidationError("voting_ends_at", "the voting window must last at most 365 days")
    return VotingWindow(start, end)


@dataclass(frozen=True)
class Proposal:
    id: str
    community_id: str
    author_id: str
    title: str
    body: str
    kind: ProposalKind
    options: tuple[ProposalOption, ...]
    yes_no: bool
    standards_change: StandardsChange | None
    rules_change: CommunityRules | None
    voting_starts_at: datetime
    voting_ends_at: datetime
    voting_method: VotingMethod
    voting_mode: VotingMode
    quorum_bps: int
    approval_threshold_bps: int
    quadratic_credit_budget: int
    status: ProposalStatus
    eligible_voters: int | None
    final_tally: Tally | None
    tally_digest: str
    ballots_digest: str
    onchain_proposal_id: str
    anchor: Anchor
    cancel_reason: str
    created_at: datetime
    updated_at: datetime

    def status_at(self, now: datetime) -> ProposalStatus:
        return status_at(self.status, self.voting_starts_at, now)

    def voting_open(self, now: datetime) -> bool:
        return self.status.open and self.voting_starts_at <= now < self.voting_ends_at

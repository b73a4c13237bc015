"""Communities: their rules (voting method and mode, quorum, threshold, who may propose,
open or closed membership) with `validate_rules`, members and their roles."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.governance.domain.common import MAX_BPS
from services.kit.errors import ValidationError

MAX_NAME_CHARS = 120
MAX_DESCRIPTION_CHARS = 5_000
MIN_VOTING_PERIOD = timedelta(minutes=1)
MAX_VOTING_PERIOD = timedelta(days=365)
MAX_QUADRATIC_BUDGET = 1_000_000


class VotingMethod(enum.StrEnum):
    SINGLE_CHOICE = "single_choice"
    APPROVAL = "approval"
    WEIGHTED = "weighted"
    QUADRATIC = "quadratic"


class VotingMode(enum.StrEnum):
    OFF_CHAIN = "off_chain"
    ON_CHAIN = "on_chain"


class MemberRole(enum.StrEnum):
    MEMBER = "member"
    MODERATOR = "moderator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def at_least(self, other: MemberRole) -> bool:
        return self.rank >= other.rank


_ROLE_RANK = {MemberRole.MEMBER: 1, MemberRole.MODERATOR: 2, MemberRole.ADMIN: 3}


@dataclass(frozen=True)
class CommunityRules:
    voting_method: VotingMethod = VotingMethod.SINGLE_CHOICE
    voting_mode: VotingMode = VotingMode.OFF_CHAIN
    quorum_bps: int = 2_000
    approval_threshold_bps: int = 5_001
    default_voting_period: timedelta = timedelta(days=7)
    proposer_role: MemberRole = MemberRole.MEMBER
    open_membership: bool = True
    quadratic_credit_budget: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "voting_method": self.voting_method.value,
            "voting_mode": self.voting_mode.value,
            "quorum_bps": self.quorum_bps,
            "approval_threshold_bps": self.approval_threshold_bps,
            "default_voting_period_s": int(self.default_voting_period.total_seconds()),
            "proposer_role": self.proposer_role.value,
            "open_membership": self.open_membership,
            "quadratic_credit_budget": self.quadratic_credit_budget,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> CommunityRules:
        return CommunityRules(
            voting_method=VotingMethod(data["voting_method"]),
            voting_mode=VotingMode(data["voting_mode"]),
            quorum_bps=int(data["quorum_bps"]),
            approval_threshold_bps=int(data["approval_threshold_bps"]),
            default_voting_period=timedelta(seconds=int(data["default_voting_period_s"])),
            proposer_role=MemberRole(data["proposer_role"]),
            open_membership=bool(data["open_membership"]),
            quadratic_credit_budget=int(data["quadratic_credit_budget"]),
        )


DEFAULT_QUADRATIC_BUDGET = 100


def validate_rules(rules: CommunityRules, path: str) -> CommunityRules:
    """Reject rules a community cannot run with; `path` prefixes field paths ("rules")."""
    if not 0 <= rules.quorum_bps <= MAX_BPS:
        raise ValidationError(f"{path}.quorum_bps", f"must be between 0 and {MAX_BPS}")
    if not 1 <= rules.approval_threshold_bps <= MAX_BPS:
        raise ValidationError(f"{path}.approval_threshold_bps", f"must be between 1 and {MAX_BPS}")
    period = rules.default_voting_period
    if not MIN_VOTING_PERIOD <= period <= MAX_VOTING_PERIOD:
        raise ValidationError(
            f"{path}.default_voting_period", "must be between 1 minute and 365 days"
        )
    if rules.voting_method is VotingMethod.QUADRATIC:
        if not 1 <= rules.quadratic_credit_budget <= MAX_QUADRATIC_BUDGET:
            raise ValidationError(
                f"{path}.quadratic_credit_budget",
                f"must be between 1 and {MAX_QUADRATIC_BUDGET} for quadratic voting",
            )
    elif rules.quadratic_credit_budget != 0:
        raise ValidationError(
            f"{path}.quadratic_credit_budget", "applies to quadratic voting only: leave it 0"
        )
    if (
        rules.voting_mode is VotingMode.ON_CHAIN
        and rules.voting_method is not VotingMethod.SINGLE_CHOICE
    ):
        raise ValidationError(
            f"{path}.voting_method",
            "on-chain voting supports single choice only (the governance contract "
            "records one option per voter)",
        )
    return rules


@dataclass(frozen=True)
class Community:
    id: str
    name: str
    description: str
    rules: CommunityRules
    created_by: str
    member_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Member:
    community_id: str
    user_id: str
    role: MemberRole
    human_verified: bool
    joined_at: datetime

"""Governance domain: plain types and rules, no I/O.

- community rules and their validation (`validate_rules`);
- the proposal lifecycle as a state machine (`transition`, `status_at`);
- ballots per voting method (`validate_ballot`) and the tally (`compute_tally`);
- the canonical, hashable form of a final result (`tally_digest`, `ballots_digest`).

Every rejection of client input is a `ValidationError(field_path, reason)`; every refused
state change is a `FailedPrecondition`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from services.kit.errors import FailedPrecondition, ValidationError
from services.kit.limits import NAME_MAX_CHARS
from services.kit.paging import OffsetPageTokens

T = TypeVar("T")

# -- limits ---------------------------------------------------------------------------------

MAX_NAME_CHARS = 120
MAX_DESCRIPTION_CHARS = 5_000
MAX_TITLE_CHARS = NAME_MAX_CHARS["title"]
MAX_BODY_CHARS = 20_000
MAX_LABEL_CHARS = 200
MAX_OPTION_DESCRIPTION_CHARS = 2_000
MAX_REASON_CHARS = 1_000
MAX_DOCUMENT_CHARS = 200_000
MAX_CONTENT_TYPE_CHARS = 100
MAX_REQUEST_ID_CHARS = 128
MIN_OPTIONS = 2
# The governance Cairo contract accepts at most 16 options; off-chain uses the same cap.
MAX_OPTIONS = 16
MAX_BPS = 10_000
MIN_VOTING_PERIOD = timedelta(minutes=1)
MAX_VOTING_PERIOD = timedelta(days=365)
# How far ahead a proposal may schedule its voting window.
MAX_START_DELAY = timedelta(days=365)
MAX_QUADRATIC_BUDGET = 1_000_000
WEIGHTED_POINTS = 100
DEFAULT_OPTION_LABELS = ("For", "Against", "Abstain")


# -- enums (values are the proto enum names without prefix, lower case) --------------------


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


class ProposalKind(enum.StrEnum):
    GENERAL = "general"
    STANDARDS_CHANGE = "standards_change"
    RULES_CHANGE = "rules_change"


class ProposalStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DEFEATED = "defeated"
    SUCCEEDED = "succeeded"
    EXECUTED = "executed"
    CANCELED = "canceled"

    @property
    def open(self) -> bool:
        return self in (ProposalStatus.PENDING, ProposalStatus.ACTIVE)

    @property
    def finalized(self) -> bool:
        return self in (ProposalStatus.DEFEATED, ProposalStatus.SUCCEEDED, ProposalStatus.EXECUTED)


class StandardsKind(enum.StrEnum):
    COMMUNITY_STANDARDS = "community_standards"
    VALIDATION_RULES = "validation_rules"


class AnchorStatus(enum.StrEnum):
    NONE = "none"
    PENDING = "pending"
    ANCHORED = "anchored"
    FAILED = "failed"


# -- the lifecycle ----------------------------------------------------------------------------

ALLOWED_TRANSITIONS: Mapping[ProposalStatus, frozenset[ProposalStatus]] = {
    ProposalStatus.PENDING: frozenset({ProposalStatus.ACTIVE, ProposalStatus.CANCELED}),
    ProposalStatus.ACTIVE: frozenset(
        {ProposalStatus.DEFEATED, ProposalStatus.SUCCEEDED, ProposalStatus.CANCELED}
    ),
    ProposalStatus.SUCCEEDED: frozenset({ProposalStatus.EXECUTED}),
    ProposalStatus.DEFEATED: frozenset(),
    ProposalStatus.EXECUTED: frozenset(),
    ProposalStatus.CANCELED: frozenset(),
}


def transition(current: ProposalStatus, target: ProposalStatus) -> ProposalStatus:
    """`target` if the lifecycle allows current -> target, else FAILED_PRECONDITION."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise FailedPrecondition(f"proposal is {current.value}: cannot become {target.value}")
    return target


def status_at(stored: ProposalStatus, voting_starts_at: datetime, now: datetime) -> ProposalStatus:
    """The status at `now`: a stored PENDING proposal is ACTIVE once its window opened,
    even before the background job persisted the change. An ACTIVE proposal whose window
    has ended stays ACTIVE (voting closed) until it is finalized."""
    if stored is ProposalStatus.PENDING and now >= voting_starts_at:
        return ProposalStatus.ACTIVE
    return stored


# -- rules ------------------------------------------------------------------------------------


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


# -- text helpers -------------------------------------------------------------------------------


def required_text(value: str, path: str, max_chars: int) -> str:
    text = value.strip()
    if not text:
        raise ValidationError(path, "is required")
    return bounded_text(text, path, max_chars)


def bounded_text(value: str, path: str, max_chars: int) -> str:
    if len(value) > max_chars:
        raise ValidationError(path, f"must be at most {max_chars} characters")
    if "\x00" in value:
        raise ValidationError(path, "must not contain NUL characters")
    return value


def request_id_of(value: str, path: str = "request_id") -> str | None:
    """The client's idempotency key, or None when not given."""
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_REQUEST_ID_CHARS or not value.isprintable():
        raise ValidationError(path, f"must be printable and at most {MAX_REQUEST_ID_CHARS} chars")
    return value


# -- proposals ----------------------------------------------------------------------------------


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
class StandardsChange:
    kind: StandardsKind
    content: str
    content_type: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "content": self.content, "content_type": self.content_type}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> StandardsChange:
        return StandardsChange(StandardsKind(data["kind"]), data["content"], data["content_type"])


def validate_standards_change(change: StandardsChange, path: str) -> StandardsChange:
    content = required_text(change.content, f"{path}.content", MAX_DOCUMENT_CHARS)
    content_type = required_text(
        change.content_type or "", f"{path}.content_type", MAX_CONTENT_TYPE_CHARS
    )
    if "/" not in content_type or " " in content_type:
        raise ValidationError(f"{path}.content_type", "must be a media type like text/markdown")
    if content_type == "application/json":
        try:
            json.loads(content)
        except ValueError as exc:
            raise ValidationError(f"{path}.content", "is not valid JSON") from exc
    return StandardsChange(change.kind, content, content_type)


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


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


# -- ballots ----------------------------------------------------------------------------------


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


# -- tally ------------------------------------------------------------------------------------


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


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def ballots_digest(proposal_id: str, ballots: Sequence[Ballot]) -> str:
    """Hex SHA-256 of the canonical JSON of every ballot, ordered by voter id."""
    body = {
        "proposal_id": proposal_id,
        "ballots": [
            {"voter_id": b.voter_id, "choices": choices_to_json(b.choices)}
            for b in sorted(ballots, key=lambda b: b.voter_id)
        ],
    }
    return hashlib.sha256(_canonical(body)).hexdigest()


def canonical_result(
    *,
    proposal_id: str,
    community_id: str,
    method: VotingMethod,
    quorum_bps: int,
    approval_threshold_bps: int,
    status: ProposalStatus,
    tally: Tally,
    ballots_sha256: str,
) -> dict[str, Any]:
    """The final result as the JSON whose SHA-256 is anchored. Votes are decimal strings
    with VOTE_DECIMALS places so any language reproduces the bytes exactly."""
    return {
        "version": 1,
        "proposal_id": proposal_id,
        "community_id": community_id,
        "voting_method": method.value,
        "quorum_bps": quorum_bps,
        "approval_threshold_bps": approval_threshold_bps,
        "status": status.value,
        "options": [
            {
                "option_index": o.option_index,
                "voters": o.voters,
                "votes": f"{o.votes:.{VOTE_DECIMALS}f}",
            }
            for o in tally.options
        ],
        "total_voters": tally.total_voters,
        "eligible_voters": tally.eligible_voters,
        "quorum_reached": tally.quorum_reached,
        "leading_option_index": tally.leading_option_index,
        "ballots_sha256": ballots_sha256,
    }


def tally_digest(result: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of `result`."""
    return hashlib.sha256(_canonical(dict(result))).hexdigest()


# Offset page tokens of governance's lists.
PAGE_TOKENS = OffsetPageTokens("g")


# -- records ------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Anchor:
    status: AnchorStatus = AnchorStatus.NONE
    tx_hash: str = ""
    block_number: int = 0
    batch_id: str = ""
    merkle_root: str = ""
    failure_reason: str = ""
    anchored_at: datetime | None = None


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


@dataclass(frozen=True)
class Vote:
    proposal_id: str
    voter_id: str
    choices: tuple[Choice, ...]
    cast_at: datetime
    request_id: str | None = None
    tx_hash: str = ""


@dataclass(frozen=True)
class StandardsDocument:
    community_id: str
    kind: StandardsKind
    version: int
    content: str
    content_type: str
    content_hash: str
    proposal_id: str
    adopted_at: datetime

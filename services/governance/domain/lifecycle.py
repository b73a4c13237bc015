"""A proposal's lifecycle: the state machine (`transition`, `status_at`), the canonical,
hashable form of a final result (`canonical_result`, `tally_digest`, `ballots_digest`)
and the state of its anchoring."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.governance.domain.communities import VotingMethod
from services.governance.domain.voting import VOTE_DECIMALS, Ballot, Tally, choices_to_json
from services.kit.errors import FailedPrecondition

MAX_REASON_CHARS = 1_000


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


class AnchorStatus(enum.StrEnum):
    NONE = "none"
    PENDING = "pending"
    ANCHORED = "anchored"
    FAILED = "failed"


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


@dataclass(frozen=True)
class Anchor:
    status: AnchorStatus = AnchorStatus.NONE
    tx_hash: str = ""
    block_number: int = 0
    batch_id: str = ""
    merkle_root: str = ""
    failure_reason: str = ""
    anchored_at: datetime | None = None

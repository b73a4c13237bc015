"""The governance service: its capabilities composed on one database, clock, humanity
check and contract binding.

Each capability is a module of `services/governance/usecases/`:

* `communities`: creating one, joining and leaving, members and their roles;
* `proposals`: creating (in the contract first for an ON_CHAIN community), reading,
  listing, tallies, watching;
* `voting`: one verified human member, one vote;
* `lifecycle`: finalizing, cancelling, executing, and the background step that opens
  and closes voting windows;
* `standards`: the adopted documents and their versions;
* `context`: what they share (events, loading and authorizing objects, the view).

Callers pass the authenticated `Principal`; nothing here trusts a user id from a request.
Writes run in `Database.transaction()` (SQLite: BEGIN IMMEDIATE, so read-check-write is
serialized; PostgreSQL: rows that gate a decision are locked FOR UPDATE). Every state
change enqueues its event in the outbox in the same transaction.

Events (topic: payload):
- governance.proposal_changed: proposal_id, community_id, change ("vote_cast" with
  voter_id, "status_changed" with status, "anchor_changed" with anchor_status)
- governance.proposal_finalized: proposal_id, community_id, status, tally_digest,
  ballots_digest, result (the canonical result whose SHA-256 is tally_digest); the chain
  translator anchors tally_digest under record id proposal_id (domain 'governance').
- governance.proposal_executed: proposal_id, community_id, kind
- governance.standards_adopted: community_id, kind, version, content_hash, proposal_id
"""

from __future__ import annotations

from collections.abc import Callable

from services.governance.humanity import HumanityCheck, MirroredHumanityCheck
from services.governance.onchain import OnChainVoting
from services.governance.usecases.communities import Communities
from services.governance.usecases.context import (
    CHANGE_ANCHOR,
    CHANGE_STATUS,
    CHANGE_VOTE_CAST,
    TOPIC_EXECUTED,
    TOPIC_FINALIZED,
    TOPIC_PROPOSAL_CHANGED,
    TOPIC_STANDARDS_ADOPTED,
    WATCH_TOPICS,
    Executed,
    GovernanceContext,
    NewProposal,
    ProposalView,
)
from services.governance.usecases.lifecycle import Lifecycle
from services.governance.usecases.proposals import Proposals
from services.governance.usecases.standards import Standards
from services.governance.usecases.voting import Voting
from services.kit.clock import Clock
from services.kit.db import Database


class GovernanceService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        humanity: HumanityCheck | None = None,
        notify: Callable[[], None] | None = None,
        onchain: OnChainVoting | None = None,
    ) -> None:
        """`notify` is called after a commit that enqueued events (the outbox relay's
        `notify`, so watchers hear of changes without waiting for the next poll)."""
        self.ctx = GovernanceContext(
            db=db,
            clock=clock,
            humanity=humanity or MirroredHumanityCheck(db),
            notify=notify or (lambda: None),
            onchain=onchain,
        )
        self.communities = Communities(self.ctx)
        self.proposals = Proposals(self.ctx)
        self.voting = Voting(self.ctx)
        self.lifecycle = Lifecycle(self.ctx)
        self.standards = Standards(self.ctx)

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def clock(self) -> Clock:
        return self.ctx.clock


__all__ = [
    "CHANGE_ANCHOR",
    "CHANGE_STATUS",
    "CHANGE_VOTE_CAST",
    "TOPIC_EXECUTED",
    "TOPIC_FINALIZED",
    "TOPIC_PROPOSAL_CHANGED",
    "TOPIC_STANDARDS_ADOPTED",
    "WATCH_TOPICS",
    "Executed",
    "GovernanceService",
    "NewProposal",
    "ProposalView",
]

"""Governance persistence: tables in the `governance` schema and the repository over
them, one module a capability (communities, proposals, lifecycle, voting, standards)."""

from __future__ import annotations

from services.governance.storage.common import metadata, outbox, processed_events
from services.governance.storage.communities import CommunityStore, communities, humans, members
from services.governance.storage.lifecycle import LifecycleStore
from services.governance.storage.proposals import ProposalStore, proposal_requests, proposals
from services.governance.storage.standards import StandardsStore, standards
from services.governance.storage.voting import VotingStore, votes

__all__ = [
    "GovernanceRepository",
    "communities",
    "humans",
    "members",
    "metadata",
    "outbox",
    "processed_events",
    "proposal_requests",
    "proposals",
    "standards",
    "votes",
]


class GovernanceRepository(
    CommunityStore, ProposalStore, LifecycleStore, VotingStore, StandardsStore
):
    """Queries and writes on one session (the caller owns the transaction)."""

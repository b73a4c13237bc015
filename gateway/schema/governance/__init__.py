"""Governance over GraphQL, one module per capability: `communities` (members, roles),
`proposals` (votes, tallies, the `proposalUpdated` subscription backed by the
WatchProposal server stream) and `standards`; `common` holds the enums and the client.

Every resolver calls the governance service over gRPC with the caller's token; none
imports its Python code. Authorization, validation and idempotency live in the service;
its statuses arrive here as errors with stable `extensions.code`s (and `field` for bad
input).
"""

from __future__ import annotations

import strawberry

from gateway.schema.governance.communities import CommunitiesMutation, CommunitiesQuery
from gateway.schema.governance.proposals import (
    GovernanceSubscription,
    ProposalsMutation,
    ProposalsQuery,
)
from gateway.schema.governance.standards import StandardsQuery


# The order of the bases is the order of the fields in the SDL.
@strawberry.type
class GovernanceQuery(CommunitiesQuery, ProposalsQuery, StandardsQuery):
    pass


@strawberry.type
class GovernanceMutation(CommunitiesMutation, ProposalsMutation):
    pass


__all__ = ["GovernanceMutation", "GovernanceQuery", "GovernanceSubscription"]

"""The gateway's GraphQL schema: one Query, Mutation and Subscription assembled from the
per-service modules. `graphql/schema.graphql` is exported from this (scripts/export_schema.py)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.errors import should_mask
from gateway.extensions import MaskInternalErrors, OperationMetrics
from gateway.schema.governance import (
    GovernanceMutation,
    GovernanceQuery,
    GovernanceSubscription,
)
from gateway.schema.humanity import HumanityMutation, HumanityQuery
from gateway.schema.identity import IdentityMutation, IdentityQuery
from gateway.schema.learning import LearningMutation, LearningQuery, LearningSubscription
from gateway.schema.marketplace import (
    MarketplaceMutation,
    MarketplaceQuery,
    MarketplaceSubscription,
)
from gateway.schema.passport import PassportMutation, PassportQuery, PassportSubscription
from gateway.schema.reputation import (
    ReputationMutation,
    ReputationQuery,
    ReputationSubscription,
)
from gateway.schema.system import SystemSubscription


@strawberry.type
class Query(
    IdentityQuery,
    HumanityQuery,
    LearningQuery,
    PassportQuery,
    ReputationQuery,
    GovernanceQuery,
    MarketplaceQuery,
):
    pass


@strawberry.type
class Mutation(
    IdentityMutation,
    HumanityMutation,
    LearningMutation,
    PassportMutation,
    ReputationMutation,
    GovernanceMutation,
    MarketplaceMutation,
):
    pass


@strawberry.type
class Subscription(
    SystemSubscription,
    LearningSubscription,
    PassportSubscription,
    ReputationSubscription,
    GovernanceSubscription,
    MarketplaceSubscription,
):
    pass


class KeikoSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what is ours to fix; client errors are answers, not incidents."""
        ours = [e for e in errors if should_mask(e)]
        if ours:
            super().process_errors(ours, execution_context)


def build_schema(*, max_depth: int = 12, max_aliases: int = 30) -> strawberry.Schema:
    return KeikoSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True),
        # Factories, not instances: each execution gets fresh extension state.
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            MaskInternalErrors,
            OperationMetrics,
        ],
    )

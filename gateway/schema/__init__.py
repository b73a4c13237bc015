"""The gateway's GraphQL schema: one Query, Mutation and Subscription assembled from the
per-service modules. `graphql/schema.graphql` is exported from this (scripts/export_schema.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult

from gateway.errors import ClientError, should_mask
from gateway.extensions import (
    MaskInternalErrors,
    OperationCostLimit,
    OperationMetrics,
    ParsedDocumentCache,
    RequestErrorCodes,
    RequestErrorsExecutionContext,
    ValidDocumentCache,
)
from gateway.scalars import SCALAR_OVERRIDES
from gateway.schema.actor_links import ActorLinksMutation, ActorLinksQuery
from gateway.schema.credentials import CredentialMutation, CredentialQuery
from gateway.schema.governance import (
    GovernanceMutation,
    GovernanceQuery,
    GovernanceSubscription,
)
from gateway.schema.humanity import HumanityMutation, HumanityQuery
from gateway.schema.identity import IdentityMutation, IdentityQuery
from gateway.schema.integrations import IntegrationsMutation, IntegrationsQuery
from gateway.schema.invitations import (
    InvitationMutation,
    InvitationQuery,
    InvitationSubscription,
)
from gateway.schema.learning import LearningMutation, LearningQuery, LearningSubscription
from gateway.schema.marketplace import (
    MarketplaceMutation,
    MarketplaceQuery,
    MarketplaceSubscription,
)
from gateway.schema.passport import PassportMutation, PassportQuery, PassportSubscription
from gateway.schema.passport.response_cache import PassportResponseCache, RenderedPassports
from gateway.schema.reputation import (
    ReputationMutation,
    ReputationQuery,
    ReputationSubscription,
)
from gateway.schema.system import SystemSubscription
from gateway.schema.users import UsersMutation, UsersQuery
from gateway.tracing import OperationTracing
from services.kit import tracing


@strawberry.type
class Query(
    IdentityQuery,
    HumanityQuery,
    LearningQuery,
    PassportQuery,
    CredentialQuery,
    ReputationQuery,
    GovernanceQuery,
    MarketplaceQuery,
    UsersQuery,
    IntegrationsQuery,
    InvitationQuery,
    ActorLinksQuery,
):
    pass


@strawberry.type
class Mutation(
    IdentityMutation,
    HumanityMutation,
    LearningMutation,
    PassportMutation,
    CredentialMutation,
    ReputationMutation,
    GovernanceMutation,
    MarketplaceMutation,
    UsersMutation,
    IntegrationsMutation,
    InvitationMutation,
    ActorLinksMutation,
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
    InvitationSubscription,
):
    pass


class KeikoSchema(strawberry.Schema):
    # Every query and mutation ends by this many seconds: its pending gRPC calls are
    # cancelled (the services see the cancellation) and the client gets TIMEOUT.
    deadline_seconds: float = 30.0

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            async with asyncio.timeout(self.deadline_seconds):
                return await super().execute(*args, **kwargs)
        except TimeoutError:
            error = ClientError(
                f"the operation did not finish within its deadline of {self.deadline_seconds:g} s",
                "TIMEOUT",
            )
            return ExecutionResult(data=None, errors=[error])

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what is ours to fix; client errors are answers, not incidents."""
        ours = [e for e in errors if should_mask(e)]
        if ours:
            super().process_errors(ours, execution_context)


def build_schema(
    *,
    max_depth: int = 12,
    max_aliases: int = 30,
    max_tokens: int = 5_000,
    max_cost: int = 25_000,
    max_anonymous_cost: int = 10_000,
    deadline_seconds: float = 30.0,
    passport_cache_bytes: int = 32 * 1024 * 1024,
) -> strawberry.Schema:
    """The schema with its limits (see docs/limits.md): tokens of the document, its cost
    (gateway.cost) per kind of caller, depth and aliases, and the operation deadline;
    rendered passport queries kept per caller and passport version up to
    ``passport_cache_bytes`` (0: none; gateway.schema.passport.response_cache)."""
    rendered = RenderedPassports(passport_cache_bytes)
    schema = KeikoSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True),
        # Factories, not instances: each execution gets fresh extension state. The cost
        # limit comes first: it refuses an operation before the others walk it.
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            # After the token limit, which it keys by (its parse option).
            ParsedDocumentCache,
            RequestErrorCodes,
            lambda: OperationCostLimit(max_cost=max_cost, max_anonymous_cost=max_anonymous_cost),
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            # After the cost limit (per caller, never cached) and the limiters' rules.
            ValidDocumentCache,
            MaskInternalErrors,
            OperationMetrics,
            # At execution, so after every limit and validation.
            lambda: PassportResponseCache(rendered),
            *([OperationTracing] if tracing.enabled() else []),
        ],
        execution_context_class=RequestErrorsExecutionContext,
        scalar_overrides=SCALAR_OVERRIDES,
    )
    schema.deadline_seconds = deadline_seconds
    return schema

"""Learning over GraphQL, one module per capability: interactions and statements
(paginated connections, recording, voiding, the `interactionRecorded` subscription) in
`interactions`, courses and classes in `hierarchy`, tutorial and study sessions in
`sessions`; `common` holds what they share.

Every resolver calls the learning service over gRPC; none imports its Python code.
Lists resolve per-item lookups (the course of each class, the class of each session or
interaction) through per-request DataLoaders, so a page of N classes costs one GetCourse
per distinct course, not N.
"""

from __future__ import annotations

import strawberry

from gateway.schema.learning.common import InteractionAnchor, InteractionType
from gateway.schema.learning.hierarchy import HierarchyMutation, HierarchyQuery
from gateway.schema.learning.interactions import (
    InteractionsMutation,
    InteractionsQuery,
    LearningSubscription,
)
from gateway.schema.learning.sessions import SessionsMutation, SessionsQuery


# The order of the bases is the order of the fields in the SDL.
@strawberry.type
class LearningQuery(InteractionsQuery, HierarchyQuery, SessionsQuery):
    pass


@strawberry.type
class LearningMutation(InteractionsMutation, HierarchyMutation, SessionsMutation):
    pass


__all__ = [
    "InteractionAnchor",
    "InteractionType",
    "LearningMutation",
    "LearningQuery",
    "LearningSubscription",
]

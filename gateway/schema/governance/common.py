"""What the governance GraphQL modules share: the service client, the enums and
their conversion from the service's values."""

from __future__ import annotations

import enum
from typing import Any

import strawberry

from gateway.context import Info
from services.api.keiko.governance import v1 as pb


@strawberry.enum(description="How a voter expresses preference and how the tally counts it.")
class VotingMethod(enum.Enum):
    SINGLE_CHOICE = "SINGLE_CHOICE"
    APPROVAL = "APPROVAL"
    WEIGHTED = "WEIGHTED"
    QUADRATIC = "QUADRATIC"


@strawberry.enum(description="Where votes are cast and counted.")
class VotingMode(enum.Enum):
    OFF_CHAIN = "OFF_CHAIN"
    ON_CHAIN = "ON_CHAIN"


@strawberry.enum(description="A member's role inside one community.")
class CommunityRole(enum.Enum):
    MEMBER = "MEMBER"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"


@strawberry.enum
class ProposalKind(enum.Enum):
    GENERAL = "GENERAL"
    STANDARDS_CHANGE = "STANDARDS_CHANGE"
    RULES_CHANGE = "RULES_CHANGE"


@strawberry.enum(
    description="PENDING -> ACTIVE -> DEFEATED | SUCCEEDED -> EXECUTED; CANCELED from "
    "PENDING or ACTIVE."
)
class ProposalStatus(enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    DEFEATED = "DEFEATED"
    SUCCEEDED = "SUCCEEDED"
    EXECUTED = "EXECUTED"
    CANCELED = "CANCELED"


@strawberry.enum
class StandardsKind(enum.Enum):
    COMMUNITY_STANDARDS = "COMMUNITY_STANDARDS"
    VALIDATION_RULES = "VALIDATION_RULES"


@strawberry.enum
class ProposalEventKind(enum.Enum):
    VOTE_CAST = "VOTE_CAST"
    STATUS_CHANGED = "STATUS_CHANGED"
    ANCHOR_CHANGED = "ANCHOR_CHANGED"


@strawberry.enum(description="Anchoring of a proposal's result on Keikochain.")
class ResultAnchorStatus(enum.Enum):
    NONE = "NONE"
    PENDING = "PENDING"
    ANCHORED = "ANCHORED"
    FAILED = "FAILED"


def enum_name(value: Any, enum_type: type[enum.Enum], prefix: str) -> Any:
    name = str(type(value)(value).name).removeprefix(prefix)
    return enum_type[name]


def uint32(value: int) -> int:
    """Negative numbers cannot travel as uint32: clamp to a value the service rejects
    with the field's own message."""
    return value if 0 <= value < 2**32 else 2**32 - 1


def governance(info: Info) -> pb.GovernanceServiceStub:
    info.context.require_token()
    return info.context.client(pb.GovernanceServiceStub)  # type: ignore[no-any-return]

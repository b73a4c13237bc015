"""What the learning GraphQL modules share: the service client, the enums, the anchor
state, scores and contexts, and small converters."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TypeVar

import strawberry

from gateway.context import Info
from services.api.keiko.common import v1 as common_pb
from services.api.keiko.learning import v1 as pb

T = TypeVar("T")


def learning(info: Info) -> pb.LearningServiceStub:
    return info.context.client(pb.LearningServiceStub)  # type: ignore[no-any-return]


def when(value: datetime) -> datetime | None:
    return None if value.timestamp() == 0 else value


@strawberry.enum(description="The kind of an atomic learning interaction.")
class InteractionType(enum.Enum):
    QUESTION = "QUESTION"
    ANSWER = "ANSWER"
    EXERCISE = "EXERCISE"
    DISCUSSION = "DISCUSSION"
    EVALUATION = "EVALUATION"
    FEEDBACK = "FEEDBACK"


def type_from_pb(value: int) -> InteractionType | None:
    name = common_pb.InteractionType(value).name
    return InteractionType[name] if name and name in InteractionType.__members__ else None


def type_to_pb(value: InteractionType) -> common_pb.InteractionType:
    return common_pb.InteractionType.from_string(value.value)


@strawberry.enum(description="Who leads a tutorial session.")
class SessionType(enum.Enum):
    HUMAN = "HUMAN"
    AI = "AI"
    GROUP = "GROUP"


@strawberry.enum(description="Where an interaction stands on its way onto Keikochain.")
class AnchorStatus(enum.Enum):
    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    ANCHORED = "ANCHORED"
    FAILED = "FAILED"


@strawberry.type
class InteractionAnchor:
    status: AnchorStatus
    batch_id: str
    merkle_root: str
    tx_hash: str
    block_number: int
    failure_reason: str
    anchored_at: datetime | None

    @staticmethod
    def from_pb(anchor: common_pb.AnchorState) -> InteractionAnchor:
        name = common_pb.AnchorStatus(anchor.status).name or "UNSPECIFIED"
        return InteractionAnchor(
            status=AnchorStatus[name],
            batch_id=anchor.batch_id,
            merkle_root=anchor.merkle_root,
            tx_hash=anchor.tx_hash,
            block_number=anchor.block_number,
            failure_reason=anchor.failure_reason,
            anchored_at=when(anchor.anchored_at),
        )


@strawberry.type
class Score:
    scaled: float | None
    raw: float | None
    min: float | None
    max: float | None


@strawberry.type
class InteractionContext:
    course_id: strawberry.ID | None
    class_id: strawberry.ID | None
    tutorial_session_id: strawberry.ID | None
    study_session_id: strawberry.ID | None


def optional_id(value: str) -> strawberry.ID | None:
    return strawberry.ID(value) if value else None


def page(token: str) -> tuple[str | None, bool]:
    return (token or None), bool(token)

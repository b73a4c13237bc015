"""Interactions and xAPI statements over GraphQL: reading them (paginated connections),
recording and preparing interactions, voiding statements, and the `interactionRecorded`
subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime, timedelta

import strawberry

from gateway.context import Info
from gateway.errors import ClientError, rpc, rpc_stream
from gateway.schema.learning.common import (
    InteractionAnchor,
    InteractionContext,
    InteractionType,
    Score,
    learning,
    optional_id,
    page,
    type_from_pb,
    type_to_pb,
)
from gateway.schema.learning.hierarchy import Class, Course, loaders
from services.api.keiko.common import v1 as common_pb
from services.api.keiko.learning import v1 as pb
from services.kit.limits import MAX_DURATION


@strawberry.type
class Interaction:
    """One atomic interaction: exactly one xAPI statement, sharing its id."""

    id: strawberry.ID
    learner_id: strawberry.ID
    interaction_type: InteractionType | None
    context: InteractionContext
    activity_id: str
    title: str
    content: str
    response: str
    related_interaction_id: strawberry.ID | None
    score: Score | None
    success: bool | None
    completion: bool | None
    duration_seconds: float | None
    occurred_at: datetime
    recorded_at: datetime
    statement_json: str = strawberry.field(
        description="The signed statement, byte for byte (RFC 8785 canonicalized to sign)."
    )
    signature_hex: str
    public_key_hex: str
    anchor: InteractionAnchor

    @strawberry.field(name="class", description="The class it was recorded in, if any.")
    async def klass(self, info: Info) -> Class | None:
        if self.context.class_id is None:
            return None
        return await loaders(info).classes.load(str(self.context.class_id))

    @strawberry.field(description="The course it was recorded in, if any.")
    async def course(self, info: Info) -> Course | None:
        if self.context.course_id is None:
            return None
        return await loaders(info).courses.load(str(self.context.course_id))

    @staticmethod
    def from_pb(interaction: pb.Interaction) -> Interaction:
        ctx = interaction.context
        score = None
        s = interaction.score
        if any(v is not None for v in (s.scaled, s.raw, s.min, s.max)):
            score = Score(scaled=s.scaled, raw=s.raw, min=s.min, max=s.max)
        duration = interaction.duration
        return Interaction(
            id=strawberry.ID(interaction.id),
            learner_id=strawberry.ID(interaction.learner_id),
            interaction_type=type_from_pb(interaction.interaction_type),
            context=InteractionContext(
                course_id=optional_id(ctx.course_id),
                class_id=optional_id(ctx.class_id),
                tutorial_session_id=optional_id(ctx.tutorial_session_id),
                study_session_id=optional_id(ctx.study_session_id),
            ),
            activity_id=interaction.activity_id,
            title=interaction.title,
            content=interaction.content,
            response=interaction.response,
            related_interaction_id=optional_id(interaction.related_interaction_id),
            score=score,
            success=interaction.success,
            completion=interaction.completion,
            duration_seconds=duration.total_seconds() if duration else None,
            occurred_at=interaction.occurred_at,
            recorded_at=interaction.recorded_at,
            statement_json=interaction.statement_json,
            signature_hex=interaction.signature_hex,
            public_key_hex=interaction.public_key_hex,
            anchor=InteractionAnchor.from_pb(interaction.anchor),
        )


@strawberry.type
class Statement:
    """A stored xAPI statement (any verb, from any tool)."""

    id: strawberry.ID
    statement_json: str
    learner_id: strawberry.ID | None
    verb_id: str
    object_id: str
    registration: str | None
    timestamp: datetime
    stored: datetime
    version: str
    voided: bool

    @staticmethod
    def from_pb(statement: pb.Statement) -> Statement:
        return Statement(
            id=strawberry.ID(statement.id),
            statement_json=statement.statement_json,
            learner_id=optional_id(statement.learner_id),
            verb_id=statement.verb_id,
            object_id=statement.object_id,
            registration=statement.registration or None,
            timestamp=statement.timestamp,
            stored=statement.stored,
            version=statement.version,
            voided=statement.voided,
        )


@strawberry.type
class InteractionConnection:
    nodes: list[Interaction]
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")
    has_next_page: bool


@strawberry.type
class StatementConnection:
    nodes: list[Statement]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class PreparedInteraction:
    statement_id: strawberry.ID
    statement_json: str
    canonical_statement_json: str = strawberry.field(
        description="The exact UTF-8 text a device signs (RFC 8785)."
    )


# -- inputs -----------------------------------------------------------------------------------


@strawberry.input
class ScoreInput:
    scaled: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None


@strawberry.input
class DeviceSignatureInput:
    signature_hex: str
    public_key_hex: str


@strawberry.input
class InteractionInput:
    interaction_type: InteractionType
    learner_id: strawberry.ID | None = strawberry.field(
        default=None, description="Empty: the caller. Tutors may record for their students."
    )
    course_id: strawberry.ID | None = None
    class_id: strawberry.ID | None = None
    tutorial_session_id: strawberry.ID | None = None
    study_session_id: strawberry.ID | None = None
    activity_id: str | None = None
    title: str | None = None
    content: str | None = None
    response: str | None = None
    related_interaction_id: strawberry.ID | None = None
    score: ScoreInput | None = None
    success: bool | None = None
    completion: bool | None = None
    duration_seconds: float | None = None
    occurred_at: datetime | None = None

    def to_pb(self) -> pb.InteractionInput:
        message = pb.InteractionInput(
            learner_id=str(self.learner_id or ""),
            interaction_type=type_to_pb(self.interaction_type),
            context=pb.InteractionContext(
                course_id=str(self.course_id or ""),
                class_id=str(self.class_id or ""),
                tutorial_session_id=str(self.tutorial_session_id or ""),
                study_session_id=str(self.study_session_id or ""),
            ),
            activity_id=self.activity_id or "",
            title=self.title or "",
            content=self.content or "",
            response=self.response or "",
            related_interaction_id=str(self.related_interaction_id or ""),
            success=self.success,
            completion=self.completion,
        )
        if self.score is not None:
            s = self.score
            message.score = pb.Score(scaled=s.scaled, raw=s.raw, min=s.min, max=s.max)
        if self.duration_seconds is not None:
            if not 0 <= self.duration_seconds <= MAX_DURATION.total_seconds():
                raise ClientError(
                    "durationSeconds must be between 0 and "
                    f"{MAX_DURATION.total_seconds():.0f} ({MAX_DURATION.days} days)",
                    "BAD_USER_INPUT",
                    field="durationSeconds",
                )
            message.duration = timedelta(seconds=self.duration_seconds)
        if self.occurred_at is not None:
            message.occurred_at = self.occurred_at
        return message


@strawberry.input(description="One interaction of recordInteractions.")
class InteractionSubmissionInput:
    input: InteractionInput
    statement_id: strawberry.ID | None = strawberry.field(
        default=None, description="From prepareInteraction; required with deviceSignature."
    )
    device_signature: DeviceSignatureInput | None = None

    def to_pb(self) -> pb.InteractionSubmission:
        return pb.InteractionSubmission(
            interaction=self.input.to_pb(),
            statement_id=str(self.statement_id or ""),
            device_signature=device_signature_pb(self.device_signature),
        )


def device_signature_pb(signature: DeviceSignatureInput | None) -> common_pb.DeviceSignature:
    """The message, unset (not on the wire) when no signature is given."""
    if signature is None:
        return common_pb.DeviceSignature()
    return common_pb.DeviceSignature(
        signature_hex=signature.signature_hex, public_key_hex=signature.public_key_hex
    )


@strawberry.type
class InteractionsQuery:
    @strawberry.field(description="Interactions in chronological order (a learner's own).")
    async def interactions(
        self,
        info: Info,
        learner_id: strawberry.ID | None = None,
        course_id: strawberry.ID | None = None,
        class_id: strawberry.ID | None = None,
        tutorial_session_id: strawberry.ID | None = None,
        study_session_id: strawberry.ID | None = None,
        types: list[InteractionType] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> InteractionConnection:
        info.context.require_token()
        request = pb.ListInteractionsRequest(
            learner_id=str(learner_id or ""),
            context=pb.InteractionContext(
                course_id=str(course_id or ""),
                class_id=str(class_id or ""),
                tutorial_session_id=str(tutorial_session_id or ""),
                study_session_id=str(study_session_id or ""),
            ),
            interaction_types=[type_to_pb(t) for t in types or []],
            page_size=first,
            page_token=after or "",
        )
        if since is not None:
            request.since = since
        if until is not None:
            request.until = until
        reply = await rpc(learning(info).list_interactions(request))
        cursor, more = page(reply.next_page_token)
        return InteractionConnection(
            nodes=[Interaction.from_pb(i) for i in reply.interactions],
            end_cursor=cursor,
            has_next_page=more,
        )

    @strawberry.field(description="One interaction with its signature and anchor state.")
    async def interaction(self, info: Info, id: strawberry.ID) -> Interaction:
        info.context.require_token()
        reply = await rpc(
            learning(info).get_interaction(pb.GetInteractionRequest(interaction_id=str(id)))
        )
        return Interaction.from_pb(reply.interaction)

    @strawberry.field(description="xAPI statements the caller may read, newest first.")
    async def statements(
        self,
        info: Info,
        learner_id: str | None = None,
        verb_id: str | None = None,
        activity_id: str | None = None,
        registration: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        ascending: bool = False,
        include_voided: bool = False,
        related_activities: bool = False,
        first: int = 50,
        after: str | None = None,
    ) -> StatementConnection:
        info.context.require_token()
        request = pb.QueryStatementsRequest(
            learner_id=learner_id or "",
            verb_id=verb_id or "",
            activity_id=activity_id or "",
            registration=registration or "",
            include_voided=include_voided,
            ascending=ascending,
            related_activities=related_activities,
            page_size=first,
            page_token=after or "",
        )
        if since is not None:
            request.since = since
        if until is not None:
            request.until = until
        reply = await rpc(learning(info).query_statements(request))
        cursor, more = page(reply.next_page_token)
        return StatementConnection(
            nodes=[Statement.from_pb(s) for s in reply.statements],
            end_cursor=cursor,
            has_next_page=more,
        )


@strawberry.type
class InteractionsMutation:
    @strawberry.mutation(
        description="Record an interaction (signed by the learner's key, or by the device "
        "when deviceSignature is given with the statementId of prepareInteraction)."
    )
    async def record_interaction(
        self,
        info: Info,
        input: InteractionInput,
        statement_id: strawberry.ID | None = None,
        device_signature: DeviceSignatureInput | None = None,
        request_id: str | None = None,
    ) -> Interaction:
        info.context.require_token()
        request = pb.RecordInteractionRequest(
            interaction=input.to_pb(),
            statement_id=str(statement_id or ""),
            device_signature=device_signature_pb(device_signature),
            request_id=request_id or "",
        )
        reply = await rpc(learning(info).record_interaction(request))
        return Interaction.from_pb(reply.interaction)

    @strawberry.mutation(
        description="Record up to 500 interactions at once, all or nothing, each as "
        "recordInteraction would (an error names the item: interactions[i].interaction.title); "
        "a retry with the same requestId returns the same interactions. In request order."
    )
    async def record_interactions(
        self,
        info: Info,
        interactions: list[InteractionSubmissionInput],
        request_id: str | None = None,
    ) -> list[Interaction]:
        info.context.require_token()
        request = pb.RecordInteractionsRequest(
            interactions=[item.to_pb() for item in interactions], request_id=request_id or ""
        )
        reply = await rpc(learning(info).record_interactions(request))
        return [Interaction.from_pb(x) for x in reply.interactions]

    @strawberry.mutation(description="Build the statement a device signs, without storing it.")
    async def prepare_interaction(self, info: Info, input: InteractionInput) -> PreparedInteraction:
        info.context.require_token()
        reply = await rpc(
            learning(info).prepare_interaction(
                pb.PrepareInteractionRequest(interaction=input.to_pb())
            )
        )
        return PreparedInteraction(
            statement_id=strawberry.ID(reply.statement_id),
            statement_json=reply.statement_json,
            canonical_statement_json=reply.canonical_statement_json,
        )

    @strawberry.mutation(description="Void a statement; returns the voiding statement.")
    async def void_statement(
        self, info: Info, id: strawberry.ID, request_id: str | None = None
    ) -> Statement:
        info.context.require_token()
        reply = await rpc(
            learning(info).void_statement(
                pb.VoidStatementRequest(statement_id=str(id), request_id=request_id or "")
            )
        )
        return Statement.from_pb(reply.voiding_statement)


@strawberry.type
class LearningSubscription:
    @strawberry.subscription(
        description="Interactions of a learner (default: the caller) as they are recorded. "
        "Tutors may watch the students of their sessions."
    )
    async def interaction_recorded(
        self, info: Info, learner_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Interaction, None]:
        info.context.require_token()
        stream = learning(info).watch_interactions(
            pb.WatchInteractionsRequest(learner_id=str(learner_id or ""))
        )
        async for event in rpc_stream(stream):
            if event.kind == pb.InteractionEventKind.RECORDED:
                yield Interaction.from_pb(event.interaction)

"""Learning over GraphQL: interactions and statements (paginated connections), the
hierarchy (courses, classes, tutorial and study sessions), recording interactions, and
the `interactionRecorded` subscription.

Every resolver calls the learning service over gRPC; none imports its Python code.
Lists resolve per-item lookups (the course of each class, the class of each session or
interaction) through per-request DataLoaders, so a page of N classes costs one GetCourse
per distinct course, not N.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import strawberry
from strawberry.dataloader import DataLoader

from gateway.context import Info
from gateway.errors import ClientError, rpc, rpc_stream
from gateway.schema.invitations import Invitation
from services.api.keiko.common import v1 as common_pb
from services.api.keiko.learning import v1 as pb
from services.kit.limits import MAX_DURATION

T = TypeVar("T")


def learning(info: Info) -> pb.LearningServiceStub:
    return info.context.client(pb.LearningServiceStub)  # type: ignore[no-any-return]


def _when(value: datetime) -> datetime | None:
    return None if value.timestamp() == 0 else value


# -- enums ------------------------------------------------------------------------------------


@strawberry.enum(description="The kind of an atomic learning interaction.")
class InteractionType(enum.Enum):
    QUESTION = "QUESTION"
    ANSWER = "ANSWER"
    EXERCISE = "EXERCISE"
    DISCUSSION = "DISCUSSION"
    EVALUATION = "EVALUATION"
    FEEDBACK = "FEEDBACK"


def _type_from_pb(value: int) -> InteractionType | None:
    name = common_pb.InteractionType(value).name
    return InteractionType[name] if name and name in InteractionType.__members__ else None


def _type_to_pb(value: InteractionType) -> common_pb.InteractionType:
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


# -- types ------------------------------------------------------------------------------------


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
            anchored_at=_when(anchor.anchored_at),
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


def _id(value: str) -> strawberry.ID | None:
    return strawberry.ID(value) if value else None


@strawberry.type
class Course:
    id: strawberry.ID
    title: str
    description: str
    instructor_id: strawberry.ID
    class_ids: list[strawberry.ID]
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The classes of the course, in creation order.")
    async def classes(self, info: Info) -> list[Class]:
        return list(await loaders(info).classes.load_many([str(c) for c in self.class_ids]))

    @staticmethod
    def from_pb(course: pb.Course) -> Course:
        return Course(
            id=strawberry.ID(course.id),
            title=course.title,
            description=course.description,
            instructor_id=strawberry.ID(course.instructor_id),
            class_ids=[strawberry.ID(c) for c in course.class_ids],
            created_at=course.created_at,
            updated_at=course.updated_at,
        )


@strawberry.type
class Class:
    id: strawberry.ID
    course_id: strawberry.ID | None
    title: str
    description: str
    tutorial_session_ids: list[strawberry.ID]
    interaction_count: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The course of the class; null for a standalone class.")
    async def course(self, info: Info) -> Course | None:
        if self.course_id is None:
            return None
        return await loaders(info).courses.load(str(self.course_id))

    @staticmethod
    def from_pb(klass: pb.Class) -> Class:
        return Class(
            id=strawberry.ID(klass.id),
            course_id=_id(klass.course_id),
            title=klass.title,
            description=klass.description,
            tutorial_session_ids=[strawberry.ID(s) for s in klass.tutorial_session_ids],
            interaction_count=klass.interaction_count,
            created_at=klass.created_at,
            updated_at=klass.updated_at,
        )


@strawberry.type
class TutorialSession:
    id: strawberry.ID
    class_id: strawberry.ID | None
    tutor_id: strawberry.ID
    student_ids: list[strawberry.ID]
    session_type: SessionType
    topic: str
    scheduled_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    interaction_count: int
    created_at: datetime
    invitations: list[Invitation] = strawberry.field(
        description="The invitations of the students named by someone else (issue 9)."
    )

    @strawberry.field(name="class", description="The class the session is held in, if any.")
    async def klass(self, info: Info) -> Class | None:
        if self.class_id is None:
            return None
        return await loaders(info).classes.load(str(self.class_id))

    @staticmethod
    def from_pb(session: pb.TutorialSession) -> TutorialSession:
        return TutorialSession(
            id=strawberry.ID(session.id),
            class_id=_id(session.class_id),
            tutor_id=strawberry.ID(session.tutor_id),
            student_ids=[strawberry.ID(s) for s in session.student_ids],
            session_type=SessionType[str(pb.SessionType(session.session_type).name)],
            topic=session.topic,
            scheduled_at=_when(session.scheduled_at),
            started_at=_when(session.started_at),
            ended_at=_when(session.ended_at),
            interaction_count=session.interaction_count,
            created_at=session.created_at,
            invitations=[Invitation.from_pb(i) for i in session.invitations],
        )


@strawberry.type
class StudySession:
    id: strawberry.ID
    learner_id: strawberry.ID
    class_id: strawberry.ID | None
    topic: str
    started_at: datetime
    ended_at: datetime | None
    interaction_count: int

    @strawberry.field(name="class")
    async def klass(self, info: Info) -> Class | None:
        if self.class_id is None:
            return None
        return await loaders(info).classes.load(str(self.class_id))

    @staticmethod
    def from_pb(session: pb.StudySession) -> StudySession:
        return StudySession(
            id=strawberry.ID(session.id),
            learner_id=strawberry.ID(session.learner_id),
            class_id=_id(session.class_id),
            topic=session.topic,
            started_at=session.started_at,
            ended_at=_when(session.ended_at),
            interaction_count=session.interaction_count,
        )


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
            interaction_type=_type_from_pb(interaction.interaction_type),
            context=InteractionContext(
                course_id=_id(ctx.course_id),
                class_id=_id(ctx.class_id),
                tutorial_session_id=_id(ctx.tutorial_session_id),
                study_session_id=_id(ctx.study_session_id),
            ),
            activity_id=interaction.activity_id,
            title=interaction.title,
            content=interaction.content,
            response=interaction.response,
            related_interaction_id=_id(interaction.related_interaction_id),
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
            learner_id=_id(statement.learner_id),
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
class CourseConnection:
    nodes: list[Course]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class ClassConnection:
    nodes: list[Class]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class TutorialSessionConnection:
    nodes: list[TutorialSession]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class StudySessionConnection:
    nodes: list[StudySession]
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
            interaction_type=_type_to_pb(self.interaction_type),
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


@strawberry.input
class TutorialSessionInput:
    session_type: SessionType
    student_ids: list[strawberry.ID]
    tutor_id: strawberry.ID | None = None
    class_id: strawberry.ID | None = None
    topic: str = ""
    scheduled_at: datetime | None = None
    request_id: str | None = None


# -- DataLoaders ------------------------------------------------------------------------------


class LearningLoaders:
    """Per-request loaders: each distinct course / class is fetched once per request."""

    def __init__(self, info: Info) -> None:
        client = learning(info)

        async def each(keys: Sequence[str], fetch: Callable[[str], Awaitable[T]]) -> list[T]:
            found = await asyncio.gather(*(fetch(k) for k in dict.fromkeys(keys)))
            by_key = dict(zip(dict.fromkeys(keys), found, strict=True))
            return [by_key[k] for k in keys]

        async def course(key: str) -> Course:
            reply = await rpc(client.get_course(pb.GetCourseRequest(course_id=key)))
            return Course.from_pb(reply.course)

        async def klass(key: str) -> Class:
            reply = await rpc(client.get_class(pb.GetClassRequest(class_id=key)))
            return Class.from_pb(reply.class_)

        async def load_courses(keys: list[str]) -> list[Course]:
            return await each(keys, course)

        async def load_classes(keys: list[str]) -> list[Class]:
            return await each(keys, klass)

        self.courses: DataLoader[str, Course] = DataLoader(load_fn=load_courses)
        self.classes: DataLoader[str, Class] = DataLoader(load_fn=load_classes)


def loaders(info: Info) -> LearningLoaders:
    found: LearningLoaders | None = getattr(info.context, "_learning_loaders", None)
    if found is None:
        found = LearningLoaders(info)
        info.context._learning_loaders = found  # type: ignore[attr-defined]
    return found


def _page(token: str) -> tuple[str | None, bool]:
    return (token or None), bool(token)


# -- operations -------------------------------------------------------------------------------


@strawberry.type
class LearningQuery:
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
            interaction_types=[_type_to_pb(t) for t in types or []],
            page_size=first,
            page_token=after or "",
        )
        if since is not None:
            request.since = since
        if until is not None:
            request.until = until
        reply = await rpc(learning(info).list_interactions(request))
        cursor, more = _page(reply.next_page_token)
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
        cursor, more = _page(reply.next_page_token)
        return StatementConnection(
            nodes=[Statement.from_pb(s) for s in reply.statements],
            end_cursor=cursor,
            has_next_page=more,
        )

    @strawberry.field
    async def course(self, info: Info, id: strawberry.ID) -> Course:
        info.context.require_token()
        return await loaders(info).courses.load(str(id))

    @strawberry.field
    async def courses(
        self,
        info: Info,
        instructor_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> CourseConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_courses(
                pb.ListCoursesRequest(
                    instructor_id=str(instructor_id or ""), page_size=first, page_token=after or ""
                )
            )
        )
        cursor, more = _page(reply.next_page_token)
        return CourseConnection(
            nodes=[Course.from_pb(c) for c in reply.courses], end_cursor=cursor, has_next_page=more
        )

    @strawberry.field(name="class")
    async def klass(self, info: Info, id: strawberry.ID) -> Class:
        info.context.require_token()
        return await loaders(info).classes.load(str(id))

    @strawberry.field
    async def classes(
        self,
        info: Info,
        course_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> ClassConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_classes(
                pb.ListClassesRequest(
                    course_id=str(course_id or ""), page_size=first, page_token=after or ""
                )
            )
        )
        cursor, more = _page(reply.next_page_token)
        return ClassConnection(
            nodes=[Class.from_pb(c) for c in reply.classes], end_cursor=cursor, has_next_page=more
        )

    @strawberry.field
    async def tutorial_session(self, info: Info, id: strawberry.ID) -> TutorialSession:
        info.context.require_token()
        reply = await rpc(
            learning(info).get_tutorial_session(pb.GetTutorialSessionRequest(session_id=str(id)))
        )
        return TutorialSession.from_pb(reply.session)

    @strawberry.field(description="Tutorial sessions the caller takes part in.")
    async def tutorial_sessions(
        self,
        info: Info,
        class_id: strawberry.ID | None = None,
        tutor_id: strawberry.ID | None = None,
        student_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> TutorialSessionConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_tutorial_sessions(
                pb.ListTutorialSessionsRequest(
                    class_id=str(class_id or ""),
                    tutor_id=str(tutor_id or ""),
                    student_id=str(student_id or ""),
                    page_size=first,
                    page_token=after or "",
                )
            )
        )
        cursor, more = _page(reply.next_page_token)
        return TutorialSessionConnection(
            nodes=[TutorialSession.from_pb(s) for s in reply.sessions],
            end_cursor=cursor,
            has_next_page=more,
        )

    @strawberry.field(description="The caller's study sessions, newest first.")
    async def study_sessions(
        self,
        info: Info,
        class_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> StudySessionConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_study_sessions(
                pb.ListStudySessionsRequest(
                    class_id=str(class_id or ""), page_size=first, page_token=after or ""
                )
            )
        )
        cursor, more = _page(reply.next_page_token)
        return StudySessionConnection(
            nodes=[StudySession.from_pb(s) for s in reply.sessions],
            end_cursor=cursor,
            has_next_page=more,
        )


@strawberry.type
class LearningMutation:
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
            request_id=request_id or "",
        )
        if device_signature is not None:
            request.device_signature = common_pb.DeviceSignature(
                signature_hex=device_signature.signature_hex,
                public_key_hex=device_signature.public_key_hex,
            )
        reply = await rpc(learning(info).record_interaction(request))
        return Interaction.from_pb(reply.interaction)

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

    @strawberry.mutation
    async def create_course(
        self,
        info: Info,
        title: str,
        description: str = "",
        instructor_id: strawberry.ID | None = None,
        request_id: str | None = None,
    ) -> Course:
        info.context.require_token()
        reply = await rpc(
            learning(info).create_course(
                pb.CreateCourseRequest(
                    title=title,
                    description=description,
                    instructor_id=str(instructor_id or ""),
                    request_id=request_id or "",
                )
            )
        )
        return Course.from_pb(reply.course)

    @strawberry.mutation
    async def update_course(
        self,
        info: Info,
        id: strawberry.ID,
        title: str | None = None,
        description: str | None = None,
    ) -> Course:
        info.context.require_token()
        reply = await rpc(
            learning(info).update_course(
                pb.UpdateCourseRequest(course_id=str(id), title=title, description=description)
            )
        )
        return Course.from_pb(reply.course)

    @strawberry.mutation
    async def create_class(
        self,
        info: Info,
        title: str,
        description: str = "",
        course_id: strawberry.ID | None = None,
        request_id: str | None = None,
    ) -> Class:
        info.context.require_token()
        reply = await rpc(
            learning(info).create_class(
                pb.CreateClassRequest(
                    course_id=str(course_id or ""),
                    title=title,
                    description=description,
                    request_id=request_id or "",
                )
            )
        )
        return Class.from_pb(reply.class_)

    @strawberry.mutation
    async def create_tutorial_session(
        self, info: Info, input: TutorialSessionInput
    ) -> TutorialSession:
        info.context.require_token()
        request = pb.CreateTutorialSessionRequest(
            class_id=str(input.class_id or ""),
            tutor_id=str(input.tutor_id or ""),
            student_ids=[str(s) for s in input.student_ids],
            session_type=pb.SessionType.from_string(input.session_type.value),
            topic=input.topic,
            request_id=input.request_id or "",
        )
        if input.scheduled_at is not None:
            request.scheduled_at = input.scheduled_at
        reply = await rpc(learning(info).create_tutorial_session(request))
        return TutorialSession.from_pb(reply.session)

    @strawberry.mutation(description="Start a tutorial session (its tutor). Idempotent.")
    async def start_tutorial_session(self, info: Info, id: strawberry.ID) -> TutorialSession:
        info.context.require_token()
        reply = await rpc(
            learning(info).start_tutorial_session(
                pb.StartTutorialSessionRequest(session_id=str(id))
            )
        )
        return TutorialSession.from_pb(reply.session)

    @strawberry.mutation(description="End a tutorial session (any participant). Idempotent.")
    async def end_tutorial_session(self, info: Info, id: strawberry.ID) -> TutorialSession:
        info.context.require_token()
        reply = await rpc(
            learning(info).end_tutorial_session(pb.EndTutorialSessionRequest(session_id=str(id)))
        )
        return TutorialSession.from_pb(reply.session)

    @strawberry.mutation(description="Open a self-study session for the caller.")
    async def start_study_session(
        self,
        info: Info,
        class_id: strawberry.ID | None = None,
        topic: str = "",
        request_id: str | None = None,
    ) -> StudySession:
        info.context.require_token()
        reply = await rpc(
            learning(info).start_study_session(
                pb.StartStudySessionRequest(
                    class_id=str(class_id or ""), topic=topic, request_id=request_id or ""
                )
            )
        )
        return StudySession.from_pb(reply.session)

    @strawberry.mutation(description="Close one of the caller's study sessions. Idempotent.")
    async def end_study_session(self, info: Info, id: strawberry.ID) -> StudySession:
        info.context.require_token()
        reply = await rpc(
            learning(info).end_study_session(pb.EndStudySessionRequest(session_id=str(id)))
        )
        return StudySession.from_pb(reply.session)

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


__all__ = ["LearningMutation", "LearningQuery", "LearningSubscription"]

"""Interaction use cases: record (optionally device-signed after PrepareInteraction), read,
list and authorize watching a learner's interactions.

Authorization (issue 9, see `services.learning.sessions.consent`): a learner records
into their own record; into a tutorial or study session only as a participant, while it
is open (the domain's rules); referencing a class (or course) only when taking part in it.
The tutor of a tutorial session records for a student of it only once the student agreed
to the session. Admins may record for anyone. A learner's interactions are read by the
learner and admins, and by a tutor only those recorded in the sessions that tutor runs
with the learner and the learner agreed to (streams included).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.errors import FailedPrecondition, NotFound, PermissionDenied, ValidationError
from services.learning.common.storage import RequestKeys
from services.learning.common.usecases import (
    MAX_STATEMENT_PAGE,
    LearningContext,
    Page,
    check_request_id,
    check_statement_id,
)
from services.learning.hierarchy import domain as h
from services.learning.hierarchy.storage import HierarchyRepository
from services.learning.interactions import domain as ix
from services.learning.interactions.inputs import (
    KIND_NAMES,
    InteractionInput,
    PreparedInteraction,
    domain_interaction,
    interaction_details,
    verify_device_signature,
)
from services.learning.interactions.storage import PreparedRecord, PreparedRepository
from services.learning.sessions.storage import SessionRepository
from services.learning.sessions.usecases import Sessions, load_class
from services.learning.statements.domain import (
    DeviceSignature,
    StatementRecord,
    StoreExtras,
    json_text,
)
from services.learning.statements.storage import StatementFilter, StatementRepository
from services.learning.statements.usecases import Statements
from services.learning.xapi import (
    ValidatedStatement,
    canonical_bytes,
    format_timestamp,
    parse_timestamp,
    validate_statement,
)


@dataclass(frozen=True)
class Placement:
    """Where an interaction is recorded: the domain context and the ids stored with it."""

    where: ix.HierarchyContext
    course_id: str | None
    class_id: str | None
    tutorial_session_id: str | None
    study_session_id: str | None


async def _placement(s: AsyncSession, inp: InteractionInput) -> Placement:
    sessions = SessionRepository(s)
    tutorial = None
    study = None
    session_class: str | None = None
    if inp.tutorial_session_id:
        row = await sessions.get_tutorial(inp.tutorial_session_id)
        if row is None:
            raise NotFound(f"tutorial session {inp.tutorial_session_id} not found")
        if row.started_at is None:
            raise FailedPrecondition("the tutorial session has not started yet")
        students = (await sessions.participants([row.id]))[row.id]
        tutorial = replace(row, student_ids=students).domain()
        session_class = row.class_id
    if inp.study_session_id:
        study_row = await sessions.get_study(inp.study_session_id)
        if study_row is None:
            raise NotFound(f"study session {inp.study_session_id} not found")
        study = study_row.domain()
        session_class = session_class or study_row.class_id
    klass = await load_class(s, inp.class_id or session_class or "")
    course: h.Course | None = None
    course_id = inp.course_id or (klass.course_id if klass is not None else None)
    if course_id:
        course_row = await HierarchyRepository(s).get_course(course_id)
        if course_row is None:
            raise NotFound(f"course {course_id} not found")
        course = course_row.domain()
    where = ix.HierarchyContext(course=course, klass=klass, tutorial=tutorial, study=study)
    return Placement(
        where=where,
        course_id=course.id if course else None,
        class_id=klass.id if klass else None,
        tutorial_session_id=tutorial.id if tutorial else None,
        study_session_id=study.id if study else None,
    )


class Interactions:
    def __init__(self, ctx: LearningContext, statements: Statements, sessions: Sessions) -> None:
        self.ctx = ctx
        self.statements = statements
        self.sessions = sessions

    async def _build(
        self,
        s: AsyncSession,
        caller: Principal,
        inp: InteractionInput,
        statement_id: str,
        *,
        timestamp: datetime,
        stored: datetime,
        authority_id: str,
    ) -> tuple[ValidatedStatement, StoreExtras, str]:
        kind = KIND_NAMES.get(inp.kind)
        if kind is None:
            raise ValidationError(
                "interaction.interaction_type",
                "must be one of question, answer, exercise, discussion, evaluation, feedback",
            )
        learner = inp.learner_id or caller.user_id
        h.check_id(learner, "interaction.learner_id")
        placement = await _placement(s, inp)
        where = placement.where
        if learner != caller.user_id and not caller.is_admin:
            tutorial = where.tutorial
            if tutorial is None or tutorial.tutor_id != caller.user_id:
                raise PermissionDenied(
                    "only the tutor of a tutorial session may record for its students"
                )
            if learner not in tutorial.student_ids:
                raise PermissionDenied("the learner is not a student of this tutorial session")
            planned = await SessionRepository(s).get_tutorial(tutorial.id)
            creator = planned.created_by if planned is not None else ""
            if learner not in await self.sessions.agreed_students(s, tutorial.id, creator):
                raise PermissionDenied(
                    "the learner has not accepted this tutorial session: "
                    "nothing is recorded about them until they do"
                )
        elif not caller.is_admin and where.tutorial is None:
            await self._require_taking_part(s, caller, placement)
        related: StatementRecord | None = None
        if inp.related_interaction_id:
            rid = check_statement_id(
                inp.related_interaction_id, "interaction.related_interaction_id"
            )
            related = await StatementRepository(s).get_statement(rid)
            if related is None or not (
                caller.is_admin
                or caller.user_id in (related.learner_id, related.recorded_by)
                or learner == related.learner_id
                or (where.tutorial is not None and related.tutorial_session_id == where.tutorial.id)
            ):
                raise ValidationError(
                    "interaction.related_interaction_id", f"no interaction {rid} you may refer to"
                )
        domain, external_object = domain_interaction(kind, inp, statement_id, related)
        statement = ix.build_statement(domain, learner, where, self.ctx.clock)
        statement["id"] = statement_id
        statement["timestamp"] = format_timestamp(timestamp)
        if external_object is not None:
            statement["object"]["id"] = external_object
        validated = validate_statement(
            statement,
            clock=FixedClock(stored),
            authority=h.keiko_agent(authority_id),
            path="interaction",
        )
        extras = StoreExtras(
            interaction_type=kind.value,
            interaction=interaction_details(inp, validated),
            course_id=placement.course_id,
            class_id=placement.class_id,
            tutorial_session_id=placement.tutorial_session_id,
            study_session_id=placement.study_session_id,
        )
        return validated, extras, learner

    async def prepare_interaction(
        self, caller: Principal, inp: InteractionInput
    ) -> PreparedInteraction:
        statement_id = str(uuid.uuid4())
        now = self.ctx.clock.now()
        occurred = inp.occurred_at or now
        async with self.ctx.db.transaction() as s:
            v, _, learner = await self._build(
                s,
                caller,
                inp,
                statement_id,
                timestamp=occurred,
                stored=now,
                authority_id=caller.user_id,
            )
            text = json_text(v.statement)
            await PreparedRepository(s).insert(
                PreparedRecord(
                    statement_id=statement_id,
                    learner_id=learner,
                    prepared_by=caller.user_id,
                    statement_json=text,
                    created_at=now,
                )
            )
        return PreparedInteraction(statement_id, text, canonical_bytes(v.statement).decode("utf-8"))

    async def record_interaction(
        self,
        caller: Principal,
        inp: InteractionInput,
        *,
        statement_id: str = "",
        device_signature: DeviceSignature | None = None,
        request_id: str = "",
    ) -> StatementRecord:
        request_id = check_request_id(request_id)
        if request_id and not statement_id:
            replay = await self.ctx.replay(caller, "record_interaction", request_id)
            if replay is not None:
                return (await self.statements.rows_in_order([replay]))[0]
        if device_signature is not None and not statement_id:
            raise ValidationError(
                "statement_id", "is required with a device signature (from PrepareInteraction)"
            )
        sid = (
            check_statement_id(statement_id, "statement_id") if statement_id else str(uuid.uuid4())
        )
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as s:
            # A generated id cannot have been prepared (PrepareInteraction issues its own).
            prep = await PreparedRepository(s).get(sid) if statement_id else None
            if device_signature is not None and prep is None:
                raise ValidationError("statement_id", "was not issued by PrepareInteraction")
            if prep is not None:
                if prep.prepared_by != caller.user_id and not caller.is_admin:
                    raise PermissionDenied("this statement id was prepared by another user")
                prepared_statement = json.loads(prep.statement_json)
                timestamp = inp.occurred_at or parse_timestamp(prepared_statement["timestamp"])
                stored = parse_timestamp(prepared_statement["stored"])
                authority_id = prep.prepared_by
            else:
                timestamp, stored, authority_id = inp.occurred_at or now, now, caller.user_id
            v, extras, _ = await self._build(
                s,
                caller,
                inp,
                sid,
                timestamp=timestamp,
                stored=stored,
                authority_id=authority_id,
            )
            if prep is not None:
                if canonical_bytes(v.statement) != canonical_bytes(json.loads(prep.statement_json)):
                    raise ValidationError(
                        "interaction", "differs from the interaction given to PrepareInteraction"
                    )
                extras.statement_json = prep.statement_json
            if device_signature is not None:
                verify_device_signature(canonical_bytes(v.statement), device_signature)
                extras.device = device_signature
            row = await self.statements.store(
                s, caller, v, extras, path="interaction", fresh_id=not statement_id
            )
            if request_id and not statement_id:
                await RequestKeys(s).put(
                    caller.user_id, "record_interaction", request_id, row.id, now
                )
        self.ctx.notify()
        return row

    async def get_interaction(self, caller: Principal, interaction_id: str) -> StatementRecord:
        row = await self.get_statement_for_watch(interaction_id)
        if row is None or row.interaction_type is None:
            raise NotFound(f"interaction {interaction_id} not found")
        await self._require_visible(caller, row)
        return row

    async def get_statement_for_watch(self, statement_id: str) -> StatementRecord | None:
        return await self.statements.find(statement_id, "interaction_id")

    async def _require_taking_part(
        self, s: AsyncSession, caller: Principal, placement: Placement
    ) -> None:
        """A learner references a class (or a course) in their own record only when they
        take part in it (a class of it, for a course)."""
        if placement.class_id is not None:
            if not await self.sessions.takes_part(s, caller, placement.class_id):
                raise PermissionDenied("you may record in a class only when you take part in it")
        elif placement.course_id is not None:
            course = placement.where.course
            if course is not None and course.instructor_id == caller.user_id:
                return
            of_course = await HierarchyRepository(s).class_ids_of_courses([placement.course_id])
            for class_id in of_course.get(placement.course_id, []):
                if await self.sessions.takes_part(s, caller, class_id):
                    return
            raise PermissionDenied("you may record in a course only when you take part in it")

    async def visible(self, caller: Principal, row: StatementRecord) -> bool:
        """Whether the caller may read this interaction (and see it on a stream)."""
        if caller.is_admin:
            return True
        if not row.learner_id:  # not about a Keiko learner: whoever recorded it
            return caller.user_id == row.recorded_by
        if caller.user_id == row.learner_id:
            return True
        if not row.tutorial_session_id:
            return False
        scope = await self.sessions.read_scope(caller, row.learner_id)
        return scope is None or row.tutorial_session_id in scope

    async def _require_visible(self, caller: Principal, row: StatementRecord) -> None:
        if not await self.visible(caller, row):
            raise PermissionDenied("not allowed to read this interaction")

    async def list_interactions(
        self,
        caller: Principal,
        *,
        learner_id: str = "",
        course_id: str = "",
        class_id: str = "",
        tutorial_session_id: str = "",
        study_session_id: str = "",
        interaction_types: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        requested: int = 0,
        token: str = "",
    ) -> Page[StatementRecord]:
        learner = learner_id or caller.user_id
        scope = await self.sessions.read_scope(caller, learner)
        if scope is not None and not scope:
            raise PermissionDenied("not allowed to list this learner's interactions")
        unknown = [t for t in interaction_types if t not in KIND_NAMES]
        if unknown:
            raise ValidationError("interaction_types", f"unknown interaction type {unknown[0]}")
        f = StatementFilter(
            learner_id=h.check_id(learner, "learner_id"),
            since=since,
            until=until,
            ascending=True,
            interactions_only=True,
            interaction_types=tuple(interaction_types),
            course_id=course_id,
            class_id=class_id,
            tutorial_session_id=tutorial_session_id,
            study_session_id=study_session_id,
            within_sessions=scope,
        )
        return await self.statements.page(f, requested, MAX_STATEMENT_PAGE, token)

    async def authorize_watch(self, caller: Principal, learner_id: str) -> str:
        learner = learner_id or caller.user_id
        scope = await self.sessions.read_scope(caller, learner)
        if scope is not None and not scope:
            raise PermissionDenied("not allowed to watch this learner's interactions")
        return learner

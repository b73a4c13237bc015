"""Interaction use cases: record one or a batch (optionally device-signed after
PrepareInteraction), read, list and authorize watching a learner's interactions. A single
RecordInteraction is a batch of one: the same rules, the same code.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.errors import NotFound, PermissionDenied, ValidationError
from services.kit.idempotency import Replayed
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
    MAX_INTERACTION_BATCH,
    InteractionInput,
    InteractionSubmission,
    PreparedInteraction,
    domain_interaction,
    interaction_details,
    item_errors,
    stable_activity,
    verify_device_signature,
)
from services.learning.interactions.placements import Placement, Placements
from services.learning.interactions.storage import PreparedRecord, PreparedRepository
from services.learning.sessions.usecases import Sessions
from services.learning.statements.domain import (
    DeviceSignature,
    StatementRecord,
    StoreExtras,
    json_text,
)
from services.learning.statements.storage import StatementFilter, StatementRepository
from services.learning.statements.usecases import Statements
from services.learning.statements.writes import (
    Incoming,
    new_record,
    stored_in_one_write,
    stored_once,
)
from services.learning.xapi import (
    ValidatedStatement,
    canonical_bytes,
    format_timestamp,
    parse_timestamp,
    validate_statement,
)


@dataclass
class _Batch:
    """What recording a batch looks up once for all its items: the containers they name,
    the interactions they refer to (stored ones, then the batch's earlier items), and the
    answers of the authorization rules per session, class and course."""

    placements: Placements
    related: dict[str, StatementRecord]
    # The ids items relate to: an earlier item with one of them is kept in `related`.
    referred: set[str] = field(default_factory=set)
    agreed: dict[str, set[str]] = field(default_factory=dict)
    takes_part: dict[str, bool] = field(default_factory=dict)
    course_classes: dict[str, list[str]] = field(default_factory=dict)


class Interactions:
    def __init__(self, ctx: LearningContext, statements: Statements, sessions: Sessions) -> None:
        self.ctx = ctx
        self.statements = statements
        self.sessions = sessions

    async def _batch(
        self, s: AsyncSession, inputs: Sequence[InteractionInput], prefixes: Sequence[str]
    ) -> _Batch:
        related_ids = {
            check_statement_id(
                inp.related_interaction_id, prefix + "interaction.related_interaction_id"
            )
            for inp, prefix in zip(inputs, prefixes, strict=True)
            if inp.related_interaction_id
        }
        placements = await Placements.load(s, inputs)
        related = await StatementRepository(s).get_statements(sorted(related_ids))
        return _Batch(placements, related, related_ids)

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
        batch: _Batch,
        prefix: str = "",
    ) -> tuple[ValidatedStatement, StoreExtras, str]:
        """The statement of one interaction and what is stored with it, after the rules of
        who may record it where; errors name the item by `prefix` (see `item_errors`)."""
        with item_errors(prefix, "interaction"):
            kind = KIND_NAMES.get(inp.kind)
            if kind is None:
                raise ValidationError(
                    "interaction.interaction_type",
                    "must be one of question, answer, exercise, discussion, evaluation, feedback",
                )
            learner = inp.learner_id or caller.user_id
            h.check_id(learner, "interaction.learner_id")
        with item_errors(prefix, "interaction.context"):
            placement = batch.placements.of(inp)
        where = placement.where
        if learner != caller.user_id and not caller.is_admin:
            with item_errors(prefix, "interaction.learner_id"):
                await self._require_tutor_of(s, caller, learner, placement, batch)
        elif not caller.is_admin and where.tutorial is None:
            with item_errors(prefix, "interaction.context"):
                await self._require_taking_part(s, caller, placement, batch)
        with item_errors(prefix, "interaction"):
            related: StatementRecord | None = None
            if inp.related_interaction_id:
                rid = inp.related_interaction_id.lower()
                related = batch.related.get(rid)
                if related is None or not (
                    caller.is_admin
                    or caller.user_id in (related.learner_id, related.recorded_by)
                    or learner == related.learner_id
                    or (
                        where.tutorial is not None
                        and related.tutorial_session_id == where.tutorial.id
                    )
                ):
                    raise ValidationError(
                        "interaction.related_interaction_id",
                        f"no interaction {rid} you may refer to",
                    )
            domain, external_object = domain_interaction(kind, inp, statement_id, related)
        with item_errors(prefix, "interaction.context"):
            statement = ix.build_statement(domain, learner, where, self.ctx.clock)
        statement["id"] = statement_id
        statement["timestamp"] = format_timestamp(timestamp)
        if external_object is not None:
            statement["object"]["id"] = external_object
        with item_errors(prefix, "interaction"):
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

    async def _require_tutor_of(
        self,
        s: AsyncSession,
        caller: Principal,
        learner: str,
        placement: Placement,
        batch: _Batch,
    ) -> None:
        """Recording about another learner: the tutor of the tutorial session, for a student
        of it who agreed to it."""
        tutorial = placement.where.tutorial
        if tutorial is None or tutorial.tutor_id != caller.user_id:
            raise PermissionDenied(
                "only the tutor of a tutorial session may record for its students"
            )
        if learner not in tutorial.student_ids:
            raise PermissionDenied("the learner is not a student of this tutorial session")
        agreed = batch.agreed.get(tutorial.id)
        if agreed is None:
            agreed = await self.sessions.agreed_students(
                s, tutorial.id, placement.tutorial_created_by
            )
            batch.agreed[tutorial.id] = agreed
        if learner not in agreed:
            raise PermissionDenied(
                "the learner has not accepted this tutorial session: "
                "nothing is recorded about them until they do"
            )

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
                batch=await self._batch(s, [inp], [""]),
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
        """A batch of one (see `record_interactions`). The request id keys only unsigned
        records: one with a statement id is idempotent by that id."""
        request_id = check_request_id(request_id)
        item = InteractionSubmission(inp, statement_id, device_signature)
        [row] = await self._record(
            caller, [item], request_id="" if statement_id else request_id, single=True
        )
        return row

    async def record_interactions(
        self,
        caller: Principal,
        items: Sequence[InteractionSubmission],
        *,
        request_id: str = "",
    ) -> list[StatementRecord]:
        """Record every item as `record_interaction` would, all or nothing, in one
        transaction whose round trips do not grow with the batch (containers looked up once
        per distinct id, statements stored by the batch writer). An item sees the batch's
        earlier items as recorded (an answer may relate to a question before it). Errors
        name the item: `interactions[i].…`."""
        if not items:
            raise ValidationError("interactions", "must not be empty")
        if len(items) > MAX_INTERACTION_BATCH:
            raise ValidationError(
                "interactions", f"must hold at most {MAX_INTERACTION_BATCH} interactions"
            )
        return await self._record(
            caller, items, request_id=check_request_id(request_id), single=False
        )

    async def _record(
        self,
        caller: Principal,
        items: Sequence[InteractionSubmission],
        *,
        request_id: str,
        single: bool,
    ) -> list[StatementRecord]:
        # The single call keeps its operation name and one-id result: keys stored by earlier
        # versions still replay.
        operation = "record_interaction" if single else "record_interactions"
        prefixes = [""] if single else [f"interactions[{i}]." for i in range(len(items))]
        sids: list[str] = []
        given: dict[str, int] = {}
        for i, (item, prefix) in enumerate(zip(items, prefixes, strict=True)):
            if item.device_signature is not None and not item.statement_id:
                raise ValidationError(
                    prefix + "statement_id",
                    "is required with a device signature (from PrepareInteraction)",
                )
            if not item.statement_id:
                sids.append(str(uuid.uuid4()))
                continue
            sid = check_statement_id(item.statement_id, prefix + "statement_id")
            if sid in given:
                raise ValidationError(
                    prefix + "statement_id",
                    f"repeats the statement id of interactions[{given[sid]}]",
                )
            given[sid] = i
            sids.append(sid)
        now = self.ctx.clock.now()

        async def write() -> list[StatementRecord]:
            if (
                single
                and not request_id
                and self.ctx.db.dialect == "postgresql"
                and stable_activity(items[0].interaction)
            ):
                # As one xAPI statement (Statements.record_statements): no BEGIN/COMMIT.
                one = await stored_in_one_write(
                    self.ctx,
                    lambda s: self._store(
                        s, caller, items, sids, given, prefixes, now, one_write=True
                    ),
                )
                if one is not None:
                    return one
            try:
                async with self.ctx.db.transaction() as s:
                    if request_id:  # first: replays, and a concurrent retry waits here
                        result: str | list[str] = sids[0] if single else list(sids)
                        keys = RequestKeys(s)
                        await keys.claim(caller.user_id, operation, request_id, result, now)
                    rows = await self._store(s, caller, items, sids, given, prefixes, now)
            except Replayed as first:
                replay = first.result
                ids = [str(x) for x in replay] if isinstance(replay, list) else [str(replay)]
                async with self.ctx.db.session() as s:
                    found = await StatementRepository(s).get_statements(ids)
                return [found[x] for x in ids if x in found]
            self.ctx.notify()
            return rows

        # A client's retry of the same statement ids may run at the same time.
        return await stored_once(write)

    async def _store(
        self,
        s: AsyncSession,
        caller: Principal,
        items: Sequence[InteractionSubmission],
        sids: Sequence[str],
        given: Mapping[str, int],
        prefixes: Sequence[str],
        now: datetime,
        *,
        one_write: bool = False,
    ) -> list[StatementRecord]:
        """Build, authorize and store the items in `s` (`one_write`: see
        `StatementWriter.store_many`)."""
        # Generated ids cannot have been prepared (PrepareInteraction issues its own).
        prepared = await PreparedRepository(s).get_many(list(given))
        batch = await self._batch(s, [item.interaction for item in items], prefixes)
        incoming: list[Incoming] = []
        for item, sid, prefix in zip(items, sids, prefixes, strict=True):
            entry, learner = await self._incoming(
                s, caller, item, sid, prepared.get(sid), now, batch, prefix
            )
            incoming.append(entry)
            if sid in batch.referred:
                # A later item relates to this one (as it could once this was recorded).
                batch.related.setdefault(sid, new_record(caller, entry, learner))
        return await self.statements.writer.store_many(s, caller, incoming, one_write=one_write)

    async def _incoming(
        self,
        s: AsyncSession,
        caller: Principal,
        item: InteractionSubmission,
        sid: str,
        prep: PreparedRecord | None,
        now: datetime,
        batch: _Batch,
        prefix: str,
    ) -> tuple[Incoming, str]:
        """One item built, checked against what PrepareInteraction issued for its id and
        its device signature: what the writer stores, and its learner."""
        inp = item.interaction
        if item.device_signature is not None and prep is None:
            raise ValidationError(prefix + "statement_id", "was not issued by PrepareInteraction")
        if prep is not None:
            if prep.prepared_by != caller.user_id and not caller.is_admin:
                with item_errors(prefix, "statement_id"):
                    raise PermissionDenied("this statement id was prepared by another user")
            prepared_statement = json.loads(prep.statement_json)
            timestamp = inp.occurred_at or parse_timestamp(prepared_statement["timestamp"])
            stored = parse_timestamp(prepared_statement["stored"])
            authority_id = prep.prepared_by
        else:
            timestamp, stored, authority_id = inp.occurred_at or now, now, caller.user_id
        v, extras, learner = await self._build(
            s,
            caller,
            inp,
            sid,
            timestamp=timestamp,
            stored=stored,
            authority_id=authority_id,
            batch=batch,
            prefix=prefix,
        )
        with item_errors(prefix, "interaction"):
            if prep is not None:
                if canonical_bytes(v.statement) != canonical_bytes(prepared_statement):
                    raise ValidationError(
                        "interaction", "differs from the interaction given to PrepareInteraction"
                    )
                extras.statement_json = prep.statement_json
            if item.device_signature is not None:
                verify_device_signature(canonical_bytes(v.statement), item.device_signature)
                extras.device = item.device_signature
        entry = Incoming(v, prefix + "interaction", extras, fresh_id=not item.statement_id)
        return entry, learner

    async def get_interaction(self, caller: Principal, interaction_id: str) -> StatementRecord:
        row = await self.get_statement_for_watch(interaction_id)
        if row is None or row.interaction_type is None:
            raise NotFound(f"interaction {interaction_id} not found")
        await self._require_visible(caller, row)
        return row

    async def get_statement_for_watch(self, statement_id: str) -> StatementRecord | None:
        return await self.statements.find(statement_id, "interaction_id")

    async def _require_taking_part(
        self, s: AsyncSession, caller: Principal, placement: Placement, batch: _Batch
    ) -> None:
        """A learner references a class (or a course) in their own record only when they
        take part in it (a class of it, for a course). Answers are kept for the batch."""

        async def takes_part(class_id: str) -> bool:
            if class_id not in batch.takes_part:
                batch.takes_part[class_id] = await self.sessions.takes_part(s, caller, class_id)
            return batch.takes_part[class_id]

        if placement.class_id is not None:
            if not await takes_part(placement.class_id):
                raise PermissionDenied("you may record in a class only when you take part in it")
        elif placement.course_id is not None:
            course = placement.where.course
            if course is not None and course.instructor_id == caller.user_id:
                return
            course_id = placement.course_id
            if course_id not in batch.course_classes:
                of_course = await HierarchyRepository(s).class_ids_of_courses([course_id])
                batch.course_classes[course_id] = of_course.get(course_id, [])
            for class_id in batch.course_classes[course_id]:
                if await takes_part(class_id):
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

"""Learning use cases: the record store, the hierarchy, interactions, LRS clients, webhooks.

Every use case takes the authenticated caller (`Principal`) and authorizes each object:

* Statements. A caller stores statements about themselves (actor = their Keiko account) or
  about actors that are not Keiko users (external LMS identities: `learner_id` stays
  empty); statements about another Keiko user need the admin role. A caller reads the
  statements whose learner they are or that they recorded; admins read everything.
* LRS clients authenticate with HTTP Basic (key + secret, the secret stored as SHA-256)
  and act as a principal `lrs:<client id>` on behalf of their owner: the owner is the
  statements' authority and the rules above apply to the owner's user id (so a client
  writes the owner's own record or external actors', never another Keiko learner's).
* Interactions. A learner records into their own record; into a tutorial or study
  session only as a participant, while it is open (the domain's rules). The tutor of a
  tutorial session may record for its students. Admins may record for anyone.
* Hierarchy. Tutors and admins create courses; a course's classes are created and
  changed by its instructor; standalone classes by tutors. Tutorial sessions are planned
  by their (human) tutor, or by the student for an AI tutor; the tutor starts them; any
  participant ends them. Study sessions belong to their learner.

Writes are idempotent: a statement id stored again with the same content is a no-op
(different content: ALREADY_EXISTS, HTTP 409); `request_id`s replay the first result.
Each stored statement about a Keiko learner enqueues `learning.interaction_recorded`
in the same transaction (see `interaction_event_payload`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import nacl.exceptions
import nacl.signing
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal, Role
from services.kit.clock import Clock, FixedClock
from services.kit.db import Database, is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationError,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.learning import hierarchy as h
from services.learning import interactions as ix
from services.learning.imports import canvas, common, learning_locker, moodle, scorm_cloud
from services.learning.storage import (
    LearningRepository,
    StatementFilter,
    StatementRow,
    classes,
    courses,
    decode_cursor,
    encode_cursor,
    lrs_clients,
    outbox,
    prepared_interactions,
    query_scope,
    sha256_hex,
    study_sessions,
    tutorial_participants,
    tutorial_sessions,
    utc_required,
    webhook_deliveries,
    webhook_sources,
)
from services.learning.xapi import (
    ValidatedStatement,
    XAPIVersion,
    canonical_bytes,
    format_duration,
    format_timestamp,
    parse_timestamp,
    parse_version_header,
    statement_hash_hex,
    statements_equivalent,
    validate_statement,
    vocab,
)
from services.learning.xapi.formats import is_uuid

TOPIC_INTERACTION_RECORDED = "learning.interaction_recorded"
# The chain translator's outcome events (chain/translator/storage.py).
TOPIC_INTERACTION_ANCHORED = "chain.interaction_anchored"
TOPIC_ANCHOR_FAILED = "chain.anchor_failed"
ANCHOR_DOMAIN = "learning"
LRS_SESSION_PREFIX = "lrs:"
# The learning service as the author of the statements it derives from other services'
# events (a completed tutor session): their `recorded_by` and their authority agent. Only
# ever bound in-process (never issued in a token), with the admin role that writing about
# other Keiko users takes.
SERVICE_USER_ID = "keiko-learning"
SERVICE_PRINCIPAL = Principal(SERVICE_USER_ID, frozenset({Role.ADMIN.value}))
WEBHOOK_SESSION_PREFIX = "webhook:"
DEFAULT_PAGE = 50
MAX_STATEMENT_PAGE = 500
MAX_LIST_PAGE = 200
MAX_BATCH = 1000
REQUEST_ID_MAX = 128
_RECORD_NAMESPACE = uuid.UUID("9a1f6c3e-2b7d-5c41-8e90-4b6569b07265")


class WebhookKind:
    LEARNING_LOCKER = "learning_locker"
    SCORM_CLOUD = "scorm_cloud"
    MOODLE = "moodle"
    CANVAS = "canvas"
    ALL = (LEARNING_LOCKER, SCORM_CLOUD, MOODLE, CANVAS)
    BASIC = (LEARNING_LOCKER, SCORM_CLOUD)


KIND_NAMES: dict[str, h.InteractionKind] = {k.value: k for k in h.InteractionKind}


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_page_token: str = ""


@dataclass(frozen=True)
class ScoreInput:
    scaled: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class InteractionInput:
    """RecordInteraction / PrepareInteraction input (see the proto's InteractionInput)."""

    kind: str
    learner_id: str = ""
    course_id: str = ""
    class_id: str = ""
    tutorial_session_id: str = ""
    study_session_id: str = ""
    activity_id: str = ""
    title: str = ""
    content: str = ""
    response: str = ""
    related_interaction_id: str = ""
    score: ScoreInput | None = None
    success: bool | None = None
    completion: bool | None = None
    duration: timedelta | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class DeviceSignature:
    signature_hex: str
    public_key_hex: str


@dataclass(frozen=True)
class PreparedInteraction:
    statement_id: str
    statement_json: str
    canonical_json: str


@dataclass(frozen=True)
class LrsCredentials:
    client: dict[str, Any]
    secret: str


@dataclass(frozen=True)
class WebhookRegistration:
    source: dict[str, Any]
    generated_secret: str


@dataclass(frozen=True)
class WebhookImport:
    statement_ids: list[str]
    skipped_events: int = 0


@dataclass
class _Extras:
    """What the caller of `_store` knows beyond the statement itself."""

    interaction_type: str | None = None
    interaction: dict[str, Any] | None = None
    course_id: str | None = None
    class_id: str | None = None
    tutorial_session_id: str | None = None
    study_session_id: str | None = None
    device: DeviceSignature | None = None
    webhook_source_id: str | None = None
    statement_json: str | None = None  # store exactly this text (a prepared statement)


def json_text(statement: Mapping[str, Any]) -> str:
    return json.dumps(statement, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def keiko_learner_of(actor: Mapping[str, Any]) -> str | None:
    """The Keiko user id an xAPI actor names (an Agent with a Keiko account), else None."""
    if actor.get("objectType", "Agent") != "Agent":
        return None
    account = actor.get("account")
    if isinstance(account, Mapping) and account.get("homePage") == h.KEIKO_HOME_PAGE:
        name = account.get("name")
        return str(name) if name else None
    return None


def interaction_event_payload(row: StatementRow) -> dict[str, Any]:
    """The payload of `learning.interaction_recorded` (documented in the learning README /
    the lead's report): what the chain translator signs and the passport shows."""
    device = (
        {"signature_hex": row.device_signature_hex, "public_key_hex": row.device_public_key_hex}
        if row.device_signature_hex
        else None
    )
    return {
        "statement_id": row.id,
        "learner_id": row.learner_id or "",
        "recorded_by": row.recorded_by,
        "verb_id": row.verb_id,
        "object_id": row.object_id or "",
        "interaction_type": row.interaction_type or "",
        "course_id": row.course_id or "",
        "class_id": row.class_id or "",
        "tutorial_session_id": row.tutorial_session_id or "",
        "study_session_id": row.study_session_id or "",
        "timestamp": format_timestamp(row.timestamp),
        "stored": format_timestamp(row.stored),
        "version": row.version,
        "voided_statement_id": row.voids_statement_id or "",
        "canonical_hash": row.canonical_hash,
        "statement_json": row.statement_json,
        "device_signature": device,
    }


def page_size(requested: int, maximum: int, field_name: str = "page_size") -> int:
    if requested < 0:
        raise ValidationError(field_name, "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE
    return min(requested, maximum)


def _request_id(value: str) -> str:
    if len(value) > REQUEST_ID_MAX:
        raise ValidationError("request_id", f"must be at most {REQUEST_ID_MAX} characters")
    return value


def _statement_id(value: str, field_name: str) -> str:
    if not is_uuid(value):
        raise ValidationError(field_name, "must be a statement id (UUID)")
    return value.lower()


def _now_clock(clock: Clock) -> FixedClock:
    return FixedClock(clock.now())


class LearningService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.db = database
        self.clock = clock
        self.on_commit: list[Any] = []  # callables run after a commit that enqueued events

    def _notify(self) -> None:
        for callback in self.on_commit:
            callback()

    # == statements ========================================================================

    async def record_statements(
        self,
        caller: Principal,
        statement_jsons: Sequence[str],
        xapi_version: str = "",
        request_id: str = "",
    ) -> list[StatementRow]:
        version = parse_version_header(xapi_version) if xapi_version else XAPIVersion.V1_0_3
        request_id = _request_id(request_id)
        if not statement_jsons:
            raise ValidationError("statements", "must not be empty")
        if len(statement_jsons) > MAX_BATCH:
            raise ValidationError("statements", f"must hold at most {MAX_BATCH} statements")
        writer = caller.user_id
        if request_id:
            async with self.db.session() as s:
                replay = await LearningRepository(s).get_request_key(
                    writer, "record_statements", request_id
                )
            if replay is not None:
                return await self._rows_in_order(replay)
        clock = _now_clock(self.clock)
        authority = h.keiko_agent(writer)
        validated: list[tuple[ValidatedStatement, Any]] = []
        seen: dict[str, int] = {}
        for i, text in enumerate(statement_jsons):
            path = f"statements[{i}]"
            v = validate_statement(
                text, version=version, clock=clock, authority=authority, path=path
            )
            if v.id in seen:
                raise ValidationError(
                    f"{path}.id", f"duplicates the id of statements[{seen[v.id]}]"
                )
            seen[v.id] = i
            validated.append((v, json.loads(text)))
        lrs_client_id = (
            caller.session_id.removeprefix(LRS_SESSION_PREFIX)
            if caller.session_id.startswith(LRS_SESSION_PREFIX)
            else None
        )
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            rows = [
                await self._store(
                    repo,
                    caller,
                    v,
                    _Extras(),
                    path=f"statements[{i}]",
                    lrs_client_id=lrs_client_id,
                    incoming=raw,
                )
                for i, (v, raw) in enumerate(validated)
            ]
            if request_id:
                await repo.put_request_key(
                    writer, "record_statements", request_id, [r.id for r in rows], clock.now()
                )
        self._notify()
        return rows

    async def _rows_in_order(self, ids: Sequence[str]) -> list[StatementRow]:
        async with self.db.session() as s:
            found = await LearningRepository(s).get_statements(list(ids))
        return [found[i] for i in ids if i in found]

    async def _store(
        self,
        repo: LearningRepository,
        caller: Principal,
        v: ValidatedStatement,
        extras: _Extras,
        *,
        path: str,
        lrs_client_id: str | None = None,
        incoming: Mapping[str, Any] | None = None,
    ) -> StatementRow:
        """Store one validated statement (or accept an identical one) with its event.
        `incoming` is the statement as the client sent it (compared with a stored one of
        the same id: the normalized form carries this request's `stored`/`timestamp`)."""
        learner_id = keiko_learner_of(v.statement["actor"])
        if (
            extras.interaction_type is None
            and learner_id is not None
            and learner_id != caller.user_id
            and not caller.is_admin
        ):
            raise PermissionDenied(
                f"{path}.actor: statements about another Keiko user need the admin role"
            )
        existing = await repo.get_statement(v.id)
        if existing is not None:
            if existing.statement_json == extras.statement_json or statements_equivalent(
                existing.statement, incoming or v.statement, version=v.version
            ):
                return existing
            raise AlreadyExists(
                f"{path}.id: statement {v.id} is already stored with different content"
            )
        if v.voided_statement_id is not None:
            await self._check_voidable(repo, caller, v.voided_statement_id, path)
        statement_json = extras.statement_json or json_text(v.statement)
        assert v.stored is not None
        row = StatementRow(
            id=v.id,
            actor_key=v.actor_key,
            learner_id=learner_id,
            recorded_by=caller.user_id,
            lrs_client_id=lrs_client_id,
            webhook_source_id=extras.webhook_source_id,
            verb_id=v.verb_id,
            object_type=v.object_type,
            object_id=v.object_id,
            registration=v.registration,
            timestamp=v.timestamp or v.stored,
            stored=v.stored,
            version=str(v.statement.get("version", v.version.value)),
            voided=False,
            voids_statement_id=v.voided_statement_id,
            statement_json=statement_json,
            canonical_hash=statement_hash_hex(json.loads(statement_json)),
            interaction_type=extras.interaction_type,
            interaction=extras.interaction,
            course_id=extras.course_id,
            class_id=extras.class_id,
            tutorial_session_id=extras.tutorial_session_id,
            study_session_id=extras.study_session_id,
            device_signature_hex=extras.device.signature_hex if extras.device else None,
            device_public_key_hex=extras.device.public_key_hex if extras.device else None,
        )
        activities: list[tuple[str, bool]] = []
        if v.object_type in ("Activity",) and v.object_id:
            activities.append((v.object_id, False))
        activities.extend((a, True) for a in v.activity_ids if a != v.object_id)
        await repo.insert_statement(row, activities)
        if v.voided_statement_id is not None:
            await repo.mark_voided(v.voided_statement_id)
        if learner_id is not None:
            await enqueue(
                repo.s,
                outbox,
                Event(
                    TOPIC_INTERACTION_RECORDED,
                    key=learner_id,
                    payload=interaction_event_payload(row),
                    occurred_at=self.clock.now(),
                ),
            )
        return row

    async def _check_voidable(
        self, repo: LearningRepository, caller: Principal, target_id: str, path: str
    ) -> None:
        target = await repo.get_statement(target_id)
        where = f"{path}.object.id"
        if target is None:
            raise ValidationError(where, f"voids statement {target_id}, which is not stored")
        if target.voids_statement_id is not None:
            raise ValidationError(
                where, f"statement {target_id} is a voiding statement and cannot be voided"
            )
        if not (
            caller.is_admin
            or target.recorded_by == caller.user_id
            or target.learner_id == caller.user_id
        ):
            raise PermissionDenied(f"{where}: not allowed to void statement {target_id}")

    async def get_statement(self, caller: Principal, statement_id: str) -> StatementRow:
        sid = _statement_id(statement_id, "statement_id")
        async with self.db.session() as s:
            row = await LearningRepository(s).get_statement(sid)
        if row is None:
            raise NotFound(f"statement {sid} not found")
        self._require_visible(caller, row)
        return row

    @staticmethod
    def _require_visible(caller: Principal, row: StatementRow) -> None:
        if caller.is_admin or caller.user_id in (row.learner_id, row.recorded_by):
            return
        raise PermissionDenied("not allowed to read this statement")

    async def query_statements(
        self,
        caller: Principal,
        *,
        learner_id: str = "",
        verb_id: str = "",
        activity_id: str = "",
        registration: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        include_voided: bool = False,
        ascending: bool = False,
        related_activities: bool = False,
        requested_size: int = 0,
        page_token: str = "",
    ) -> Page:
        """`learner_id` is a Keiko user id, or an agent key (`agent_key`: `mailto:...`,
        `account:["<home page>","<name>"]`, ...) for actors that are not Keiko users."""
        if registration and not is_uuid(registration):
            raise ValidationError("registration", "must be a UUID")
        if since is not None and until is not None and since > until:
            raise ValidationError("until", "must not be before since")
        learner, actor_key = "", ""
        if learner_id:
            if ":" in learner_id:
                actor_key = learner_id
            else:
                learner = h.check_id(learner_id, "learner_id")
        f = StatementFilter(
            learner_id=learner,
            actor_key=actor_key,
            verb_id=verb_id,
            activity_id=activity_id,
            related_activities=related_activities,
            registration=registration.lower(),
            since=since,
            until=until,
            include_voided=include_voided,
            ascending=ascending,
            visible_to="" if caller.is_admin else caller.user_id,
        )
        return await self._page(f, requested_size, MAX_STATEMENT_PAGE, page_token)

    async def _page(self, f: StatementFilter, requested: int, maximum: int, token: str) -> Page:
        size = page_size(requested, maximum)
        scope = f.scope()
        cursor = decode_cursor(token, scope)
        async with self.db.session() as s:
            rows, nxt = await LearningRepository(s).query_statements(f, size, cursor)
        return Page(rows, encode_cursor(nxt, scope) if nxt is not None else "")

    async def void_statement(
        self, caller: Principal, statement_id: str, request_id: str = ""
    ) -> StatementRow:
        target = _statement_id(statement_id, "statement_id")
        request_id = _request_id(request_id)
        voiding_id = (
            str(uuid.uuid5(_RECORD_NAMESPACE, f"void:{caller.user_id}:{request_id}"))
            if request_id
            else str(uuid.uuid4())
        )
        statement = {
            "id": voiding_id,
            "actor": h.keiko_agent(caller.user_id),
            "verb": {"id": vocab.VERB_VOIDED, "display": {"en-US": "voided"}},
            "object": {"objectType": "StatementRef", "id": target},
        }
        v = validate_statement(
            statement, clock=_now_clock(self.clock), authority=h.keiko_agent(caller.user_id)
        )
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            existing = await repo.get_statement(voiding_id)
            if existing is not None and existing.voids_statement_id == target:
                return existing
            if await repo.get_statement(target) is None:
                raise NotFound(f"statement {target} not found")
            row = await self._store(repo, caller, v, _Extras(), path="statement")
        self._notify()
        return row

    async def record_service_statement(
        self,
        s: AsyncSession,
        statement: Mapping[str, Any],
        *,
        path: str = "statement",
        course_id: str | None = None,
        class_id: str | None = None,
        tutorial_session_id: str | None = None,
    ) -> StatementRow:
        """Store a statement the learning service itself authors (authority: the service's
        Keiko agent) in the caller's transaction `s`, typically an event consumer's, next to
        its dedupe marker. Same path as every other write: an identical statement already
        stored is a no-op, and a statement about a Keiko learner enqueues
        `learning.interaction_recorded`. Call `notify_committed()` after the commit."""
        validated = validate_statement(
            statement,
            clock=_now_clock(self.clock),
            authority=h.keiko_agent(SERVICE_USER_ID),
            path=path,
        )
        extras = _Extras(
            course_id=course_id, class_id=class_id, tutorial_session_id=tutorial_session_id
        )
        return await self._store(
            LearningRepository(s), SERVICE_PRINCIPAL, validated, extras, path=path
        )

    def notify_committed(self) -> None:
        """Wake the outbox relay after a caller-owned transaction enqueued events."""
        self._notify()

    async def apply_anchor_event(self, event: Event) -> bool:
        """Keep a statement's anchor state from `chain.interaction_anchored` /
        `chain.anchor_failed` (record_id = statement id). Idempotent: redeliveries rewrite
        the same values, and a failure never overrides an anchor."""
        p = event.payload
        if p.get("domain", ANCHOR_DOMAIN) != ANCHOR_DOMAIN:
            return False
        record_id = str(p.get("record_id") or "")
        if not is_uuid(record_id):
            return False
        values: dict[str, Any] = {
            "anchor_batch_id": str(p.get("batch_id") or "") or None,
            "anchor_root": str(p.get("root") or "") or None,
            "anchor_leaf_index": _int_or_none(p.get("leaf_index")),
        }
        if event.topic == TOPIC_INTERACTION_ANCHORED:
            values |= {
                "anchor_status": "anchored",
                "anchor_block": _int_or_none(p.get("block")),
                "anchor_tx_hash": str(p.get("tx_hash") or "") or None,
                "anchor_failure": None,
                "anchored_at": event.occurred_at,
            }
        elif event.topic == TOPIC_ANCHOR_FAILED:
            values |= {
                "anchor_status": "failed",
                "anchor_failure": str(p.get("failure_reason") or "anchoring failed"),
            }
        else:
            return False
        async with self.db.transaction() as s:
            return await LearningRepository(s).set_anchor(record_id.lower(), values)

    # == hierarchy =========================================================================

    @staticmethod
    def _require_tutor(caller: Principal, what: str) -> None:
        if not (caller.has_role(Role.TUTOR) or caller.is_admin):
            raise PermissionDenied(f"only tutors and admins may create {what}")

    async def _replay(self, caller: Principal, operation: str, request_id: str) -> str | None:
        if not request_id:
            return None
        async with self.db.session() as s:
            found = await LearningRepository(s).get_request_key(
                caller.user_id, operation, _request_id(request_id)
            )
        return str(found) if found is not None else None

    async def create_course(
        self,
        caller: Principal,
        title: str,
        description: str = "",
        instructor_id: str = "",
        request_id: str = "",
    ) -> dict[str, Any]:
        self._require_tutor(caller, "courses")
        instructor = instructor_id or caller.user_id
        if instructor != caller.user_id and not caller.is_admin:
            raise PermissionDenied("only admins may create a course for another instructor")
        replay = await self._replay(caller, "create_course", request_id)
        if replay is not None:
            return await self.get_course(caller, replay)
        course = h.Course.create(
            id=str(uuid.uuid4()),
            title=title,
            description=description,
            instructor_id=instructor,
            clock=self.clock,
        )
        now = self.clock.now()
        values = {
            "id": course.id,
            "title": course.title,
            "description": course.description,
            "instructor_id": course.instructor_id,
            "created_at": now,
            "updated_at": now,
        }
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            await repo.insert_row(courses, values)
            if request_id:
                await repo.put_request_key(
                    caller.user_id, "create_course", request_id, course.id, now
                )
        return {**values, "class_ids": []}

    async def get_course(self, caller: Principal, course_id: str) -> dict[str, Any]:
        return (await self.get_courses([course_id]))[course_id]

    async def get_courses(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Courses by id (NotFound for a missing one); used by DataLoaders via ListCourses."""
        async with self.db.session() as s:
            repo = LearningRepository(s)
            rows = await repo.get_rows(courses, list(ids))
            class_ids = await repo.class_ids_of_courses(list(rows))
        for key in ids:
            if key not in rows:
                raise NotFound(f"course {key} not found")
        return {k: {**r, "class_ids": class_ids.get(k, [])} for k, r in rows.items()}

    async def list_courses(
        self, caller: Principal, instructor_id: str = "", requested: int = 0, token: str = ""
    ) -> Page:
        size = page_size(requested, MAX_LIST_PAGE)
        scope = query_scope("courses", instructor_id)
        cursor = decode_cursor(token, scope)
        conditions = [courses.c.instructor_id == instructor_id] if instructor_id else []
        async with self.db.session() as s:
            repo = LearningRepository(s)
            rows, nxt = await repo.page_rows(courses, "created_at", conditions, size, cursor)
            class_ids = await repo.class_ids_of_courses([r["id"] for r in rows])
        items = [{**r, "class_ids": class_ids[r["id"]]} for r in rows]
        return Page(items, encode_cursor(nxt, scope) if nxt else "")

    async def update_course(
        self,
        caller: Principal,
        course_id: str,
        title: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            row = await repo.get_row(courses, course_id)
            if row is None:
                raise NotFound(f"course {course_id} not found")
            if row["instructor_id"] != caller.user_id and not caller.is_admin:
                raise PermissionDenied("only the course's instructor may change it")
            checked = h.Course.create(
                id=row["id"],
                title=row["title"] if title is None else title,
                description=row["description"] if description is None else description,
                instructor_id=row["instructor_id"],
                clock=self.clock,
            )
            values = {
                "title": checked.title,
                "description": checked.description,
                "updated_at": self.clock.now(),
            }
            await repo.update_row(courses, course_id, values)
        return await self.get_course(caller, course_id)

    async def create_class(
        self,
        caller: Principal,
        title: str,
        description: str = "",
        course_id: str = "",
        request_id: str = "",
    ) -> dict[str, Any]:
        replay = await self._replay(caller, "create_class", request_id)
        if replay is not None:
            return await self.get_class(caller, replay)
        _check_description(description, "description")
        now = self.clock.now()
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            course: h.Course | None = None
            if course_id:
                row = await repo.get_row(courses, course_id)
                if row is None:
                    raise NotFound(f"course {course_id} not found")
                if row["instructor_id"] != caller.user_id and not caller.is_admin:
                    raise PermissionDenied("only the course's instructor may add classes to it")
                course = _course(row)
            else:
                self._require_tutor(caller, "standalone classes")
            klass = h.Class.create(
                id=str(uuid.uuid4()), title=title, clock=self.clock, course=course
            )
            values = {
                "id": klass.id,
                "course_id": klass.course_id,
                "title": klass.title,
                "description": description.strip(),
                "created_by": caller.user_id,
                "created_at": now,
                "updated_at": now,
            }
            await repo.insert_row(classes, values)
            if request_id:
                await repo.put_request_key(
                    caller.user_id, "create_class", request_id, klass.id, now
                )
        return {**values, "tutorial_session_ids": [], "interaction_count": 0}

    async def get_class(self, caller: Principal, class_id: str) -> dict[str, Any]:
        return (await self.get_classes([class_id]))[class_id]

    async def get_classes(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        async with self.db.session() as s:
            repo = LearningRepository(s)
            rows = await repo.get_rows(classes, list(ids))
            return await self._class_views(repo, rows, ids)

    async def _class_views(
        self, repo: LearningRepository, rows: dict[str, dict[str, Any]], ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        for key in ids:
            if key not in rows:
                raise NotFound(f"class {key} not found")
        keys = list(rows)
        sessions = await repo.session_ids_of_classes(keys)
        counts = await repo.count_statements_by("class_id", keys)
        return {
            k: {
                **r,
                "tutorial_session_ids": sessions.get(k, []),
                "interaction_count": counts.get(k, 0),
            }
            for k, r in rows.items()
        }

    async def list_classes(
        self, caller: Principal, course_id: str = "", requested: int = 0, token: str = ""
    ) -> Page:
        size = page_size(requested, MAX_LIST_PAGE)
        scope = query_scope("classes", course_id)
        cursor = decode_cursor(token, scope)
        conditions = [classes.c.course_id == course_id] if course_id else []
        async with self.db.session() as s:
            repo = LearningRepository(s)
            rows, nxt = await repo.page_rows(classes, "created_at", conditions, size, cursor)
            views = await self._class_views(repo, {r["id"]: r for r in rows}, [])
        return Page([views[r["id"]] for r in rows], encode_cursor(nxt, scope) if nxt else "")

    async def update_class(
        self,
        caller: Principal,
        class_id: str,
        title: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            row = await repo.get_row(classes, class_id)
            if row is None:
                raise NotFound(f"class {class_id} not found")
            allowed = caller.is_admin or row["created_by"] == caller.user_id
            if not allowed and row["course_id"]:
                course = await repo.get_row(courses, row["course_id"])
                allowed = course is not None and course["instructor_id"] == caller.user_id
            if not allowed:
                raise PermissionDenied(
                    "only the course instructor or the class creator may change it"
                )
            values: dict[str, Any] = {"updated_at": self.clock.now()}
            if title is not None:
                values["title"] = h.Class.create(id=class_id, title=title, clock=self.clock).title
            if description is not None:
                _check_description(description, "description")
                values["description"] = description.strip()
            await repo.update_row(classes, class_id, values)
        return await self.get_class(caller, class_id)

    # -- tutorial sessions ------------------------------------------------------------------

    async def create_tutorial_session(
        self,
        caller: Principal,
        *,
        tutor_kind: str,
        student_ids: Sequence[str],
        tutor_id: str = "",
        class_id: str = "",
        topic: str = "",
        scheduled_at: datetime | None = None,
        request_id: str = "",
    ) -> dict[str, Any]:
        replay = await self._replay(caller, "create_tutorial_session", request_id)
        if replay is not None:
            return await self.get_tutorial_session(caller, replay)
        tutor = tutor_id or caller.user_id
        if not caller.is_admin:
            if tutor_kind == h.TutorKind.AI:
                if list(student_ids) != [caller.user_id]:
                    raise PermissionDenied("a learner plans an AI tutorial session for themself")
                if not tutor_id:
                    raise ValidationError("tutor_id", "names the AI tutor agent")
            elif tutor != caller.user_id:
                raise PermissionDenied("a tutor plans tutorial sessions for themself")
        topic_text = _topic(topic)
        now = self.clock.now()
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            klass: h.Class | None = None
            if class_id:
                row = await repo.get_row(classes, class_id)
                if row is None:
                    raise NotFound(f"class {class_id} not found")
                klass = _class(row)
            session = h.TutorialSession.start(
                id=str(uuid.uuid4()),
                tutor_id=tutor,
                tutor_kind=tutor_kind,
                student_ids=list(student_ids),
                clock=self.clock,
                klass=klass,
            )
            values = {
                "id": session.id,
                "class_id": session.class_id,
                "tutor_id": session.tutor_id,
                "tutor_kind": session.tutor_kind.value,
                "topic": topic_text,
                "created_by": caller.user_id,
                "scheduled_at": scheduled_at,
                "started_at": None,
                "ended_at": None,
                "created_at": now,
            }
            await repo.insert_row(tutorial_sessions, values)
            for position, user in enumerate(session.participants):
                await repo.insert_row(
                    tutorial_participants,
                    {"session_id": session.id, "user_id": user, "position": position},
                )
            if request_id:
                await repo.put_request_key(
                    caller.user_id, "create_tutorial_session", request_id, session.id, now
                )
        return {**values, "student_ids": list(session.student_ids), "interaction_count": 0}

    async def _session_views(
        self, repo: LearningRepository, rows: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        ids = [r["id"] for r in rows]
        students = await repo.participants(ids)
        counts = await repo.count_statements_by("tutorial_session_id", ids)
        return [
            {
                **r,
                "student_ids": students.get(r["id"], []),
                "interaction_count": counts.get(r["id"], 0),
            }
            for r in rows
        ]

    async def _tutorial(self, repo: LearningRepository, session_id: str) -> dict[str, Any]:
        row = await repo.get_row(tutorial_sessions, session_id)
        if row is None:
            raise NotFound(f"tutorial session {session_id} not found")
        return (await self._session_views(repo, [row]))[0]

    async def _may_see_session(
        self, repo: LearningRepository, caller: Principal, view: dict[str, Any]
    ) -> bool:
        if caller.is_admin or caller.user_id == view["tutor_id"]:
            return True
        if caller.user_id in view["student_ids"]:
            return True
        if view["class_id"]:
            klass = await repo.get_row(classes, view["class_id"])
            if klass and klass["course_id"]:
                course = await repo.get_row(courses, klass["course_id"])
                return course is not None and course["instructor_id"] == caller.user_id
        return False

    async def get_tutorial_session(self, caller: Principal, session_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            repo = LearningRepository(s)
            view = await self._tutorial(repo, session_id)
            if not await self._may_see_session(repo, caller, view):
                raise PermissionDenied("only participants may see this tutorial session")
        return view

    async def list_tutorial_sessions(
        self,
        caller: Principal,
        *,
        class_id: str = "",
        tutor_id: str = "",
        student_id: str = "",
        requested: int = 0,
        token: str = "",
    ) -> Page:
        """Non-admins list only sessions they take part in (as tutor or student)."""
        size = page_size(requested, MAX_LIST_PAGE)
        scope = query_scope("tutorial", class_id, tutor_id, student_id, caller.user_id)
        cursor = decode_cursor(token, scope)
        t, p = tutorial_sessions, tutorial_participants
        conditions = []
        if class_id:
            conditions.append(t.c.class_id == class_id)
        if tutor_id:
            conditions.append(t.c.tutor_id == tutor_id)
        if student_id:
            conditions.append(
                t.c.id.in_(
                    p.select()
                    .with_only_columns(p.c.session_id)
                    .where(p.c.user_id == student_id, p.c.position > 0)
                )
            )
        if not caller.is_admin:
            conditions.append(
                t.c.id.in_(
                    p.select()
                    .with_only_columns(p.c.session_id)
                    .where(p.c.user_id == caller.user_id)
                )
            )
        async with self.db.session() as s:
            repo = LearningRepository(s)
            rows, nxt = await repo.page_rows(t, "created_at", conditions, size, cursor)
            views = await self._session_views(repo, rows)
        return Page(views, encode_cursor(nxt, scope) if nxt else "")

    async def start_tutorial_session(self, caller: Principal, session_id: str) -> dict[str, Any]:
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            view = await self._tutorial(repo, session_id)
            starter = view["tutor_id"]
            if view["tutor_kind"] == h.TutorKind.AI:
                starter = view["student_ids"][0]
            if caller.user_id != starter and not caller.is_admin:
                raise PermissionDenied("only the tutor may start this tutorial session")
            if view["started_at"] is None:
                if view["ended_at"] is not None:
                    raise FailedPrecondition("the tutorial session has ended")
                await repo.update_row(
                    tutorial_sessions, session_id, {"started_at": self.clock.now()}
                )
            view = await self._tutorial(repo, session_id)
        return view

    async def end_tutorial_session(self, caller: Principal, session_id: str) -> dict[str, Any]:
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            view = await self._tutorial(repo, session_id)
            participants = [view["tutor_id"], *view["student_ids"]]
            if caller.user_id not in participants and not caller.is_admin:
                raise PermissionDenied("only participants may end this tutorial session")
            if view["ended_at"] is None:
                if view["started_at"] is None:
                    raise FailedPrecondition("the tutorial session has not started yet")
                ended = max(self.clock.now(), view["started_at"])
                await repo.update_row(tutorial_sessions, session_id, {"ended_at": ended})
            view = await self._tutorial(repo, session_id)
        return view

    # -- study sessions ---------------------------------------------------------------------

    async def start_study_session(
        self, caller: Principal, class_id: str = "", topic: str = "", request_id: str = ""
    ) -> dict[str, Any]:
        replay = await self._replay(caller, "start_study_session", request_id)
        if replay is not None:
            return await self.get_study_session(caller, replay)
        now = self.clock.now()
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            klass: h.Class | None = None
            if class_id:
                row = await repo.get_row(classes, class_id)
                if row is None:
                    raise NotFound(f"class {class_id} not found")
                klass = _class(row)
            session = h.StudySession.start(
                id=str(uuid.uuid4()),
                learner_id=caller.user_id,
                topic=topic,
                clock=self.clock,
                klass=klass,
            )
            values = {
                "id": session.id,
                "learner_id": session.learner_id,
                "class_id": session.class_id,
                "topic": session.topic,
                "started_at": session.started_at,
                "ended_at": None,
            }
            await repo.insert_row(study_sessions, values)
            if request_id:
                await repo.put_request_key(
                    caller.user_id, "start_study_session", request_id, session.id, now
                )
        return {**values, "interaction_count": 0}

    async def _study(
        self, repo: LearningRepository, caller: Principal, session_id: str
    ) -> dict[str, Any]:
        row = await repo.get_row(study_sessions, session_id)
        if row is None:
            raise NotFound(f"study session {session_id} not found")
        if row["learner_id"] != caller.user_id and not caller.is_admin:
            raise PermissionDenied("only the learner may see their study session")
        counts = await repo.count_statements_by("study_session_id", [session_id])
        return {**row, "interaction_count": counts.get(session_id, 0)}

    async def end_study_session(self, caller: Principal, session_id: str) -> dict[str, Any]:
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            view = await self._study(repo, caller, session_id)
            if view["learner_id"] != caller.user_id and not caller.is_admin:
                raise PermissionDenied("only the learner may end their study session")
            if view["ended_at"] is None:
                ended = max(self.clock.now(), view["started_at"])
                await repo.update_row(study_sessions, session_id, {"ended_at": ended})
            view = await self._study(repo, caller, session_id)
        return view

    async def get_study_session(self, caller: Principal, session_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            return await self._study(LearningRepository(s), caller, session_id)

    async def list_study_sessions(
        self,
        caller: Principal,
        learner_id: str = "",
        class_id: str = "",
        requested: int = 0,
        token: str = "",
    ) -> Page:
        learner = learner_id or caller.user_id
        if learner != caller.user_id and not caller.is_admin:
            raise PermissionDenied("only the learner may list their study sessions")
        size = page_size(requested, MAX_LIST_PAGE)
        scope = query_scope("study", learner, class_id)
        cursor = decode_cursor(token, scope)
        t = study_sessions
        conditions = [t.c.learner_id == learner]
        if class_id:
            conditions.append(t.c.class_id == class_id)
        async with self.db.session() as s:
            repo = LearningRepository(s)
            rows, nxt = await repo.page_rows(
                t, "started_at", conditions, size, cursor, descending=True
            )
            counts = await repo.count_statements_by("study_session_id", [r["id"] for r in rows])
        items = [{**r, "interaction_count": counts.get(r["id"], 0)} for r in rows]
        return Page(items, encode_cursor(nxt, scope) if nxt else "")

    # == interactions ======================================================================

    async def _hierarchy(
        self, repo: LearningRepository, inp: InteractionInput
    ) -> tuple[h.HierarchyContext, dict[str, str | None]]:
        tutorial: h.TutorialSession | None = None
        study: h.StudySession | None = None
        session_class: str | None = None
        if inp.tutorial_session_id:
            row = await repo.get_row(tutorial_sessions, inp.tutorial_session_id)
            if row is None:
                raise NotFound(f"tutorial session {inp.tutorial_session_id} not found")
            if row["started_at"] is None:
                raise FailedPrecondition("the tutorial session has not started yet")
            students = (await repo.participants([row["id"]]))[row["id"]]
            tutorial = h.TutorialSession(
                id=row["id"],
                tutor_id=row["tutor_id"],
                tutor_kind=h.TutorKind(row["tutor_kind"]),
                student_ids=tuple(students),
                class_id=row["class_id"],
                started_at=row["started_at"],
                ended_at=row["ended_at"],
            )
            session_class = row["class_id"]
        if inp.study_session_id:
            row = await repo.get_row(study_sessions, inp.study_session_id)
            if row is None:
                raise NotFound(f"study session {inp.study_session_id} not found")
            study = h.StudySession(
                id=row["id"],
                learner_id=row["learner_id"],
                class_id=row["class_id"],
                topic=row["topic"],
                started_at=row["started_at"],
                ended_at=row["ended_at"],
            )
            session_class = session_class or row["class_id"]
        klass: h.Class | None = None
        class_id = inp.class_id or session_class
        if class_id:
            row = await repo.get_row(classes, class_id)
            if row is None:
                raise NotFound(f"class {class_id} not found")
            klass = _class(row)
        course: h.Course | None = None
        course_id = inp.course_id or (klass.course_id if klass is not None else None)
        if course_id:
            row = await repo.get_row(courses, course_id)
            if row is None:
                raise NotFound(f"course {course_id} not found")
            course = _course(row)
        where = h.HierarchyContext(course=course, klass=klass, tutorial=tutorial, study=study)
        ids = {
            "course_id": course.id if course else None,
            "class_id": klass.id if klass else None,
            "tutorial_session_id": tutorial.id if tutorial else None,
            "study_session_id": study.id if study else None,
        }
        return where, ids

    async def _build_interaction(
        self,
        repo: LearningRepository,
        caller: Principal,
        inp: InteractionInput,
        statement_id: str,
        *,
        timestamp: datetime,
        stored: datetime,
        authority_id: str,
    ) -> tuple[ValidatedStatement, _Extras, str]:
        kind = KIND_NAMES.get(inp.kind)
        if kind is None:
            raise ValidationError(
                "interaction.interaction_type",
                "must be one of question, answer, exercise, discussion, evaluation, feedback",
            )
        learner = inp.learner_id or caller.user_id
        h.check_id(learner, "interaction.learner_id")
        where, ids = await self._hierarchy(repo, inp)
        if learner != caller.user_id and not caller.is_admin:
            tutorial = where.tutorial
            if tutorial is None or tutorial.tutor_id != caller.user_id:
                raise PermissionDenied(
                    "only the tutor of a tutorial session may record for its students"
                )
            if learner not in tutorial.student_ids:
                raise PermissionDenied("the learner is not a student of this tutorial session")
        related: StatementRow | None = None
        if inp.related_interaction_id:
            rid = _statement_id(inp.related_interaction_id, "interaction.related_interaction_id")
            related = await repo.get_statement(rid)
            if related is None or not (
                caller.is_admin
                or caller.user_id in (related.learner_id, related.recorded_by)
                or learner == related.learner_id
                or (where.tutorial is not None and related.tutorial_session_id == where.tutorial.id)
            ):
                raise ValidationError(
                    "interaction.related_interaction_id", f"no interaction {rid} you may refer to"
                )
        domain, external_object = _domain_interaction(kind, inp, statement_id, related)
        statement = ix.build_statement(domain, learner, where, self.clock)
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
        extras = _Extras(
            interaction_type=kind.value,
            interaction=_interaction_record(inp, validated),
            course_id=ids["course_id"],
            class_id=ids["class_id"],
            tutorial_session_id=ids["tutorial_session_id"],
            study_session_id=ids["study_session_id"],
        )
        return validated, extras, learner

    async def prepare_interaction(
        self, caller: Principal, inp: InteractionInput
    ) -> PreparedInteraction:
        statement_id = str(uuid.uuid4())
        now = self.clock.now()
        occurred = inp.occurred_at or now
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            v, _, learner = await self._build_interaction(
                repo,
                caller,
                inp,
                statement_id,
                timestamp=occurred,
                stored=now,
                authority_id=caller.user_id,
            )
            text = json_text(v.statement)
            await repo.insert_row(
                prepared_interactions,
                {
                    "statement_id": statement_id,
                    "learner_id": learner,
                    "prepared_by": caller.user_id,
                    "statement_json": text,
                    "created_at": now,
                },
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
    ) -> StatementRow:
        request_id = _request_id(request_id)
        if request_id and not statement_id:
            replay = await self._replay(caller, "record_interaction", request_id)
            if replay is not None:
                return (await self._rows_in_order([replay]))[0]
        if device_signature is not None and not statement_id:
            raise ValidationError(
                "statement_id", "is required with a device signature (from PrepareInteraction)"
            )
        sid = _statement_id(statement_id, "statement_id") if statement_id else str(uuid.uuid4())
        now = self.clock.now()
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            prepared = await repo.s.execute(
                prepared_interactions.select().where(prepared_interactions.c.statement_id == sid)
            )
            prep = prepared.first()
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
            v, extras, _ = await self._build_interaction(
                repo,
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
                _verify_device_signature(canonical_bytes(v.statement), device_signature)
                extras.device = device_signature
            row = await self._store(repo, caller, v, extras, path="interaction")
            if request_id and not statement_id:
                await repo.put_request_key(
                    caller.user_id, "record_interaction", request_id, row.id, now
                )
        self._notify()
        return row

    async def get_interaction(self, caller: Principal, interaction_id: str) -> StatementRow:
        row = await self.get_statement_for_watch(interaction_id)
        if row is None or row.interaction_type is None:
            raise NotFound(f"interaction {interaction_id} not found")
        await self._require_interaction_visible(caller, row)
        return row

    async def get_statement_for_watch(self, statement_id: str) -> StatementRow | None:
        sid = _statement_id(statement_id, "interaction_id")
        async with self.db.session() as s:
            return await LearningRepository(s).get_statement(sid)

    async def _require_interaction_visible(self, caller: Principal, row: StatementRow) -> None:
        if caller.is_admin or caller.user_id in (row.learner_id, row.recorded_by):
            return
        if row.learner_id and await self.may_watch(caller, row.learner_id):
            return
        raise PermissionDenied("not allowed to read this interaction")

    async def may_watch(self, caller: Principal, learner_id: str) -> bool:
        """The learner themself, an admin, or a tutor of one of the learner's sessions."""
        if caller.is_admin or caller.user_id == learner_id:
            return True
        async with self.db.session() as s:
            return await LearningRepository(s).tutor_of_student(caller.user_id, learner_id)

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
    ) -> Page:
        learner = learner_id or caller.user_id
        if not await self.may_watch(caller, learner):
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
        )
        return await self._page(f, requested, MAX_STATEMENT_PAGE, token)

    async def authorize_watch(self, caller: Principal, learner_id: str) -> str:
        learner = learner_id or caller.user_id
        if not await self.may_watch(caller, learner):
            raise PermissionDenied("not allowed to watch this learner's interactions")
        return learner

    # == LRS clients =======================================================================

    async def register_lrs_client(
        self, caller: Principal, name: str, request_id: str = ""
    ) -> LrsCredentials:
        if caller.session_id.startswith((LRS_SESSION_PREFIX, WEBHOOK_SESSION_PREFIX)):
            raise PermissionDenied("LRS clients cannot register LRS clients")
        label = _name(name)
        replay = await self._replay(caller, "register_lrs_client", request_id)
        if replay is not None:
            raise AlreadyExists(
                "this request_id already registered a client; its secret cannot be shown again"
            )
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        values = {
            "id": str(uuid.uuid4()),
            "name": label,
            "key": "lrs_" + secrets.token_hex(12),
            "secret_hash": sha256_hex(secret),
            "owner_id": caller.user_id,
            "created_at": now,
            "revoked_at": None,
        }
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            await repo.insert_row(lrs_clients, values)
            if request_id:
                await repo.put_request_key(
                    caller.user_id, "register_lrs_client", request_id, values["id"], now
                )
        return LrsCredentials(values, secret)

    async def list_lrs_clients(
        self, caller: Principal, requested: int = 0, token: str = ""
    ) -> Page:
        size = page_size(requested, MAX_LIST_PAGE)
        scope = query_scope("lrs", caller.user_id)
        cursor = decode_cursor(token, scope)
        async with self.db.session() as s:
            rows, nxt = await LearningRepository(s).page_rows(
                lrs_clients, "created_at", [lrs_clients.c.owner_id == caller.user_id], size, cursor
            )
        return Page(rows, encode_cursor(nxt, scope) if nxt else "")

    async def revoke_lrs_client(self, caller: Principal, client_id: str) -> dict[str, Any]:
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            row = await repo.get_row(lrs_clients, client_id)
            if row is None:
                raise NotFound(f"LRS client {client_id} not found")
            if row["owner_id"] != caller.user_id and not caller.is_admin:
                raise PermissionDenied("only the client's owner may revoke it")
            if row["revoked_at"] is None:
                row["revoked_at"] = self.clock.now()
                await repo.update_row(lrs_clients, client_id, {"revoked_at": row["revoked_at"]})
        return row

    async def authenticate_lrs_client(self, key: str, secret: str) -> Principal:
        """The principal an LRS client acts as (its owner, marked `lrs:<client id>`)."""
        async with self.db.session() as s:
            row = await LearningRepository(s).get_lrs_client_by_key(key) if key else None
        expected = row["secret_hash"] if row is not None else "0" * 64
        matches = hmac.compare_digest(sha256_hex(secret), expected)
        if row is None or not matches:
            raise Unauthenticated("invalid LRS client credentials")
        if row["revoked_at"] is not None:
            raise Unauthenticated("the LRS client was revoked")
        return Principal(
            user_id=row["owner_id"], roles=frozenset(), session_id=LRS_SESSION_PREFIX + row["id"]
        )

    # == webhooks ==========================================================================

    async def register_webhook_source(
        self,
        caller: Principal,
        *,
        name: str,
        kind: str,
        secret: str = "",
        course_id: str = "",
        request_id: str = "",
    ) -> WebhookRegistration:
        if kind not in WebhookKind.ALL:
            raise ValidationError("kind", f"must be one of {', '.join(WebhookKind.ALL)}")
        label = _name(name)
        if kind in (WebhookKind.MOODLE, WebhookKind.CANVAS):
            label = common.site_url(label, "name")
        replay = await self._replay(caller, "register_webhook_source", request_id)
        if replay is not None:
            async with self.db.session() as s:
                found = await LearningRepository(s).get_row(webhook_sources, replay)
            assert found is not None
            return WebhookRegistration(_public_source(found), "")
        if secret and len(secret) < 16:
            raise ValidationError("secret", "must be at least 16 characters")
        if len(secret) > 256:
            raise ValidationError("secret", "must be at most 256 characters")
        generated = "" if secret else secrets.token_urlsafe(32)
        shared = secret or generated
        now = self.clock.now()
        values = {
            "id": str(uuid.uuid4()),
            "name": label,
            "kind": kind,
            "owner_id": caller.user_id,
            "course_id": course_id or None,
            "hmac_secret": None if kind in WebhookKind.BASIC else shared,
            "password_hash": sha256_hex(shared) if kind in WebhookKind.BASIC else None,
            "created_at": now,
            "revoked_at": None,
        }
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            if course_id:
                course = await repo.get_row(courses, course_id)
                if course is None:
                    raise NotFound(f"course {course_id} not found")
                if course["instructor_id"] != caller.user_id and not caller.is_admin:
                    raise PermissionDenied("only the course's instructor may import into it")
            await repo.insert_row(webhook_sources, values)
            if request_id:
                await repo.put_request_key(
                    caller.user_id, "register_webhook_source", request_id, values["id"], now
                )
        return WebhookRegistration(_public_source(values), generated)

    async def list_webhook_sources(
        self, caller: Principal, requested: int = 0, token: str = ""
    ) -> Page:
        size = page_size(requested, MAX_LIST_PAGE)
        scope = query_scope("webhooks", caller.user_id)
        cursor = decode_cursor(token, scope)
        t = webhook_sources
        async with self.db.session() as s:
            rows, nxt = await LearningRepository(s).page_rows(
                t, "created_at", [t.c.owner_id == caller.user_id], size, cursor
            )
        return Page([_public_source(r) for r in rows], encode_cursor(nxt, scope) if nxt else "")

    async def revoke_webhook_source(self, caller: Principal, source_id: str) -> dict[str, Any]:
        async with self.db.transaction() as s:
            repo = LearningRepository(s)
            row = await repo.get_row(webhook_sources, source_id)
            if row is None:
                raise NotFound(f"webhook source {source_id} not found")
            if row["owner_id"] != caller.user_id and not caller.is_admin:
                raise PermissionDenied("only the source's owner may revoke it")
            if row["revoked_at"] is None:
                row["revoked_at"] = self.clock.now()
                await repo.update_row(webhook_sources, source_id, {"revoked_at": row["revoked_at"]})
        return _public_source(row)

    async def import_webhook(
        self, source_id: str, headers: Mapping[str, str], body: bytes
    ) -> WebhookImport:
        """Authenticate one delivery with the source's credentials, map it and store its
        statements like RecordStatements (as the source's owner). Redeliveries of the same
        body return the first result; the same event in another body maps to the same
        statement ids (the mappers' deterministic ids), so nothing is stored twice."""
        async with self.db.session() as s:
            source = await LearningRepository(s).get_row(webhook_sources, source_id)
        if source is None:
            raise NotFound(f"webhook source {source_id} not found")
        _verify_webhook(source, headers, body)
        if source["revoked_at"] is not None:
            raise Unauthenticated("the webhook source was revoked")
        digest = sha256_hex(body)
        async with self.db.session() as s:
            done = await LearningRepository(s).get_delivery(source_id, digest)
        if done is not None:
            return WebhookImport(list(done["statement_ids"]), int(done["skipped"]))
        clock = _now_clock(self.clock)
        mapped = _map_webhook(source, body, clock)
        owner = source["owner_id"]
        authority = h.keiko_agent(owner)
        validated = [
            validate_statement(
                m.statement,
                version=m.version,
                clock=clock,
                authority=authority,
                path=f"payload[{i}]",
            )
            for i, m in enumerate(mapped)
        ]
        writer = Principal(user_id=owner, session_id=WEBHOOK_SESSION_PREFIX + source_id)
        try:
            async with self.db.transaction() as s:
                repo = LearningRepository(s)
                ids = []
                for i, v in enumerate(validated):
                    extras = _Extras(webhook_source_id=source_id, course_id=source["course_id"])
                    row = await self._store(repo, writer, v, extras, path=f"payload[{i}]")
                    ids.append(row.id)
                await repo.insert_row(
                    webhook_deliveries,
                    {
                        "source_id": source_id,
                        "body_sha256": digest,
                        "statement_ids": ids,
                        "skipped": 0,
                        "received_at": clock.now(),
                    },
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            # A concurrent redelivery stored it first: answer with its result.
            async with self.db.session() as s:
                done = await LearningRepository(s).get_delivery(source_id, digest)
            if done is None:
                raise
            return WebhookImport(list(done["statement_ids"]), int(done["skipped"]))
        self._notify()
        return WebhookImport(ids)


# -- helpers --------------------------------------------------------------------------------


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


def _check_description(value: str, field_name: str) -> None:
    if len(value.strip()) > h.MAX_DESCRIPTION:
        raise ValidationError(field_name, f"must be at most {h.MAX_DESCRIPTION} characters")


def _topic(value: str) -> str:
    text = value.strip()
    if len(text) > h.MAX_TITLE:
        raise ValidationError("topic", f"must be at most {h.MAX_TITLE} characters")
    return text


def _name(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValidationError("name", "must not be empty")
    if len(text) > 200:
        raise ValidationError("name", "must be at most 200 characters")
    return text


def _course(row: Mapping[str, Any]) -> h.Course:
    return h.Course(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        instructor_id=row["instructor_id"],
        created_at=utc_required(row["created_at"]),
    )


def _class(row: Mapping[str, Any]) -> h.Class:
    return h.Class(
        id=row["id"],
        title=row["title"],
        course_id=row["course_id"],
        created_at=utc_required(row["created_at"]),
    )


_SEGMENT = {
    h.InteractionKind.QUESTION: "question",
    h.InteractionKind.ANSWER: "question",
    h.InteractionKind.EXERCISE: "exercise",
    h.InteractionKind.DISCUSSION: "discussion",
    h.InteractionKind.EVALUATION: "evaluation",
    h.InteractionKind.FEEDBACK: "feedback",
}


def _keiko_activity_id(iri: str, segment: str) -> str | None:
    prefix = f"{vocab.KEIKO_ACTIVITIES}{segment}/"
    if iri.startswith(prefix):
        return h.check_id(iri[len(prefix) :], "interaction.activity_id")
    return None


def _domain_interaction(
    kind: h.InteractionKind, inp: InteractionInput, statement_id: str, related: StatementRow | None
) -> tuple[ix.Interaction, str | None]:
    """The domain interaction, and the external object IRI to put in place of Keiko's one."""
    segment = _SEGMENT[kind]
    external: str | None = None
    own_id: str | None = None
    if inp.activity_id:
        own_id = _keiko_activity_id(inp.activity_id, segment)
        if own_id is None:
            external = inp.activity_id
    score = _score(inp.score)
    if kind is h.InteractionKind.QUESTION:
        return ix.Question(id=own_id or statement_id, text=inp.content), external
    if kind is h.InteractionKind.ANSWER:
        question = own_id
        if question is None and external is None:
            if related is None or related.object_id is None:
                raise ValidationError(
                    "interaction.activity_id",
                    "an answer names its question: activity_id or related_interaction_id",
                )
            question = _keiko_activity_id(related.object_id, "question")
            if question is None:
                external = related.object_id
        return (
            ix.Answer(
                id=statement_id,
                question_id=question or statement_id,
                response=inp.response,
                success=inp.success,
                score=score,
            ),
            external,
        )
    if kind is h.InteractionKind.EXERCISE:
        return (
            ix.Exercise(
                id=own_id or statement_id,
                title=inp.title,
                completed=bool(inp.completion),
                success=inp.success,
                score=score,
                duration=inp.duration,
            ),
            external,
        )
    if kind is h.InteractionKind.DISCUSSION:
        thread = own_id
        if thread is None and external is None and related is not None and related.object_id:
            thread = _keiko_activity_id(related.object_id, "discussion")
        return (
            ix.Discussion(
                id=statement_id,
                thread_id=thread or statement_id,
                text=inp.content,
                title=inp.title or None,
            ),
            external,
        )
    if kind is h.InteractionKind.EVALUATION:
        if score is None:
            raise ValidationError("interaction.score", "is required for an evaluation")
        return (
            ix.Evaluation(
                id=own_id or statement_id,
                title=inp.title,
                score=score,
                success=inp.success,
                duration=inp.duration,
            ),
            external,
        )
    return (
        ix.Feedback(
            id=own_id or statement_id,
            text=inp.content,
            about_statement_id=related.id if related is not None else None,
            score=score,
        ),
        external,
    )


def _score(score: ScoreInput | None) -> ix.Score | None:
    if score is None:
        return None
    return ix.Score(raw=score.raw, min=score.min, max=score.max, scaled=score.scaled)


def _interaction_record(inp: InteractionInput, v: ValidatedStatement) -> dict[str, Any]:
    score = None
    if inp.score is not None:
        score = {k: getattr(inp.score, k) for k in ("scaled", "raw", "min", "max")}
    return {
        "activity_id": v.object_id or "",
        "title": inp.title,
        "content": inp.content,
        "response": inp.response,
        "related_interaction_id": inp.related_interaction_id.lower(),
        "score": score,
        "success": inp.success,
        "completion": inp.completion,
        "duration": format_duration(inp.duration) if inp.duration is not None else None,
        "duration_seconds": inp.duration.total_seconds() if inp.duration is not None else None,
    }


def _verify_device_signature(canonical: bytes, device: DeviceSignature) -> None:
    try:
        signature = bytes.fromhex(device.signature_hex)
    except ValueError:
        raise ValidationError("device_signature.signature_hex", "must be hex") from None
    try:
        public_key = bytes.fromhex(device.public_key_hex)
    except ValueError:
        raise ValidationError("device_signature.public_key_hex", "must be hex") from None
    if len(signature) != 64:
        raise ValidationError("device_signature.signature_hex", "must be 64 bytes (128 hex)")
    if len(public_key) != 32:
        raise ValidationError("device_signature.public_key_hex", "must be 32 bytes (64 hex)")
    try:
        nacl.signing.VerifyKey(public_key).verify(canonical, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError):
        raise ValidationError(
            "device_signature.signature_hex",
            "does not verify over the prepared canonical statement with public_key_hex",
        ) from None


def _public_source(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("hmac_secret", "password_hash")}
    out["endpoint_path"] = f"/webhooks/{row['id']}"
    return out


def _verify_webhook(source: Mapping[str, Any], headers: Mapping[str, str], body: bytes) -> None:
    kind = source["kind"]
    if kind == WebhookKind.MOODLE:
        moodle.verify_request(headers, body, secret=source["hmac_secret"])
    elif kind == WebhookKind.CANVAS:
        canvas.verify_request(headers, body, secret=source["hmac_secret"])
    else:
        # Basic auth (Learning Locker forwarder, SCORM Cloud postback): user name = the
        # source id, password = the secret, of which only the SHA-256 is stored. The domain's
        # verify_request needs the plain password, so the header is checked here against
        # the hash, with the same rules and constant-time comparison.
        user, password = _basic_credentials(headers)
        expected = source["password_hash"] or ""
        ok_user = hmac.compare_digest(user.encode(), str(source["id"]).encode())
        ok_password = hmac.compare_digest(sha256_hex(password), expected)
        if not (ok_user and ok_password):
            raise Unauthenticated("invalid webhook credentials")
        verify = (
            learning_locker.verify_request
            if kind == WebhookKind.LEARNING_LOCKER
            else scorm_cloud.verify_request
        )
        verify(headers, username=user, password=password)


def _basic_credentials(headers: Mapping[str, str]) -> tuple[str, str]:
    value = common.get_header(headers, common.AUTHORIZATION_HEADER)
    if value is None:
        raise Unauthenticated("missing Authorization header")
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthenticated("Authorization must use the Basic scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthenticated("malformed Basic credentials") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated("malformed Basic credentials")
    return user, password


def _map_webhook(source: Mapping[str, Any], body: bytes, clock: Clock) -> list[ValidatedStatement]:
    kind = source["kind"]
    if kind == WebhookKind.LEARNING_LOCKER:
        return learning_locker.map_payload(body, clock=clock)
    if kind == WebhookKind.SCORM_CLOUD:
        name = str(source["name"])
        if name.startswith(("https://", "http://")):
            return scorm_cloud.map_payload(body, app_home_page=name, clock=clock)
        return scorm_cloud.map_payload(body, clock=clock)
    if kind == WebhookKind.MOODLE:
        return moodle.map_payload(body, site=source["name"], clock=clock)
    return canvas.map_payload(body, canvas_url=source["name"], clock=clock)


def basic_credentials(value: str) -> tuple[str, str]:
    """`Basic base64(key:secret)` -> (key, secret); Unauthenticated when malformed."""
    return _basic_credentials({common.AUTHORIZATION_HEADER: value})


__all__ = [
    "SERVICE_PRINCIPAL",
    "SERVICE_USER_ID",
    "TOPIC_INTERACTION_RECORDED",
    "DeviceSignature",
    "InteractionInput",
    "LearningService",
    "Page",
    "PreparedInteraction",
    "ScoreInput",
    "WebhookKind",
    "basic_credentials",
    "interaction_event_payload",
]

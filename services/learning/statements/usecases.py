"""Statement use cases: record, read, query and void statements; store the statements the
service itself authors; keep each statement's anchoring state.

Authorization: a caller stores statements about themselves (actor = their Keiko account)
or about actors that are not Keiko users (external LMS identities: `learner_id` stays
empty); statements about another Keiko user need the admin role. A caller reads the
statements whose learner they are or that they recorded; admins read everything.

Writes are idempotent: a statement id stored again with the same content is a no-op
(different content: ALREADY_EXISTS, HTTP 409); `request_id`s replay the first result.
Each stored statement about a Keiko learner enqueues `learning.interaction_recorded`
in the same transaction (see `interaction_event_payload`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.errors import NotFound, PermissionDenied, ValidationError
from services.kit.events import Event
from services.kit.idempotency import Replayed
from services.learning.activities.usecases import Activities
from services.learning.clients.domain import LRS_SESSION_PREFIX
from services.learning.common.storage import RequestKeys, decode_cursor, encode_cursor
from services.learning.common.usecases import (
    MAX_STATEMENT_PAGE,
    LearningContext,
    Page,
    check_request_id,
    check_statement_id,
    frozen_now,
    page_size,
)
from services.learning.hierarchy.domain import check_id, keiko_agent
from services.learning.links.usecases import Links
from services.learning.statements.attachments import AttachmentPart, check_parts, match_parts
from services.learning.statements.domain import (
    ANCHOR_DOMAIN,
    MAX_BATCH,
    SERVICE_PRINCIPAL,
    SERVICE_USER_ID,
    TOPIC_ANCHOR_FAILED,
    TOPIC_INTERACTION_ANCHORED,
    AnchorOutcome,
    StatementRecord,
    StoreExtras,
    may_read,
)
from services.learning.statements.pages import StatementFilter, TextPage, statement_texts
from services.learning.statements.storage import StatementRepository, StoredAttachment
from services.learning.statements.writes import (
    Incoming,
    StatementWriter,
    stored_in_one_write,
    stored_once,
)
from services.learning.xapi import (
    ValidatedStatement,
    XAPIVersion,
    formats,
    parse_version_header,
    validate_statement,
    vocab,
)
from services.learning.xapi.formats import is_uuid

_RECORD_NAMESPACE = uuid.UUID("9a1f6c3e-2b7d-5c41-8e90-4b6569b07265")


class Statements:
    def __init__(self, ctx: LearningContext, activities: Activities, links: Links) -> None:
        self.ctx = ctx
        self.activities = activities
        self.links = links
        self.writer = StatementWriter(ctx, activities, links)

    async def record_statements(
        self,
        caller: Principal,
        statement_jsons: Sequence[str],
        xapi_version: str = "",
        request_id: str = "",
        attachments: Sequence[AttachmentPart] = (),
    ) -> list[StatementRecord]:
        """Store a batch atomically. `attachments`: the parts of a multipart/mixed request,
        matched to the statements' attachment objects by SHA-2 (signatures verified); see
        `services.learning.statements.attachments`."""
        version = parse_version_header(xapi_version) if xapi_version else XAPIVersion.V1_0_3
        request_id = check_request_id(request_id)
        if not statement_jsons:
            raise ValidationError("statements", "must not be empty")
        if len(statement_jsons) > MAX_BATCH:
            raise ValidationError("statements", f"must hold at most {MAX_BATCH} statements")
        writer = caller.user_id
        if request_id:
            async with self.ctx.db.session() as s:
                replay = await RequestKeys(s).get(writer, "record_statements", request_id)
            if replay is not None:
                return await self.rows_in_order(replay)
        clock = frozen_now(self.ctx.clock)
        authority = keiko_agent(writer)
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
        parts = check_parts(attachments)
        used = match_parts(
            [v.statement for v, _ in validated], [raw for _, raw in validated], parts, version
        )
        lrs_client_id = (
            caller.session_id.removeprefix(LRS_SESSION_PREFIX)
            if caller.session_id.startswith(LRS_SESSION_PREFIX)
            else None
        )
        batch = [
            Incoming(v, f"statements[{i}]", sent=raw, fresh_id="id" not in raw)
            for i, (v, raw) in enumerate(validated)
        ]
        return await stored_once(
            lambda: self._write(
                caller, batch, parts, used, request_id, clock, lrs_client_id=lrs_client_id
            )
        )

    async def _write(
        self,
        caller: Principal,
        batch: Sequence[Incoming],
        parts: Mapping[str, AttachmentPart],
        used: Sequence[Sequence[str]],
        request_id: str,
        clock: FixedClock,
        *,
        lrs_client_id: str | None,
    ) -> list[StatementRecord]:
        """Store the checked batch (see `record_statements`)."""
        if len(batch) == 1 and not parts and not request_id and self.ctx.db.dialect == "postgresql":
            # One statement (xAPI's usual POST): one write on PostgreSQL, no BEGIN/COMMIT.
            one = await stored_in_one_write(
                self.ctx,
                lambda s: self.writer.store_many(
                    s, caller, batch, lrs_client_id=lrs_client_id, one_write=True
                ),
            )
            if one is not None:
                return one
        try:
            async with self.ctx.db.transaction() as s:
                if request_id:  # first: a concurrent retry waits here for this one's result
                    await RequestKeys(s).claim(
                        caller.user_id,
                        "record_statements",
                        request_id,
                        [item.statement.id for item in batch],
                        clock.now(),
                    )
                rows = await self.writer.store_many(s, caller, batch, lrs_client_id=lrs_client_id)
                if parts:
                    await StatementRepository(s).store_attachments(
                        [
                            StoredAttachment(p.sha2, p.content_type, p.content)
                            for p in parts.values()
                        ],
                        [
                            (row.id, sha2)
                            for row, sha2s in zip(rows, used, strict=True)
                            for sha2 in sha2s
                        ],
                        clock.now(),
                    )
        except Replayed as first:
            return await self.rows_in_order(first.result)
        self.ctx.notify()
        return rows

    async def get_attachments(
        self, caller: Principal, sha2s: Sequence[str]
    ) -> list[StoredAttachment]:
        """The data of the attachments (by SHA-2) of statements the caller may read; the
        others, and digests stored nowhere (fileUrl attachments), are left out."""
        for i, sha2 in enumerate(sha2s):
            if not formats.is_sha2_hex(sha2):
                raise ValidationError(f"sha2[{i}]", "must be a SHA-2 hex digest")
        async with self.ctx.db.session() as s:
            return await StatementRepository(s).attachments_visible(
                [x.lower() for x in sha2s], "" if caller.is_admin else caller.user_id
            )

    async def rows_in_order(self, ids: Sequence[str]) -> list[StatementRecord]:
        async with self.ctx.db.session() as s:
            found = await StatementRepository(s).get_statements(list(ids))
        return [found[i] for i in ids if i in found]

    async def store(
        self,
        s: AsyncSession,
        caller: Principal,
        v: ValidatedStatement,
        extras: StoreExtras,
        *,
        path: str,
        fresh_id: bool = False,
    ) -> StatementRecord:
        """Store one statement Keiko built (or accept an identical one) with its event, in
        the caller's transaction `s` (see `StatementWriter.store_many`; `fresh_id`: its id
        was just generated, see `Incoming`)."""
        item = Incoming(v, path, extras, fresh_id=fresh_id)
        [row] = await self.writer.store_many(s, caller, [item])
        return row

    async def get_statement(self, caller: Principal, statement_id: str) -> StatementRecord:
        sid = check_statement_id(statement_id, "statement_id")
        async with self.ctx.db.session() as s:
            row = await StatementRepository(s).get_statement(sid)
        if row is None:
            raise NotFound(f"statement {sid} not found")
        if not may_read(caller, row):
            raise PermissionDenied("not allowed to read this statement")
        return row

    async def find(self, statement_id: str, field_name: str) -> StatementRecord | None:
        """The statement with this id, unauthorized (the caller authorizes)."""
        sid = check_statement_id(statement_id, field_name)
        async with self.ctx.db.session() as s:
            return await StatementRepository(s).get_statement(sid)

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
        related_agents: bool = False,
        requested_size: int = 0,
        page_token: str = "",
    ) -> Page[StatementRecord]:
        """A page of the statements `xapi_filter` selects."""
        f = self.xapi_filter(
            caller,
            learner_id=learner_id,
            verb_id=verb_id,
            activity_id=activity_id,
            registration=registration,
            since=since,
            until=until,
            include_voided=include_voided,
            ascending=ascending,
            related_activities=related_activities,
            related_agents=related_agents,
        )
        return await self.page(f, requested_size, MAX_STATEMENT_PAGE, page_token)

    def xapi_filter(
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
        related_agents: bool = False,
    ) -> StatementFilter:
        """The xAPI statement query the caller may run. `learner_id` is a Keiko user id
        (the actor's account), or an agent key (`agent_key`: `mailto:...`,
        `account:["<home page>","<name>"]`, ...) matched as the xAPI `agent` filter: actor
        or object, anywhere with `related_agents`. Statements targeting a matching
        statement by StatementRef match too (xAPI 2.1.3.s3)."""
        if registration and not is_uuid(registration):
            raise ValidationError("registration", "must be a UUID")
        if since is not None and until is not None and since > until:
            raise ValidationError("until", "must not be before since")
        learner, agent = "", ""
        if learner_id:
            if ":" in learner_id:
                agent = learner_id
            else:
                learner = check_id(learner_id, "learner_id")
        return StatementFilter(
            learner_id=learner,
            agent_key=agent,
            related_agents=related_agents,
            follow_statement_refs=True,
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

    async def page(
        self, f: StatementFilter, requested: int, maximum: int, token: str
    ) -> Page[StatementRecord]:
        size = page_size(requested, maximum)
        scope = f.scope()
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            rows, nxt = await StatementRepository(s).query_statements(f, size, cursor)
        return Page(rows, encode_cursor(nxt, scope) if nxt is not None else "")

    async def text_page(self, f: StatementFilter, requested: int, token: str) -> TextPage:
        """`page` (at most MAX_STATEMENT_PAGE) as the statements' JSON texts: one SELECT
        of three columns on a bare connection."""
        size = page_size(requested, MAX_STATEMENT_PAGE)
        scope = f.scope()
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.read(snapshot=False) as connection:
            page, nxt = await statement_texts(connection, f, size, cursor)
        return replace(page, next_page_token=encode_cursor(nxt, scope)) if nxt else page

    async def void_statement(
        self, caller: Principal, statement_id: str, request_id: str = ""
    ) -> StatementRecord:
        target = check_statement_id(statement_id, "statement_id")
        request_id = check_request_id(request_id)
        voiding_id = (
            str(uuid.uuid5(_RECORD_NAMESPACE, f"void:{caller.user_id}:{request_id}"))
            if request_id
            else str(uuid.uuid4())
        )
        statement = {
            "id": voiding_id,
            "actor": keiko_agent(caller.user_id),
            "verb": {"id": vocab.VERB_VOIDED, "display": {"en-US": "voided"}},
            "object": {"objectType": "StatementRef", "id": target},
        }
        v = validate_statement(
            statement, clock=frozen_now(self.ctx.clock), authority=keiko_agent(caller.user_id)
        )
        async with self.ctx.db.transaction() as s:
            repo = StatementRepository(s)
            existing = await repo.get_statement(voiding_id)
            if existing is not None and existing.voids_statement_id == target:
                return existing
            if await repo.get_statement(target) is None:
                raise NotFound(f"statement {target} not found")
            row = await self.store(s, caller, v, StoreExtras(), path="statement")
        self.ctx.notify()
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
    ) -> StatementRecord:
        """Store a statement the learning service itself authors (authority: the service's
        Keiko agent) in the caller's transaction `s`, typically an event consumer's, next to
        its dedupe marker. Same path as every other write: an identical statement already
        stored is a no-op, and a statement about a Keiko learner enqueues
        `learning.interaction_recorded`. Call `notify_committed()` after the commit."""
        validated = validate_statement(
            statement,
            clock=frozen_now(self.ctx.clock),
            authority=keiko_agent(SERVICE_USER_ID),
            path=path,
        )
        extras = StoreExtras(
            course_id=course_id, class_id=class_id, tutorial_session_id=tutorial_session_id
        )
        return await self.store(s, SERVICE_PRINCIPAL, validated, extras, path=path)

    def notify_committed(self) -> None:
        """Wake the outbox relay after a caller-owned transaction enqueued events."""
        self.ctx.notify()

    async def apply_anchor_event(self, event: Event) -> bool:
        """Keep a statement's anchor state from `chain.interaction_anchored` /
        `chain.anchor_failed` (record_id = statement id). Idempotent: redeliveries rewrite
        the same values, and a failure never overrides an anchor. True if it changed."""
        found = _anchor_outcome(event)
        if found is None:
            return False
        async with self.ctx.db.transaction() as s:
            return await StatementRepository(s).set_anchor(*found)

    async def apply_anchor_events(self, events: Sequence[Event]) -> None:
        """:meth:`apply_anchor_event` for a page of events, in order, in one transaction
        (the anchor consumer's page)."""
        outcomes = [found for found in map(_anchor_outcome, events) if found is not None]
        if outcomes:
            async with self.ctx.db.transaction() as s:
                await StatementRepository(s).set_anchors(outcomes)


def _anchor_outcome(event: Event) -> tuple[str, AnchorOutcome] | None:
    """The statement id and anchoring outcome an anchor event announces (None: not ours)."""
    p = event.payload
    if p.get("domain", ANCHOR_DOMAIN) != ANCHOR_DOMAIN:
        return None
    record_id = str(p.get("record_id") or "")
    if not is_uuid(record_id):
        return None
    batch_id = str(p.get("batch_id") or "") or None
    root = str(p.get("root") or "") or None
    leaf_index = _int_or_none(p.get("leaf_index"))
    if event.topic == TOPIC_INTERACTION_ANCHORED:
        outcome = AnchorOutcome(
            status="anchored",
            batch_id=batch_id,
            root=root,
            leaf_index=leaf_index,
            block=_int_or_none(p.get("block")),
            tx_hash=str(p.get("tx_hash") or "") or None,
            signature_hex=_hex_or_none(p.get("signature"), 128),
            public_key_hex=_hex_or_none(p.get("public_key"), 64),
            anchored_at=event.occurred_at,
        )
    elif event.topic == TOPIC_ANCHOR_FAILED:
        outcome = AnchorOutcome(
            status="failed",
            batch_id=batch_id,
            root=root,
            leaf_index=leaf_index,
            failure=str(p.get("failure_reason") or "anchoring failed"),
        )
    else:
        return None
    return record_id.lower(), outcome


def _hex_or_none(value: object, length: int) -> str | None:
    text = str(value or "").lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        return None
    return text


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

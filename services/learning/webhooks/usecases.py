"""Webhook source use cases: register (a generated secret is shown once), list, revoke,
and import a delivery.

Authorization: a signed-in user registers sources for themself; importing into a course
takes its instructor (or an admin). The owner lists and revokes sources (admins may revoke
any). A delivery is authenticated by the source's own credentials and stored as the
source's owner, with the same rules as RecordStatements.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError

from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import NotFound, PermissionDenied, Unauthenticated, ValidationError
from services.kit.idempotency import Replayed
from services.kit.paging import Page, page_size
from services.learning.clients.domain import WEBHOOK_SESSION_PREFIX, check_name
from services.learning.common.storage import (
    RequestKeys,
    decode_cursor,
    encode_cursor,
    query_scope,
    sha256_hex,
)
from services.learning.common.usecases import (
    MAX_LIST_PAGE,
    LearningContext,
    frozen_now,
)
from services.learning.hierarchy import domain as h
from services.learning.hierarchy.storage import HierarchyRepository
from services.learning.imports import common
from services.learning.statements.domain import StoreExtras
from services.learning.statements.usecases import Statements
from services.learning.statements.writes import Incoming
from services.learning.webhooks.domain import (
    MAX_SECRET,
    MIN_SECRET,
    WebhookKind,
    map_delivery,
    secret_hash,
    verify_delivery,
)
from services.learning.webhooks.storage import (
    WebhookDelivery,
    WebhookRepository,
    WebhookSourceRecord,
)
from services.learning.xapi import validate_statement


@dataclass(frozen=True)
class WebhookRegistration:
    source: WebhookSourceRecord
    generated_secret: str


@dataclass(frozen=True)
class WebhookImport:
    statement_ids: list[str]
    skipped_events: int = 0


class Webhooks:
    def __init__(self, ctx: LearningContext, statements: Statements) -> None:
        self.ctx = ctx
        self.statements = statements

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
        label = check_name(name)
        if kind in (WebhookKind.MOODLE, WebhookKind.CANVAS):
            label = common.site_url(label, "name")
        replay = await self.ctx.replay(caller, "register_webhook_source", request_id)
        if replay is not None:
            return await self._registered(replay)
        if secret and len(secret) < MIN_SECRET:
            raise ValidationError("secret", f"must be at least {MIN_SECRET} characters")
        if len(secret) > MAX_SECRET:
            raise ValidationError("secret", f"must be at most {MAX_SECRET} characters")
        generated = "" if secret else secrets.token_urlsafe(32)
        shared = secret or generated
        now = self.ctx.clock.now()
        record = WebhookSourceRecord(
            id=str(uuid.uuid4()),
            name=label,
            kind=kind,
            owner_id=caller.user_id,
            course_id=course_id or None,
            hmac_secret=None if kind in WebhookKind.BASIC else shared,
            password_hash=secret_hash(shared) if kind in WebhookKind.BASIC else None,
            created_at=now,
            revoked_at=None,
        )
        try:
            async with self.ctx.db.transaction() as s:
                if request_id:
                    await RequestKeys(s).claim(
                        caller.user_id, "register_webhook_source", request_id, record.id, now
                    )
                if course_id:
                    course = await HierarchyRepository(s).get_course(course_id)
                    if course is None:
                        raise NotFound(f"course {course_id} not found")
                    if course.instructor_id != caller.user_id and not caller.is_admin:
                        raise PermissionDenied("only the course's instructor may import into it")
                await WebhookRepository(s).insert_source(record)
        except Replayed as first:  # a concurrent retry committed first
            return await self._registered(str(first.result))
        return WebhookRegistration(record, generated)

    async def _registered(self, source_id: str) -> WebhookRegistration:
        """A replay's answer: the source the first call registered (its secret not again)."""
        async with self.ctx.db.session() as s:
            found = await WebhookRepository(s).get_source(source_id)
        assert found is not None
        return WebhookRegistration(found, "")

    async def list_webhook_sources(
        self, caller: Principal, requested: int = 0, token: str = ""
    ) -> Page[WebhookSourceRecord]:
        size = page_size(requested, maximum=MAX_LIST_PAGE)
        scope = query_scope("webhooks", caller.user_id)
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            rows, nxt = await WebhookRepository(s).page_of_owner(caller.user_id, size, cursor)
        return Page(rows, encode_cursor(nxt, scope) if nxt else "")

    async def revoke_webhook_source(self, caller: Principal, source_id: str) -> WebhookSourceRecord:
        async with self.ctx.db.transaction() as s:
            repo = WebhookRepository(s)
            row = await repo.get_source(source_id)
            if row is None:
                raise NotFound(f"webhook source {source_id} not found")
            if row.owner_id != caller.user_id and not caller.is_admin:
                raise PermissionDenied("only the source's owner may revoke it")
            if row.revoked_at is None:
                now = self.ctx.clock.now()
                await repo.set_revoked(source_id, now)
                row = replace(row, revoked_at=now)
        return row

    async def import_webhook(
        self, source_id: str, headers: Mapping[str, str], body: bytes
    ) -> WebhookImport:
        """Authenticate one delivery with the source's credentials, map it and store its
        statements like RecordStatements (as the source's owner). Redeliveries of the same
        body return the first result; the same event in another body maps to the same
        statement ids (the mappers' deterministic ids), so nothing is stored twice."""
        async with self.ctx.db.session() as s:
            source = await WebhookRepository(s).get_source(source_id)
        if source is None:
            raise NotFound(f"webhook source {source_id} not found")
        verify_delivery(
            kind=source.kind,
            source_id=source.id,
            hmac_secret=source.hmac_secret,
            password_hash=source.password_hash,
            headers=headers,
            body=body,
        )
        if source.revoked_at is not None:
            raise Unauthenticated("the webhook source was revoked")
        digest = sha256_hex(body)
        async with self.ctx.db.session() as s:
            done = await WebhookRepository(s).get_delivery(source_id, digest)
        if done is not None:
            return WebhookImport(done.statement_ids, done.skipped)
        clock = frozen_now(self.ctx.clock)
        mapped = map_delivery(source.kind, source.name, body, clock)
        authority = h.keiko_agent(source.owner_id)
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
        writer = Principal(user_id=source.owner_id, session_id=WEBHOOK_SESSION_PREFIX + source_id)
        try:
            async with self.ctx.db.transaction() as s:
                extras = StoreExtras(webhook_source_id=source_id, course_id=source.course_id)
                rows = await self.statements.writer.store_many(
                    s,
                    writer,
                    [Incoming(v, f"payload[{i}]", extras) for i, v in enumerate(validated)],
                )
                ids = [row.id for row in rows]
                await WebhookRepository(s).insert_delivery(
                    WebhookDelivery(
                        source_id=source_id,
                        body_sha256=digest,
                        statement_ids=ids,
                        skipped=0,
                        received_at=clock.now(),
                    )
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            # A concurrent redelivery stored it first: answer with its result.
            async with self.ctx.db.session() as s:
                done = await WebhookRepository(s).get_delivery(source_id, digest)
            if done is None:
                raise
            return WebhookImport(done.statement_ids, done.skipped)
        self.ctx.notify()
        return WebhookImport(ids)

"""Actor link use cases: create a code (the learner), confirm it (the institution), list
and revoke links (either party), and resolve who an external actor is when an
institution stores a statement. See `domain` for how a link is proven."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import AlreadyExists, NotFound, PermissionDenied, RateLimited
from services.kit.paging import Page, page_size
from services.learning.clients.domain import acting_through_credentials
from services.learning.common.storage import decode_cursor, encode_cursor, query_scope
from services.learning.common.usecases import MAX_LIST_PAGE, LearningContext
from services.learning.links import domain as ld
from services.learning.links.storage import ActorLinkRecord, LinkRepository


class Links:
    def __init__(self, ctx: LearningContext) -> None:
        self.ctx = ctx

    async def create_link_code(self, caller: Principal) -> tuple[str, datetime]:
        """A one-time code for the caller (a signed-in learner, not an LRS client): the
        learner's consent to be linked. Returns (code, expiry); only its hash is kept."""
        if acting_through_credentials(caller):
            raise PermissionDenied("an LRS client cannot create link codes; the learner does")
        now = self.ctx.clock.now()
        code = ld.new_code()
        expires = now + ld.CODE_TTL
        async with self.ctx.db.transaction() as s:
            repo = LinkRepository(s)
            if await repo.open_codes(caller.user_id, now) >= ld.MAX_OPEN_CODES:
                raise RateLimited(
                    f"at most {ld.MAX_OPEN_CODES} open link codes: use or let some expire"
                )
            await repo.add_code(ld.code_hash(code), caller.user_id, now, expires)
        return code, expires

    async def confirm(self, caller: Principal, agent_json: str, code: str) -> ActorLinkRecord:
        """The institution (the caller) vouches that `agent_json` is the learner who gave
        it `code`. Idempotent for the same learner; another learner's identity is 409."""
        identity, key = ld.linkable_agent(agent_json)
        digest = ld.code_hash(ld.check_code(code))
        now = self.ctx.clock.now()
        try:
            async with self.ctx.db.transaction() as s:
                repo = LinkRepository(s)
                learner = await repo.use_code(digest, now)
                if learner is None:
                    raise NotFound("no such link code, or it expired or was used")
                existing = await repo.active(caller.user_id, key)
                if existing is not None:
                    if existing.learner_id == learner:
                        return existing
                    raise AlreadyExists(
                        "you linked this identity to another learner: revoke that link first"
                    )
                record = ActorLinkRecord(
                    id=str(uuid.uuid4()),
                    learner_id=learner,
                    institution_id=caller.user_id,
                    agent_key=key,
                    agent_json=json.dumps(identity, ensure_ascii=False, separators=(",", ":")),
                    slot=ld.ACTIVE,
                    created_at=now,
                    revoked_at=None,
                )
                await repo.insert(record)
                return record
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            raise AlreadyExists("this identity was linked by a concurrent request") from None

    async def list_links(
        self, caller: Principal, requested: int = 0, token: str = ""
    ) -> Page[ActorLinkRecord]:
        """The caller's links, as the learner and as the vouching institution."""
        size = page_size(requested, maximum=MAX_LIST_PAGE)
        scope = query_scope("links", caller.user_id)
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            rows, nxt = await LinkRepository(s).page_of(caller.user_id, size, cursor)
        return Page(rows, encode_cursor(nxt, scope) if nxt else "")

    async def revoke(self, caller: Principal, link_id: str) -> ActorLinkRecord:
        async with self.ctx.db.transaction() as s:
            repo = LinkRepository(s)
            link = await repo.get(link_id)
            if link is None:
                raise NotFound(f"actor link {link_id} not found")
            if caller.user_id not in (link.learner_id, link.institution_id) and not caller.is_admin:
                raise PermissionDenied("only the learner or the institution may revoke a link")
            if link.revoked_at is None:
                await repo.revoke(link_id, self.ctx.clock.now())
            found = await repo.get(link_id)
        assert found is not None
        return found

    async def learner_of(self, s: AsyncSession, institution_id: str, agent_key: str) -> str | None:
        """The learner an institution's statement about `agent_key` belongs to, if linked
        (in the statement's transaction `s`)."""
        link = await LinkRepository(s).active(institution_id, agent_key)
        return link.learner_id if link is not None else None

    async def learners_of(
        self, s: AsyncSession, institution_id: str, agent_keys: Sequence[str]
    ) -> dict[str, str]:
        """`learner_of` for many identities at once (the linked ones only)."""
        return await LinkRepository(s).active_learners(institution_id, agent_keys)

"""Share links: created (token shown once, idempotent on request id), listed, revoked."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.kit.auth import Principal
from services.kit.clock import as_utc
from services.kit.db import is_unique_violation
from services.kit.errors import (
    NotFound,
    ValidationError,
)
from services.passport.core import (
    TOKEN_BYTES,
    PassportCore,
    ShareLink,
    token_hash,
)
from services.passport.credentials.revocation import (
    revoke_for_share_link,
)
from services.passport.domain import (
    MAX_LABEL_CHARS,
    Disclosure,
    check_id,
    cursor_scope,
    decode_cursor,
    encode_cursor,
)
from services.passport.storage import (
    share_links,
)


@dataclass(frozen=True, slots=True)
class CreatedLink:
    link: ShareLink
    token: str  # empty on an idempotent replay: only the hash is stored
    url: str


class ShareLinks(PassportCore):
    # == share links =====================================================================

    async def create_link(
        self,
        caller: Principal,
        label: str,
        scope: Disclosure | None,
        expires_at: datetime | None,
        request_id: str = "",
    ) -> CreatedLink:
        label = label.strip()
        if len(label) > MAX_LABEL_CHARS:
            raise ValidationError("label", f"must be at most {MAX_LABEL_CHARS} characters")
        if len(request_id) > 128:
            raise ValidationError("request_id", "must be at most 128 characters")
        now = self.clock.now()
        if expires_at is not None and as_utc(expires_at) <= now:
            raise ValidationError("expires_at", "must be in the future")
        passport = await self.own_passport(caller)
        bound = passport.privacy.share_link_disclosure
        if scope is None:
            scope = bound
        elif not scope.within(bound):
            raise ValidationError(
                "scope", "reveals more than your share-link disclosure allows: widen that first"
            )
        if request_id:
            replay = await self._link_by_request(caller.user_id, request_id)
            if replay is not None:
                return CreatedLink(replay, "", "")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        link_id = str(uuid.uuid4())
        try:
            async with self.db.transaction() as s:
                await s.execute(
                    share_links.insert().values(
                        id=link_id,
                        passport_id=passport.id,
                        owner_id=caller.user_id,
                        token_sha256=token_hash(token),
                        label=label,
                        scope=scope.to_json(),
                        created_at=now,
                        expires_at=None if expires_at is None else as_utc(expires_at),
                        revoked_at=None,
                        view_count=0,
                        request_id=request_id or None,
                    )
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc) or not request_id:
                raise
            replay = await self._link_by_request(caller.user_id, request_id)
            if replay is None:  # another unique rule, not this request's twin
                raise
            return CreatedLink(replay, "", "")
        link = await self._link(caller, link_id)
        return CreatedLink(link, token, self.share_url(token))

    def share_url(self, token: str) -> str:
        return f"{self.share_base_url}/verify/share/{token}"

    async def _link_by_request(self, owner_id: str, request_id: str) -> ShareLink | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(share_links).where(
                        share_links.c.owner_id == owner_id, share_links.c.request_id == request_id
                    )
                )
            ).first()
        return None if row is None else ShareLink.of(row)

    async def share_link(self, caller: Principal, link_id: str) -> ShareLink:
        """The caller's own share link (NotFound for another owner's)."""
        return await self._link(caller, link_id)

    async def _link(self, caller: Principal, link_id: str) -> ShareLink:
        link_id = check_id(link_id, "link_id")
        async with self.db.session() as s:
            row = (await s.execute(select(share_links).where(share_links.c.id == link_id))).first()
        if row is None or row._mapping["owner_id"] != caller.user_id:
            raise NotFound(f"no share link {link_id}")  # another owner's link does not exist
        return ShareLink.of(row)

    async def revoke_link(self, caller: Principal, link_id: str) -> ShareLink:
        link = await self._link(caller, link_id)
        if link.revoked_at is None:  # idempotent: revoking twice keeps the first time
            async with self.db.transaction() as s:
                await s.execute(
                    update(share_links)
                    .where(share_links.c.id == link.id, share_links.c.revoked_at.is_(None))
                    .values(revoked_at=self.clock.now())
                )
                # Credentials issued for this link are withdrawn with it.
                await revoke_for_share_link(s, link.id, self.clock.now())
            self._notify()
            link = await self._link(caller, link_id)
        return link

    async def list_links(
        self, caller: Principal, include_inactive: bool, size: int, page_token: str
    ) -> tuple[list[ShareLink], str]:
        scope = cursor_scope(caller.user_id, include_inactive)
        cursor = decode_cursor(page_token, scope)
        c = share_links.c
        query = select(share_links).where(c.owner_id == caller.user_id)
        now = self.clock.now()
        if not include_inactive:
            query = query.where(
                c.revoked_at.is_(None), or_(c.expires_at.is_(None), c.expires_at > now)
            )
        if cursor is not None:
            when, ident = cursor
            query = query.where(or_(c.created_at < when, and_(c.created_at == when, c.id < ident)))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(size + 1)
        async with self.db.session() as s:
            rows = (await s.execute(query)).all()
        links = [ShareLink.of(r) for r in rows[:size]]
        token = ""
        if len(rows) > size:
            token = encode_cursor(links[-1].created_at, links[-1].id, scope)
        return links, token

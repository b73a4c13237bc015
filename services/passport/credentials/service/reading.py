"""Who sees a credential: its subject and its issuer always; anyone else only through a
share link or the public passport whose disclosure shows every entry in it, and only
while it is not revoked. Reading, listing, and a share link's presentation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from sqlalchemy import and_, or_, select

from chain.credentials.presentations import check_challenge, check_domain, presentation
from chain.translator.credentials import CredentialPurpose
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound
from services.passport.credentials.domain import IssuedCredential
from services.passport.credentials.service.core import (
    PLACEHOLDER_DID,
    CredentialCore,
    credential_of,
)
from services.passport.credentials.storage import credentials
from services.passport.domain import decode_cursor, encode_cursor
from services.passport.service import Access

PUBLIC_LIST_LIMIT = 200
# A presentation carries the newest credentials a share link shows: each costs its RDF
# canonicalization when the learner's key signs it, on every fetch of the link.
MAX_PRESENTED = 20


class Reading(CredentialCore):
    async def visible(
        self, access: Access, candidates: Sequence[IssuedCredential]
    ) -> list[IssuedCredential]:
        """Those of ``candidates`` the access shows (see the module docstring)."""
        if not access.disclosure.show_content:
            return []
        link_id = access.link.id if access.link is not None else ""
        wanted = [
            c
            for c in candidates
            if not c.revoked
            and c.owner_id == access.passport.owner_id
            and (not c.share_link_id or c.share_link_id == link_id)
        ]
        ids = sorted({s for c in wanted for s in c.statement_ids})
        shown = {e.statement_id for e in await self.passports.entries_by_id(access, ids)}
        return [c for c in wanted if set(c.statement_ids) <= shown]

    async def get(
        self, caller: Principal | None, credential_id: str, share_token: str = ""
    ) -> IssuedCredential:
        found = await self._load(credential_id)
        if found is None:
            raise NotFound(f"no credential {credential_id}")
        if caller is not None and caller.user_id in (found.owner_id, found.holder_id):
            return found
        if share_token:
            access = await self.passports.share_access(share_token, count_view=False)
        else:
            try:
                access = await self.passports.access(caller, found.passport_id)
            except NotFound:
                raise NotFound(f"no credential {credential_id}") from None
        if not await self.visible(access, [found]):
            raise NotFound(f"no credential {credential_id}")
        return found

    async def list_own(
        self,
        caller: Principal,
        *,
        issued_by_me: bool = False,
        include_revoked: bool = False,
        size: int = 50,
        page_token: str = "",
    ) -> tuple[list[IssuedCredential], str]:
        c = credentials.c
        column = c.holder_id if issued_by_me else c.owner_id
        scope = f"{'issued' if issued_by_me else 'own'}:{include_revoked}:{caller.user_id}"
        cursor = decode_cursor(page_token, scope)
        query = select(credentials).where(column == caller.user_id)
        if not include_revoked:
            query = query.where(c.revoked_at.is_(None))
        if cursor is not None:
            when, ident = cursor
            query = query.where(or_(c.issued_at < when, and_(c.issued_at == when, c.id < ident)))
        query = query.order_by(c.issued_at.desc(), c.id.desc()).limit(size + 1)
        async with self.db.session() as s:
            rows = (await s.execute(query)).all()
        found = [credential_of(r) for r in rows[:size]]
        token = ""
        if len(rows) > size:
            token = encode_cursor(found[-1].issued_at, found[-1].id, scope)
        return found, token

    async def list_visible(self, access: Access) -> list[IssuedCredential]:
        """What a share link or a public passport shows (at most 200, newest first)."""
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(credentials)
                    .where(
                        credentials.c.owner_id == access.passport.owner_id,
                        credentials.c.revoked_at.is_(None),
                    )
                    .order_by(credentials.c.issued_at.desc(), credentials.c.id.desc())
                    .limit(PUBLIC_LIST_LIMIT)
                )
            ).all()
        return await self.visible(access, [credential_of(r) for r in rows])

    async def shared_presentation(self, token: str, challenge: str, domain: str) -> str:
        """The share link's credentials as a presentation signed by the learner's key over
        the verifier's challenge and domain."""
        challenge, domain = check_challenge(challenge), check_domain(domain)
        access = await self.passports.share_access(token, count_view=True)
        shown = (await self.list_visible(access))[:MAX_PRESENTED]
        if not shown:
            raise FailedPrecondition("this share link shows no credential the learner issued")
        document = presentation(
            uuid.uuid4().urn,
            PLACEHOLDER_DID,
            [json.loads(c.document_json) for c in shown],
        )
        signed = await self._signer().sign(
            CredentialPurpose.PRESENT,
            access.passport.owner_id,
            access.passport.owner_id,
            document,
            challenge=challenge,
            domain=domain,
        )
        return json.dumps(signed, ensure_ascii=False)

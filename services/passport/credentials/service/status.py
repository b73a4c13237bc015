"""Status lists and revocation: a random slot in the issuer's list for each new
credential, revoking (by the subject or the issuer), and re-signing and republishing a
list (`publish`, right away and by the publisher job until it succeeds)."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid

from sqlalchemy import select, update

from chain.credentials.status_list import LIST_BITS, Bitstring, status_list_credential
from chain.translator.credentials import CredentialPurpose
from services.kit.auth import Principal
from services.kit.errors import NotFound, Unavailable
from services.passport.credentials.domain import IssuedCredential, RevocationReason
from services.passport.credentials.revocation import revoke_rows
from services.passport.credentials.service.core import PLACEHOLDER_DID, CredentialCore, log
from services.passport.credentials.storage import credentials, status_lists

PUBLISH_INTERVAL_S = 30.0


class StatusLists(CredentialCore):
    async def _allocate(self, holder_id: str) -> tuple[str, int]:
        """A free random slot in the holder's status list (a new list when full)."""
        created = None
        async with self.db.transaction() as s:
            row = (
                await s.execute(
                    select(status_lists.c.id, status_lists.c.size)
                    .where(
                        status_lists.c.holder_id == holder_id,
                        status_lists.c.used < status_lists.c.size,
                    )
                    .order_by(status_lists.c.created_at)
                    .limit(1)
                )
            ).first()
            if row is None:
                created = str(uuid.uuid4())
                now = self.clock.now()
                await s.execute(
                    status_lists.insert().values(
                        id=created,
                        holder_id=holder_id,
                        size=LIST_BITS,
                        used=0,
                        revision=1,
                        published_revision=0,
                        document="",
                        created_at=now,
                        updated_at=now,
                    )
                )
                list_id, size = created, LIST_BITS
            else:
                list_id, size = row.id, int(row.size)
            while True:
                index = secrets.randbelow(size)
                taken = (
                    await s.execute(
                        select(credentials.c.id).where(
                            credentials.c.status_list_id == list_id,
                            credentials.c.status_index == index,
                        )
                    )
                ).first()
                if taken is None:
                    break
            await s.execute(
                update(status_lists)
                .where(status_lists.c.id == list_id)
                .values(used=status_lists.c.used + 1)
            )
        if created is not None:
            await self.publish(created)  # verifiers can fetch it before the credential exists
        return list_id, index

    async def publish(self, list_id: str) -> bool:
        """Re-sign and store the list if it changed; False if the translator failed."""
        async with self.db.session() as s:
            row = (await s.execute(select(status_lists).where(status_lists.c.id == list_id))).one()
            revoked = (
                await s.execute(
                    select(credentials.c.status_index).where(
                        credentials.c.status_list_id == list_id,
                        credentials.c.revoked_at.is_not(None),
                    )
                )
            ).scalars()
            indices = list(revoked)
        m = row._mapping
        revision = int(m["revision"])
        if revision <= int(m["published_revision"]):
            return True
        unsigned = status_list_credential(
            self.status_url(list_id),
            PLACEHOLDER_DID,
            Bitstring.with_bits(indices, int(m["size"])),
            self.clock.now(),
        )
        try:
            signed = await self._signer().sign(
                CredentialPurpose.STATUS_LIST, m["holder_id"], "", unsigned
            )
        except Unavailable as exc:
            log.warning("passport.status_list_unpublished", list_id=list_id, error=exc.message)
            return False
        async with self.db.transaction() as s:
            await s.execute(
                update(status_lists)
                .where(
                    status_lists.c.id == list_id,
                    status_lists.c.published_revision < revision,
                )
                .values(
                    document=json.dumps(signed, ensure_ascii=False),
                    published_revision=revision,
                    updated_at=self.clock.now(),
                )
            )
        return True

    async def publish_pending(self) -> int:
        """Publish every list whose revocations are not published yet; returns how many
        are still behind."""
        async with self.db.session() as s:
            ids = (
                await s.execute(
                    select(status_lists.c.id).where(
                        status_lists.c.revision > status_lists.c.published_revision
                    )
                )
            ).scalars()
            pending = list(ids)
        behind = 0
        for list_id in pending:
            if not await self.publish(list_id):
                behind += 1
        return behind

    def notify(self) -> None:
        """Wake the publisher (a revocation was committed)."""
        self._wake.set()

    async def publisher(self, stop: asyncio.Event) -> None:
        """Background job: republish changed status lists, on notice and periodically."""
        while not stop.is_set():
            try:
                await self.publish_pending()
            except Exception:
                log.exception("passport.status_publisher_failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=PUBLISH_INTERVAL_S, return_when="FIRST_COMPLETED")
            for waiter in waiters:
                waiter.cancel()

    async def status_list(self, list_id: str) -> str:
        """The published status list credential (public)."""
        if not list_id or len(list_id) > 36:
            raise NotFound("no such status list")
        async with self.db.session() as s:
            row = (
                await s.execute(select(status_lists.c.document).where(status_lists.c.id == list_id))
            ).first()
        if row is None:
            raise NotFound("no such status list")
        if not row.document:
            raise Unavailable("the status list is not published yet: retry shortly")
        return str(row.document)

    async def revoke(self, caller: Principal, credential_id: str) -> IssuedCredential:
        found = await self._load(credential_id)
        if found is None or caller.user_id not in (found.owner_id, found.holder_id):
            raise NotFound(f"no credential {credential_id}")  # others' do not exist
        if found.revoked:
            return found  # idempotent
        reason = (
            RevocationReason.REVOKED_BY_LEARNER
            if caller.user_id == found.owner_id
            else RevocationReason.REVOKED_BY_ISSUER
        )
        async with self.db.transaction() as s:
            lists = await revoke_rows(s, [found.id], reason, self.clock.now())
        for list_id in lists:
            if not await self.publish(list_id):
                self.notify()  # the publisher job retries
        revoked = await self._load(found.id)
        assert revoked is not None
        return revoked

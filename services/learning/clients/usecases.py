"""LRS client use cases: register (the secret is shown once), list, revoke, authenticate.

Authorization: a signed-in user registers clients for themself (an LRS client or a
webhook source cannot register clients); the owner lists and revokes them (admins may
revoke any).
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass, replace

from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, NotFound, PermissionDenied, Unauthenticated
from services.kit.idempotency import Replayed
from services.kit.paging import Page, page_size
from services.learning.clients.cache import (
    VerifiedCredentials,
    credential_digest,
    verified_credentials,
)
from services.learning.clients.domain import (
    acting_through_credentials,
    check_name,
    client_principal,
)
from services.learning.clients.storage import LrsClientRecord, LrsClientRepository
from services.learning.common.storage import (
    RequestKeys,
    decode_cursor,
    encode_cursor,
    query_scope,
    sha256_hex,
)
from services.learning.common.usecases import MAX_LIST_PAGE, LearningContext


def _already_registered() -> AlreadyExists:
    return AlreadyExists(
        "this request_id already registered a client; its secret cannot be shown again"
    )


@dataclass(frozen=True)
class LrsCredentials:
    client: LrsClientRecord
    secret: str


class LrsClients:
    def __init__(self, ctx: LearningContext, verified: VerifiedCredentials | None = None) -> None:
        self.ctx = ctx
        # Credentials verified in the last second (services.learning.clients.cache).
        self.verified = verified or verified_credentials()

    async def register_lrs_client(
        self, caller: Principal, name: str, request_id: str = ""
    ) -> LrsCredentials:
        if acting_through_credentials(caller):
            raise PermissionDenied("LRS clients cannot register LRS clients")
        label = check_name(name)
        if await self.ctx.replay(caller, "register_lrs_client", request_id) is not None:
            raise _already_registered()
        secret = secrets.token_urlsafe(32)
        now = self.ctx.clock.now()
        record = LrsClientRecord(
            id=str(uuid.uuid4()),
            name=label,
            key="lrs_" + secrets.token_hex(12),
            secret_hash=sha256_hex(secret),
            owner_id=caller.user_id,
            created_at=now,
            revoked_at=None,
        )
        try:
            async with self.ctx.db.transaction() as s:
                if request_id:
                    await RequestKeys(s).claim(
                        caller.user_id, "register_lrs_client", request_id, record.id, now
                    )
                await LrsClientRepository(s).insert(record)
        except Replayed:  # a concurrent retry committed first: as a later retry
            raise _already_registered() from None
        return LrsCredentials(record, secret)

    async def list_lrs_clients(
        self, caller: Principal, requested: int = 0, token: str = ""
    ) -> Page[LrsClientRecord]:
        size = page_size(requested, maximum=MAX_LIST_PAGE)
        scope = query_scope("lrs", caller.user_id)
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            rows, nxt = await LrsClientRepository(s).page_of_owner(caller.user_id, size, cursor)
        return Page(rows, encode_cursor(nxt, scope) if nxt else "")

    async def revoke_lrs_client(self, caller: Principal, client_id: str) -> LrsClientRecord:
        async with self.ctx.db.transaction() as s:
            repo = LrsClientRepository(s)
            row = await repo.get(client_id)
            if row is None:
                raise NotFound(f"LRS client {client_id} not found")
            if row.owner_id != caller.user_id and not caller.is_admin:
                raise PermissionDenied("only the client's owner may revoke it")
            if row.revoked_at is None:
                now = self.ctx.clock.now()
                await repo.set_revoked(client_id, now)
                row = replace(row, revoked_at=now)
        # After the commit: a request verified meanwhile may have cached this client.
        self.verified.clear()
        return row

    async def authenticate_lrs_client(self, key: str, secret: str) -> Principal:
        """The principal an LRS client acts as (its owner, marked `lrs:<client id>`)."""
        digest = credential_digest(key, secret)
        cached = self.verified.get(digest)
        if cached is not None:
            return cached
        generation = self.verified.generation
        async with self.ctx.db.session() as s:
            row = await LrsClientRepository(s).get_by_key(key) if key else None
        expected = row.secret_hash if row is not None else "0" * 64
        matches = hmac.compare_digest(sha256_hex(secret), expected)
        if row is None or not matches:
            raise Unauthenticated("invalid LRS client credentials")
        if row.revoked_at is not None:
            raise Unauthenticated("the LRS client was revoked")
        principal = client_principal(row.owner_id, row.id)
        self.verified.put(digest, principal, generation)
        return principal

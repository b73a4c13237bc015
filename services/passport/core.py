"""What every capability of the passport service stands on: the topics and kinds it
announces, the passport row, share links as stored, a viewer's access (owner, public,
share link) and how a change is announced (``passport.updated``, the version)."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Integer, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chain.verify import (
    AsyncChainReader,
)
from services.kit.auth import Principal
from services.kit.clock import Clock, as_utc
from services.kit.db import Database, is_unique_violation
from services.kit.errors import (
    NotFound,
    Unauthenticated,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue_many
from services.passport.domain import FULL, Disclosure, PrivacySettings, check_id
from services.passport.storage import (
    outbox,
    passports,
    share_links,
)
from services.passport.verification_cache import VerifiedEntries

TOPIC_INTERACTION_RECORDED = "learning.interaction_recorded"
TOPIC_INTERACTION_ANCHORED = "chain.interaction_anchored"
TOPIC_ANCHOR_FAILED = "chain.anchor_failed"
TOPIC_PASSPORT_UPDATED = "passport.updated"
TOPIC_PROFILE_CHANGED = "identity.profile_changed"
CONSUMED_TOPICS = (
    TOPIC_INTERACTION_RECORDED,
    TOPIC_INTERACTION_ANCHORED,
    TOPIC_ANCHOR_FAILED,
    TOPIC_PROFILE_CHANGED,
)
MAX_DISPLAY_NAME = 200

ENTRY_ADDED = "entry_added"
ENTRY_ANCHOR_CHANGED = "entry_anchor_changed"
PROFILE_UPDATED = "profile_updated"
PRIVACY_UPDATED = "privacy_updated"

MAX_EXPORT_ENTRIES = 10_000
TOKEN_BYTES = 32


ChainReaderFactory = Callable[[], AbstractAsyncContextManager[AsyncChainReader]]


class ProofSource(Protocol):
    """Where a missing inclusion proof comes from (the translator's GetInclusionProof)."""

    async def siblings(self, domain: str, record_id: str) -> list[str]: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PassportRow:
    id: str
    owner_id: str
    public_key_hex: str
    privacy: PrivacySettings
    profile: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int = 0

    @classmethod
    def of(cls, row: Any) -> PassportRow:
        m = row._mapping
        return cls(
            m["id"],
            m["owner_id"],
            m["public_key_hex"] or "",
            PrivacySettings.from_json(m["privacy"]),
            m["profile"],
            as_utc(m["created_at"]),
            as_utc(m["updated_at"]),
            int(m["version"]),
        )


@dataclass(frozen=True, slots=True)
class ShareLink:
    id: str
    passport_id: str
    owner_id: str
    label: str
    scope: Disclosure
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    view_count: int

    @classmethod
    def of(cls, row: Any) -> ShareLink:
        m = row._mapping
        return cls(
            m["id"],
            m["passport_id"],
            m["owner_id"],
            m["label"],
            Disclosure.from_json(m["scope"]),
            as_utc(m["created_at"]),
            None if m["expires_at"] is None else as_utc(m["expires_at"]),
            None if m["revoked_at"] is None else as_utc(m["revoked_at"]),
            int(m["view_count"]),
        )

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Access:
    """A viewer's access to one passport."""

    passport: PassportRow
    disclosure: Disclosure
    is_owner: bool
    link: ShareLink | None = None


_BUMP_VERSION = (
    update(passports)
    .where(passports.c.id == bindparam("pid"))
    .values(
        updated_at=bindparam("now"), version=passports.c.version + bindparam("n", type_=Integer)
    )
)


class PassportCore:
    """The service's state and the access rules every capability uses."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        share_base_url: str = "http://127.0.0.1:8000",
        chain_reader: ChainReaderFactory | None = None,
        proof_source: ProofSource | None = None,
        verify_in_thread: bool = False,
    ) -> None:
        self.db = database
        self.clock = clock
        self.share_base_url = share_base_url.rstrip("/")
        self.chain_reader = chain_reader
        self.proof_source = proof_source
        # Verification (signatures, Merkle proofs: CPU) runs on a worker thread with its
        # own event loop when the reader allows it (the production one opens its own
        # connection per use), so the process's loop keeps serving other requests.
        self.verify_in_thread = verify_in_thread
        self.verified = VerifiedEntries()
        self.on_commit: list[Callable[[], None]] = []

    def _notify(self) -> None:
        for callback in self.on_commit:
            callback()

    async def _announce(
        self, s: AsyncSession, passport: PassportRow, kind: str, statement_id: str = ""
    ) -> None:
        await self._announce_many(s, [(passport, kind, statement_id)])

    async def _announce_many(
        self, s: AsyncSession, changes: Sequence[tuple[PassportRow, str, str]]
    ) -> None:
        """Each change (passport, kind, statement id) moves its passport to a new version
        and is announced (`passport.updated`), in order: one UPDATE a passport (by the
        number of its changes) and one outbox INSERT for them all."""
        if not changes:
            return
        now = self.clock.now()
        counts = Counter(passport.id for passport, _, _ in changes)
        # Rows locked in one order (by id) whatever the page's order: two replicas
        # consuming pages that touch the same passports then queue instead of deadlocking.
        await s.execute(
            _BUMP_VERSION, [{"pid": pid, "n": counts[pid], "now": now} for pid in sorted(counts)]
        )
        await enqueue_many(
            s,
            outbox,
            [
                Event(
                    TOPIC_PASSPORT_UPDATED,
                    key=passport.id,
                    payload={
                        "passport_id": passport.id,
                        "owner_id": passport.owner_id,
                        "kind": kind,
                        "statement_id": statement_id,
                    },
                    occurred_at=now,
                )
                for passport, kind, statement_id in changes
            ],
        )

    async def _ensure_passport(self, s: AsyncSession, owner_id: str) -> PassportRow:
        row = (await s.execute(select(passports).where(passports.c.owner_id == owner_id))).first()
        if row is not None:
            return PassportRow.of(row)
        now = self.clock.now()
        values = {
            "id": str(uuid.uuid4()),
            "owner_id": owner_id,
            "public_key_hex": None,
            "privacy": PrivacySettings().to_json(),
            "profile": None,
            "created_at": now,
            "updated_at": now,
        }
        await s.execute(passports.insert().values(**values))
        return PassportRow.of(
            (await s.execute(select(passports).where(passports.c.id == values["id"]))).one()
        )

    # == access ==========================================================================

    async def _passport_row(self, where: Any) -> Any:
        """One passport row, on a bare connection: one statement, so no snapshot (every
        read of the passport, GetPassportVersion's on each served query among them)."""
        async with self.db.read(snapshot=False) as conn:
            return (await conn.execute(select(passports).where(where))).first()

    async def own_passport(self, caller: Principal) -> PassportRow:
        row = await self._passport_row(passports.c.owner_id == caller.user_id)
        if row is not None:
            return PassportRow.of(row)
        try:
            async with self.db.transaction() as s:
                return await self._ensure_passport(s, caller.user_id)
        except IntegrityError as exc:  # created concurrently
            if not is_unique_violation(exc):
                raise
            async with self.db.session() as s:
                return PassportRow.of(
                    (
                        await s.execute(
                            select(passports).where(passports.c.owner_id == caller.user_id)
                        )
                    ).one()
                )

    async def access(
        self, viewer: Principal | None, passport_id: str = "", share_token: str = ""
    ) -> Access:
        """Resolve what ``viewer`` may see (see the module docstring)."""
        if share_token:
            return await self.share_access(share_token, count_view=False)
        passport_id = check_id(passport_id, "passport_id", required=False)
        if not passport_id:
            if viewer is None:
                raise Unauthenticated("sign in, or name a public passport or a share token")
            return Access(await self.own_passport(viewer), FULL, True)
        row = await self._passport_row(passports.c.id == passport_id)
        if row is None:
            raise NotFound(f"no public passport {passport_id}")
        passport = PassportRow.of(row)
        if viewer is not None and viewer.user_id == passport.owner_id:
            return Access(passport, FULL, True)
        if not passport.privacy.public:
            raise NotFound(f"no public passport {passport_id}")
        return Access(passport, passport.privacy.public_disclosure, False)

    async def share_access(self, token: str, *, count_view: bool) -> Access:
        if not token or len(token) > 200:
            raise NotFound("no such share link")
        digest = token_hash(token)
        now = self.clock.now()
        async with self.db.transaction() as s:
            row = (
                await s.execute(select(share_links).where(share_links.c.token_sha256 == digest))
            ).first()
            if row is None:
                raise NotFound("no such share link")
            link = ShareLink.of(row)
            if not link.active(now):
                raise NotFound("no such share link")  # revoked and expired look the same
            if count_view:
                await s.execute(
                    update(share_links)
                    .where(share_links.c.id == link.id)
                    .values(view_count=share_links.c.view_count + 1)
                )
            prow = (
                await s.execute(select(passports).where(passports.c.id == link.passport_id))
            ).one()
        passport = PassportRow.of(prow)
        # A link never reveals more than the owner's current share-link disclosure.
        scope = link.scope.narrow(passport.privacy.share_link_disclosure)
        return Access(passport, scope, False, link)

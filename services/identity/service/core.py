"""The plumbing every identity use case shares (see `IdentityCore`), and what the
transport tells about a caller (`ClientInfo`) and a ceremony returns (`Started`, `SignedIn`).

Transactions: a step whose effect must survive the request failing (consuming a
ceremony's challenge, counting a failed login, spending a rate-limit token, revoking a
session on refresh-token reuse) commits in its own transaction before the error is raised.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from services.identity.domain import (
    Ceremony,
    CeremonyKind,
    Credential,
    LockoutPolicy,
    Session,
    TokenPair,
    User,
    hash_secret,
)
from services.identity.humanity_storage import outbox
from services.identity.relying_party import RelyingParty, VerifiedCredential
from services.identity.settings import IdentitySettings
from services.identity.storage import IdentityRepository, new_id
from services.kit.auth import TokenIssuer
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation, violated_constraint
from services.kit.errors import AlreadyExists, FailedPrecondition, RateLimited, ValidationError
from services.kit.events.outbox import enqueue
from services.kit.fresh import FreshFor
from services.kit.logging import get_logger
from services.kit.paging import page_size
from services.kit.revocation import session_revoked_event

log = get_logger(__name__)
REVOCATION_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True)
class ClientInfo:
    """What the transport knows about the caller (for rate limits and session listing)."""

    address: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class Started:
    """A ceremony started: its handle and the WebAuthn options JSON for the client."""

    ceremony_id: str
    options_json: str


@dataclass(frozen=True)
class SignedIn:
    user: User
    tokens: TokenPair


class IdentityCore:
    """What every identity use case runs on: the database, settings, clock, token issuer,
    relying party and lockout policy, the read caches, transactions, rate limits, the
    WebAuthn ceremonies and housekeeping."""

    def __init__(
        self,
        db: Database,
        settings: IdentitySettings,
        clock: Clock,
        token_issuer: TokenIssuer,
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.tokens = token_issuer
        self.on_commit = on_commit  # nudges the outbox relay after an event is committed
        self.rp = RelyingParty(settings)
        self.lockout = LockoutPolicy(
            threshold=settings.lockout_threshold,
            window=settings.lockout_window,
            duration=settings.lockout_duration,
        )
        # What GetUser and the session check read on every call, kept for a moment
        # (services.kit.fresh). Every write through `_write` invalidates the users and
        # sessions it touched once committed, so this process sees its writes at once;
        # another process (worker, replica, operator command) within FRESH_FOR_S (1 s),
        # and of revoked sessions also through `identity.session_revoked`. Only active
        # sessions and existing users are kept; a cached session is checked against the
        # caller's user and its own expiry, a cached user filtered per viewer as a fresh
        # one is (messages.user_to_pb).
        self.active_sessions: FreshFor[str, Session] = FreshFor()
        self.users: FreshFor[str, User] = FreshFor()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[IdentityRepository]:
        repo: IdentityRepository | None = None
        try:
            async with self.db.transaction() as session:
                repo = IdentityRepository(session, self.db.dialect)
                yield repo
        finally:  # committed (or rolled back: forgetting is harmless then)
            if repo is not None:
                self.forget_written(repo)

    def forget_written(self, repo: IdentityRepository) -> None:
        """Drop from the read caches what `repo`'s transaction wrote; call it once the
        transaction has ended (writes outside `_write`, e.g. proof of humanity's)."""
        if repo.written_users:
            self.users.invalidate(repo.written_users)
        if repo.written_sessions:
            self.active_sessions.invalidate(repo.written_sessions)

    @asynccontextmanager
    async def _read(self, *, snapshot: bool = True) -> AsyncIterator[IdentityRepository]:
        """A read on a bare connection (the repository runs Core statements only, so the ORM
        session adds nothing but overhead). Its statements see one snapshot unless
        `snapshot=False`, for reads whose statements need no consistency between them
        (see `Database.read`)."""
        async with self.db.read(snapshot=snapshot) as connection:
            yield IdentityRepository(connection, self.db.dialect)

    async def _revoke(
        self, repo: IdentityRepository, session: Session, now: datetime, reason: str
    ) -> bool:
        """Revoke `session` in the caller's transaction and announce it to the other
        services (they refuse its access tokens from then on). False if already revoked."""
        if not await repo.revoke_session(session.id, now, reason):
            return False
        # Every access token of the session has expired by then; with margin for skew.
        valid_until = now + self.settings.access_token_ttl + REVOCATION_MARGIN
        event = session_revoked_event(session.id, session.user_id, reason, valid_until)
        await enqueue(repo.s, outbox, event)
        return True

    def _committed(self, announced: bool) -> None:
        if announced and self.on_commit is not None:
            self.on_commit()

    async def _rate_limit(self, client: ClientInfo, email: str | None = None) -> None:
        """Spend one token per key (caller address, email); RESOURCE_EXHAUSTED if empty."""
        keys = []
        if client.address:
            keys.append(f"addr:{client.address}")
        if email:
            keys.append(f"email:{email}")
        if not keys:
            return
        limit = self.settings.ceremony_rate_limit
        now = self.clock.now()
        wait = 0.0
        async with self._write() as repo:
            for key in keys:
                wait = max(
                    wait,
                    await repo.take_rate_token(
                        hash_secret(key),
                        now,
                        capacity=limit.capacity,
                        refill_per_second=limit.refill_per_second,
                    ),
                )
        if wait > 0:
            raise RateLimited(f"too many attempts; retry in {math.ceil(wait)} s")

    def _locked_error(self, user: User) -> FailedPrecondition:
        assert user.locked_until is not None
        until = user.locked_until.isoformat().replace("+00:00", "Z")
        return FailedPrecondition(
            f"account locked until {until} after {self.lockout.threshold} failed logins"
        )

    async def _new_ceremony(self, ceremony: Ceremony) -> None:
        async with self._write() as repo:
            await repo.add_ceremony(ceremony)

    async def _take_ceremony(
        self, ceremony_id: str, kinds: tuple[CeremonyKind, ...], field_path: str, label: str
    ) -> Ceremony:
        """Consume a pending ceremony: it is single use, even when the finish then fails."""
        if not ceremony_id:
            raise ValidationError(field_path, "is required")
        if not is_uuid(ceremony_id):
            raise ValidationError(field_path, f"unknown {label} ceremony")
        now = self.clock.now()
        async with self._write() as repo:
            ceremony = await repo.get_ceremony(ceremony_id)
            if ceremony is None or ceremony.kind not in kinds:
                error: Exception | None = ValidationError(field_path, f"unknown {label} ceremony")
            elif ceremony.consumed_at is not None:
                error = FailedPrecondition(f"{label} challenge was already used")
            elif now >= ceremony.expires_at:
                error = FailedPrecondition(f"{label} challenge expired")
            elif not await repo.consume_ceremony(ceremony_id, now):
                error = FailedPrecondition(f"{label} challenge was already used")
            else:
                error = None
        if error is not None:
            raise error
        assert ceremony is not None
        return ceremony

    def _ceremony(self, kind: CeremonyKind, challenge: bytes, **fields: object) -> Ceremony:
        now = self.clock.now()
        return Ceremony(
            id=new_id(),
            kind=kind,
            challenge_hash=hash_secret(challenge),
            created_at=now,
            expires_at=now + self.settings.challenge_ttl,
            **fields,  # type: ignore[arg-type]
        )

    async def purge_expired(self) -> int:
        now = self.clock.now()
        async with self._write() as repo:
            return await repo.purge_expired(now, self.lockout.window_start(now))

    def _page_size(self, requested: int) -> int:
        return page_size(
            requested,
            default=self.settings.default_page_size,
            maximum=self.settings.max_page_size,
        )


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def new_credential(
    user_id: str, verified: VerifiedCredential, name: str, now: datetime
) -> Credential:
    return Credential(
        id=new_id(),
        user_id=user_id,
        credential_id=verified.credential_id,
        public_key=verified.public_key,
        sign_count=verified.sign_count,
        transports=verified.transports,
        aaguid=verified.aaguid,
        backed_up=verified.backed_up,
        name=name,
        attestation_format=verified.attestation_format,
        created_at=now,
    )


def conflict(exc: IntegrityError) -> Exception:
    if not is_unique_violation(exc):
        return exc
    constraint = violated_constraint(exc) or ""
    if "email" in constraint:
        return AlreadyExists("an account with this email already exists")
    if "credential_id" in constraint:
        return AlreadyExists("this passkey is already registered")
    return AlreadyExists("conflicting identity record")

"""The identity application service: the use cases behind every identity RPC.

It orchestrates the pure domain (`domain`, `relying_party`), the repository (`storage`)
and the token issuer. The gRPC servicer only decodes requests, calls these methods with
the caller's Principal, and encodes the results.

Transactions: a step whose effect must survive the request failing (consuming a
ceremony's challenge, counting a failed login, spending a rate-limit token, revoking a
session on refresh-token reuse) commits in its own transaction before the error is raised.
"""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NoReturn, TypeVar

from sqlalchemy.exc import IntegrityError

from services.identity.domain import (
    PAGE_TOKENS,
    Ceremony,
    CeremonyKind,
    Credential,
    LockoutPolicy,
    Profile,
    ProfileUpdate,
    Role,
    Session,
    TokenPair,
    User,
    hash_secret,
    new_secret,
    normalize_email,
    normalize_roles,
    validate_credential_name,
    validate_display_name,
)
from services.identity.humanity_storage import outbox
from services.identity.relying_party import LoginRejected, RelyingParty, VerifiedCredential
from services.identity.settings import IdentitySettings
from services.identity.storage import IdentityRepository, new_id
from services.kit.auth import Principal, TokenIssuer
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation, violated_constraint
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationError,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.fresh import FreshFor
from services.kit.logging import get_logger
from services.kit.paging import Page, page_size
from services.kit.revocation import session_revoked_event

log = get_logger(__name__)
T = TypeVar("T")

USER_HANDLE_BYTES = 32
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


class IdentityService:
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
        # one is (servicer.user_to_pb).
        self.active_sessions: FreshFor[str, Session] = FreshFor()
        self.users: FreshFor[str, User] = FreshFor()

    # -- plumbing -------------------------------------------------------------------------

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

    # -- ceremonies -----------------------------------------------------------------------

    async def _new_ceremony(self, ceremony: Ceremony) -> None:
        async with self._write() as repo:
            await repo.add_ceremony(ceremony)

    async def _take_ceremony(
        self, ceremony_id: str, kinds: tuple[CeremonyKind, ...], field_path: str, label: str
    ) -> Ceremony:
        """Consume a pending ceremony: it is single use, even when the finish then fails."""
        if not ceremony_id:
            raise ValidationError(field_path, "is required")
        if not _is_uuid(ceremony_id):
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

    # -- registration ---------------------------------------------------------------------

    async def begin_registration(
        self, email: str, display_name: str, client: ClientInfo
    ) -> Started:
        email = normalize_email(email)
        display_name = validate_display_name(display_name)
        await self._rate_limit(client, email)
        async with self._read() as repo:
            if await repo.get_user_by_email(email) is not None:
                raise AlreadyExists("an account with this email already exists")
        user_handle = secrets.token_bytes(USER_HANDLE_BYTES)
        started = self.rp.registration_options(
            user_handle=user_handle, user_name=email, display_name=display_name
        )
        ceremony = self._ceremony(
            CeremonyKind.REGISTRATION,
            started.challenge,
            email=email,
            display_name=display_name,
            user_handle=user_handle,
        )
        await self._new_ceremony(ceremony)
        return Started(ceremony.id, started.options_json)

    async def finish_registration(
        self,
        registration_id: str,
        credential_json: str,
        credential_name: str,
        client: ClientInfo,
    ) -> SignedIn:
        name = validate_credential_name(credential_name)
        await self._rate_limit(client)
        ceremony = await self._take_ceremony(
            registration_id, (CeremonyKind.REGISTRATION,), "registration_id", "registration"
        )
        verified = self.rp.verify_registration(credential_json, ceremony.challenge_hash)
        now = self.clock.now()
        assert ceremony.email and ceremony.display_name and ceremony.user_handle
        user = User(
            id=new_id(),
            email=ceremony.email,
            display_name=ceremony.display_name,
            roles=frozenset({Role.LEARNER}),
            profile=Profile(),
            human_verified=False,
            user_handle=ceremony.user_handle,
            created_at=now,
            updated_at=now,
        )
        credential = _credential(user.id, verified, name, now)
        try:
            async with self._write() as repo:
                await repo.add_user(user)
                await repo.add_credential(credential)
                tokens = await self._start_session(repo, user, client)
                await enqueue(repo.s, outbox, profile_changed_event(user))
        except IntegrityError as exc:
            raise _conflict(exc) from exc
        self._committed(True)
        log.info("identity.user_registered", user_id=user.id, session_id=tokens.session_id)
        return SignedIn(user, tokens)

    # -- login ----------------------------------------------------------------------------

    async def begin_login(self, email: str, client: ClientInfo) -> Started:
        user: User | None = None
        allow: list[tuple[bytes, tuple[str, ...]]] = []
        if email.strip():
            normalized = normalize_email(email)
            await self._rate_limit(client, normalized)
            async with self._read() as repo:
                user = await repo.get_user_by_email(normalized)
                if user is None:
                    raise NotFound("unknown user: no account with this email")
                if user.is_locked(self.clock.now()):
                    raise self._locked_error(user)
                allow = [
                    (c.credential_id, c.transports) for c in await repo.list_credentials(user.id)
                ]
        else:
            await self._rate_limit(client)
        started = self.rp.authentication_options(allow)
        ceremony = self._ceremony(
            CeremonyKind.LOGIN, started.challenge, user_id=user.id if user else None
        )
        await self._new_ceremony(ceremony)
        return Started(ceremony.id, started.options_json)

    async def finish_login(
        self, login_id: str, credential_json: str, client: ClientInfo
    ) -> SignedIn:
        await self._rate_limit(client)
        ceremony = await self._take_ceremony(login_id, (CeremonyKind.LOGIN,), "login_id", "login")
        assertion = self.rp.parse_assertion(credential_json)
        async with self._read() as repo:
            credential = await repo.get_credential(assertion.credential_id)
            user = await repo.get_user(credential.user_id) if credential else None
        if credential is None or user is None:
            await self._login_failed(ceremony.user_id, "unknown credential")
        assert credential is not None and user is not None
        if ceremony.user_id is not None and credential.user_id != ceremony.user_id:
            await self._login_failed(ceremony.user_id, "credential is not allowed for this login")
        if assertion.user_handle is not None and assertion.user_handle != user.user_handle:
            await self._login_failed(user.id, "user handle does not match the credential")
        if user.is_locked(self.clock.now()):
            raise self._locked_error(user)
        try:
            verified = self.rp.verify_assertion(
                assertion,
                challenge_hash=ceremony.challenge_hash,
                public_key=credential.public_key,
                sign_count=credential.sign_count,
            )
        except LoginRejected as rejected:
            await self._login_failed(user.id, rejected.reason)
            raise
        now = self.clock.now()
        async with self._write() as repo:
            used = await repo.record_credential_use(
                credential.id,
                old_sign_count=credential.sign_count,
                new_sign_count=verified.new_sign_count,
                backed_up=verified.backed_up,
                now=now,
            )
            if used:
                await repo.clear_auth_failures(user.id)
                if user.locked_until is not None:
                    await repo.set_locked_until(user.id, None)
                    user = replace(user, locked_until=None)
                tokens = await self._start_session(repo, user, client)
        if not used:
            # Another assertion with the same sign count won the race: one is a clone.
            await self._login_failed(
                user.id, "sign count did not increase (possible cloned authenticator)"
            )
        log.info("identity.login", user_id=user.id, session_id=tokens.session_id)
        return SignedIn(user, tokens)

    async def _login_failed(self, user_id: str | None, reason: str) -> NoReturn:
        """Count a failed login against the account (locking it at the threshold), then
        raise the LoginRejected naming the reason."""
        if user_id is not None:
            now = self.clock.now()
            async with self._write() as repo:
                await repo.record_auth_failure(user_id, now, reason)
                failures = await repo.count_auth_failures(user_id, self.lockout.window_start(now))
                until = self.lockout.lock_until(failures, now)
                if until is not None:
                    await repo.set_locked_until(user_id, until)
            if until is not None:
                log.warning("identity.account_locked", user_id=user_id, failures=failures)
        raise LoginRejected(reason)

    # -- sessions and tokens --------------------------------------------------------------

    async def _start_session(
        self, repo: IdentityRepository, user: User, client: ClientInfo
    ) -> TokenPair:
        now = self.clock.now()
        session = Session(
            id=new_id(),
            user_id=user.id,
            created_at=now,
            last_used_at=now,
            expires_at=now + self.settings.refresh_token_ttl,
            user_agent=client.user_agent[:512],
            ip_address=client.address[:64],
        )
        await repo.add_session(session)
        return await self._issue(repo, user, session.id, now)

    async def _issue(
        self, repo: IdentityRepository, user: User, session_id: str, now: datetime
    ) -> TokenPair:
        refresh = new_secret()
        refresh_expires = now + self.settings.refresh_token_ttl
        await repo.add_refresh_token(hash_secret(refresh), session_id, now, refresh_expires)
        access = self.tokens.issue(
            Principal(
                user_id=user.id,
                roles=frozenset(str(r) for r in user.roles),
                session_id=session_id,
            )
        )
        return TokenPair(
            access_token=access.token,
            access_expires_at=access.expires_at,
            refresh_token=refresh,
            refresh_expires_at=refresh_expires,
            session_id=session_id,
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token. Presenting a retired one revokes its whole session."""
        if not refresh_token:
            raise ValidationError("refresh_token", "is required")
        token_hash = hash_secret(refresh_token)
        now = self.clock.now()
        error: Exception | None = None
        tokens: TokenPair | None = None
        revoked = False
        async with self._write() as repo:
            record = await repo.get_refresh_token(token_hash)
            session = await repo.get_session(record.session_id) if record else None
            user = await repo.get_user(session.user_id) if session else None
            if record is None or session is None or user is None:
                error = Unauthenticated("unknown refresh token")
            elif session.revoked_at is not None:
                error = Unauthenticated("session has been revoked")
            elif record.used_at is None and (now >= record.expires_at or now >= session.expires_at):
                error = Unauthenticated("refresh token expired")
            elif record.used_at is not None or not await repo.retire_refresh_token(token_hash, now):
                # A retired token came back: the holder of the newest one may be a thief
                # (or the victim). Revoke the whole family; the user logs in again.
                revoked = await self._revoke(repo, session, now, "refresh_token_reuse")
                log.warning("identity.refresh_token_reuse", session_id=session.id)
                error = Unauthenticated(
                    "refresh token reuse detected: the session has been revoked"
                )
            else:
                await repo.touch_session(session.id, now, now + self.settings.refresh_token_ttl)
                tokens = await self._issue(repo, user, session.id, now)
        self._committed(revoked)
        if error is not None:
            raise error
        assert tokens is not None
        return tokens

    async def require_active_session(self, principal: Principal) -> None:
        """Access tokens outlive nothing: the identity service refuses a token whose
        session was revoked or expired, reading the session row (other services learn of
        revocations from `identity.session_revoked`, see `services.kit.revocation`); a
        session found active is trusted for up to `services.kit.fresh.FRESH_FOR_S` (a revocation
        in this process is seen at once, one in another process within that bound)."""
        if not principal.session_id or self._session_known_active(principal):
            return
        async with self._read(snapshot=False) as repo:  # one statement
            await self._check_session(repo, principal)

    def _session_known_active(self, principal: Principal) -> bool:
        session = self.active_sessions.get(principal.session_id)
        return (
            session is not None
            and session.user_id == principal.user_id
            and self.clock.now() < session.expires_at
        )

    async def _check_session(self, repo: IdentityRepository, principal: Principal) -> None:
        """`require_active_session` on the caller's connection: the session row, read
        fresh (the caller already found it missing from the cache or stale)."""
        if not principal.session_id:
            return
        generation = self.active_sessions.generation
        session = await repo.get_session(principal.session_id)
        if session is None or session.user_id != principal.user_id:
            raise Unauthenticated("unknown session")
        if session.revoked_at is not None:
            raise Unauthenticated("session has been revoked")
        if self.clock.now() >= session.expires_at:
            raise Unauthenticated("session expired")
        self.active_sessions.put(session.id, session, generation)

    async def _own_session(
        self, repo: IdentityRepository, principal: Principal, session_id: str
    ) -> Session:
        session = await repo.get_session(session_id) if _is_uuid(session_id) else None
        if session is None or (session.user_id != principal.user_id and not principal.is_admin):
            raise NotFound("session not found")
        return session

    async def logout(
        self, principal: Principal, *, refresh_token: str = "", session_id: str = ""
    ) -> None:
        now = self.clock.now()
        async with self._write() as repo:
            if refresh_token:
                record = await repo.get_refresh_token(hash_secret(refresh_token))
                if record is None:
                    raise NotFound("session not found")
                session_id = record.session_id
            elif not session_id:
                raise ValidationError("target", "refresh_token or session_id is required")
            session = await self._own_session(repo, principal, session_id)
            revoked = await self._revoke(repo, session, now, "logout")
        self._committed(revoked)

    async def revoke_session(self, principal: Principal, session_id: str) -> None:
        if not session_id:
            raise ValidationError("session_id", "is required")
        now = self.clock.now()
        async with self._write() as repo:
            session = await self._own_session(repo, principal, session_id)
            revoked = await self._revoke(repo, session, now, "revoked")
        self._committed(revoked)

    async def list_sessions(
        self, principal: Principal, requested_size: int, page_token: str
    ) -> Page[Session]:
        limit = self._page_size(requested_size)
        offset = PAGE_TOKENS.decode(page_token)
        async with self._read() as repo:
            found = await repo.list_active_sessions(
                principal.user_id, self.clock.now(), offset=offset, limit=limit + 1
            )
        return PAGE_TOKENS.page(found, offset, limit)

    # -- users ----------------------------------------------------------------------------

    async def get_user(
        self, principal: Principal, user_id: str, *, check_session: bool = False
    ) -> User:
        """The user `user_id`. With `check_session`, first `require_active_session(principal)`
        on the same connection: one connection checkout for the whole authenticated read
        (the servicer's `_caller()` + `get_user` take two), none when both the session and
        the user are in the read caches."""
        if not user_id and not check_session:
            raise ValidationError("user_id", "is required")
        session_known = not check_session or self._session_known_active(principal)
        if session_known:
            if not user_id:
                raise ValidationError("user_id", "is required")
            cached = self.users.get(user_id)
            if cached is not None:
                return cached
        generation = self.users.generation
        # One statement for the user and its roles, and with `check_session` one before it
        # for the session: each is consistent on its own, so no snapshot across them.
        async with self._read(snapshot=False) as repo:
            if not session_known:
                await self._check_session(repo, principal)
                if not user_id:
                    raise ValidationError("user_id", "is required")
            user = await repo.get_user(user_id) if _is_uuid(user_id) else None
        if user is None:
            raise NotFound("user not found")
        self.users.put(user.id, user, generation)
        return user

    async def list_users(
        self,
        principal: Principal,
        *,
        query: str,
        role: Role | None,
        requested_size: int,
        page_token: str,
    ) -> Page[User]:
        principal.require_role(Role.ADMIN)
        limit = self._page_size(requested_size)
        offset = PAGE_TOKENS.decode(page_token)
        async with self._read() as repo:
            found = await repo.list_users(
                query=query.strip(), role=role, offset=offset, limit=limit + 1
            )
        return PAGE_TOKENS.page(found, offset, limit)

    async def update_profile(
        self, principal: Principal, user_id: str, update: ProfileUpdate
    ) -> User:
        target = user_id or principal.user_id
        principal.require_self_or_admin(target)
        update = update.validated()
        now = self.clock.now()
        async with self._write() as repo:
            user = await repo.get_user(target, for_update=True) if _is_uuid(target) else None
            if user is None:
                raise NotFound("user not found")
            if update.empty:
                return user
            renamed = update.display_name is not None and update.display_name != user.display_name
            user = user.apply(update, now)
            await repo.save_profile(user)
            if renamed:
                await enqueue(repo.s, outbox, profile_changed_event(user))
        self._committed(renamed)
        return user

    async def set_roles(self, principal: Principal, user_id: str, roles: list[str]) -> User:
        principal.require_role(Role.ADMIN)
        if not user_id:
            raise ValidationError("user_id", "is required")
        new_roles = normalize_roles(roles)
        if user_id == principal.user_id and Role.ADMIN not in new_roles:
            raise FailedPrecondition("an admin cannot remove their own admin role")
        now = self.clock.now()
        async with self._write() as repo:
            user = await repo.get_user(user_id, for_update=True) if _is_uuid(user_id) else None
            if user is None:
                raise NotFound("user not found")
            await repo.set_roles(user_id, new_roles, now)
            updated = await repo.get_user(user_id)
        assert updated is not None
        log.info("identity.roles_set", user_id=user_id, roles=sorted(new_roles))
        return updated

    async def grant_admin(self, email: str) -> User:
        """Bootstrap: give the account with `email` the admin role (operator command line,
        never an RPC: the first admin cannot be made by another admin)."""
        user = await grant_admin(self.db, self.clock, email)
        self.users.invalidate([user.id])
        return user

    async def set_human_verified(self, user_id: str, verified: bool = True) -> None:
        """Called by the proof-of-humanity enrollment once its commitment is registered."""
        async with self._write() as repo:
            if not await repo.set_human_verified(user_id, verified, self.clock.now()):
                raise NotFound("user not found")

    # -- credentials ----------------------------------------------------------------------

    async def begin_add_credential(self, principal: Principal, client: ClientInfo) -> Started:
        await self._rate_limit(client)
        async with self._read() as repo:
            user = await repo.get_user(principal.user_id)
            if user is None:
                raise NotFound("user not found")
            existing = [
                (c.credential_id, c.transports) for c in await repo.list_credentials(user.id)
            ]
        started = self.rp.registration_options(
            user_handle=user.user_handle,
            user_name=user.email,
            display_name=user.display_name,
            exclude_credentials=existing,
        )
        ceremony = self._ceremony(
            CeremonyKind.ADD_CREDENTIAL,
            started.challenge,
            user_id=user.id,
            user_handle=user.user_handle,
        )
        await self._new_ceremony(ceremony)
        return Started(ceremony.id, started.options_json)

    async def finish_add_credential(
        self,
        principal: Principal,
        registration_id: str,
        credential_json: str,
        credential_name: str,
        client: ClientInfo,
    ) -> Credential:
        name = validate_credential_name(credential_name)
        await self._rate_limit(client)
        ceremony = await self._peek_own_ceremony(principal, registration_id)
        ceremony = await self._take_ceremony(
            ceremony.id, (CeremonyKind.ADD_CREDENTIAL,), "registration_id", "registration"
        )
        verified = self.rp.verify_registration(credential_json, ceremony.challenge_hash)
        credential = _credential(principal.user_id, verified, name, self.clock.now())
        try:
            async with self._write() as repo:
                await repo.add_credential(credential)
        except IntegrityError as exc:
            raise _conflict(exc) from exc
        return credential

    async def _peek_own_ceremony(self, principal: Principal, registration_id: str) -> Ceremony:
        """An add-credential ceremony is only usable by the user who started it."""
        if not registration_id:
            raise ValidationError("registration_id", "is required")
        async with self._read() as repo:
            ceremony = (
                await repo.get_ceremony(registration_id) if _is_uuid(registration_id) else None
            )
        if ceremony is None or ceremony.user_id != principal.user_id:
            raise ValidationError("registration_id", "unknown registration ceremony")
        return ceremony

    async def list_credentials(
        self, principal: Principal, requested_size: int, page_token: str
    ) -> Page[Credential]:
        limit = self._page_size(requested_size)
        offset = PAGE_TOKENS.decode(page_token)
        async with self._read() as repo:
            found = await repo.list_credentials(principal.user_id, offset=offset, limit=limit + 1)
        return PAGE_TOKENS.page(found, offset, limit)

    async def remove_credential(self, principal: Principal, credential_id: str) -> None:
        if not credential_id:
            raise ValidationError("credential_id", "is required")
        async with self._write() as repo:
            owned = {c.id for c in await repo.list_credentials(principal.user_id)}
            if credential_id not in owned:
                raise NotFound("credential not found")
            if len(owned) == 1:
                raise FailedPrecondition(
                    "cannot remove the last passkey: the account would become unreachable"
                )
            await repo.delete_credential(principal.user_id, credential_id)

    # -- housekeeping ---------------------------------------------------------------------

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


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def _credential(user_id: str, verified: VerifiedCredential, name: str, now: datetime) -> Credential:
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


def _conflict(exc: IntegrityError) -> Exception:
    if not is_unique_violation(exc):
        return exc
    constraint = violated_constraint(exc) or ""
    if "email" in constraint:
        return AlreadyExists("an account with this email already exists")
    if "credential_id" in constraint:
        return AlreadyExists("this passkey is already registered")
    return AlreadyExists("conflicting identity record")


TOPIC_PROFILE_CHANGED = "identity.profile_changed"


def profile_changed_event(user: User) -> Event:
    """Announced at sign-up and on every rename: the passport shows the display name to
    those its owner lets see their identity."""
    return Event(
        TOPIC_PROFILE_CHANGED,
        key=user.id,
        payload={"user_id": user.id, "display_name": user.display_name},
    )


async def grant_admin(db: Database, clock: Clock, email: str) -> User:
    """Give the account with `email` the admin role, straight in the database: for the
    operator command line on the server's own machine (`keiko admin bootstrap`), whose
    access to the database is its authority. Never reachable over the network."""
    normalized = normalize_email(email)
    async with db.transaction() as session:
        repo = IdentityRepository(session, db.dialect)
        user = await repo.get_user_by_email(normalized)
        if user is None:
            raise NotFound("unknown user: no account with this email")
        await repo.set_roles(user.id, user.roles | {Role.ADMIN}, clock.now())
        updated = await repo.get_user(user.id)
    assert updated is not None
    log.info("identity.admin_granted", user_id=user.id)
    return updated


async def list_admins(db: Database, limit: int = 50) -> list[User]:
    """The accounts holding the admin role (operator command line)."""
    async with db.read() as connection:
        repo = IdentityRepository(connection, db.dialect)
        return await repo.list_users(query="", role=Role.ADMIN, offset=0, limit=limit)


__all__ = [
    "TOPIC_PROFILE_CHANGED",
    "ClientInfo",
    "IdentityService",
    "SignedIn",
    "Started",
    "grant_admin",
    "list_admins",
    "profile_changed_event",
]

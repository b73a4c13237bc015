"""Sessions and tokens: starting a session, issuing and rotating tokens (a retired refresh
token revokes its session), the active-session check every authenticated call makes,
logout, revoking and listing sessions."""

from __future__ import annotations

from datetime import datetime

from services.identity.domain import PAGE_TOKENS, Session, TokenPair, User, hash_secret, new_secret
from services.identity.service.core import ClientInfo, IdentityCore, is_uuid, log
from services.identity.storage import IdentityRepository, new_id
from services.kit.auth import Principal
from services.kit.errors import NotFound, Unauthenticated, ValidationError
from services.kit.paging import Page


class Sessions(IdentityCore):
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
        session = await repo.get_session(session_id) if is_uuid(session_id) else None
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

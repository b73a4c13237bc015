"""Login with a passkey: the WebAuthn assertion, failed logins counted towards the
account lockout, a cloned authenticator detected by its sign count."""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

from services.identity.domain import CeremonyKind, User, normalize_email
from services.identity.relying_party import LoginRejected
from services.identity.service.core import ClientInfo, SignedIn, Started, log
from services.identity.service.sessions import Sessions
from services.kit.errors import NotFound


class Login(Sessions):
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

"""Registration: a new account with its first passkey (WebAuthn), signed in at once."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError

from services.identity.domain import (
    CeremonyKind,
    Profile,
    Role,
    User,
    normalize_email,
    validate_credential_name,
    validate_display_name,
)
from services.identity.humanity_storage import outbox
from services.identity.service.core import (
    ClientInfo,
    SignedIn,
    Started,
    conflict,
    log,
    new_credential,
)
from services.identity.service.sessions import Sessions
from services.identity.service.users import profile_changed_event
from services.identity.storage import new_id
from services.kit.errors import AlreadyExists
from services.kit.events.outbox import enqueue

USER_HANDLE_BYTES = 32


class Registration(Sessions):
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
        credential = new_credential(user.id, verified, name, now)
        try:
            async with self._write() as repo:
                await repo.add_user(user)
                await repo.add_credential(credential)
                tokens = await self._start_session(repo, user, client)
                await enqueue(repo.s, outbox, profile_changed_event(user))
        except IntegrityError as exc:
            raise conflict(exc) from exc
        self._committed(True)
        log.info("identity.user_registered", user_id=user.id, session_id=tokens.session_id)
        return SignedIn(user, tokens)

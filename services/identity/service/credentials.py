"""Passkeys of a signed-in user: adding one (a ceremony only its starter may finish),
listing them, removing one (never the last)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from services.identity.domain import (
    PAGE_TOKENS,
    Ceremony,
    CeremonyKind,
    Credential,
    validate_credential_name,
)
from services.identity.service.core import (
    ClientInfo,
    IdentityCore,
    Started,
    conflict,
    is_uuid,
    new_credential,
)
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, ValidationError
from services.kit.paging import Page


class Credentials(IdentityCore):
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
        credential = new_credential(principal.user_id, verified, name, self.clock.now())
        try:
            async with self._write() as repo:
                await repo.add_credential(credential)
        except IntegrityError as exc:
            raise conflict(exc) from exc
        return credential

    async def _peek_own_ceremony(self, principal: Principal, registration_id: str) -> Ceremony:
        """An add-credential ceremony is only usable by the user who started it."""
        if not registration_id:
            raise ValidationError("registration_id", "is required")
        async with self._read() as repo:
            ceremony = (
                await repo.get_ceremony(registration_id) if is_uuid(registration_id) else None
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

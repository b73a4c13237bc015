"""What every credential use case shares: the status lists' path, the placeholder DID the
builders start from, reading a stored credential, and `CredentialCore`."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from services.kit.clock import as_utc
from services.kit.errors import Unavailable
from services.kit.logging import get_logger
from services.passport.credentials.domain import (
    CredentialFormat,
    IssuedCredential,
    RevocationReason,
    check_credential_id,
)
from services.passport.credentials.signing import CredentialSigning
from services.passport.credentials.storage import credentials
from services.passport.service import PassportService

log = get_logger(__name__)
STATUS_PATH = "/credentials/status/"
# The DIDs are written by the translator (the custodial keys of issuer and subject); the
# builders need well-formed ones to start from.
PLACEHOLDER_DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def credential_of(row: Any) -> IssuedCredential:
    m = row._mapping
    reason = m["revocation_reason"]
    return IssuedCredential(
        id=m["id"],
        owner_id=m["owner_id"],
        passport_id=m["passport_id"],
        format=CredentialFormat(m["format"]),
        holder_id=m["holder_id"],
        issuer_did=m["issuer_did"],
        subject_did=m["subject_did"],
        statement_ids=tuple(m["statement_ids"]),
        status_list_id=m["status_list_id"],
        status_index=int(m["status_index"]),
        document_json=m["document"],
        issued_at=as_utc(m["issued_at"]),
        share_link_id=m["share_link_id"],
        revoked_at=None if m["revoked_at"] is None else as_utc(m["revoked_at"]),
        revocation_reason=None if reason is None else RevocationReason(reason),
    )


class CredentialCore:
    """The passport service, signing port, clock and public URL every credential use case
    runs on."""

    def __init__(
        self,
        passports: PassportService,
        signing: CredentialSigning | None,
        *,
        public_base_url: str,
    ) -> None:
        self.passports = passports
        self.db = passports.db
        self.clock = passports.clock
        self.signing = signing
        self.base_url = public_base_url.rstrip("/")
        self._wake = asyncio.Event()

    def _signer(self) -> CredentialSigning:
        if self.signing is None:
            raise Unavailable(
                "issuing credentials needs the chain translator and a service identity "
                "(run the passport beside identity, or give it the platform's JWT key)"
            )
        return self.signing

    def status_url(self, list_id: str) -> str:
        return f"{self.base_url}{STATUS_PATH}{list_id}"

    async def _load(self, credential_id: str) -> IssuedCredential | None:
        credential_id = check_credential_id(credential_id)
        async with self.db.session() as s:
            row = (
                await s.execute(select(credentials).where(credentials.c.id == credential_id))
            ).first()
        return None if row is None else credential_of(row)

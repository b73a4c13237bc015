"""The credential RPCs of keiko.passport.v1.PassportService: decode, authorize, call, encode.

A mixin of :class:`services.passport.servicer.PassportServicer` (``self.credentials`` is the
:class:`~services.passport.credentials.service.CredentialService`). Public (no token):
ListCredentials and GetCredential through a share token or a public passport,
GetStatusList, GetSharedPresentation; the rest act on the caller's own credentials.
"""

from __future__ import annotations

from services.api.keiko.passport import v1 as pb
from services.kit.auth import current_principal, optional_principal
from services.kit.errors import Unauthenticated, ValidationError
from services.kit.paging import page_size
from services.passport.credentials.domain import (
    AchievementInput,
    CredentialFormat,
    IssuedCredential,
    IssueRequest,
    RevocationReason,
)
from services.passport.credentials.service import CredentialService

CREDENTIAL_PUBLIC_METHODS = frozenset(
    {"ListCredentials", "GetCredential", "GetStatusList", "GetSharedPresentation"}
)

_FORMATS = {pb.CredentialFormat.from_string(f.name): f for f in CredentialFormat}
_TO_PB_FORMAT = {v: k for k, v in _FORMATS.items()}
_TO_PB_REASON = {r: pb.CredentialRevocationReason.from_string(r.name) for r in RevocationReason}


def credential_to_pb(c: IssuedCredential, status_url: str) -> pb.VerifiableCredential:
    message = pb.VerifiableCredential(
        id=c.id,
        format=_TO_PB_FORMAT[c.format],
        issuer_did=c.issuer_did,
        issuer_id=c.holder_id,
        subject_did=c.subject_did,
        statement_ids=list(c.statement_ids),
        issued_at=c.issued_at,
        status_list_url=status_url,
        status_list_index=c.status_index,
        share_link_id=c.share_link_id,
        document_json=c.document_json,
    )
    if c.revoked_at is not None:
        message.revoked_at = c.revoked_at
    if c.revocation_reason is not None:
        message.revocation_reason = _TO_PB_REASON[c.revocation_reason]
    return message


def issue_request_from_pb(r: pb.IssueCredentialsRequest) -> IssueRequest:
    fmt = _FORMATS.get(r.format)
    if fmt is None:
        raise ValidationError("format", "must be LEARNING_RECORD, PER_ENTRY or OPEN_BADGE")
    a = r.achievement
    has_achievement = bool(a.id or a.name or a.description or a.criteria)
    return IssueRequest(
        format=fmt,
        statement_ids=tuple(r.statement_ids),
        course_id=r.course_id,
        achievement=AchievementInput(
            a.id, a.name, a.description, a.criteria, a.achievement_type or "Course"
        )
        if has_achievement
        else None,
        share_link_id=r.share_link_id,
        request_id=r.request_id,
    )


class CredentialsServicer:
    credentials: CredentialService

    def _pb(self, c: IssuedCredential) -> pb.VerifiableCredential:
        return credential_to_pb(c, self.credentials.status_url(c.status_list_id))

    async def issue_credentials(
        self, issue_credentials_request: pb.IssueCredentialsRequest
    ) -> pb.IssueCredentialsResponse:
        request = issue_request_from_pb(issue_credentials_request)
        issued = await self.credentials.issue(current_principal(), request)
        return pb.IssueCredentialsResponse(credentials=[self._pb(c) for c in issued])

    async def list_credentials(
        self, list_credentials_request: pb.ListCredentialsRequest
    ) -> pb.ListCredentialsResponse:
        r = list_credentials_request
        caller = optional_principal()
        if r.share_token or r.passport_id:
            passports = self.credentials.passports
            access = await passports.access(caller, r.passport_id, r.share_token)
            shown = await self.credentials.list_visible(access)
            return pb.ListCredentialsResponse(credentials=[self._pb(c) for c in shown])
        if caller is None:
            raise Unauthenticated("sign in, or name a share token or a public passport")
        found, token = await self.credentials.list_own(
            caller,
            issued_by_me=r.issued_by_me,
            include_revoked=r.include_revoked,
            size=page_size(r.page_size),
            page_token=r.page_token,
        )
        return pb.ListCredentialsResponse(
            credentials=[self._pb(c) for c in found], next_page_token=token
        )

    async def get_credential(
        self, get_credential_request: pb.GetCredentialRequest
    ) -> pb.GetCredentialResponse:
        r = get_credential_request
        found = await self.credentials.get(optional_principal(), r.credential_id, r.share_token)
        return pb.GetCredentialResponse(credential=self._pb(found))

    async def revoke_credential(
        self, revoke_credential_request: pb.RevokeCredentialRequest
    ) -> pb.RevokeCredentialResponse:
        revoked = await self.credentials.revoke(
            current_principal(), revoke_credential_request.credential_id
        )
        return pb.RevokeCredentialResponse(credential=self._pb(revoked))

    async def get_status_list(
        self, get_status_list_request: pb.GetStatusListRequest
    ) -> pb.GetStatusListResponse:
        document = await self.credentials.status_list(get_status_list_request.list_id)
        return pb.GetStatusListResponse(document_json=document)

    async def get_shared_presentation(
        self, get_shared_presentation_request: pb.GetSharedPresentationRequest
    ) -> pb.GetSharedPresentationResponse:
        r = get_shared_presentation_request
        document = await self.credentials.shared_presentation(r.token, r.challenge, r.domain)
        return pb.GetSharedPresentationResponse(document_json=document)


__all__ = [
    "CREDENTIAL_PUBLIC_METHODS",
    "CredentialsServicer",
    "credential_to_pb",
    "issue_request_from_pb",
]

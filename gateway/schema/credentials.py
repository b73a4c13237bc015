"""GraphQL for Verifiable Credentials: issue, list, read and revoke the W3C credentials and
Open Badges of a passport, and fetch a share link as a presentation.

Thin over keiko.passport.v1 (IssueCredentials, ListCredentials, GetCredential,
RevokeCredential, GetSharedPresentation); see docs/credentials.md for the formats.
"""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from strawberry.types import Info

from gateway.errors import rpc
from gateway.schema.passport import PageInfo, passport_client
from services.api.keiko.passport import v1 as pb

MAX_FIRST = 200


@strawberry.enum(description="How entries become credentials.")
class CredentialFormat(enum.Enum):
    LEARNING_RECORD = "LEARNING_RECORD"
    PER_ENTRY = "PER_ENTRY"
    OPEN_BADGE = "OPEN_BADGE"


@strawberry.enum(description="Why a credential was revoked.")
class CredentialRevocationReason(enum.Enum):
    REVOKED_BY_LEARNER = "REVOKED_BY_LEARNER"
    REVOKED_BY_ISSUER = "REVOKED_BY_ISSUER"
    VOIDED_STATEMENT = "VOIDED_STATEMENT"
    WITHDRAWN_SHARE = "WITHDRAWN_SHARE"


@strawberry.type(description="A W3C Verifiable Credential issued from passport entries.")
class VerifiableCredential:
    id: strawberry.ID = strawberry.field(description="urn:uuid:<uuid>")
    format: CredentialFormat
    issuer_did: str = strawberry.field(description="did:key of the key that signed it.")
    issuer_id: str = strawberry.field(description="Keiko id of that key's holder.")
    subject_did: str
    statement_ids: list[str]
    issued_at: datetime
    revoked_at: datetime | None
    revocation_reason: CredentialRevocationReason | None
    status_list_url: str
    status_list_index: int
    share_link_id: str | None
    document: str = strawberry.field(description="The signed credential (JSON-LD).")

    @classmethod
    def from_pb(cls, c: pb.VerifiableCredential) -> VerifiableCredential:
        reason = None
        if c.revocation_reason:
            name = pb.CredentialRevocationReason(c.revocation_reason).name or ""
            reason = CredentialRevocationReason[name]
        return cls(
            id=strawberry.ID(c.id),
            format=CredentialFormat[pb.CredentialFormat(c.format).name or ""],
            issuer_did=c.issuer_did,
            issuer_id=c.issuer_id,
            subject_did=c.subject_did,
            statement_ids=list(c.statement_ids),
            issued_at=c.issued_at,
            revoked_at=c.revoked_at if c.revoked_at and c.revoked_at.year > 1970 else None,
            revocation_reason=reason,
            status_list_url=c.status_list_url,
            status_list_index=c.status_list_index,
            share_link_id=c.share_link_id or None,
            document=c.document_json,
        )


@strawberry.type
class VerifiableCredentialConnection:
    nodes: list[VerifiableCredential]
    page_info: PageInfo


@strawberry.input(description="An Open Badges Achievement (a completed course, say).")
class AchievementInput:
    id: str = strawberry.field(description="Its IRI, e.g. the course's activity id.")
    name: str
    description: str
    criteria: str = strawberry.field(description="What earning it takes (Markdown).")
    achievement_type: str = strawberry.field(
        default="Course", description="Course, Achievement, Assessment, Assignment, Competency."
    )


@strawberry.input
class IssueCredentialsInput:
    format: CredentialFormat
    statement_ids: list[str] = strawberry.field(
        default_factory=list, description="Empty: the entries of courseId, or all entries."
    )
    course_id: str = ""
    achievement: AchievementInput | None = strawberry.field(
        default=None, description="Required for OPEN_BADGE."
    )
    share_link_id: strawberry.ID | None = strawberry.field(
        default=None, description="Revoke these credentials with this share link."
    )
    request_id: str = strawberry.field(
        default="", description="Client-chosen id: a retried request returns the same credentials."
    )

    def to_pb(self) -> pb.IssueCredentialsRequest:
        request = pb.IssueCredentialsRequest(
            format=pb.CredentialFormat.from_string(self.format.value),
            statement_ids=list(self.statement_ids),
            course_id=self.course_id,
            share_link_id=str(self.share_link_id or ""),
            request_id=self.request_id,
        )
        if self.achievement is not None:
            a = self.achievement
            request.achievement = pb.Achievement(
                id=a.id,
                name=a.name,
                description=a.description,
                criteria=a.criteria,
                achievement_type=a.achievement_type,
            )
        return request


def _first(first: int) -> int:
    return max(1, min(first, MAX_FIRST))


@strawberry.type
class CredentialQuery:
    @strawberry.field(
        description="Credentials: yours (about you), those your key issued (issuedByMe), or, "
        "public, those a share link or a public passport shows."
    )
    async def credentials(
        self,
        info: Info,
        issued_by_me: bool = False,
        include_revoked: bool = False,
        share_token: str | None = None,
        passport_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> VerifiableCredentialConnection:
        if not share_token and not passport_id:
            info.context.require_token()
        reply = await rpc(
            passport_client(info).list_credentials(
                pb.ListCredentialsRequest(
                    issued_by_me=issued_by_me,
                    include_revoked=include_revoked,
                    share_token=share_token or "",
                    passport_id=str(passport_id or ""),
                    page_size=_first(first),
                    page_token=after or "",
                )
            )
        )
        token = reply.next_page_token
        return VerifiableCredentialConnection(
            nodes=[VerifiableCredential.from_pb(c) for c in reply.credentials],
            page_info=PageInfo(has_next_page=bool(token), end_cursor=token or None),
        )

    @strawberry.field(description="One credential (yours, your key's, or through a share link).")
    async def credential(
        self, info: Info, id: strawberry.ID, share_token: str | None = None
    ) -> VerifiableCredential:
        reply = await rpc(
            passport_client(info).get_credential(
                pb.GetCredentialRequest(credential_id=str(id), share_token=share_token or "")
            )
        )
        return VerifiableCredential.from_pb(reply.credential)

    @strawberry.field(
        description="A share link's credentials as a Verifiable Presentation the learner's key "
        "signs over your challenge and domain (public). Returns the JSON-LD document."
    )
    async def shared_presentation(self, info: Info, token: str, challenge: str, domain: str) -> str:
        reply = await rpc(
            passport_client(info).get_shared_presentation(
                pb.GetSharedPresentationRequest(token=token, challenge=challenge, domain=domain)
            )
        )
        return reply.document_json


@strawberry.type
class CredentialMutation:
    @strawberry.mutation(
        description="Issue W3C credentials (or an Open Badge) from your anchored entries."
    )
    async def issue_credentials(
        self, info: Info, input: IssueCredentialsInput
    ) -> list[VerifiableCredential]:
        info.context.require_token()
        reply = await rpc(passport_client(info).issue_credentials(input.to_pb()))
        return [VerifiableCredential.from_pb(c) for c in reply.credentials]

    @strawberry.mutation(
        description="Revoke a credential about you, or one your key issued (idempotent)."
    )
    async def revoke_credential(self, info: Info, id: strawberry.ID) -> VerifiableCredential:
        info.context.require_token()
        reply = await rpc(
            passport_client(info).revoke_credential(
                pb.RevokeCredentialRequest(credential_id=str(id))
            )
        )
        return VerifiableCredential.from_pb(reply.credential)


__all__ = ["CredentialMutation", "CredentialQuery", "VerifiableCredential"]

"""Safety certifications and space verification over GraphQL."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.marketplace.common import signed_in
from gateway.schema.marketplace.spaces import LearningSpace, SafetyCertification
from services.api.keiko.marketplace import v1 as pb


@strawberry.type
class CertificationPayload:
    space: LearningSpace
    certification: SafetyCertification

    @staticmethod
    def from_pb(
        r: pb.AddCertificationResponse | pb.AttestCertificationResponse,
    ) -> CertificationPayload:
        return CertificationPayload(
            space=LearningSpace.from_pb(r.space),
            certification=SafetyCertification.from_pb(r.certification),
        )


@strawberry.input
class AddCertificationInput:
    space_id: strawberry.ID
    name: str
    issuer: str
    reference: str = ""
    valid_until: datetime | None = None
    request_id: str = ""


@strawberry.type
class VerificationMutation:
    @strawberry.mutation(description="Add a safety certification; it counts once attested.")
    async def add_space_certification(
        self, info: Info, input: AddCertificationInput
    ) -> CertificationPayload:
        request = pb.AddCertificationRequest(
            space_id=str(input.space_id),
            name=input.name,
            issuer=input.issuer,
            reference=input.reference,
            request_id=input.request_id,
        )
        if input.valid_until is not None:
            request.valid_until = input.valid_until
        response = await rpc(signed_in(info).add_certification(request))
        return CertificationPayload.from_pb(response)

    @strawberry.mutation(description="Ask admins to verify your space.")
    async def request_space_verification(
        self, info: Info, space_id: strawberry.ID, note: str = ""
    ) -> LearningSpace:
        response = await rpc(
            signed_in(info).request_verification(
                pb.RequestVerificationRequest(space_id=str(space_id), note=note)
            )
        )
        return LearningSpace.from_pb(response.space)

    @strawberry.mutation(description="Attest a certification after checking it (admin).")
    async def attest_space_certification(
        self,
        info: Info,
        space_id: strawberry.ID,
        certification_id: strawberry.ID,
        child_protection: bool = False,
    ) -> CertificationPayload:
        response = await rpc(
            signed_in(info).attest_certification(
                pb.AttestCertificationRequest(
                    space_id=str(space_id),
                    certification_id=str(certification_id),
                    child_protection=child_protection,
                )
            )
        )
        return CertificationPayload.from_pb(response)

    @strawberry.mutation(description="Approve or reject a pending verification (admin).")
    async def review_space_verification(
        self, info: Info, space_id: strawberry.ID, approve: bool, note: str = ""
    ) -> LearningSpace:
        response = await rpc(
            signed_in(info).review_verification(
                pb.ReviewVerificationRequest(space_id=str(space_id), approve=approve, note=note)
            )
        )
        return LearningSpace.from_pb(response.space)

"""gRPC: certification and verification RPCs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.api.keiko.marketplace import v1 as pb
from services.kit.auth import current_principal
from services.marketplace.common.servicer import time_from_pb
from services.marketplace.spaces.servicer import SpaceEncoding, certification_to_pb

if TYPE_CHECKING:
    pass


class VerificationServicer(SpaceEncoding):
    async def add_certification(
        self, add_certification_request: pb.AddCertificationRequest
    ) -> pb.AddCertificationResponse:
        caller = current_principal()
        r = add_certification_request
        space, cert = await self.service.verification.add_certification(
            caller,
            r.space_id,
            name=r.name,
            issuer=r.issuer,
            reference=r.reference,
            valid_until=time_from_pb(r.valid_until),
            request_id=r.request_id,
        )
        return pb.AddCertificationResponse(
            space=self._space(space), certification=certification_to_pb(cert)
        )

    async def request_verification(
        self, request_verification_request: pb.RequestVerificationRequest
    ) -> pb.RequestVerificationResponse:
        caller = current_principal()
        r = request_verification_request
        space = await self.service.verification.request_verification(caller, r.space_id, r.note)
        return pb.RequestVerificationResponse(space=self._space(space))

    async def attest_certification(
        self, attest_certification_request: pb.AttestCertificationRequest
    ) -> pb.AttestCertificationResponse:
        caller = current_principal()
        r = attest_certification_request
        space, cert = await self.service.verification.attest_certification(
            caller, r.space_id, r.certification_id, r.child_protection
        )
        return pb.AttestCertificationResponse(
            space=self._space(space), certification=certification_to_pb(cert)
        )

    async def review_verification(
        self, review_verification_request: pb.ReviewVerificationRequest
    ) -> pb.ReviewVerificationResponse:
        caller = current_principal()
        r = review_verification_request
        space = await self.service.verification.review_verification(
            caller, r.space_id, r.approve, r.note
        )
        return pb.ReviewVerificationResponse(space=self._space(space))

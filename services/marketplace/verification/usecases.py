"""Certification and verification use cases: the space owner (or an admin) adds safety
certifications and asks for verification; an admin attests certifications and reviews the
request. Attesting and reviewing announce `marketplace.certification_attested` (which
the chain translator anchors) and `marketplace.space_verified` / `_verification_rejected`."""

from __future__ import annotations

from datetime import datetime

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, ValidationError
from services.kit.events import Event
from services.marketplace.common.domain import (
    iso,
    require_id,
    validate_request_id,
    validate_text,
)
from services.marketplace.common.storage import new_id
from services.marketplace.common.usecases import MarketplaceContext, require_admin, require_owner
from services.marketplace.spaces.availability import MAX_NOTE
from services.marketplace.spaces.domain import Space
from services.marketplace.verification.domain import (
    MAX_CERT_FIELD,
    TOPIC_CERTIFICATION_ATTESTED,
    TOPIC_SPACE_VERIFICATION_REJECTED,
    TOPIC_SPACE_VERIFIED,
    Certification,
    VerificationStatus,
)


def _cert(space: Space, cert_id: str) -> Certification:
    return next(c for c in space.certifications if c.id == cert_id)


class Verification:
    def __init__(self, ctx: MarketplaceContext) -> None:
        self.ctx = ctx

    async def add_certification(
        self,
        principal: Principal,
        space_id: str,
        *,
        name: str,
        issuer: str,
        reference: str,
        valid_until: datetime | None,
        request_id: str = "",
    ) -> tuple[Space, Certification]:
        request_id = validate_request_id(request_id)
        now = self.ctx.clock.now()
        cert_name = validate_text(name, "certification.name", maximum=MAX_CERT_FIELD, required=True)
        cert_issuer = validate_text(
            issuer, "certification.issuer", maximum=MAX_CERT_FIELD, required=True
        )
        cert_reference = validate_text(reference, "certification.reference", maximum=MAX_CERT_FIELD)
        if valid_until is not None and valid_until <= now:
            raise ValidationError("certification.valid_until", "must be in the future")
        async with self.ctx.write() as tx:
            space = await self.ctx.space(tx.repo, space_id, "space_id", lock=True)
            require_owner(principal, space, "add certifications")
            if request_id:
                existing = await tx.repo.certification_id_by_request(space.id, request_id)
                if existing is not None:
                    return space, _cert(space, existing)
            cert = Certification(
                id=new_id(),
                space_id=space.id,
                name=cert_name,
                issuer=cert_issuer,
                reference=cert_reference,
                valid_until=valid_until,
                created_at=now,
            )
            await tx.repo.insert_certification(cert, request_id)
            space = await self.ctx.space(tx.repo, space.id, "space_id")
            return space, _cert(space, cert.id)

    async def request_verification(self, principal: Principal, space_id: str, note: str) -> Space:
        note = validate_text(note, "note", maximum=MAX_NOTE)
        async with self.ctx.write() as tx:
            space = await self.ctx.space(tx.repo, space_id, "space_id", lock=True)
            require_owner(principal, space, "request its verification")
            if space.verification_status is VerificationStatus.PENDING:
                return space
            if space.verification_status is VerificationStatus.VERIFIED:
                raise FailedPrecondition("the space is already verified")
            if not space.certifications:
                raise FailedPrecondition(
                    "add at least one safety certification before requesting verification"
                )
            await tx.repo.set_verification(
                space.id, VerificationStatus.PENDING, now=self.ctx.clock.now(), note=note
            )
            return await self.ctx.space(tx.repo, space.id, "space_id")

    async def attest_certification(
        self, principal: Principal, space_id: str, certification_id: str, child_protection: bool
    ) -> tuple[Space, Certification]:
        require_admin(principal, "attest certifications")
        require_id(certification_id, "certification_id")
        now = self.ctx.clock.now()
        async with self.ctx.write() as tx:
            space = await self.ctx.space(tx.repo, space_id, "space_id", lock=True)
            cert = next((c for c in space.certifications if c.id == certification_id), None)
            if cert is None:
                raise NotFound(f"certification {certification_id} not found in space {space.id}")
            if cert.attested:
                if cert.child_protection != child_protection:
                    raise FailedPrecondition(
                        "certification already attested with a different child_protection"
                    )
                return space, cert  # a retry
            if not cert.valid_at(now):
                raise FailedPrecondition("the certification has expired")
            await tx.repo.attest_certification(
                cert.id, by=principal.user_id, at=now, child_protection=child_protection
            )
            # The chain translator anchors this attestation from the event (anchor_tx_hash
            # stays empty until it reports back).
            await tx.emit(
                Event(
                    TOPIC_CERTIFICATION_ATTESTED,
                    key=space.id,
                    occurred_at=now,
                    payload={
                        "space_id": space.id,
                        "owner_id": space.owner_id,
                        "certification_id": cert.id,
                        "name": cert.name,
                        "issuer": cert.issuer,
                        "reference": cert.reference,
                        "valid_until": iso(cert.valid_until) if cert.valid_until else None,
                        "child_protection": child_protection,
                        "attested_by": principal.user_id,
                        "attested_at": iso(now),
                    },
                )
            )
            space = await self.ctx.space(tx.repo, space.id, "space_id")
            return space, _cert(space, cert.id)

    async def review_verification(
        self, principal: Principal, space_id: str, approve: bool, note: str
    ) -> Space:
        require_admin(principal, "review verifications")
        note = validate_text(note, "note", maximum=MAX_NOTE)
        now = self.ctx.clock.now()
        async with self.ctx.write() as tx:
            space = await self.ctx.space(tx.repo, space_id, "space_id", lock=True)
            if space.verification_status is not VerificationStatus.PENDING:
                raise FailedPrecondition(
                    f"verification is {space.verification_status}, not pending"
                )
            attested = [c for c in space.certifications if c.attested and c.valid_at(now)]
            if approve and not attested:
                raise FailedPrecondition(
                    "attest at least one unexpired certification before approving"
                )
            status = VerificationStatus.VERIFIED if approve else VerificationStatus.REJECTED
            await tx.repo.set_verification(
                space.id, status, now=now, note=note, reviewed_by=principal.user_id
            )
            await tx.emit(
                Event(
                    TOPIC_SPACE_VERIFIED if approve else TOPIC_SPACE_VERIFICATION_REJECTED,
                    key=space.id,
                    occurred_at=now,
                    payload={
                        "space_id": space.id,
                        "owner_id": space.owner_id,
                        "reviewed_by": principal.user_id,
                        "reviewed_at": iso(now),
                        "note": note,
                        "certification_ids": [c.id for c in attested],
                        "child_safe": approve and any(c.child_protection for c in attested),
                    },
                )
            )
            return await self.ctx.space(tx.repo, space.id, "space_id")

"""Safety certifications and space verification: a space's certifications count once an
admin attests them; an admin verifies a space that holds an attested, unexpired one.
Plain types and rules, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

MAX_CERT_FIELD = 200

# Topics this capability publishes (through the outbox).
TOPIC_CERTIFICATION_ATTESTED = "marketplace.certification_attested"
TOPIC_SPACE_VERIFIED = "marketplace.space_verified"
TOPIC_SPACE_VERIFICATION_REJECTED = "marketplace.space_verification_rejected"


class VerificationStatus(enum.StrEnum):
    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Certification:
    id: str
    space_id: str
    name: str
    issuer: str
    reference: str
    valid_until: datetime | None
    child_protection: bool = False
    attested_by: str = ""
    attested_at: datetime | None = None
    anchor_tx_hash: str = ""
    created_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.valid_until is None or self.valid_until > now

    @property
    def attested(self) -> bool:
        return bool(self.attested_by)

"""Proof of humanity over GraphQL: enroll, verify and recover the signing key from an eye
image and a genome file sent as uploads (the GraphQL multipart request spec), and the
caller's (or, for admins, anyone's) humanity status. ``User.humanVerified`` is the public
bit.

Every resolver calls the identity service over gRPC. Uploads are read into memory and
forwarded; they are never written to disk: ``gateway.uploads`` parses
multipart bodies without Starlette's spill-to-temporary-file (which would write any file
above 1 MiB to disk) and refuses bodies over :data:`MAX_MULTIPART_BYTES` (HTTP 413)
before parsing them. Each file is checked against the identity service's limit before
it is sent, so an oversized file gets ``BAD_USER_INPUT`` on ``sample.iris_image`` /
``sample.genome`` without a gRPC round trip.

The gateway enables multipart uploads with :class:`gateway.uploads.InMemoryUploadRequestAdapter`.
The access token travels in the ``Authorization`` header (never a cookie), so a
cross-site form post cannot carry it: multipart requests are not a CSRF vector here.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from gateway.context import Info
from gateway.errors import ClientError, rpc
from services.api.keiko.identity import v1 as pb

# The identity service's limits (services.identity.humanity_service), repeated here
# because the gateway imports no service code: 8 MiB per file.
MAX_IRIS_IMAGE_BYTES = 8 * 1024 * 1024
MAX_GENOME_BYTES = 8 * 1024 * 1024
# Both files plus the operations and map fields and the multipart framing.
MAX_MULTIPART_BYTES = MAX_IRIS_IMAGE_BYTES + MAX_GENOME_BYTES + 256 * 1024
MAX_UPLOAD_FILES = 2
# gRPC's message limit in the host is 16 MiB: both files must fit in one request message.
MAX_SAMPLE_BYTES = 16 * 1024 * 1024 - 64 * 1024


# -- types ---------------------------------------------------------------------------------------


@strawberry.enum(description="File format of a genome sample.")
class GenomeFormat(enum.Enum):
    VCF = "VCF"
    FASTA = "FASTA"


_TO_PB_FORMAT: dict[GenomeFormat, pb.GenomeFormat] = {
    GenomeFormat.VCF: pb.GenomeFormat(pb.GenomeFormat.VCF),
    GenomeFormat.FASTA: pb.GenomeFormat(pb.GenomeFormat.FASTA),
}


@strawberry.type(description="Proof-of-humanity state of a user.")
class HumanityStatus:
    user_id: strawberry.ID
    enrolled: bool
    humanity_commitment: str | None = strawberry.field(
        description="Hex commitment to the humanity proof key, as registered on chain."
    )
    ed25519_public_key: str | None = strawberry.field(
        description="Hex Ed25519 public key derived from the humanity proof key."
    )
    registry_tx_hash: str | None = strawberry.field(
        description="Transaction that registered the commitment; null until one was sent."
    )
    registered_on_chain: bool
    enrolled_at: datetime | None

    @staticmethod
    def from_pb(status: pb.HumanityStatus) -> HumanityStatus:
        return HumanityStatus(
            user_id=strawberry.ID(status.user_id),
            enrolled=status.enrolled,
            humanity_commitment=status.humanity_commitment or None,
            ed25519_public_key=status.ed25519_public_key or None,
            registry_tx_hash=status.registry_tx_hash or None,
            registered_on_chain=status.registered_on_chain,
            enrolled_at=status.enrolled_at if status.enrolled else None,
        )


@strawberry.type
class HumanityEnrollment:
    humanity_commitment: str
    ed25519_public_key: str
    helper_data_id: strawberry.ID
    registry_tx_hash: str | None = strawberry.field(
        description="Null while the on-chain registration is pending."
    )


@strawberry.type
class HumanityVerification:
    matched: bool
    ed25519_public_key: str | None = strawberry.field(description="Null when not matched.")


@strawberry.type
class RecoveredSigningKey:
    ed25519_public_key: str


# -- resolvers -----------------------------------------------------------------------------------


def identity(info: Info) -> pb.IdentityServiceStub:
    return info.context.client(pb.IdentityServiceStub)  # type: ignore[no-any-return]


async def _read(upload: Any, field: str, limit: int) -> bytes:
    """The upload's bytes; BAD_USER_INPUT (on the service's field path) if it is not a
    file or is over `limit`, checked before reading it."""
    if isinstance(upload, bytes):
        data = upload
    elif isinstance(upload, UploadFile):
        if upload.size is not None and upload.size > limit:
            raise ClientError(
                f"{field}: file is {upload.size} bytes; the limit is {limit} bytes",
                "BAD_USER_INPUT",
                field=field,
            )
        data = await upload.read(limit + 1)
    else:
        raise ClientError(
            f"{field}: must be a file upload (GraphQL multipart request)",
            "BAD_USER_INPUT",
            field=field,
        )
    if len(data) > limit:
        raise ClientError(
            f"{field}: file is {len(data)} bytes; the limit is {limit} bytes",
            "BAD_USER_INPUT",
            field=field,
        )
    return data


async def _sample(iris_image: Any, genome: Any, genome_format: GenomeFormat) -> pb.BiometricSample:
    image = await _read(iris_image, "sample.iris_image", MAX_IRIS_IMAGE_BYTES)
    genome_data = await _read(genome, "sample.genome", MAX_GENOME_BYTES)
    if len(image) + len(genome_data) > MAX_SAMPLE_BYTES:
        raise ClientError(
            f"sample: the two files together are {len(image) + len(genome_data)} bytes; "
            f"the limit is {MAX_SAMPLE_BYTES} bytes",
            "BAD_USER_INPUT",
            field="sample",
        )
    return pb.BiometricSample(
        iris_image=image, genome=genome_data, genome_format=_TO_PB_FORMAT[genome_format]
    )


@strawberry.type
class HumanityQuery:
    @strawberry.field(
        description="Proof-of-humanity state of the signed-in user, or (admins) of userId."
    )
    async def humanity_status(
        self, info: Info, user_id: strawberry.ID | None = None
    ) -> HumanityStatus:
        info.context.require_token()
        response = await rpc(
            identity(info).get_humanity_status(
                pb.GetHumanityStatusRequest(user_id=str(user_id) if user_id else "")
            )
        )
        return HumanityStatus.from_pb(response.status)


@strawberry.type
class HumanityMutation:
    @strawberry.mutation(
        description="Enroll the signed-in user's proof of humanity from an eye image and a "
        "genome file (multipart upload). requestId makes a retry return the first result."
    )
    async def enroll_humanity(
        self,
        info: Info,
        iris_image: Upload,
        genome: Upload,
        genome_format: GenomeFormat,
        request_id: str = "",
    ) -> HumanityEnrollment:
        info.context.require_token()
        sample = await _sample(iris_image, genome, genome_format)
        response = await rpc(
            identity(info).enroll_humanity(
                pb.EnrollHumanityRequest(sample=sample, request_id=request_id)
            )
        )
        return HumanityEnrollment(
            humanity_commitment=response.humanity_commitment,
            ed25519_public_key=response.ed25519_public_key,
            helper_data_id=strawberry.ID(response.helper_data_id),
            registry_tx_hash=response.registry_tx_hash or None,
        )

    @strawberry.mutation(description="Check new captures against the signed-in user's enrollment.")
    async def verify_humanity(
        self, info: Info, iris_image: Upload, genome: Upload, genome_format: GenomeFormat
    ) -> HumanityVerification:
        info.context.require_token()
        sample = await _sample(iris_image, genome, genome_format)
        response = await rpc(
            identity(info).verify_humanity(pb.VerifyHumanityRequest(sample=sample))
        )
        return HumanityVerification(
            matched=response.matched, ed25519_public_key=response.ed25519_public_key or None
        )

    @strawberry.mutation(
        description="Reproduce the signed-in user's signing key from new captures; returns "
        "its public half (the private key never leaves the service)."
    )
    async def recover_signing_key(
        self, info: Info, iris_image: Upload, genome: Upload, genome_format: GenomeFormat
    ) -> RecoveredSigningKey:
        info.context.require_token()
        sample = await _sample(iris_image, genome, genome_format)
        response = await rpc(
            identity(info).recover_signing_key(pb.RecoverSigningKeyRequest(sample=sample))
        )
        return RecoveredSigningKey(ed25519_public_key=response.ed25519_public_key)

"""Proof of humanity over GraphQL, end to end: multipart uploads (the GraphQL multipart
request spec) through the gateway's resolvers, over gRPC to the identity servicer with
the real pipeline, on synthetic captures.

The app is the gateway's own (gateway.app.create_app, multipart uploads parsed in memory),
served in-process through httpx's ASGI transport.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest

from gateway.app import create_app
from gateway.schema import build_schema
from gateway.schema.humanity import MAX_IRIS_IMAGE_BYTES, MAX_MULTIPART_BYTES
from keiko.authenticator import SoftwareAuthenticator
from services.identity.humanity import pipeline
from services.identity.humanity import synthetic as syn
from services.identity.humanity_registrar import Registration
from services.identity.humanity_service import HumanityService
from services.identity.service import IdentityService
from services.identity.servicer import HumanityIdentityServicer
from services.identity.settings import IdentitySettings
from services.identity.tests.conftest import register
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.grpc.testing import running_host, token_pair

ORIGIN = "https://app.keiko.test"
RP_ID = "keiko.test"
SEED = 2026

ENROLL = """
mutation Enroll($eye: Upload!, $genome: Upload!, $fmt: GenomeFormat!, $rid: String!) {
  enrollHumanity(irisImage: $eye, genome: $genome, genomeFormat: $fmt, requestId: $rid) {
    humanityCommitment ed25519PublicKey helperDataId registryTxHash
  }
}"""
VERIFY = """
mutation Verify($eye: Upload!, $genome: Upload!, $fmt: GenomeFormat!) {
  verifyHumanity(irisImage: $eye, genome: $genome, genomeFormat: $fmt) {
    matched ed25519PublicKey
  }
}"""
RECOVER = """
mutation Recover($eye: Upload!, $genome: Upload!, $fmt: GenomeFormat!) {
  recoverSigningKey(irisImage: $eye, genome: $genome, genomeFormat: $fmt) { ed25519PublicKey }
}"""
STATUS = """
query Status($userId: ID) {
  humanityStatus(userId: $userId) {
    userId enrolled humanityCommitment ed25519PublicKey registryTxHash registeredOnChain
    enrolledAt
  }
  me { humanVerified }
}"""


@pytest.fixture(scope="module", autouse=True)
def _warm_pipeline() -> None:
    pipeline.warm_up()


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("identity",)


class AcceptingRegistrar:
    async def register(
        self, *, user_id: str, commitment: str, ed25519_public_key: str, request_id: str
    ) -> Registration:
        return Registration(accepted=True, tx_hash="0x" + "ab" * 32)


@dataclass
class Gateway:
    """The gateway app in process, and the identity service to sign users up with."""

    http: httpx.AsyncClient
    identity: IdentityService

    async def user(self, name: str) -> tuple[str, str]:
        """A signed-up user (real WebAuthn ceremony): (user id, access token)."""
        authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)
        signed_in = await register(
            self.identity, authenticator, email=f"{name}@example.org", display_name=name
        )
        return signed_in.user.id, signed_in.tokens.access_token

    async def query(self, query: str, token: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
        return response.json()  # type: ignore[no-any-return]

    async def upload(
        self, query: str, token: str, eye: bytes, genome: bytes, *, fmt: str = "VCF", **extra: Any
    ) -> dict[str, Any]:
        """A GraphQL multipart request (the spec's operations + map + files)."""
        variables = {"eye": None, "genome": None, "fmt": fmt, **extra}
        response = await self.http.post(
            "/graphql",
            data={
                "operations": json.dumps({"query": query, "variables": variables}),
                "map": json.dumps({"0": ["variables.eye"], "1": ["variables.genome"]}),
            },
            files={
                "0": ("eye.png", eye, "image/png"),
                "1": ("genome.txt", genome, "text/plain"),
            },
            headers={"authorization": f"Bearer {token}"},
        )
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def gw(migrated_database: Database) -> AsyncIterator[Gateway]:
    clock = FixedClock(datetime(2026, 11, 22, tzinfo=UTC))
    issuer, verifier = token_pair(clock)
    settings = IdentitySettings(rp_id=RP_ID, rp_name="Keiko (test)", allowed_origins=(ORIGIN,))
    identity = IdentityService(migrated_database, settings, clock, issuer)
    humanity = HumanityService(migrated_database, clock, registrar=AcceptingRegistrar())
    schema = build_schema()
    async with (
        running_host(
            [HumanityIdentityServicer(identity, humanity)], token_verifier=verifier
        ) as host,
        grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel,
    ):
        app = create_app(schema, channel)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway.test", timeout=120
        ) as http:
            yield Gateway(http, identity)


def capture(person: syn.SyntheticPerson, index: int, fmt: str = "VCF") -> tuple[bytes, bytes]:
    genome = syn.genome_vcf(person, index) if fmt == "VCF" else syn.genome_fasta(person, index)
    return syn.iris_image(person, index), genome


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    [error] = result["errors"]
    return error  # type: ignore[no-any-return]


async def test_enroll_verify_recover_and_status_through_multipart_uploads(gw: Gateway) -> None:
    ana_person, bob_person = syn.make_person(SEED, 1), syn.make_person(SEED, 2)
    ana_id, ana = await gw.user("ana")
    _, bob = await gw.user("bob")

    before = await gw.query(STATUS, ana)
    assert before["data"]["humanityStatus"]["enrolled"] is False
    assert before["data"]["me"]["humanVerified"] is False

    result = await gw.upload(ENROLL, ana, *capture(ana_person, 0), rid="r-1")
    assert "errors" not in result, result
    enrolled = result["data"]["enrollHumanity"]
    assert len(bytes.fromhex(enrolled["ed25519PublicKey"])) == 32
    assert enrolled["registryTxHash"] == "0x" + "ab" * 32

    status = await gw.query(STATUS, ana)
    assert status["data"]["me"] == {"humanVerified": True}
    assert status["data"]["humanityStatus"] == {
        "userId": ana_id,
        "enrolled": True,
        "humanityCommitment": enrolled["humanityCommitment"],
        "ed25519PublicKey": enrolled["ed25519PublicKey"],
        "registryTxHash": enrolled["registryTxHash"],
        "registeredOnChain": True,
        "enrolledAt": "2026-11-22T00:00:00+00:00",
    }

    # a new capture, FASTA this time: the same key
    verified = await gw.upload(VERIFY, ana, *capture(ana_person, 1, "FASTA"), fmt="FASTA")
    assert verified["data"]["verifyHumanity"] == {
        "matched": True,
        "ed25519PublicKey": enrolled["ed25519PublicKey"],
    }
    recovered = await gw.upload(RECOVER, ana, *capture(ana_person, 2))
    assert recovered["data"]["recoverSigningKey"] == {
        "ed25519PublicKey": enrolled["ed25519PublicKey"]
    }

    # Bob: another key; Ana's body under Bob's account is refused; her status is hers
    bob_result = await gw.upload(ENROLL, bob, *capture(bob_person, 0), rid="b-1")
    assert bob_result["data"]["enrollHumanity"]["ed25519PublicKey"] != enrolled["ed25519PublicKey"]
    _, carol = await gw.user("carol")
    duplicate = error_of(await gw.upload(ENROLL, carol, *capture(ana_person, 3), rid="c-1"))
    assert duplicate["extensions"]["code"] == "CONFLICT"
    assert duplicate["message"] == "this human is already enrolled under another account"
    forbidden = error_of(await gw.query(STATUS, bob, userId=ana_id))
    assert forbidden["extensions"]["code"] == "FORBIDDEN"


async def test_bad_uploads_get_bad_user_input_with_the_field(gw: Gateway) -> None:
    person = syn.make_person(SEED, 1)
    _, ana = await gw.user("ana")
    eye, vcf = capture(person, 0)

    # refused by the gateway before any gRPC call
    big = eye + b"\0" * (MAX_IRIS_IMAGE_BYTES - len(eye) + 1)
    oversized = error_of(await gw.upload(ENROLL, ana, big, vcf, rid="r"))
    assert oversized["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "sample.iris_image",
    }
    assert oversized["message"] == (
        f"sample.iris_image: file is {MAX_IRIS_IMAGE_BYTES + 1} bytes; "
        f"the limit is {MAX_IRIS_IMAGE_BYTES} bytes"
    )
    # refused by the identity service (the pipeline's reasons)
    truncated = error_of(await gw.upload(ENROLL, ana, eye, vcf[: len(vcf) - 17], rid="r"))
    assert truncated["extensions"]["code"] == "BAD_USER_INPUT"
    assert truncated["extensions"]["field"] == "sample.genome"
    assert truncated["message"] == (
        "sample.genome: truncated VCF: the last record (line 514) is incomplete"
    )
    no_iris = error_of(await gw.upload(ENROLL, ana, syn.no_iris_image(1), vcf, rid="r"))
    assert no_iris["extensions"]["field"] == "sample.iris_image"
    assert no_iris["message"].startswith("sample.iris_image: no pupil found")
    # a JSON request cannot smuggle a string where a file is expected
    response = await gw.http.post(
        "/graphql",
        json={"query": ENROLL, "variables": {"eye": "x", "genome": "y", "fmt": "VCF", "rid": ""}},
        headers={"authorization": f"Bearer {ana}"},
    )
    not_a_file = error_of(response.json())
    assert not_a_file["extensions"] == {"code": "BAD_USER_INPUT", "field": "sample.iris_image"}
    # a body over the multipart cap is refused before it is parsed
    too_big = await gw.http.post(
        "/graphql",
        content=b"x" * (MAX_MULTIPART_BYTES + 1),
        headers={
            "authorization": f"Bearer {ana}",
            "content-type": "multipart/form-data; boundary=abc",
        },
    )
    assert too_big.status_code == 413
    # without a token
    anonymous = await gw.http.post(
        "/graphql", json={"query": STATUS}, headers={"x-request-id": "t"}
    )
    assert error_of(anonymous.json())["extensions"]["code"] == "UNAUTHENTICATED"
    status = await gw.query(STATUS, ana)
    assert status["data"]["humanityStatus"]["enrolled"] is False


async def test_uploads_above_a_mebibyte_stay_in_memory(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette spools files above 1 MiB to a temporary file; ours never roll over."""
    rolled: list[int] = []

    def rollover(self: tempfile.SpooledTemporaryFile[bytes]) -> None:
        rolled.append(1)
        raise AssertionError("an upload was about to be written to disk")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", rollover)
    person = syn.make_person(SEED, 4)
    _, dan = await gw.user("dan")
    eye, vcf = capture(person, 0)
    padded = eye + b"\0" * (3 * 1024 * 1024)  # PNG decoders ignore bytes after IEND
    result = await gw.upload(ENROLL, dan, padded, vcf, rid="d-1")
    assert "errors" not in result, result
    assert rolled == []

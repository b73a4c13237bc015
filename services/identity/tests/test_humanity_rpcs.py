"""Proof of humanity over real gRPC (the kit's host: auth, error mapping), on synthetic
people: the same person re-captured reproduces the same Ed25519 key, another person
does not and cannot enroll twice, bad input gets its exact error, the registration
flips ``human_verified`` and emits ``identity.humanity_verified``.

The chain registrar here is a recording double of the port (the chain translator is
exercised against a real dev node in ``test_humanity_chain.py``). Captures are the
synthetic generator's 320x240 images (about 0.1-0.3 s of CPU each).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import delete, func, select, update

from keiko.authenticator import SoftwareAuthenticator
from services.api.keiko.identity import v1 as pb
from services.identity import humanity_service as hs
from services.identity.humanity import index, pipeline
from services.identity.humanity import synthetic as syn
from services.identity.humanity_registrar import (
    Registration,
    RegistrationRefused,
    TranslatorRegistrar,
)
from services.identity.humanity_service import (
    TOPIC_HUMANITY_VERIFIED,
    HumanityPolicy,
    HumanityService,
)
from services.identity.humanity_storage import (
    HumanityRepository,
    IndexedHelperStore,
    humanity_enrollments,
    humanity_index_tags,
    outbox,
)
from services.identity.service import ClientInfo, IdentityService
from services.identity.servicer import HumanityIdentityServicer
from services.identity.tests.conftest import ORIGIN, RP_ID, login, register
from services.identity.wiring import build_identity_servicer
from services.kit.auth import Principal, TokenVerifier
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.errors import AlreadyExists
from services.kit.events import EventBus
from services.kit.events.outbox import OutboxRelay
from services.kit.grpc.client import stub
from services.kit.grpc.errors import field_violations
from services.kit.grpc.testing import running_host, running_server
from services.kit.races import twin_calls

Stub = pb.IdentityServiceStub
SEED = 2026
EVENT_CEILING_S = 60.0  # a ceiling to wait for an event, not a timing assertion
VCF = pb.GenomeFormat(pb.GenomeFormat.VCF)
FASTA = pb.GenomeFormat(pb.GenomeFormat.FASTA)


@pytest.fixture(scope="module", autouse=True)
def _warm_pipeline() -> None:
    """Build the BCH codes and compile the decoder once (seconds)."""
    pipeline.warm_up()


@pytest.fixture(scope="module")
def ana_person() -> syn.SyntheticPerson:
    return syn.make_person(SEED, 1)


@pytest.fixture(scope="module")
def bob_person() -> syn.SyntheticPerson:
    return syn.make_person(SEED, 2)


def sample(
    person: syn.SyntheticPerson, capture: int, fmt: pb.GenomeFormat = VCF
) -> pb.BiometricSample:
    genome = syn.genome_vcf(person, capture) if fmt == VCF else syn.genome_fasta(person, capture)
    return pb.BiometricSample(
        iris_image=syn.iris_image(person, capture), genome=genome, genome_format=fmt
    )


@dataclass
class RecordingRegistrar:
    """The registrar port, recording calls; answers accepted with a fixed tx hash, or
    raises what `fail_with` holds."""

    calls: list[dict[str, str]] = field(default_factory=list)
    fail_with: Exception | None = None
    accepted: bool = True

    async def register(
        self, *, user_id: str, commitment: str, ed25519_public_key: str, request_id: str
    ) -> Registration:
        self.calls.append(
            {
                "user_id": user_id,
                "commitment": commitment,
                "ed25519_public_key": ed25519_public_key,
                "request_id": request_id,
            }
        )
        if self.fail_with is not None:
            raise self.fail_with
        return Registration(accepted=self.accepted, tx_hash=f"0x{len(self.calls):064x}")


@dataclass
class Humanity:
    channel: grpc.aio.Channel
    identity: IdentityService
    humanity: HumanityService
    registrar: RecordingRegistrar
    relay: OutboxRelay
    bus: EventBus
    clock: FixedClock
    db: Database
    _n: int = 0
    _seen: int = 0  # humanity_verified events already read from the bus

    def client(self, token: str | None = None) -> Stub:
        return stub(Stub, self.channel, access_token=token, timeout=120)

    async def user(self, name: str) -> tuple[str, str]:
        """Sign up `name`; returns (user id, access token)."""
        self._n += 1
        authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)
        signed = await register(self.identity, authenticator, f"{name}@example.org", name)
        return signed.user.id, signed.tokens.access_token

    async def admin(self) -> str:
        authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)
        await register(self.identity, authenticator, "root@example.org", "Root")
        await self.identity.grant_admin("root@example.org")
        return (await login(self.identity, authenticator, "root@example.org")).tokens.access_token

    async def events(self, expected: int) -> list[dict[str, object]]:
        """The humanity_verified events emitted so far: the outbox holds exactly
        `expected` of them (so none twice), and after relaying they arrive on the bus."""
        async with self.db.read() as conn:
            emitted = await conn.scalar(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.topic == TOPIC_HUMANITY_VERIFIED)
            )
        assert emitted == expected
        await self.relay.relay_once()
        found: list[dict[str, object]] = []
        async with self.bus.subscribe(
            [TOPIC_HUMANITY_VERIFIED], group="test", consumer="c", start="earliest"
        ) as subscription:
            deliveries = aiter(subscription)
            for _ in range(expected - self._seen):
                delivery = await asyncio.wait_for(anext(deliveries), EVENT_CEILING_S)
                await delivery.ack()
                assert delivery.event.key == delivery.event.payload["user_id"]
                found.append(dict(delivery.event.payload))
        self._seen = expected
        return found


@pytest.fixture
def registrar() -> RecordingRegistrar:
    return RecordingRegistrar()


@pytest.fixture
async def hum(
    service: IdentityService,
    verifier: TokenVerifier,
    clock: FixedClock,
    migrated_database: Database,
    event_bus: EventBus,
    registrar: RecordingRegistrar,
) -> AsyncIterator[Humanity]:
    relay = OutboxRelay(migrated_database, outbox, event_bus, clock=clock)
    humanity = HumanityService(
        migrated_database, clock, registrar=registrar, on_commit=relay.notify
    )
    servicer = HumanityIdentityServicer(
        service, humanity, client_info=lambda: ClientInfo(address="127.0.0.1")
    )
    async with running_server([servicer], token_verifier=verifier) as channel:
        yield Humanity(
            channel, service, humanity, registrar, relay, event_bus, clock, migrated_database
        )


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def violation(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [found] = field_violations(error)
    return found


# -- the same human, another human ---------------------------------------------------------


async def test_enrolled_person_recaptured_reproduces_the_same_key(
    hum: Humanity, ana_person: syn.SyntheticPerson
) -> None:
    ana_id, ana = await hum.user("ana")
    enrolled = await hum.client(ana).enroll_humanity(
        pb.EnrollHumanityRequest(sample=sample(ana_person, 0), request_id="enroll-1")
    )
    assert len(bytes.fromhex(enrolled.ed25519_public_key)) == 32
    assert enrolled.humanity_commitment.startswith("0x") and enrolled.helper_data_id
    # registered through the port with exactly the enrolled commitment and key
    [call] = hum.registrar.calls
    assert call["user_id"] == ana_id
    assert call["commitment"] == enrolled.humanity_commitment
    assert call["ed25519_public_key"] == enrolled.ed25519_public_key
    assert enrolled.registry_tx_hash == f"0x{1:064x}"

    # a new capture (other genome file format too) reproduces the same key
    verified = await hum.client(ana).verify_humanity(
        pb.VerifyHumanityRequest(sample=sample(ana_person, 1, FASTA))
    )
    assert verified.matched
    assert verified.ed25519_public_key == enrolled.ed25519_public_key
    recovered = await hum.client(ana).recover_signing_key(
        pb.RecoverSigningKeyRequest(sample=sample(ana_person, 2))
    )
    assert recovered.ed25519_public_key == enrolled.ed25519_public_key

    status = (await hum.client(ana).get_humanity_status(pb.GetHumanityStatusRequest())).status
    assert status.user_id == ana_id and status.enrolled and status.registered_on_chain
    assert status.humanity_commitment == enrolled.humanity_commitment
    assert status.ed25519_public_key == enrolled.ed25519_public_key
    assert status.registry_tx_hash == enrolled.registry_tx_hash
    assert status.enrolled_at == hum.clock.now()

    # humanVerified flipped and the event announces it, exactly once
    me = await hum.client(ana).get_me(pb.GetMeRequest())
    assert me.user.human_verified
    assert await hum.events(1) == [
        {"user_id": ana_id, "humanity_commitment": enrolled.humanity_commitment}
    ]

    # a retry with the same request id returns the original enrollment, unprocessed
    replay = await hum.client(ana).enroll_humanity(
        pb.EnrollHumanityRequest(sample=pb.BiometricSample(), request_id="enroll-1")
    )
    assert replay == enrolled
    assert len(hum.registrar.calls) == 1
    assert await hum.events(1) == []  # still the one event: nothing emitted again
    again = await rpc_error(
        hum.client(ana).enroll_humanity(
            pb.EnrollHumanityRequest(sample=sample(ana_person, 3), request_id="enroll-2")
        )
    )
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    assert again.details() == (
        "the caller is already enrolled; use VerifyHumanity or RecoverSigningKey"
    )


async def test_another_person_gets_another_key_and_one_human_enrolls_once(
    hum: Humanity, ana_person: syn.SyntheticPerson, bob_person: syn.SyntheticPerson
) -> None:
    ana_id, ana = await hum.user("ana")
    bob_id, bob = await hum.user("bob")
    mallory_id, mallory = await hum.user("mallory")
    ana_enrolled = await hum.client(ana).enroll_humanity(
        pb.EnrollHumanityRequest(sample=sample(ana_person, 0))
    )
    bob_enrolled = await hum.client(bob).enroll_humanity(
        pb.EnrollHumanityRequest(sample=sample(bob_person, 0, FASTA))
    )
    assert bob_enrolled.ed25519_public_key != ana_enrolled.ed25519_public_key
    assert bob_enrolled.humanity_commitment != ana_enrolled.humanity_commitment

    # Bob presenting Ana's eye and genome does not reproduce his key, nor gets hers
    verified = await hum.client(bob).verify_humanity(
        pb.VerifyHumanityRequest(sample=sample(ana_person, 1))
    )
    assert not verified.matched and verified.ed25519_public_key == ""
    refused = await rpc_error(
        hum.client(bob).recover_signing_key(
            pb.RecoverSigningKeyRequest(sample=sample(ana_person, 1))
        )
    )
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ana_enrolled.ed25519_public_key not in (refused.details() or "")

    # Ana's body under a second account: refused, without naming whose enrollment matched
    duplicate = await rpc_error(
        hum.client(mallory).enroll_humanity(pb.EnrollHumanityRequest(sample=sample(ana_person, 2)))
    )
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
    assert duplicate.details() == "this human is already enrolled under another account"
    assert ana_id not in (duplicate.details() or "")
    status = await hum.client(mallory).get_humanity_status(pb.GetHumanityStatusRequest())
    assert not status.status.enrolled
    assert not (await hum.client(mallory).get_me(pb.GetMeRequest())).user.human_verified
    assert {e["user_id"] for e in await hum.events(2)} == {ana_id, bob_id}
    assert mallory_id not in {c["user_id"] for c in hum.registrar.calls}


async def test_the_duplicate_check_finds_the_same_eye_through_the_index(
    hum: Humanity,
    ana_person: syn.SyntheticPerson,
    bob_person: syn.SyntheticPerson,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Enrollments store keyed index tags; a later enrollment decodes only the records
    its tags select (plus those without tags, as enrolled before the index) and is still
    refused when the eye is enrolled under another account, whatever genome comes with
    it."""
    carol_person = syn.make_person(SEED, 3)
    ana_id, ana = await hum.user("ana")
    bob_id, bob = await hum.user("bob")
    _, mallory = await hum.user("mallory")
    _, carol = await hum.user("carol")
    await hum.client(ana).enroll_humanity(pb.EnrollHumanityRequest(sample=sample(ana_person, 0)))
    await hum.client(bob).enroll_humanity(pb.EnrollHumanityRequest(sample=sample(bob_person, 0)))
    async with hum.db.read() as conn:
        key_ids = set((await conn.execute(select(humanity_enrollments.c.index_key_id))).scalars())
        tags = await conn.scalar(
            select(func.count())
            .select_from(humanity_index_tags)
            .where(humanity_index_tags.c.user_id == ana_id)
        )
    assert key_ids == {hum.humanity.index_key.key_id}
    assert tags is not None and tags > index.IRIS_MIN_VOTES

    decoded: list[list[str]] = []
    lookup = IndexedHelperStore.candidates

    def recorded(store: IndexedHelperStore, probe: index.Probe) -> list[tuple[str, bytes]]:
        found = lookup(store, probe)
        decoded.append([subject for subject, _ in found])
        return found

    monkeypatch.setattr(IndexedHelperStore, "candidates", recorded)

    def eye_of_ana_genome_of_carol(capture: int) -> pb.BiometricSample:
        return pb.BiometricSample(
            iris_image=syn.iris_image(ana_person, capture),
            genome=syn.genome_vcf(carol_person, capture),
            genome_format=VCF,
        )

    refused = await rpc_error(
        hum.client(mallory).enroll_humanity(
            pb.EnrollHumanityRequest(sample=eye_of_ana_genome_of_carol(2))
        )
    )
    assert refused.code() == grpc.StatusCode.ALREADY_EXISTS
    assert decoded == [[ana_id]]  # Bob's record was not decoded

    # an enrollment from before the index (no tags) is decoded by every check
    async with hum.db.transaction() as session:
        await session.execute(
            delete(humanity_index_tags).where(humanity_index_tags.c.user_id == ana_id)
        )
        await session.execute(
            update(humanity_enrollments)
            .where(humanity_enrollments.c.user_id == ana_id)
            .values(index_key_id=None)
        )
    refused = await rpc_error(
        hum.client(mallory).enroll_humanity(
            pb.EnrollHumanityRequest(sample=eye_of_ana_genome_of_carol(3))
        )
    )
    assert refused.code() == grpc.StatusCode.ALREADY_EXISTS
    assert decoded[-1] == [ana_id]
    await hum.client(carol).enroll_humanity(
        pb.EnrollHumanityRequest(sample=sample(carol_person, 0))
    )
    assert decoded[-1] == [ana_id] and bob_id not in decoded[-1]


# -- bad input -----------------------------------------------------------------------------


async def test_bad_captures_get_their_exact_error(
    hum: Humanity, ana_person: syn.SyntheticPerson, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ana = await hum.user("ana")
    good = sample(ana_person, 0)
    vcf, fasta = syn.genome_vcf(ana_person, 0), syn.genome_fasta(ana_person, 0)

    async def enroll_error(**changes: object) -> tuple[str, str]:
        bad = pb.BiometricSample(
            iris_image=good.iris_image, genome=good.genome, genome_format=good.genome_format
        )
        for name, value in changes.items():
            setattr(bad, name, value)
        return violation(
            await rpc_error(hum.client(ana).enroll_humanity(pb.EnrollHumanityRequest(sample=bad)))
        )

    field_, reason = await enroll_error(iris_image=syn.no_iris_image(1))
    assert field_ == "sample.iris_image"
    assert reason.startswith("no pupil found: the darkest round region is not dark enough")
    assert await enroll_error(genome=vcf[: len(vcf) - 17]) == (
        "sample.genome",
        "truncated VCF: the last record (line 514) is incomplete",
    )
    assert await enroll_error(genome=vcf.replace(b"\t0/1", b"\t0/7", 1)) == (
        "sample.genome",
        "line 5: GT allele '7' is not 0..1",
    )
    assert await enroll_error(genome=fasta[: len(fasta) - 9], genome_format=FASTA) == (
        "sample.genome",
        "truncated FASTA: the file does not end with a newline",
    )
    assert await enroll_error(genome_format=pb.GenomeFormat.UNSPECIFIED) == (
        "sample.genome_format",
        "must be GENOME_FORMAT_VCF or GENOME_FORMAT_FASTA",
    )
    assert await enroll_error(iris_image=b"") == ("sample.iris_image", "is required")

    # Oversized uploads are refused before any decoding: the pipeline is never called.
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline ran on an oversized upload")

    monkeypatch.setattr(hs.humanity, "enroll", must_not_run)
    limit = hs.MAX_IRIS_IMAGE_BYTES
    big_image = good.iris_image + b"\0" * (limit - len(good.iris_image) + 1)
    # The one limits table (services.kit.limits) refuses it as it is decoded.
    assert await enroll_error(iris_image=big_image) == (
        "sample.iris_image",
        f"must be at most {limit} bytes",
    )
    big_genome = vcf + b"#" * (hs.MAX_GENOME_BYTES - len(vcf) + 1)
    assert await enroll_error(genome=big_genome) == (
        "sample.genome",
        f"must be at most {hs.MAX_GENOME_BYTES} bytes",
    )
    # nothing was stored by any of these
    status = await hum.client(ana).get_humanity_status(pb.GetHumanityStatusRequest())
    assert not status.status.enrolled and hum.registrar.calls == []


async def test_verify_and_recover_need_an_enrollment_and_are_rate_limited(
    hum: Humanity, ana_person: syn.SyntheticPerson
) -> None:
    _, ana = await hum.user("ana")
    error = await rpc_error(
        hum.client(ana).verify_humanity(pb.VerifyHumanityRequest(sample=sample(ana_person, 1)))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "the caller has not enrolled a proof of humanity"

    hum.humanity.policy = HumanityPolicy(attempts_capacity=2, attempts_refill_per_second=0.01)
    await hum.client(ana).enroll_humanity(pb.EnrollHumanityRequest(sample=sample(ana_person, 0)))
    await hum.client(ana).verify_humanity(pb.VerifyHumanityRequest(sample=sample(ana_person, 1)))
    limited = await rpc_error(
        hum.client(ana).verify_humanity(pb.VerifyHumanityRequest(sample=sample(ana_person, 1)))
    )
    assert limited.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert limited.details() == "too many proof-of-humanity attempts; retry in 100 s"
    hum.clock.advance(timedelta(seconds=100))
    verified = await hum.client(ana).verify_humanity(
        pb.VerifyHumanityRequest(sample=sample(ana_person, 1))
    )
    assert verified.matched


# -- who may read what ------------------------------------------------------------------


async def test_status_is_for_the_user_and_admins_human_verified_is_public(
    hum: Humanity, ana_person: syn.SyntheticPerson
) -> None:
    ana_id, ana = await hum.user("ana")
    _, bob = await hum.user("bob")
    admin = await hum.admin()
    await hum.client(ana).enroll_humanity(pb.EnrollHumanityRequest(sample=sample(ana_person, 0)))

    denied = await rpc_error(
        hum.client(bob).get_humanity_status(pb.GetHumanityStatusRequest(user_id=ana_id))
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    seen = await hum.client(admin).get_humanity_status(pb.GetHumanityStatusRequest(user_id=ana_id))
    assert seen.status.enrolled and seen.status.user_id == ana_id
    missing = await rpc_error(
        hum.client(admin).get_humanity_status(pb.GetHumanityStatusRequest(user_id="nobody"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    # the boolean is public on User
    assert (await hum.client(bob).get_user(pb.GetUserRequest(user_id=ana_id))).user.human_verified
    anonymous = await rpc_error(
        hum.client().enroll_humanity(pb.EnrollHumanityRequest(sample=sample(ana_person, 0)))
    )
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED


# -- registration without a chain, with a failing chain ---------------------------------------


async def test_without_a_chain_the_enrollment_waits_and_registers_later(
    hum: Humanity, ana_person: syn.SyntheticPerson
) -> None:
    ana_id, ana = await hum.user("ana")
    hum.humanity.registrar = None  # no chain configured
    enrolled = await hum.client(ana).enroll_humanity(
        pb.EnrollHumanityRequest(sample=sample(ana_person, 0))
    )
    assert enrolled.registry_tx_hash == ""  # no transaction: no hash
    status = (await hum.client(ana).get_humanity_status(pb.GetHumanityStatusRequest())).status
    assert status.enrolled and not status.registered_on_chain and status.registry_tx_hash == ""
    assert not (await hum.client(ana).get_me(pb.GetMeRequest())).user.human_verified
    assert await hum.events(0) == []
    assert await hum.humanity.register_due() == 0

    # the chain comes up, but is unreachable at first: still pending, retried after backoff
    hum.humanity.registrar = hum.registrar
    hum.registrar.fail_with = ConnectionError("chain unreachable")
    assert await hum.humanity.register_due() == 1
    assert await hum.humanity.register_due() == 0  # not due yet
    hum.clock.advance(timedelta(seconds=5))
    hum.registrar.fail_with = None
    assert await hum.humanity.register_due() == 1
    status = (await hum.client(ana).get_humanity_status(pb.GetHumanityStatusRequest())).status
    assert status.registered_on_chain and status.registry_tx_hash == f"0x{2:064x}"
    assert (await hum.client(ana).get_me(pb.GetMeRequest())).user.human_verified
    assert await hum.events(1) == [
        {"user_id": ana_id, "humanity_commitment": enrolled.humanity_commitment}
    ]
    assert await hum.humanity.register_due() == 0


async def test_a_registration_refused_by_the_chain_is_not_retried(
    hum: Humanity, ana_person: syn.SyntheticPerson
) -> None:
    _, ana = await hum.user("ana")
    hum.registrar.fail_with = RegistrationRefused("ALREADY_EXISTS: the commitment is taken")
    enrolled = await hum.client(ana).enroll_humanity(
        pb.EnrollHumanityRequest(sample=sample(ana_person, 0))
    )
    assert enrolled.registry_tx_hash == ""
    hum.clock.advance(timedelta(minutes=10))  # past any retry delay
    assert await hum.humanity.register_due() == 0
    assert not (await hum.client(ana).get_me(pb.GetMeRequest())).user.human_verified
    assert await hum.events(0) == []


# -- nothing biometric at rest ------------------------------------------------------------


def files_content(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


async def test_nothing_biometric_reaches_the_database_or_the_logs(
    hum: Humanity,
    ana_person: syn.SyntheticPerson,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if hum.db.dialect != "sqlite":
        pytest.skip("reads the embedded database files")
    _, ana = await hum.user("ana")
    _, mallory = await hum.user("mallory")
    captures = [sample(ana_person, 0), sample(ana_person, 1, FASTA), sample(ana_person, 2)]
    await hum.client(ana).enroll_humanity(pb.EnrollHumanityRequest(sample=captures[0]))
    await hum.client(ana).verify_humanity(pb.VerifyHumanityRequest(sample=captures[1]))
    duplicate = await rpc_error(
        hum.client(mallory).enroll_humanity(pb.EnrollHumanityRequest(sample=captures[2]))
    )
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
    await hum.db.dispose()  # flush and close the SQLite files

    stored = files_content(tmp_path)
    printed = capsys.readouterr()
    logged = printed.out + printed.err + caplog.text
    for capture in captures:
        lines = [ln for ln in capture.genome.splitlines() if len(ln) > 20][:50]
        assert lines
        for line in lines:
            assert line not in stored
            assert line.decode() not in logged
        # any 64-byte window of the image (its compressed data) is absent from the files
        image = capture.iris_image
        for start in range(100, len(image) - 64, len(image) // 40):
            assert image[start : start + 64] not in stored
    assert os.listdir(tmp_path)  # the database files were read


async def test_concurrent_enrollments_of_one_human_admit_one(
    hum: Humanity, ana_person: syn.SyntheticPerson
) -> None:
    """Two accounts enroll captures of the same human at the same time: the duplicate
    check and the insert are one critical section (per process, and on PostgreSQL across
    replicas: here two service instances stand for two replicas)."""
    one_id, _ = await hum.user("one")
    two_id, _ = await hum.user("two")
    if hum.db.dialect == "postgresql":
        other = HumanityService(hum.db, hum.clock, registrar=hum.registrar)
    else:  # the embedded engine is one process: one service instance
        other = hum.humanity
    captures = [
        hs.BiometricSample(
            syn.iris_image(ana_person, i), syn.genome_vcf(ana_person, i), genome_format="vcf"
        )
        for i in (0, 1)
    ]
    results = await asyncio.gather(
        hum.humanity.enroll(Principal(one_id, frozenset({"learner"})), captures[0]),
        other.enroll(Principal(two_id, frozenset({"learner"})), captures[1]),
        return_exceptions=True,
    )
    admitted = [r for r in results if isinstance(r, hs.EnrollmentResult)]
    refused = [r for r in results if isinstance(r, AlreadyExists)]
    assert len(admitted) == 1 and len(refused) == 1, results
    assert str(refused[0]) == "this human is already enrolled under another account"


async def test_a_retry_racing_its_first_enrollment_answers_the_first_enrollment(
    hum: Humanity, ana_person: syn.SyntheticPerson
) -> None:
    """Same request id, both calls at once (`services.kit.races`; on PostgreSQL the retry
    runs on another instance, as on another replica, and is seen waiting for the first
    one's commit): the retry answers the first enrollment, which is registered once."""
    ana_id, _ = await hum.user("ana")
    ana = Principal(ana_id, frozenset({"learner"}))
    retry_on = (
        HumanityService(hum.db, hum.clock, registrar=hum.registrar)
        if hum.db.dialect == "postgresql"
        else hum.humanity
    )
    capture = hs.BiometricSample(
        syn.iris_image(ana_person, 0), syn.genome_vcf(ana_person, 0), genome_format="vcf"
    )
    calls = iter((hum.humanity, retry_on))
    # The first call's second transaction is its enrollment (the first spends an attempt).
    twins = await twin_calls(
        hum.db, lambda: next(calls).enroll(ana, capture, request_id="enroll-1"), hold=2
    )
    if hum.db.dialect == "postgresql":
        assert twins.second_waited or twins.second_finished_first
    first, second = twins.results()
    # The same enrollment (the retry may answer before the first call registered it).
    same = ("helper_data_id", "humanity_commitment", "ed25519_public_key")
    assert [getattr(first, f) for f in same] == [getattr(second, f) for f in same]
    assert len(hum.registrar.calls) == 1


# -- composition ------------------------------------------------------------------------------


async def test_the_composition_root_wires_humanity_and_its_jobs(
    migrated_database: Database,
    clock: FixedClock,
    signing_key_pem: bytes,
    verifier: TokenVerifier,
    event_bus: EventBus,
    ana_person: syn.SyntheticPerson,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keiko.settings import Settings

    Job = Callable[[asyncio.Event], Awaitable[None]]

    @dataclass
    class Runtime:  # the part of keiko.runtime.ServiceRuntime the factory uses
        settings: Settings
        database: Database
        clock: FixedClock
        jwt_private_key_pem: bytes | None
        event_bus: EventBus
        jobs: dict[str, Job] = field(default_factory=dict)

        def run_in_background(self, name: str, job: Job) -> None:
            self.jobs[name] = job

    runtime = Runtime(
        Settings(
            webauthn_rp_id=RP_ID,
            webauthn_origins=[ORIGIN],
            chain_rpc_url="http://127.0.0.1:5050/rpc",
            chain_translator_target="127.0.0.1:9",
        ),
        migrated_database,
        clock,
        signing_key_pem,
        event_bus,
    )
    servicer = build_identity_servicer(runtime)
    assert isinstance(servicer, HumanityIdentityServicer)
    assert set(runtime.jobs) == {
        "identity.purge_expired",
        "identity.outbox",
        "identity.humanity_warm_up",
        "identity.humanity_registration",
    }
    registrar = servicer.humanity.registrar
    assert isinstance(registrar, TranslatorRegistrar)
    assert registrar.translator.target == "127.0.0.1:9"
    # identity calls the translator as a Keiko service (RegisterHumanity is trusted-only)
    caller = verifier.verify(registrar._token())
    assert caller.has_role("service") and not caller.is_admin

    async with (
        running_host([servicer], token_verifier=verifier) as host,
        grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel,
    ):
        # A host without the chain translator (UNIMPLEMENTED, as on today's platform): the
        # enrollment is stored, pending, without a transaction hash, and retried later.
        registrar.translator.target = f"127.0.0.1:{host.port}"
        authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id=RP_ID)
        signed = await register(servicer.service, authenticator, "ana@example.org", "Ana")
        client = stub(Stub, channel, access_token=signed.tokens.access_token, timeout=120)
        enrolled = await client.enroll_humanity(
            pb.EnrollHumanityRequest(sample=sample(ana_person, 0))
        )
        assert enrolled.registry_tx_hash == ""
        status = (await client.get_humanity_status(pb.GetHumanityStatusRequest())).status
        assert status.enrolled and not status.registered_on_chain
        async with migrated_database.session() as session:
            stored = await HumanityRepository(session).get(signed.user.id)
        assert stored is not None and stored.registration_state == "pending"
        assert stored.registration_error.startswith("AioRpcError")
        assert "UNIMPLEMENTED" in stored.registration_error
        assert stored.next_attempt_at == clock.now() + timedelta(seconds=5)

    # the registration job stops when told to, closing its channel
    stop = asyncio.Event()
    stop.set()
    await runtime.jobs["identity.humanity_registration"](stop)


async def test_the_index_lookup_reads_every_tag_and_candidate(
    migrated_database: Database, clock: FixedClock
) -> None:
    """The tag lookup and the candidate fetch pass their lists as one parameter (an array
    on PostgreSQL, JSON on SQLite): the full signed 64-bit range round-trips, and the
    candidates are the selected users plus every enrollment without tags under the key."""
    from services.identity.storage import users

    now = clock.now()
    extremes = [-(2**63), -1, 0, 1, 2**63 - 1, 2**53 + 1]
    stored = {"u0": extremes[:3], "u1": extremes[3:], "u2": [], "u3": [7]}
    async with migrated_database.transaction() as session:
        for n, (user_id, tags) in enumerate(stored.items()):
            await session.execute(
                users.insert().values(
                    id=user_id,
                    email=f"{user_id}@example.org",
                    display_name=user_id,
                    user_handle=bytes([n]),
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.execute(
                humanity_enrollments.insert().values(
                    user_id=user_id,
                    id=f"e-{user_id}",
                    helper_data=user_id.encode(),
                    commitment=f"0x{n}",
                    ed25519_public_key=f"{n:064x}",
                    registration_state="pending",
                    enrolled_at=now + timedelta(seconds=n),
                    updated_at=now,
                    index_key_id=None if user_id == "u2" else ("other" if user_id == "u3" else "k"),
                )
            )
            if tags:
                await session.execute(
                    humanity_index_tags.insert(), [{"user_id": user_id, "tag": t} for t in tags]
                )
    async with migrated_database.session() as session:
        repository = HumanityRepository(session)
        probe_tags = [*extremes, 2**62, -(2**62), *range(100, 4100)]
        hits = await repository.tag_hits(probe_tags)
        assert sorted(hits) == sorted(
            (u, t) for u, tags in stored.items() for t in tags if u < "u3"
        )
        assert await repository.tag_hits([]) == []
        found = await repository.candidate_helpers({"u1"}, "k")
        assert [(u, blob) for u, blob in found] == [(u, u.encode()) for u in ("u1", "u2", "u3")]
        assert [u for u, _ in await repository.candidate_helpers(set(), "k")] == ["u2", "u3"]

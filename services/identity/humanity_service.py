"""Proof-of-humanity use cases: enroll, verify, recover the signing key, status, and the
on-chain registration of the commitment.

The biometric work is :mod:`services.identity.humanity` (``enroll`` / ``reproduce``,
CPU-bound: run in a worker thread, at most ``max_concurrent`` at a time). This module
adds who may do what, storage, uniqueness across all enrolled users, idempotency, the
registry transaction and the ``identity.humanity_verified`` event.

**Privacy.** The uploads live only in memory for the duration of the call: they are not
stored, logged, or echoed in errors (the pipeline's error reasons describe the input,
never its content). What is stored: the helper data, the commitment and the Ed25519
public key (:mod:`services.identity.humanity_storage`).

**One human, one key.** Off chain, before anything is stored: the capture is checked
against every enrolled helper data (the pipeline's duplicate check); a match is refused
with ALREADY_EXISTS without saying whose enrollment matched. On chain, the humanity
registry accepts one registration per account and per commitment.

**Registration and ``human_verified``.** As the contract says (``User.human_verified``:
"enrolled a proof of humanity whose commitment is registered on chain"), the user
becomes a verified human when the registry transaction is accepted, not before. The
registration goes through a :class:`HumanityRegistrar` (in production the chain
translator's RegisterHumanity RPC, which dedicates one registrant account per user
because the registry keys registrations by calling account). EnrollHumanity tries it
once, right after storing the enrollment; if the chain is not configured, unreachable
or slow, the enrollment stays ``pending`` (no transaction hash is invented) and the
registration job (:meth:`HumanityService.register_due`) retries with backoff. When it is
accepted, one transaction marks the enrollment registered, sets ``users.human_verified``
and enqueues ``identity.humanity_verified`` ``{"user_id", "humanity_commitment"}`` in the
identity outbox.

**Concurrency.** The duplicate check and the insert form one critical section, so two
captures of the same human cannot both pass the check: an asyncio lock per process and,
on PostgreSQL, a transaction-scoped advisory lock across replicas (SQLite, the embedded
engine, is one process). Enrollments are therefore serialized; each costs the capture,
an index lookup and one decode per candidate the index returns (docs/humanity.md,
"Uniqueness").

**Errors** (gRPC code: message):

- missing, oversized (checked before any decoding) or unusable capture: INVALID_ARGUMENT
  on ``sample.iris_image`` / ``sample.genome`` / ``sample.genome_format`` with the
  pipeline's reason (``image is N bytes; the limit is 8388608 bytes``, ``no pupil
  found: ...``, ``truncated VCF: the last record (line L) is incomplete``, ...)
- the caller already enrolled (other request id): ALREADY_EXISTS ``the caller is already
  enrolled; use VerifyHumanity or RecoverSigningKey``
- the capture matches another account's enrollment: ALREADY_EXISTS ``this human is
  already enrolled under another account``
- verify/recover before enrolling: FAILED_PRECONDITION ``the caller has not enrolled a
  proof of humanity``
- recover with a capture that does not reproduce the key: UNAUTHENTICATED ``the iris or
  genome capture does not match this enrollment`` (VerifyHumanity answers matched=false)
- another user's status (not an admin): PERMISSION_DENIED
- more than ``attempts_capacity`` captures in a burst: RESOURCE_EXHAUSTED ``too many
  proof-of-humanity attempts; retry in N s``

``VerifyHumanityResponse.iris_distance`` is always 0: the enrolled iris code is not kept
(only helper data), so there is nothing to measure a distance to.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from sqlalchemy.exc import IntegrityError

from services.identity import humanity
from services.identity.domain import hash_secret
from services.identity.humanity import genome as humanity_genome
from services.identity.humanity import iris as humanity_iris
from services.identity.humanity_registrar import HumanityRegistrar, RegistrationRefused
from services.identity.humanity_storage import (
    FAILED,
    PENDING,
    EnrollmentRecord,
    HumanityRepository,
    IndexedHelperStore,
    outbox,
)
from services.identity.storage import IdentityRepository
from services.kit.auth import Principal
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    RateLimited,
    ValidationError,
)
from services.kit.events import Event
from services.kit.events.outbox import enqueue
from services.kit.locks import advisory_lock
from services.kit.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")
TOPIC_HUMANITY_VERIFIED = "identity.humanity_verified"
MAX_IRIS_IMAGE_BYTES = humanity_iris.MAX_IMAGE_BYTES
MAX_GENOME_BYTES = humanity_genome.MAX_GENOME_BYTES
MAX_REQUEST_ID_CHARS = 128
# The advisory lock of the enrollment critical section across replicas (PostgreSQL).
ENROLL_LOCK = "keiko.identity.humanity.enroll"


_PIPELINE_FIELDS = ("iris_image", "genome", "genome_format")
GenomeFormat = Literal["vcf", "fasta"]


@dataclass(frozen=True)
class BiometricSample:
    """The two captures, in memory only. Never stored, logged or returned."""

    iris_image: bytes
    genome: bytes
    # "vcf" or "fasta"; anything else is refused on `sample.genome_format`.
    genome_format: str

    def __repr__(self) -> str:  # never print the captures
        return (
            f"BiometricSample(iris_image=<{len(self.iris_image)} bytes>, "
            f"genome=<{len(self.genome)} bytes>, genome_format={self.genome_format!r})"
        )


@dataclass(frozen=True)
class HumanityPolicy:
    """Limits of the humanity RPCs.

    Each capture costs 0.1-0.3 s of CPU plus one fuzzy-extractor decode per enrolled
    human, so attempts are rate limited per user (a token bucket shared by enroll, verify
    and recover); failed verifications also stop an online search against the helper data.
    """

    attempts_capacity: float = 10.0
    attempts_refill_per_second: float = 1.0 / 60.0
    max_concurrent: int = 2
    # Registration retries: backoff doubling from `retry_initial` up to `retry_max`.
    retry_initial: timedelta = timedelta(seconds=5)
    retry_max: timedelta = timedelta(minutes=10)
    registration_batch: int = 20


@dataclass(frozen=True)
class EnrollmentResult:
    helper_data_id: str
    humanity_commitment: str
    ed25519_public_key: str
    registry_tx_hash: str
    registered_on_chain: bool


@dataclass(frozen=True)
class VerificationResult:
    matched: bool
    ed25519_public_key: str
    # Not computable: the enrolled iris code is not kept (only helper data), see module doc.
    iris_distance: float = 0.0


@dataclass(frozen=True)
class HumanityStatus:
    user_id: str
    enrolled: bool
    humanity_commitment: str = ""
    ed25519_public_key: str = ""
    registry_tx_hash: str = ""
    registered_on_chain: bool = False
    enrolled_at: datetime | None = None


def _result(record: EnrollmentRecord) -> EnrollmentResult:
    return EnrollmentResult(
        helper_data_id=record.id,
        humanity_commitment=record.commitment,
        ed25519_public_key=record.ed25519_public_key,
        registry_tx_hash=record.registry_tx_hash,
        registered_on_chain=record.registered_on_chain,
    )


def commitment_hex(commitment: int) -> str:
    return hex(commitment)


def validate_sample(sample: BiometricSample) -> GenomeFormat:
    """Cheap checks done before any decoding: presence, sizes, format."""
    if not sample.iris_image:
        raise ValidationError("sample.iris_image", "is required")
    if len(sample.iris_image) > MAX_IRIS_IMAGE_BYTES:
        raise ValidationError(
            "sample.iris_image",
            f"image is {len(sample.iris_image)} bytes; the limit is {MAX_IRIS_IMAGE_BYTES} bytes",
        )
    if not sample.genome:
        raise ValidationError("sample.genome", "is required")
    if len(sample.genome) > MAX_GENOME_BYTES:
        raise ValidationError(
            "sample.genome",
            f"genome is {len(sample.genome)} bytes; the limit is {MAX_GENOME_BYTES} bytes",
        )
    if sample.genome_format == "vcf":
        return "vcf"
    if sample.genome_format == "fasta":
        return "fasta"
    raise ValidationError(
        "sample.genome_format", "must be GENOME_FORMAT_VCF or GENOME_FORMAT_FASTA"
    )


def _request_id(value: str) -> str | None:
    value = value.strip()
    if len(value) > MAX_REQUEST_ID_CHARS:
        raise ValidationError("request_id", f"must be at most {MAX_REQUEST_ID_CHARS} characters")
    return value or None


class HumanityService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        registrar: HumanityRegistrar | None = None,
        policy: HumanityPolicy | None = None,
        on_commit: Callable[[], None] | None = None,
        index_key: humanity.IndexKey | None = None,
    ) -> None:
        """``registrar`` None: no chain configured; enrollments stay pending until a
        process with a registrar runs :meth:`register_due`. ``on_commit`` is called after
        an event was enqueued (the outbox relay's ``notify``). ``index_key`` keys the
        duplicate-check index; without one a random key is used, so this process's tags
        are useless to others (their duplicate checks decode those records in full)."""
        self.db = db
        self._users_written: list[Callable[[IdentityRepository], None]] = []
        self.clock = clock
        self.registrar = registrar
        self.policy = policy or HumanityPolicy()
        self._on_commit = on_commit
        self.index_key = index_key or humanity.IndexKey(secrets.token_bytes(32))
        self._enroll_lock = asyncio.Lock()
        self._cpu = asyncio.Semaphore(self.policy.max_concurrent)

    # -- plumbing ----------------------------------------------------------------------------

    def on_users_written(self, listener: Callable[[IdentityRepository], None]) -> None:
        """Call `listener` with the identity repository of each committed transaction that
        changed users (``human_verified``): the identity service of the same process
        forgets them from its read caches (``IdentityService.forget_written``)."""
        self._users_written.append(listener)

    async def _run_pipeline(self, fn: Callable[[], T]) -> T:
        """Run a CPU-bound pipeline call in a worker thread; pipeline field names become
        ``sample.<field>`` paths."""
        async with self._cpu:
            try:
                return await asyncio.to_thread(fn)
            except ValidationError as error:
                if error.field in _PIPELINE_FIELDS:
                    raise ValidationError(f"sample.{error.field}", error.reason) from None
                raise

    async def _spend_attempt(self, user_id: str) -> None:
        async with self.db.transaction() as session:
            wait = await IdentityRepository(session, self.db.dialect).take_rate_token(
                hash_secret(f"humanity:{user_id}"),
                self.clock.now(),
                capacity=self.policy.attempts_capacity,
                refill_per_second=self.policy.attempts_refill_per_second,
            )
        if wait > 0:
            raise RateLimited(f"too many proof-of-humanity attempts; retry in {math.ceil(wait)} s")

    async def _enrollment(self, user_id: str) -> EnrollmentRecord | None:
        async with self.db.session() as session:
            return await HumanityRepository(session).get(user_id)

    async def _require_user(self, user_id: str) -> None:
        async with self.db.session() as session:
            if await IdentityRepository(session, self.db.dialect).get_user(user_id) is None:
                raise NotFound("user not found")

    # -- enroll ------------------------------------------------------------------------------

    async def enroll(
        self, principal: Principal, sample: BiometricSample, request_id: str = ""
    ) -> EnrollmentResult:
        """Enroll the caller. A retry with the same ``request_id`` returns the original
        enrollment; any other second enrollment of the same user is ALREADY_EXISTS, and so
        is a capture matching another user's enrollment."""
        user_id = principal.user_id
        rid = _request_id(request_id)
        existing = await self._enrollment(user_id)
        if existing is not None:
            return await self._replay(existing, rid)
        genome_format = validate_sample(sample)
        await self._require_user(user_id)
        await self._spend_attempt(user_id)
        async with self._enroll_lock, advisory_lock(self.db, ENROLL_LOCK):
            existing = await self._enrollment(user_id)
            if existing is not None:  # a concurrent call of the same user won
                return await self._replay(existing, rid)
            store = IndexedHelperStore(self.db, self.index_key, asyncio.get_running_loop())
            try:
                enrolled = await self._run_pipeline(
                    lambda: humanity.enroll(
                        sample.iris_image, sample.genome, genome_format, existing=store
                    )
                )
            except humanity.DuplicateHuman as duplicate:
                # Whose enrollment matched is not the caller's business.
                log.info("humanity.duplicate_refused", user_id=user_id, modality=duplicate.modality)
                raise AlreadyExists(
                    "this human is already enrolled under another account"
                ) from None
            now = self.clock.now()
            record = EnrollmentRecord(
                id=str(uuid.uuid4()),
                user_id=user_id,
                helper_data=enrolled.helper_data,
                commitment=commitment_hex(enrolled.secret_commitment),
                ed25519_public_key=enrolled.ed25519_public_key.hex(),
                request_id=rid,
                registration_state=PENDING,
                registry_tx_hash="",
                registration_attempts=0,
                registration_error="",
                next_attempt_at=None,
                enrolled_at=now,
                registered_at=None,
                updated_at=now,
                index_key_id=enrolled.index_key_id,
            )
            tags = enrolled.index_tags
            del enrolled  # the secret keys are not kept
            try:
                async with self.db.transaction() as session:
                    await HumanityRepository(session).insert(record, tags)
            except IntegrityError as exc:
                if not is_unique_violation(exc):
                    raise
                again = await self._enrollment(user_id)
                if again is not None:
                    return await self._replay(again, rid)
                raise AlreadyExists("this human is already enrolled") from None
        log.info("humanity.enrolled", user_id=user_id, helper_data_id=record.id)
        return _result(await self._try_register(record))

    async def _replay(self, record: EnrollmentRecord, request_id: str | None) -> EnrollmentResult:
        if request_id is not None and record.request_id == request_id:
            return _result(record)
        raise AlreadyExists(
            "the caller is already enrolled; use VerifyHumanity or RecoverSigningKey"
        )

    # -- verify and recover ------------------------------------------------------------------

    async def _reproduce(
        self, principal: Principal, sample: BiometricSample
    ) -> tuple[EnrollmentRecord, humanity.Reproduction | None]:
        genome_format = validate_sample(sample)
        record = await self._enrollment(principal.user_id)
        if record is None:
            raise FailedPrecondition("the caller has not enrolled a proof of humanity")
        await self._spend_attempt(principal.user_id)
        try:
            reproduced = await self._run_pipeline(
                lambda: humanity.reproduce(
                    sample.iris_image, sample.genome, genome_format, record.helper_data
                )
            )
        except humanity.CaptureMismatch:
            return record, None
        if reproduced.ed25519_public_key.hex() != record.ed25519_public_key:
            # the helper data's own check hashes passed: stored data is inconsistent
            raise RuntimeError(f"enrollment {record.id}: reproduced key differs from stored key")
        return record, reproduced

    async def verify(self, principal: Principal, sample: BiometricSample) -> VerificationResult:
        """Do these captures reproduce the caller's enrolled key? (matched false if not)"""
        _, reproduced = await self._reproduce(principal, sample)
        if reproduced is None:
            return VerificationResult(matched=False, ed25519_public_key="")
        return VerificationResult(
            matched=True, ed25519_public_key=reproduced.ed25519_public_key.hex()
        )

    async def recover(self, principal: Principal, sample: BiometricSample) -> str:
        """The hex public key of the signing key reproduced from the captures;
        UNAUTHENTICATED when they do not reproduce it."""
        _, reproduced = await self._reproduce(principal, sample)
        if reproduced is None:
            raise humanity.CaptureMismatch("iris or genome")
        return reproduced.ed25519_public_key.hex()

    # -- status ------------------------------------------------------------------------------

    async def status(self, principal: Principal, user_id: str = "") -> HumanityStatus:
        """The user themself and admins; anyone else: PERMISSION_DENIED (the public bit
        is ``User.human_verified``)."""
        target = user_id or principal.user_id
        principal.require_self_or_admin(target)
        record = await self._enrollment(target)
        if record is None:
            await self._require_user(target)
            return HumanityStatus(user_id=target, enrolled=False)
        return HumanityStatus(
            user_id=target,
            enrolled=True,
            humanity_commitment=record.commitment,
            ed25519_public_key=record.ed25519_public_key,
            registry_tx_hash=record.registry_tx_hash,
            registered_on_chain=record.registered_on_chain,
            enrolled_at=record.enrolled_at,
        )

    # -- on-chain registration ---------------------------------------------------------------

    def _backoff(self, attempts: int) -> timedelta:
        delay = self.policy.retry_initial * (2 ** min(attempts, 16))
        return min(delay, self.policy.retry_max)

    async def _try_register(self, record: EnrollmentRecord) -> EnrollmentRecord:
        """One registration attempt; returns the record as stored afterwards."""
        if self.registrar is None or record.registration_state != PENDING:
            return record
        now = self.clock.now()
        try:
            outcome = await self.registrar.register(
                user_id=record.user_id,
                commitment=record.commitment,
                ed25519_public_key=record.ed25519_public_key,
                request_id=f"identity-humanity-{record.id}",
            )
        except RegistrationRefused as refused:
            log.warning(
                "humanity.registration_refused", user_id=record.user_id, reason=refused.reason
            )
            async with self.db.transaction() as session:
                await HumanityRepository(session).record_attempt(
                    record.user_id,
                    state=FAILED,
                    error=refused.reason,
                    tx_hash="",
                    next_attempt_at=None,
                    now=now,
                )
        except Exception as exc:  # transient: keep pending, retry later
            log.warning(
                "humanity.registration_deferred",
                user_id=record.user_id,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            async with self.db.transaction() as session:
                await HumanityRepository(session).record_attempt(
                    record.user_id,
                    state=PENDING,
                    error=f"{type(exc).__name__}: {exc}",
                    tx_hash=record.registry_tx_hash,
                    next_attempt_at=now + self._backoff(record.registration_attempts),
                    now=now,
                )
        else:
            if outcome.accepted:
                await self._registered(record, outcome.tx_hash)
            else:  # sent, not yet accepted: keep its hash, check again later
                async with self.db.transaction() as session:
                    await HumanityRepository(session).record_attempt(
                        record.user_id,
                        state=PENDING,
                        error="registration transaction not yet accepted",
                        tx_hash=outcome.tx_hash,
                        next_attempt_at=now + self._backoff(record.registration_attempts),
                        now=now,
                    )
        stored = await self._enrollment(record.user_id)
        return stored if stored is not None else record

    async def _registered(self, record: EnrollmentRecord, tx_hash: str) -> None:
        """Registered on chain: mark it, flip ``human_verified`` and enqueue the event,
        in one transaction."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            if not await HumanityRepository(session).mark_registered(record.user_id, tx_hash, now):
                return  # another replica recorded it first
            identity = IdentityRepository(session, self.db.dialect)
            await identity.set_human_verified(record.user_id, True, now)
            await enqueue(
                session,
                outbox,
                Event(
                    topic=TOPIC_HUMANITY_VERIFIED,
                    key=record.user_id,
                    payload={
                        "user_id": record.user_id,
                        "humanity_commitment": record.commitment,
                    },
                    occurred_at=now,
                ),
            )
        for listener in self._users_written:
            listener(identity)
        log.info("humanity.registered", user_id=record.user_id, tx_hash=tx_hash)
        if self._on_commit is not None:
            self._on_commit()

    async def register_due(self) -> int:
        """Retry the pending registrations that are due; returns how many were attempted."""
        if self.registrar is None:
            return 0
        async with self.db.session() as session:
            due = await HumanityRepository(session).due(
                self.clock.now(), self.policy.registration_batch
            )
        for record in due:
            await self._try_register(record)
        return len(due)

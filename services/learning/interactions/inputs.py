"""RecordInteraction / PrepareInteraction input and its mapping to the domain interaction,
and the check of a device signature. No I/O."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import nacl.exceptions
import nacl.signing

from services.kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from services.learning.hierarchy import domain as h
from services.learning.interactions import domain as ix
from services.learning.statements.domain import (
    DeviceSignature,
    InteractionDetails,
    InteractionScore,
    StatementRecord,
)
from services.learning.xapi import ValidatedStatement, format_duration, vocab

KIND_NAMES: dict[str, h.InteractionKind] = {k.value: k for k in h.InteractionKind}
# Interactions one RecordInteractions call takes (docs/limits.md): the largest page and
# the kit's default for a repeated field, as for a batch of statements.
MAX_INTERACTION_BATCH = 500


@dataclass(frozen=True)
class ScoreInput:
    scaled: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class InteractionInput:
    """RecordInteraction / PrepareInteraction input (see the proto's InteractionInput)."""

    kind: str
    learner_id: str = ""
    course_id: str = ""
    class_id: str = ""
    tutorial_session_id: str = ""
    study_session_id: str = ""
    activity_id: str = ""
    title: str = ""
    content: str = ""
    response: str = ""
    related_interaction_id: str = ""
    score: ScoreInput | None = None
    success: bool | None = None
    completion: bool | None = None
    duration: timedelta | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class InteractionSubmission:
    """One interaction to record: RecordInteraction's fields but the request id."""

    interaction: InteractionInput
    statement_id: str = ""
    device_signature: DeviceSignature | None = None


_LOCATABLE = (NotFound, PermissionDenied, FailedPrecondition, AlreadyExists)


@contextmanager
def item_errors(prefix: str, field: str) -> Iterator[None]:
    """Errors raised within name the batch item (`prefix`, e.g. "interactions[3].") and
    the field they are about: a ValidationError its own field under the prefix, the other
    client errors `field`. With no prefix (a single RecordInteraction) they pass as
    raised, so the single call's messages stay as they were."""
    try:
        yield
    except DomainError as e:
        if not prefix:
            raise
        if isinstance(e, ValidationError):
            raise ValidationError(prefix + e.field, e.reason) from None
        if isinstance(e, _LOCATABLE):
            raise type(e)(f"{prefix}{field}: {e.message}") from None
        raise


@dataclass(frozen=True)
class PreparedInteraction:
    statement_id: str
    statement_json: str
    canonical_json: str


_SEGMENT = {
    h.InteractionKind.QUESTION: "question",
    h.InteractionKind.ANSWER: "question",
    h.InteractionKind.EXERCISE: "exercise",
    h.InteractionKind.DISCUSSION: "discussion",
    h.InteractionKind.EVALUATION: "evaluation",
    h.InteractionKind.FEEDBACK: "feedback",
}


def _keiko_activity_id(iri: str, segment: str) -> str | None:
    prefix = f"{vocab.KEIKO_ACTIVITIES}{segment}/"
    if iri.startswith(prefix):
        return h.check_id(iri[len(prefix) :], "interaction.activity_id")
    return None


def domain_interaction(
    kind: h.InteractionKind,
    inp: InteractionInput,
    statement_id: str,
    related: StatementRecord | None,
) -> tuple[ix.Interaction, str | None]:
    """The domain interaction, and the external object IRI to put in place of Keiko's one."""
    segment = _SEGMENT[kind]
    external: str | None = None
    own_id: str | None = None
    if inp.activity_id:
        own_id = _keiko_activity_id(inp.activity_id, segment)
        if own_id is None:
            external = inp.activity_id
    score = _score(inp.score)
    if kind is h.InteractionKind.QUESTION:
        asked = ix.Question(id=own_id or statement_id, text=inp.content, title=inp.title or None)
        return asked, external
    if kind is h.InteractionKind.ANSWER:
        question = own_id
        if question is None and external is None:
            if related is None or related.object_id is None:
                raise ValidationError(
                    "interaction.activity_id",
                    "an answer names its question: activity_id or related_interaction_id",
                )
            question = _keiko_activity_id(related.object_id, "question")
            if question is None:
                external = related.object_id
        return (
            ix.Answer(
                id=statement_id,
                question_id=question or statement_id,
                response=inp.response,
                success=inp.success,
                score=score,
                title=inp.title or None,
            ),
            external,
        )
    if kind is h.InteractionKind.EXERCISE:
        return (
            ix.Exercise(
                id=own_id or statement_id,
                title=inp.title,
                completed=bool(inp.completion),
                success=inp.success,
                score=score,
                duration=inp.duration,
            ),
            external,
        )
    if kind is h.InteractionKind.DISCUSSION:
        thread = own_id
        if thread is None and external is None and related is not None and related.object_id:
            thread = _keiko_activity_id(related.object_id, "discussion")
        return (
            ix.Discussion(
                id=statement_id,
                thread_id=thread or statement_id,
                text=inp.content,
                title=inp.title or None,
            ),
            external,
        )
    if kind is h.InteractionKind.EVALUATION:
        if score is None:
            raise ValidationError("interaction.score", "is required for an evaluation")
        return (
            ix.Evaluation(
                id=own_id or statement_id,
                title=inp.title,
                score=score,
                success=inp.success,
                duration=inp.duration,
            ),
            external,
        )
    return (
        ix.Feedback(
            id=own_id or statement_id,
            text=inp.content,
            about_statement_id=related.id if related is not None else None,
            score=score,
        ),
        external,
    )


def stable_activity(inp: InteractionInput) -> bool:
    """Whether the interaction's object is an activity named by the input (activity_id,
    or the related interaction's question or thread), which is likely stored already;
    otherwise `domain_interaction` makes one from the statement id, always new. Only a
    hint (for trying a write without a transaction first), never a rule."""
    if inp.activity_id:
        return True
    kind = KIND_NAMES.get(inp.kind)
    return bool(inp.related_interaction_id) and kind in (
        h.InteractionKind.ANSWER,
        h.InteractionKind.DISCUSSION,
    )


def _score(score: ScoreInput | None) -> ix.Score | None:
    if score is None:
        return None
    return ix.Score(raw=score.raw, min=score.min, max=score.max, scaled=score.scaled)


def interaction_details(inp: InteractionInput, v: ValidatedStatement) -> InteractionDetails:
    score = None
    if inp.score is not None:
        score = InteractionScore(
            scaled=inp.score.scaled, raw=inp.score.raw, min=inp.score.min, max=inp.score.max
        )
    return InteractionDetails(
        activity_id=v.object_id or "",
        title=inp.title,
        content=inp.content,
        response=inp.response,
        related_interaction_id=inp.related_interaction_id.lower(),
        score=score,
        success=inp.success,
        completion=inp.completion,
        duration=format_duration(inp.duration) if inp.duration is not None else None,
        duration_seconds=inp.duration.total_seconds() if inp.duration is not None else None,
    )


def verify_device_signature(canonical: bytes, device: DeviceSignature) -> None:
    try:
        signature = bytes.fromhex(device.signature_hex)
    except ValueError:
        raise ValidationError("device_signature.signature_hex", "must be hex") from None
    try:
        public_key = bytes.fromhex(device.public_key_hex)
    except ValueError:
        raise ValidationError("device_signature.public_key_hex", "must be hex") from None
    if len(signature) != 64:
        raise ValidationError("device_signature.signature_hex", "must be 64 bytes (128 hex)")
    if len(public_key) != 32:
        raise ValidationError("device_signature.public_key_hex", "must be 32 bytes (64 hex)")
    try:
        nacl.signing.VerifyKey(public_key).verify(canonical, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError):
        raise ValidationError(
            "device_signature.signature_hex",
            "does not verify over the prepared canonical statement with public_key_hex",
        ) from None

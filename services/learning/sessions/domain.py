"""Tutorial sessions (a human or AI tutor with one student, or a human tutor with a group)
and study sessions (a learner alone), as plain types and rules. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.kit.clock import Clock
from services.kit.errors import FailedPrecondition, PermissionDenied, ValidationError
from services.learning.hierarchy.domain import (
    MAX_TITLE,
    Class,
    activity_object,
    ai_tutor_agent,
    check_id,
    checked_text,
    keiko_agent,
    study_session_iri,
    tutorial_session_iri,
)
from services.learning.xapi import vocab


class TutorKind(StrEnum):
    """Who tutors a tutorial session: a person, an AI tutor, or a person tutoring a group."""

    HUMAN = "human"
    AI = "ai"
    GROUP = "group"


def ensure_recordable(
    what: str, participant: bool, started_at: datetime, ended_at: datetime | None, at: datetime
) -> None:
    if not participant:
        raise PermissionDenied(f"only participants may record into this {what}")
    if at < started_at:
        raise FailedPrecondition(f"the {what} has not started yet")
    if ended_at is not None and at >= ended_at:
        raise FailedPrecondition(f"the {what} has ended; nothing can be recorded after its end")


@dataclass(frozen=True, slots=True)
class TutorialSession:
    """A tutoring session. HUMAN and AI sessions have exactly one student; a GROUP
    session is a human tutor with two or more students. The tutor is never a student."""

    id: str
    tutor_id: str
    tutor_kind: TutorKind
    student_ids: tuple[str, ...]
    class_id: str | None
    started_at: datetime
    ended_at: datetime | None = None

    @classmethod
    def start(
        cls,
        *,
        id: str,
        tutor_id: str,
        tutor_kind: TutorKind | str,
        student_ids: list[str] | tuple[str, ...],
        clock: Clock,
        klass: Class | None = None,
    ) -> TutorialSession:
        try:
            kind = TutorKind(tutor_kind)
        except ValueError:
            raise ValidationError(
                "tutorial_session.tutor_kind", "must be one of human, ai, group"
            ) from None
        students = tuple(
            check_id(s, f"tutorial_session.student_ids[{i}]") for i, s in enumerate(student_ids)
        )
        if len(set(students)) != len(students):
            raise ValidationError("tutorial_session.student_ids", "must not repeat a student")
        if kind is TutorKind.GROUP and len(students) < 2:
            raise ValidationError(
                "tutorial_session.student_ids", "a group session needs at least two students"
            )
        if kind is not TutorKind.GROUP and len(students) != 1:
            raise ValidationError(
                "tutorial_session.student_ids",
                f"a {kind.value} tutorial session has exactly one student",
            )
        tutor = check_id(tutor_id, "tutorial_session.tutor_id")
        if tutor in students:
            raise ValidationError("tutorial_session.tutor_id", "the tutor cannot be a student")
        return cls(
            id=check_id(id, "tutorial_session.id"),
            tutor_id=tutor,
            tutor_kind=kind,
            student_ids=students,
            class_id=klass.id if klass is not None else None,
            started_at=clock.now(),
        )

    @property
    def iri(self) -> str:
        return tutorial_session_iri(self.id)

    @property
    def participants(self) -> tuple[str, ...]:
        return (self.tutor_id, *self.student_ids)

    def is_participant(self, user_id: str) -> bool:
        return user_id in self.participants

    def ensure_can_record(self, user_id: str, at: datetime) -> None:
        """PermissionDenied for a non-participant; FailedPrecondition outside the session."""
        ensure_recordable(
            "tutorial session", self.is_participant(user_id), self.started_at, self.ended_at, at
        )

    def end(self, by: str, clock: Clock) -> TutorialSession:
        """Close the session (any participant may). Ending twice is FailedPrecondition."""
        if not self.is_participant(by):
            raise PermissionDenied("only participants may end this tutorial session")
        if self.ended_at is not None:
            raise FailedPrecondition("the tutorial session has already ended")
        return replace(self, ended_at=max(clock.now(), self.started_at))

    def tutor_agent(self) -> dict[str, Any]:
        if self.tutor_kind is TutorKind.AI:
            return ai_tutor_agent(self.tutor_id)
        return keiko_agent(self.tutor_id)

    def activity(self) -> dict[str, Any]:
        return activity_object(self.iri, vocab.TYPE_KEIKO_TUTORIAL_SESSION, None, "en")


@dataclass(frozen=True, slots=True)
class StudySession:
    """A learner's self-study session (alone, or practising with tools)."""

    id: str
    learner_id: str
    class_id: str | None
    topic: str
    started_at: datetime
    ended_at: datetime | None = None

    @classmethod
    def start(
        cls, *, id: str, learner_id: str, topic: str, clock: Clock, klass: Class | None = None
    ) -> StudySession:
        return cls(
            id=check_id(id, "study_session.id"),
            learner_id=check_id(learner_id, "study_session.learner_id"),
            class_id=klass.id if klass is not None else None,
            topic=checked_text(topic, "study_session.topic", max_len=MAX_TITLE, required=False),
            started_at=clock.now(),
        )

    @property
    def iri(self) -> str:
        return study_session_iri(self.id)

    def ensure_can_record(self, user_id: str, at: datetime) -> None:
        ensure_recordable(
            "study session", user_id == self.learner_id, self.started_at, self.ended_at, at
        )

    def end(self, by: str, clock: Clock) -> StudySession:
        if by != self.learner_id:
            raise PermissionDenied("only the learner may end their study session")
        if self.ended_at is not None:
            raise FailedPrecondition("the study session has already ended")
        return replace(self, ended_at=max(clock.now(), self.started_at))

    def activity(self, lang: str = "en") -> dict[str, Any]:
        return activity_object(self.iri, vocab.TYPE_KEIKO_STUDY_SESSION, self.topic or None, lang)

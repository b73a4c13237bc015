"""The learning hierarchy as plain types and rules, and its mapping to xAPI context.

    Course ──> Class (of a course)  ──> TutorialSession | StudySession | interactions
               Class (independent)  ──> TutorialSession | StudySession | interactions

Keiko activity IRIs (ids are restricted to `[A-Za-z0-9._~-]{1,128}`, so they appear
verbatim, with no escaping):

Activity IRI -> activity type, per level:

* course: `https://keiko.network/xapi/activities/course/<id>`
  -> `http://adlnet.gov/expapi/activities/course` (ADL)
* class: `https://keiko.network/xapi/activities/class/<id>`
  -> `http://adlnet.gov/expapi/activities/lesson` (ADL)
* tutorial session: `https://keiko.network/xapi/activities/tutorial-session/<id>`
  -> `https://keiko.network/xapi/activity-types/tutorial-session`
* study session: `https://keiko.network/xapi/activities/study-session/<id>`
  -> `https://keiko.network/xapi/activity-types/study-session`
* interaction: `https://keiko.network/xapi/activities/<kind>/<id>`
  -> see services/learning/interactions.py
* the Keiko profile: `https://keiko.network/xapi/profile`
  -> `http://adlnet.gov/expapi/activities/profile` (ADL)

ADL has no vocabulary for a tutoring or self-study session (its `meeting` type means
a gathering of several people), so those two use Keiko's own activity types.

xAPI context of a statement recorded in the hierarchy:

* `contextActivities.parent`: the nearest container (session, else class);
* `contextActivities.grouping`: the containers above it (class, course);
* `contextActivities.category`: the Keiko profile activity (as cmi5 marks its statements);
* `instructor`: the tutor of a tutorial session, else the course instructor;
* `team`: for a group tutorial session, an anonymous Group of its students;
* `extensions[https://keiko.network/xapi/extensions/tutor-kind]`: human, ai or group;
* `registration`: the caller's enrollment UUID, when given.

People are xAPI Agents identified by a Keiko account:
`{"account": {"homePage": "https://keiko.network", "name": "<user id>"}}`; AI tutors use
the home page `https://keiko.network/ai-tutors`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.kit.clock import Clock
from services.kit.errors import FailedPrecondition, PermissionDenied, ValidationError
from services.learning.xapi import formats, vocab

KEIKO_HOME_PAGE = "https://keiko.network"
AI_TUTOR_HOME_PAGE = "https://keiko.network/ai-tutors"
TYPE_PROFILE = vocab.ADL_ACTIVITY_TYPES + "profile"

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")


class InteractionKind(StrEnum):
    QUESTION = "question"
    ANSWER = "answer"
    EXERCISE = "exercise"
    DISCUSSION = "discussion"
    EVALUATION = "evaluation"
    FEEDBACK = "feedback"


class TutorKind(StrEnum):
    """Who tutors a tutorial session: a person, an AI tutor, or a person tutoring a group."""

    HUMAN = "human"
    AI = "ai"
    GROUP = "group"


class ContainerKind(StrEnum):
    COURSE = "course"
    CLASS = "class"
    TUTORIAL_SESSION = "tutorial-session"
    STUDY_SESSION = "study-session"


# Which atomic interactions each container holds (the design document's hierarchy).
ALLOWED_INTERACTIONS: dict[ContainerKind, frozenset[InteractionKind]] = {
    ContainerKind.COURSE: frozenset(),
    ContainerKind.CLASS: frozenset(
        {InteractionKind.QUESTION, InteractionKind.DISCUSSION, InteractionKind.EVALUATION}
    ),
    ContainerKind.TUTORIAL_SESSION: frozenset(
        {
            InteractionKind.QUESTION,
            InteractionKind.ANSWER,
            InteractionKind.EXERCISE,
            InteractionKind.FEEDBACK,
        }
    ),
    ContainerKind.STUDY_SESSION: frozenset(
        {InteractionKind.QUESTION, InteractionKind.ANSWER, InteractionKind.EXERCISE}
    ),
}


# --- ids, IRIs and agents -----------------------------------------------------------------


def check_id(value: object, field_path: str) -> str:
    """A Keiko id usable verbatim in an IRI path segment."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValidationError(field_path, "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -")
    return value


def activity_iri(kind: str, id_: str) -> str:
    """`https://keiko.network/xapi/activities/<kind>/<id>`."""
    return f"{vocab.KEIKO_ACTIVITIES}{kind}/{check_id(id_, 'id')}"


def course_iri(course_id: str) -> str:
    return activity_iri(ContainerKind.COURSE, course_id)


def class_iri(class_id: str) -> str:
    return activity_iri(ContainerKind.CLASS, class_id)


def tutorial_session_iri(session_id: str) -> str:
    return activity_iri(ContainerKind.TUTORIAL_SESSION, session_id)


def study_session_iri(session_id: str) -> str:
    return activity_iri(ContainerKind.STUDY_SESSION, session_id)


def keiko_agent(user_id: str, name: str | None = None) -> dict[str, Any]:
    """The xAPI Agent of a Keiko user (identified by account, never by e-mail)."""
    agent: dict[str, Any] = {
        "objectType": "Agent",
        "account": {"homePage": KEIKO_HOME_PAGE, "name": check_id(user_id, "user_id")},
    }
    if name:
        agent["name"] = name
    return agent


def ai_tutor_agent(tutor_id: str) -> dict[str, Any]:
    return {
        "objectType": "Agent",
        "account": {"homePage": AI_TUTOR_HOME_PAGE, "name": check_id(tutor_id, "tutor_id")},
    }


def _text(value: object, field_path: str, *, max_len: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(field_path, "must be a string")
    stripped = value.strip()
    if required and not stripped:
        raise ValidationError(field_path, "must not be empty")
    if len(stripped) > max_len:
        raise ValidationError(field_path, f"must be at most {max_len} characters")
    return stripped


def _activity(iri: str, type_iri: str, name: str | None, lang: str) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": type_iri}
    if name:
        definition["name"] = {lang: name}
    return {"objectType": "Activity", "id": iri, "definition": definition}


# --- containers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Course:
    id: str
    title: str
    description: str
    instructor_id: str
    created_at: datetime

    @classmethod
    def create(
        cls, *, id: str, title: str, description: str, instructor_id: str, clock: Clock
    ) -> Course:
        return cls(
            id=check_id(id, "course.id"),
            title=_text(title, "course.title", max_len=MAX_TITLE),
            description=_text(
                description, "course.description", max_len=MAX_DESCRIPTION, required=False
            ),
            instructor_id=check_id(instructor_id, "course.instructor_id"),
            created_at=clock.now(),
        )

    @property
    def iri(self) -> str:
        return course_iri(self.id)

    def activity(self, lang: str = "en") -> dict[str, Any]:
        return _activity(self.iri, vocab.TYPE_COURSE, self.title, lang)


@dataclass(frozen=True, slots=True)
class Class:
    """A class: part of a course (`course_id`) or independent (`course_id is None`)."""

    id: str
    title: str
    course_id: str | None
    created_at: datetime

    @classmethod
    def create(cls, *, id: str, title: str, clock: Clock, course: Course | None = None) -> Class:
        return cls(
            id=check_id(id, "class.id"),
            title=_text(title, "class.title", max_len=MAX_TITLE),
            course_id=course.id if course is not None else None,
            created_at=clock.now(),
        )

    @property
    def independent(self) -> bool:
        return self.course_id is None

    @property
    def iri(self) -> str:
        return class_iri(self.id)

    def activity(self, lang: str = "en") -> dict[str, Any]:
        return _activity(self.iri, vocab.TYPE_LESSON, self.title, lang)


def _ensure_recordable(
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
        _ensure_recordable(
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
        return _activity(self.iri, vocab.TYPE_KEIKO_TUTORIAL_SESSION, None, "en")


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
            topic=_text(topic, "study_session.topic", max_len=MAX_TITLE, required=False),
            started_at=clock.now(),
        )

    @property
    def iri(self) -> str:
        return study_session_iri(self.id)

    def ensure_can_record(self, user_id: str, at: datetime) -> None:
        _ensure_recordable(
            "study session", user_id == self.learner_id, self.started_at, self.ended_at, at
        )

    def end(self, by: str, clock: Clock) -> StudySession:
        if by != self.learner_id:
            raise PermissionDenied("only the learner may end their study session")
        if self.ended_at is not None:
            raise FailedPrecondition("the study session has already ended")
        return replace(self, ended_at=max(clock.now(), self.started_at))

    def activity(self, lang: str = "en") -> dict[str, Any]:
        return _activity(self.iri, vocab.TYPE_KEIKO_STUDY_SESSION, self.topic or None, lang)


# --- where an interaction happens ---------------------------------------------------------


def _id_only(iri: str, type_iri: str) -> dict[str, Any]:
    return {"objectType": "Activity", "id": iri, "definition": {"type": type_iri}}


@dataclass(frozen=True, slots=True)
class HierarchyContext:
    """Where an interaction is recorded: at most one session, optionally its class and the
    class's course. Consistency (the class of the session, the course of the class) is
    checked on construction; a container may be omitted when only its id is known from
    the level below (it then appears in xAPI as an id-only activity)."""

    course: Course | None = None
    klass: Class | None = None
    tutorial: TutorialSession | None = None
    study: StudySession | None = None
    registration: str | None = None
    language: str = "en"

    def __post_init__(self) -> None:
        if self.tutorial is not None and self.study is not None:
            raise ValidationError(
                "hierarchy", "an interaction belongs to one session, not a tutorial and a study"
            )
        session_class = (
            self.tutorial.class_id
            if self.tutorial is not None
            else self.study.class_id
            if self.study is not None
            else None
        )
        if self.klass is not None and session_class is not None and session_class != self.klass.id:
            raise ValidationError(
                "hierarchy.class",
                f"the session belongs to class {session_class}, not {self.klass.id}",
            )
        if (
            self.klass is not None
            and self.course is not None
            and self.klass.course_id != self.course.id
        ):
            raise ValidationError(
                "hierarchy.course",
                f"class {self.klass.id} is not part of course {self.course.id}",
            )
        if self.course is not None and self.klass is None and self.session is not None:
            raise ValidationError("hierarchy.class", "a session in a course is held in a class")
        if self.registration is not None and not formats.is_uuid(self.registration):
            raise ValidationError("hierarchy.registration", "must be a UUID")
        if not formats.is_language_tag(self.language):
            raise ValidationError("hierarchy.language", "must be an RFC 5646 language tag")

    @property
    def session(self) -> TutorialSession | StudySession | None:
        return self.tutorial if self.tutorial is not None else self.study

    @property
    def container(self) -> ContainerKind | None:
        """The nearest container, or None for an interaction outside the hierarchy."""
        if self.tutorial is not None:
            return ContainerKind.TUTORIAL_SESSION
        if self.study is not None:
            return ContainerKind.STUDY_SESSION
        if self.klass is not None:
            return ContainerKind.CLASS
        if self.course is not None:
            return ContainerKind.COURSE
        return None

    def ensure_can_record(self, user_id: str, kind: InteractionKind, at: datetime) -> None:
        """The rules of recording `kind` by `user_id` at `at` into this context."""
        container = self.container
        if container is not None and kind not in ALLOWED_INTERACTIONS[container]:
            allowed = ", ".join(sorted(ALLOWED_INTERACTIONS[container])) or "none"
            raise ValidationError(
                "interaction.kind",
                f"a {kind.value} cannot be recorded in a {container.value} (allowed: {allowed})",
            )
        session = self.session
        if session is not None:
            session.ensure_can_record(user_id, at)

    def _class_id(self) -> str | None:
        if self.klass is not None:
            return self.klass.id
        session = self.session
        return session.class_id if session is not None else None

    def _course_id(self) -> str | None:
        if self.course is not None:
            return self.course.id
        return self.klass.course_id if self.klass is not None else None

    def context_activities(self) -> list[dict[str, Any]]:
        """Containers from the nearest outwards: session, class, course."""
        lang = self.language
        chain: list[dict[str, Any]] = []
        if self.tutorial is not None:
            chain.append(self.tutorial.activity())
        if self.study is not None:
            chain.append(self.study.activity(lang))
        class_id = self._class_id()
        if self.klass is not None:
            chain.append(self.klass.activity(lang))
        elif class_id is not None:
            chain.append(_id_only(class_iri(class_id), vocab.TYPE_LESSON))
        course_id = self._course_id()
        if self.course is not None:
            chain.append(self.course.activity(lang))
        elif course_id is not None:
            chain.append(_id_only(course_iri(course_id), vocab.TYPE_COURSE))
        return chain

    def to_xapi_context(self) -> dict[str, Any]:
        """The xAPI `context` object for a statement recorded here (see module docs)."""
        context: dict[str, Any] = {"language": self.language}
        if self.registration is not None:
            context["registration"] = self.registration
        chain = self.context_activities()
        activities: dict[str, Any] = {
            "category": [_id_only(vocab.KEIKO_PROFILE, TYPE_PROFILE)],
        }
        if chain:
            activities["parent"] = chain[:1]
            if len(chain) > 1:
                activities["grouping"] = chain[1:]
        context["contextActivities"] = activities
        if self.tutorial is not None:
            context["instructor"] = self.tutorial.tutor_agent()
            context["extensions"] = {vocab.EXT_TUTOR_KIND: self.tutorial.tutor_kind.value}
            if self.tutorial.tutor_kind is TutorKind.GROUP:
                context["team"] = {
                    "objectType": "Group",
                    "member": [keiko_agent(s) for s in self.tutorial.student_ids],
                }
        elif self.course is not None:
            context["instructor"] = keiko_agent(self.course.instructor_id)
        return context

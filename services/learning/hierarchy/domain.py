"""The learning hierarchy as plain types and rules: courses, classes, Keiko's activity IRIs
and agents. Sessions are `services.learning.sessions.domain`; where an interaction is
recorded (and the xAPI context that follows) is `services.learning.interactions.domain`.

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
  -> see services/learning/interactions/domain.py
* the Keiko profile: `https://keiko.network/xapi/profile`
  -> `http://adlnet.gov/expapi/activities/profile` (ADL)

ADL has no vocabulary for a tutoring or self-study session (its `meeting` type means
a gathering of several people), so those two use Keiko's own activity types.

People are xAPI Agents identified by a Keiko account:
`{"account": {"homePage": "https://keiko.network", "name": "<user id>"}}`; AI tutors use
the home page `https://keiko.network/ai-tutors`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.kit.clock import Clock
from services.kit.errors import ValidationError
from services.kit.limits import NAME_MAX_CHARS
from services.learning.xapi import vocab

KEIKO_HOME_PAGE = "https://keiko.network"
AI_TUTOR_HOME_PAGE = "https://keiko.network/ai-tutors"
TYPE_PROFILE = vocab.ADL_ACTIVITY_TYPES + "profile"

MAX_TITLE = NAME_MAX_CHARS["title"]
MAX_DESCRIPTION = 10_000
_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")


class InteractionKind(StrEnum):
    QUESTION = "question"
    ANSWER = "answer"
    EXERCISE = "exercise"
    DISCUSSION = "discussion"
    EVALUATION = "evaluation"
    FEEDBACK = "feedback"


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


def checked_text(value: object, field_path: str, *, max_len: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(field_path, "must be a string")
    stripped = value.strip()
    if required and not stripped:
        raise ValidationError(field_path, "must not be empty")
    if len(stripped) > max_len:
        raise ValidationError(field_path, f"must be at most {max_len} characters")
    return stripped


def activity_object(iri: str, type_iri: str, name: str | None, lang: str) -> dict[str, Any]:
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
            title=checked_text(title, "course.title", max_len=MAX_TITLE),
            description=checked_text(
                description, "course.description", max_len=MAX_DESCRIPTION, required=False
            ),
            instructor_id=check_id(instructor_id, "course.instructor_id"),
            created_at=clock.now(),
        )

    @property
    def iri(self) -> str:
        return course_iri(self.id)

    def activity(self, lang: str = "en") -> dict[str, Any]:
        return activity_object(self.iri, vocab.TYPE_COURSE, self.title, lang)


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
            title=checked_text(title, "class.title", max_len=MAX_TITLE),
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
        return activity_object(self.iri, vocab.TYPE_LESSON, self.title, lang)

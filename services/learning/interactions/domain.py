"""Atomic learning interactions, where they are recorded, and the xAPI statements they
become.

* question -> verb `asked`; object `.../question/<id>` (type `question`); no result.
* answer -> `answered`; object: the question answered, `.../question/<question_id>`
  (type `question`); result: response, success?, score?.
* exercise -> `completed` when `completed` is true, else `attempted`; object
  `.../exercise/<id>` (type `performance`); result: completion, success?, score?, duration?.
* discussion -> `commented`; object: the thread, `.../discussion/<thread_id>`
  (Keiko type `discussion`); result: response (the contribution).
* evaluation -> `scored`; object `.../evaluation/<id>` (type `assessment`); result: score,
  completion=true, success?, duration?.
* feedback -> `commented`; object `.../feedback/<id>` (Keiko type `feedback`); result:
  response, score?; `context.statement` points at the reviewed statement when given.

(`...` is `https://keiko.network/xapi/activities`; ADL verbs are
`http://adlnet.gov/expapi/verbs/<verb>`, ADL types `http://adlnet.gov/expapi/activities/<type>`,
Keiko types `https://keiko.network/xapi/activity-types/<type>`.) ADL has no activity type
for a discussion thread or a piece of feedback, hence Keiko's own.

xAPI context of a statement recorded in the hierarchy:

* `contextActivities.parent`: the nearest container (session, else class);
* `contextActivities.grouping`: the containers above it (class, course);
* `contextActivities.category`: the Keiko profile activity (as cmi5 marks its statements);
* `instructor`: the tutor of a tutorial session, else the course instructor;
* `team`: for a group tutorial session, an anonymous Group of its students;
* `extensions[https://keiko.network/xapi/extensions/tutor-kind]`: human, ai or group;
* `registration`: the caller's enrollment UUID, when given.

The statement id is deterministic, UUID v5 of `keiko:interaction:<kind>:<id>:<learner id>`
in `INTERACTION_NAMESPACE`, so a retried recording produces the same statement.
Every statement is passed through `validate_statement` before it is returned.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.kit.clock import Clock
from services.kit.errors import ValidationError
from services.learning.hierarchy import domain as h
from services.learning.hierarchy.domain import (
    ALLOWED_INTERACTIONS,
    TYPE_PROFILE,
    Class,
    ContainerKind,
    Course,
    InteractionKind,
    class_iri,
    course_iri,
    keiko_agent,
)
from services.learning.sessions.domain import StudySession, TutorialSession, TutorKind
from services.learning.xapi import formats, vocab
from services.learning.xapi.validation import validate_score, validate_statement
from services.learning.xapi.version import XAPIVersion, coerce_version

INTERACTION_NAMESPACE = uuid.UUID("6f1d3c2e-5b0a-5f4e-9c51-6b6569b06b31")
MAX_TEXT = 20_000


@dataclass(frozen=True, slots=True)
class Score:
    """An xAPI score. `scaled` in [-1, 1]; `raw` within [min, max]; `min` < `max`."""

    raw: float | None = None
    min: float | None = None
    max: float | None = None
    scaled: float | None = None

    def to_xapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("scaled", "raw", "min", "max"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: str
    # Its name (xAPI object.definition.name): what timelines and pages show, not the IRI.
    title: str | None = None
    kind = InteractionKind.QUESTION


@dataclass(frozen=True, slots=True)
class Answer:
    id: str
    question_id: str
    response: str
    success: bool | None = None
    score: Score | None = None
    # The question's name, so the answer is summarised by it rather than by its IRI.
    title: str | None = None
    kind = InteractionKind.ANSWER


@dataclass(frozen=True, slots=True)
class Exercise:
    id: str
    title: str
    completed: bool
    success: bool | None = None
    score: Score | None = None
    duration: timedelta | None = None
    kind = InteractionKind.EXERCISE


@dataclass(frozen=True, slots=True)
class Discussion:
    id: str
    thread_id: str
    text: str
    title: str | None = None
    kind = InteractionKind.DISCUSSION


@dataclass(frozen=True, slots=True)
class Evaluation:
    id: str
    title: str
    score: Score
    success: bool | None = None
    duration: timedelta | None = None
    kind = InteractionKind.EVALUATION


@dataclass(frozen=True, slots=True)
class Feedback:
    """Feedback on a learner's work; `about_statement_id` names the statement it reviews."""

    id: str
    text: str
    about_statement_id: str | None = None
    score: Score | None = None
    kind = InteractionKind.FEEDBACK


Interaction = Question | Answer | Exercise | Discussion | Evaluation | Feedback

# kind -> (verb IRI, activity type IRI) ; exercise's verb depends on `completed`.
INTERACTION_XAPI: dict[InteractionKind, tuple[str, str]] = {
    InteractionKind.QUESTION: (vocab.VERB_ASKED, vocab.TYPE_QUESTION),
    InteractionKind.ANSWER: (vocab.VERB_ANSWERED, vocab.TYPE_QUESTION),
    InteractionKind.EXERCISE: (vocab.VERB_COMPLETED, vocab.TYPE_PERFORMANCE),
    InteractionKind.DISCUSSION: (vocab.VERB_COMMENTED, vocab.TYPE_KEIKO_DISCUSSION),
    InteractionKind.EVALUATION: (vocab.VERB_SCORED, vocab.TYPE_ASSESSMENT),
    InteractionKind.FEEDBACK: (vocab.VERB_COMMENTED, vocab.TYPE_KEIKO_FEEDBACK),
}


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


def interaction_statement_id(kind: InteractionKind, interaction_id: str, learner_id: str) -> str:
    return str(
        uuid.uuid5(INTERACTION_NAMESPACE, f"keiko:interaction:{kind}:{interaction_id}:{learner_id}")
    )


def _text(value: object, path: str, *, max_len: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(path, "must be a non-empty string")
    if len(value) > max_len:
        raise ValidationError(path, f"must be at most {max_len} characters")
    return value


def _duration(value: timedelta, path: str) -> str:
    if value < timedelta(0):
        raise ValidationError(path, "must not be negative")
    return formats.format_duration(value)


def _score(score: Score, path: str) -> dict[str, Any]:
    for key in ("scaled", "raw", "min", "max"):
        value = getattr(score, key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValidationError(f"{path}.{key}", "must be a finite number")
    out = score.to_xapi()
    if not out:
        raise ValidationError(path, "must have at least one of scaled, raw, min, max")
    return validate_score(out, path)


def _activity(iri: str, type_iri: str, lang: str, name: str | None = None) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": type_iri}
    if name:
        definition["name"] = {lang: name}
    return {"objectType": "Activity", "id": iri, "definition": definition}


def _object_and_result(
    interaction: Interaction, lang: str
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    kind = interaction.kind
    verb, type_iri = INTERACTION_XAPI[kind]
    result: dict[str, Any] = {}
    path = f"interaction.{kind.value}"
    if isinstance(interaction, Question):
        text = _text(interaction.text, f"{path}.text")
        title = interaction.title
        if title is not None:
            title = _text(title, f"{path}.title", max_len=h.MAX_TITLE)
        obj = _activity(h.activity_iri("question", interaction.id), type_iri, lang, title)
        obj["definition"]["description"] = {lang: text}
    elif isinstance(interaction, Answer):
        h.check_id(interaction.question_id, f"{path}.question_id")
        title = interaction.title
        if title is not None:
            title = _text(title, f"{path}.title", max_len=h.MAX_TITLE)
        obj = _activity(h.activity_iri("question", interaction.question_id), type_iri, lang, title)
        result["response"] = _text(interaction.response, f"{path}.response")
        if interaction.success is not None:
            result["success"] = interaction.success
        if interaction.score is not None:
            result["score"] = _score(interaction.score, f"{path}.score")
    elif isinstance(interaction, Exercise):
        title = _text(interaction.title, f"{path}.title", max_len=h.MAX_TITLE)
        obj = _activity(h.activity_iri("exercise", interaction.id), type_iri, lang, title)
        verb = vocab.VERB_COMPLETED if interaction.completed else vocab.VERB_ATTEMPTED
        result["completion"] = interaction.completed
        if interaction.success is not None:
            result["success"] = interaction.success
        if interaction.score is not None:
            result["score"] = _score(interaction.score, f"{path}.score")
        if interaction.duration is not None:
            result["duration"] = _duration(interaction.duration, f"{path}.duration")
    elif isinstance(interaction, Discussion):
        h.check_id(interaction.thread_id, f"{path}.thread_id")
        topic = interaction.title
        if topic is not None:
            topic = _text(topic, f"{path}.title", max_len=h.MAX_TITLE)
        obj = _activity(h.activity_iri("discussion", interaction.thread_id), type_iri, lang, topic)
        result["response"] = _text(interaction.text, f"{path}.text")
    elif isinstance(interaction, Evaluation):
        title = _text(interaction.title, f"{path}.title", max_len=h.MAX_TITLE)
        obj = _activity(h.activity_iri("evaluation", interaction.id), type_iri, lang, title)
        result["score"] = _score(interaction.score, f"{path}.score")
        result["completion"] = True
        if interaction.success is not None:
            result["success"] = interaction.success
        if interaction.duration is not None:
            result["duration"] = _duration(interaction.duration, f"{path}.duration")
    else:
        about = interaction.about_statement_id
        if about is not None and not formats.is_uuid(about):
            raise ValidationError(f"{path}.about_statement_id", "must be a statement id (UUID)")
        obj = _activity(h.activity_iri("feedback", interaction.id), type_iri, lang)
        result["response"] = _text(interaction.text, f"{path}.text")
        if interaction.score is not None:
            result["score"] = _score(interaction.score, f"{path}.score")
    return verb, obj, result


def build_statement(
    interaction: Interaction,
    learner: str,
    hierarchy: HierarchyContext | None,
    clock: Clock,
    *,
    version: XAPIVersion | str = XAPIVersion.V1_0_3,
    learner_name: str | None = None,
) -> dict[str, Any]:
    """The xAPI statement of `learner` (a Keiko user id) performing `interaction`.

    Enforces the hierarchy's rules first (allowed interaction kinds per container,
    PermissionDenied for non-participants, FailedPrecondition after a session's end),
    then validates the statement with `validate_statement` and returns the normalized
    statement (without `stored`, which the LRS sets).
    """
    if not isinstance(
        interaction, Question | Answer | Exercise | Discussion | Evaluation | Feedback
    ):
        raise ValidationError(
            "interaction", f"unknown interaction type {type(interaction).__name__}"
        )
    api_version = coerce_version(version)
    kind = interaction.kind
    h.check_id(interaction.id, f"interaction.{kind.value}.id")
    actor = h.keiko_agent(h.check_id(learner, "learner"), learner_name)
    where = hierarchy if hierarchy is not None else HierarchyContext()
    now = clock.now()
    where.ensure_can_record(learner, kind, now)
    verb, obj, result = _object_and_result(interaction, where.language)

    context = where.to_xapi_context()
    context.setdefault("extensions", {})[vocab.EXT_INTERACTION_KIND] = kind.value
    if isinstance(interaction, Feedback) and interaction.about_statement_id is not None:
        context["statement"] = {"objectType": "StatementRef", "id": interaction.about_statement_id}

    statement: dict[str, Any] = {
        "id": interaction_statement_id(kind, interaction.id, learner),
        "actor": actor,
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": obj,
        "context": context,
        "timestamp": formats.format_timestamp(now),
        "version": api_version.value,
    }
    if result:
        statement["result"] = result
    return validate_statement(statement, version=api_version).statement

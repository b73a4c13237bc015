"""The learning hierarchy: construction rules, session rules and the xAPI context mapping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.kit.clock import FixedClock
from services.kit.errors import FailedPrecondition, PermissionDenied, ValidationError
from services.learning.hierarchy.domain import (
    ALLOWED_INTERACTIONS,
    Class,
    ContainerKind,
    Course,
    InteractionKind,
    course_iri,
    keiko_agent,
)
from services.learning.interactions.domain import HierarchyContext
from services.learning.sessions.domain import StudySession, TutorialSession, TutorKind
from services.learning.xapi import validate_statement


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def course(clock: FixedClock) -> Course:
    return Course.create(
        id="math-adv",
        title=" Matemáticas Avanzadas ",
        description="Álgebra y cálculo",
        instructor_id="prof-1",
        clock=clock,
    )


@pytest.fixture
def klass(course: Course, clock: FixedClock) -> Class:
    return Class.create(
        id="algebra-3", title="Álgebra Lineal - Clase 3", clock=clock, course=course
    )


def test_course_and_class(course: Course, klass: Class, clock: FixedClock) -> None:
    assert course.title == "Matemáticas Avanzadas"
    assert course.created_at == clock.now()
    assert course.iri == "https://keiko.network/xapi/activities/course/math-adv"
    assert klass.course_id == "math-adv" and not klass.independent
    independent = Class.create(id="intro-python", title="Introducción a Python", clock=clock)
    assert independent.independent and independent.course_id is None
    assert independent.iri == "https://keiko.network/xapi/activities/class/intro-python"


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"id": "a b"}, "course.id", "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"),
        ({"id": ""}, "course.id", "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"),
        ({"id": "x" * 129}, "course.id", "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"),
        ({"title": "  "}, "course.title", "must not be empty"),
        ({"title": "t" * 201}, "course.title", "must be at most 200 characters"),
        (
            {"instructor_id": "prof/1"},
            "course.instructor_id",
            "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -",
        ),
    ],
)
def test_course_validation(kwargs: dict, field: str, reason: str, clock: FixedClock) -> None:
    args = {
        "id": "c1",
        "title": "T",
        "description": "",
        "instructor_id": "p1",
        "clock": clock,
    } | kwargs
    with pytest.raises(ValidationError) as info:
        Course.create(**args)
    assert (info.value.field, info.value.reason) == (field, reason)


def test_tutorial_session_rules(klass: Class, clock: FixedClock) -> None:
    session = TutorialSession.start(
        id="t-1",
        tutor_id="tutor-1",
        tutor_kind="human",
        student_ids=["ana"],
        clock=clock,
        klass=klass,
    )
    assert session.class_id == "algebra-3" and session.participants == ("tutor-1", "ana")
    session.ensure_can_record("ana", clock.now())
    session.ensure_can_record("tutor-1", clock.now())
    with pytest.raises(PermissionDenied):
        session.ensure_can_record("mallory", clock.now())
    with pytest.raises(FailedPrecondition, match="not started"):
        session.ensure_can_record("ana", clock.now() - timedelta(seconds=1))
    with pytest.raises(PermissionDenied):
        session.end("mallory", clock)
    clock.advance(timedelta(minutes=45))
    ended = session.end("tutor-1", clock)
    assert ended.ended_at == clock.now() and session.ended_at is None
    with pytest.raises(FailedPrecondition, match="already ended"):
        ended.end("ana", clock)
    with pytest.raises(FailedPrecondition, match="has ended"):
        ended.ensure_can_record("ana", clock.now())
    ended.ensure_can_record("ana", clock.now() - timedelta(minutes=1))  # before the end: fine


@pytest.mark.parametrize(
    ("kind", "students", "tutor", "field", "reason"),
    [
        (
            "human",
            [],
            "t",
            "tutorial_session.student_ids",
            "a human tutorial session has exactly one student",
        ),
        (
            "ai",
            ["a", "b"],
            "t",
            "tutorial_session.student_ids",
            "a ai tutorial session has exactly one student",
        ),
        (
            "group",
            ["a"],
            "t",
            "tutorial_session.student_ids",
            "a group session needs at least two students",
        ),
        ("group", ["a", "a"], "t", "tutorial_session.student_ids", "must not repeat a student"),
        ("human", ["t"], "t", "tutorial_session.tutor_id", "the tutor cannot be a student"),
        ("robot", ["a"], "t", "tutorial_session.tutor_kind", "must be one of human, ai, group"),
        (
            "group",
            ["a", "b c"],
            "t",
            "tutorial_session.student_ids[1]",
            "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -",
        ),
    ],
)
def test_tutorial_session_validation(
    kind: str, students: list, tutor: str, field: str, reason: str, clock: FixedClock
) -> None:
    with pytest.raises(ValidationError) as info:
        TutorialSession.start(
            id="t", tutor_id=tutor, tutor_kind=kind, student_ids=students, clock=clock
        )
    assert (info.value.field, info.value.reason) == (field, reason)


def test_study_session_rules(clock: FixedClock) -> None:
    study = StudySession.start(id="s-1", learner_id="ana", topic="Práctica con IA", clock=clock)
    study.ensure_can_record("ana", clock.now())
    with pytest.raises(PermissionDenied):
        study.ensure_can_record("bo", clock.now())
    with pytest.raises(PermissionDenied):
        study.end("bo", clock)
    done = study.end("ana", clock)
    with pytest.raises(FailedPrecondition):
        done.end("ana", clock)
    with pytest.raises(FailedPrecondition):
        done.ensure_can_record("ana", clock.now())


def test_context_of_a_group_tutorial_in_a_course_class(
    course: Course, klass: Class, clock: FixedClock
) -> None:
    session = TutorialSession.start(
        id="t-9",
        tutor_id="tutor-1",
        tutor_kind=TutorKind.GROUP,
        student_ids=["ana", "bo"],
        clock=clock,
        klass=klass,
    )
    where = HierarchyContext(
        course=course,
        klass=klass,
        tutorial=session,
        registration="ec531277-b57b-4c15-8d91-d292c5b2b8f7",
        language="es",
    )
    assert where.container is ContainerKind.TUTORIAL_SESSION
    ctx = where.to_xapi_context()
    acts = ctx["contextActivities"]
    assert [a["id"] for a in acts["parent"]] == [
        "https://keiko.network/xapi/activities/tutorial-session/t-9"
    ]
    assert [a["id"] for a in acts["grouping"]] == [klass.iri, course.iri]
    assert acts["grouping"][1]["definition"] == {
        "type": "http://adlnet.gov/expapi/activities/course",
        "name": {"es": "Matemáticas Avanzadas"},
    }
    assert acts["category"][0]["id"] == "https://keiko.network/xapi/profile"
    assert ctx["instructor"] == keiko_agent("tutor-1")
    assert ctx["team"]["member"] == [keiko_agent("ana"), keiko_agent("bo")]
    assert ctx["extensions"] == {"https://keiko.network/xapi/extensions/tutor-kind": "group"}
    assert ctx["registration"] == "ec531277-b57b-4c15-8d91-d292c5b2b8f7"
    # The context is valid xAPI in a statement.
    statement = {
        "actor": keiko_agent("ana"),
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
        "object": session.activity(),
        "context": ctx,
    }
    validate_statement(statement)


def test_ai_tutor_and_id_only_ancestors(clock: FixedClock, klass: Class) -> None:
    session = TutorialSession.start(
        id="ai-1",
        tutor_id="gpt-tutor",
        tutor_kind="ai",
        student_ids=["ana"],
        clock=clock,
        klass=klass,
    )
    ctx = HierarchyContext(tutorial=session).to_xapi_context()
    assert ctx["instructor"]["account"] == {
        "homePage": "https://keiko.network/ai-tutors",
        "name": "gpt-tutor",
    }
    # class known only by id; its course unknown
    assert [a["id"] for a in ctx["contextActivities"]["grouping"]] == [klass.iri]


def test_class_in_course_uses_course_instructor(course: Course, klass: Class) -> None:
    ctx = HierarchyContext(course=course, klass=klass).to_xapi_context()
    assert ctx["contextActivities"]["parent"][0]["id"] == klass.iri
    assert ctx["contextActivities"]["grouping"][0]["id"] == course.iri
    assert ctx["instructor"] == keiko_agent("prof-1")
    ctx2 = HierarchyContext(klass=klass).to_xapi_context()  # course known only by id
    assert ctx2["contextActivities"]["grouping"] == [
        {
            "objectType": "Activity",
            "id": course_iri("math-adv"),
            "definition": {"type": "http://adlnet.gov/expapi/activities/course"},
        }
    ]


def test_study_session_context(clock: FixedClock) -> None:
    independent = Class.create(id="py", title="Python", clock=clock)
    study = StudySession.start(
        id="s-1", learner_id="ana", topic="Bucles", clock=clock, klass=independent
    )
    ctx = HierarchyContext(klass=independent, study=study).to_xapi_context()
    assert ctx["contextActivities"]["parent"][0]["definition"]["type"] == (
        "https://keiko.network/xapi/activity-types/study-session"
    )
    assert "instructor" not in ctx


def test_consistency_checks(course: Course, klass: Class, clock: FixedClock) -> None:
    other = Course.create(id="other", title="Other", description="", instructor_id="p", clock=clock)
    with pytest.raises(ValidationError) as info:
        HierarchyContext(course=other, klass=klass)
    assert info.value.field == "hierarchy.course"
    elsewhere = Class.create(id="elsewhere", title="E", clock=clock)
    session = TutorialSession.start(
        id="t", tutor_id="x", tutor_kind="human", student_ids=["a"], clock=clock, klass=elsewhere
    )
    with pytest.raises(ValidationError) as info:
        HierarchyContext(klass=klass, tutorial=session)
    assert (info.value.field, info.value.reason) == (
        "hierarchy.class",
        "the session belongs to class elsewhere, not algebra-3",
    )
    study = StudySession.start(id="s", learner_id="a", topic="", clock=clock)
    with pytest.raises(ValidationError) as info:
        HierarchyContext(tutorial=session, study=study)
    assert info.value.field == "hierarchy"
    with pytest.raises(ValidationError) as info:
        HierarchyContext(registration="nope")
    assert info.value.field == "hierarchy.registration"


def test_allowed_interactions_follow_the_design(
    course: Course, klass: Class, clock: FixedClock
) -> None:
    assert ALLOWED_INTERACTIONS[ContainerKind.STUDY_SESSION] == {
        InteractionKind.QUESTION,
        InteractionKind.ANSWER,
        InteractionKind.EXERCISE,
    }
    where = HierarchyContext(course=course, klass=klass)
    where.ensure_can_record("ana", InteractionKind.EVALUATION, clock.now())
    with pytest.raises(ValidationError) as info:
        where.ensure_can_record("ana", InteractionKind.FEEDBACK, clock.now())
    assert (info.value.field, info.value.reason) == (
        "interaction.kind",
        "a feedback cannot be recorded in a class (allowed: discussion, evaluation, question)",
    )
    with pytest.raises(ValidationError):
        HierarchyContext(course=course).ensure_can_record(
            "ana", InteractionKind.QUESTION, clock.now()
        )
    HierarchyContext().ensure_can_record("ana", InteractionKind.FEEDBACK, clock.now())

"""Each atomic interaction becomes a valid xAPI statement with the documented verb and type."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.kit.clock import FixedClock
from services.kit.errors import FailedPrecondition, PermissionDenied, ValidationError
from services.learning.hierarchy.domain import Class, Course, InteractionKind
from services.learning.interactions.domain import (
    Answer,
    Discussion,
    Evaluation,
    Exercise,
    Feedback,
    HierarchyContext,
    Question,
    Score,
    build_statement,
    interaction_statement_id,
)
from services.learning.sessions.domain import StudySession, TutorialSession
from services.learning.xapi import XAPIVersion, canonical_bytes, validate_statement

ADL = "http://adlnet.gov/expapi/verbs/"
ACT = "https://keiko.network/xapi/activities/"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def course(clock: FixedClock) -> Course:
    return Course.create(
        id="math", title="Matemáticas", description="", instructor_id="prof", clock=clock
    )


@pytest.fixture
def klass(course: Course, clock: FixedClock) -> Class:
    return Class.create(id="algebra-3", title="Álgebra Lineal 3", clock=clock, course=course)


@pytest.fixture
def tutorial(klass: Class, clock: FixedClock) -> TutorialSession:
    return TutorialSession.start(
        id="t1", tutor_id="tutor", tutor_kind="human", student_ids=["ana"], clock=clock, klass=klass
    )


@pytest.fixture
def in_tutorial(course: Course, klass: Class, tutorial: TutorialSession) -> HierarchyContext:
    return HierarchyContext(course=course, klass=klass, tutorial=tutorial, language="es")


def _check(statement: dict, verb: str, object_id: str, type_iri: str) -> None:
    assert statement["verb"]["id"] == ADL + verb
    assert statement["object"]["id"] == object_id
    assert statement["object"]["definition"]["type"] == type_iri
    assert statement["actor"]["account"] == {"homePage": "https://keiko.network", "name": "ana"}
    validate_statement(statement)  # valid as returned
    canonical_bytes(statement)


def test_question(in_tutorial: HierarchyContext, clock: FixedClock) -> None:
    s = build_statement(Question(id="q1", text="¿Qué es una matriz?"), "ana", in_tutorial, clock)
    _check(s, "asked", ACT + "question/q1", "http://adlnet.gov/expapi/activities/question")
    assert s["object"]["definition"]["description"] == {"es": "¿Qué es una matriz?"}
    assert "result" not in s
    assert (
        s["context"]["extensions"]["https://keiko.network/xapi/extensions/interaction-kind"]
        == "question"
    )
    assert s["context"]["contextActivities"]["parent"][0]["id"] == ACT + "tutorial-session/t1"
    assert s["timestamp"] == "2026-01-01T00:00:00.000Z"
    assert s["version"] == "1.0.3"
    assert "name" not in s["object"]["definition"]


def test_question_is_named_by_its_title(in_tutorial: HierarchyContext, clock: FixedClock) -> None:
    """A titled question carries its title as the activity's name: timelines and the
    verification page summarise it by that, not by its IRI."""
    question = Question(id="q2", text="¿Rango de I3?", title="Álgebra lineal, pregunta 3")
    s = build_statement(question, "ana", in_tutorial, clock)
    assert s["object"]["definition"]["name"] == {"es": "Álgebra lineal, pregunta 3"}
    with pytest.raises(ValidationError):
        build_statement(Question(id="q3", text="x", title="t" * 10_000), "ana", in_tutorial, clock)


def test_answer_with_score(in_tutorial: HierarchyContext, clock: FixedClock) -> None:
    answer = Answer(
        id="a1",
        question_id="q3",
        response="Una matriz es...",
        success=True,
        score=Score(raw=8, min=0, max=10, scaled=0.8),
    )
    s = build_statement(answer, "ana", in_tutorial, clock)
    _check(s, "answered", ACT + "question/q3", "http://adlnet.gov/expapi/activities/question")
    assert s["result"] == {
        "response": "Una matriz es...",
        "success": True,
        "score": {"scaled": 0.8, "raw": 8, "min": 0, "max": 10},
    }


def test_exercise_completed_and_attempted(in_tutorial: HierarchyContext, clock: FixedClock) -> None:
    done = Exercise(
        id="ex1",
        title="Resolver sistema 3x3",
        completed=True,
        success=True,
        duration=timedelta(minutes=12, seconds=30),
    )
    s = build_statement(done, "ana", in_tutorial, clock)
    _check(s, "completed", ACT + "exercise/ex1", "http://adlnet.gov/expapi/activities/performance")
    assert s["result"] == {"completion": True, "success": True, "duration": "PT12M30S"}
    tried = build_statement(
        Exercise(id="ex2", title="Otro", completed=False), "ana", in_tutorial, clock
    )
    assert tried["verb"]["id"] == ADL + "attempted"
    assert tried["result"] == {"completion": False}


def test_discussion_and_evaluation_in_a_class(
    course: Course, klass: Class, clock: FixedClock
) -> None:
    where = HierarchyContext(course=course, klass=klass)
    s = build_statement(
        Discussion(id="d1", thread_id="apps", text="Aplicaciones en gráficos", title="Debate"),
        "ana",
        where,
        clock,
    )
    _check(
        s,
        "commented",
        ACT + "discussion/apps",
        "https://keiko.network/xapi/activity-types/discussion",
    )
    assert s["result"] == {"response": "Aplicaciones en gráficos"}
    assert s["context"]["instructor"]["account"]["name"] == "prof"
    e = build_statement(
        Evaluation(
            id="quiz-5", title="Quiz de 5 preguntas", score=Score(raw=4, min=0, max=5), success=True
        ),
        "ana",
        where,
        clock,
    )
    _check(e, "scored", ACT + "evaluation/quiz-5", "http://adlnet.gov/expapi/activities/assessment")
    assert e["result"] == {
        "score": {"raw": 4, "min": 0, "max": 5},
        "completion": True,
        "success": True,
    }


def test_feedback_refers_to_the_reviewed_statement(
    in_tutorial: HierarchyContext, clock: FixedClock
) -> None:
    reviewed = interaction_statement_id(InteractionKind.ANSWER, "a1", "ana")
    s = build_statement(
        Feedback(
            id="f1", text="Bien razonado", about_statement_id=reviewed, score=Score(scaled=0.9)
        ),
        "tutor",
        in_tutorial,
        clock,
    )
    assert s["verb"]["id"] == ADL + "commented"
    assert s["object"]["definition"]["type"] == "https://keiko.network/xapi/activity-types/feedback"
    assert s["context"]["statement"] == {"objectType": "StatementRef", "id": reviewed}
    assert s["result"] == {"response": "Bien razonado", "score": {"scaled": 0.9}}


def test_statement_id_is_deterministic(in_tutorial: HierarchyContext, clock: FixedClock) -> None:
    q = Question(id="q1", text="?")
    first = build_statement(q, "ana", in_tutorial, clock)
    clock.advance(timedelta(seconds=5))
    again = build_statement(q, "ana", in_tutorial, clock)
    assert (
        first["id"]
        == again["id"]
        == interaction_statement_id(InteractionKind.QUESTION, "q1", "ana")
    )
    other = build_statement(q, "tutor", in_tutorial, clock)
    assert other["id"] != first["id"]


def test_version_2(in_tutorial: HierarchyContext, clock: FixedClock) -> None:
    s = build_statement(
        Question(id="q1", text="?"), "ana", in_tutorial, clock, version=XAPIVersion.V2_0_0
    )
    assert s["version"] == "2.0.0"
    validate_statement(s, version="2.0.0")


def test_rules_of_the_hierarchy_apply(
    in_tutorial: HierarchyContext,
    tutorial: TutorialSession,
    course: Course,
    klass: Class,
    clock: FixedClock,
) -> None:
    with pytest.raises(PermissionDenied):
        build_statement(Question(id="q1", text="?"), "mallory", in_tutorial, clock)
    ended = HierarchyContext(course=course, klass=klass, tutorial=tutorial.end("tutor", clock))
    with pytest.raises(FailedPrecondition):
        build_statement(Question(id="q2", text="?"), "ana", ended, clock)
    with pytest.raises(ValidationError) as info:
        build_statement(Discussion(id="d", thread_id="t", text="x"), "ana", in_tutorial, clock)
    assert info.value.field == "interaction.kind"
    study = StudySession.start(id="s1", learner_id="ana", topic="", clock=clock)
    with pytest.raises(ValidationError):
        build_statement(
            Evaluation(id="e", title="E", score=Score(raw=1)),
            "ana",
            HierarchyContext(study=study),
            clock,
        )
    # Outside the hierarchy anything goes (e.g. a free-standing question).
    build_statement(Feedback(id="f", text="ok"), "ana", None, clock)


@pytest.mark.parametrize(
    ("interaction", "field", "reason"),
    [
        (
            Question(id="q 1", text="?"),
            "interaction.question.id",
            "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -",
        ),
        (Question(id="q1", text="  "), "interaction.question.text", "must be a non-empty string"),
        (
            Answer(id="a", question_id="q/3", response="r"),
            "interaction.answer.question_id",
            "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -",
        ),
        (
            Answer(id="a", question_id="q3", response="r", score=Score(scaled=1.2)),
            "interaction.answer.score.scaled",
            "must be between -1 and 1, got 1.2",
        ),
        (
            Answer(id="a", question_id="q3", response="r", score=Score(raw=11, min=0, max=10)),
            "interaction.answer.score.raw",
            "must be less than or equal to max (10), got 11",
        ),
        (
            Answer(id="a", question_id="q3", response="r", score=Score()),
            "interaction.answer.score",
            "must have at least one of scaled, raw, min, max",
        ),
        (
            Answer(id="a", question_id="q3", response="r", score=Score(raw=float("inf"))),
            "interaction.answer.score.raw",
            "must be a finite number",
        ),
        (
            Exercise(id="e", title="E", completed=True, duration=timedelta(seconds=-1)),
            "interaction.exercise.duration",
            "must not be negative",
        ),
        (
            Evaluation(id="e", title="", score=Score(raw=1)),
            "interaction.evaluation.title",
            "must be a non-empty string",
        ),
        (
            Feedback(id="f", text="t", about_statement_id="nope"),
            "interaction.feedback.about_statement_id",
            "must be a statement id (UUID)",
        ),
    ],
)
def test_bad_interactions(interaction: object, field: str, reason: str, clock: FixedClock) -> None:
    with pytest.raises(ValidationError) as info:
        build_statement(interaction, "ana", None, clock)  # type: ignore[arg-type]
    assert (info.value.field, info.value.reason) == (field, reason)


def test_bad_learner(clock: FixedClock) -> None:
    with pytest.raises(ValidationError) as info:
        build_statement(Question(id="q", text="?"), "ana maria", None, clock)
    assert info.value.field == "learner"

"""Where interactions are recorded: the sessions, classes and courses they name, loaded
for a whole batch at once (each distinct id once, a bounded number of queries whatever
the batch's size, none for interactions outside the hierarchy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.errors import FailedPrecondition, NotFound
from services.learning.hierarchy import domain as h
from services.learning.hierarchy.storage import HierarchyRepository
from services.learning.interactions import domain as ix
from services.learning.interactions.inputs import InteractionInput
from services.learning.sessions.storage import (
    SessionRepository,
    StudySessionRecord,
    TutorialSessionRecord,
)


@dataclass(frozen=True)
class Placement:
    """Where an interaction is recorded: the domain context and the ids stored with it."""

    where: ix.HierarchyContext
    course_id: str | None
    class_id: str | None
    tutorial_session_id: str | None
    study_session_id: str | None
    # Who planned the tutorial session ("" outside one): a student it names is agreed.
    tutorial_created_by: str = ""


@dataclass
class Placements:
    """The containers a batch of interactions names, by id; `of` places one interaction."""

    tutorials: dict[str, TutorialSessionRecord] = field(default_factory=dict)
    studies: dict[str, StudySessionRecord] = field(default_factory=dict)
    classes: dict[str, h.Class] = field(default_factory=dict)
    courses: dict[str, h.Course] = field(default_factory=dict)

    @classmethod
    async def load(cls, s: AsyncSession, inputs: Sequence[InteractionInput]) -> Placements:
        """Sessions, then the classes they and the inputs name, then those classes' and
        the inputs' courses: at most five queries, each skipped when it has no ids."""
        sessions = SessionRepository(s)
        hierarchy = HierarchyRepository(s)
        tutorials = await sessions.get_tutorials(
            sorted({i.tutorial_session_id for i in inputs if i.tutorial_session_id})
        )
        students = await sessions.participants(list(tutorials))
        studies = await sessions.get_studies(
            sorted({i.study_session_id for i in inputs if i.study_session_id})
        )
        class_ids = {i.class_id for i in inputs if i.class_id}
        class_ids.update(r.class_id for r in tutorials.values() if r.class_id)
        class_ids.update(r.class_id for r in studies.values() if r.class_id)
        classes = {
            k: r.domain() for k, r in (await hierarchy.get_classes(sorted(class_ids))).items()
        }
        course_ids = {i.course_id for i in inputs if i.course_id}
        course_ids.update(c.course_id for c in classes.values() if c.course_id)
        courses = await hierarchy.get_courses(sorted(course_ids))
        return cls(
            tutorials={k: replace(r, student_ids=students[k]) for k, r in tutorials.items()},
            studies=studies,
            classes=classes,
            courses={k: r.domain() for k, r in courses.items()},
        )

    def of(self, inp: InteractionInput) -> Placement:
        """Where `inp` is recorded (NotFound for an unknown container, FailedPrecondition
        for a tutorial session not started; the context checks its own consistency)."""
        tutorial = None
        study = None
        session_class: str | None = None
        created_by = ""
        if inp.tutorial_session_id:
            row = self.tutorials.get(inp.tutorial_session_id)
            if row is None:
                raise NotFound(f"tutorial session {inp.tutorial_session_id} not found")
            if row.started_at is None:
                raise FailedPrecondition("the tutorial session has not started yet")
            tutorial = row.domain()
            session_class = row.class_id
            created_by = row.created_by
        if inp.study_session_id:
            study_row = self.studies.get(inp.study_session_id)
            if study_row is None:
                raise NotFound(f"study session {inp.study_session_id} not found")
            study = study_row.domain()
            session_class = session_class or study_row.class_id
        class_id = inp.class_id or session_class or ""
        klass = self.classes.get(class_id) if class_id else None
        if class_id and klass is None:
            raise NotFound(f"class {class_id} not found")
        course: h.Course | None = None
        course_id = inp.course_id or (klass.course_id if klass is not None else None)
        if course_id:
            course = self.courses.get(course_id)
            if course is None:
                raise NotFound(f"course {course_id} not found")
        where = ix.HierarchyContext(course=course, klass=klass, tutorial=tutorial, study=study)
        return Placement(
            where=where,
            course_id=course.id if course else None,
            class_id=klass.id if klass else None,
            tutorial_session_id=tutorial.id if tutorial else None,
            study_session_id=study.id if study else None,
            tutorial_created_by=created_by,
        )

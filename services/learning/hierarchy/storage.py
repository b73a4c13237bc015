"""Course and class tables, their records and repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.learning.common.storage import (
    ID,
    Cursor,
    mapping,
    metadata,
    page_rows,
    row_values,
    ts_column,
)
from services.learning.hierarchy.domain import Class, Course

courses = Table(
    "courses",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("instructor_id", String(ID), nullable=False),
    ts_column("created_at"),
    ts_column("updated_at"),
    Index(None, "instructor_id", "created_at"),
)

classes = Table(
    "classes",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("course_id", String(ID), ForeignKey("courses.id"), nullable=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_by", String(ID), nullable=False),
    ts_column("created_at"),
    ts_column("updated_at"),
    Index(None, "course_id", "created_at"),
)


@dataclass(frozen=True)
class CourseRecord:
    id: str
    title: str
    description: str
    instructor_id: str
    created_at: datetime
    updated_at: datetime
    # Shown with the course, not stored in its row.
    class_ids: list[str] = field(default_factory=list)

    def domain(self) -> Course:
        return Course(
            id=self.id,
            title=self.title,
            description=self.description,
            instructor_id=self.instructor_id,
            created_at=self.created_at,
        )


@dataclass(frozen=True)
class ClassRecord:
    """A class: part of a course (`course_id`) or standalone (`course_id` None)."""

    id: str
    course_id: str | None
    title: str
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    # Shown with the class, not stored in its row.
    tutorial_session_ids: list[str] = field(default_factory=list)
    interaction_count: int = 0

    def domain(self) -> Class:
        return Class(
            id=self.id, title=self.title, course_id=self.course_id, created_at=self.created_at
        )


def _course(values: dict[str, Any]) -> CourseRecord:
    return CourseRecord(**values)


def _class(values: dict[str, Any]) -> ClassRecord:
    return ClassRecord(**values)


class HierarchyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get_course(self, course_id: str) -> CourseRecord | None:
        row = (await self.s.execute(select(courses).where(courses.c.id == course_id))).first()
        return _course(mapping(row)) if row is not None else None

    async def get_courses(self, ids: Sequence[str]) -> dict[str, CourseRecord]:
        if not ids:
            return {}
        rows = (await self.s.execute(select(courses).where(courses.c.id.in_(ids)))).all()
        return {r.id: _course(mapping(r)) for r in rows}

    async def insert_course(self, course: CourseRecord) -> None:
        await self.s.execute(insert(courses).values(**row_values(course, courses)))

    async def update_course(self, course_id: str, **values: Any) -> None:
        await self.s.execute(update(courses).where(courses.c.id == course_id).values(**values))

    async def page_courses(
        self, instructor_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[CourseRecord], Cursor | None]:
        conditions = [courses.c.instructor_id == instructor_id] if instructor_id else []
        return await page_rows(self.s, courses, "created_at", conditions, limit, cursor, _course)

    async def get_class(self, class_id: str) -> ClassRecord | None:
        row = (await self.s.execute(select(classes).where(classes.c.id == class_id))).first()
        return _class(mapping(row)) if row is not None else None

    async def get_classes(self, ids: Sequence[str]) -> dict[str, ClassRecord]:
        if not ids:
            return {}
        rows = (await self.s.execute(select(classes).where(classes.c.id.in_(ids)))).all()
        return {r.id: _class(mapping(r)) for r in rows}

    async def insert_class(self, klass: ClassRecord) -> None:
        await self.s.execute(insert(classes).values(**row_values(klass, classes)))

    async def update_class(self, class_id: str, **values: Any) -> None:
        await self.s.execute(update(classes).where(classes.c.id == class_id).values(**values))

    async def page_classes(
        self, course_id: str, limit: int, cursor: Cursor | None
    ) -> tuple[list[ClassRecord], Cursor | None]:
        conditions: list[ColumnElement[bool]] = (
            [classes.c.course_id == course_id] if course_id else []
        )
        return await page_rows(self.s, classes, "created_at", conditions, limit, cursor, _class)

    async def class_ids_of_courses(self, course_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {c: [] for c in course_ids}
        if not course_ids:
            return out
        query = (
            select(classes.c.course_id, classes.c.id)
            .where(classes.c.course_id.in_(course_ids))
            .order_by(classes.c.created_at, classes.c.id)
        )
        for course_id, class_id in (await self.s.execute(query)).all():
            out[course_id].append(class_id)
        return out

"""Course and class use cases.

Authorization: tutors and admins create courses; a course's classes are created and
changed by its instructor; standalone classes by tutors. Writes take a `request_id` and
replay the first result.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from services.kit.auth import Principal, Role
from services.kit.errors import NotFound, PermissionDenied, ValidationError
from services.kit.paging import Page, page_size
from services.learning.common.storage import RequestKeys, decode_cursor, encode_cursor, query_scope
from services.learning.common.usecases import MAX_LIST_PAGE, LearningContext
from services.learning.hierarchy import domain as h
from services.learning.hierarchy.storage import ClassRecord, CourseRecord, HierarchyRepository
from services.learning.sessions.consent import class_owner
from services.learning.sessions.storage import SessionRepository
from services.learning.statements.storage import StatementRepository


def require_tutor(caller: Principal, what: str) -> None:
    if not (caller.has_role(Role.TUTOR) or caller.is_admin):
        raise PermissionDenied(f"only tutors and admins may create {what}")


def check_description(value: str, field_name: str) -> None:
    if len(value.strip()) > h.MAX_DESCRIPTION:
        raise ValidationError(field_name, f"must be at most {h.MAX_DESCRIPTION} characters")


class Hierarchy:
    def __init__(self, ctx: LearningContext) -> None:
        self.ctx = ctx

    # -- courses ----------------------------------------------------------------------------

    async def create_course(
        self,
        caller: Principal,
        title: str,
        description: str = "",
        instructor_id: str = "",
        request_id: str = "",
    ) -> CourseRecord:
        require_tutor(caller, "courses")
        instructor = instructor_id or caller.user_id
        if instructor != caller.user_id and not caller.is_admin:
            raise PermissionDenied("only admins may create a course for another instructor")
        return await self.ctx.created_once(
            caller,
            "create_course",
            request_id,
            lambda: self._create_course(caller, title, description, instructor, request_id),
            lambda course_id: self.get_course(caller, course_id),
        )

    async def _create_course(
        self, caller: Principal, title: str, description: str, instructor: str, request_id: str
    ) -> CourseRecord:
        course = h.Course.create(
            id=str(uuid.uuid4()),
            title=title,
            description=description,
            instructor_id=instructor,
            clock=self.ctx.clock,
        )
        now = self.ctx.clock.now()
        record = CourseRecord(
            id=course.id,
            title=course.title,
            description=course.description,
            instructor_id=course.instructor_id,
            created_at=now,
            updated_at=now,
        )
        async with self.ctx.db.transaction() as s:
            if request_id:
                await RequestKeys(s).claim(
                    caller.user_id, "create_course", request_id, course.id, now
                )
            await HierarchyRepository(s).insert_course(record)
        return record

    async def get_course(self, caller: Principal, course_id: str) -> CourseRecord:
        return (await self.get_courses([course_id]))[course_id]

    async def get_courses(self, ids: Sequence[str]) -> dict[str, CourseRecord]:
        """Courses by id (NotFound for a missing one); used by DataLoaders via ListCourses."""
        async with self.ctx.db.session() as s:
            repo = HierarchyRepository(s)
            rows = await repo.get_courses(list(ids))
            class_ids = await repo.class_ids_of_courses(list(rows))
        for key in ids:
            if key not in rows:
                raise NotFound(f"course {key} not found")
        return {k: replace(r, class_ids=class_ids.get(k, [])) for k, r in rows.items()}

    async def list_courses(
        self, caller: Principal, instructor_id: str = "", requested: int = 0, token: str = ""
    ) -> Page[CourseRecord]:
        size = page_size(requested, maximum=MAX_LIST_PAGE)
        scope = query_scope("courses", instructor_id)
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            repo = HierarchyRepository(s)
            rows, nxt = await repo.page_courses(instructor_id, size, cursor)
            class_ids = await repo.class_ids_of_courses([r.id for r in rows])
        items = [replace(r, class_ids=class_ids[r.id]) for r in rows]
        return Page(items, encode_cursor(nxt, scope) if nxt else "")

    async def update_course(
        self,
        caller: Principal,
        course_id: str,
        title: str | None = None,
        description: str | None = None,
    ) -> CourseRecord:
        async with self.ctx.db.transaction() as s:
            repo = HierarchyRepository(s)
            row = await repo.get_course(course_id)
            if row is None:
                raise NotFound(f"course {course_id} not found")
            if row.instructor_id != caller.user_id and not caller.is_admin:
                raise PermissionDenied("only the course's instructor may change it")
            checked = h.Course.create(
                id=row.id,
                title=row.title if title is None else title,
                description=row.description if description is None else description,
                instructor_id=row.instructor_id,
                clock=self.ctx.clock,
            )
            await repo.update_course(
                course_id,
                title=checked.title,
                description=checked.description,
                updated_at=self.ctx.clock.now(),
            )
        return await self.get_course(caller, course_id)

    # -- classes ----------------------------------------------------------------------------

    async def create_class(
        self,
        caller: Principal,
        title: str,
        description: str = "",
        course_id: str = "",
        request_id: str = "",
    ) -> ClassRecord:
        return await self.ctx.created_once(
            caller,
            "create_class",
            request_id,
            lambda: self._create_class(caller, title, description, course_id, request_id),
            lambda class_id: self.get_class(caller, class_id),
        )

    async def _create_class(
        self, caller: Principal, title: str, description: str, course_id: str, request_id: str
    ) -> ClassRecord:
        check_description(description, "description")
        now = self.ctx.clock.now()
        class_id = str(uuid.uuid4())
        async with self.ctx.db.transaction() as s:
            if request_id:
                await RequestKeys(s).claim(
                    caller.user_id, "create_class", request_id, class_id, now
                )
            repo = HierarchyRepository(s)
            course: h.Course | None = None
            if course_id:
                row = await repo.get_course(course_id)
                if row is None:
                    raise NotFound(f"course {course_id} not found")
                if row.instructor_id != caller.user_id and not caller.is_admin:
                    raise PermissionDenied("only the course's instructor may add classes to it")
                course = row.domain()
            else:
                require_tutor(caller, "standalone classes")
            klass = h.Class.create(id=class_id, title=title, clock=self.ctx.clock, course=course)
            record = ClassRecord(
                id=klass.id,
                course_id=klass.course_id,
                title=klass.title,
                description=description.strip(),
                created_by=caller.user_id,
                created_at=now,
                updated_at=now,
            )
            await repo.insert_class(record)
        return record

    async def get_class(self, caller: Principal, class_id: str) -> ClassRecord:
        return (await self.get_classes(caller, [class_id]))[class_id]

    async def get_classes(self, caller: Principal, ids: Sequence[str]) -> dict[str, ClassRecord]:
        async with self.ctx.db.session() as s:
            rows = await HierarchyRepository(s).get_classes(list(ids))
            for key in ids:
                if key not in rows:
                    raise NotFound(f"class {key} not found")
            return await _class_views(s, caller, rows)

    async def list_classes(
        self, caller: Principal, course_id: str = "", requested: int = 0, token: str = ""
    ) -> Page[ClassRecord]:
        size = page_size(requested, maximum=MAX_LIST_PAGE)
        scope = query_scope("classes", course_id)
        cursor = decode_cursor(token, scope)
        async with self.ctx.db.session() as s:
            rows, nxt = await HierarchyRepository(s).page_classes(course_id, size, cursor)
            views = await _class_views(s, caller, {r.id: r for r in rows})
        return Page([views[r.id] for r in rows], encode_cursor(nxt, scope) if nxt else "")

    async def update_class(
        self,
        caller: Principal,
        class_id: str,
        title: str | None = None,
        description: str | None = None,
    ) -> ClassRecord:
        async with self.ctx.db.transaction() as s:
            repo = HierarchyRepository(s)
            row = await repo.get_class(class_id)
            if row is None:
                raise NotFound(f"class {class_id} not found")
            allowed = caller.is_admin or row.created_by == caller.user_id
            if not allowed and row.course_id:
                course = await repo.get_course(row.course_id)
                allowed = course is not None and course.instructor_id == caller.user_id
            if not allowed:
                raise PermissionDenied(
                    "only the course instructor or the class creator may change it"
                )
            values: dict[str, Any] = {"updated_at": self.ctx.clock.now()}
            if title is not None:
                values["title"] = h.Class.create(
                    id=class_id, title=title, clock=self.ctx.clock
                ).title
            if description is not None:
                check_description(description, "description")
                values["description"] = description.strip()
            await repo.update_class(class_id, **values)
        return await self.get_class(caller, class_id)


async def _class_views(
    s: Any, caller: Principal, rows: dict[str, ClassRecord]
) -> dict[str, ClassRecord]:
    """Each class with its tutorial session ids and its interaction count, as the caller
    may see them (issue 9): the class's owner (its course's instructor, or its creator)
    and admins see all of them; anyone else only the sessions they take part in and the
    count of their own interactions in the class."""
    keys = list(rows)
    sessions = await SessionRepository(s).session_ids_of_classes(keys)
    counts = await StatementRepository(s).count_interactions_by("class_id", keys)
    out = {}
    for key, row in rows.items():
        if caller.is_admin or await class_owner(s, key) == caller.user_id:
            out[key] = replace(
                row,
                tutorial_session_ids=sessions.get(key, []),
                interaction_count=counts.get(key, 0),
            )
            continue
        mine = {sid for sid, _, _ in await SessionRepository(s).class_roles(caller.user_id, key)}
        own = await StatementRepository(s).count_interactions_by(
            "class_id", [key], learner_id=caller.user_id
        )
        out[key] = replace(
            row,
            tutorial_session_ids=[sid for sid in sessions.get(key, []) if sid in mine],
            interaction_count=own.get(key, 0),
        )
    return out

"""Courses and classes over GraphQL: reading them (through per-request DataLoaders, so a
page of N classes costs one GetCourse per distinct course, not N) and creating them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import strawberry
from strawberry.dataloader import DataLoader

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.learning.common import T, learning, optional_id, page
from services.api.keiko.learning import v1 as pb


@strawberry.type
class Course:
    id: strawberry.ID
    title: str
    description: str
    instructor_id: strawberry.ID
    class_ids: list[strawberry.ID]
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The classes of the course, in creation order.")
    async def classes(self, info: Info) -> list[Class]:
        return list(await loaders(info).classes.load_many([str(c) for c in self.class_ids]))

    @staticmethod
    def from_pb(course: pb.Course) -> Course:
        return Course(
            id=strawberry.ID(course.id),
            title=course.title,
            description=course.description,
            instructor_id=strawberry.ID(course.instructor_id),
            class_ids=[strawberry.ID(c) for c in course.class_ids],
            created_at=course.created_at,
            updated_at=course.updated_at,
        )


@strawberry.type
class Class:
    id: strawberry.ID
    course_id: strawberry.ID | None
    title: str
    description: str
    tutorial_session_ids: list[strawberry.ID]
    interaction_count: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The course of the class; null for a standalone class.")
    async def course(self, info: Info) -> Course | None:
        if self.course_id is None:
            return None
        return await loaders(info).courses.load(str(self.course_id))

    @staticmethod
    def from_pb(klass: pb.Class) -> Class:
        return Class(
            id=strawberry.ID(klass.id),
            course_id=optional_id(klass.course_id),
            title=klass.title,
            description=klass.description,
            tutorial_session_ids=[strawberry.ID(s) for s in klass.tutorial_session_ids],
            interaction_count=klass.interaction_count,
            created_at=klass.created_at,
            updated_at=klass.updated_at,
        )


@strawberry.type
class CourseConnection:
    nodes: list[Course]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class ClassConnection:
    nodes: list[Class]
    end_cursor: str | None
    has_next_page: bool


class LearningLoaders:
    """Per-request loaders: each distinct course / class is fetched once per request."""

    def __init__(self, info: Info) -> None:
        client = learning(info)

        async def each(keys: Sequence[str], fetch: Callable[[str], Awaitable[T]]) -> list[T]:
            found = await asyncio.gather(*(fetch(k) for k in dict.fromkeys(keys)))
            by_key = dict(zip(dict.fromkeys(keys), found, strict=True))
            return [by_key[k] for k in keys]

        async def course(key: str) -> Course:
            reply = await rpc(client.get_course(pb.GetCourseRequest(course_id=key)))
            return Course.from_pb(reply.course)

        async def klass(key: str) -> Class:
            reply = await rpc(client.get_class(pb.GetClassRequest(class_id=key)))
            return Class.from_pb(reply.class_)

        async def load_courses(keys: list[str]) -> list[Course]:
            return await each(keys, course)

        async def load_classes(keys: list[str]) -> list[Class]:
            return await each(keys, klass)

        self.courses: DataLoader[str, Course] = DataLoader(load_fn=load_courses)
        self.classes: DataLoader[str, Class] = DataLoader(load_fn=load_classes)


def loaders(info: Info) -> LearningLoaders:
    found: LearningLoaders | None = getattr(info.context, "_learning_loaders", None)
    if found is None:
        found = LearningLoaders(info)
        info.context._learning_loaders = found  # type: ignore[attr-defined]
    return found


@strawberry.type
class HierarchyQuery:
    @strawberry.field
    async def course(self, info: Info, id: strawberry.ID) -> Course:
        info.context.require_token()
        return await loaders(info).courses.load(str(id))

    @strawberry.field
    async def courses(
        self,
        info: Info,
        instructor_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> CourseConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_courses(
                pb.ListCoursesRequest(
                    instructor_id=str(instructor_id or ""), page_size=first, page_token=after or ""
                )
            )
        )
        cursor, more = page(reply.next_page_token)
        return CourseConnection(
            nodes=[Course.from_pb(c) for c in reply.courses], end_cursor=cursor, has_next_page=more
        )

    @strawberry.field(name="class")
    async def klass(self, info: Info, id: strawberry.ID) -> Class:
        info.context.require_token()
        return await loaders(info).classes.load(str(id))

    @strawberry.field
    async def classes(
        self,
        info: Info,
        course_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> ClassConnection:
        info.context.require_token()
        reply = await rpc(
            learning(info).list_classes(
                pb.ListClassesRequest(
                    course_id=str(course_id or ""), page_size=first, page_token=after or ""
                )
            )
        )
        cursor, more = page(reply.next_page_token)
        return ClassConnection(
            nodes=[Class.from_pb(c) for c in reply.classes], end_cursor=cursor, has_next_page=more
        )


@strawberry.type
class HierarchyMutation:
    @strawberry.mutation
    async def create_course(
        self,
        info: Info,
        title: str,
        description: str = "",
        instructor_id: strawberry.ID | None = None,
        request_id: str | None = None,
    ) -> Course:
        info.context.require_token()
        reply = await rpc(
            learning(info).create_course(
                pb.CreateCourseRequest(
                    title=title,
                    description=description,
                    instructor_id=str(instructor_id or ""),
                    request_id=request_id or "",
                )
            )
        )
        return Course.from_pb(reply.course)

    @strawberry.mutation
    async def update_course(
        self,
        info: Info,
        id: strawberry.ID,
        title: str | None = None,
        description: str | None = None,
    ) -> Course:
        info.context.require_token()
        reply = await rpc(
            learning(info).update_course(
                pb.UpdateCourseRequest(course_id=str(id), title=title, description=description)
            )
        )
        return Course.from_pb(reply.course)

    @strawberry.mutation
    async def create_class(
        self,
        info: Info,
        title: str,
        description: str = "",
        course_id: strawberry.ID | None = None,
        request_id: str | None = None,
    ) -> Class:
        info.context.require_token()
        reply = await rpc(
            learning(info).create_class(
                pb.CreateClassRequest(
                    course_id=str(course_id or ""),
                    title=title,
                    description=description,
                    request_id=request_id or "",
                )
            )
        )
        return Class.from_pb(reply.class_)

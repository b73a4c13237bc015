"""gRPC: course and class RPCs and their encoders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.api.keiko.learning import v1 as pb
from services.kit.auth import current_principal
from services.learning.hierarchy.storage import ClassRecord, CourseRecord

if TYPE_CHECKING:
    from services.learning.service import LearningService


class HierarchyServicer:
    service: LearningService

    async def create_course(
        self, create_course_request: pb.CreateCourseRequest
    ) -> pb.CreateCourseResponse:
        r = create_course_request
        course = await self.service.hierarchy.create_course(
            current_principal(),
            r.title,
            r.description,
            instructor_id=r.instructor_id,
            request_id=r.request_id,
        )
        return pb.CreateCourseResponse(course=course_to_pb(course))

    async def get_course(self, get_course_request: pb.GetCourseRequest) -> pb.GetCourseResponse:
        course = await self.service.hierarchy.get_course(
            current_principal(), get_course_request.course_id
        )
        return pb.GetCourseResponse(course=course_to_pb(course))

    async def list_courses(
        self, list_courses_request: pb.ListCoursesRequest
    ) -> pb.ListCoursesResponse:
        r = list_courses_request
        page = await self.service.hierarchy.list_courses(
            current_principal(), r.instructor_id, r.page_size, r.page_token
        )
        return pb.ListCoursesResponse(
            courses=[course_to_pb(c) for c in page.items], next_page_token=page.next_page_token
        )

    async def update_course(
        self, update_course_request: pb.UpdateCourseRequest
    ) -> pb.UpdateCourseResponse:
        r = update_course_request
        course = await self.service.hierarchy.update_course(
            current_principal(), r.course_id, title=r.title, description=r.description
        )
        return pb.UpdateCourseResponse(course=course_to_pb(course))

    async def create_class(
        self, create_class_request: pb.CreateClassRequest
    ) -> pb.CreateClassResponse:
        r = create_class_request
        klass = await self.service.hierarchy.create_class(
            current_principal(),
            r.title,
            r.description,
            course_id=r.course_id,
            request_id=r.request_id,
        )
        return pb.CreateClassResponse(class_=class_to_pb(klass))

    async def get_class(self, get_class_request: pb.GetClassRequest) -> pb.GetClassResponse:
        klass = await self.service.hierarchy.get_class(
            current_principal(), get_class_request.class_id
        )
        return pb.GetClassResponse(class_=class_to_pb(klass))

    async def list_classes(
        self, list_classes_request: pb.ListClassesRequest
    ) -> pb.ListClassesResponse:
        r = list_classes_request
        page = await self.service.hierarchy.list_classes(
            current_principal(), r.course_id, r.page_size, r.page_token
        )
        return pb.ListClassesResponse(
            classes=[class_to_pb(c) for c in page.items], next_page_token=page.next_page_token
        )

    async def update_class(
        self, update_class_request: pb.UpdateClassRequest
    ) -> pb.UpdateClassResponse:
        r = update_class_request
        klass = await self.service.hierarchy.update_class(
            current_principal(), r.class_id, title=r.title, description=r.description
        )
        return pb.UpdateClassResponse(class_=class_to_pb(klass))


def course_to_pb(course: CourseRecord) -> pb.Course:
    return pb.Course(
        id=course.id,
        title=course.title,
        description=course.description,
        instructor_id=course.instructor_id,
        class_ids=list(course.class_ids),
        created_at=course.created_at,
        updated_at=course.updated_at,
    )


def class_to_pb(klass: ClassRecord) -> pb.Class:
    return pb.Class(
        id=klass.id,
        course_id=klass.course_id or "",
        title=klass.title,
        description=klass.description,
        tutorial_session_ids=list(klass.tutorial_session_ids),
        interaction_count=klass.interaction_count,
        created_at=klass.created_at,
        updated_at=klass.updated_at,
    )

"""gRPC: GetActivity and GetPerson (the xAPI Activities and Agents resources)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from services.api.keiko.learning import v1 as pb
from services.kit.auth import current_principal

if TYPE_CHECKING:
    from services.learning.service import LearningService


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class ActivitiesServicer:
    service: LearningService

    async def get_activity(
        self, get_activity_request: pb.GetActivityRequest
    ) -> pb.GetActivityResponse:
        activity = await self.service.activities.get_activity(
            current_principal(), get_activity_request.activity_id
        )
        return pb.GetActivityResponse(activity_json=_text(activity))

    async def get_person(self, get_person_request: pb.GetPersonRequest) -> pb.GetPersonResponse:
        current_principal()  # authenticated like every xAPI resource
        person = self.service.activities.get_person(get_person_request.agent_json)
        return pb.GetPersonResponse(person_json=_text(person))

"""gRPC: interaction RPCs (Prepare, Record one or many, Get, List, Watch) and their encoders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import betterproto

from services.api.keiko.common import v1 as common_pb
from services.api.keiko.learning import v1 as pb
from services.kit.auth import current_principal
from services.kit.errors import Unavailable, ValidationError
from services.kit.events import Event
from services.kit.events.fanout import EventFanout
from services.learning.interactions.inputs import (
    InteractionInput,
    InteractionSubmission,
    ScoreInput,
    item_errors,
)
from services.learning.statements.domain import (
    TOPIC_ANCHOR_FAILED,
    TOPIC_INTERACTION_ANCHORED,
    TOPIC_INTERACTION_RECORDED,
    DeviceSignature,
    StatementRecord,
)
from services.learning.statements.servicer import anchor_from_event, anchor_to_pb, unset_as_none

if TYPE_CHECKING:
    from services.learning.service import LearningService

_KIND_TO_PB = {
    "question": common_pb.InteractionType.QUESTION,
    "answer": common_pb.InteractionType.ANSWER,
    "exercise": common_pb.InteractionType.EXERCISE,
    "discussion": common_pb.InteractionType.DISCUSSION,
    "evaluation": common_pb.InteractionType.EVALUATION,
    "feedback": common_pb.InteractionType.FEEDBACK,
}
_KIND_FROM_PB = {int(v): k for k, v in _KIND_TO_PB.items()}


class InteractionsServicer:
    service: LearningService
    fanout: EventFanout | None

    async def prepare_interaction(
        self, prepare_interaction_request: pb.PrepareInteractionRequest
    ) -> pb.PrepareInteractionResponse:
        prepared = await self.service.interactions.prepare_interaction(
            current_principal(), interaction_input(prepare_interaction_request.interaction)
        )
        return pb.PrepareInteractionResponse(
            statement_id=prepared.statement_id,
            statement_json=prepared.statement_json,
            canonical_statement_json=prepared.canonical_json,
        )

    async def record_interaction(
        self, record_interaction_request: pb.RecordInteractionRequest
    ) -> pb.RecordInteractionResponse:
        r = record_interaction_request
        row = await self.service.interactions.record_interaction(
            current_principal(),
            interaction_input(r.interaction),
            statement_id=r.statement_id,
            device_signature=device_signature(r.device_signature),
            request_id=r.request_id,
        )
        return pb.RecordInteractionResponse(interaction=interaction_to_pb(row))

    async def record_interactions(
        self, record_interactions_request: pb.RecordInteractionsRequest
    ) -> pb.RecordInteractionsResponse:
        r = record_interactions_request
        items = []
        for i, item in enumerate(r.interactions):
            with item_errors(f"interactions[{i}].", "interaction"):
                inp = interaction_input(item.interaction)
            items.append(
                InteractionSubmission(
                    inp, item.statement_id, device_signature(item.device_signature)
                )
            )
        rows = await self.service.interactions.record_interactions(
            current_principal(), items, request_id=r.request_id
        )
        return pb.RecordInteractionsResponse(interactions=[interaction_to_pb(x) for x in rows])

    async def get_interaction(
        self, get_interaction_request: pb.GetInteractionRequest
    ) -> pb.GetInteractionResponse:
        row = await self.service.interactions.get_interaction(
            current_principal(), get_interaction_request.interaction_id
        )
        return pb.GetInteractionResponse(interaction=interaction_to_pb(row))

    async def list_interactions(
        self, list_interactions_request: pb.ListInteractionsRequest
    ) -> pb.ListInteractionsResponse:
        r = list_interactions_request
        types = []
        for i, t in enumerate(r.interaction_types):
            kind = _KIND_FROM_PB.get(int(t))
            if kind is None:
                raise ValidationError(f"interaction_types[{i}]", "must be a known interaction type")
            types.append(kind)
        page = await self.service.interactions.list_interactions(
            current_principal(),
            learner_id=r.learner_id,
            course_id=r.context.course_id,
            class_id=r.context.class_id,
            tutorial_session_id=r.context.tutorial_session_id,
            study_session_id=r.context.study_session_id,
            interaction_types=types,
            since=unset_as_none(r.since),
            until=unset_as_none(r.until),
            requested=r.page_size,
            token=r.page_token,
        )
        return pb.ListInteractionsResponse(
            interactions=[interaction_to_pb(x) for x in page.items],
            next_page_token=page.next_page_token,
        )

    async def watch_interactions(
        self, watch_interactions_request: pb.WatchInteractionsRequest
    ) -> AsyncIterator[pb.WatchInteractionsResponse]:
        caller = current_principal()
        learner = await self.service.interactions.authorize_watch(
            caller, watch_interactions_request.learner_id
        )
        if self.fanout is None:
            raise Unavailable("watching is not available in this process")

        def visible(event: Event) -> bool:
            return event.payload.get("learner_id") == learner

        topics = [TOPIC_INTERACTION_RECORDED, TOPIC_INTERACTION_ANCHORED, TOPIC_ANCHOR_FAILED]
        async with self.fanout.listen(topics, visible) as events:
            async for event in events:
                message = await self._watch_message(event)
                if message is not None:
                    yield message

    async def _watch_message(self, event: Event) -> pb.WatchInteractionsResponse | None:
        payload = event.payload
        statement_id = str(payload.get("statement_id") or payload.get("record_id") or "")
        try:
            row = await self.service.interactions.get_statement_for_watch(statement_id)
        except ValidationError:
            return None
        if row is None or row.interaction_type is None:
            return None
        # Checked on every event: the read scope (issue 9) follows the learner's answers.
        if not await self.service.interactions.visible(current_principal(), row):
            return None
        interaction = interaction_to_pb(row)
        if event.topic == TOPIC_INTERACTION_RECORDED:
            return pb.WatchInteractionsResponse(
                kind=pb.InteractionEventKind(pb.InteractionEventKind.RECORDED),
                interaction=interaction,
            )
        interaction.anchor = anchor_from_event(event)
        return pb.WatchInteractionsResponse(
            kind=pb.InteractionEventKind(pb.InteractionEventKind.ANCHOR_CHANGED),
            interaction=interaction,
        )


def interaction_to_pb(row: StatementRecord) -> pb.Interaction:
    data = row.interaction
    message = pb.Interaction(
        id=row.id,
        learner_id=row.learner_id or "",
        interaction_type=common_pb.InteractionType(_KIND_TO_PB.get(row.interaction_type or "", 0)),
        context=pb.InteractionContext(
            course_id=row.course_id or "",
            class_id=row.class_id or "",
            tutorial_session_id=row.tutorial_session_id or "",
            study_session_id=row.study_session_id or "",
        ),
        activity_id=(data.activity_id if data else "") or row.object_id or "",
        title=data.title if data else "",
        content=data.content if data else "",
        response=data.response if data else "",
        related_interaction_id=data.related_interaction_id if data else "",
        success=data.success if data else None,
        completion=data.completion if data else None,
        occurred_at=row.timestamp,
        recorded_at=row.stored,
        statement_json=row.statement_json,
        # A device's own signature, else the one anchored (custodial or the author's).
        signature_hex=row.device_signature_hex or row.anchor_signature_hex or "",
        public_key_hex=row.device_public_key_hex or row.anchor_public_key_hex or "",
        anchor=anchor_to_pb(row),
    )
    if data is not None and data.score is not None:
        s = data.score
        message.score = pb.Score(scaled=s.scaled, raw=s.raw, min=s.min, max=s.max)
    if data is not None and data.duration_seconds is not None:
        message.duration = timedelta(seconds=float(data.duration_seconds))
    return message


def device_signature(message: common_pb.DeviceSignature) -> DeviceSignature | None:
    """The device's signature, None when the message is unset (the translator signs)."""
    if not betterproto.serialized_on_wire(message):
        return None
    return DeviceSignature(message.signature_hex, message.public_key_hex)


def interaction_input(message: pb.InteractionInput) -> InteractionInput:
    kind = _KIND_FROM_PB.get(int(message.interaction_type))
    if kind is None:
        raise ValidationError(
            "interaction.interaction_type", "must be a known interaction type (not UNSPECIFIED)"
        )
    score = None
    if betterproto.serialized_on_wire(message.score):
        s = message.score
        score = ScoreInput(scaled=s.scaled, raw=s.raw, min=s.min, max=s.max)
    context = message.context
    return InteractionInput(
        kind=kind,
        learner_id=message.learner_id,
        course_id=context.course_id,
        class_id=context.class_id,
        tutorial_session_id=context.tutorial_session_id,
        study_session_id=context.study_session_id,
        activity_id=message.activity_id,
        title=message.title,
        content=message.content,
        response=message.response,
        related_interaction_id=message.related_interaction_id,
        score=score,
        success=message.success,
        completion=message.completion,
        duration=message.duration if message.duration != timedelta(0) else None,
        occurred_at=unset_as_none(message.occurred_at),
    )

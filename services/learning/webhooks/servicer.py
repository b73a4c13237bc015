"""gRPC: webhook source RPCs (Register, List, Revoke, Import) and their encoder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.api.keiko.learning import v1 as pb
from services.kit.auth import current_principal
from services.kit.errors import ValidationError
from services.learning.webhooks.domain import WebhookKind
from services.learning.webhooks.storage import WebhookSourceRecord

if TYPE_CHECKING:
    from services.learning.service import LearningService

_SOURCE_TO_PB = {
    WebhookKind.LEARNING_LOCKER: pb.WebhookSourceKind.LEARNING_LOCKER,
    WebhookKind.SCORM_CLOUD: pb.WebhookSourceKind.SCORM_CLOUD,
    WebhookKind.MOODLE: pb.WebhookSourceKind.MOODLE,
    WebhookKind.CANVAS: pb.WebhookSourceKind.CANVAS,
}
_SOURCE_FROM_PB = {int(v): k for k, v in _SOURCE_TO_PB.items()}


class WebhooksServicer:
    service: LearningService

    async def register_webhook_source(
        self, register_webhook_source_request: pb.RegisterWebhookSourceRequest
    ) -> pb.RegisterWebhookSourceResponse:
        r = register_webhook_source_request
        kind = _SOURCE_FROM_PB.get(int(r.kind))
        if kind is None:
            raise ValidationError("kind", "must be LEARNING_LOCKER, SCORM_CLOUD, MOODLE or CANVAS")
        registration = await self.service.webhooks.register_webhook_source(
            current_principal(),
            name=r.name,
            kind=kind,
            secret=r.secret,
            course_id=r.course_id,
            request_id=r.request_id,
        )
        return pb.RegisterWebhookSourceResponse(
            source=webhook_source_to_pb(registration.source),
            generated_secret=registration.generated_secret,
        )

    async def list_webhook_sources(
        self, list_webhook_sources_request: pb.ListWebhookSourcesRequest
    ) -> pb.ListWebhookSourcesResponse:
        r = list_webhook_sources_request
        page = await self.service.webhooks.list_webhook_sources(
            current_principal(), r.page_size, r.page_token
        )
        return pb.ListWebhookSourcesResponse(
            sources=[webhook_source_to_pb(s) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def revoke_webhook_source(
        self, revoke_webhook_source_request: pb.RevokeWebhookSourceRequest
    ) -> pb.RevokeWebhookSourceResponse:
        source = await self.service.webhooks.revoke_webhook_source(
            current_principal(), revoke_webhook_source_request.source_id
        )
        return pb.RevokeWebhookSourceResponse(source=webhook_source_to_pb(source))

    async def import_webhook(
        self, import_webhook_request: pb.ImportWebhookRequest
    ) -> pb.ImportWebhookResponse:
        r = import_webhook_request
        result = await self.service.webhooks.import_webhook(
            r.source_id, dict(r.headers), bytes(r.body)
        )
        return pb.ImportWebhookResponse(
            statement_ids=result.statement_ids, skipped_events=result.skipped_events
        )


def webhook_source_to_pb(source: WebhookSourceRecord) -> pb.WebhookSource:
    """The public view of a source: never its secret or password hash."""
    message = pb.WebhookSource(
        id=source.id,
        name=source.name,
        kind=pb.WebhookSourceKind(_SOURCE_TO_PB[source.kind]),
        owner_id=source.owner_id,
        endpoint_path=source.endpoint_path,
        created_at=source.created_at,
    )
    if source.revoked_at is not None:
        message.revoked_at = source.revoked_at
    return message

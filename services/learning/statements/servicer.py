"""gRPC: the xAPI statement RPCs (RecordStatements, GetStatement, QueryStatements,
VoidStatement), the statement encoders, and the anchoring consumer job."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.api.keiko.common import v1 as common_pb
from services.api.keiko.learning import v1 as pb
from services.kit.auth import current_principal
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import run_page_consumer
from services.learning.activities.usecases import check_format
from services.learning.common.usecases import MAX_STATEMENT_PAGE
from services.learning.statements.attachments import AttachmentPart
from services.learning.statements.domain import (
    TOPIC_ANCHOR_FAILED,
    TOPIC_INTERACTION_ANCHORED,
    StatementRecord,
)
from services.learning.statements.pages import TextPage

if TYPE_CHECKING:
    from services.learning.service import LearningService

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ANCHOR_GROUP = "learning.anchors"


def unset_as_none(value: datetime) -> datetime | None:
    """A proto Timestamp left unset decodes as the epoch."""
    return None if value == _EPOCH else value


class StatementsServicer:
    service: LearningService

    async def record_statements(
        self, record_statements_request: pb.RecordStatementsRequest
    ) -> pb.RecordStatementsResponse:
        request = record_statements_request
        rows = await self.service.statements.record_statements(
            current_principal(),
            list(request.statement_jsons),
            xapi_version=request.xapi_version,
            request_id=request.request_id,
            attachments=[
                AttachmentPart(a.sha2, a.content_type, bytes(a.content))
                for a in request.attachments
            ],
        )
        if request.brief:
            return pb.RecordStatementsResponse(
                statements=[pb.Statement(id=r.id, learner_id=r.learner_id or "") for r in rows]
            )
        return pb.RecordStatementsResponse(statements=[statement_to_pb(r) for r in rows])

    async def get_attachments(
        self, get_attachments_request: pb.GetAttachmentsRequest
    ) -> pb.GetAttachmentsResponse:
        found = await self.service.statements.get_attachments(
            current_principal(), list(get_attachments_request.sha2)
        )
        return pb.GetAttachmentsResponse(
            attachments=[
                pb.Attachment(sha2=a.sha2, content_type=a.content_type, content=a.content)
                for a in found
            ]
        )

    async def get_statement(
        self, get_statement_request: pb.GetStatementRequest
    ) -> pb.GetStatementResponse:
        r = get_statement_request
        caller = current_principal()
        row = await self.service.statements.get_statement(caller, r.statement_id)
        [text] = await self.service.activities.render(
            caller, [row.statement_json], r.format, r.accept_language
        )
        return pb.GetStatementResponse(statement=statement_to_pb(row, text))

    async def query_statements(
        self, query_statements_request: pb.QueryStatementsRequest
    ) -> pb.QueryStatementsResponse:
        r = query_statements_request
        caller = current_principal()
        fmt = check_format(r.format)
        statements = self.service.statements
        f = statements.xapi_filter(
            caller,
            learner_id=r.learner_id,
            verb_id=r.verb_id,
            activity_id=r.activity_id,
            registration=r.registration,
            since=unset_as_none(r.since),
            until=unset_as_none(r.until),
            include_voided=r.include_voided,
            ascending=r.ascending,
            related_activities=r.related_activities,
            related_agents=r.related_agents,
        )
        if r.json_array:
            texts_page = await statements.text_page(f, r.page_size, r.page_token)
            texts = await self.service.activities.render(
                caller, texts_page.texts, fmt, r.accept_language
            )
            return json_array_response(texts_page, texts)
        page = await statements.page(f, r.page_size, MAX_STATEMENT_PAGE, r.page_token)
        texts = await self.service.activities.render(
            caller, [row.statement_json for row in page.items], fmt, r.accept_language
        )
        to_pb = statement_json_to_pb if r.json_only else statement_to_pb
        return pb.QueryStatementsResponse(
            statements=[to_pb(row, text) for row, text in zip(page.items, texts, strict=True)],
            next_page_token=page.next_page_token,
        )

    async def void_statement(
        self, void_statement_request: pb.VoidStatementRequest
    ) -> pb.VoidStatementResponse:
        row = await self.service.statements.void_statement(
            current_principal(),
            void_statement_request.statement_id,
            request_id=void_statement_request.request_id,
        )
        return pb.VoidStatementResponse(voiding_statement=statement_to_pb(row))


def anchor_consumer(
    service: LearningService, bus: EventBus
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """Background job: apply `chain.interaction_anchored` / `chain.anchor_failed` to the
    statements (consumer group `learning.anchors`, shared by the replicas) until `stop`."""

    async def run(stop: asyncio.Event) -> None:
        subscription = bus.subscribe(
            [TOPIC_INTERACTION_ANCHORED, TOPIC_ANCHOR_FAILED],
            group=ANCHOR_GROUP,
            consumer=f"{socket.gethostname()}-{os.getpid()}",
        )
        consumer = asyncio.create_task(
            run_page_consumer(
                subscription,
                service.statements.apply_anchor_events,
                service.statements.apply_anchor_event,
            )
        )
        try:
            await stop.wait()
        finally:
            await subscription.close()
            await asyncio.gather(consumer, return_exceptions=True)

    return run


# -- encoding ---------------------------------------------------------------------------------


_ANCHOR_STATUS = {
    None: common_pb.AnchorStatus.PENDING,
    "anchored": common_pb.AnchorStatus.ANCHORED,
    "failed": common_pb.AnchorStatus.FAILED,
}


def anchor_to_pb(row: StatementRecord) -> common_pb.AnchorState:
    state = common_pb.AnchorState(
        status=common_pb.AnchorStatus(_ANCHOR_STATUS.get(row.anchor_status, 0)),
        batch_id=row.anchor_batch_id or "",
        merkle_root=row.anchor_root or "",
        leaf_index=row.anchor_leaf_index or 0,
        block_number=row.anchor_block or 0,
        tx_hash=row.anchor_tx_hash or "",
        failure_reason=row.anchor_failure or "",
    )
    if row.anchored_at is not None:
        state.anchored_at = row.anchored_at
    return state


def anchor_from_event(event: Event) -> common_pb.AnchorState:
    p = event.payload
    anchored = event.topic == TOPIC_INTERACTION_ANCHORED
    state = common_pb.AnchorState(
        status=common_pb.AnchorStatus(
            common_pb.AnchorStatus.ANCHORED if anchored else common_pb.AnchorStatus.FAILED
        ),
        batch_id=str(p.get("batch_id", "")),
        merkle_root=str(p.get("root", "")),
        leaf_index=int(p.get("leaf_index") or 0),
        block_number=int(p.get("block") or 0),
        tx_hash=str(p.get("tx_hash") or ""),
        failure_reason=str(p.get("failure_reason") or ""),
    )
    if anchored:
        state.anchored_at = event.occurred_at
    return state


def actor_to_pb(actor: dict[str, Any]) -> pb.Actor:
    account = actor.get("account") or {}
    return pb.Actor(
        name=str(actor.get("name", "")),
        mbox=str(actor.get("mbox", "")),
        mbox_sha1_sum=str(actor.get("mbox_sha1sum", "")),
        openid=str(actor.get("openid", "")),
        account_home_page=str(account.get("homePage", "")),
        account_name=str(account.get("name", "")),
    )


def statement_json_to_pb(row: StatementRecord, rendered: str | None = None) -> pb.Statement:
    """The statement's id, JSON (``rendered`` for format ids or canonical) and stored
    time only (QueryStatementsRequest.json_only)."""
    return pb.Statement(
        id=row.id,
        statement_json=row.statement_json if rendered is None else rendered,
        stored=row.stored,
    )


def json_array_response(page: TextPage, texts: list[str]) -> pb.QueryStatementsResponse:
    """QueryStatementsRequest.json_array: the page's JSON texts (``texts``: as stored, or
    rendered for format ids or canonical) joined into one array, never re-serialized."""
    response = pb.QueryStatementsResponse(
        next_page_token=page.next_page_token,
        statements_json_array="[" + ",".join(texts) + "]",
        statement_count=len(texts),
    )
    if page.newest_stored is not None:
        response.last_stored = page.newest_stored
    return response


def statement_to_pb(row: StatementRecord, rendered: str | None = None) -> pb.Statement:
    """The statement message; `rendered` replaces the stored text for format ids or
    canonical."""
    statement = row.statement
    return pb.Statement(
        id=row.id,
        statement_json=row.statement_json if rendered is None else rendered,
        actor=actor_to_pb(statement.get("actor", {})),
        learner_id=row.learner_id or "",
        verb_id=row.verb_id,
        object_id=row.object_id or "",
        registration=row.registration or "",
        timestamp=row.timestamp,
        stored=row.stored,
        version=row.version,
        voided=row.voided,
        anchor=anchor_to_pb(row),
    )

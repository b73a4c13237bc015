"""The event intake: the domain events the translator anchors, consumed from the bus.

Consumer group ``chain.intake``; every event is handled at least once and queuing is
idempotent on ``(domain, record_id)`` (custodial Ed25519 signatures are deterministic, so
a redelivery yields the same leaf), so no extra dedupe table is needed.

=====================================  ===========  =====================================
topic                                  domain       record id and leaf
=====================================  ===========  =====================================
``learning.interaction_recorded``      learning     ``statement_id``; the statement
                                                    (``statement_json``) signed by its
                                                    author (its authority, who must be
                                                    ``recorded_by``) with the author's
                                                    custodial key, or the
                                                    ``device_signature`` checked against
                                                    the author's registered key
                                                    (``keiko.leaf.v2``). Statements about
                                                    non-Keiko actors (no ``learner_id``)
                                                    are not anchored.
``reputation.rating_revealed``         reputation   ``record_id``; ``leaf_data`` (UTF-8)
``governance.proposal_finalized``      governance   ``proposal_id``; the canonical
                                                    ``result``, whose sha256 must equal
                                                    ``tally_digest``
``marketplace.certification_attested`` marketplace  ``certification_id``; the canonical
                                                    JSON of the payload
=====================================  ===========  =====================================

Unsigned records use the ``keiko.record.v1`` leaf (:func:`service.record_leaf`). An event
that can never be anchored (malformed, conflicting with an earlier record) is logged and
acknowledged; transient errors (database) are raised so the bus retries them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from chain.translator.batching import Domain
from chain.translator.service import ChainTranslator, StatementToQueue
from chain.translator.signing import canonical_bytes
from services.kit.errors import AlreadyExists, ValidationError
from services.kit.events import Event, EventBus
from services.kit.events.dedupe import run_page_consumer

log = structlog.get_logger("keiko.chain.intake")

GROUP = "chain.intake"
LEARNING_RECORDED = "learning.interaction_recorded"
RATING_REVEALED = "reputation.rating_revealed"
PROPOSAL_FINALIZED = "governance.proposal_finalized"
CERTIFICATION_ATTESTED = "marketplace.certification_attested"
TOPICS = (LEARNING_RECORDED, RATING_REVEALED, PROPOSAL_FINALIZED, CERTIFICATION_ATTESTED)
# Events handled as one page at most (one read, one INSERT, one ack): a burst of statements
# (xAPI batches) drains in fewer pages, each paying its round trips once (on a busy event
# loop each round trip also waits for the loop's turn).
PAGE_SIZE = 256


class AnchorIntake:
    def __init__(self, translator: ChainTranslator) -> None:
        self.translator = translator

    async def handle(self, event: Event) -> str:
        """Queue what ``event`` asks to anchor; returns what happened (for logs/tests)."""
        try:
            return await self._handle(event)
        except (ValidationError, AlreadyExists) as exc:
            # Permanent: retrying cannot help. Visible in the logs with the event id.
            log.error("event not anchorable", topic=event.topic, event_id=event.id, error=str(exc))
            return "rejected"

    async def handle_page(self, events: list[Event]) -> None:
        """A fetched page of events at once: the statements to sign queued together
        (:meth:`ChainTranslator.queue_statements`, one INSERT), the other events one by
        one. Any error raises, and the page consumer then handles each event alone
        (:meth:`handle`): queuing is idempotent, so what this page queued is kept."""
        statements: list[StatementToQueue] = []
        others: list[Event] = []
        for event in events:
            item = _statement_to_queue(event) if event.topic == LEARNING_RECORDED else None
            if item is not None:
                statements.append(item)
            elif event.topic != LEARNING_RECORDED:
                others.append(event)
        if statements:
            await self.translator.queue_statements(statements)
        for event in others:
            await self._handle(event)

    async def _handle(self, event: Event) -> str:
        p = event.payload
        if event.topic == LEARNING_RECORDED:
            item = _statement_to_queue(event)
            if item is None:
                return "skipped"  # an external actor: nobody's passport, nothing to sign
            row = await self.translator.queue_statement(
                item.learner_id, item.record_id, item.statement, item.device, item.recorded_by
            )
            return "queued" if row.failure_reason is None else "failed"
        if event.topic == RATING_REVEALED:
            data = str(p.get("leaf_data") or "").encode("utf-8")
            if not data:
                raise ValidationError("leaf_data", "is required")
            await self.translator.queue_record(
                Domain.REPUTATION, str(p.get("record_id") or ""), data
            )
            return "queued"
        if event.topic == PROPOSAL_FINALIZED:
            result = p.get("result")
            if not isinstance(result, dict):
                raise ValidationError("result", "must be a JSON object")
            data = canonical_bytes(result, "result")
            if hashlib.sha256(data).hexdigest() != str(p.get("tally_digest") or "").lower():
                raise ValidationError("tally_digest", "is not the sha256 of the result")
            await self.translator.queue_record(
                Domain.GOVERNANCE, str(p.get("proposal_id") or ""), data
            )
            return "queued"
        if event.topic == CERTIFICATION_ATTESTED:
            data = canonical_bytes(dict(p), "payload")
            await self.translator.queue_record(
                Domain.MARKETPLACE, str(p.get("certification_id") or ""), data
            )
            return "queued"
        return "ignored"

    def job(self, bus: EventBus) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
        """A background job consuming :data:`TOPICS` until stopped."""
        consumer = f"{socket.gethostname()}-{os.getpid()}"

        async def run(stop: asyncio.Event) -> None:
            subscription = bus.subscribe(list(TOPICS), group=GROUP, consumer=consumer)
            consume = asyncio.create_task(
                run_page_consumer(subscription, self.handle_page, self.handle, page_size=PAGE_SIZE)
            )
            await stop.wait()
            await subscription.close()
            try:
                await asyncio.wait_for(consume, timeout=5.0)
            except TimeoutError:
                consume.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consume

        return run


def _statement_to_queue(event: Event) -> StatementToQueue | None:
    """The statement a ``learning.interaction_recorded`` event asks to sign and anchor
    (None: about an external actor, nobody's passport)."""
    p = event.payload
    learner_id = str(p.get("learner_id") or "")
    if not learner_id:
        return None
    try:
        statement = json.loads(str(p.get("statement_json") or ""))
    except ValueError:
        raise ValidationError("statement_json", "is not JSON") from None
    if not isinstance(statement, dict):
        raise ValidationError("statement_json", "must be a JSON object")
    device = p.get("device_signature")
    pair = None
    if isinstance(device, dict) and device.get("signature_hex"):
        pair = (str(device["signature_hex"]), str(device.get("public_key_hex") or ""))
    return StatementToQueue(
        learner_id,
        str(p.get("statement_id") or ""),
        statement,
        pair,
        recorded_by=str(p.get("recorded_by") or ""),
        traceparent=event.traceparent,
    )

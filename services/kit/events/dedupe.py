"""Idempotent consumers: handle each event id once per consumer group, whatever the bus and
the outbox redeliver (both are at-least-once).

The marker row is written in the same transaction as the consumer's state change, so
"handled" and "marked handled" commit together: a crash before commit leaves neither and the
redelivery is handled; a redelivery after commit finds the marker and is skipped.

    processed = processed_events_table(metadata)       # in the consumer service's schema
    dedupe = Deduplicator(processed, group="passport")

    async def on_event(event: Event) -> None:
        await handle_once(db, dedupe, event, apply_to_timeline)

    await run_consumer(bus.subscribe([...], group="passport", consumer=name), on_event)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import structlog
from sqlalchemy import Column, DateTime, MetaData, String, Table, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from services.kit import tracing
from services.kit.clock import Clock, SystemClock
from services.kit.db import Database
from services.kit.events.base import Delivery, Event, Subscription

__all__ = [
    "Deduplicator",
    "handle_batch_once",
    "handle_once",
    "handle_page_once",
    "processed_events_table",
    "run_consumer",
    "run_page_consumer",
]

log = structlog.get_logger(__name__)


def processed_events_table(metadata: MetaData, name: str = "processed_events") -> Table:
    """Markers of handled events, in the consuming service's schema."""
    return Table(
        name,
        metadata,
        Column("consumer_group", String(200), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


class Deduplicator:
    """Remembers which event ids a consumer group has handled."""

    def __init__(self, table: Table, *, group: str, clock: Clock | None = None) -> None:
        self.table = table
        self.group = group
        self.clock = clock or SystemClock()

    async def first_time(self, session: AsyncSession, event: Event) -> bool:
        """Mark `event` handled in the caller's transaction; False if it already was.
        Concurrent duplicates are safe: the primary key lets one insert win."""
        values = {
            "consumer_group": self.group,
            "event_id": event.id,
            "processed_at": self.clock.now(),
        }
        stmt: Executable
        if session.get_bind().dialect.name == "postgresql":
            stmt = pg_insert(self.table).values(values).on_conflict_do_nothing()
        else:
            stmt = sqlite_insert(self.table).values(values).on_conflict_do_nothing()
        result = await session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def first_times(self, session: AsyncSession, events: Sequence[Event]) -> list[Event]:
        """:meth:`first_time` for a page of events with one multi-row INSERT: the events
        not handled before, in their order (a repeated id counts once, the first)."""
        seen: set[str] = set()
        unique: list[Event] = []
        for event in events:
            if event.id not in seen:
                seen.add(event.id)
                unique.append(event)
        if not unique:
            return []
        now = self.clock.now()
        rows = [
            {"consumer_group": self.group, "event_id": event.id, "processed_at": now}
            for event in unique
        ]
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        # Parameters as a list (executemany): SQLAlchemy's "insertmanyvalues" still sends
        # one multi-row INSERT, from a statement compiled once, where `.values(rows)` was
        # compiled again (bind names and all) for each page size and every new page.
        result = await session.execute(
            insert(self.table).on_conflict_do_nothing().returning(self.table.c.event_id), rows
        )
        marked = set(result.scalars())
        return [event for event in unique if event.id in marked]

    async def purge(self, session: AsyncSession, before: datetime) -> int:
        """Forget markers older than `before` (older than any redelivery can be)."""
        result = await session.execute(
            delete(self.table).where(
                self.table.c.consumer_group == self.group, self.table.c.processed_at < before
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def handle_once(
    db: Database,
    dedupe: Deduplicator,
    event: Event,
    handler: Callable[[AsyncSession, Event], Awaitable[None]],
) -> bool:
    """Run `handler(session, event)` in one transaction with the marker, unless this event
    was handled before. Returns whether the handler ran."""
    async with db.transaction() as session:
        if not await dedupe.first_time(session, event):
            log.info("duplicate event skipped", event_id=event.id, group=dedupe.group)
            return False
        await handler(session, event)
    return True


async def handle_page_once(
    db: Database,
    dedupe: Deduplicator,
    events: Sequence[Event],
    handler: Callable[[AsyncSession, Event], Awaitable[None]],
) -> list[Event]:
    """:func:`handle_once` for a page of events in one transaction: the markers in one
    INSERT, then ``handler`` for each event not handled before, in order. Any failure
    rolls the whole page back (markers included). Returns the events handled."""

    async def each(session: AsyncSession, fresh: Sequence[Event]) -> None:
        for event in fresh:
            await handler(session, event)

    return await handle_batch_once(db, dedupe, events, each)


async def handle_batch_once(
    db: Database,
    dedupe: Deduplicator,
    events: Sequence[Event],
    handler: Callable[[AsyncSession, Sequence[Event]], Awaitable[None]],
) -> list[Event]:
    """:func:`handle_page_once` with one call of ``handler`` for all the events not handled
    before (in order), so it can write them with a few statements rather than a few each."""
    async with db.transaction() as session:
        fresh = await dedupe.first_times(session, events)
        if len(fresh) < len(events):
            log.info("duplicate events skipped", count=len(events) - len(fresh), group=dedupe.group)
        if fresh:
            await handler(session, fresh)
    return fresh


async def run_page_consumer(
    subscription: Subscription,
    page_handler: Callable[[list[Event]], Awaitable[object]],
    handler: Callable[[Event], Awaitable[object]],
    *,
    page_size: int = 100,
) -> None:
    """:func:`run_consumer` (in delivery order) that hands ``page_handler`` every delivery
    already fetched, up to ``page_size`` at once, so it can apply them in one transaction;
    they are acked together when it returns. If it raises (it must then have changed
    nothing: one transaction), each event of the page is handled again alone by
    ``handler``, acked or nacked on its own, so one bad event holds back only itself.
    A page of one goes straight to ``handler``.

    Each read asks the bus for up to ``page_size`` events (not the bus's default of ten):
    at a high rate, pages of ten cost ten times the round trips, transactions and acks,
    and the consumer fell seconds behind its topic."""
    subscription.fetch_size = max(subscription.fetch_size, page_size)
    async with subscription:
        async for first in subscription:
            page = [first, *subscription.take_buffered(page_size - 1)]
            if len(page) == 1:
                await _deliver(first, handler)
                continue
            try:
                with contextlib.ExitStack() as spans:
                    # One span per event, each lasting the page's transaction.
                    for delivery in page:
                        spans.enter_context(
                            tracing.consumer_span(delivery.event.topic, delivery.event.traceparent)
                        )
                    await page_handler([delivery.event for delivery in page])
            except Exception as exc:
                log.warning(
                    "event page failed, handling its events one at a time",
                    events=len(page),
                    first_event_id=first.event.id,
                    error=repr(exc),
                )
                for delivery in page:
                    await _deliver(delivery, handler)
            else:
                await subscription.ack_all(page)


async def run_consumer(
    subscription: Subscription,
    handler: Callable[[Event], Awaitable[object]],
    *,
    concurrency: int = 1,
) -> None:
    """Feed every delivery to `handler`: ack on success, nack with the error otherwise (so it
    is retried, then dead-lettered). Ends when the subscription is closed.

    ``concurrency`` > 1 handles up to that many deliveries at once (each acked on its own):
    only for handlers whose events are independent of each other's order (idempotent per
    event, no event depending on an earlier one). The default keeps delivery order."""
    async with subscription:
        if concurrency <= 1:
            async for delivery in subscription:
                await _deliver(delivery, handler)
            return
        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()

        async def one(delivery: Delivery) -> None:
            try:
                await _deliver(delivery, handler)
            finally:
                slots.release()

        try:
            async for delivery in subscription:
                await slots.acquire()
                task = asyncio.create_task(one(delivery))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)


async def _deliver(delivery: Delivery, handler: Callable[[Event], Awaitable[object]]) -> None:
    try:
        with tracing.consumer_span(delivery.event.topic, delivery.event.traceparent):
            await handler(delivery.event)
    except Exception as exc:
        log.warning(
            "event handler failed",
            topic=delivery.event.topic,
            event_id=delivery.event.id,
            attempt=delivery.attempt,
            error=repr(exc),
        )
        await delivery.nack(f"{type(exc).__name__}: {exc}")
    else:
        await delivery.ack()

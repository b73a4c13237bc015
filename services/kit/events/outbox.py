"""Transactional outbox: an event is published if and only if its state change committed.

A service writes the event into its own `outbox` table in the same transaction as the
change (`enqueue`). An `OutboxRelay` reads committed, unpublished rows in order, publishes
them and marks them published. A rollback leaves no row, so nothing is published.

Delivery is at-least-once: if the relay dies after publishing and before its mark commits,
the next pass publishes the same rows again (same `Event.id`). Consumers therefore dedupe
by event id - `services.kit.events.dedupe.Deduplicator` does it in the consumer's own
transaction. Several relays may run (one per replica): on PostgreSQL each claims its batch
with `FOR UPDATE SKIP LOCKED`; on SQLite the write lock of `Database.transaction()`
serializes them. Order is by commit-time sequence within one relay; concurrent relays may
interleave batches.

`run` also deletes rows published more than `retention` ago (a week by default), at start
and then every `purge_interval` seconds, so the table holds what is in flight plus a
recent window for forensics rather than every event ever sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.kit import tracing
from services.kit.clock import Clock, SystemClock
from services.kit.db import Database
from services.kit.events.base import BusEpoch, Event, EventBus
from services.kit.tracing import SpanKind

__all__ = ["OutboxRelay", "enqueue", "enqueue_many", "outbox_rows", "outbox_table"]

DEFAULT_RETENTION = timedelta(days=7)
# How far back a relay publishes again when the bus lost its memory (see OutboxRelay):
# events sent to the lost bus this long before it came back empty. A consumer lagging
# further behind than this when Redis loses its data misses the older events.
DEFAULT_REPLAY_WINDOW = timedelta(minutes=5)
DEFAULT_PURGE_INTERVAL_S = 3600.0

log = structlog.get_logger(__name__)


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """The outbox table of one service, in that service's schema (its `metadata`)."""
    table = Table(
        name,
        metadata,
        # SQLite only autoincrements INTEGER PRIMARY KEY.
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
    )
    # What the relay scans: unpublished rows in order.
    unpublished = table.c.published_at.is_(None)
    Index(
        f"ix_{name}_unpublished",
        table.c.seq,
        postgresql_where=unpublished,
        sqlite_where=unpublished,
    )
    return table


async def enqueue(session: AsyncSession | AsyncConnection, table: Table, event: Event) -> None:
    """Record `event` in the outbox, inside the caller's transaction."""
    tracing.remember_event(event.id, event.traceparent)
    await session.execute(
        insert(table).values(
            event_id=event.id,
            topic=event.topic,
            key=event.key,
            payload=event.payload,
            occurred_at=event.occurred_at.astimezone(UTC),
        )
    )


async def enqueue_many(
    session: AsyncSession | AsyncConnection, table: Table, events: Sequence[Event]
) -> None:
    """Record ``events`` in the outbox with one multi-row INSERT (executemany), inside the
    caller's transaction: a batch of a thousand anchors costs one statement, not a
    thousand round trips."""
    if events:
        await session.execute(insert(table), outbox_rows(events))


def outbox_rows(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The outbox rows of `events` (for a caller that writes them in a statement of its
    own, e.g. with the change it records); their trace context is remembered for the
    relay."""
    for event in events:
        tracing.remember_event(event.id, event.traceparent)
    return [
        {
            "event_id": event.id,
            "topic": event.topic,
            "key": event.key,
            "payload": event.payload,
            "occurred_at": event.occurred_at.astimezone(UTC),
        }
        for event in events
    ]


class OutboxRelay:
    """Publishes committed outbox rows. `relay_once()` for one batch; `run(stop)` loops."""

    def __init__(
        self,
        db: Database,
        table: Table,
        bus: EventBus,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.2,
        idle_poll_interval: float = 2.0,
        clock: Clock | None = None,
        retention: timedelta | None = DEFAULT_RETENTION,
        purge_interval: float = DEFAULT_PURGE_INTERVAL_S,
        replay_window: timedelta = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        self.db = db
        self.table = table
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # Polls that find nothing double the wait up to this: writers in this process
        # notify() the relay after commit, so polling only picks up rows another process
        # left behind. Seven relays at 5 polls/s kept an idle platform busy.
        self.idle_poll_interval = max(idle_poll_interval, poll_interval)
        self.clock = clock or SystemClock()
        self.retention = retention  # None: keep published rows
        self.purge_interval = purge_interval
        self.replay_window = replay_window
        self._epoch: BusEpoch | None = None
        self._nudged = False
        self._nudge: asyncio.Event | None = None

    def notify(self) -> None:
        """Relay now instead of at the next poll (call after committing an enqueue)."""
        self._nudged = True
        if self._nudge is not None:
            self._nudge.set()

    async def relay_once(self) -> int:
        """Publish up to `batch_size` unpublished events; returns how many were published.
        If publishing fails, none is marked and the error raised: the next pass publishes
        them again (consumers dedupe).

        Four round trips a pass: BEGIN; one UPDATE .. RETURNING that takes the rows and
        marks them published; one publish to the bus that also checks its epoch
        (`EventBus.publish_in_epoch`); COMMIT. A failed publish rolls the marks back."""
        if self._epoch is None:
            await self._follow_epoch(await self.bus.epoch())
        sent = await self._relay_batch()
        if sent is None:  # the bus lost its memory: the replayed rows go out first, now
            sent = await self._relay_batch()
        return sent or 0

    async def _relay_batch(self) -> int | None:
        """One batch; None when the bus turned out to be in a new epoch (nothing was
        published, and what the lost epoch had was marked to go out again)."""
        assert self._epoch is not None
        # Stamped before publishing: a row is marked with a time before its event reached
        # the bus, so a bus that restarts empty in between starts its epoch after it.
        stamp = self.clock.now()
        t = self.table
        due = (
            select(t.c.seq)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.seq)
            .limit(self.batch_size)
        )
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        take = (
            update(t)
            .where(t.c.seq.in_(due.scalar_subquery()))
            .values(published_at=stamp)
            .returning(t.c.seq, t.c.event_id, t.c.topic, t.c.key, t.c.payload, t.c.occurred_at)
        )
        try:
            async with self.db.transaction() as session:
                rows = sorted((await session.execute(take)).all(), key=lambda row: row.seq)
                if rows:
                    await self._publish([_event(row) for row in rows])
        except _EpochChanged as changed:
            await self._follow_epoch(changed.epoch)
            return None
        if not rows:
            # Idle: still notice a bus that lost its memory, to publish again what it had.
            epoch = await self.bus.epoch()
            if epoch.id != self._epoch.id:
                await self._follow_epoch(epoch)
                return None
        return len(rows)

    async def _publish(self, events: list[Event]) -> None:
        """Publish in the epoch of the last pass; raises _EpochChanged if the bus is in
        another one (nothing published)."""
        assert self._epoch is not None
        with contextlib.ExitStack() as spans:
            # One span per event, each lasting the batch's round trip (its publish).
            for event in events:
                spans.enter_context(
                    tracing.event_span(
                        f"{event.topic} publish",
                        event.traceparent,
                        SpanKind.PRODUCER,
                        event.topic,
                        "publish",
                    )
                )
            epoch = await self.bus.publish_in_epoch(events, self._epoch)
        if epoch.id != self._epoch.id:
            raise _EpochChanged(epoch)

    async def _follow_epoch(self, epoch: BusEpoch) -> None:
        """When the bus lost its memory since the last pass (a Redis restarted without
        persistence), what was published to it within `replay_window` before the new
        epoch began is marked unpublished again, so it goes out again (same event ids:
        consumers dedupe). Rows published in the new epoch are stamped after it began and
        stay as they are, so relays of several replicas replay each row once."""
        previous, self._epoch = self._epoch, epoch
        if previous is None or previous.id == epoch.id:
            return
        t = self.table
        since = epoch.started_at - self.replay_window
        async with self.db.transaction() as session:
            result = await session.execute(
                update(t)
                .where(t.c.published_at >= since, t.c.published_at < epoch.started_at)
                .values(published_at=None)
            )
        log.warning(
            "event bus lost its memory: publishing again",
            table=str(t),
            rows=int(getattr(result, "rowcount", 0) or 0),
            since=since.isoformat(),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set: drain, then wait `poll_interval` (or until stopped).
        Errors are logged and retried with backoff; they never end the loop."""
        failures = 0
        idle = 0
        next_purge = time.monotonic()
        while not stop.is_set():
            if self.retention is not None and time.monotonic() >= next_purge:
                next_purge = time.monotonic() + self.purge_interval
                await self._purge(self.retention)
            try:
                sent = await self.relay_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("outbox relay failed", table=str(self.table), failures=failures)
                sent = 0
            if sent >= self.batch_size:
                continue  # more may be waiting
            if self._nudged and not failures:
                self._nudged = False
                idle = 0
                continue
            if failures:
                delay = self.poll_interval * min(2**failures, 50)
            else:
                idle = 0 if sent else min(idle + 1, 16)
                delay = min(self.poll_interval * 2**idle, self.idle_poll_interval)
            await self._sleep(stop, delay)

    async def _sleep(self, stop: asyncio.Event, delay: float) -> None:
        """Wait `delay`, or less if stopped or notified."""
        self._nudge = nudge = asyncio.Event()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(nudge.wait())]
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._nudge = None
            self._nudged = False
            for w in waits:
                w.cancel()

    async def _purge(self, retention: timedelta) -> None:
        try:
            removed = await self.purge_published(self.clock.now() - retention)
        except Exception:  # housekeeping: the next round tries again
            log.exception("outbox purge failed", table=str(self.table))
            return
        if removed:
            log.info("outbox purged", table=str(self.table), rows=removed)

    async def purge_published(self, before: datetime) -> int:
        """Delete rows published before `before` (keep some for forensics); returns count."""
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(self.table).where(self.table.c.published_at < before)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def pending(self) -> int:
        """Unpublished rows (a health metric: it should hover near zero)."""
        query = select(func.count()).where(self.table.c.published_at.is_(None))
        async with self.db.session() as session:
            return int((await session.execute(query)).scalar_one())


class _EpochChanged(Exception):
    """The bus is in another epoch than the relay's last pass: the batch is rolled back."""

    def __init__(self, epoch: BusEpoch) -> None:
        super().__init__(epoch.id)
        self.epoch = epoch


def _event(row: object) -> Event:
    occurred_at: datetime = row.occurred_at  # type: ignore[attr-defined]
    if occurred_at.tzinfo is None:  # SQLite returns naive datetimes; we stored UTC
        occurred_at = occurred_at.replace(tzinfo=UTC)
    return Event(
        topic=row.topic,  # type: ignore[attr-defined]
        key=row.key,  # type: ignore[attr-defined]
        payload=row.payload,  # type: ignore[attr-defined]
        id=row.event_id,  # type: ignore[attr-defined]
        occurred_at=occurred_at,
        traceparent=tracing.remembered_event(row.event_id),  # type: ignore[attr-defined]
    )

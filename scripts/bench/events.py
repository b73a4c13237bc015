"""Benchmark: CPU per event of the event pipeline's two hops on PostgreSQL + Redis, each
alone: the outbox relay (outbox rows -> Redis stream) and a page consumer (stream -> a
page handler that does nothing, acks included).

A throwaway PostgreSQL database and a Redis key prefix of its own (deleted afterwards).
``--events`` outbox rows shaped like ``learning.interaction_recorded`` are written first
(not measured); then the relay publishes them all, then one page consumer reads them all.
For each hop: events/s and this process's CPU per event; Redis's CPU per event (its INFO
``used_cpu_*``, the whole server: a quiet Redis is assumed). PostgreSQL's own CPU is not
counted.

    .venv/bin/python -m scripts.bench.events [--events 5000] [--page-size 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import MetaData

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.bench.throwaway import throwaway_postgres  # noqa: E402
from services.kit.db import Database  # noqa: E402
from services.kit.events import Event  # noqa: E402
from services.kit.events.dedupe import run_page_consumer  # noqa: E402
from services.kit.events.outbox import OutboxRelay, enqueue_many, outbox_table  # noqa: E402
from services.kit.events.redis_streams import RedisEventBus  # noqa: E402

TOPIC = "learning.interaction_recorded"
metadata = MetaData(schema="bench")
outbox = outbox_table(metadata)


def event(i: int) -> Event:
    """An event the size of a recorded statement's announcement."""
    statement = {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "account": {"homePage": "https://k", "name": "u1"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "a"}},
        "object": {"objectType": "Activity", "id": f"https://keiko.example/q/{i % 50}"},
        "result": {"score": {"scaled": 0.5}, "success": True},
    }
    payload = {
        "statement_id": statement["id"],
        "learner_id": "u1",
        "recorded_by": "u1",
        "verb_id": "http://adlnet.gov/expapi/verbs/answered",
        "object_id": f"https://keiko.example/q/{i % 50}",
        "timestamp": "2026-01-01T00:00:00Z",
        "stored": "2026-01-01T00:00:00Z",
        "version": "1.0.3",
        "canonical_hash": "0" * 64,
        "statement_json": json.dumps(statement),
        "device_signature": None,
    }
    return Event(TOPIC, key="u1", payload=payload)


async def redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def line(name: str, count: int, wall: float, cpu: float, redis: float) -> str:
    return (
        f"| {name} | {count} | {count / wall:,.0f} | {1e6 * cpu / count:,.0f} | "
        f"{1e6 * redis / count:,.0f} |"
    )


async def run(args: argparse.Namespace) -> str:
    load = os.getloadavg()[0]
    prefix = f"keiko-bench-{uuid.uuid4().hex[:8]}"
    bus = RedisEventBus(f"{args.redis_url}?prefix={prefix}")
    async with throwaway_postgres() as url:
        db = Database(url, schemas=["bench"])
        try:
            await db.create_all(metadata)
            for start in range(0, args.events, 1000):
                async with db.transaction() as session:
                    n = min(1000, args.events - start)
                    await enqueue_many(session, outbox, [event(start + i) for i in range(n)])
            relay = OutboxRelay(db, outbox, bus, retention=None)
            await relay.relay_once()  # connections, statement caches
            rows: list[str] = []

            r0, c0, t0 = await redis_cpu(bus.redis), time.process_time(), time.perf_counter()
            while await relay.relay_once():
                pass
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows.append(line("relay", args.events, wall, cpu, await redis_cpu(bus.redis) - r0))

            received = 0
            done = asyncio.Event()

            async def on_page(events: list[Event]) -> None:
                nonlocal received
                received += len(events)
                if received >= args.events:
                    done.set()

            async def on_event(_event: Event) -> None:
                await on_page([_event])

            subscription = bus.subscribe([TOPIC], group="bench", consumer="c")
            await subscription.ready()
            r0, c0, t0 = await redis_cpu(bus.redis), time.process_time(), time.perf_counter()
            consumer = asyncio.create_task(
                run_page_consumer(subscription, on_page, on_event, page_size=args.page_size)
            )
            await asyncio.wait_for(done.wait(), 300)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            redis = await redis_cpu(bus.redis) - r0
            await subscription.close()
            await consumer
            rows.append(line(f"page consumer ({args.page_size})", received, wall, cpu, redis))
        finally:
            await db.dispose()
            keys = [key async for key in bus.redis.scan_iter(match=f"{prefix}:*")]
            if keys:
                await bus.redis.delete(*keys)
            await bus.close()
    after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join(
        [
            f"1-min load before: {load:.2f}; load average after: {after}",
            "",
            "| hop | events | events/s | CPU µs/event (this process) | Redis CPU µs/event |",
            "|---|---:|---:|---:|---:|",
            *rows,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    print(asyncio.run(run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

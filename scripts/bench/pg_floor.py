"""PostgreSQL's own pace, the floor the ingest benchmarks report their rates against:
one-row JSONB inserts (prepared) at a number of connections, in the same run."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg


@dataclass
class Floor:
    rows: int
    concurrency: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


async def pg_floor(url: str, rows: int, concurrency: int, doc: str) -> Floor:
    """One-row JSONB inserts at ``concurrency`` connections: PostgreSQL's own pace here."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor "
            "(id bigserial PRIMARY KEY, doc jsonb NOT NULL, at timestamptz DEFAULT now())"
        )
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    remaining = rows

    async def worker() -> None:
        nonlocal remaining
        async with pool.acquire() as c:
            insert = await c.prepare("INSERT INTO bench_floor (doc) VALUES ($1::jsonb)")
            while remaining > 0:
                remaining -= 1
                await insert.fetch(doc)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    finally:
        await pool.close()
    return Floor(rows, concurrency, seconds)

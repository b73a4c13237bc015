"""A task cancelled while its SQLite connection runs a statement must not hang the event
loop's shutdown (aiosqlite >= 0.22 with SQLAlchemy's graceful terminate did: see
services.kit.db._stop_aiosqlite_worker_without_waiting). The hang is a race: this test
shows the shutdown completes; gateway/tests/test_humanity_graphql.py hung on it every
time before the fix (its last query's `me` resolver is cancelled mid-statement)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import text

from services.kit.db import Database

# Seconds of SQLite's time: still running when the task is cancelled.
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) "
    "SELECT count(*) FROM c"
)


def test_a_task_cancelled_mid_statement_does_not_hang_the_loop_shutdown(tmp_path: Path) -> None:
    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'slow.db'}")

        async def hold() -> None:
            async with db.session() as session:
                await session.execute(text(SLOW))

        task = asyncio.create_task(hold())
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.sleep(0)
        # asyncio.run now cancels what is left and waits for it: it used to wait forever.

    runner = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "the event loop's shutdown hung on the cancelled connection"

"""Counting the SQL a use case sends: the batch writers' tests check that a batch's round
trips do not grow with its size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from services.kit.db import Database


@contextmanager
def statements_run(db: Database) -> Iterator[list[str]]:
    """The SQL statements executed meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def remember(conn: object, cursor: object, sql: str, *args: object) -> None:
        seen.append(sql)

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)

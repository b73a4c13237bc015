"""Watching the SQL a use case sends: the batch writers' tests check that a batch's round
trips do not grow with its size, and which statements run outside a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, event

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


@contextmanager
def in_transaction(db: Database) -> Iterator[list[bool]]:
    """For each SQL statement executed meanwhile, whether the driver (asyncpg) was inside a
    transaction: False means no BEGIN and COMMIT round trips around it."""
    seen: list[bool] = []

    def remember(conn: Connection, *args: object) -> None:
        driver = conn.connection.driver_connection
        assert driver is not None
        seen.append(driver.is_in_transaction())

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)

"""Fewer hops to aiosqlite's worker thread for SQLAlchemy's aiosqlite adapter.

aiosqlite runs each call on its connection in the connection's worker thread: the
caller queues a function, the thread runs it and wakes the event loop with the result.
SQLAlchemy's adapter cursor makes four such calls a statement (create an aiosqlite
cursor, execute, fetch every row, close the cursor), and a connection going back to the
pool makes one more (its rollback): a read of one statement was five wake-ups of that
thread and of the event loop, each a hand-over of the GIL, for what SQLite itself does
in one call. Under 16 concurrent `GET /xapi/statements`, 15 % of py-spy's samples of
the GIL's holder were the event loop's thread queueing such a call
(`aiosqlite.Connection._execute`).

- `OneHopCursor` runs the four steps of a statement as one function in the worker
  thread: one hop a statement, its rows buffered as SQLAlchemy's cursor buffers them
  (server-side cursors stay SQLAlchemy's).
- A rollback or a commit with no transaction open (a read without BEGIN, `Database.read`
  with `snapshot=False`) is no hop at all: sqlite3 itself does nothing then. The state
  is read from the event loop's thread while no call of that connection is pending (a
  statement whose task was cancelled invalidates its connection in SQLAlchemy).

`install()` (services.kit.db) sets both on SQLAlchemy's aiosqlite connection class.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# What one statement leaves: description, rows, rowcount, lastrowid.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run(driver: Any, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In the worker thread: the statement on a fresh sqlite3 cursor, every row fetched."""
    connection: sqlite3.Connection = driver._conn
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor (SQLAlchemy's creates one, a hop): `_run` makes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing to close: the rows are already here."""

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            await_(self._in_worker(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            await_(self._in_worker(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _in_worker(self, operation: str, parameters: Any, *, many: bool) -> None:
        driver = self._connection
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await driver._execute(_run, driver, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


def _in_transaction(adapted: AsyncAdapt_aiosqlite_connection) -> bool:
    driver = adapted._connection
    # A closed connection: the adapter's own call reports it.
    return driver._connection is None or bool(driver._connection.in_transaction)


def install() -> None:
    """Every aiosqlite connection's (non server-side) cursors are `OneHopCursor`s, and its
    rollback and commit hop only when a transaction is open."""
    connection = AsyncAdapt_aiosqlite_connection
    rollback, commit = connection.rollback, connection.commit

    def rollback_if_open(self: AsyncAdapt_aiosqlite_connection) -> None:
        if _in_transaction(self):
            rollback(self)

    def commit_if_open(self: AsyncAdapt_aiosqlite_connection) -> None:
        if _in_transaction(self):
            commit(self)

    connection._cursor_cls = OneHopCursor  # type: ignore[assignment]
    connection.rollback = rollback_if_open  # type: ignore[method-assign]
    connection.commit = commit_if_open  # type: ignore[method-assign]

"""Database access shared by every service: one async engine, one schema per service.

The same table definitions (`MetaData(schema="identity")`) run on both engines:

- PostgreSQL (asyncpg): each service schema is a real schema (`create_schemas`).
- SQLite (aiosqlite): each schema is its own database file `<dir of main file>/<schema>.db`,
  ATTACHed under the schema name on every new connection, so `identity.users` resolves.
  WAL, foreign keys and a busy timeout are enabled on every file.

SQLite transactions: pysqlite's legacy mode opens a transaction only before DML, so reads are
not isolated. We take over transaction control (driver autocommit + our own BEGIN), and
`Database.transaction()` starts with BEGIN IMMEDIATE, which takes the write lock up front: a
read-then-write sequence can never fail half-way with "database is locked" (the busy timeout
queues writers instead). Use `transaction()` for writes, `session()` (ORM) or `read()` (a bare
connection for Core statements, lighter) for reads; `read(snapshot=False)` skips the BEGIN
for reads whose statements need no common snapshot.
Note: with WAL, a commit touching several attached files is atomic per file only; each service
writes to its own schema (state + outbox), so a service's transaction stays atomic.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from services.kit import aiosqlite_hops

__all__ = [
    "NAMING_CONVENTION",
    "Database",
    "is_conflict",
    "is_foreign_key_violation",
    "is_unique_violation",
    "violated_constraint",
]

# Give every constraint a deterministic name: migrations can then drop/alter them by name
# (SQLite batch mode cannot address unnamed constraints), and `violated_constraint` reports
# the same name on both engines' DDL. Use: MetaData(schema="x", naming_convention=...).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Schema names become SQL identifiers and file names: keep them boring.
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Seconds a SQLite writer waits for the lock before "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30.0
# Execution option that makes our SQLite BEGIN an IMMEDIATE one.
_BEGIN_IMMEDIATE = "keiko_sqlite_begin_immediate"
# Execution option that makes us emit no BEGIN at all on SQLite (see `Database.read()`).
_NO_BEGIN = "keiko_sqlite_no_begin"


# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 5.0
# Connections an engine keeps open (a SQLite file database's too). SQLAlchemy's default
# is 5 kept plus 10 "overflow" ones opened for a burst and closed again at check-in:
# under 16 concurrent requests a connection was set up and torn down for most reads on
# PostgreSQL (TLS negotiation, authentication, server settings: 13 % of the server's
# CPU on GET /xapi/statements), and 15 a second on SQLite (a worker thread, the ATTACH
# of every schema file and its pragmas, each statement a hop to that thread). The same
# 15 at most, all kept: no more connections than before, none set up per request.
POOL_SIZE = 15
_IDLE_SINCE = "keiko_idle_since"


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling, for idle connections only.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout, and the asyncpg dialect's ping
    is three round trips (BEGIN, an empty statement, ROLLBACK): on a write path that is
    as many round trips as the work itself. A connection that was just checked in (a busy
    pool) is alive; only one idle for :data:`IDLE_PING_SECONDS` (the server may have
    restarted or dropped it meanwhile) is pinged, and a dead one is replaced (the pool
    retries the checkout on ``DisconnectionError``). A connection that dies while in
    use fails that one call, as it would with ``pool_pre_ping``."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"idle connection is gone: {exc}") from exc
        if alive is False:
            raise DisconnectionError("idle connection is gone")


def _stop_aiosqlite_worker_without_waiting() -> None:
    """SQLAlchemy closes a connection invalidated by a cancelled task (a client gone
    mid-request, a server stopping) "gracefully" in a shielded task awaiting aiosqlite's
    ``close()``; when that outer wait is cancelled too it force-stops the worker thread,
    and with aiosqlite >= 0.22 the graceful close then awaits that stopped worker forever:
    ``asyncio.run`` (so ``keiko serve``'s shutdown) and every test loop hang on exit
    (wapiti-scanner/wapiti#802, sqlalchemy/sqlalchemy#13039). Instead, the graceful close
    queues aiosqlite's ``stop()`` and returns: the worker finishes what it was running,
    closes the SQLite connection and exits, and nothing waits on it."""
    from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection

    async def stop_worker(self: Any) -> None:
        stop = getattr(self._connection, "stop", None)
        if stop is not None:  # aiosqlite < 0.22.1 has none: its close() does not hang
            stop()
        else:
            await self._connection.close()

    AsyncAdapt_aiosqlite_connection._terminate_graceful_close = stop_worker  # type: ignore[method-assign]


_stop_aiosqlite_worker_without_waiting()
aiosqlite_hops.install()


class Database:
    """An async engine plus session factory for one URL and a set of service schemas."""

    def __init__(self, url: str, *, schemas: Sequence[str] = (), echo: bool = False) -> None:
        for schema in schemas:
            if not _SCHEMA_NAME.match(schema):
                raise ValueError(f"invalid schema name {schema!r}: use [a-z_][a-z0-9_]*")
        self.url: URL = _async_driver(make_url(url))
        self.schemas: tuple[str, ...] = tuple(dict.fromkeys(schemas))
        backend = self.url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database URL {self.url!r}: use sqlite or postgresql")
        self.dialect: str = backend
        kwargs: dict[str, Any] = {"echo": echo}
        if backend == "sqlite":
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        if backend == "postgresql" or not _sqlite_in_memory(self.url):
            # (An in-memory SQLite database is one connection: SQLAlchemy's StaticPool.)
            kwargs.update(pool_size=POOL_SIZE, max_overflow=0)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if backend == "postgresql":
            _ping_idle_connections(self.engine)
        if backend == "sqlite":
            self._attach_files = self._sqlite_schema_files()
            event.listen(self.engine.sync_engine, "connect", self._on_sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", self._on_sqlite_begin)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads without a snapshot send no BEGIN: SQLite through our begin hook, PostgreSQL
        # in asyncpg's autocommit mode (no BEGIN and COMMIT round trips around the statement,
        # ~15 % of the server's CPU on GET /xapi/statements).
        self._statement_reads = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if backend == "postgresql"
            else self.engine.execution_options(**{_NO_BEGIN: True})
        )
        self._autocommit_sessions = async_sessionmaker(
            self._statement_reads, expire_on_commit=False
        )
        self._lock_engine: AsyncEngine | None = None

    # -- sessions -------------------------------------------------------------------------

    def session(self) -> AsyncSession:
        """A new session: `async with db.session() as s:`. Objects stay usable after commit."""
        return self._sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: commit on success, rollback on error."""
        async with self._sessions() as session, session.begin():
            if self.dialect == "sqlite":
                # Procure the connection now so the BEGIN it emits is IMMEDIATE.
                await session.connection(execution_options={_BEGIN_IMMEDIATE: True})
            yield session

    def autocommit_session(self) -> AsyncSession:
        """A session outside any transaction (as `read(snapshot=False)`): each statement
        commits on its own and no BEGIN or COMMIT is sent. For work that needs no
        consistency between its reads and whose only write is a single statement (atomic
        on its own), such as storing one xAPI statement on PostgreSQL
        (`services.learning.statements.combined`); anything else belongs in
        `transaction()`."""
        return self._autocommit_sessions()

    def read(self, *, snapshot: bool = True) -> AsyncConnection:
        """A bare connection for Core reads: `async with db.read() as conn:`; rolled back on
        exit. Lighter than `session()` (no ORM session around each statement).

        `snapshot=False` is for reads that need no consistency *between* their statements
        (typically one statement): no BEGIN is sent (SQLite: our begin hook; PostgreSQL:
        autocommit), so each statement is its own implicit transaction (atomic on its own,
        seeing the latest commit, as READ COMMITTED statements do anyway) and the read saves
        the BEGIN and COMMIT round trips. Never write through such a connection: it would
        autocommit statement by statement.
        """
        return (self.engine if snapshot else self._statement_reads).connect()

    def lock_connection(self) -> AsyncConnection:
        """A connection outside the pool, opened for this use, to hold a lock while the
        work it guards runs on pooled connections (`services.kit.locks.advisory_lock`):
        however many tasks hold such a lock, they never wait for the pool their locks
        would otherwise fill."""
        if self._lock_engine is None:
            self._lock_engine = create_async_engine(self.url, poolclass=NullPool)
        return self._lock_engine.connect()

    # -- schema management ----------------------------------------------------------------

    async def create_schemas(self) -> None:
        """Create the service schemas (PostgreSQL). SQLite files are created by ATTACH."""
        if self.dialect != "postgresql" or not self.schemas:
            return
        for schema in self.schemas:
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            except DBAPIError as exc:
                # Two replicas starting at once: IF NOT EXISTS is not atomic in PostgreSQL.
                if not is_unique_violation(exc):
                    raise

    async def create_all(self, *metadatas: MetaData) -> None:
        """Create schemas and tables directly (tests, throwaway databases). Production uses
        migrations (`services.kit.migrations.upgrade`)."""
        await self.create_schemas()
        async with self.engine.begin() as conn:
            for metadata in metadatas:
                await conn.run_sync(metadata.create_all)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._lock_engine is not None:
            await self._lock_engine.dispose()

    # -- SQLite plumbing ------------------------------------------------------------------

    def _sqlite_schema_files(self) -> dict[str, str]:
        main = self.url.database or ""
        self._in_memory = _sqlite_in_memory(self.url)
        if self._in_memory:
            # In-memory main database: attached schemas are in-memory too (one connection).
            return dict.fromkeys(self.schemas, ":memory:")
        directory = Path(main).parent
        directory.mkdir(parents=True, exist_ok=True)
        return {schema: str(directory / f"{schema}.db") for schema in self.schemas}

    def schema_files(self) -> dict[str, str]:
        """SQLite only: the database file behind each schema."""
        return dict(self._attach_files) if self.dialect == "sqlite" else {}

    def _on_sqlite_connect(self, dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # We emit BEGIN ourselves (see _on_sqlite_begin): put the driver in autocommit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            names = ["main"]
            for schema, path in self._attach_files.items():
                cursor.execute(f'ATTACH DATABASE ? AS "{schema}"', (path,))
                names.append(schema)
            if not self._in_memory:  # WAL needs a file
                for name in names:
                    cursor.execute(f'PRAGMA "{name}".journal_mode = WAL')
                    cursor.execute(f'PRAGMA "{name}".synchronous = NORMAL')
        finally:
            cursor.close()

    @staticmethod
    def _on_sqlite_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(_NO_BEGIN, False):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_BEGIN_IMMEDIATE, False) else "BEGIN")

    def __repr__(self) -> str:
        return (
            f"Database({self.url.render_as_string(hide_password=True)!r}, schemas={self.schemas})"
        )


def _sqlite_in_memory(url: URL) -> bool:
    main = url.database or ""
    return main in ("", ":memory:") or main.startswith("file::memory:")


def _async_driver(url: URL) -> URL:
    """`sqlite://` and `postgresql://` mean their async drivers here."""
    if url.drivername == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    return url


# -- integrity errors -----------------------------------------------------------------------

_PG_UNIQUE = "23505"
_PG_EXCLUSION = "23P01"
_PG_FOREIGN_KEY = "23503"
_SQLITE_UNIQUE = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
_SQLITE_FOREIGN_KEY = {"SQLITE_CONSTRAINT_FOREIGNKEY"}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, the driver error SQLAlchemy wraps (`.orig`) and their causes."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                stack.append(nxt)


def _sqlstate(exc: BaseException) -> str | None:
    for err in _causes(exc):
        state = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def _sqlite_errorname(exc: BaseException) -> str | None:
    for err in _causes(exc):
        if isinstance(err, sqlite3.Error):
            name = getattr(err, "sqlite_errorname", None)
            if isinstance(name, str):
                return name
    return None


def is_unique_violation(exc: BaseException) -> bool:
    """True if `exc` (or what it wraps) is a unique / primary-key violation, on either engine."""
    return _sqlstate(exc) == _PG_UNIQUE or _sqlite_errorname(exc) in _SQLITE_UNIQUE


def is_conflict(exc: BaseException) -> bool:
    """True for a write that conflicts with existing rows: unique, primary-key or exclusion
    (PostgreSQL `EXCLUDE`, e.g. overlapping reservations) violations."""
    return is_unique_violation(exc) or _sqlstate(exc) == _PG_EXCLUSION


def is_foreign_key_violation(exc: BaseException) -> bool:
    return _sqlstate(exc) == _PG_FOREIGN_KEY or _sqlite_errorname(exc) in _SQLITE_FOREIGN_KEY


def violated_constraint(exc: BaseException) -> str | None:
    """Name of the violated constraint (PostgreSQL), or the failing columns on SQLite
    (`"users.email"`), so callers can tell which unique rule a write broke."""
    for err in _causes(exc):
        name = getattr(err, "constraint_name", None)
        if isinstance(name, str):
            return name
    for err in _causes(exc):
        if isinstance(err, sqlite3.IntegrityError):
            match = re.search(r"constraint failed: (.+)$", str(err))
            if match:
                return match.group(1)
    return None

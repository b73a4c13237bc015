"""Pytest plugin with the fixtures every Keiko test shares (loaded by the root conftest.py).

Two passes over the same tests, chosen by `KEIKO_TEST_BACKEND`:

- `embedded` (default): SQLite files in `tmp_path`, the in-process event bus.
- `real`: PostgreSQL and Redis. Only tests that touch an engine (they use `database_url`,
  `database`, `migrated_database`, `event_bus`, `event_bus_url`, or anything built on them)
  or carry `@pytest.mark.engines` run; the rest already ran in the embedded pass and are
  deselected. One fresh PostgreSQL database per session (dropped at the end), all its
  schemas dropped before each test; one Redis key prefix per test (deleted after).
  Unreachable engines skip those tests, or abort the session when `CI=true`.

Fixtures: `database_url`, `database_schemas`, `database`, `migrated_database`,
`event_bus_url`, `event_bus`, `clock`. Markers: `engines`, `schemas(*names)`.

Engine addresses: `KEIKO_TEST_POSTGRES_URL` (an admin URL, default
postgresql://postgres@127.0.0.1:5432/postgres) and `KEIKO_TEST_REDIS_URL`
(default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from sqlalchemy.engine import make_url

from services.kit.clock import FixedClock
from services.kit.db import Database

if TYPE_CHECKING:
    from services.kit.events import EventBus
    from services.kit.events.fanout import EventFanout
    from services.kit.runtime import BackgroundJob

BACKEND_ENV = "KEIKO_TEST_BACKEND"
BACKENDS = ("embedded", "real")
SERVICE_SCHEMAS: tuple[str, ...] = (
    "identity",
    "learning",
    "passport",
    "reputation",
    "governance",
    "marketplace",
)
# Depending on any of these (directly or through other fixtures) puts a test in the real pass.
ENGINE_FIXTURES = frozenset({"database_url", "event_bus_url"})
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_CONNECT_TIMEOUT_S = 5.0

T = TypeVar("T")


def test_backend() -> str:
    backend = os.environ.get(BACKEND_ENV, "embedded").strip().lower() or "embedded"
    if backend not in BACKENDS:
        raise pytest.UsageError(f"{BACKEND_ENV}={backend!r}: expected one of {BACKENDS}")
    return backend


test_backend.__test__ = False  # type: ignore[attr-defined]  # not a test despite the name


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync session-scoped code without touching pytest-asyncio's loops."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _unreachable_message(what: str, url: str, error: BaseException) -> str:
    env = "KEIKO_TEST_POSTGRES_URL" if what == "PostgreSQL" else "KEIKO_TEST_REDIS_URL"
    return (
        f"{what} not reachable at {url} ({type(error).__name__}: {error}). "
        f"Start it, or point {env} at one; {BACKEND_ENV}=embedded runs without it."
    )


def _unreachable(what: str, url: str, error: BaseException) -> None:
    message = _unreachable_message(what, url, error)
    if _in_ci():
        # Normally caught earlier, at collection (see _fail_fast_in_ci).
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


# -- hooks ----------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engines: run this test in the real-engine pass too (KEIKO_TEST_BACKEND=real)"
    )
    config.addinivalue_line(
        "markers", "schemas(*names): service schemas the `database` fixture attaches/creates"
    )
    config.stash[_deselected_key] = 0


_deselected_key = pytest.StashKey[int]()


def pytest_report_header(config: pytest.Config) -> str:
    return f"keiko test backend: {test_backend()} ({BACKEND_ENV})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if test_backend() != "real":
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & ENGINE_FIXTURES or item.get_closest_marker("engines"):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
        config.stash[_deselected_key] = len(drop)
    if _in_ci():
        _fail_fast_in_ci(keep)


def _fail_fast_in_ci(items: list[pytest.Item]) -> None:
    """In CI an unreachable engine fails the whole session up front, with one clear line."""
    used = set().union(*(set(getattr(i, "fixturenames", ())) for i in items)) if items else set()
    problems: list[str] = []
    if "database_url" in used:
        admin = _pg_admin_dsn()
        try:
            _run(_pg_execute(admin, "SELECT 1"))
        except Exception as exc:
            problems.append(_unreachable_message("PostgreSQL", admin, exc))
    if "event_bus_url" in used:
        url = _redis_url()
        try:
            _run(_redis_ping(url))
        except Exception as exc:
            problems.append(_unreachable_message("Redis", url, exc))
    if problems:
        pytest.exit("CI=true and " + " ".join(problems), returncode=pytest.ExitCode.INTERNAL_ERROR)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    dropped = config.stash.get(_deselected_key, 0)
    if dropped:
        terminalreporter.write_line(
            f"keiko: real-engine pass ran only tests that use an engine fixture or "
            f"@pytest.mark.engines; {dropped} other tests deselected (they run in the "
            f"embedded pass)."
        )


# -- engines (session scope) ----------------------------------------------------------------


def _pg_admin_dsn() -> str:
    return os.environ.get("KEIKO_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _plain_dsn(url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy wants postgresql+asyncpg://."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_execute(dsn: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain_dsn(dsn), timeout=_CONNECT_TIMEOUT_S)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def _keiko_postgres() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; yields its SQLAlchemy URL."""
    admin = _pg_admin_dsn()
    name = f"keiko_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _run(_pg_execute(admin, f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError) as exc:
        _unreachable("PostgreSQL", admin, exc)
    except Exception as exc:  # asyncpg's own errors: bad auth, missing db, ...
        if type(exc).__module__.startswith("asyncpg"):
            _unreachable("PostgreSQL", admin, exc)
        raise
    url = make_url(admin).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        _run(_pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _redis_url() -> str:
    return os.environ.get("KEIKO_TEST_REDIS_URL", DEFAULT_REDIS_URL)


async def _redis_ping(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=_CONNECT_TIMEOUT_S, socket_timeout=_CONNECT_TIMEOUT_S
    )
    try:
        await client.ping()
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def _keiko_redis() -> str:
    """The Redis URL, after checking it answers."""
    url = _redis_url()
    try:
        _run(_redis_ping(url))
    except (TimeoutError, OSError) as exc:
        _unreachable("Redis", url, exc)
    except Exception as exc:
        if type(exc).__module__.startswith("redis"):
            _unreachable("Redis", url, exc)
        raise
    return url


# -- database ---------------------------------------------------------------------------------

_DROP_ALL_SCHEMAS = """
DO $$
DECLARE s text;
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace
           WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
  LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
  CREATE SCHEMA public;
END $$;
"""


# -- hangs ----------------------------------------------------------------------------------

# pytest-timeout shows thread stacks only; in an asyncio test the stuck coroutine is what
# matters, so the engine fixtures print every task's stack this long before the timeout.
HANG_REPORT_MARGIN_S = 20.0


def _test_timeout(item: pytest.Item) -> float | None:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    try:
        value = item.config.getini("timeout")
    except ValueError:  # pytest-timeout not installed
        return None
    return float(value) if value else None


def _await_chain(awaitable: object) -> list[str]:
    """Where a suspended coroutine waits, outermost first, through every `await`."""
    lines: list[str] = []
    while awaitable is not None:
        frame = next(
            (
                getattr(awaitable, a)
                for a in ("cr_frame", "ag_frame", "gi_frame")
                if hasattr(awaitable, a)
            ),
            None,
        )
        if frame is not None:
            code = frame.f_code
            lines.append(f"    {code.co_filename}:{frame.f_lineno} in {code.co_qualname}")
        awaitable = next(
            (
                getattr(awaitable, a)
                for a in ("cr_await", "ag_await", "gi_yieldfrom")
                if hasattr(awaitable, a)
            ),
            None,
        )
    return lines


def _print_task_stacks(nodeid: str) -> None:
    tasks = asyncio.all_tasks()
    print(f"\n--- {nodeid}: still running near its timeout; {len(tasks)} asyncio tasks ---")
    for task in tasks:
        print(f"--- {task!r}", *_await_chain(task.get_coro()), sep="\n")


@pytest.fixture
async def _hang_report(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    limit = _test_timeout(request.node)
    if limit is None or limit <= HANG_REPORT_MARGIN_S:
        yield
        return
    handle = asyncio.get_running_loop().call_later(
        limit - HANG_REPORT_MARGIN_S, _print_task_stacks, request.node.nodeid
    )
    try:
        yield
    finally:
        handle.cancel()


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, _hang_report: None) -> str:
    """URL of an empty database for this test: a SQLite file, or the session's PostgreSQL
    database with every schema dropped first."""
    if test_backend() == "real":
        url: str = request.getfixturevalue("_keiko_postgres")
        await _pg_execute(url, _DROP_ALL_SCHEMAS)
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'keiko.db'}"


@pytest.fixture
def database_schemas(request: pytest.FixtureRequest) -> Sequence[str]:
    """Schemas for `database`: from `@pytest.mark.schemas(...)`, else the six services.
    Override this fixture in a conftest to change the default for a folder."""
    marker = request.node.get_closest_marker("schemas")
    if marker is not None:
        return tuple(marker.args)
    return SERVICE_SCHEMAS


@pytest.fixture
async def database(database_url: str, database_schemas: Sequence[str]) -> AsyncIterator[Database]:
    """A `Database` on `database_url` with `database_schemas` created (no tables yet)."""
    db = Database(database_url, schemas=database_schemas)
    try:
        await db.create_schemas()
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def migrated_database(database: Database) -> Database:
    """`database` with every service in `database_schemas` that has migrations upgraded to
    head, the way production starts."""
    from services.kit.migrations import service_migration_dirs, upgrade_all

    dirs = service_migration_dirs()
    await upgrade_all(database, {s: dirs[s] for s in database.schemas if s in dirs})
    return database


# -- events ---------------------------------------------------------------------------------


@pytest.fixture
async def event_bus_url(request: pytest.FixtureRequest, _hang_report: None) -> AsyncIterator[str]:
    """URL of an event bus nobody else uses: a private in-process broker, or Redis with a
    per-test key prefix (its keys are deleted after the test). Build buses with special
    options from it: `event_bus_from_url(event_bus_url, retry_delay=0.05)`."""
    tag = f"keiko-test-{uuid.uuid4().hex[:12]}"
    if test_backend() != "real":
        from services.kit.events.memory import discard_broker

        yield f"memory://{tag}"
        discard_broker(tag)
        return
    base: str = request.getfixturevalue("_keiko_redis")
    url = f"{base}{'&' if '?' in base else '?'}prefix={tag}"
    try:
        yield url
    finally:
        await _delete_bus_keys(url)


@pytest.fixture
async def event_bus(event_bus_url: str) -> AsyncIterator[EventBus]:
    """An `EventBus` on `event_bus_url` with default options, closed after the test."""
    from services.kit.events import event_bus_from_url

    bus = event_bus_from_url(event_bus_url)
    try:
        yield bus
    finally:
        await bus.close()


async def _delete_bus_keys(url: str) -> None:
    import redis.asyncio as aioredis

    from services.kit.events.redis_streams import split_url

    base, prefix = split_url(url)
    client = aioredis.Redis.from_url(base)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# -- time -----------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    """A clock at 2026-01-01T00:00:00Z that moves only with `advance` / `set`."""
    return FixedClock()


@dataclass
class RecordingRuntime:
    """A `services.kit.runtime.ServiceRuntime` for tests: background jobs are recorded
    (so a test can run or inspect them) instead of started."""

    database: Database
    event_bus: EventBus
    clock: FixedClock
    fanout: EventFanout
    jobs: dict[str, BackgroundJob] = field(default_factory=dict)
    settings: Any = None

    def run_in_background(self, name: str, job: BackgroundJob) -> None:
        if name in self.jobs:
            raise ValueError(f"background job {name!r} registered twice")
        self.jobs[name] = job

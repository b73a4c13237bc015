"""Database kit on the engine of the current pass (SQLite embedded, PostgreSQL real)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from services.kit.db import (
    NAMING_CONVENTION,
    Database,
    is_conflict,
    is_foreign_key_violation,
    is_unique_violation,
    violated_constraint,
)
from services.kit.tests.demo_service.storage import metadata as demo_metadata
from services.kit.tests.demo_service.storage import parts, widgets


def _accounts(schema: str) -> tuple[MetaData, Table]:
    md = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    table = Table(
        "accounts",
        md,
        Column("id", Integer, primary_key=True),
        Column("email", String(200), nullable=False),
        Column("balance", Integer, nullable=False, default=0),
        UniqueConstraint("email"),
    )
    return md, table


pytestmark = pytest.mark.schemas("alpha", "beta", "kitdemo")


async def test_same_table_name_in_two_schemas_is_two_tables(database: Database) -> None:
    md_a, alpha = _accounts("alpha")
    md_b, beta = _accounts("beta")
    await database.create_all(md_a, md_b)

    async with database.transaction() as s:
        await s.execute(insert(alpha).values(id=1, email="ana@example.org"))
    # Same primary key and email in the other schema: no clash, nothing leaks across.
    async with database.transaction() as s:
        await s.execute(insert(beta).values(id=1, email="ana@example.org", balance=5))

    async with database.session() as s:
        assert (await s.execute(select(alpha.c.balance))).scalars().all() == [0]
        assert (await s.execute(select(beta.c.balance))).scalars().all() == [5]


async def test_each_schema_is_its_own_sqlite_file(database: Database) -> None:
    if database.dialect != "sqlite":
        pytest.skip("SQLite layout")
    md_a, alpha = _accounts("alpha")
    await database.create_all(md_a)
    async with database.transaction() as s:
        await s.execute(insert(alpha).values(id=1, email="x@example.org"))
        mode = (await s.execute(text("PRAGMA alpha.journal_mode"))).scalar_one()
        fks = (await s.execute(text("PRAGMA foreign_keys"))).scalar_one()
    assert mode == "wal"
    assert fks == 1
    files = database.schema_files()
    assert set(files) == {"alpha", "beta", "kitdemo"}
    assert all(path.endswith(f"/{name}.db") for name, path in files.items())


async def test_transaction_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    md, accounts = _accounts("alpha")
    await database.create_all(md)

    async with database.transaction() as s:
        await s.execute(insert(accounts).values(id=1, email="kept@example.org"))
    with pytest.raises(RuntimeError):
        async with database.transaction() as s:
            await s.execute(insert(accounts).values(id=2, email="lost@example.org"))
            raise RuntimeError("boom")

    async with database.session() as s:
        emails = (await s.execute(select(accounts.c.email))).scalars().all()
    assert emails == ["kept@example.org"]


async def test_reads_inside_a_session_see_one_snapshot_until_it_ends(database: Database) -> None:
    md, accounts = _accounts("alpha")
    await database.create_all(md)
    async with database.transaction() as s:
        await s.execute(insert(accounts).values(id=1, email="a@example.org", balance=1))

    async with database.session() as reader:
        first = (await reader.execute(select(accounts.c.balance))).scalar_one()
        async with database.transaction() as writer:
            await writer.execute(update(accounts).values(balance=2))
        await reader.commit()
        second = (await reader.execute(select(accounts.c.balance))).scalar_one()
    assert (first, second) == (1, 2)


async def test_concurrent_read_modify_write_transactions_do_not_lose_updates(
    database: Database,
) -> None:
    """Each transaction reads the balance then writes it back +1. On SQLite BEGIN IMMEDIATE
    serializes them (and the busy timeout queues them instead of failing); on PostgreSQL the
    row lock of SELECT ... FOR UPDATE does."""
    md, accounts = _accounts("alpha")
    await database.create_all(md)
    async with database.transaction() as s:
        await s.execute(insert(accounts).values(id=1, email="a@example.org", balance=0))

    async def bump() -> None:
        async with database.transaction() as s:
            current = (await s.execute(select(accounts.c.balance).with_for_update())).scalar_one()
            await asyncio.sleep(0)  # let the others interleave if they can
            await s.execute(update(accounts).values(balance=current + 1))

    await asyncio.gather(*(bump() for _ in range(8)))
    async with database.session() as s:
        assert (await s.execute(select(accounts.c.balance))).scalar_one() == 8


async def test_unique_violation_is_detected_with_its_constraint(database: Database) -> None:
    md, accounts = _accounts("alpha")
    await database.create_all(md)
    async with database.transaction() as s:
        await s.execute(insert(accounts).values(id=1, email="dup@example.org"))

    with pytest.raises(IntegrityError) as caught:
        async with database.transaction() as s:
            await s.execute(insert(accounts).values(id=2, email="dup@example.org"))
    assert is_unique_violation(caught.value)
    assert is_conflict(caught.value)
    assert not is_foreign_key_violation(caught.value)
    expected = "uq_accounts_email" if database.dialect == "postgresql" else "accounts.email"
    assert violated_constraint(caught.value) == expected

    with pytest.raises(IntegrityError) as caught_pk:
        async with database.transaction() as s:
            await s.execute(insert(accounts).values(id=1, email="other@example.org"))
    assert is_unique_violation(caught_pk.value)


async def test_foreign_keys_are_enforced_and_not_mistaken_for_conflicts(
    database: Database,
) -> None:
    await database.create_all(demo_metadata)
    with pytest.raises(IntegrityError) as caught:
        async with database.transaction() as s:
            await s.execute(insert(parts).values(id=1, widget_id=404, label="orphan"))
    assert is_foreign_key_violation(caught.value)
    assert not is_unique_violation(caught.value)
    assert not is_conflict(caught.value)


def test_not_a_database_error_is_not_a_conflict() -> None:
    assert not is_unique_violation(ValueError("x"))
    assert not is_conflict(KeyError("x"))
    assert violated_constraint(RuntimeError("nothing")) is None


async def test_objects_stay_loaded_after_commit(database: Database) -> None:
    await database.create_all(demo_metadata)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with database.transaction() as s:
        row = (
            await s.execute(
                insert(widgets).values(name="w", created_at=now).returning(widgets.c.id)
            )
        ).scalar_one()
    async with database.session() as s:
        count = (await s.execute(select(func.count()).select_from(widgets))).scalar_one()
    assert (row, count) == (1, 1)


async def test_exclusion_violation_is_a_conflict(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("EXCLUDE constraints are PostgreSQL's")
    async with database.transaction() as s:
        await s.execute(
            text(
                "CREATE TABLE alpha.bookings (room int, during tsrange,"
                " CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&))"
            )
        )
        await s.execute(
            text("INSERT INTO alpha.bookings VALUES (1, '[2026-01-01 10:00, 2026-01-01 11:00)')")
        )
    with pytest.raises(IntegrityError) as caught:
        async with database.transaction() as s:
            await s.execute(
                text(
                    "INSERT INTO alpha.bookings VALUES (1, '[2026-01-01 10:30, 2026-01-01 12:00)')"
                )
            )
    assert is_conflict(caught.value)
    assert not is_unique_violation(caught.value)
    assert violated_constraint(caught.value) == "no_overlap"


def test_sync_driver_urls_mean_the_async_drivers() -> None:
    assert Database("sqlite:///x/keiko.db").url.drivername == "sqlite+aiosqlite"
    assert Database("postgresql://u@h/db").url.drivername == "postgresql+asyncpg"


def test_rejects_bad_schema_names_and_urls() -> None:
    with pytest.raises(ValueError, match="invalid schema name"):
        Database("sqlite+aiosqlite:///x.db", schemas=['bad"name'])
    with pytest.raises(ValueError, match="unsupported"):
        Database("mysql+aiomysql://u@h/db")


async def test_in_memory_sqlite_attaches_in_memory_schemas() -> None:
    db = Database("sqlite+aiosqlite:///:memory:", schemas=["alpha"])
    md, accounts = _accounts("alpha")
    try:
        await db.create_all(md)
        async with db.transaction() as s:
            await s.execute(insert(accounts).values(id=1, email="m@example.org"))
        async with db.session() as s:
            assert (await s.execute(select(accounts.c.id))).scalar_one() == 1
    finally:
        await db.dispose()


async def test_postgresql_keeps_its_connections_through_bursts(database: Database) -> None:
    """A second burst of 12 concurrent reads opens no connection: the pool keeps them
    (SQLAlchemy's default keeps 5 and opens and closes the rest on every burst)."""
    if database.dialect != "postgresql":
        pytest.skip("the SQLite pool is not the PostgreSQL one")
    opened: list[object] = []
    event.listen(database.engine.sync_engine, "connect", lambda *_: opened.append(1))
    barrier = asyncio.Barrier(12)

    async def read() -> None:
        async with database.read() as conn:
            await conn.execute(text("SELECT 1"))
            await barrier.wait()

    await asyncio.gather(*(read() for _ in range(12)))
    first = len(opened)
    await asyncio.gather(*(read() for _ in range(12)))
    assert len(opened) == first


async def test_a_read_without_snapshot_opens_no_transaction_block(database: Database) -> None:
    """`read(snapshot=False)` sends no BEGIN on either engine: on PostgreSQL each statement
    is its own transaction (a transaction block would give both the same `now()`), while
    `read()` keeps its one transaction."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite's no-BEGIN read is tested in services/identity/tests/test_read_path.py")
    async with database.read(snapshot=False) as conn:
        first = (await conn.execute(text("SELECT now()"))).scalar_one()
        await asyncio.sleep(0.01)
        second = (await conn.execute(text("SELECT now()"))).scalar_one()
        assert first != second
    async with database.read() as conn:
        first = (await conn.execute(text("SELECT now()"))).scalar_one()
        await asyncio.sleep(0.01)
        second = (await conn.execute(text("SELECT now()"))).scalar_one()
        assert first == second


async def test_an_idle_postgresql_connection_that_died_is_replaced(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping at every checkout (three round trips on asyncpg); a connection idle long
    enough is pinged, and one the server dropped meanwhile is replaced, not handed out."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite connections are files: nothing to drop")
    async with database.read() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = Database(database.url.render_as_string(hide_password=False))
    try:
        async with admin.read() as conn:
            killed = await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert killed.scalar_one() is True
    finally:
        await admin.dispose()
    monkeypatch.setattr("services.kit.db.IDLE_PING_SECONDS", 0.0)
    async with database.read() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1

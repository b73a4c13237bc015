"""The reputation migrations: head matches the tables in storage.py, and they revert."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from services.kit.db import Database
from services.kit.migrations import current_revision, downgrade, upgrade
from services.reputation.storage import metadata

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


async def test_upgrade_downgrade_upgrade(database: Database) -> None:
    await upgrade(database, "reputation", MIGRATIONS)
    head = await current_revision(database, "reputation")
    assert head is not None

    def tables(conn: object) -> set[str]:
        return set(inspect(conn).get_table_names(schema="reputation"))

    async with database.engine.connect() as conn:
        found = await conn.run_sync(tables)
    assert {t.name for t in metadata.sorted_tables} <= found
    await downgrade(database, "reputation", MIGRATIONS, "base")
    async with database.engine.connect() as conn:
        assert not ({t.name for t in metadata.sorted_tables} & await conn.run_sync(tables))
    await upgrade(database, "reputation", MIGRATIONS)
    assert await current_revision(database, "reputation") == head

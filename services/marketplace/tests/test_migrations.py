"""The marketplace migration goes down and up again on both engines, and the
no-double-booking guarantee comes back with it."""

from __future__ import annotations

from sqlalchemy import text

from services.kit.db import Database
from services.kit.migrations import current_revision, downgrade, service_migration_dirs, upgrade


async def _objects(db: Database) -> set[str]:
    if db.dialect == "postgresql":
        query = text(
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = 'marketplace' AND contype = 'x'"
        )
    else:
        query = text("SELECT name FROM marketplace.sqlite_master WHERE type = 'trigger'")
    async with db.session() as session:
        return {row[0] for row in (await session.execute(query)).all()}


async def test_downgrade_and_upgrade_round_trip(migrated_database: Database) -> None:
    directory = service_migration_dirs()["marketplace"]
    expected = (
        {"ex_reservations_no_overlap"}
        if migrated_database.dialect == "postgresql"
        else {"ex_reservations_no_overlap_insert", "ex_reservations_no_overlap_update"}
    )
    head = await current_revision(migrated_database, "marketplace")
    assert head is not None
    assert await _objects(migrated_database) == expected
    await downgrade(migrated_database, "marketplace", directory, "base")
    assert await current_revision(migrated_database, "marketplace") is None
    await upgrade(migrated_database, "marketplace", directory)
    assert await current_revision(migrated_database, "marketplace") == head
    assert await _objects(migrated_database) == expected

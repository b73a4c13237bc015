"""The passport schema: migrations create exactly the declared tables, go down and up
again, and page tokens are opaque and bound to the query they were issued for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from services.kit.db import Database
from services.kit.errors import ValidationError
from services.kit.migrations import current_revision, downgrade, service_migration_dirs, upgrade
from services.passport.domain import cursor_scope, decode_cursor, encode_cursor
from services.passport.storage import metadata


async def test_migrations_create_exactly_the_declared_tables(
    migrated_database: Database,
) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _p: (
                    name == "passport" if type_ == "schema" else True
                ),
                "compare_type": True,
                "version_table_schema": "passport",
            },
        )
        return list(compare_metadata(context, metadata))

    async with migrated_database.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_downgrade_and_upgrade_round_trip(migrated_database: Database) -> None:
    directory = service_migration_dirs()["passport"]
    head = await current_revision(migrated_database, "passport")
    assert head is not None
    await downgrade(migrated_database, "passport", directory, "base")
    assert await current_revision(migrated_database, "passport") is None
    await upgrade(migrated_database, "passport", directory)
    assert await current_revision(migrated_database, "passport") == head


def test_page_tokens_are_opaque_and_bound_to_their_query() -> None:
    scope = cursor_scope("passport-1", "all")
    token = encode_cursor(datetime(2026, 1, 1, 12, tzinfo=UTC), "stmt-1", scope)
    assert "2026" not in token and "stmt" not in token
    assert decode_cursor(token, scope) == (datetime(2026, 1, 1, 12, tzinfo=UTC), "stmt-1")
    assert decode_cursor("", scope) is None
    with pytest.raises(ValidationError, match="other filters"):
        decode_cursor(token, cursor_scope("passport-2", "all"))
    for garbage in ("x", "eyJ9", "!!!!"):
        with pytest.raises(ValidationError) as caught:
            decode_cursor(garbage, scope)
        assert caught.value.field == "page_token"

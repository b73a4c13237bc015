"""Storage specifics on both engines: migrations match the tables, single-use updates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from services.identity.domain import Ceremony, CeremonyKind, hash_secret
from services.identity.storage import SCHEMA, IdentityRepository, metadata, new_id
from services.kit.clock import FixedClock
from services.kit.db import Database


async def test_migrations_create_exactly_the_declared_tables(
    migrated_database: Database,
) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _p: (
                    name == SCHEMA if type_ == "schema" else True
                ),
                "compare_type": True,
                "version_table_schema": SCHEMA,
            },
        )
        return list(compare_metadata(context, metadata))

    async with migrated_database.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_a_ceremony_is_consumed_once(migrated_database: Database, clock: FixedClock) -> None:
    now = clock.now()
    ceremony = Ceremony(
        id=new_id(),
        kind=CeremonyKind.LOGIN,
        challenge_hash=hash_secret(b"challenge"),
        created_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    async with migrated_database.transaction() as s:
        await IdentityRepository(s, migrated_database.dialect).add_ceremony(ceremony)
    async with migrated_database.transaction() as s:
        repo = IdentityRepository(s, migrated_database.dialect)
        assert await repo.consume_ceremony(ceremony.id, now)
        assert not await repo.consume_ceremony(ceremony.id, now)
    async with migrated_database.session() as s:
        stored = await IdentityRepository(s, migrated_database.dialect).get_ceremony(ceremony.id)
    assert stored is not None
    assert stored.consumed_at == now
    assert stored.expires_at == now + timedelta(minutes=5)  # read back timezone-aware UTC


async def test_rate_bucket_state_is_shared_through_the_database(
    migrated_database: Database, clock: FixedClock
) -> None:
    key = hash_secret("addr:192.0.2.1")
    waits = []
    for _ in range(3):
        async with migrated_database.transaction() as s:
            repo = IdentityRepository(s, migrated_database.dialect)
            waits.append(
                await repo.take_rate_token(key, clock.now(), capacity=2, refill_per_second=1)
            )
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 0


async def test_purge_removes_expired_rows(migrated_database: Database, clock: FixedClock) -> None:
    now = clock.now()
    async with migrated_database.transaction() as s:
        await IdentityRepository(s, migrated_database.dialect).add_ceremony(
            Ceremony(
                id=new_id(),
                kind=CeremonyKind.REGISTRATION,
                challenge_hash=hash_secret(b"x"),
                created_at=now,
                expires_at=now + timedelta(minutes=5),
            )
        )
    async with migrated_database.transaction() as s:
        repo = IdentityRepository(s, migrated_database.dialect)
        assert await repo.purge_expired(now, now) == 0
        assert await repo.purge_expired(now + timedelta(minutes=6), now) == 1

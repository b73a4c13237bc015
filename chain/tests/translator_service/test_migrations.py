"""The chain schema's migrations: they create exactly the declared tables, and the
authorship revision migrates existing records and keys truthfully."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from chain.translator.storage import (
    MIGRATIONS_DIR,
    key_records,
    key_registrations,
    metadata,
    records,
    registered_keys,
)
from services.kit.db import Database
from services.kit.migrations import current_revision, downgrade, upgrade

BEFORE_AUTHORSHIP = "2abc67d37efe"
BEFORE_LEAF_ENCODINGS = "7c1e9a4b2d10"
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


async def test_migrations_create_exactly_the_declared_tables(chain_db: Database) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _p: (
                    name == "chain" if type_ == "schema" else True
                ),
                "compare_type": True,
                "version_table_schema": "chain",
            },
        )
        return list(compare_metadata(context, metadata))

    async with chain_db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def _record(seq: int, learner: str, signature: str, domain: str = "learning") -> dict[str, Any]:
    return {
        "seq": seq,
        "domain": domain,
        "record_id": f"r{seq}",
        "learner_id": learner,
        "statement_sha256": "00" * 32,
        "signature": signature,
        "public_key": "11" * 32 if signature else "",
        "leaf": "0x1",
        "status": "anchored",
        "attempts": 0,
        "submitted_at": NOW,
    }


async def test_existing_records_and_keys_are_migrated(database: Database) -> None:
    await upgrade(database, "chain", MIGRATIONS_DIR, BEFORE_AUTHORSHIP)
    old_records = set(records.c.keys()) - {"author_id", "leaf_encoding"}
    async with database.transaction() as s:
        await s.execute(
            insert(records),
            [
                {k: v for k, v in row.items() if k in old_records}
                for row in (
                    _record(1, "ana", "aa" * 64),  # signed with ana's key (who wrote it?)
                    _record(2, "", "", "reputation"),  # an unsigned service record
                )
            ],
        )
        await s.execute(
            insert(key_records),
            [
                {"learner_id": "ana", "record": b"x", "public_key": "a1" * 32, "created_at": NOW},
                {
                    "learner_id": "keiko-learning",
                    "record": b"y",
                    "public_key": "5e" * 32,
                    "created_at": NOW,
                },
            ],
        )
        await s.execute(
            insert(registered_keys).values(
                learner_id="bo", public_key="b0" * 32, source="humanity_registry", registered_at=NOW
            )
        )
    await upgrade(database, "chain", MIGRATIONS_DIR)
    async with database.session() as s:
        authors = dict((await s.execute(select(records.c.record_id, records.c.author_id))).all())
        queued = {
            r.public_key: (r.holder_id, r.custody, r.state)
            for r in (await s.execute(select(key_registrations))).all()
        }
    # The signer of every signed record was its learner; unsigned records have none.
    assert authors == {"r1": "ana", "r2": ""}
    assert queued == {
        "a1" * 32: ("ana", "custodial", "pending"),
        "5e" * 32: ("keiko-learning", "service", "pending"),
        "b0" * 32: ("bo", "device", "pending"),
    }
    head = await current_revision(database, "chain")
    await downgrade(database, "chain", MIGRATIONS_DIR, BEFORE_AUTHORSHIP)
    await upgrade(database, "chain", MIGRATIONS_DIR)
    assert await current_revision(database, "chain") == head


async def test_existing_records_keep_their_leaf_encodings(database: Database) -> None:
    """Signed records queued before leaf encodings were stored are keiko.leaf.v1, unsigned
    ones keiko.record.v1."""
    await upgrade(database, "chain", MIGRATIONS_DIR, BEFORE_LEAF_ENCODINGS)
    old_records = set(records.c.keys()) - {"leaf_encoding"}
    async with database.transaction() as s:
        await s.execute(
            insert(records),
            [
                {k: v for k, v in row.items() if k in old_records}
                for row in (_record(1, "ana", "aa" * 64), _record(2, "", "", "reputation"))
            ],
        )
    await upgrade(database, "chain", MIGRATIONS_DIR)
    async with database.session() as s:
        found = dict((await s.execute(select(records.c.record_id, records.c.leaf_encoding))).all())
    assert found == {"r1": "keiko.leaf.v1", "r2": "keiko.record.v1"}
    await downgrade(database, "chain", MIGRATIONS_DIR, BEFORE_LEAF_ENCODINGS)
    await upgrade(database, "chain", MIGRATIONS_DIR)

"""Storage specifics on both engines: migrations match the tables, page tokens, the
activity index and the anchor update rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from services.kit.db import Database
from services.kit.errors import ValidationError
from services.learning.common.storage import Cursor, decode_cursor, encode_cursor
from services.learning.statements.domain import AnchorOutcome, StatementRecord
from services.learning.statements.storage import (
    NewStatement,
    StatementFilter,
    StatementRepository,
)
from services.learning.storage import SCHEMA, metadata


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("learning",)


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


def test_page_tokens_are_opaque_and_bound_to_their_query() -> None:
    cursor = Cursor(datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC), "a-b")
    scope = StatementFilter(verb_id="v").scope()
    token = encode_cursor(cursor, scope)
    assert "2026" not in token and decode_cursor(token, scope) == cursor
    assert decode_cursor("", scope) is None
    with pytest.raises(ValidationError, match="other filters"):
        decode_cursor(token, StatementFilter().scope())
    for garbage in ("x", "eyJ9", "!!!!"):
        with pytest.raises(ValidationError) as caught:
            decode_cursor(garbage, scope)
        assert caught.value.field == "page_token"


def row(id: str, stored: datetime, **kw: Any) -> StatementRecord:
    values: dict[str, Any] = {
        "id": id,
        "actor_key": None,
        "learner_id": "ana",
        "recorded_by": "ana",
        "lrs_client_id": None,
        "webhook_source_id": None,
        "verb_id": "https://example.org/verb",
        "object_type": "Activity",
        "object_id": "https://example.org/a",
        "registration": None,
        "timestamp": stored,
        "stored": stored,
        "version": "1.0.3",
        "voided": False,
        "voids_statement_id": None,
        "statement_json": "{}",
        "canonical_hash": "0" * 64,
        "interaction_type": None,
        "interaction": None,
        "course_id": None,
        "class_id": None,
        "tutorial_session_id": None,
        "study_session_id": None,
        "device_signature_hex": None,
        "device_public_key_hex": None,
    }
    return StatementRecord(**(values | kw))


async def test_activity_index_and_anchor_rule(migrated_database: Database) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    async with migrated_database.transaction() as s:
        repo = StatementRepository(s)
        # The object wins over a related mention of the same activity.
        await repo.insert_statements(
            [
                NewStatement(
                    row("00000000-0000-4000-8000-000000000001", at),
                    [("https://example.org/a", False), ("https://example.org/a", True)],
                ),
                NewStatement(
                    row(
                        "00000000-0000-4000-8000-000000000002",
                        at,
                        object_id="https://example.org/b",
                    ),
                    [("https://example.org/b", False), ("https://example.org/a", True)],
                ),
            ]
        )
    async with migrated_database.session() as s:
        repo = StatementRepository(s)
        direct, _ = await repo.query_statements(
            StatementFilter(activity_id="https://example.org/a"), 10, None
        )
        related, _ = await repo.query_statements(
            StatementFilter(activity_id="https://example.org/a", related_activities=True), 10, None
        )
    assert [r.id[-1] for r in direct] == ["1"]
    assert [r.id[-1] for r in related] == ["2", "1"]
    sid = "00000000-0000-4000-8000-000000000001"
    async with migrated_database.transaction() as s:
        repo = StatementRepository(s)
        assert await repo.set_anchor(sid, AnchorOutcome(status="anchored", anchored_at=at))
        assert not await repo.set_anchor(sid, AnchorOutcome(status="failed"))
    async with migrated_database.session() as s:
        stored = await StatementRepository(s).get_statement(sid)
    assert stored is not None
    assert (stored.anchor_status, stored.anchored_at) == ("anchored", at)
    # A page of outcomes applies in order: a failure before the anchor is overridden, a
    # failure after it is not.
    other = "00000000-0000-4000-8000-000000000002"
    async with migrated_database.transaction() as s:
        await StatementRepository(s).set_anchors(
            [
                (other, AnchorOutcome(status="failed", failure="timeout")),
                (other, AnchorOutcome(status="anchored", batch_id="0x7", anchored_at=at)),
                (other, AnchorOutcome(status="failed", failure="late")),
            ]
        )
    async with migrated_database.session() as s:
        stored = await StatementRepository(s).get_statement(other)
    assert stored is not None
    assert (stored.anchor_status, stored.anchor_batch_id, stored.anchor_failure) == (
        "anchored",
        "0x7",
        None,
    )

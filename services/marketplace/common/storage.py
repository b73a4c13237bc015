"""The `marketplace` schema's MetaData and what every capability's tables share: the
outbox, the invitations table, ids, UTC columns and keyset conditions.

Every datetime is written in UTC; SQLite hands back naive values, read back as UTC. The
fixed-width text SQLite stores for them sorts and compares chronologically, which the
no-overlap trigger relies on (see `services.marketplace.reservations.storage`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, Select, Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from services.kit.db import NAMING_CONVENTION
from services.kit.events.outbox import outbox_table
from services.kit.invitations import invitation_table

SCHEMA = "marketplace"

metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


def ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


outbox = outbox_table(metadata)
invitations_table = invitation_table(metadata)


Cursor = tuple[datetime, str] | None


class Store:
    """Base of each capability's store (the mixins of `MarketplaceRepository`): queries over
    one session (one transaction for writes); `dialect` picks engine-specific SQL (row
    locks on PostgreSQL)."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.session = session
        self.dialect = dialect


def new_id() -> str:
    return str(uuid.uuid4())


def after(time_col: Any, id_col: Any, cursor: tuple[datetime, str] | None) -> ColumnElement[bool]:
    """Keyset condition: rows strictly after (time, id) in ascending order."""
    if cursor is None:
        return and_(True)
    when, row_id = cursor
    return or_(time_col > when, and_(time_col == when, id_col > row_id))


def before(time_col: Any, id_col: Any, cursor: tuple[datetime, str] | None) -> ColumnElement[bool]:
    if cursor is None:
        return and_(True)
    when, row_id = cursor
    return or_(time_col < when, and_(time_col == when, id_col < row_id))


def filters(table: Table, statuses: Iterable[str] = (), **equal: str) -> list[ColumnElement[bool]]:
    """The conditions of a list query: each non-empty `equal` column matches its value, and
    `status` is one of `statuses` when any are given."""
    found: list[ColumnElement[bool]] = [
        table.c[name] == value for name, value in equal.items() if value
    ]
    wanted = list(statuses)
    if wanted:
        found.append(table.c.status.in_(wanted))
    return found


def in_start_order(
    table: Table, conditions: Sequence[ColumnElement[bool]], cursor: Cursor, limit: int
) -> Select[Any]:
    """Rows matching `conditions` after `cursor`, by (start_time, id), at most `limit`."""
    return (
        select(table)
        .where(after(table.c.start_time, table.c.id, cursor), *conditions)
        .order_by(table.c.start_time, table.c.id)
        .limit(limit)
    )

"""What every identity table shares: the `identity` schema's metadata, UTC datetimes,
ids, and the session a store works on.

Every datetime column is timezone-aware on PostgreSQL; SQLite returns naive values, which
the row mappers read back as UTC (every value written is UTC).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, DateTime, MetaData
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

SCHEMA = "identity"
metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    },
)


def ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def new_id() -> str:
    return str(uuid.uuid4())


class Store:
    """Queries and writes of the identity schema, within the caller's session/transaction.

    It only runs Core statements, so it works on an ORM `AsyncSession` (what
    `Database.transaction()` yields) or on a bare `AsyncConnection`, the lighter choice for
    reads: no ORM session bookkeeping around each statement.
    """

    def __init__(self, session: AsyncSession | AsyncConnection, dialect: str) -> None:
        self.s = session
        self.dialect = dialect
        # The users (with their roles) and sessions this repository wrote: what the
        # service's read caches forget once the transaction has committed.
        self.written_users: set[str] = set()
        self.written_sessions: set[str] = set()


def rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

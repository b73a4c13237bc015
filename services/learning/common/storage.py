"""The `learning` schema's MetaData and what every capability's storage shares.

* `metadata`: one MetaData for the whole service (each capability's `storage.py` adds its
  tables to it; `services.learning.storage` imports them all for migrations).
* `request_keys`: client idempotency keys -> the result of the first call.
* `outbox`: events written in the transaction of the change.
* `processed_events`: event ids the learning consumers handled (exactly-once in effect).

Pagination is keyset on (time column, id): a page token names the last row returned, so
rows inserted between two pages never shift the later pages (no duplicates, no gaps).
SQLite returns naive datetimes; every value written is UTC and is read back as UTC.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import JSON as SAJSON
from sqlalchemy import Column, DateTime, MetaData, String, Table, and_, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.kit import idempotency
from services.kit.db import NAMING_CONVENTION
from services.kit.errors import ValidationError
from services.kit.events.dedupe import processed_events_table
from services.kit.events.outbox import outbox_table
from services.kit.invitations import invitation_table

SCHEMA = "learning"

metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)

ID = 128  # Keiko ids: [A-Za-z0-9._~-]{1,128}
IRI = 2048


def ts_column(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


request_keys = Table(
    "request_keys",
    metadata,
    Column("caller_id", String(ID), primary_key=True),
    Column("operation", String(64), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("result", SAJSON, nullable=False),
    ts_column("created_at"),
)

outbox = outbox_table(metadata)
# Issue 9: students named in a tutorial session by someone else (services.kit.invitations).
invitations_table = invitation_table(metadata)
# Markers of events the learning consumers handled (services.kit.events.dedupe).
processed_events = processed_events_table(metadata)


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_required(value: datetime) -> datetime:
    result = utc(value)
    assert result is not None
    return result


def sha256_hex(value: str | bytes) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def mapping(row: Row[Any]) -> dict[str, Any]:
    """A row as a dict with every datetime in UTC (for building a record)."""
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = utc(value)
    return out


async def insert_ignore(s: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """INSERT unless a row with the same key exists (ON CONFLICT DO NOTHING on both
    engines): concurrent creators never abort each other's transaction. True if inserted."""
    stmt: Any
    if s.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    result = await s.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def insert_ignore_many(
    s: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], key: str
) -> set[Any]:
    """`insert_ignore` for many rows in one multi-row INSERT ... ON CONFLICT DO NOTHING:
    the `key` column's values of the rows inserted (those not returned existed)."""
    if not rows:
        return set()
    stmt: Any
    if s.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(list(rows)).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).values(list(rows)).on_conflict_do_nothing()
    result = await s.execute(stmt.returning(table.c[key]))
    return set(result.scalars().all())


def row_values(record: object, table: Table) -> dict[str, Any]:
    """The column values of `table` taken from a record's attributes of the same names."""
    return {c.name: getattr(record, c.name) for c in table.columns}


# -- page tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """The last row of a page: (stored, id), bound to the query's filters."""

    stored: datetime
    id: str


def encode_cursor(cursor: Cursor, scope: str) -> str:
    body = json.dumps(
        {"s": cursor.stored.astimezone(UTC).isoformat(), "i": cursor.id, "q": scope[:16]},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(token: str, scope: str, field: str = "page_token") -> Cursor | None:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        stored = datetime.fromisoformat(data["s"])
        ident = data["i"]
        if not isinstance(ident, str) or stored.tzinfo is None:
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise ValidationError(field, "is not a page token this service issued") from None
    if data.get("q") != scope[:16]:
        raise ValidationError(field, "was issued for a query with other filters")
    return Cursor(stored.astimezone(UTC), ident)


def query_scope(*parts: object) -> str:
    return sha256_hex(json.dumps([str(p) for p in parts]))


def keyset(
    stored_col: ColumnElement[Any], id_col: ColumnElement[Any], cursor: Cursor, ascending: bool
) -> ColumnElement[bool]:
    if ascending:
        return or_(
            stored_col > cursor.stored, and_(stored_col == cursor.stored, id_col > cursor.id)
        )
    return or_(stored_col < cursor.stored, and_(stored_col == cursor.stored, id_col < cursor.id))


R = TypeVar("R")


async def page_rows(
    s: AsyncSession,
    table: Table,
    order_col: str,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: Cursor | None,
    record: Callable[[dict[str, Any]], R],
    *,
    descending: bool = False,
) -> tuple[list[R], Cursor | None]:
    """Records of `table` in (order_col, id) order, keyset-paginated: one page (at most
    `limit`) and the cursor of the next page, if any."""
    col = table.c[order_col]
    where = list(conditions)
    if cursor is not None:
        where.append(keyset(col, table.c.id, cursor, ascending=not descending))
    order = (col.desc(), table.c.id.desc()) if descending else (col.asc(), table.c.id.asc())
    query = select(table).where(and_(true(), *where)).order_by(*order).limit(limit + 1)
    rows = [mapping(r) for r in (await s.execute(query)).all()]
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = Cursor(utc_required(rows[-1][order_col]), rows[-1]["id"])
    return [record(r) for r in rows], nxt


# -- idempotency keys -------------------------------------------------------------------------


class RequestKeys:
    """Client idempotency keys: (caller, operation, request id) -> the first call's result."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def get(self, caller_id: str, operation: str, request_id: str) -> Any:
        t = request_keys
        row = (
            await self.s.execute(
                select(t.c.result).where(
                    t.c.caller_id == caller_id,
                    t.c.operation == operation,
                    t.c.request_id == request_id,
                )
            )
        ).first()
        return row[0] if row is not None else None

    async def claim(
        self, caller_id: str, operation: str, request_id: str, result: Any, now: datetime
    ) -> None:
        """Store the key with the result the call will answer, as the first write of its
        transaction; raises `services.kit.idempotency.Replayed` with the stored result when
        a concurrent call with the same key committed first (see that module)."""
        await idempotency.claim(
            self.s,
            request_keys,
            {
                "caller_id": caller_id,
                "operation": operation,
                "request_id": request_id,
                "result": result,
                "created_at": now,
            },
        )

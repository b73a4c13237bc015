"""Client idempotency keys that hold when a retry runs at the same time as its first call.

A client whose call timed out retries with the same request id, possibly while the first
attempt still runs. Both may miss a replay lookup made before their transaction; if both
then did the work, one would store the work twice or fail on the key's unique constraint.

`claim` inserts the key (with the result the call will answer) as the first write of the
call's transaction, with ON CONFLICT DO NOTHING on the key's own primary key only:

* no row had the key: the call proceeds and its commit publishes key and work together;
* a twin holds the key uncommitted: on PostgreSQL (READ COMMITTED) the insert waits for
  its commit, and SQLite's BEGIN IMMEDIATE already waited for it before the transaction;
  then nothing is inserted and `Replayed` is raised with the twin's stored result, which
  rolls this attempt back (it wrote nothing yet) so the caller answers exactly what a
  later retry would;
* the twin rolled back instead: the insert succeeds and this call simply does the work.

A unique violation of any other constraint is not a replay: it is raised as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.errors import Unavailable

__all__ = ["Replayed", "claim"]

# A claim finds the key taken but no row to read only if the row was deleted in between
# (housekeeping); the next insert then succeeds, so a few tries are plenty.
_ATTEMPTS = 3


class Replayed(Exception):
    """A call with the same idempotency key committed first; `result` is what it stored.
    Raised inside the transaction so that this attempt's writes roll back."""

    def __init__(self, result: Any) -> None:
        super().__init__("the idempotency key was claimed by a concurrent call")
        self.result = result


async def claim(
    s: AsyncSession, table: Table, values: Mapping[str, Any], *, result: str = "result"
) -> None:
    """Insert the key row `values` (its primary key columns are the key, `result` the
    column a replay answers from) in the transaction of `s`, or raise `Replayed` with the
    result stored under the same key by a call that committed first. Call it before the
    call's other writes: a twin then waits here, not on the work's own rows."""
    key_columns = [c.name for c in table.primary_key.columns]
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    insert = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=key_columns)
        .returning(table.c[key_columns[0]])
    )
    lookup = select(table.c[result]).where(
        and_(*(table.c[name] == values[name] for name in key_columns))
    )
    for _ in range(_ATTEMPTS):
        if (await s.execute(insert)).first() is not None:
            return
        # A new statement: under READ COMMITTED it sees the twin's committed row.
        found = (await s.execute(lookup)).first()
        if found is not None:
            raise Replayed(found[0])
    raise Unavailable("the request's idempotency key is changing concurrently: retry")

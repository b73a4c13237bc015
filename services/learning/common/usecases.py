"""What every learning use case shares: the context it runs in (database, clock, the
callbacks to run after a commit that enqueued events), pages, request ids and replays."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from services.kit import paging
from services.kit.auth import Principal
from services.kit.clock import Clock, FixedClock
from services.kit.db import Database
from services.kit.errors import ValidationError
from services.kit.idempotency import Replayed

# statements/ and interactions/ import the kit's Page from here
from services.kit.paging import Page as Page
from services.learning.common.storage import RequestKeys
from services.learning.xapi.formats import is_uuid

T = TypeVar("T")

DEFAULT_PAGE = 50
MAX_STATEMENT_PAGE = 500
MAX_LIST_PAGE = 200
REQUEST_ID_MAX = 128


def page_size(requested: int, maximum: int, field_name: str = "page_size") -> int:
    """`services.kit.paging.page_size` with the maximum positional, as statements/ and
    interactions/ call it (the other capabilities call the kit's directly)."""
    return paging.page_size(requested, default=DEFAULT_PAGE, maximum=maximum, field_path=field_name)


def check_request_id(value: str) -> str:
    if len(value) > REQUEST_ID_MAX:
        raise ValidationError("request_id", f"must be at most {REQUEST_ID_MAX} characters")
    return value


def check_statement_id(value: str, field_name: str) -> str:
    if not is_uuid(value):
        raise ValidationError(field_name, "must be a statement id (UUID)")
    return value.lower()


def frozen_now(clock: Clock) -> FixedClock:
    """One instant for a whole request (every statement of a batch gets the same `stored`)."""
    return FixedClock(clock.now())


@dataclass
class LearningContext:
    """The database and clock the use cases run on, and the callbacks run after a commit
    that enqueued events (the outbox relay's `notify`)."""

    db: Database
    clock: Clock
    on_commit: list[Callable[[], object]] = field(default_factory=list)

    def notify(self) -> None:
        for callback in self.on_commit:
            callback()

    async def replay(self, caller: Principal, operation: str, request_id: str) -> str | None:
        """The id the first call with this request id produced, if any."""
        if not request_id:
            return None
        async with self.db.session() as s:
            found = await RequestKeys(s).get(
                caller.user_id, operation, check_request_id(request_id)
            )
        return str(found) if found is not None else None

    async def created_once(
        self,
        caller: Principal,
        operation: str,
        request_id: str,
        create: Callable[[], Awaitable[T]],
        read: Callable[[str], Awaitable[T]],
    ) -> T:
        """`create` once per (caller, operation, request id): a retry, or a twin racing it
        whose key committed first (`Replayed`), answers `read` of the first call's id."""
        replay = await self.replay(caller, operation, request_id)
        if replay is None:
            try:
                return await create()
            except Replayed as first:  # a concurrent retry committed first
                replay = str(first.result)
        return await read(replay)

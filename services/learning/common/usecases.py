"""What every learning use case shares: the context it runs in (database, clock, the
callbacks to run after a commit that enqueued events), pages, request ids and replays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.kit.auth import Principal
from services.kit.clock import Clock, FixedClock
from services.kit.db import Database
from services.kit.errors import ValidationError
from services.learning.common.storage import RequestKeys
from services.learning.xapi.formats import is_uuid

DEFAULT_PAGE = 50
MAX_STATEMENT_PAGE = 500
MAX_LIST_PAGE = 200
REQUEST_ID_MAX = 128

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str = ""


def page_size(requested: int, maximum: int, field_name: str = "page_size") -> int:
    if requested < 0:
        raise ValidationError(field_name, "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE
    return min(requested, maximum)


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

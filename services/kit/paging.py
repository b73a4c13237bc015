"""Pages of a list: the page size a request asks for (0 means the service's default,
more than its maximum is capped, a negative size is INVALID_ARGUMENT), the page itself,
and offset page tokens.

An offset token is opaque to clients: base64 of the list's prefix and the offset, so a
token of one list is refused by another as "malformed page token" instead of paging it
from a wrong place. Lists whose rows can be inserted while a client pages use keyset
cursors of their own instead (marketplace, invitations).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.kit.errors import ValidationError

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def page_size(
    requested: int,
    *,
    default: int = DEFAULT_PAGE_SIZE,
    maximum: int = MAX_PAGE_SIZE,
    field_path: str = "page_size",
) -> int:
    if requested < 0:
        raise ValidationError(field_path, "must not be negative")
    return default if requested == 0 else min(requested, maximum)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T] = field(default_factory=tuple)
    next_page_token: str = ""


@dataclass(frozen=True)
class OffsetPageTokens:
    """Offset tokens of one family of lists, told apart by `prefix`."""

    prefix: str

    def encode(self, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{self.prefix}:{offset}".encode()).decode().rstrip("=")

    def decode(self, token: str, field_path: str = "page_token") -> int:
        """The offset of `token`; 0 for no token."""
        if not token:
            return 0
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            prefix, _, number = raw.partition(":")
            offset = int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValidationError(field_path, "malformed page token") from exc
        if prefix != self.prefix or offset < 0:
            raise ValidationError(field_path, "malformed page token")
        return offset

    def page(self, rows: Sequence[T], offset: int, limit: int) -> Page[T]:
        """The page of `rows` fetched with `limit + 1`: an extra row means there is a
        next page, which starts at `offset + limit`."""
        more = len(rows) > limit
        return Page(tuple(rows[:limit]), self.encode(offset + limit) if more else "")

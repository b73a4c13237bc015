"""Marketplace rules every capability shares: text, money, ids, request ids, windows and
page tokens. Plain types and rules, no I/O."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from services.kit.errors import ValidationError
from services.kit.paging import Page

T = TypeVar("T")

MAX_REQUEST_ID = 100
MAX_ID = 64

_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Money:
    currency: str
    amount_minor: int

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency, "amount_minor": self.amount_minor}


def iso(value: datetime) -> str:
    return value.isoformat()


def require_id(value: str, field_path: str) -> str:
    if not value:
        raise ValidationError(field_path, "is required")
    return optional_id(value, field_path)


def optional_id(value: str, field_path: str) -> str:
    if len(value) > MAX_ID:
        raise ValidationError(field_path, f"must be at most {MAX_ID} characters")
    return value


def validate_text(
    value: str, field_path: str, *, maximum: int, required: bool = False, strip: bool = True
) -> str:
    text = value.strip() if strip else value
    if required and not text:
        raise ValidationError(field_path, "is required")
    if len(text) > maximum:
        raise ValidationError(field_path, f"must be at most {maximum} characters")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        raise ValidationError(field_path, "must not contain control characters")
    return text


def validate_money(currency: str, amount_minor: int, field_path: str) -> Money:
    if not currency:
        raise ValidationError(f"{field_path}.currency_code", "is required")
    if not _CURRENCY.match(currency):
        raise ValidationError(
            f"{field_path}.currency_code", "must be a 3-letter ISO 4217 code, e.g. EUR"
        )
    if amount_minor < 0:
        raise ValidationError(f"{field_path}.amount_minor", "must not be negative")
    if amount_minor > 10**12:
        raise ValidationError(f"{field_path}.amount_minor", "is too large")
    return Money(currency, amount_minor)


def validate_request_id(value: str, field_path: str = "request_id") -> str:
    if len(value) > MAX_REQUEST_ID:
        raise ValidationError(field_path, f"must be at most {MAX_REQUEST_ID} characters")
    return value


def validate_window(
    start: datetime | None,
    end: datetime | None,
    field_path: str,
    *,
    maximum: timedelta | None = None,
) -> tuple[datetime, datetime]:
    """A half-open [start, end) window; both required (unset timestamps arrive as None)."""
    if start is None:
        raise ValidationError(f"{field_path}.start_time", "is required")
    if end is None:
        raise ValidationError(f"{field_path}.end_time", "is required")
    if end <= start:
        raise ValidationError(f"{field_path}.end_time", "must be after start_time")
    if maximum is not None and end - start > maximum:
        raise ValidationError(
            f"{field_path}.end_time", f"window must be at most {maximum.days} days"
        )
    return start.astimezone(UTC), end.astimezone(UTC)


# -- page tokens ----------------------------------------------------------------------------


def encode_cursor(when: datetime, row_id: str) -> str:
    raw = json.dumps([when.astimezone(UTC).isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, field_path: str = "page_token") -> tuple[datetime, str] | None:
    """Keyset cursor: the (sort time, id) of the last item of the previous page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when_text, row_id = json.loads(raw)
        when = datetime.fromisoformat(when_text)
        if not isinstance(row_id, str) or when.tzinfo is None:
            raise ValueError(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ValidationError(field_path, "malformed page token") from exc
    return when, row_id


def page_of(found: Sequence[T], size: int, key: Callable[[T], tuple[datetime, str]]) -> Page[T]:
    """A page of `size` items from a query that fetched `size + 1`: the extra one says there
    is more, and the token points after the last item kept (`key`: its sort time and id)."""
    if len(found) > size:
        return Page(found[:size], encode_cursor(*key(found[size - 1])))
    return Page(found)

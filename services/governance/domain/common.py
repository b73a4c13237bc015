"""What every governance capability shares: bounded text, the client's idempotency
key, basis points and the page tokens of governance's lists.

Every rejection of client input is a `ValidationError(field_path, reason)`; every refused
state change is a `FailedPrecondition`.
"""

from __future__ import annotations

from services.kit.errors import ValidationError
from services.kit.paging import OffsetPageTokens

MAX_REQUEST_ID_CHARS = 128
MAX_BPS = 10_000


def required_text(value: str, path: str, max_chars: int) -> str:
    text = value.strip()
    if not text:
        raise ValidationError(path, "is required")
    return bounded_text(text, path, max_chars)


def bounded_text(value: str, path: str, max_chars: int) -> str:
    if len(value) > max_chars:
        raise ValidationError(path, f"must be at most {max_chars} characters")
    if "\x00" in value:
        raise ValidationError(path, "must not contain NUL characters")
    return value


def request_id_of(value: str, path: str = "request_id") -> str | None:
    """The client's idempotency key, or None when not given."""
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_REQUEST_ID_CHARS or not value.isprintable():
        raise ValidationError(path, f"must be printable and at most {MAX_REQUEST_ID_CHARS} chars")
    return value


# Offset page tokens of governance's lists.
PAGE_TOKENS = OffsetPageTokens("g")

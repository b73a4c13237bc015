"""Scalars with Keiko's limits (docs/limits.md).

`DateTime` is strawberry's (same name and description, so the SDL is unchanged) but an
input must carry a time zone offset and lie in the range every Keiko API accepts
(services.kit.limits): `2026-01-31T12:00:00` (no offset), `0001-01-01T00:00:00Z` or
`9999-12-31T23:59:59Z` are BAD_USER_INPUT naming the value as the client sent it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dateutil.parser
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

from services.kit.errors import ValidationError
from services.kit.limits import check_instant


def parse_instant(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{value}". Expected a string.'
        )
    shown = value if len(value) <= 64 else value[:64] + "…"
    try:
        parsed = dateutil.parser.isoparse(value)
    except (ValueError, OverflowError) as exc:
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{shown}". {exc}'
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{shown}". It needs a time zone offset '
            "(e.g. Z or +02:00)."
        )
    try:
        check_instant(parsed, "DateTime")
    except ValidationError as error:
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{shown}". It {error.reason}.'
        ) from None
    return parsed


KeikoDateTime = ScalarDefinition(
    name=DateTimeDefinition.name,
    description=DateTimeDefinition.description,
    specified_by_url=None,
    serialize=DateTimeDefinition.serialize,
    parse_value=parse_instant,
    parse_literal=None,
    origin=dt.datetime,
)

SCALAR_OVERRIDES: dict[object, Any] = {dt.datetime: KeikoDateTime}

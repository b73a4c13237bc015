"""Decoding and encoding helpers every marketplace servicer mixin shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import betterproto

from services.api.keiko.common import v1 as common_pb
from services.kit.errors import ValidationError
from services.marketplace.common.domain import Money

E = TypeVar("E")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_from_pb(value: datetime | None) -> datetime | None:
    """An unset Timestamp arrives as the epoch: None."""
    if value is None or value == _EPOCH:
        return None
    return value.astimezone(UTC)


def known(value: betterproto.Enum) -> str | None:
    """The member name of a set, known enum value; None for 0 (unspecified) or unknown."""
    name = getattr(value, "name", None)
    if not name or int(value) == 0:
        return None
    return str(name)


def known_names(values: Sequence[betterproto.Enum], field_path: str, what: str) -> list[str]:
    """The member names of repeated enum values; INVALID_ARGUMENT at the first unknown one
    ("`field_path`[i] must be a known `what`")."""
    result = []
    for index, value in enumerate(values):
        name = known(value)
        if name is None:
            raise ValidationError(f"{field_path}[{index}]", f"must be a known {what}")
        result.append(name)
    return result


def statuses_from_pb(
    values: Sequence[betterproto.Enum], table: Mapping[int, E], what: str
) -> list[E]:
    """Repeated status filters: each must be one of `table` (`statuses[i]` otherwise)."""
    result = []
    for index, status in enumerate(values):
        found = table.get(int(status))
        if found is None:
            raise ValidationError(f"statuses[{index}]", f"must be a known {what}")
        result.append(found)
    return result


def money_to_pb(value: Money) -> common_pb.Money:
    return common_pb.Money(currency_code=value.currency, amount_minor=value.amount_minor)

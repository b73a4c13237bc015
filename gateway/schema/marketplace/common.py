"""What the marketplace's GraphQL modules share: the service stub, conversions, money and
time windows."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import strawberry

from gateway.context import Info
from services.api.keiko.common import v1 as common_pb
from services.api.keiko.marketplace import v1 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def marketplace(info: Info) -> pb.MarketplaceServiceStub:
    """The service stub, for the public operations (no token needed)."""
    return info.context.client(pb.MarketplaceServiceStub)  # type: ignore[no-any-return]


def signed_in(info: Info) -> pb.MarketplaceServiceStub:
    """The service stub, for an operation that needs an access token (checked first)."""
    info.context.require_token()
    return marketplace(info)


def when(value: datetime) -> datetime | None:
    """Unset protobuf timestamps (the epoch) become null."""
    return None if value == _EPOCH else value


def enum_name(value: enum.Enum) -> str:
    """The member name of a protobuf enum value (unknown values have none: a KeyError)."""
    return str(value.name)


def pb_enums(pb_type: Any, values: Iterable[enum.Enum] | None) -> list[Any]:
    """GraphQL enum values as the protobuf enum `pb_type` (same member names)."""
    return [pb_type.from_string(v.value) for v in values or []]


def u32(value: int) -> int:
    """GraphQL Int is signed: clamp into uint32 so the service, not the encoder, rejects it."""
    return min(max(value, 0), 2**32 - 1)


@strawberry.type(description="An amount in integer minor units (cents for EUR).")
class Money:
    currency_code: str
    amount_minor: int

    @staticmethod
    def from_pb(m: common_pb.Money) -> Money:
        return Money(currency_code=m.currency_code, amount_minor=m.amount_minor)


@strawberry.type
class TimeWindow:
    start_time: datetime
    end_time: datetime


@strawberry.input
class MoneyInput:
    currency_code: str
    amount_minor: int

    def to_pb(self) -> common_pb.Money:
        return common_pb.Money(currency_code=self.currency_code, amount_minor=self.amount_minor)


@strawberry.input
class TimeWindowInput:
    start_time: datetime
    end_time: datetime

    def to_pb(self) -> pb.TimeWindow:
        return pb.TimeWindow(start_time=self.start_time, end_time=self.end_time)

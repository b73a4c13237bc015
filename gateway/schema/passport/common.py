"""What every part of the passport's GraphQL API shares: the service's client, conversions
of times, interaction types and enums, page arguments, how a viewer reached a passport
(`Scope`) and Relay's `PageInfo`."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

import betterproto
import strawberry

from gateway.context import Info
from gateway.errors import ClientError
from gateway.schema.learning import InteractionType
from services.api.keiko.common import v1 as common_pb
from services.api.keiko.passport import v1 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FIRST = 500
# Each verified entry checks a signature, a Merkle proof and an on-chain root: a smaller
# page (docs/limits.md), and a higher cost per item (gateway.cost.PER_ITEM_WEIGHTS).
MAX_VERIFICATION_FIRST = 100


def _when(value: datetime | None) -> datetime | None:
    if value is None or value.replace(tzinfo=UTC) == _EPOCH:
        return None
    return value


def _type_from_pb(value: int) -> InteractionType | None:
    name = common_pb.InteractionType(value).name
    return InteractionType[name] if name and name in InteractionType.__members__ else None


def _type_to_pb(value: InteractionType) -> common_pb.InteractionType:
    return common_pb.InteractionType.from_string(value.value)


def _first(first: int, maximum: int = MAX_FIRST) -> int:
    if first < 1 or first > maximum:
        raise ClientError(f"first must be between 1 and {maximum}", "BAD_USER_INPUT", field="first")
    return first


def _enum_from(value: int, pb_enum: type, gql_enum: type[enum.Enum]) -> enum.Enum:
    name = pb_enum(value).name or "UNSPECIFIED"
    return gql_enum[name] if name in gql_enum.__members__ else gql_enum["UNSPECIFIED"]


def _on_wire(message: betterproto.Message) -> bool:
    return bool(betterproto.serialized_on_wire(message))


@dataclass(frozen=True)
class _Scope:
    """How the viewer reached an entry (verification must go the same way)."""

    passport_id: str = ""
    share_token: str = ""


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def passport_client(info: Info) -> pb.PassportServiceStub:
    return info.context.client(pb.PassportServiceStub)  # type: ignore[no-any-return]

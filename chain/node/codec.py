"""Parsing of JSON-RPC parameters into typed values, and felt formatting.

Every parser raises :class:`~chain.node.errors.RpcError` ``-32602 Invalid params`` on
malformed input, so a client's mistake never escapes as a bare ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chain.node.errors import invalid_params

FIELD_PRIME = 2**251 + 17 * 2**192 + 1
U64_MAX = 2**64 - 1
U128_MAX = 2**128 - 1

Tag = Literal["latest", "pre_confirmed", "l1_accepted"]


def hex_felt(value: int) -> str:
    return hex(value)


def hex_list(values: list[int]) -> list[str]:
    return [hex(v) for v in values]


def parse_felt(value: Any, name: str) -> int:
    """A felt as the spec writes it: a ``0x``-prefixed hex string below the field prime."""
    if isinstance(value, bool):
        raise invalid_params(f"{name}: expected a felt, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise invalid_params(f"{name}: not a felt: {value!r}") from None
    else:
        raise invalid_params(f"{name}: expected a felt, got {type(value).__name__}")
    if not 0 <= number < FIELD_PRIME:
        raise invalid_params(f"{name}: out of the field range")
    return number


def parse_uint(value: Any, name: str, maximum: int) -> int:
    number = parse_felt(value, name)
    if number > maximum:
        raise invalid_params(f"{name}: exceeds {maximum}")
    return number


def parse_felt_list(value: Any, name: str) -> list[int]:
    if not isinstance(value, list):
        raise invalid_params(f"{name}: expected a list of felts")
    return [parse_felt(item, f"{name}[{i}]") for i, item in enumerate(value)]


def parse_int(value: Any, name: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_params(f"{name}: expected an integer")
    if not minimum <= value <= maximum:
        raise invalid_params(f"{name}: must be between {minimum} and {maximum}")
    return value


def require_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_params(f"{name}: expected an object")
    return value


def require_key(obj: dict[str, Any], key: str, name: str) -> Any:
    if key not in obj:
        raise invalid_params(f"{name}.{key}: missing")
    return obj[key]


# --- block identifiers -----------------------------------------------------------------


@dataclass(frozen=True)
class BlockId:
    """``tag`` or ``number`` or ``hash``: exactly one is set."""

    tag: Tag | None = None
    number: int | None = None
    hash: int | None = None


LATEST = BlockId(tag="latest")
PRE_CONFIRMED = BlockId(tag="pre_confirmed")


def parse_block_id(value: Any, name: str = "block_id") -> BlockId:
    if isinstance(value, str):
        if value in ("latest", "l1_accepted"):
            return BlockId(tag="latest" if value == "latest" else "l1_accepted")
        if value in ("pre_confirmed", "pending"):
            return PRE_CONFIRMED
        raise invalid_params(f"{name}: unknown block tag {value!r}")
    if isinstance(value, dict):
        if set(value) == {"block_number"}:
            return BlockId(number=parse_int(value["block_number"], f"{name}.block_number"))
        if set(value) == {"block_hash"}:
            return BlockId(hash=parse_felt(value["block_hash"], f"{name}.block_hash"))
    raise invalid_params(f"{name}: expected a tag, {{block_number}} or {{block_hash}}")


# --- calls and event filters ----------------------------------------------------------


@dataclass(frozen=True)
class FunctionCall:
    contract_address: int
    entry_point_selector: int
    calldata: list[int]


def parse_function_call(value: Any, name: str = "request") -> FunctionCall:
    obj = require_object(value, name)
    return FunctionCall(
        contract_address=parse_felt(
            require_key(obj, "contract_address", name), f"{name}.contract_address"
        ),
        entry_point_selector=parse_felt(
            require_key(obj, "entry_point_selector", name), f"{name}.entry_point_selector"
        ),
        calldata=parse_felt_list(obj.get("calldata", []), f"{name}.calldata"),
    )


@dataclass(frozen=True)
class EventFilter:
    from_block: BlockId | None
    to_block: BlockId | None
    addresses: list[int] | None
    keys: list[list[int]]
    chunk_size: int
    continuation_token: str | None


def parse_event_filter(value: Any, name: str = "filter") -> EventFilter:
    obj = require_object(value, name)
    address = obj.get("address")
    addresses: list[int] | None
    if address is None:
        addresses = None
    elif isinstance(address, list):
        addresses = parse_felt_list(address, f"{name}.address")
    else:
        addresses = [parse_felt(address, f"{name}.address")]
    keys_raw = obj.get("keys", [])
    if not isinstance(keys_raw, list):
        raise invalid_params(f"{name}.keys: expected a list of lists of felts")
    keys = [parse_felt_list(inner, f"{name}.keys[{i}]") for i, inner in enumerate(keys_raw)]
    token = obj.get("continuation_token")
    if token is not None and not isinstance(token, str):
        raise invalid_params(f"{name}.continuation_token: expected a string")
    from_block = obj.get("from_block")
    to_block = obj.get("to_block")
    return EventFilter(
        from_block=None if from_block is None else parse_block_id(from_block, f"{name}.from_block"),
        to_block=None if to_block is None else parse_block_id(to_block, f"{name}.to_block"),
        addresses=addresses,
        keys=keys,
        chunk_size=parse_int(require_key(obj, "chunk_size", name), f"{name}.chunk_size", 1),
        continuation_token=token,
    )

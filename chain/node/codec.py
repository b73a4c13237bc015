"""Parsing of JSON-RPC parameters into typed values, and felt formatting.

Every parser raises :class:`~chain.node.errors.RpcError` ``-32602 Invalid params`` on
malformed input, so a client's mistake never escapes as a bare ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from starknet_py.constants import QUERY_VERSION_BASE
from starknet_py.hash.transaction import (
    CommonTransactionV3Fields,
    TransactionHashPrefix,
    compute_invoke_v3_transaction_hash,
)
from starknet_py.net.client_models import DAMode, ResourceBounds, ResourceBoundsMapping

from chain.node.errors import invalid_params, unsupported_tx_version

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


# --- transactions ----------------------------------------------------------------------


def _parse_da_mode(value: Any, name: str) -> DAMode:
    if value in ("L1", 0, "0x0"):
        return DAMode.L1
    if value in ("L2", 1, "0x1"):
        return DAMode.L2
    raise invalid_params(f"{name}: expected 'L1' or 'L2'")


def _parse_bounds(value: Any, name: str) -> ResourceBounds:
    obj = require_object(value, name)
    return ResourceBounds(
        max_amount=parse_uint(require_key(obj, "max_amount", name), f"{name}.max_amount", U64_MAX),
        max_price_per_unit=parse_uint(
            require_key(obj, "max_price_per_unit", name), f"{name}.max_price_per_unit", U128_MAX
        ),
    )


@dataclass(frozen=True)
class InvokeV3Request:
    """A broadcasted INVOKE v3 transaction (``BROADCASTED_INVOKE_TXN`` in the spec)."""

    sender_address: int
    calldata: list[int]
    signature: list[int]
    nonce: int
    version: int
    tip: int
    resource_bounds: ResourceBoundsMapping
    paymaster_data: list[int] = field(default_factory=list)
    account_deployment_data: list[int] = field(default_factory=list)
    nonce_data_availability_mode: DAMode = DAMode.L1
    fee_data_availability_mode: DAMode = DAMode.L1
    proof_facts: list[int] | None = None

    @property
    def is_query(self) -> bool:
        """Signed for fee estimation / simulation only (version 3 + 2**128)."""
        return self.version >= QUERY_VERSION_BASE

    def compute_hash(self, chain_id: int) -> int:
        common = CommonTransactionV3Fields(
            tx_prefix=TransactionHashPrefix.INVOKE,
            version=self.version,
            address=self.sender_address,
            tip=self.tip,
            resource_bounds=self.resource_bounds,
            paymaster_data=self.paymaster_data,
            chain_id=chain_id,
            nonce=self.nonce,
            nonce_data_availability_mode=self.nonce_data_availability_mode,
            fee_data_availability_mode=self.fee_data_availability_mode,
        )
        return compute_invoke_v3_transaction_hash(
            account_deployment_data=self.account_deployment_data,
            calldata=self.calldata,
            common_fields=common,
            proof_facts=self.proof_facts,
        )

    def to_rpc(self, tx_hash: int) -> dict[str, Any]:
        """``INVOKE_TXN_V3`` with its hash, as getTransactionByHash answers it."""
        rb = self.resource_bounds
        body: dict[str, Any] = {
            "transaction_hash": hex(tx_hash),
            "type": "INVOKE",
            "version": hex(self.version),
            "sender_address": hex(self.sender_address),
            "calldata": hex_list(self.calldata),
            "signature": hex_list(self.signature),
            "nonce": hex(self.nonce),
            "tip": hex(self.tip),
            "resource_bounds": {
                name: {
                    "max_amount": hex(b.max_amount),
                    "max_price_per_unit": hex(b.max_price_per_unit),
                }
                for name, b in (
                    ("l1_gas", rb.l1_gas),
                    ("l2_gas", rb.l2_gas),
                    ("l1_data_gas", rb.l1_data_gas),
                )
            },
            "paymaster_data": hex_list(self.paymaster_data),
            "account_deployment_data": hex_list(self.account_deployment_data),
            "nonce_data_availability_mode": self.nonce_data_availability_mode.name,
            "fee_data_availability_mode": self.fee_data_availability_mode.name,
        }
        if self.proof_facts is not None:
            body["proof_facts"] = hex_list(self.proof_facts)
        return body


def parse_invoke_v3(value: Any, name: str = "invoke_transaction") -> InvokeV3Request:
    obj = require_object(value, name)
    tx_type = obj.get("type", "INVOKE")
    if tx_type != "INVOKE":
        raise invalid_params(f"{name}.type: expected INVOKE, got {tx_type!r}")
    version = parse_felt(require_key(obj, "version", name), f"{name}.version")
    if version not in (3, 3 + QUERY_VERSION_BASE):
        raise unsupported_tx_version(f"version {hex(version)}; this node executes v3 only")
    bounds = require_object(require_key(obj, "resource_bounds", name), f"{name}.resource_bounds")
    l1_data = bounds.get("l1_data_gas", {"max_amount": "0x0", "max_price_per_unit": "0x0"})
    proof_facts = obj.get("proof_facts")
    return InvokeV3Request(
        sender_address=parse_felt(
            require_key(obj, "sender_address", name), f"{name}.sender_address"
        ),
        calldata=parse_felt_list(require_key(obj, "calldata", name), f"{name}.calldata"),
        signature=parse_felt_list(obj.get("signature", []), f"{name}.signature"),
        nonce=parse_felt(require_key(obj, "nonce", name), f"{name}.nonce"),
        version=version,
        tip=parse_uint(obj.get("tip", "0x0"), f"{name}.tip", U64_MAX),
        resource_bounds=ResourceBoundsMapping(
            l1_gas=_parse_bounds(
                require_key(bounds, "l1_gas", f"{name}.resource_bounds"),
                f"{name}.resource_bounds.l1_gas",
            ),
            l2_gas=_parse_bounds(
                require_key(bounds, "l2_gas", f"{name}.resource_bounds"),
                f"{name}.resource_bounds.l2_gas",
            ),
            l1_data_gas=_parse_bounds(l1_data, f"{name}.resource_bounds.l1_data_gas"),
        ),
        paymaster_data=parse_felt_list(obj.get("paymaster_data", []), f"{name}.paymaster_data"),
        account_deployment_data=parse_felt_list(
            obj.get("account_deployment_data", []), f"{name}.account_deployment_data"
        ),
        nonce_data_availability_mode=_parse_da_mode(
            obj.get("nonce_data_availability_mode", "L1"), f"{name}.nonce_data_availability_mode"
        ),
        fee_data_availability_mode=_parse_da_mode(
            obj.get("fee_data_availability_mode", "L1"), f"{name}.fee_data_availability_mode"
        ),
        proof_facts=None
        if proof_facts is None
        else parse_felt_list(proof_facts, f"{name}.proof_facts"),
    )


def invoke_from_rpc(obj: dict[str, Any]) -> InvokeV3Request:
    """Reload a stored transaction (as written by :meth:`InvokeV3Request.to_rpc`)."""
    return parse_invoke_v3(obj)


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

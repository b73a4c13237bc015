"""Broadcasted v3 transactions (INVOKE, DECLARE, DEPLOY_ACCOUNT): parsing, hashes, JSON.

Each parser raises ``-32602 Invalid params`` naming the field on malformed input, and
``UNSUPPORTED_TX_VERSION`` for anything but version 3 (or its query version 2**128 + 3,
which fee estimation and simulation accept). The hashes are starknet-py's v3 hashes,
which are Starknet's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from starknet_py.constants import QUERY_VERSION_BASE
from starknet_py.hash.address import compute_address
from starknet_py.hash.transaction import (
    CommonTransactionV3Fields,
    TransactionHashPrefix,
    compute_declare_v3_transaction_hash,
    compute_deploy_account_v3_transaction_hash,
    compute_invoke_v3_transaction_hash,
)
from starknet_py.net.client_models import DAMode, ResourceBounds, ResourceBoundsMapping

from chain.node.codec import (
    U64_MAX,
    U128_MAX,
    hex_list,
    parse_felt,
    parse_felt_list,
    parse_uint,
    require_key,
    require_object,
)
from chain.node.errors import invalid_params, unsupported_tx_version

TxType = Literal["INVOKE", "DECLARE", "DEPLOY_ACCOUNT"]
# Bounds a client may send; a bigger body is refused before any work (see server.py too).
MAX_CALLDATA = 10_000
MAX_SIGNATURE = 64
MAX_SIERRA_FELTS = 500_000
MAX_PROOF_CHARS = 1_000_000


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


def _bounded_list(value: Any, name: str, limit: int) -> list[int]:
    felts = parse_felt_list(value, name)
    if len(felts) > limit:
        raise invalid_params(f"{name}: at most {limit} items")
    return felts


def _bounds_json(rb: ResourceBoundsMapping) -> dict[str, dict[str, str]]:
    return {
        name: {"max_amount": hex(b.max_amount), "max_price_per_unit": hex(b.max_price_per_unit)}
        for name, b in (
            ("l1_gas", rb.l1_gas),
            ("l2_gas", rb.l2_gas),
            ("l1_data_gas", rb.l1_data_gas),
        )
    }


@dataclass(frozen=True, kw_only=True)
class V3Transaction:
    """The fields every v3 transaction has."""

    signature: list[int]
    nonce: int
    version: int
    tip: int
    resource_bounds: ResourceBoundsMapping
    paymaster_data: list[int] = field(default_factory=list)
    nonce_data_availability_mode: DAMode = DAMode.L1
    fee_data_availability_mode: DAMode = DAMode.L1

    type: TxType = "INVOKE"

    @property
    def is_query(self) -> bool:
        """Signed for fee estimation / simulation only (version 3 + 2**128)."""
        return self.version >= QUERY_VERSION_BASE

    @property
    def payer(self) -> int:
        """The account whose nonce the transaction uses and whose balance pays for it."""
        raise NotImplementedError

    @property
    def size_felts(self) -> int:
        """Felts the transaction carries (charged as L2 gas)."""
        raise NotImplementedError

    def max_fee(self) -> int:
        """What the account must hold: every resource's max amount at its max price."""
        rb = self.resource_bounds
        return sum(
            b.max_amount * b.max_price_per_unit for b in (rb.l1_gas, rb.l2_gas, rb.l1_data_gas)
        )

    def _common(self, prefix: TransactionHashPrefix, address: int, chain_id: int) -> Any:
        return CommonTransactionV3Fields(
            tx_prefix=prefix,
            version=self.version,
            address=address,
            tip=self.tip,
            resource_bounds=self.resource_bounds,
            paymaster_data=self.paymaster_data,
            chain_id=chain_id,
            nonce=self.nonce,
            nonce_data_availability_mode=self.nonce_data_availability_mode,
            fee_data_availability_mode=self.fee_data_availability_mode,
        )

    def _common_json(self, tx_hash: int) -> dict[str, Any]:
        return {
            "transaction_hash": hex(tx_hash),
            "type": self.type,
            "version": hex(self.version),
            "signature": hex_list(self.signature),
            "nonce": hex(self.nonce),
            "tip": hex(self.tip),
            "resource_bounds": _bounds_json(self.resource_bounds),
            "paymaster_data": hex_list(self.paymaster_data),
            "nonce_data_availability_mode": self.nonce_data_availability_mode.name,
            "fee_data_availability_mode": self.fee_data_availability_mode.name,
        }


@dataclass(frozen=True, kw_only=True)
class InvokeV3Request(V3Transaction):
    """``BROADCASTED_INVOKE_TXN``."""

    sender_address: int
    calldata: list[int]
    account_deployment_data: list[int] = field(default_factory=list)
    proof_facts: list[int] | None = None
    proof: str | None = None
    type: TxType = "INVOKE"

    @property
    def payer(self) -> int:
        return self.sender_address

    @property
    def size_felts(self) -> int:
        return len(self.calldata) + len(self.signature)

    def compute_hash(self, chain_id: int) -> int:
        return compute_invoke_v3_transaction_hash(
            account_deployment_data=self.account_deployment_data,
            calldata=self.calldata,
            common_fields=self._common(TransactionHashPrefix.INVOKE, self.sender_address, chain_id),
            proof_facts=self.proof_facts,
        )

    def to_rpc(self, tx_hash: int) -> dict[str, Any]:
        """``INVOKE_TXN_V3`` with its hash, as getTransactionByHash answers it."""
        body = self._common_json(tx_hash)
        body["sender_address"] = hex(self.sender_address)
        body["calldata"] = hex_list(self.calldata)
        body["account_deployment_data"] = hex_list(self.account_deployment_data)
        if self.proof_facts is not None:
            body["proof_facts"] = hex_list(self.proof_facts)
        return body


@dataclass(frozen=True, kw_only=True)
class DeclareV3Request(V3Transaction):
    """``BROADCASTED_DECLARE_TXN_V3``: the Sierra class and the compiled class hash the
    sender claims for its CASM (the node compiles and checks it)."""

    sender_address: int
    compiled_class_hash: int
    contract_class: dict[str, Any]
    account_deployment_data: list[int] = field(default_factory=list)
    class_hash: int = 0  # set by the node once computed
    type: TxType = "DECLARE"

    @property
    def payer(self) -> int:
        return self.sender_address

    @property
    def size_felts(self) -> int:
        return len(self.contract_class["sierra_program"]) + len(self.signature)

    def sierra_text(self) -> str:
        """The class as declared, ABI a string, as ``getClass`` returns it."""
        return json.dumps(self.contract_class, sort_keys=True)

    def compute_hash(self, chain_id: int) -> int:
        return compute_declare_v3_transaction_hash(
            class_hash=self.class_hash,
            account_deployment_data=self.account_deployment_data,
            compiled_class_hash=self.compiled_class_hash,
            common_fields=self._common(
                TransactionHashPrefix.DECLARE, self.sender_address, chain_id
            ),
        )

    def to_rpc(self, tx_hash: int) -> dict[str, Any]:
        """``DECLARE_TXN_V3`` (the class itself is served by getClass)."""
        body = self._common_json(tx_hash)
        body["sender_address"] = hex(self.sender_address)
        body["compiled_class_hash"] = hex(self.compiled_class_hash)
        body["class_hash"] = hex(self.class_hash)
        body["account_deployment_data"] = hex_list(self.account_deployment_data)
        return body


@dataclass(frozen=True, kw_only=True)
class DeployAccountV3Request(V3Transaction):
    """``DEPLOY_ACCOUNT_TXN_V3``: deploys an account at the address its class, salt and
    constructor calldata determine (deployer 0); the new account pays."""

    class_hash: int
    contract_address_salt: int
    constructor_calldata: list[int]
    type: TxType = "DEPLOY_ACCOUNT"

    @property
    def contract_address(self) -> int:
        return compute_address(
            class_hash=self.class_hash,
            constructor_calldata=self.constructor_calldata,
            salt=self.contract_address_salt,
            deployer_address=0,
        )

    @property
    def payer(self) -> int:
        return self.contract_address

    @property
    def size_felts(self) -> int:
        return len(self.constructor_calldata) + len(self.signature)

    def compute_hash(self, chain_id: int) -> int:
        return compute_deploy_account_v3_transaction_hash(
            class_hash=self.class_hash,
            constructor_calldata=self.constructor_calldata,
            contract_address_salt=self.contract_address_salt,
            common_fields=self._common(
                TransactionHashPrefix.DEPLOY_ACCOUNT, self.contract_address, chain_id
            ),
        )

    def to_rpc(self, tx_hash: int) -> dict[str, Any]:
        body = self._common_json(tx_hash)
        body["class_hash"] = hex(self.class_hash)
        body["contract_address_salt"] = hex(self.contract_address_salt)
        body["constructor_calldata"] = hex_list(self.constructor_calldata)
        return body


BroadcastedTx = InvokeV3Request | DeclareV3Request | DeployAccountV3Request


def _common_fields(obj: dict[str, Any], name: str) -> dict[str, Any]:
    version = parse_felt(require_key(obj, "version", name), f"{name}.version")
    if version not in (3, 3 + QUERY_VERSION_BASE):
        raise unsupported_tx_version(f"version {hex(version)}; this node executes v3 only")
    bounds = require_object(require_key(obj, "resource_bounds", name), f"{name}.resource_bounds")
    l1_data = bounds.get("l1_data_gas", {"max_amount": "0x0", "max_price_per_unit": "0x0"})
    return {
        "signature": _bounded_list(obj.get("signature", []), f"{name}.signature", MAX_SIGNATURE),
        "nonce": parse_felt(require_key(obj, "nonce", name), f"{name}.nonce"),
        "version": version,
        "tip": parse_uint(obj.get("tip", "0x0"), f"{name}.tip", U64_MAX),
        "resource_bounds": ResourceBoundsMapping(
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
        "paymaster_data": _bounded_list(
            obj.get("paymaster_data", []), f"{name}.paymaster_data", MAX_CALLDATA
        ),
        "nonce_data_availability_mode": _parse_da_mode(
            obj.get("nonce_data_availability_mode", "L1"), f"{name}.nonce_data_availability_mode"
        ),
        "fee_data_availability_mode": _parse_da_mode(
            obj.get("fee_data_availability_mode", "L1"), f"{name}.fee_data_availability_mode"
        ),
    }


def parse_invoke_v3(value: Any, name: str = "invoke_transaction") -> InvokeV3Request:
    obj = require_object(value, name)
    tx_type = obj.get("type", "INVOKE")
    if tx_type != "INVOKE":
        raise invalid_params(f"{name}.type: expected INVOKE, got {tx_type!r}")
    common = _common_fields(obj, name)
    proof_facts = obj.get("proof_facts")
    proof = obj.get("proof")
    if proof is not None and (not isinstance(proof, str) or len(proof) > MAX_PROOF_CHARS):
        raise invalid_params(f"{name}.proof: expected a base64 string of at most 1 MB")
    return InvokeV3Request(
        sender_address=parse_felt(
            require_key(obj, "sender_address", name), f"{name}.sender_address"
        ),
        calldata=_bounded_list(
            require_key(obj, "calldata", name), f"{name}.calldata", MAX_CALLDATA
        ),
        account_deployment_data=_bounded_list(
            obj.get("account_deployment_data", []),
            f"{name}.account_deployment_data",
            MAX_CALLDATA,
        ),
        proof_facts=None
        if proof_facts is None
        else _bounded_list(proof_facts, f"{name}.proof_facts", MAX_CALLDATA),
        proof=proof,
        **common,
    )


def _parse_contract_class(value: Any, name: str) -> dict[str, Any]:
    obj = require_object(value, name)
    program = _bounded_list(
        require_key(obj, "sierra_program", name), f"{name}.sierra_program", MAX_SIERRA_FELTS
    )
    version = require_key(obj, "contract_class_version", name)
    if not isinstance(version, str):
        raise invalid_params(f"{name}.contract_class_version: expected a string")
    entry_points = require_object(
        require_key(obj, "entry_points_by_type", name), f"{name}.entry_points_by_type"
    )
    parsed_entry_points: dict[str, list[dict[str, Any]]] = {}
    for kind in ("CONSTRUCTOR", "EXTERNAL", "L1_HANDLER"):
        items = entry_points.get(kind, [])
        if not isinstance(items, list):
            raise invalid_params(f"{name}.entry_points_by_type.{kind}: expected a list")
        parsed_entry_points[kind] = []
        for i, item in enumerate(items):
            where = f"{name}.entry_points_by_type.{kind}[{i}]"
            entry = require_object(item, where)
            index = require_key(entry, "function_idx", where)
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise invalid_params(f"{where}.function_idx: expected a non-negative integer")
            parsed_entry_points[kind].append(
                {
                    "selector": hex(parse_felt(require_key(entry, "selector", where), where)),
                    "function_idx": index,
                }
            )
    abi = obj.get("abi", "")
    if not isinstance(abi, str):
        abi = json.dumps(abi)
    return {
        "sierra_program": hex_list(program),
        "contract_class_version": version,
        "entry_points_by_type": parsed_entry_points,
        "abi": abi,
    }


def parse_declare_v3(value: Any, name: str = "declare_transaction") -> DeclareV3Request:
    obj = require_object(value, name)
    if obj.get("type", "DECLARE") != "DECLARE":
        raise invalid_params(f"{name}.type: expected DECLARE")
    common = _common_fields(obj, name)
    return DeclareV3Request(
        sender_address=parse_felt(
            require_key(obj, "sender_address", name), f"{name}.sender_address"
        ),
        compiled_class_hash=parse_felt(
            require_key(obj, "compiled_class_hash", name), f"{name}.compiled_class_hash"
        ),
        contract_class=_parse_contract_class(
            require_key(obj, "contract_class", name), f"{name}.contract_class"
        ),
        account_deployment_data=_bounded_list(
            obj.get("account_deployment_data", []),
            f"{name}.account_deployment_data",
            MAX_CALLDATA,
        ),
        **common,
    )


def parse_deploy_account_v3(
    value: Any, name: str = "deploy_account_transaction"
) -> DeployAccountV3Request:
    obj = require_object(value, name)
    if obj.get("type", "DEPLOY_ACCOUNT") != "DEPLOY_ACCOUNT":
        raise invalid_params(f"{name}.type: expected DEPLOY_ACCOUNT")
    common = _common_fields(obj, name)
    return DeployAccountV3Request(
        class_hash=parse_felt(require_key(obj, "class_hash", name), f"{name}.class_hash"),
        contract_address_salt=parse_felt(
            require_key(obj, "contract_address_salt", name), f"{name}.contract_address_salt"
        ),
        constructor_calldata=_bounded_list(
            require_key(obj, "constructor_calldata", name),
            f"{name}.constructor_calldata",
            MAX_CALLDATA,
        ),
        **common,
    )


def parse_broadcasted(value: Any, name: str) -> BroadcastedTx:
    """``BROADCASTED_TXN``: dispatch on ``type``."""
    obj = require_object(value, name)
    tx_type = obj.get("type")
    if tx_type == "INVOKE":
        return parse_invoke_v3(obj, name)
    if tx_type == "DECLARE":
        return parse_declare_v3(obj, name)
    if tx_type == "DEPLOY_ACCOUNT":
        return parse_deploy_account_v3(obj, name)
    raise invalid_params(f"{name}.type: expected INVOKE, DECLARE or DEPLOY_ACCOUNT")


def from_stored(obj: dict[str, Any], contract_class: dict[str, Any] | None = None) -> BroadcastedTx:
    """Reload a transaction as :meth:`to_rpc` stored it (a declare needs its class back)."""
    if obj.get("type") == "DECLARE":
        body = {**obj, "contract_class": contract_class}
        tx = parse_declare_v3(body)
        return DeclareV3Request(
            **{**tx.__dict__, "class_hash": parse_felt(obj["class_hash"], "class_hash")}
        )
    return parse_broadcasted(obj, "transaction")

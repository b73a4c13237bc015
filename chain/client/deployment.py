"""Where the Keiko contracts live on a chain: ``deployment.json``.

The dev node writes it at genesis; for another chain (Madara, Katana, devnet) write
the same file by hand or pass the addresses explicitly::

    {"chain_id": "0x...", "contracts": {
        "humanity_registry": {"address": "0x...", "class_hash": "0x..."},
        "interaction_anchor": {"address": "0x...", "class_hash": "0x..."},
        "governance": {"address": "0x...", "class_hash": "0x..."}}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGISTRY = "humanity_registry"
ANCHOR = "interaction_anchor"
GOVERNANCE = "governance"
CONTRACT_NAMES = (REGISTRY, ANCHOR, GOVERNANCE)


def _felt(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            pass
    raise ValueError(f"deployment: {what} is not a felt: {value!r}")


@dataclass(frozen=True)
class ContractRef:
    address: int
    class_hash: int | None = None


@dataclass(frozen=True)
class Deployment:
    contracts: dict[str, ContractRef]
    chain_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def address_of(self, name: str) -> int:
        try:
            return self.contracts[name].address
        except KeyError:
            raise KeyError(f"deployment has no contract {name!r}") from None

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Deployment:
        raw = body.get("contracts")
        if not isinstance(raw, Mapping):
            raise ValueError("deployment: 'contracts' must be an object")
        contracts = {}
        for name, info in raw.items():
            if isinstance(info, Mapping):
                class_hash = info.get("class_hash")
                contracts[str(name)] = ContractRef(
                    address=_felt(info.get("address"), f"{name}.address"),
                    class_hash=None
                    if class_hash is None
                    else _felt(class_hash, f"{name}.class_hash"),
                )
            else:
                contracts[str(name)] = ContractRef(address=_felt(info, f"{name}"))
        chain_id = body.get("chain_id")
        return cls(
            contracts=contracts,
            chain_id=None if chain_id is None else _felt(chain_id, "chain_id"),
            extra={k: v for k, v in body.items() if k not in ("contracts", "chain_id")},
        )

    @classmethod
    def from_file(cls, path: Path | str) -> Deployment:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_addresses(cls, **addresses: int) -> Deployment:
        """``Deployment.from_addresses(interaction_anchor=0x..., ...)``."""
        return cls(contracts={name: ContractRef(addr) for name, addr in addresses.items()})

    @classmethod
    def load(cls, source: Deployment | Path | str | Mapping[str, Any]) -> Deployment:
        if isinstance(source, Deployment):
            return source
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        return cls.from_file(source)

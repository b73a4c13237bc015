"""Decoding of Keiko contract events from their ABI.

A Cairo 2 event has ``keys[0] = sn_keccak(<variant name>)``; the members marked
``#[key]`` follow in ``keys``, the others are in ``data``, each in declaration order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starknet_py.contract import Contract
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.serialization._context import DeserializationContext
from starknet_py.serialization.data_serializers.payload_serializer import PayloadSerializer
from starknet_py.serialization.factory import serializer_for_event


@dataclass(frozen=True)
class ChainEvent:
    """A decoded event; ``block_number``/``tx_hash`` are set when read from the chain."""

    contract: str
    name: str
    from_address: int
    values: dict[str, Any]
    keys: list[int]
    data: list[int]
    block_number: int | None = None
    block_hash: int | None = None
    tx_hash: int | None = None

    def __getitem__(self, member: str) -> Any:
        return self.values[member]


@dataclass(frozen=True)
class _EventSpec:
    name: str
    serializer: PayloadSerializer
    kinds: dict[str, str]


class EventDecoder:
    """Decodes the events of one contract (by the ABI of its starknet-py ``Contract``)."""

    def __init__(self, contract_name: str, contract: Contract) -> None:
        self.contract_name = contract_name
        self.address = contract.address
        self._by_selector: dict[int, _EventSpec] = {}
        kinds_by_name: dict[str, dict[str, str]] = {}
        for entry in contract.data.abi:
            if entry.get("type") == "event" and entry.get("kind") == "struct":
                kinds_by_name[entry["name"]] = {
                    m["name"]: m.get("kind", "data") for m in entry.get("members", [])
                }
        for full_name, event_type in contract.data.parsed_abi.events.items():
            if full_name not in kinds_by_name:
                continue  # the enum of all events, not an event struct
            short = full_name.rsplit("::", 1)[-1]
            self._by_selector[get_selector_from_name(short)] = _EventSpec(
                name=short,
                serializer=serializer_for_event(event_type),
                kinds=kinds_by_name[full_name],
            )

    def selector_of(self, name: str) -> int:
        for selector, spec in self._by_selector.items():
            if spec.name == name:
                return selector
        raise KeyError(f"{self.contract_name} has no event {name!r}")

    @property
    def event_names(self) -> list[str]:
        return [spec.name for spec in self._by_selector.values()]

    def decode(
        self,
        from_address: int,
        keys: list[int],
        data: list[int],
        *,
        block_number: int | None = None,
        block_hash: int | None = None,
        tx_hash: int | None = None,
    ) -> ChainEvent | None:
        """The decoded event, or None for an event this ABI does not describe."""
        if not keys or keys[0] not in self._by_selector:
            return None
        spec = self._by_selector[keys[0]]
        values: dict[str, Any] = {}
        try:
            with (
                DeserializationContext.create(keys[1:]) as key_ctx,
                DeserializationContext.create(data) as data_ctx,
            ):
                for member, serializer in spec.serializer.serializers.items():
                    ctx = key_ctx if spec.kinds.get(member) == "key" else data_ctx
                    values[member] = serializer.deserialize_with_context(ctx)
        except Exception:
            return None
        return ChainEvent(
            contract=self.contract_name,
            name=spec.name,
            from_address=from_address,
            values=values,
            keys=list(keys),
            data=list(data),
            block_number=block_number,
            block_hash=block_hash,
            tx_hash=tx_hash,
        )

"""The JSON-RPC method table: each handler with its parameter names in spec order.

Handlers live in :mod:`chain.node.read_api`, :mod:`chain.node.write_api` and
:mod:`chain.node.devnet_api`; each parses its params (by name or by position, as JSON-RPC
allows) and calls the :class:`~chain.node.node.DevNode`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chain.node.codec import PRE_CONFIRMED, BlockId, parse_block_id
from chain.node.errors import invalid_params

if TYPE_CHECKING:
    from chain.node.node import DevNode

Handler = Callable[["DevNode", dict[str, Any]], Any]

METHODS: dict[str, tuple[tuple[str, ...], Handler]] = {}


def method(name: str, *params: str) -> Callable[[Handler], Handler]:
    """Register ``name`` with its parameter names in spec order."""

    def register(fn: Handler) -> Handler:
        METHODS[name] = (params, fn)
        return fn

    return register


def block_id_param(p: dict[str, Any], required: bool = True) -> BlockId:
    if "block_id" not in p:
        if required:
            raise invalid_params("block_id: missing")
        return PRE_CONFIRMED
    return parse_block_id(p["block_id"])


def required(p: dict[str, Any], key: str) -> Any:
    if key not in p:
        raise invalid_params(f"{key}: missing")
    return p[key]


def flags_param(p: dict[str, Any], key: str, allowed: tuple[str, ...]) -> set[str]:
    flags = p.get(key) or []
    if not isinstance(flags, list) or any(f not in allowed for f in flags):
        raise invalid_params(f"{key}: expected a list of {', '.join(allowed)}")
    return set(flags)

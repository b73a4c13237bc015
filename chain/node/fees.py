"""The dev chain's gas model and prices (FRI).

Keikochain dev node prices are fixed. Gas is derived from what the Cairo VM measured:

* L2 gas: ``L2_GAS_PER_STEP`` per Cairo VM step of ``__validate__`` and ``__execute__``
  (Starknet's own step weight), plus ``L2_GAS_PER_TX_FELT`` per calldata and signature felt;
* L1 data gas: ``DATA_GAS_PER_FELT`` per felt of the transaction's state diff (a storage
  write is two felts, key and value; the nonce update is two, address and nonce);
* L1 gas: 0 (no L2 -> L1 messages on Keikochain).

The fee is paid in the STRK fee token (fri): the node transfers it from the paying account
to the sequencer address (see :mod:`chain.node.execution`). That transfer's own two balance
cells are counted in the data gas (``FEE_TRANSFER_DIFF_FELTS``), so a fee estimate equals
the fee the transaction is then charged.
"""

from __future__ import annotations

from dataclasses import dataclass

from starknet_py.net.client_models import ResourceBoundsMapping

L2_GAS_PER_STEP = 100
L2_GAS_PER_TX_FELT = 100
DATA_GAS_PER_FELT = 32
FEE_TRANSFER_DIFF_FELTS = 4

L1_GAS_PRICE_FRI = 1_000_000_000
L1_GAS_PRICE_WEI = 1_000_000
L1_DATA_GAS_PRICE_FRI = 1_000
L1_DATA_GAS_PRICE_WEI = 1
L2_GAS_PRICE_FRI = 100_000
L2_GAS_PRICE_WEI = 100


@dataclass(frozen=True)
class GasUsage:
    l1_gas: int
    l1_data_gas: int
    l2_gas: int

    @property
    def fee_fri(self) -> int:
        return (
            self.l1_gas * L1_GAS_PRICE_FRI
            + self.l1_data_gas * L1_DATA_GAS_PRICE_FRI
            + self.l2_gas * L2_GAS_PRICE_FRI
        )

    def to_estimate(self) -> dict[str, object]:
        """``FEE_ESTIMATE`` of the spec (0.10)."""
        return {
            "l1_gas_consumed": hex(self.l1_gas),
            "l1_gas_price": hex(L1_GAS_PRICE_FRI),
            "l2_gas_consumed": hex(self.l2_gas),
            "l2_gas_price": hex(L2_GAS_PRICE_FRI),
            "l1_data_gas_consumed": hex(self.l1_data_gas),
            "l1_data_gas_price": hex(L1_DATA_GAS_PRICE_FRI),
            "overall_fee": hex(self.fee_fri),
            "unit": "FRI",
        }

    def to_resources(self) -> dict[str, int]:
        return {"l1_gas": self.l1_gas, "l1_data_gas": self.l1_data_gas, "l2_gas": self.l2_gas}


def gas_usage(n_steps: int, tx_felts: int, state_diff_felts: int) -> GasUsage:
    return GasUsage(
        l1_gas=0,
        l1_data_gas=DATA_GAS_PER_FELT * state_diff_felts,
        l2_gas=L2_GAS_PER_STEP * n_steps + L2_GAS_PER_TX_FELT * tx_felts,
    )


def price_shortfall(bounds: ResourceBoundsMapping) -> str | None:
    """Why the bounds' prices are below the chain's prices, or None if they cover them."""
    checks = (
        ("L1 gas", bounds.l1_gas.max_price_per_unit, L1_GAS_PRICE_FRI),
        ("L2 gas", bounds.l2_gas.max_price_per_unit, L2_GAS_PRICE_FRI),
        ("L1 data gas", bounds.l1_data_gas.max_price_per_unit, L1_DATA_GAS_PRICE_FRI),
    )
    for name, offered, price in checks:
        if offered < price:
            return f"max {name} price {offered} is below the current price {price}"
    return None


def amount_shortfall(bounds: ResourceBoundsMapping, usage: GasUsage) -> str | None:
    """Why ``usage`` exceeds the bounds' amounts, or None."""
    checks = (
        ("L1Gas", bounds.l1_gas.max_amount, usage.l1_gas),
        ("L2Gas", bounds.l2_gas.max_amount, usage.l2_gas),
        ("L1DataGas", bounds.l1_data_gas.max_amount, usage.l1_data_gas),
    )
    for name, limit, used in checks:
        if used > limit:
            return f"Insufficient max {name}: max amount: {limit}, actual used: {used}."
    return None


def resource_price(fri: int, wei: int) -> dict[str, str]:
    return {"price_in_fri": hex(fri), "price_in_wei": hex(wei)}


def block_prices() -> dict[str, dict[str, str]]:
    return {
        "l1_gas_price": resource_price(L1_GAS_PRICE_FRI, L1_GAS_PRICE_WEI),
        "l2_gas_price": resource_price(L2_GAS_PRICE_FRI, L2_GAS_PRICE_WEI),
        "l1_data_gas_price": resource_price(L1_DATA_GAS_PRICE_FRI, L1_DATA_GAS_PRICE_WEI),
    }

"""Reused fee estimates of ``anchor_batch`` sends (what a production relayer does).

Estimating a transaction's fee executes it on the node: estimating every send doubled
the node's work per batch (py-spy of the node under ``scripts/bench/ingest.py``: fee
estimation was about a third of its CPU). So the anchoring engine keeps the last estimate
per *band* (the batch's domain and its leaf count rounded to a power of two: what a
transaction costs depends on its calldata and writes, and a contract may charge per leaf)
and sends with resource bounds of that estimate times ``margin``, in amounts and in unit
prices. Starknet charges the fee the transaction actually used at the block's prices, not
its bounds (the Keikochain dev node does too, :mod:`chain.node.execution`): the margin
only raises the maximal fee, which the account's balance must cover.

A band with no estimate of its own reuses the smallest fresh estimate of a larger band of
its domain: a transaction's gas does not fall as its batch grows, so those bounds cover it
(only its maximal fee is higher; the fee charged is what it used). After a burst of large
batches the next small ones are not estimated again, nor after a restart when the first
batch is large.

An estimate is refreshed after ``refresh_sends`` sends or ``refresh_after`` (prices and
state move), and at once when a send is refused for its resources (bounds below the
current prices or the validation's gas) or reverted for want of gas: that batch is then
re-sent with a fresh estimate, see :meth:`AnchoringEngine._send
<chain.translator.anchoring.AnchoringEngine>`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from starknet_py.net.client_models import EstimatedFee, ResourceBoundsMapping

from chain.client import TransactionRejected
from chain.client.core import INSUFFICIENT_RESOURCES_FOR_VALIDATE
from services.kit.clock import Clock

# Revert reasons of a transaction that ran out of its bounds (the dev node's and
# Starknet's "Insufficient max L2Gas: ...", Starknet's "Out of gas").
_OUT_OF_GAS = ("insufficient max", "out of gas")


@dataclass(frozen=True)
class FeeReusePolicy:
    """``enabled=False``: every send is estimated first (one more execution each)."""

    enabled: bool = True
    # Bounds = estimate x margin, amounts and unit prices alike: room for state-dependent
    # gas and for gas prices rising between refreshes.
    margin: float = 1.5
    refresh_sends: int = 100
    refresh_after: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.margin < 1.0:
            raise ValueError(f"fee margin must be at least 1.0, got {self.margin}")
        if self.refresh_sends < 1:
            raise ValueError(f"refresh_sends must be at least 1, got {self.refresh_sends}")


Band = tuple[str, int]


def band_of(domain: str | int, leaf_count: int) -> Band:
    """Batches of one domain whose leaf counts lie in one power-of-two range."""
    return (str(domain), max(leaf_count, 1).bit_length())


@dataclass
class _Cached:
    bounds: ResourceBoundsMapping
    estimated_at: datetime
    sends: int = 0


class AnchorFees:
    """The bounds to send each band's batches with, from its last estimate."""

    def __init__(self, policy: FeeReusePolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        self._bands: dict[Band, _Cached] = {}
        self._locks: dict[Band, asyncio.Lock] = {}

    def estimating(self, band: Band) -> asyncio.Lock:
        """Held while ``band`` is estimated, so that concurrent sends make one estimate."""
        return self._locks.setdefault(band, asyncio.Lock())

    def bounds(self, band: Band) -> ResourceBoundsMapping | None:
        """Bounds for one more send of ``band`` (its own estimate, else a larger band's of
        the same domain), or None when it needs a (fresh) estimate."""
        if not self.policy.enabled:
            return None
        domain, size = band
        for candidate in sorted(b for b in self._bands if b[0] == domain and b[1] >= size):
            cached = self._bands[candidate]
            if self._stale(cached):
                del self._bands[candidate]
                continue
            cached.sends += 1
            return cached.bounds
        return None

    def _stale(self, cached: _Cached) -> bool:
        return (
            cached.sends >= self.policy.refresh_sends
            or self.clock.now() - cached.estimated_at >= self.policy.refresh_after
        )

    def learn(self, band: Band, estimate: EstimatedFee) -> ResourceBoundsMapping:
        """Keep ``estimate`` for ``band``; the bounds of the send it was made for."""
        margin = self.policy.margin
        bounds = estimate.to_resource_bounds(amount_multiplier=margin, unit_price_multiplier=margin)
        self._bands[band] = _Cached(bounds, self.clock.now(), sends=1)
        return bounds

    def forget(self, band: Band) -> None:
        """Drop ``band``'s estimate and the larger bands' of its domain (a send of ``band``
        may have used one of those: none of them is trusted any more)."""
        domain, size = band
        for stale in [b for b in self._bands if b[0] == domain and b[1] >= size]:
            del self._bands[stale]

    def known(self) -> dict[Band, ResourceBoundsMapping]:
        return {band: cached.bounds for band, cached in self._bands.items()}


def refused_for_fee(exc: BaseException) -> bool:
    """The node refused the transaction for its resource bounds (prices or gas)."""
    # starknet-py gives the code as an int or as its text.
    return isinstance(exc, TransactionRejected) and str(exc.code) == str(
        INSUFFICIENT_RESOURCES_FOR_VALIDATE
    )


def reverted_for_fee(revert_reason: str | None) -> bool:
    """The transaction was included but ran out of the gas its bounds allowed."""
    reason = (revert_reason or "").lower()
    return any(marker in reason for marker in _OUT_OF_GAS)


__all__ = [
    "AnchorFees",
    "Band",
    "FeeReusePolicy",
    "band_of",
    "refused_for_fee",
    "reverted_for_fee",
]

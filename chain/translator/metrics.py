"""Prometheus metrics of the anchoring pipeline (served by the gateway's /metrics).

The circuit breaker has no field in ``GetChainInfoResponse`` yet; operators read it here
(``keiko_chain_breaker_state``) and through ``AnchoringEngine.status()``.
"""

from __future__ import annotations

from prometheus_client import Counter, Enum, Histogram

BREAKER_STATE = Enum(
    "keiko_chain_breaker",
    "State of the chain circuit breaker of the anchoring engine.",
    states=["closed", "open", "half_open"],
)
BATCHES_SEALED = Counter("keiko_chain_batches_sealed_total", "Batches sealed.", ["domain"])
BATCHES_SENT = Counter(
    "keiko_chain_batches_sent_total", "anchor_batch transactions that succeeded."
)
BATCHES_CONFIRMED = Counter(
    "keiko_chain_batches_confirmed_total", "Batches confirmed on chain.", ["source"]
)
ATTEMPT_FAILURES = Counter(
    "keiko_chain_anchor_attempt_failures_total", "Failed anchoring attempts.", ["kind"]
)
SEND_SECONDS = Histogram(
    "keiko_chain_anchor_send_seconds",
    "Time of one anchor_batch call (sign, send, receipt).",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
FEE_ESTIMATES = Counter(
    "keiko_chain_fee_estimates_total",
    "Fee estimates of anchor_batch sends (each one more execution on the node), by why: "
    "refresh (no fresh estimate for the batch's band), refused or reverted (a reused "
    "estimate no longer covered the send).",
    ["reason"],
)

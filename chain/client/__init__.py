"""Typed Keikochain client over starknet-py (any Starknet JSON-RPC 0.10 endpoint)."""

from chain.client.contracts import (
    DOMAINS,
    AnchorContract,
    AnchoredBatch,
    AnchoredRecord,
    ContractBinding,
    EventPage,
    GovernanceContract,
    KeyBinding,
    KeyRegistration,
    Proposal,
    RegistryContract,
    decode_short_string,
    short_string,
)
from chain.client.core import (
    CallFailed,
    ExecutionFailed,
    FeePolicy,
    KeikoChain,
    KeikoChainError,
    TransactionRejected,
    TxResult,
)
from chain.client.deployment import ContractRef, Deployment
from chain.client.events import ChainEvent

__all__ = [
    "DOMAINS",
    "AnchorContract",
    "AnchoredBatch",
    "AnchoredRecord",
    "CallFailed",
    "ChainEvent",
    "ContractBinding",
    "ContractRef",
    "Deployment",
    "EventPage",
    "ExecutionFailed",
    "FeePolicy",
    "GovernanceContract",
    "KeikoChain",
    "KeikoChainError",
    "KeyBinding",
    "KeyRegistration",
    "Proposal",
    "RegistryContract",
    "TransactionRejected",
    "TxResult",
    "decode_short_string",
    "short_string",
]

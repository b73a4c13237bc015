"""On-chain voting through the governance Cairo contract (contracts/src/governance.cairo).

What is done on chain for a VOTING_MODE_ON_CHAIN community:

- CreateProposal creates the proposal in the contract (metadata hash, option count,
  voting window as unix seconds, quorum as a number of votes) from the service's account
  and stores the contract's proposal id;
- votes are cast by each voter's own Starknet account (the contract requires the caller
  to be registered in the humanity registry): the service does not vote for anyone,
  so CastVote answers FAILED_PRECONDITION for on-chain proposals until Keiko-custodied
  voting accounts exist;
- FinalizeProposal calls `finalize` (or finds it already finalized) and reads the
  per-option totals back from the chain: the tally of an on-chain proposal is the
  chain's, and the finalize transaction is its anchor.

`OnChainVoting` is the port the service uses; `ContractVoting` implements it with the
starknet-py binding (`chain.client`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from services.kit.errors import FailedPrecondition, Unavailable

if TYPE_CHECKING:
    from chain.client.core import KeikoChain, TxResult

T = TypeVar("T")


@dataclass(frozen=True)
class ChainProposal:
    onchain_id: str  # hex felt
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class ChainResult:
    votes: tuple[int, ...]  # per option
    total_votes: int
    succeeded: bool
    winning_option: int
    tx_hash: str  # the finalize transaction ("" if it was finalized by someone else)
    block_number: int


class OnChainVoting(Protocol):
    async def create_proposal(
        self,
        *,
        metadata_hash: int,
        options_count: int,
        starts_at: datetime,
        ends_at: datetime,
        quorum_votes: int,
    ) -> ChainProposal: ...

    async def finalize(self, onchain_id: str, options_count: int) -> ChainResult: ...

    async def read_votes(self, onchain_id: str, options_count: int) -> tuple[tuple[int, ...], int]:
        """Votes per option and the total so far."""
        ...


def metadata_hash(proposal_id: str, title: str, body: str, labels: list[str]) -> int:
    """SHA-256 of the canonical proposal metadata, reduced to 250 bits (a felt)."""
    canonical = json.dumps(
        {"proposal_id": proposal_id, "title": title, "body": body, "options": labels},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return int.from_bytes(hashlib.sha256(canonical).digest(), "big") >> 6


def quorum_votes(quorum_bps: int, eligible_voters: int) -> int:
    """The contract counts quorum in votes: the least count meeting quorum_bps."""
    return math.ceil(quorum_bps * eligible_voters / 10_000)


# Contract panics that mean the request does not fit the proposal's state.
_PRECONDITIONS = (
    "voting window in the past",
    "invalid voting window",
    "voting still open",
    "too many options",
    "too few options",
    "already finalized",
)


class ContractVoting:
    """`OnChainVoting` over a `KeikoChain` (the service's own account). Give a connected
    chain, or `connect`: an async factory called on first use (the composition root
    builds servicers synchronously)."""

    def __init__(
        self,
        chain: KeikoChain | None = None,
        *,
        connect: Callable[[], Awaitable[KeikoChain]] | None = None,
    ) -> None:
        if (chain is None) == (connect is None):
            raise ValueError("give a chain or a connect factory")
        self._chain = chain
        self._connect = connect
        self._lock = asyncio.Lock()

    async def _get_chain(self) -> KeikoChain:
        if self._chain is None:
            async with self._lock:
                if self._chain is None:
                    assert self._connect is not None
                    try:
                        self._chain = await self._connect()
                    except Exception as err:
                        raise Unavailable(f"cannot connect to Keikochain: {err}") from err
        return self._chain

    async def create_proposal(
        self,
        *,
        metadata_hash: int,
        options_count: int,
        starts_at: datetime,
        ends_at: datetime,
        quorum_votes: int,
    ) -> ChainProposal:
        result = await self._invoke(
            "create_proposal",
            metadata_hash=metadata_hash,
            options_count=options_count,
            start=int(starts_at.timestamp()),
            end=int(ends_at.timestamp()),
            quorum=quorum_votes,
        )
        created = result.event("ProposalCreated")
        if created is None:
            raise Unavailable("the governance contract did not report the new proposal")
        return ChainProposal(
            onchain_id=hex(int(created["proposal_id"])),
            tx_hash=hex(result.tx_hash),
            block_number=result.block_number or 0,
        )

    async def finalize(self, onchain_id: str, options_count: int) -> ChainResult:
        governance = (await self._get_chain()).governance
        proposal_id = int(onchain_id, 16)
        current = await self._guard(governance.get_proposal(proposal_id))
        if current is None:
            raise FailedPrecondition(f"proposal {onchain_id} does not exist on chain")
        tx_hash, block = "", 0
        if not current.finalized:
            try:
                result = await self._invoke("finalize", proposal_id=proposal_id)
            except FailedPrecondition as err:
                if "already finalized" not in err.message:
                    raise
                # finalized by someone else meanwhile: read it back
            else:
                tx_hash, block = hex(result.tx_hash), result.block_number or 0
            current = await self._guard(governance.get_proposal(proposal_id))
            assert current is not None
        votes = tuple(
            [
                await self._guard(governance.get_votes(proposal_id, option))
                for option in range(options_count)
            ]
        )
        return ChainResult(
            votes=votes,
            total_votes=current.total_votes,
            succeeded=current.outcome == "succeeded",
            winning_option=current.winning_option,
            tx_hash=tx_hash,
            block_number=block,
        )

    async def read_votes(self, onchain_id: str, options_count: int) -> tuple[tuple[int, ...], int]:
        governance = (await self._get_chain()).governance
        proposal_id = int(onchain_id, 16)
        current = await self._guard(governance.get_proposal(proposal_id))
        if current is None:
            raise FailedPrecondition(f"proposal {onchain_id} does not exist on chain")
        votes = tuple(
            [
                await self._guard(governance.get_votes(proposal_id, option))
                for option in range(options_count)
            ]
        )
        return votes, current.total_votes

    async def _invoke(self, function: str, **kwargs: int) -> TxResult:
        from chain.client.core import ExecutionFailed, KeikoChainError

        try:
            chain = await self._get_chain()
            result = await chain.governance.invoke(function, **kwargs)
        except ExecutionFailed as err:
            if any(reason in err.reason for reason in _PRECONDITIONS):
                raise FailedPrecondition(f"governance contract: {err.reason}") from err
            raise Unavailable(f"governance contract refused {function}: {err.reason}") from err
        except KeikoChainError as err:
            raise Unavailable(f"chain unavailable: {err}") from err
        if not result.succeeded:
            raise Unavailable(f"{function} reverted: {result.revert_reason}")
        return result

    @staticmethod
    async def _guard(call: Awaitable[T]) -> T:
        from chain.client.core import KeikoChainError

        try:
            return await call
        except KeikoChainError as err:
            raise Unavailable(f"chain unavailable: {err}") from err

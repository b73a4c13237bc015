"""On-chain voting through the governance Cairo contract (contracts/src/governance.cairo).

What is done on chain for a VOTING_MODE_ON_CHAIN community:

- CreateProposal creates the proposal in the contract (metadata hash, option count,
  voting window as unix seconds, quorum as a number of votes) from the service's account
  and stores the contract's proposal id;
- votes are cast by each voter's own Starknet account, the one their humanity is
  registered from (the contract counts one vote per registered human): CastVote, after
  the service's own checks (verified human member, window, ballot), asks the chain
  translator's CastGovernanceVote to sign the vote with the voter's account
  (`TranslatorBallots`), naming the voter by the humanity commitment identity announced;
  a deployment without the translator answers FAILED_PRECONDITION;
- FinalizeProposal calls `finalize` (or finds it already finalized) and reads the
  per-option totals back from the chain: the tally of an on-chain proposal is the
  chain's, and the finalize transaction is its anchor.

`OnChainVoting` is the port the service uses; `ContractVoting` implements it with the
starknet-py binding (`chain.client`) for the proposal's lifecycle and `TranslatorBallots`
for the votes; `platform_voting` wires both on a platform with a chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

import grpc

from services.kit.auth import Principal, TokenIssuer
from services.kit.errors import (
    DomainError,
    FailedPrecondition,
    PermissionDenied,
    Unavailable,
    ValidationError,
)
from services.kit.grpc.client import ChannelOpener, LazyChannel, channel_opener, open_channel

if TYPE_CHECKING:
    from chain.client.core import KeikoChain, TxResult
    from services.kit.runtime import ServiceRuntime

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

    async def cast_vote(
        self, onchain_id: str, voter_commitment: str, option: int, request_id: str
    ) -> str:
        """Cast one voter's vote for one option from the voter's own account; the vote's
        transaction hash (the first one if this voter already voted)."""
        ...


class BallotBox(Protocol):
    async def cast(
        self, onchain_id: str, voter_commitment: str, option: int, request_id: str
    ) -> str: ...


# The translator's refusals, as the governance service's own errors.
_BALLOT_ERRORS: dict[grpc.StatusCode, Callable[[str], DomainError]] = {
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.NOT_FOUND: lambda m: FailedPrecondition(
        f"your proof of humanity is not registered on chain: {m}"
    ),
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.INVALID_ARGUMENT: lambda m: ValidationError("choices", m),
}


class TranslatorBallots:
    """Votes through the chain translator's CastGovernanceVote, which signs each with the
    voter's own Starknet account. ``token`` returns a service access token (the
    translator casts for any voter only for Keiko's services)."""

    def __init__(
        self,
        target: str,
        token: Callable[[], str],
        *,
        timeout: float = 120.0,
        channel: grpc.aio.Channel | None = None,
        connect: ChannelOpener = open_channel,
    ) -> None:
        self.translator = LazyChannel(target, connect, channel)
        self._token = token
        self.timeout = timeout

    async def cast(
        self, onchain_id: str, voter_commitment: str, option: int, request_id: str
    ) -> str:
        from services.api.keiko.chain import v1 as chain_pb

        client = self.translator.stub(
            chain_pb.ChainServiceStub, access_token=self._token(), timeout=self.timeout
        )
        try:
            reply = await client.cast_governance_vote(
                chain_pb.CastGovernanceVoteRequest(
                    onchain_proposal_id=onchain_id,
                    voter_commitment=voter_commitment,
                    votes=[chain_pb.OptionVotes(option_index=option, votes_milli=1000)],
                    request_id=request_id,
                )
            )
        except grpc.aio.AioRpcError as error:
            details = error.details() or ""
            make = _BALLOT_ERRORS.get(error.code())
            if make is not None:
                raise make(details) from None
            raise Unavailable(f"the chain translator could not cast the vote: {details}") from None
        return reply.tx_hash


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
        ballots: BallotBox | None = None,
    ) -> None:
        if (chain is None) == (connect is None):
            raise ValueError("give a chain or a connect factory")
        self._chain = chain
        self._connect = connect
        self._ballots = ballots
        self._lock = asyncio.Lock()

    async def cast_vote(
        self, onchain_id: str, voter_commitment: str, option: int, request_id: str
    ) -> str:
        if self._ballots is None:
            raise FailedPrecondition(
                "this deployment cannot cast on-chain votes for its users: vote from your "
                f"own Starknet account with cast_vote on the governance contract ({onchain_id})"
            )
        return await self._ballots.cast(onchain_id, voter_commitment, option, request_id)

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


SERVICE_PRINCIPAL = Principal("keiko-governance", frozenset({"service"}))


def platform_voting(runtime: ServiceRuntime) -> ContractVoting | None:
    """VOTING_MODE_ON_CHAIN on a platform with a chain (``settings.chain_rpc_url``) and a
    JWT signing key, else None (the mode is refused). Proposals are created and finalized
    by the chain operator's account (``chain_config_from_env``: the translator's); each
    vote is signed by the voter's own account through the translator
    (``settings.chain_translator_target``, default the platform's gRPC target), with the
    governance service's own token."""
    settings = runtime.settings
    private_pem: bytes | None = getattr(runtime, "jwt_private_key_pem", None)
    if not settings.chain_rpc_url or private_pem is None:
        return None
    from chain.client.core import KeikoChain
    from chain.translator.ports import chain_config_from_env

    config = chain_config_from_env(data_dir=settings.data_dir, rpc_url=settings.chain_rpc_url)
    account = config.account

    async def connect() -> KeikoChain:
        if account is None:
            raise Unavailable("no chain account is configured (KEIKO_CHAIN_ACCOUNT_ADDRESS)")
        return await KeikoChain.connect(
            config.rpc_url, account.address, account.private_key, config.deployment_file
        )

    issuer = TokenIssuer(private_pem, runtime.clock, timedelta(minutes=5))
    target = settings.chain_translator_target or settings.gateway_target
    ballots = TranslatorBallots(
        target, lambda: issuer.issue(SERVICE_PRINCIPAL).token, connect=channel_opener(runtime)
    )
    return ContractVoting(connect=connect, ballots=ballots)

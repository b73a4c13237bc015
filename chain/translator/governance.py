"""On-chain governance through the translator (the governance contract,
``contracts/src/governance.cairo``): CreateGovernanceProposal, CastGovernanceVote and
FinalizeGovernanceProposal.

* A proposal is created by the translator's operator account (trusted callers only); its
  quorum, given in basis points, becomes a number of votes over the humans registered on
  chain when it is created (the contract counts votes). A retry with the same request id
  returns the first proposal.
* A vote is signed by the voter's own Starknet account (their learner account, the one
  their humanity is registered from: the contract counts only registered humans, one vote
  each). The voter is named by their humanity commitment. A learner may vote for
  themselves; Keiko's services (governance, after checking membership) for any voter. The
  contract counts one vote for one option: the ballot must give a single option 1000
  thousandths. A voter who already voted gets the transaction of their vote back.
* Finalizing is open to trusted callers; the contract computes the outcome itself, and a
  request naming another outcome than the chain's is refused after the fact is recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from chain.client import ExecutionFailed, KeikoChain, TransactionRejected, TxResult
from chain.translator.access import is_trusted, require_trusted
from chain.translator.felts import felt_to_hex, parse_felt
from chain.translator.learner_accounts import LearnerAccounts
from chain.translator.onchain_tables import governance_proposals
from chain.translator.ports import ChainConnection
from chain.translator.storage import ANCHORED, ChainStore
from services.kit.auth import Principal
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation
from services.kit.errors import (
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
    ValidationError,
)

FULL_VOTE_MILLI = 1000
MAX_OPTIONS = 32
MAX_TEXT = 200
OUTCOMES = {1: "defeated", 2: "succeeded"}
# Contract panics that mean the request does not fit the proposal's state.
_PRECONDITIONS = (
    "voting not started",
    "voting closed",
    "voting still open",
    "voting window in the past",
    "invalid voting window",
    "already finalized",
    "invalid option",
    "unknown proposal",
    "caller is not human",
    "too many options",
    "too few options",
)


@dataclass(frozen=True)
class ProposalCreated:
    onchain_proposal_id: int
    tx_hash: int


def _text(value: str, field: str) -> str:
    if not value.strip():
        raise ValidationError(field, "is required")
    if len(value) > MAX_TEXT:
        raise ValidationError(field, f"must be at most {MAX_TEXT} characters")
    return value


def _u64_id(text: str, field: str) -> int:
    value = parse_felt(text, field)
    if value == 0 or value >= 2**64:
        raise ValidationError(field, "must be a proposal id of the governance contract")
    return value


def _seconds(moment: datetime | None, field: str) -> int:
    if moment is None:
        raise ValidationError(field, "is required")
    return int(moment.timestamp())


class OnChainGovernance:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        store: ChainStore,
        accounts: LearnerAccounts,
        operator: ChainConnection,
    ) -> None:
        self.db = db
        self.clock = clock
        self.store = store
        self.accounts = accounts
        self.operator = operator

    async def _send(self, sending: object) -> TxResult:
        try:
            result: TxResult = await sending  # type: ignore[misc]
        except ExecutionFailed as exc:
            if any(reason in exc.reason for reason in _PRECONDITIONS):
                raise FailedPrecondition(f"governance contract: {exc.reason}") from None
            raise Unavailable(f"governance contract refused: {exc.reason}") from None
        except TransactionRejected as exc:
            raise Unavailable(f"the chain refused the transaction: {exc.message}") from None
        except (OSError, TimeoutError) as exc:
            raise Unavailable(f"chain unreachable: {exc}") from None
        if not result.succeeded:
            raise Unavailable(f"the transaction reverted: {result.revert_reason}")
        return result

    # -------------------------------------------------------------------- create

    async def create_proposal(
        self,
        principal: Principal,
        *,
        proposal_id: str,
        content_hash: str,
        option_count: int,
        starts_at: datetime | None,
        ends_at: datetime | None,
        quorum_bps: int,
        request_id: str,
    ) -> ProposalCreated:
        require_trusted(principal)
        proposal_id = _text(proposal_id, "proposal_id")
        request_id = _text(request_id or proposal_id, "request_id")
        metadata_hash = parse_felt(content_hash, "content_hash")
        if not 2 <= option_count <= MAX_OPTIONS:
            raise ValidationError("option_count", f"must be between 2 and {MAX_OPTIONS}")
        if quorum_bps > 10_000:
            raise ValidationError("quorum_bps", "must be at most 10000")
        start, end = _seconds(starts_at, "voting_starts_at"), _seconds(ends_at, "voting_ends_at")
        if end <= start:
            raise ValidationError("voting_ends_at", "must be after voting_starts_at")
        async with self.db.session() as s:
            found = (
                await s.execute(
                    select(governance_proposals).where(
                        governance_proposals.c.request_id == request_id
                    )
                )
            ).first()
        if found is not None:
            return ProposalCreated(int(found.onchain_proposal_id, 16), int(found.tx_hash, 16))
        chain = await self.operator.get()
        humans = await chain.registry.human_count()
        quorum = math.ceil(quorum_bps * humans / 10_000)
        result = await self._send(
            chain.governance.create_proposal(metadata_hash, option_count, start, end, quorum)
        )
        created = result.event("ProposalCreated")
        if created is None:
            raise Unavailable("the governance contract did not report the new proposal")
        onchain_id = int(created["proposal_id"])
        try:
            async with self.db.transaction() as s:
                await s.execute(
                    insert(governance_proposals).values(
                        request_id=request_id,
                        proposal_id=proposal_id,
                        onchain_proposal_id=felt_to_hex(onchain_id),
                        tx_hash=felt_to_hex(result.tx_hash),
                        block=result.block_number,
                        created_at=self.clock.now(),
                    )
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
        return ProposalCreated(onchain_id, result.tx_hash)

    # ---------------------------------------------------------------------- vote

    async def cast_vote(
        self,
        principal: Principal,
        *,
        onchain_proposal_id: str,
        voter_commitment: str,
        votes: Sequence[tuple[int, int]],
    ) -> int:
        """The vote's transaction hash (the first one, if this voter already voted)."""
        proposal = _u64_id(onchain_proposal_id, "onchain_proposal_id")
        commitment = parse_felt(voter_commitment, "voter_commitment")
        counted = [(option, milli) for option, milli in votes if milli]
        if len(counted) != 1 or counted[0][1] != FULL_VOTE_MILLI:
            raise ValidationError(
                "votes",
                "the governance contract counts one vote per human for one option: give one "
                f"option {FULL_VOTE_MILLI} thousandths",
            )
        option = counted[0][0]
        human = await self.store.humanity_by_commitment(commitment)
        if human is None or human.state != ANCHORED:
            raise NotFound("no registered human with this commitment")
        if not is_trusted(principal) and principal.user_id != human.user_id:
            raise PermissionDenied("a learner may only cast their own vote")
        chain = await self.accounts.connect(human.user_id)
        try:
            governance = chain.governance
            if await governance.has_voted(proposal, chain.address):
                return await self._vote_tx(chain, proposal)
            result = await self._send(governance.cast_vote(proposal, option))
            return result.tx_hash
        finally:
            await chain.close()

    @staticmethod
    async def _vote_tx(chain: KeikoChain, proposal: int) -> int:
        page = await chain.governance.events(
            "VoteCast", keys=[[proposal], [chain.address]], from_block=0
        )
        for event in page.events:
            if event.tx_hash is not None:
                return event.tx_hash
        raise Unavailable("the vote is recorded on chain but its transaction was not found")

    # ------------------------------------------------------------------ finalize

    async def finalize(
        self, principal: Principal, *, onchain_proposal_id: str, outcome: int
    ) -> int:
        require_trusted(principal)
        proposal = _u64_id(onchain_proposal_id, "onchain_proposal_id")
        if outcome not in OUTCOMES:
            raise ValidationError("outcome", "must be DEFEATED or SUCCEEDED")
        chain = await self.operator.get()
        governance = chain.governance
        current = await governance.get_proposal(proposal)
        if current is None:
            raise NotFound(f"no proposal {onchain_proposal_id} on chain")
        if current.finalized:
            page = await governance.events("ProposalFinalized", keys=[[proposal]], from_block=0)
            tx_hash = (page.events[0].tx_hash if page.events else None) or 0
        else:
            tx_hash = (await self._send(governance.finalize(proposal))).tx_hash
            current = await governance.get_proposal(proposal)
            assert current is not None
        if current.outcome != OUTCOMES[outcome]:
            raise FailedPrecondition(
                f"the chain finalized the proposal as {current.outcome}, not {OUTCOMES[outcome]}"
            )
        return int(tx_hash)

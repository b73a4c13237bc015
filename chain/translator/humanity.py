"""Humanity registrations: RegisterHumanity and GetHumanityRegistration.

The humanity registry allows ONE registration per calling
account (``register`` records ``get_caller_address()``): the translator's operator
account can therefore not register learners itself. Each learner registers from a
Starknet account of their own, deployed for them with DEPLOY_ACCOUNT on their first
registration (:mod:`chain.translator.learner_accounts`; its address is
``chain.humanity.account``), so "one human, one account, one key" holds on chain, with no
pool and no ceiling. The same account casts their on-chain votes.

RegisterHumanity is idempotent per (user, commitment, key), also when a retry overlaps
its first call: the identity service takes ALREADY_EXISTS as a permanent refusal, so a
retry answers what the first call did. Finishing a registration (check the chain, send,
store the outcome) runs one call at a time per commitment, under a process lock and, on
PostgreSQL, an advisory lock across replicas (:mod:`services.kit.locks`); each call
re-reads the row under it. A twin whose insert loses the unique race finishes the
winner's row the same way, and a refusal of a commitment the registry already holds
under this row's account is that registration's success.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from chain.client import ExecutionFailed, KeikoChain, TransactionRejected
from chain.translator.access import require_trusted, required_text
from chain.translator.anchoring import describe_error
from chain.translator.felts import parse_felt
from chain.translator.learner_accounts import LearnerAccounts
from chain.translator.ports import ChainConnection
from chain.translator.signers import AuthorKeys
from chain.translator.signing import PUBLIC_KEY_BYTES, decode_hex
from chain.translator.storage import ANCHORED, FAILED, ChainStore, HumanityRow
from services.kit.auth import Principal
from services.kit.db import is_unique_violation
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    Unavailable,
    ValidationError,
)
from services.kit.locks import KeyedLocks, advisory_lock


def _same(row: HumanityRow, user_id: str, public_key: bytes) -> bool:
    """Whether ``row`` is this registration (same user and key; the commitment is its key)."""
    return row.user_id == user_id and row.public_key == public_key.hex()


@dataclass(frozen=True)
class HumanityRegistration:
    registered: bool
    public_key: bytes | None
    block: int
    tx_hash: int | None


class HumanityRegistrar:
    """Registers a learner's humanity commitment from their own account, and reads
    registrations back from the chain."""

    def __init__(
        self,
        store: ChainStore,
        keys: AuthorKeys,
        accounts: LearnerAccounts | None,
        connection: ChainConnection | None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.accounts = accounts
        self.connection = connection
        self._finishing = KeyedLocks()  # per commitment

    async def register(
        self,
        principal: Principal,
        user_id: str,
        commitment_text: str,
        public_key_text: str,
        request_id: str,
    ) -> HumanityRow:
        require_trusted(principal)
        user_id = required_text(user_id, "user_id")
        commitment = parse_felt(commitment_text, "commitment")
        if commitment == 0:
            raise ValidationError("commitment", "must not be zero")
        public_key = decode_hex(public_key_text, "ed25519_public_key", PUBLIC_KEY_BYTES)
        if not any(public_key):
            raise ValidationError("ed25519_public_key", "must not be zero")
        existing = await self.store.humanity_by_commitment(commitment)
        if existing is not None and existing.state == FAILED:
            await self.store.delete_humanity(existing.commitment)  # a new attempt
            existing = None
        if existing is not None:
            if _same(existing, user_id, public_key):
                # A retry (same user, commitment and key): resume or return the outcome.
                return await self._finish_registration(existing)
            raise AlreadyExists("the commitment is already registered")
        previous = await self.store.humanity_by_user(user_id)
        if previous is not None and previous.state == FAILED:
            await self.store.delete_humanity(previous.commitment)
        elif previous is not None:
            raise AlreadyExists(f"user {user_id} already registered a humanity commitment")
        if self.accounts is None:
            raise FailedPrecondition("learner accounts are not configured")
        # The learner's own Starknet account (created now if new; deployed when sending).
        account = await self.accounts.account(user_id)
        try:
            row = await self.store.insert_humanity(
                commitment, user_id, public_key, account.address, request_id or None
            )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            # A twin of this call (a retry overlapping it) inserted first: its outcome.
            twin = await self.store.humanity_by_commitment(commitment)
            if twin is None or not _same(twin, user_id, public_key):
                raise AlreadyExists(
                    "a concurrent registration took this commitment or user"
                ) from None
            row = twin
        return await self._finish_registration(row)

    async def _finish_registration(self, row: HumanityRow) -> HumanityRow:
        """Send ``row``'s registration, or answer its outcome. One call at a time per
        commitment (the tasks of this process, and the replicas on PostgreSQL), each
        re-reading the row under the lock: a retry overlapping its first call waits for
        that call's outcome, and neither sends twice nor records the loser's revert."""
        if row.state in (ANCHORED, FAILED):
            return row
        async with (
            self._finishing.hold(row.commitment),
            advisory_lock(self.store.db, f"keiko.chain.humanity.{row.commitment:#x}"),
        ):
            current = await self.store.humanity_by_commitment(row.commitment)
            if current is None or not _same(current, row.user_id, bytes.fromhex(row.public_key)):
                # Its FAILED row was replaced by a newer attempt meanwhile.
                raise Unavailable("the registration changed concurrently: retry")
            if current.state in (ANCHORED, FAILED):
                return current
            chain = await self._connect(current.user_id)
            try:
                await self._send(chain, current)
            except TransactionRejected as exc:
                raise Unavailable(f"the chain refused the transaction: {exc.message}") from None
            except (OSError, TimeoutError) as exc:
                raise Unavailable(f"chain unreachable: {describe_error(exc)}") from None
            finally:
                await chain.close()
            done = await self.store.humanity_by_commitment(row.commitment)
            assert done is not None
            if done.state == ANCHORED:
                await self.store.set_registered_key(
                    done.user_id, bytes.fromhex(done.public_key), "humanity_registry"
                )
                if self.keys.on_key_queued is not None:
                    self.keys.on_key_queued()  # the device key joins the key directory too
            return done

    async def _connect(self, user_id: str) -> KeikoChain:
        assert self.accounts is not None
        try:
            return await self.accounts.connect(user_id)
        except (FailedPrecondition, Unavailable):
            raise
        except Exception as exc:
            raise Unavailable(f"chain unreachable: {describe_error(exc)}") from None

    async def _send(self, chain: KeikoChain, row: HumanityRow) -> None:
        """Register ``row`` from its account unless it is registered, and store the
        outcome."""
        if await self._record_if_registered(chain, row):
            return  # an earlier attempt landed (its answer was lost): do not send again
        sent = True  # False: refused when estimated (ExecutionFailed), not sent
        try:
            result = await chain.registry.register(row.commitment, bytes.fromhex(row.public_key))
        except ExecutionFailed as exc:
            sent, reason = False, exc.reason
        else:
            if result.succeeded:
                await self.store.finish_humanity(
                    row.commitment,
                    state=ANCHORED,
                    tx_hash=result.tx_hash,
                    block=result.block_number,
                )
                return
            reason = str(result.revert_reason)
        # Refused; but if this very account holds the commitment ("account already
        # registered", "commitment already used": an earlier send landed after the check
        # above, e.g. seen late by a lagging node), it is registered.
        if await self._record_if_registered(chain, row):
            return
        await self.store.finish_humanity(row.commitment, state=FAILED, reason=reason)
        if sent:
            return  # sent and reverted: the FAILED row is the answer
        if "commitment already used" in reason or "key already used" in reason:
            raise AlreadyExists(reason)
        raise FailedPrecondition(f"the registry refused: {reason}")

    async def _record_if_registered(self, chain: KeikoChain, row: HumanityRow) -> bool:
        """Whether the registry holds ``row.commitment`` under ``row.account``; if so it is
        stored as ANCHORED, from the Registered event."""
        if await chain.registry.account_by_commitment(row.commitment) != row.account:
            return False
        tx_hash, block = await self._registration_tx(chain, row)
        await self.store.finish_humanity(
            row.commitment, state=ANCHORED, tx_hash=tx_hash, block=block
        )
        return True

    @staticmethod
    async def _registration_tx(chain: KeikoChain, row: HumanityRow) -> tuple[int | None, int]:
        page = await chain.registry.events(
            "Registered", keys=[[row.account], [row.commitment]], from_block=0
        )
        for event in page.events:
            return event.tx_hash, event.block_number or 0
        return None, 0

    async def registration(self, commitment_text: str) -> HumanityRegistration:
        """Read from chain only (the public registry and its ``Registered`` event)."""
        commitment = parse_felt(commitment_text, "commitment")
        if self.connection is None:
            raise Unavailable("no chain connection")
        try:
            chain = await self.connection.get()
            account = await chain.registry.account_by_commitment(commitment)
            key = None if account is None else await chain.registry.get_key(account)
            if account is None:
                return HumanityRegistration(False, None, 0, None)
            page = await chain.registry.events(
                "Registered", keys=[[account], [commitment]], from_block=0
            )
        except Exception as exc:
            raise Unavailable(f"chain unreachable: {describe_error(exc)}") from None
        event = page.events[0] if page.events else None
        block = event.block_number or 0 if event is not None else 0
        return HumanityRegistration(True, key, block, None if event is None else event.tx_hash)

"""One Starknet account per learner, deployed by DEPLOY_ACCOUNT.

When a learner's humanity is registered, the registration is sent from an account of
their own: ``contracts/src/account.cairo`` with their own Stark key, at the address that
key determines (salt and constructor calldata = the public key, deployer 0, exactly what
starknet-py's ``Account.deploy_account_v3`` computes). Their votes are signed by it too.

**The key.** Custodial, like the learner's other key and under the same KEK: a
:class:`~chain.translator.keys.KeyVault` record bound to ``starknet-account:<learner id>``
(never used for anything else) is stored in ``chain.learner_accounts``; the Stark private
key is ``sha256("keiko.stark-account-key.v1" || Ed25519 signature of that label by the
record's key)`` reduced into ``[1, EC_ORDER)``. Ed25519 signatures are deterministic, so
the same record always gives the same key, and nobody without the KEK can compute it
(as StarkEx derives Stark keys from an Ethereum signature). The Stark key itself is never
stored. A learner whose account key lives on their device has no record: the row keeps
its address and public key only, and Keiko cannot sign for it.

**Deployment**, idempotent at every step (each is checked on chain first):

1. the translator's operator account transfers :attr:`LearnerAccountSettings.funding_fri`
   STRK to the address, unless it already holds half of it. The transfers are
   group-committed (:class:`FundingQueue`): those requested while a funding transaction
   is in flight go together, as one multicall, in the next one, so N learners registering
   at once cost the operator a few transactions, not N;
2. the learner's key signs the DEPLOY_ACCOUNT, whose fee the new account pays;
3. the row is marked deployed, with the transaction hash.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from starknet_py.constants import EC_ORDER
from starknet_py.hash.address import compute_address
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import Call, ResourceBoundsMapping
from starknet_py.net.signer.key_pair import KeyPair

from chain.client import FeePolicy, KeikoChain, TxResult
from chain.client.deployment import Deployment
from chain.client.signer import FastStarkSigner
from chain.translator.felts import felt_to_hex
from chain.translator.keys import KeyVault
from chain.translator.onchain_tables import learner_accounts
from chain.translator.ports import ChainConnection
from services.kit.clock import Clock
from services.kit.db import Database, is_unique_violation
from services.kit.errors import FailedPrecondition, Unavailable

log = structlog.get_logger("keiko.chain.learner_accounts")

STRK_ADDRESS = 0x04718F5A0FC34CC1AF16A1CDEE98FFB20C31F5CD61D6AB07201858F4287C938D
KEY_LABEL = b"keiko.stark-account-key.v1"
RECORD_PREFIX = "starknet-account:"
DEFAULT_FUNDING_FRI = 10**17  # 0.1 STRK: the deployment, the registration and many votes
CREATED = "created"
DEPLOYED = "deployed"
CONTRACT_NOT_FOUND = 20
MAX_FUNDING_BATCH = 32  # transfers in one funding multicall


@dataclass(frozen=True)
class LearnerAccount:
    learner_id: str
    address: int
    public_key: int
    key_record: bytes | None
    state: str
    deploy_tx_hash: int | None


@dataclass(frozen=True)
class LearnerAccountSettings:
    funding_fri: int = DEFAULT_FUNDING_FRI
    fee_token: int = STRK_ADDRESS
    # Resource bounds of the learners' own transactions: None estimates each one (the
    # default, right on any chain); fixed bounds skip the estimate (a chain whose prices
    # are known, like the dev node).
    fixed_bounds: ResourceBoundsMapping | None = None


def stark_private_key(vault: KeyVault, record: bytes, learner_id: str) -> int:
    signature = vault.sign(record, RECORD_PREFIX + learner_id, KEY_LABEL)
    digest = hashlib.sha256(KEY_LABEL + signature).digest()
    return int.from_bytes(digest, "big") % (EC_ORDER - 1) + 1


def account_address(account_class_hash: int, public_key: int) -> int:
    return compute_address(
        class_hash=account_class_hash,
        constructor_calldata=[public_key],
        salt=public_key,
        deployer_address=0,
    )


def _row(row: Any) -> LearnerAccount:
    return LearnerAccount(
        learner_id=row.learner_id,
        address=int(row.address, 16),
        public_key=int(row.public_key, 16),
        key_record=row.key_record,
        state=row.state,
        deploy_tx_hash=None if row.deploy_tx_hash is None else int(row.deploy_tx_hash, 16),
    )


class LearnerAccountStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def get(self, learner_id: str) -> LearnerAccount | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(learner_accounts).where(learner_accounts.c.learner_id == learner_id)
                )
            ).first()
        return None if row is None else _row(row)

    async def insert(
        self, learner_id: str, address: int, public_key: int, record: bytes | None
    ) -> LearnerAccount:
        """Insert, or return the row a concurrent caller inserted first."""
        try:
            async with self.db.transaction() as s:
                await s.execute(
                    insert(learner_accounts).values(
                        learner_id=learner_id,
                        address=felt_to_hex(address),
                        public_key=felt_to_hex(public_key),
                        key_record=record,
                        state=CREATED,
                        created_at=self.clock.now(),
                    )
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
        found = await self.get(learner_id)
        assert found is not None
        return found

    async def mark_deployed(self, learner_id: str, tx_hash: int | None) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(learner_accounts)
                .where(learner_accounts.c.learner_id == learner_id)
                .values(
                    state=DEPLOYED,
                    deploy_tx_hash=None if tx_hash is None else felt_to_hex(tx_hash),
                )
            )


class FundingQueue:
    """Group commit of the operator's funding transfers. A caller waits until the
    transaction carrying its transfer has its receipt; the transfers requested while one
    funding transaction is in flight are sent together in the next (at most
    ``max_batch`` per transaction). A transaction that fails or reverts fails every
    transfer it carried (each caller sees the error; a retry asks again)."""

    def __init__(
        self,
        execute: Callable[[Sequence[Call]], Awaitable[TxResult]],
        *,
        max_batch: int = MAX_FUNDING_BATCH,
    ) -> None:
        self._execute = execute
        self._max_batch = max_batch
        self._queue: list[tuple[Call, asyncio.Future[None]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def transfer(self, call: Call) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((call, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            error: BaseException | None = None
            try:
                result = await self._execute([call for call, _ in batch])
                if not result.succeeded:
                    error = Unavailable(f"the funding transaction reverted: {result.revert_reason}")
            except Exception as exc:  # every caller of this batch gets it
                error = exc
            for _, future in batch:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)


class LearnerAccounts:
    """Learners' own accounts: create (key + address), deploy, connect as the learner."""

    def __init__(
        self,
        store: LearnerAccountStore,
        vault: KeyVault | Callable[[], KeyVault],
        operator: ChainConnection,
        *,
        settings: LearnerAccountSettings | None = None,
    ) -> None:
        self.store = store
        self._vault = vault
        self.operator = operator
        self.settings = settings or LearnerAccountSettings()
        self._locks: dict[str, asyncio.Lock] = {}
        self._funding: FundingQueue | None = None

    @property
    def vault(self) -> KeyVault:
        if not isinstance(self._vault, KeyVault):
            self._vault = self._vault()
        return self._vault

    def _deployment(self) -> Deployment:
        deployment = self.operator.deployment()
        if deployment is None:
            raise Unavailable(f"no chain deployment file at {self.operator.deployment_file}")
        return deployment

    def _account_class(self) -> int:
        raw = self._deployment().extra.get("account_class_hash")
        if not raw:
            raise FailedPrecondition(
                "the deployment names no account class: deploy Keiko with `keiko chain deploy`"
            )
        return int(str(raw), 16)

    async def account(self, learner_id: str) -> LearnerAccount:
        """The learner's account row, created (key and address, not yet on chain) if new."""
        found = await self.store.get(learner_id)
        if found is not None:
            return found
        generated = self.vault.generate(RECORD_PREFIX + learner_id)
        private_key = stark_private_key(self.vault, generated.record, learner_id)
        public_key = KeyPair.from_private_key(private_key).public_key
        address = account_address(self._account_class(), public_key)
        return await self.store.insert(learner_id, address, public_key, generated.record)

    def _private_key(self, account: LearnerAccount) -> int:
        if account.key_record is None:
            raise FailedPrecondition(
                f"the Starknet account of {account.learner_id} is held on their device: "
                "Keiko cannot sign for it"
            )
        return stark_private_key(self.vault, account.key_record, account.learner_id)

    async def ensure_deployed(self, learner_id: str) -> LearnerAccount:
        lock = self._locks.setdefault(learner_id, asyncio.Lock())
        async with lock:
            account = await self.account(learner_id)
            if account.state == DEPLOYED:
                return account
            operator = await self.operator.get()
            class_hash = self._account_class()
            if await _class_at(operator, account.address) == class_hash:
                # Deployed earlier (its answer was lost): record it, do not send again.
                await self.store.mark_deployed(learner_id, account.deploy_tx_hash)
            else:
                await self._fund(operator, account)
                tx_hash = await self._deploy(operator, account, class_hash)
                await self.store.mark_deployed(learner_id, tx_hash)
            self._locks.pop(learner_id, None)
            found = await self.store.get(learner_id)
            assert found is not None
            return found

    async def _fund(self, operator: KeikoChain, account: LearnerAccount) -> None:
        token = self.settings.fee_token
        low, high = await operator.call(
            Call(token, get_selector_from_name("balance_of"), [account.address])
        )
        if low + (high << 128) >= self.settings.funding_fri // 2:
            return
        amount = self.settings.funding_fri
        if self._funding is None:
            self._funding = FundingQueue(lambda calls: self._fund_many(calls))
        await self._funding.transfer(
            Call(
                token,
                get_selector_from_name("transfer"),
                [account.address, amount % 2**128, amount // 2**128],
            )
        )

    async def _fund_many(self, calls: Sequence[Call]) -> TxResult:
        operator = await self.operator.get()  # the connection of now (it may reconnect)
        return await operator.execute(calls)

    async def _deploy(self, operator: KeikoChain, account: LearnerAccount, class_hash: int) -> int:
        key = KeyPair.from_private_key(self._private_key(account))
        client = operator.client
        chain_id = int(await client.get_chain_id(), 16)
        deployer = Account(
            address=account.address,
            client=client,
            signer=FastStarkSigner(account.address, key, chain_id),
        )
        fees: dict[str, Any] = (
            {"resource_bounds": self.settings.fixed_bounds}
            if self.settings.fixed_bounds is not None
            else {"auto_estimate": True}
        )
        tx = await deployer.sign_deploy_account_v3(
            class_hash=class_hash,
            contract_address_salt=key.public_key,
            constructor_calldata=[key.public_key],
            **fees,
        )
        sent = await client.deploy_account(tx)
        receipt = await client.wait_for_tx(sent.transaction_hash, check_interval=0.05)
        if receipt.execution_status is not None and receipt.execution_status.name != "SUCCEEDED":
            raise Unavailable(f"deploying {hex(account.address)} reverted: {receipt.revert_reason}")
        log.info("chain.learner_account_deployed", learner_id=account.learner_id)
        return int(sent.transaction_hash)

    async def connect(self, learner_id: str) -> KeikoChain:
        """A client acting as the learner's own (deployed) account; close it after use."""
        account = await self.ensure_deployed(learner_id)
        return await KeikoChain.connect(
            self.operator.rpc_url,
            account.address,
            self._private_key(account),
            self.operator.deployment_file,
            poll_interval=0.05,
            fee=FeePolicy(fixed=self.settings.fixed_bounds),
        )


async def _class_at(chain: KeikoChain, address: int) -> int | None:
    try:
        return await chain.client.get_class_hash_at(address)
    except ClientError as err:
        if str(err.code) == str(CONTRACT_NOT_FOUND):
            return None
        raise

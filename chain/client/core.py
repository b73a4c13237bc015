"""Keikochain client over starknet-py: account, transactions, receipts, events.

Talks to any Starknet JSON-RPC 0.10 endpoint (the embedded dev node, Madara, Katana,
starknet-devnet) through starknet-py's ``FullNodeClient`` and ``Account``; it knows
nothing about the node behind the URL. Typed contract bindings live in
:mod:`chain.client.contracts`; :class:`KeikoChain` ties them together::

    chain = await KeikoChain.connect(rpc_url, account_address, private_key, "deployment.json")
    result = await chain.anchor.anchor_batch(batch_id, root, leaf_count, "learning")
    assert result.succeeded, result.revert_reason
    await chain.close()
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import aiohttp
from starknet_py.contract import Contract, ContractData
from starknet_py.net.account.account import Account
from starknet_py.net.client_errors import ClientError
from starknet_py.net.client_models import (
    Call,
    EstimatedFee,
    ResourceBoundsMapping,
    TransactionExecutionStatus,
    TransactionReceipt,
)
from starknet_py.net.full_node_client import FullNodeClient
from starknet_py.net.models.transaction import InvokeV3
from starknet_py.net.signer.key_pair import KeyPair
from starknet_py.transaction_errors import TransactionRevertedError

from chain.client import abi_cache
from chain.client.deployment import ANCHOR, GOVERNANCE, REGISTRY, Deployment
from chain.client.events import ChainEvent, EventDecoder
from chain.client.signer import FastStarkSigner
from chain.client.tracing import trace_client

if TYPE_CHECKING:
    from chain.client.contracts import AnchorContract, GovernanceContract, RegistryContract

_T = TypeVar("_T")

BUILD_DIR = Path(__file__).resolve().parents[2] / "contracts" / "build"

# One ABI parse per process, not one per connection (see chain.client.abi_cache).
abi_cache.install()

# Starknet JSON-RPC error codes the client reacts to.
TXN_HASH_NOT_FOUND = 29
CONTRACT_ERROR = 40
TRANSACTION_EXECUTION_ERROR = 41
INVALID_TRANSACTION_NONCE = 52
# The resource bounds do not cover the current gas prices or the validation's gas.
INSUFFICIENT_RESOURCES_FOR_VALIDATE = 53


class KeikoChainError(Exception):
    """Base of the client's errors."""


class CallFailed(KeikoChainError):
    """A view call reverted (``CONTRACT_ERROR``); ``reason`` is the decoded panic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ExecutionFailed(KeikoChainError):
    """Fee estimation executed the transaction and it failed: it would revert, so it was
    not sent. ``reason`` is the node's execution error (the decoded panic)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransactionRejected(KeikoChainError):
    """The node refused the transaction (bad signature, nonce, resources...): it was not
    included in any block."""

    def __init__(self, code: int | str | None, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({data})" if data is not None else ""))
        self.code = code
        self.message = message
        self.data = data


def _error_text(data: Any) -> str:
    """The human-readable part of a Starknet error's ``data``."""
    if isinstance(data, Mapping):
        for key in ("revert_error", "execution_error", "error"):
            if key in data:
                return _error_text(data[key])
        return json.dumps(data)
    if data is None:
        return ""
    return str(data)


def _raw_message(err: ClientError) -> str:
    # ClientError.message is "Client failed with code X. Message: ...": keep the node's.
    text = err.message
    marker = "Message: "
    if marker in text:
        text = text.split(marker, 1)[1]
        if ". Data:" in text:
            text = text.split(". Data:", 1)[0]
    return text.rstrip(".")


def _code(err: ClientError) -> int | None:
    try:
        return int(err.code) if err.code is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class TxResult:
    """An included transaction: SUCCEEDED, or REVERTED with the decoded reason."""

    tx_hash: int
    block_number: int | None
    status: Literal["SUCCEEDED", "REVERTED"]
    revert_reason: str | None
    actual_fee: int
    events: list[ChainEvent] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def event(self, name: str) -> ChainEvent | None:
        """The first event of that name (``"BatchAnchored"``) emitted by the transaction."""
        return next((e for e in self.events if e.name == name), None)


@dataclass(frozen=True)
class FeePolicy:
    """How resource bounds are chosen: estimate each transaction (the default; a
    transaction that would fail raises :class:`ExecutionFailed` before it is sent), or
    fixed bounds (the transaction is sent as is and may be included as REVERTED)."""

    fixed: ResourceBoundsMapping | None = None
    amount_multiplier: float = 1.5
    price_multiplier: float = 1.5


def execute_calldata(calls: Sequence[Call]) -> list[int]:
    """``__execute__`` calldata of a Cairo 1 account: ``Array<Call>`` serialized (what
    starknet-py's ``Account`` sends for ``cairo_version`` 1)."""
    out = [len(calls)]
    for call in calls:
        out += [call.to_addr, call.selector, len(call.calldata), *call.calldata]
    return out


# Parsing a Cairo 1 ABI (starknet-py's lark grammar) costs seconds of CPU per contract.
# Done on the event loop at every connect, it stalled every other coroutine of the process
# (open database transactions included) for as long; so each distinct ABI is parsed once
# per process, in a worker thread, and every later Contract reuses the parsed form.
_PARSED_ABIS: dict[str, Any] = {}
_PARSE_LOCK = threading.Lock()  # a thread lock: connects run on several event loops


def _parse_abi(key: str, abi: list[dict[str, Any]]) -> Any:
    with _PARSE_LOCK:
        parsed = _PARSED_ABIS.get(key)
        if parsed is None:
            parsed = _PARSED_ABIS[key] = ContractData.from_abi(0, abi, 1).parsed_abi
        return parsed


async def _parsed_abi(abi: list[dict[str, Any]]) -> Any:
    key = json.dumps(abi, sort_keys=True)
    parsed = _PARSED_ABIS.get(key)
    return parsed if parsed is not None else await asyncio.to_thread(_parse_abi, key, abi)


async def _bound_contract(address: int, abi: list[dict[str, Any]], account: Account) -> Contract:
    """``Contract(address, abi, provider=account, cairo_version=1)`` with the ABI parsed
    once per process. ``ContractData.parsed_abi`` is a cached_property (starknet-py 0.30,
    pinned): seeding its cache is how the parsed form is shared."""
    data = ContractData.from_abi(address, abi, 1)
    data.__dict__["parsed_abi"] = await _parsed_abi(abi)
    contract = Contract.__new__(Contract)
    contract.account = account
    contract.client = account.client
    contract.data = data
    contract._functions = Contract._make_functions(
        contract_data=data, client=account.client, account=account, cairo_version=1
    )
    return contract


def load_abi(name: str, build_dir: Path = BUILD_DIR) -> list[dict[str, Any]] | None:
    """The ABI of a Keiko contract from its compiled Sierra in ``contracts/build``."""
    path = build_dir / f"{name}.sierra.json"
    if not path.exists():
        return None
    abi = json.loads(path.read_text()).get("abi", [])
    return list(json.loads(abi) if isinstance(abi, str) else abi)


class KeikoChain:
    """One account on one Keikochain endpoint, with the Keiko contract bindings."""

    def __init__(
        self,
        client: FullNodeClient,
        account: Account,
        deployment: Deployment,
        contracts: Mapping[str, Contract],
        *,
        fee: FeePolicy | None = None,
        poll_interval: float = 0.25,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        from chain.client.contracts import AnchorContract, GovernanceContract, RegistryContract

        self.client = client
        self.account = account
        self.deployment = deployment
        self.fee = fee or FeePolicy()
        self.poll_interval = poll_interval
        self._session = session
        self._nonce: int | None = None
        self._send_lock = asyncio.Lock()
        self._contracts = dict(contracts)
        self._decoders = {c.address: EventDecoder(name, c) for name, c in contracts.items()}
        self._anchor = AnchorContract(self, contracts[ANCHOR]) if ANCHOR in contracts else None
        self._registry = (
            RegistryContract(self, contracts[REGISTRY]) if REGISTRY in contracts else None
        )
        self._governance = (
            GovernanceContract(self, contracts[GOVERNANCE]) if GOVERNANCE in contracts else None
        )

    # ------------------------------------------------------------- construction

    @classmethod
    async def connect(
        cls,
        rpc_url: str,
        account_address: int | str,
        private_key: int | str,
        deployment: Deployment | Path | str | Mapping[str, Any],
        *,
        chain_id: int | None = None,
        fee: FeePolicy | None = None,
        poll_interval: float = 0.25,
        build_dir: Path = BUILD_DIR,
        verify_class_hashes: bool = True,
        fast_signing: bool = True,
    ) -> KeikoChain:
        """Connect an account to the chain at ``rpc_url``.

        ABIs come from ``build_dir`` (the committed artifacts) or, when missing there,
        from the chain (``starknet_getClassAt``). With ``verify_class_hashes`` each
        contract's class hash on chain must match the deployment file's.
        ``fast_signing`` signs with :class:`~chain.client.signer.FastStarkSigner` (the
        same signatures as starknet-py's default signer, several hundred times faster);
        ``False`` keeps starknet-py's ``StarkCurveSigner``."""
        deployment = Deployment.load(deployment)
        session = aiohttp.ClientSession()
        try:
            client = trace_client(FullNodeClient(node_url=rpc_url, session=session))
            if chain_id is None:
                chain_id = int(await client.get_chain_id(), 16)
            if deployment.chain_id is not None and deployment.chain_id != chain_id:
                raise KeikoChainError(
                    f"deployment is for chain {hex(deployment.chain_id)}, "
                    f"the node is chain {hex(chain_id)}"
                )
            key = private_key if isinstance(private_key, int) else int(private_key, 16)
            address = (
                account_address if isinstance(account_address, int) else int(account_address, 16)
            )
            key_pair = KeyPair.from_private_key(key)
            if fast_signing:
                account = Account(
                    address=address,
                    client=client,
                    signer=FastStarkSigner(address, key_pair, chain_id),
                )
            else:
                account = Account(address=address, client=client, key_pair=key_pair, chain=chain_id)
            contracts: dict[str, Contract] = {}
            for name, ref in deployment.contracts.items():
                if verify_class_hashes and ref.class_hash is not None:
                    on_chain = await client.get_class_hash_at(ref.address)
                    if on_chain != ref.class_hash:
                        raise KeikoChainError(
                            f"{name} at {hex(ref.address)} has class {hex(on_chain)}, "
                            f"the deployment says {hex(ref.class_hash)}"
                        )
                # Reading a Sierra file and building its bindings (starknet-py parses the
                # ABI) take seconds of CPU: on a thread, so the caller's loop keeps serving.
                abi = await asyncio.to_thread(load_abi, name, build_dir)
                if abi is None:
                    contracts[name] = await Contract.from_address(ref.address, provider=account)
                else:
                    contracts[name] = await _bound_contract(ref.address, abi, account)
        except BaseException:
            await session.close()
            raise
        return cls(
            client,
            account,
            deployment,
            contracts,
            fee=fee,
            poll_interval=poll_interval,
            session=session,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> KeikoChain:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---------------------------------------------------------------- bindings

    @property
    def address(self) -> int:
        return self.account.address

    @property
    def anchor(self) -> AnchorContract:
        if self._anchor is None:
            raise KeikoChainError("the deployment has no interaction_anchor")
        return self._anchor

    @property
    def registry(self) -> RegistryContract:
        if self._registry is None:
            raise KeikoChainError("the deployment has no humanity_registry")
        return self._registry

    @property
    def governance(self) -> GovernanceContract:
        if self._governance is None:
            raise KeikoChainError("the deployment has no governance")
        return self._governance

    def contract(self, name: str) -> Contract:
        return self._contracts[name]

    # ------------------------------------------------------------ transactions

    async def execute(
        self,
        calls: Call | Sequence[Call],
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> TxResult:
        """Sign and send one v3 INVOKE (one or several calls, atomically) and wait for
        its receipt. Raises :class:`ExecutionFailed` when estimation shows it would fail
        and :class:`TransactionRejected` when the node refuses it. With
        ``resource_bounds`` the transaction is sent with them and not estimated (it may
        then be included as REVERTED)."""
        tx_hash = await self.send(calls, resource_bounds=resource_bounds)
        return await self.wait(tx_hash)

    async def estimate(self, calls: Call | Sequence[Call]) -> EstimatedFee:
        """The fee of ``calls`` sent now from this account (one execution on the node);
        :class:`ExecutionFailed` if they would fail. Callers that send the same kind of
        transaction again and again reuse it as bounds (``execute(resource_bounds=...)``)
        instead of paying an estimation per send."""
        call_list = [calls] if isinstance(calls, Call) else list(calls)
        return await self._with_nonce(lambda nonce: self._estimate(call_list, nonce))

    async def send(
        self,
        calls: Call | Sequence[Call],
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> int:
        """Sign and send without waiting; returns the transaction hash. Sends from one
        ``KeikoChain`` are serialized so that nonces are used in order."""
        call_list = [calls] if isinstance(calls, Call) else list(calls)

        async def signed_and_sent(nonce: int) -> int:
            tx = await self._sign(call_list, nonce, resource_bounds)
            sent = await self.client.send_transaction(tx)
            assert self._nonce is not None
            self._nonce += 1
            return int(sent.transaction_hash)

        return await self._with_nonce(signed_and_sent)

    async def _with_nonce(self, action: Callable[[int], Awaitable[_T]]) -> _T:
        """``action(nonce)`` under the send lock with the account's next nonce, reloaded
        and retried once when someone else used the account meanwhile."""
        async with self._send_lock:
            for attempt in (1, 2):
                if self._nonce is None:
                    self._nonce = await self.account.get_nonce()
                try:
                    return await action(self._nonce)
                except ClientError as err:
                    self._nonce = None
                    if _code(err) == INVALID_TRANSACTION_NONCE and attempt == 1:
                        continue
                    raise self._translate(err) from err
                except BaseException:
                    self._nonce = None
                    raise
        raise AssertionError("unreachable")

    async def _estimate(self, calls: list[Call], nonce: int) -> EstimatedFee:
        # Estimate an unsigned draft (estimate_fee signs it with the query version), so
        # that an estimated send costs two signatures, not three.
        draft = InvokeV3(
            calldata=execute_calldata(calls),
            resource_bounds=ResourceBoundsMapping.init_with_zeros(),
            signature=[],
            nonce=nonce,
            sender_address=self.account.address,
            version=3,
            tip=0,
        )
        estimate = await self.account.estimate_fee(draft)
        assert not isinstance(estimate, list)
        return estimate

    async def _sign(
        self, calls: list[Call], nonce: int, bounds: ResourceBoundsMapping | None
    ) -> Any:
        if bounds is None:
            bounds = self.fee.fixed
        if bounds is None:
            estimate = await self._estimate(calls, nonce)
            bounds = estimate.to_resource_bounds(
                amount_multiplier=self.fee.amount_multiplier,
                unit_price_multiplier=self.fee.price_multiplier,
            )
        return await self.account.sign_invoke_v3(calls, nonce=nonce, resource_bounds=bounds)

    @staticmethod
    def _translate(err: ClientError) -> KeikoChainError:
        code = _code(err)
        if code == TRANSACTION_EXECUTION_ERROR:
            return ExecutionFailed(_error_text(err.data))
        if code == CONTRACT_ERROR:
            return CallFailed(_error_text(err.data))
        return TransactionRejected(err.code, _raw_message(err), err.data)

    async def wait(self, tx_hash: int) -> TxResult:
        """Wait for the receipt (starknet-py's ``wait_for_tx``) and summarize it."""
        try:
            receipt: TransactionReceipt = await self.client.wait_for_tx(
                tx_hash, check_interval=self.poll_interval
            )
        except TransactionRevertedError:
            receipt = await self.client.get_transaction_receipt(tx_hash)
        return self._summary(tx_hash, receipt)

    async def receipt(self, tx_hash: int) -> TxResult | None:
        """The transaction's receipt now, summarized; None if the node does not know the
        hash (or has not included it in a block yet)."""
        try:
            receipt = await self.client.get_transaction_receipt(tx_hash)
        except ClientError as err:
            if err.code == TXN_HASH_NOT_FOUND:
                return None
            raise self._translate(err) from err
        if getattr(receipt, "block_number", None) is None:
            return None
        return self._summary(tx_hash, receipt)

    def _summary(self, tx_hash: int, receipt: TransactionReceipt) -> TxResult:
        reverted = receipt.execution_status == TransactionExecutionStatus.REVERTED
        return TxResult(
            tx_hash=tx_hash,
            block_number=getattr(receipt, "block_number", None),
            status="REVERTED" if reverted else "SUCCEEDED",
            revert_reason=receipt.revert_reason if reverted else None,
            actual_fee=receipt.actual_fee.amount,
            events=[
                decoded
                for e in receipt.events
                if (decoded := self.decode_event(e.from_address, e.keys, e.data)) is not None
            ],
        )

    def decode_event(
        self, from_address: int, keys: list[int], data: list[int]
    ) -> ChainEvent | None:
        decoder = self._decoders.get(from_address)
        return None if decoder is None else decoder.decode(from_address, keys, data)

    # ------------------------------------------------------------------- reads

    async def call(self, call: Call) -> list[int]:
        try:
            return await self.client.call_contract(call, block_number="latest")
        except ClientError as err:
            raise self._translate(err) from err

    async def block_number(self) -> int:
        return await self.client.get_block_number()

    async def nonce(self) -> int:
        return await self.account.get_nonce()

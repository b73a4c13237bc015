"""Executing v3 transactions against the live state, as a Starknet sequencer does.

:class:`Executor` runs one transaction and leaves its writes in the live state through a
:class:`~chain.node.journal.Journal` (the caller mines it or rolls it back). Per type:

* INVOKE: the sender is a deployed account; the nonce is the account's; ``__validate__``
  returns ``'VALID'``; the nonce is bumped; ``__execute__`` runs (a panic reverts its
  writes, not the nonce nor the fee).
* DECLARE: class version ``0.1.0``; the class is not declared yet; the node compiles the
  Sierra class to CASM itself and its compiled class hash must be the one declared;
  ``__validate_declare__(class_hash)``; the class is declared; the nonce is bumped.
* DEPLOY_ACCOUNT: the class is declared, the nonce is 0 and nothing lives at the address;
  the constructor runs (caller 0), then ``__validate_deploy__(class_hash, salt,
  *constructor_calldata)``; the nonce becomes 1.

Then the fee is charged: ``transfer(sequencer, fee)`` on the fee token (STRK, fri) from
the paying account, executed in the VM like any call; a transaction is refused up front
(INSUFFICIENT_ACCOUNT_BALANCE) when the account holds less than its maximal fee (every
resource's max amount x max price). ``fee = l1_gas x l1 price + l1_data_gas x data price +
l2_gas x (l2 price + tip)``, the gas from :mod:`chain.node.fees`; the receipt's
``actual_fee`` is exactly the amount transferred.

A transaction carrying ``proof_facts`` (or a ``proof``) is refused: Keikochain cannot
verify client-side proofs, and accepting their facts unchecked would let anyone claim any
fact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from chain.node import errors
from chain.node.codec import hex_list
from chain.node.compiler import CompilationFailed, compile_sierra
from chain.node.fees import (
    FEE_TRANSFER_DIFF_FELTS,
    GasUsage,
    amount_shortfall,
    gas_usage,
    price_shortfall,
)
from chain.node.initial_reads import InitialReads
from chain.node.journal import Journal
from chain.node.store import DeclaredClass
from chain.node.transactions import (
    BroadcastedTx,
    DeclareV3Request,
    DeployAccountV3Request,
    InvokeV3Request,
)
from chain.vm import (
    CairoRevert,
    CairoVM,
    CallResult,
    Event,
    Invocation,
    TxContext,
    class_hashes,
)

VALIDATED = int.from_bytes(b"VALID", "big")
SUPPORTED_CLASS_VERSION = "0.1.0"
U128 = 2**128


@dataclass
class Execution:
    """One transaction run against the live state (not yet mined or rolled back)."""

    tx: BroadcastedTx
    tx_hash: int
    journal: Journal
    events: list[Event] = field(default_factory=list)
    usage: GasUsage = field(default_factory=lambda: GasUsage(0, 0, 0))
    fee: int = 0
    revert_reason: str | None = None
    validate: Invocation | None = None
    execute: Invocation | None = None
    constructor: Invocation | None = None
    fee_transfer: Invocation | None = None
    fee_events: list[Event] = field(default_factory=list)

    @property
    def receipt_events(self) -> list[Event]:
        """In execution order: validation (or constructor), execution, fee transfer."""
        return [*self.events, *self.fee_events]


@dataclass(frozen=True)
class RunFlags:
    validate: bool = True
    charge_fee: bool = True
    # Resource bounds must cover the chain's prices and the gas used (sending; not when
    # estimating, where the bounds are still unknown).
    check_bounds: bool = True


def _steps(*invocations: Invocation | None) -> int:
    return sum(i.n_steps for i in invocations if i is not None)


class Executor:
    def __init__(self, vm: CairoVM, *, chain_id: int, fee_token: int, sequencer: int) -> None:
        self.vm = vm
        self.chain_id = chain_id
        self.fee_token = fee_token
        self.sequencer = sequencer
        # Set while simulating with RETURN_INITIAL_READS: every read and write is noted.
        self.reads: InitialReads | None = None

    def _track(self, result: CallResult | None = None) -> None:
        if self.reads is None:
            return
        self.reads.read(self.vm.last_reads)
        if result is not None:
            self.reads.wrote(result)

    def _set_nonce(self, run: Execution, address: int, nonce: int) -> None:
        run.journal.set_nonce(address, nonce)
        if self.reads is not None:
            self.reads.wrote_nonce(address)

    # ------------------------------------------------------------------ helpers

    def balance(self, account: int) -> int:
        low, high = self.vm.view(self.fee_token, "balance_of", [account])[:2]
        self._track()
        return low + (high << 128)

    def _context(self, tx: BroadcastedTx, tx_hash: int) -> TxContext:
        return TxContext(
            account_address=tx.payer,
            transaction_hash=tx_hash,
            signature=tuple(tx.signature),
            nonce=tx.nonce,
            version=tx.version,
        )

    def _precheck(self, tx: BroadcastedTx, flags: RunFlags, expected_nonce: int) -> None:
        if self.reads is not None:
            self.reads.read_nonce(tx.payer, expected_nonce)
        if tx.nonce != expected_nonce:
            raise errors.invalid_transaction_nonce(
                f"account {hex(tx.payer)}: expected nonce {expected_nonce}, got {tx.nonce}"
            )
        if flags.check_bounds and (shortfall := price_shortfall(tx.resource_bounds)):
            raise errors.insufficient_resources(shortfall)
        if flags.charge_fee:
            balance, max_fee = self.balance(tx.payer), tx.max_fee()
            if balance < max_fee:
                raise errors.insufficient_account_balance(
                    f"account {hex(tx.payer)} holds {balance} fri, the transaction may cost "
                    f"up to {max_fee} fri"
                )

    def _validate(
        self, tx: BroadcastedTx, run: Execution, entry_point: str, calldata: list[int]
    ) -> None:
        try:
            result = self.vm.call(
                tx.payer,
                entry_point,
                calldata,
                tx=self._context(tx, run.tx_hash),
                validate=True,
                commit=False,
            )
        except CairoRevert as exc:
            if exc.code == "ENTRY_POINT_NOT_FOUND_IN_CONTRACT":
                raise errors.non_account(f"{hex(tx.payer)} has no {entry_point}") from None
            raise errors.validation_failure(exc.reason) from None
        if result.retdata != [VALIDATED]:
            raise errors.validation_failure(
                f"{entry_point} returned {hex_list(result.retdata)}, expected 'VALID'"
            )
        self._track(result)
        run.journal.apply(result)
        run.events += result.events
        run.validate = result.invocation

    def _usage(
        self, tx: BroadcastedTx, run: Execution, steps: int, pending: Journal | None = None
    ) -> GasUsage:
        """Gas of the transaction so far: its steps, its size, and its state diff (the
        fee transfer's two balance cells included)."""
        diffs = [run.journal.diff()] + ([pending.diff()] if pending is not None else [])
        cells = set().union(*(d.storage for d in diffs))
        nonces = set().union(*(d.nonces for d in diffs))
        deployed = set().union(*(d.class_hashes for d in diffs))
        declared = sum(len(d.declared) for d in diffs)
        diff_felts = 2 * (len(cells) + len(nonces) + len(deployed) + declared)
        return gas_usage(steps, tx.size_felts, diff_felts + FEE_TRANSFER_DIFF_FELTS)

    def _charge(
        self,
        tx: BroadcastedTx,
        run: Execution,
        flags: RunFlags,
        pending: Journal | None = None,
        cap: int | None = None,
    ) -> None:
        run.fee = run.usage.fee_fri + run.usage.l2_gas * tx.tip
        if cap is not None:
            run.fee = min(run.fee, cap)
        if not flags.charge_fee or run.fee == 0:
            return
        try:
            result = self.vm.call(
                self.fee_token,
                "transfer",
                [self.sequencer, run.fee % U128, run.fee // U128],
                caller_address=tx.payer,
                commit=False,
            )
        except CairoRevert as exc:
            raise _FeeShortfall(exc.reason) from None
        self._track(result)
        (pending or run.journal).apply(result)
        run.fee_events = result.events
        run.fee_transfer = result.invocation

    # -------------------------------------------------------------- entry point

    def run(self, tx: BroadcastedTx, tx_hash: int, flags: RunFlags) -> Execution:
        """Execute ``tx``; raises RpcError when it must be refused (the state is then
        unchanged). Otherwise the journal holds its writes."""
        if isinstance(tx, InvokeV3Request) and (tx.proof_facts or tx.proof):
            raise errors.validation_failure(
                "transactions carrying proof_facts or a proof are refused: Keikochain cannot "
                "verify client-side proofs"
            )
        run = Execution(tx=tx, tx_hash=tx_hash, journal=Journal(self.vm.state))
        try:
            if isinstance(tx, InvokeV3Request):
                self._invoke(tx, run, flags)
            elif isinstance(tx, DeclareV3Request):
                self._declare(tx, run, flags)
            else:
                self._deploy_account(tx, run, flags)
        except BaseException:
            run.journal.rollback()
            raise
        return run

    # ----------------------------------------------------------------- invoke

    def _invoke(self, tx: InvokeV3Request, run: Execution, flags: RunFlags) -> None:
        sender = tx.sender_address
        if sender not in self.vm.state.class_hashes:
            raise errors.validation_failure(f"account {hex(sender)} is not deployed")
        nonce = self.vm.get_nonce(sender)
        self._precheck(tx, flags, nonce)
        if flags.validate:
            self._validate(tx, run, "__validate__", tx.calldata)
            if flags.check_bounds:
                usage = self._usage(tx, run, _steps(run.validate))
                if shortfall := amount_shortfall(tx.resource_bounds, usage):
                    raise errors.insufficient_resources(f"__validate__: {shortfall}")
        self._set_nonce(run, sender, nonce + 1)
        # The execution's writes go into a nested journal: a revert drops them alone.
        execution = Journal(self.vm.state)
        try:
            executed = self.vm.call(
                sender,
                "__execute__",
                tx.calldata,
                tx=self._context(tx, run.tx_hash),
                commit=False,
            )
        except CairoRevert as exc:
            run.revert_reason = exc.reason
        else:
            self._track(executed)
            execution.apply(executed)
            usage = self._usage(tx, run, _steps(run.validate) + executed.n_steps, execution)
            shortfall = amount_shortfall(tx.resource_bounds, usage) if flags.check_bounds else None
            if shortfall is None:
                run.execute = executed.invocation
                run.usage = usage
            else:
                run.revert_reason = shortfall
                execution.rollback()
        if run.revert_reason is not None:
            run.usage = self._usage(tx, run, _steps(run.validate))
        try:
            self._charge(tx, run, flags, execution)
        except _FeeShortfall as exc:
            # The execution spent what should have paid for it: it is reverted (validation
            # and the nonce bump stay) and the account pays what it still holds.
            execution.rollback()
            run.execute = None
            run.revert_reason = f"fee transfer failed: {exc}"
            run.usage = self._usage(tx, run, _steps(run.validate))
            self._charge(tx, run, flags, cap=self.balance(sender))
        else:
            if run.execute is not None:
                run.events += executed.events
        run.journal.absorb(execution)

    # ---------------------------------------------------------------- declare

    def _declare(self, tx: DeclareV3Request, run: Execution, flags: RunFlags) -> None:
        sender = tx.sender_address
        if sender not in self.vm.state.class_hashes:
            raise errors.validation_failure(f"account {hex(sender)} is not deployed")
        version = tx.contract_class["contract_class_version"]
        if version != SUPPORTED_CLASS_VERSION:
            raise errors.unsupported_contract_class_version(
                f"contract_class_version {version!r}; this node runs {SUPPORTED_CLASS_VERSION}"
            )
        sierra_text = tx.sierra_text()
        try:
            casm_text = compile_sierra(tx.contract_class)
        except CompilationFailed as exc:
            raise errors.compilation_failed(str(exc)) from None
        hashes = class_hashes(sierra_text, casm_text)
        if self.reads is not None:
            self.reads.declared.setdefault(
                hashes.class_hash, hashes.class_hash in self.vm.state.compiled_class_hashes
            )
        if hashes.class_hash in self.vm.state.compiled_class_hashes:
            raise errors.class_already_declared(hex(hashes.class_hash))
        if hashes.compiled_class_hash != tx.compiled_class_hash:
            raise errors.compiled_class_hash_mismatch(
                f"declared {hex(tx.compiled_class_hash)}, the node compiled "
                f"{hex(hashes.compiled_class_hash)} (Poseidon compiled class hash)"
            )
        nonce = self.vm.get_nonce(sender)
        self._precheck(tx, flags, nonce)
        if flags.validate:
            self._validate(tx, run, "__validate_declare__", [hashes.class_hash])
        self._set_nonce(run, sender, nonce + 1)
        if self.reads is not None:
            self.reads.wrote_class(hashes.class_hash)
        run.journal.declare(
            DeclaredClass(
                hashes.class_hash,
                hashes.compiled_class_hash,
                json.loads(sierra_text),
                json.loads(casm_text),
            ),
            sierra_text,
            casm_text,
        )
        run.usage = self._usage(tx, run, _steps(run.validate))
        if flags.check_bounds and (shortfall := amount_shortfall(tx.resource_bounds, run.usage)):
            raise errors.insufficient_resources(shortfall)
        self._charge(tx, run, flags)

    # --------------------------------------------------------- deploy account

    def _deploy_account(self, tx: DeployAccountV3Request, run: Execution, flags: RunFlags) -> None:
        address = tx.contract_address
        if self.reads is not None:
            self.reads.declared.setdefault(
                tx.class_hash, tx.class_hash in self.vm.state.compiled_class_hashes
            )
            self.reads.class_hashes.setdefault(address, self.vm.get_class_hash_at(address))
        if tx.class_hash not in self.vm.state.compiled_class_hashes:
            raise errors.class_hash_not_found()
        if address in self.vm.state.class_hashes:
            raise errors.invalid_transaction_nonce(
                f"an account is already deployed at {hex(address)} "
                f"(nonce {self.vm.get_nonce(address)})"
            )
        self._precheck(tx, flags, 0)
        try:
            deployed = self.vm.deploy(
                tx.class_hash,
                tx.constructor_calldata,
                salt=tx.contract_address_salt,
                commit=False,
            )
        except CairoRevert as exc:
            raise errors.validation_failure(f"constructor: {exc.reason}") from None
        self._track(deployed.result)
        run.journal.apply(deployed.result)
        run.events += deployed.result.events
        run.constructor = deployed.result.invocation
        if flags.validate:
            calldata = [tx.class_hash, tx.contract_address_salt, *tx.constructor_calldata]
            self._validate(tx, run, "__validate_deploy__", calldata)
        self._set_nonce(run, address, 1)
        run.usage = self._usage(tx, run, _steps(run.validate, run.constructor))
        if flags.check_bounds and (shortfall := amount_shortfall(tx.resource_bounds, run.usage)):
            raise errors.insufficient_resources(shortfall)
        self._charge(tx, run, flags)


class _FeeShortfall(Exception):
    pass

"""The executor: `CairoVM` runs declare, deploy, call and view against a `ChainState`, each
call atomic (a failing call leaves the state exactly as it was)."""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starkware.starknet.business_logic.execution.deprecated_objects import ExecutionResourcesManager
from starkware.starknet.business_logic.execution.execute_entry_point import ExecuteEntryPoint
from starkware.starknet.business_logic.execution.objects import (
    CallInfo,
    CallType,
    TransactionExecutionContext,
)
from starkware.starknet.business_logic.state.state import CachedSyncState
from starkware.starknet.business_logic.state.state_api import (
    SyncStateReader,
    get_stark_exception_on_undeclared_contract,
)
from starkware.starknet.business_logic.state.state_api_objects import BlockInfo
from starkware.starknet.core.os.contract_address.contract_address import (
    calculate_contract_address_from_hash,
)
from starkware.starknet.definitions.constants import VERSIONED_CONSTANTS, GasCost
from starkware.starknet.definitions.data_availability_mode import DataAvailabilityMode
from starkware.starknet.definitions.execution_mode import ExecutionMode
from starkware.starknet.definitions.general_config import StarknetGeneralConfig
from starkware.starknet.public.abi import CONSTRUCTOR_ENTRY_POINT_SELECTOR
from starkware.starknet.services.api.contract_class.contract_class import (
    CompiledClass,
    CompiledClassBase,
    ContractClass,
    EntryPointType,
)
from starkware.starkware_utils.error_handling import StarkException

from chain.vm.classes import BUILD_DIR, as_json_text, class_hashes, load_sierra, selector
from chain.vm.errors import CairoRevert, felts, short_string, to_revert
from chain.vm.values import (
    BlockContext,
    CallResult,
    ChainState,
    ClassHashes,
    DeclaredClass,
    Deployment,
    Event,
    Invocation,
    OrderedEvent,
    TxContext,
)
from chain.vm_views import StateReads, ViewCache, ViewKey

DEFAULT_CHAIN_ID = int.from_bytes(b"KEIKOCHAIN_DEV", "big")
_L1 = DataAvailabilityMode.L1


class _ChainId:
    """Stands in for cairo-lang's closed ``StarknetChainId`` enum, so any chain id works."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.name = short_string(value) or hex(value)

    def __hash__(self) -> int:
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ChainId) and other.value == self.value


class _KeikoGeneralConfig(StarknetGeneralConfig):
    """``StarknetGeneralConfig`` whose ``chain_id`` (what ``get_tx_info`` reports) is ours."""

    _keiko_chain_id: int = DEFAULT_CHAIN_ID

    @property  # type: ignore[override]
    def chain_id(self) -> _ChainId:  # type: ignore[override]
        return _ChainId(self._keiko_chain_id)


class _DictStateReader(SyncStateReader):
    """Serves cairo-lang's state reads from a ``ChainState``; never writes to it."""

    def __init__(self, chain: ChainState, compiled: dict[int, CompiledClassBase]) -> None:
        self._chain = chain
        self._compiled = compiled  # compiled class hash -> parsed CompiledClass

    def get_compiled_class(self, compiled_class_hash: int) -> CompiledClassBase:
        cached = self._compiled.get(compiled_class_hash)
        if cached is not None:
            return cached
        for class_hash, cch in self._chain.compiled_class_hashes.items():
            if cch == compiled_class_hash:
                declared = self._chain.classes[class_hash]
                compiled = CompiledClass.loads(declared.casm)
                self._compiled[compiled_class_hash] = compiled
                return compiled
        raise get_stark_exception_on_undeclared_contract(class_hash=compiled_class_hash)

    def get_sierra_class(self, class_hash: int) -> ContractClass:
        declared = self._chain.classes.get(class_hash)
        if declared is None:
            raise get_stark_exception_on_undeclared_contract(class_hash=class_hash)
        return load_sierra(declared.sierra)

    def get_compiled_class_hash(self, class_hash: int) -> int:
        return self._chain.compiled_class_hashes.get(class_hash, 0)

    def get_class_hash_at(self, contract_address: int) -> int:
        return self._chain.class_hashes.get(contract_address, 0)

    def get_nonce_at(
        self, data_availability_mode: DataAvailabilityMode, contract_address: int
    ) -> int:
        return self._chain.nonces.get(contract_address, 0)

    def get_storage_at(
        self, data_availability_mode: DataAvailabilityMode, contract_address: int, key: int
    ) -> int:
        return self._chain.storage.get(contract_address, {}).get(key, 0)


class CairoVM:
    def __init__(
        self,
        state: ChainState | None = None,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        block: BlockContext | None = None,
    ) -> None:
        self.state = state if state is not None else ChainState()
        self.block = block if block is not None else BlockContext()
        self.chain_id = chain_id
        self._general_config = _KeikoGeneralConfig()
        self._general_config._keiko_chain_id = chain_id
        # Parsed CompiledClass objects outlive calls: parsing CASM JSON costs milliseconds.
        self._compiled: dict[int, CompiledClassBase] = {}
        self._views = ViewCache()
        # What the last call or view read from the chain state (first value of each cell).
        self.last_reads: StateReads | None = None

    def fork(self) -> CairoVM:
        """An independent VM over a copy of the state, sharing the parsed classes."""
        forked = CairoVM(self.state.copy(), chain_id=self.chain_id, block=self.block)
        forked._compiled = self._compiled  # parsed CompiledClass objects are never mutated
        return forked

    # ------------------------------------------------------------------ classes

    def declare(
        self, sierra: str | Mapping[str, Any], casm: str | Mapping[str, Any]
    ) -> ClassHashes:
        sierra_text, casm_text = as_json_text(sierra), as_json_text(casm)
        hashes = class_hashes(sierra_text, casm_text)
        class_hash, compiled_class_hash = hashes.class_hash, hashes.compiled_class_hash
        compiled = CompiledClass.loads(casm_text)
        self.state.classes[class_hash] = DeclaredClass(sierra=sierra_text, casm=casm_text)
        self.state.compiled_class_hashes[class_hash] = compiled_class_hash
        self._compiled[compiled_class_hash] = compiled
        return ClassHashes(class_hash=class_hash, compiled_class_hash=compiled_class_hash)

    def declare_build(self, name: str, build_dir: Path = BUILD_DIR) -> ClassHashes:
        return self.declare(
            (build_dir / f"{name}.sierra.json").read_text(),
            (build_dir / f"{name}.casm.json").read_text(),
        )

    # ---------------------------------------------------------------- execution

    def deploy(
        self,
        class_hash: int,
        calldata: Sequence[int] = (),
        *,
        salt: int = 0,
        deployer_address: int = 0,
        commit: bool = True,
        at: int | None = None,
    ) -> Deployment:
        """Place ``class_hash`` at its address and run its constructor (caller: the
        deployer). ``commit=False`` runs it and returns the writes without applying them
        (the dev node journals them itself, as for any call). ``at`` places it at a fixed
        address instead (a chain's system contracts at their well-known addresses)."""
        calldata = felts(calldata, "constructor calldata")
        address = at
        if address is None:
            address = calculate_contract_address_from_hash(
                salt=salt,
                class_hash=class_hash,
                constructor_calldata=calldata,
                deployer_address=deployer_address,
            )
        if class_hash not in self.state.compiled_class_hashes:
            raise CairoRevert(
                f"class {hex(class_hash)} is not declared",
                code="UNDECLARED_CLASS",
                panic_data=[],
                message="",
            )
        entry_point = ExecuteEntryPoint.create(
            contract_address=address,
            calldata=calldata,
            entry_point_selector=CONSTRUCTOR_ENTRY_POINT_SELECTOR,
            caller_address=deployer_address,
            initial_gas=GasCost.DEFAULT_INITIAL.value,
            entry_point_type=EntryPointType.CONSTRUCTOR,
        )

        def run(state: CachedSyncState, resources: ExecutionResourcesManager) -> CallInfo:
            try:
                state.deploy_contract(contract_address=address, class_hash=class_hash)
            except StarkException as exc:
                raise to_revert(exc) from exc
            compiled = state.get_compiled_class_by_class_hash(class_hash=class_hash)
            if not compiled.entry_points_by_type[EntryPointType.CONSTRUCTOR]:
                # As Starknet does: no constructor to run, so no calldata to pass it.
                if calldata:
                    raise CairoRevert(
                        "calldata given to a contract without constructor",
                        code="INVALID_CALLDATA",
                        panic_data=[],
                        message="",
                    )
                return CallInfo.empty_constructor_call(
                    contract_address=address,
                    caller_address=deployer_address,
                    class_hash=class_hash,
                )
            return self._execute(state, resources, entry_point, TxContext(), validate=False)

        return Deployment(address=address, result=self._atomic(run, commit=commit))

    def call(
        self,
        contract_address: int,
        entry_point: str | int,
        calldata: Sequence[int] = (),
        *,
        caller_address: int = 0,
        tx: TxContext | None = None,
        validate: bool = False,
        commit: bool = True,
        entry_point_type: str = "EXTERNAL",
    ) -> CallResult:
        if tx is not None:
            felts(tx.signature, "signature")
        entry = ExecuteEntryPoint.create(
            contract_address=contract_address,
            calldata=felts(calldata, "calldata"),
            entry_point_selector=selector(entry_point),
            caller_address=caller_address,
            initial_gas=GasCost.DEFAULT_INITIAL.value,
            entry_point_type=EntryPointType[entry_point_type],
        )
        return self._atomic(
            lambda state, resources: self._execute(
                state, resources, entry, tx or TxContext(), validate=validate
            ),
            commit=commit,
        )

    def view(
        self,
        contract_address: int,
        entry_point: str | int,
        calldata: Sequence[int] = (),
        *,
        caller_address: int = 0,
        tx: TxContext | None = None,
    ) -> list[int]:
        """A read-only call's return data. Results are remembered with the state they read
        (storage cells, class hashes, nonces) and, when the call looked at the block or
        transaction (``get_execution_info``), with that context too: a later view with the
        same inputs over unchanged reads is answered without running the VM again."""
        key = ViewKey(contract_address, selector(entry_point), tuple(calldata), caller_address)
        context = (self.block, tx)
        cached = self._views.lookup(key, self.state, context)
        if cached is not None:
            retdata, self.last_reads = cached
            return list(retdata)
        result = self.call(
            contract_address,
            entry_point,
            calldata,
            caller_address=caller_address,
            tx=tx,
            commit=False,
        )
        assert self.last_reads is not None
        self._views.store(key, result, self.last_reads, context)
        return result.retdata

    # -------------------------------------------------------------------- reads

    def get_storage_at(self, contract_address: int, key: int) -> int:
        return self.state.storage.get(contract_address, {}).get(key, 0)

    def get_nonce(self, contract_address: int) -> int:
        return self.state.nonces.get(contract_address, 0)

    def get_class_hash_at(self, contract_address: int) -> int:
        return self.state.class_hashes.get(contract_address, 0)

    def increment_nonce(self, contract_address: int) -> int:
        nonce = self.get_nonce(contract_address) + 1
        self.state.nonces[contract_address] = nonce
        return nonce

    # ---------------------------------------------------------------- internals

    def _block_info(self) -> BlockInfo:
        return BlockInfo.create_for_testing(
            block_number=self.block.number,
            block_timestamp=self.block.timestamp,
            sequencer_address=self.block.sequencer_address,
        )

    def _atomic(
        self,
        run: Callable[[CachedSyncState, ExecutionResourcesManager], CallInfo],
        *,
        commit: bool,
    ) -> CallResult:
        """Run on a scratch state over ``self.state``; merge its writes only on success."""
        reader = _DictStateReader(self.state, self._compiled)
        root = CachedSyncState(
            block_info=self._block_info(),
            state_reader=reader,
            compiled_class_cache=self._compiled,
        )
        resources = ExecutionResourcesManager.empty()
        # copy_and_apply merges the child into root only when the body did not raise, and
        # root itself is thrown away on failure: self.state is never half-written.
        with root.copy_and_apply() as scratch:
            call_info = run(scratch, resources)
        # cairo-lang keeps the pending writes and first reads in StateCache's private dicts
        # and offers no public accessor for them on CachedSyncState (0.14.0.1, pinned).
        cache = root.cache
        self.last_reads = StateReads.of(cache)
        storage_diff: dict[int, dict[int, int]] = {}
        for (address, key), value in cache._storage_writes.items():
            if reader.get_storage_at(_L1, address, key) != value:
                storage_diff.setdefault(address, {})[key] = value
        deployed = {
            address: class_hash
            for address, class_hash in cache._class_hash_writes.items()
            if reader.get_class_hash_at(address) != class_hash
        }
        if commit:
            for address, writes in storage_diff.items():
                self.state.storage.setdefault(address, {}).update(writes)
            self.state.class_hashes.update(deployed)
            self.state.nonces.update(cache._nonce_writes)
        return CallResult(
            retdata=list(call_info.retdata),
            events=[
                Event(from_address=e.from_address, keys=list(e.keys), data=list(e.data))
                for e in call_info.get_sorted_events()
            ],
            storage_diff=storage_diff,
            n_steps=call_info.execution_resources.n_steps,
            class_hash_writes=deployed,
            invocation=_invocation(call_info),
            syscalls=dict(resources.syscall_counter),
        )

    def _execute(
        self,
        state: CachedSyncState,
        resources: ExecutionResourcesManager,
        entry_point: ExecuteEntryPoint,
        tx: TxContext,
        *,
        validate: bool,
    ) -> CallInfo:
        max_steps = (
            VERSIONED_CONSTANTS.validate_max_n_steps
            if validate
            else VERSIONED_CONSTANTS.invoke_tx_max_n_steps
        )
        context = TransactionExecutionContext.create(
            account_contract_address=tx.account_address,
            transaction_hash=tx.transaction_hash,
            signature=list(tx.signature),
            max_fee=tx.max_fee,
            nonce=tx.nonce,
            n_steps=max_steps,
            version=tx.version,
            execution_mode=ExecutionMode.VALIDATE if validate else ExecutionMode.EXECUTE,
        )
        try:
            return entry_point.execute(
                state=state,
                resources_manager=resources,
                tx_execution_context=context,
                general_config=self._general_config,
            )
        except StarkException as exc:
            raise to_revert(exc) from exc


def _invocation(info: CallInfo) -> Invocation:
    entry_type = info.entry_point_type
    return Invocation(
        contract_address=info.contract_address,
        entry_point_selector=info.entry_point_selector or 0,
        calldata=list(info.calldata),
        caller_address=info.caller_address,
        class_hash=info.class_hash or 0,
        entry_point_type="EXTERNAL" if entry_type is None else entry_type.name,
        call_type="LIBRARY_CALL" if info.call_type is CallType.Delegate else "CALL",
        result=list(info.retdata),
        calls=[_invocation(inner) for inner in info.internal_calls],
        events=[OrderedEvent(e.order, list(e.keys), list(e.data)) for e in info.events],
        n_steps=info.execution_resources.n_steps,
        failed=bool(info.failure_flag),
    )

"""Execute compiled Keikochain contracts in cairo-lang's Cairo VM.

The dev node and the contract tests share this small executor. It owns no files and
no threads: the chain state is a few plain dicts (``ChainState``) that the caller may
persist and restore as it likes, and every call is atomic (a failing call leaves the
state exactly as it was).

API
---
``ChainState``
    ``storage[address][key] -> value``, ``nonces[address]``,
    ``class_hashes[address] -> class hash`` (deployed contracts),
    ``compiled_class_hashes[class hash] -> compiled class hash`` (declared classes),
    ``classes[class hash] -> DeclaredClass(sierra, casm)`` (JSON texts).
    ``to_json()`` / ``ChainState.from_json()`` give a JSON-safe dict (hex strings);
    ``copy()`` an independent copy.

``CairoVM(state=None, *, chain_id=DEFAULT_CHAIN_ID, block=None)``
    ``vm.block``: ``BlockContext(number, timestamp, sequencer_address)``, read by
    contracts through ``get_block_info``; set it before executing a block's txs.

    ``declare(sierra, casm) -> ClassHashes``: sierra/casm as JSON text or dict, as in
        ``contracts/build/``; returns (class_hash, compiled_class_hash).
    ``declare_build(name, build_dir=BUILD_DIR) -> ClassHashes``.
    ``deploy(class_hash, calldata=(), *, salt=0, deployer_address=0) -> Deployment``:
        runs the constructor (caller = deployer; a class without constructor takes no
        calldata and is just placed) and returns the address (computed as Starknet
        does, so it equals starknet-py's ``compute_address``) and the result.
    ``call(address, entry_point, calldata=(), *, caller_address=0, tx=None,
        validate=False, commit=True) -> CallResult``: ``entry_point`` is a name or a
        selector; ``tx`` (``TxContext``) is what ``get_tx_info`` shows: account address,
        transaction hash, signature, nonce, version (default 3). ``validate=True`` runs
        under Starknet's validate-mode restrictions (for ``__validate__``).
        ``commit=False`` runs and discards the writes (views, fee estimation).
    ``view(address, entry_point, calldata=(), ...) -> list[int]``: ``call`` with
        ``commit=False``, returning the retdata.
    ``fork() -> CairoVM``: an independent VM over a copy of the state.
    ``get_storage_at``, ``get_nonce``, ``get_class_hash_at``, ``increment_nonce``:
        plain reads and the node's nonce bump (the VM does not manage nonces, because a
        v3 invoke is assembled by the node from ``__validate__`` and ``__execute__``).

``CallResult``: ``retdata``, ``events`` (``Event(from_address, keys, data)`` in
    emission order, nested calls included), ``storage_diff`` (address -> key -> new
    value, only the values that changed), ``n_steps``.

``CairoRevert``: raised for any failed execution. ``reason`` is the decoded Cairo panic
    (felts that are short strings become text: ``'empty root'``), ``panic_data`` the raw
    felts, ``code`` the Starknet error code name (``TRANSACTION_FAILED``,
    ``UNINITIALIZED_CONTRACT``, ``ENTRY_POINT_NOT_FOUND_IN_CONTRACT``...). Also raised,
    with code ``OUT_OF_RANGE_FELT``, for calldata or signature values that are not felts
    (cairo-lang would silently reduce them modulo P).

Modules: ``values`` (the types above), ``errors`` (``CairoRevert``), ``classes`` (class
hashes, selectors), ``machine`` (``CairoVM``), ``speedups`` (what makes cairo-lang faster).

Importing this package installs ``chain.fast_ecdsa`` (faster, proven-equal ``ec_op``
builtin and square-root hint) into cairo-lang; ``fast_ecdsa.uninstall()`` reverts it.

Performance note for long-running processes: every call allocates hundreds of thousands
of short-lived VM objects, and the cyclic garbage collector's full passes then walk all
long-lived ones (parsed classes, the state). Calling ``gc.collect(); gc.freeze()`` once
the genesis/restored state is loaded cut the CPU time of a signed invoke by ~20% here.

Example::

    vm = CairoVM()
    anchor = vm.declare_build("interaction_anchor").class_hash
    addr = vm.deploy(anchor, [admin]).address
    vm.call(addr, "add_operator", [op], caller_address=admin)
"""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
from chain.vm import speedups  # noqa: F401  (installs the speedups into cairo-lang)
from chain.vm.classes import (
    BUILD_DIR,
    class_hashes,
    compiled_class_hash,
    selector,
    sierra_class_hash,
)
from chain.vm.errors import CairoRevert, decode_panic
from chain.vm.machine import DEFAULT_CHAIN_ID, CairoVM
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

__all__ = [
    "BUILD_DIR",
    "DEFAULT_CHAIN_ID",
    "BlockContext",
    "CairoRevert",
    "CairoVM",
    "CallResult",
    "ChainState",
    "ClassHashes",
    "DeclaredClass",
    "Deployment",
    "Event",
    "Invocation",
    "OrderedEvent",
    "TxContext",
    "class_hashes",
    "compiled_class_hash",
    "decode_panic",
    "selector",
    "sierra_class_hash",
]

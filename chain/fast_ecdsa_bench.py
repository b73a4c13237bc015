"""Before/after figures for chain.fast_ecdsa on an account-signed invoke.

    python -m chain.fast_ecdsa_bench [--runs 15]

Runs the node's two steps of a v3 invoke (``__validate__`` with a real Stark signature,
then ``__execute__`` of one ``anchor_batch``) in the Cairo VM, alternating cairo-lang's
original ``ec_op``/``sqrt`` with the fast ones so that machine load hits both alike, and
prints the medians in milliseconds of process CPU time (wall time on a shared 2-core
machine mostly measures the neighbours). The garbage collector runs before, not during,
each sample: its pauses land on whichever sample crosses a threshold and would drown
the difference being measured.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from starknet_py.hash.selector import get_selector_from_name
from starknet_py.hash.utils import message_signature
from starknet_py.net.signer.key_pair import KeyPair

from chain import fast_ecdsa
from chain.vm import CairoVM, TxContext

LEARNING = int.from_bytes(b"learning", "big")


def _setup() -> tuple[CairoVM, KeyPair, int, int]:
    vm = CairoVM()
    account_class = vm.declare_build("account").class_hash
    anchor_class = vm.declare_build("interaction_anchor").class_hash
    key = KeyPair.from_private_key(0xB3AC4)
    account = vm.deploy(account_class, [key.public_key]).address
    anchor = vm.deploy(anchor_class, [0xAD]).address
    vm.call(anchor, "add_operator", [account], caller_address=0xAD)
    return vm, key, account, anchor


def _invoke(vm: CairoVM, key: KeyPair, account: int, anchor: int, i: int) -> tuple[float, float]:
    calldata = [1, anchor, get_selector_from_name("anchor_batch"), 4, i, 0x1000 + i, 8, LEARNING]
    tx_hash = 0x5EED0000 + i
    gc.collect()
    gc.disable()
    tx = TxContext(
        account_address=account,
        transaction_hash=tx_hash,
        signature=list(message_signature(tx_hash, key.private_key)),
        nonce=i,
    )
    t0 = time.process_time()
    vm.call(account, "__validate__", calldata, tx=tx, validate=True, commit=False)
    t1 = time.process_time()
    vm.call(account, "__execute__", calldata, tx=tx)
    t2 = time.process_time()
    gc.enable()
    return (t1 - t0) * 1000, (t2 - t1) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    vm, key, account, anchor = _setup()
    samples: dict[str, list[tuple[float, float]]] = {"original": [], "fast": []}
    _invoke(vm, key, account, anchor, 1)  # warm-up: class loading, caches
    i = 2
    for _ in range(args.runs):
        for mode in ("original", "fast"):
            fast_ecdsa.install() if mode == "fast" else fast_ecdsa.uninstall()
            samples[mode].append(_invoke(vm, key, account, anchor, i))
            i += 1
    fast_ecdsa.install()
    print(f"median of {args.runs} runs, CPU ms  validate  execute  invoke")
    for mode, runs in samples.items():
        validate = statistics.median(v for v, _ in runs)
        execute = statistics.median(e for _, e in runs)
        total = statistics.median(v + e for v, e in runs)
        print(f"{mode:>24}  {validate:8.1f} {execute:8.1f} {total:7.1f}")


if __name__ == "__main__":
    main()

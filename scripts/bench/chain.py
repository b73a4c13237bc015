"""Benchmark: Keikochain ``anchor_batch`` invokes and view calls through starknet-py.

Starts the dev node in its own process (temp data dir, free port) unless ``--rpc-url``
points at a running node, then, with :class:`chain.client.KeikoChain` (starknet-py's
``FullNodeClient`` + ``Account``, one signed v3 INVOKE per anchor, waiting for each
receipt):

* ``anchor_batch`` with fee estimation (the client's default: estimate, sign, send,
  wait), sequentially: latency p50/p95 and invokes per second;
* the same with fixed resource bounds (sign, send, wait): the cost of the invoke alone;
* ``is_root_anchored`` view calls: with arguments never asked before (each one executed in
  the Cairo VM), then repeated over unchanged state (answered from the node's view memo,
  which re-checks every storage cell the call read), sequentially and 8 in flight.

    .venv/bin/python scripts/bench/chain.py [--invokes 20] [--calls 200] \
        [--write FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from starknet_py.net.client_models import ResourceBounds, ResourceBoundsMapping  # noqa: E402

from chain.client import FeePolicy, KeikoChain  # noqa: E402
from chain.node.process import NodeProcess, start_node_process  # noqa: E402

FIXED_BOUNDS = ResourceBoundsMapping(
    l1_gas=ResourceBounds(max_amount=0, max_price_per_unit=2 * 10**9),
    l2_gas=ResourceBounds(max_amount=10**8, max_price_per_unit=10**6),
    l1_data_gas=ResourceBounds(max_amount=10**5, max_price_per_unit=10**4),
)


@dataclass
class Figures:
    name: str
    count: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    def row(self) -> str:
        return (
            f"| {self.name} | {self.count} | {self.per_second:.2f} | "
            f"{self.pct(0.5):.0f} | {self.pct(0.95):.0f} | "
            f"{statistics.mean(self.latencies) * 1000:.0f} |"
        )


async def timed(name: str, count: int, op: Callable[[int], Awaitable[object]]) -> Figures:
    latencies = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        await op(i)
        latencies.append(time.perf_counter() - t0)
    return Figures(name, count, time.perf_counter() - start, latencies)


async def concurrent(
    name: str, count: int, width: int, op: Callable[[int], Awaitable[object]]
) -> Figures:
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            t0 = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(width)))
    return Figures(name, count, time.perf_counter() - start, latencies)


async def run(
    rpc_url: str, deployment: Path, accounts_file: Path, invokes: int, calls: int
) -> list[Figures]:
    account = json.loads(await asyncio.to_thread(accounts_file.read_text))["accounts"][0]
    estimating = await KeikoChain.connect(
        rpc_url, account["address"], account["private_key"], deployment, poll_interval=0.02
    )
    default_signer = await KeikoChain.connect(
        rpc_url,
        account["address"],
        account["private_key"],
        deployment,
        poll_interval=0.02,
        fast_signing=False,
    )
    fixed = await KeikoChain.connect(
        rpc_url,
        account["address"],
        account["private_key"],
        deployment,
        poll_interval=0.02,
        fee=FeePolicy(fixed=FIXED_BOUNDS),
    )
    base = int(time.time() * 1000) << 20  # fresh batch ids and roots on a reused chain
    try:
        for i in range(2):  # warm-up: class caches in the node, sessions in the client
            await estimating.anchor.anchor_batch(base + i, base + i, 1, "learning")

        async def anchor_estimated(i: int) -> None:
            r = await estimating.anchor.anchor_batch(base + 100 + i, base + 100 + i, 64, "learning")
            assert r.succeeded, r.revert_reason

        async def anchor_default_signer(i: int) -> None:
            r = await default_signer.anchor.anchor_batch(
                base + 20_000 + i, base + 20_000 + i, 64, "learning"
            )
            assert r.succeeded, r.revert_reason

        async def anchor_fixed(i: int) -> None:
            r = await fixed.anchor.anchor_batch(
                base + 10_000 + i, base + 10_000 + i, 64, "learning"
            )
            assert r.succeeded, r.revert_reason

        async def view(i: int) -> None:
            await estimating.anchor.is_root_anchored(base + 100 + (i % max(invokes, 1)))

        async def view_fresh(i: int) -> None:
            # An argument never asked before: the node runs the call in the Cairo VM.
            await estimating.anchor.is_root_anchored(base + 50_000 + i)

        results = [
            await timed(
                "anchor_batch, estimate + sign + send + receipt", invokes, anchor_estimated
            ),
            await timed(
                "same, with starknet-py's default signer (crypto-cpp)",
                invokes,
                anchor_default_signer,
            ),
            await timed("anchor_batch, fixed bounds: sign + send + receipt", invokes, anchor_fixed),
            await timed(
                "is_root_anchored view, each a new argument (runs in the VM)",
                max(calls // 10, 1),
                view_fresh,
            ),
            await timed("is_root_anchored view, sequential", calls, view),
            await concurrent("is_root_anchored view, 8 in flight", calls, 8, view),
        ]
    finally:
        await estimating.close()
        await default_signer.close()
        await fixed.close()
    return results


def signing_figures(samples: int = 5) -> list[Figures]:
    """One Stark ECDSA signature: starknet-py's (crypto-cpp) and FastStarkSigner's."""
    from starknet_py.hash.utils import message_signature

    from chain.client.signer import fast_message_signature

    key, base = 0x5EC12E7, 0x1234567890ABCDEF
    fast_message_signature(base, key)  # builds the generator table once

    def measure(name: str, sign: Callable[[int, int], object]) -> Figures:
        latencies = []
        for i in range(samples):
            t0 = time.perf_counter()
            sign(base + i, key)
            latencies.append(time.perf_counter() - t0)
        return Figures(name, samples, sum(latencies), latencies)

    return [
        measure("sign, starknet-py message_signature (crypto-cpp)", message_signature),
        measure("sign, chain.client.signer.fast_message_signature", fast_message_signature),
    ]


def render(results: list[Figures], command: str, node_note: str, load: tuple[float, float]) -> str:
    lines = [
        "# Keikochain dev node: benchmark figures",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; {node_note}. "
        f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 1-minute load "
        f"average {load[0]:.1f} before and {load[1]:.1f} after (other work shares the cores).",
        "",
        "Every operation goes through starknet-py 0.30 (`FullNodeClient`, `Account`) over "
        "HTTP JSON-RPC to the node process; an invoke is one signed v3 INVOKE "
        "(`__validate__` with Stark ECDSA + `__execute__` in cairo-lang's pure-Python "
        "Cairo VM), mined into its own block, and the latency includes waiting for the "
        "receipt (`wait_for_tx`).",
        "",
        "| operation | n | per second | p50 ms | p95 ms | mean ms |",
        "|---|---|---|---|---|---|",
        *(r.row() for r in results),
        "",
        "Fee estimation executes the transaction once more in the VM (with validation), "
        "so the default client path costs about twice the fixed-bounds path; it also signs "
        "twice (the estimate query and the transaction), which is what the signer rows "
        "measure: `KeikoChain` signs with `FastStarkSigner` (same signatures as "
        "starknet-py's, property-tested) unless `fast_signing=False`. One "
        "`anchor_batch` carries a whole Merkle root, so interactions per second are this "
        "rate times the batch size.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rpc-url", help="a running node (default: start one)")
    parser.add_argument("--deployment", type=Path, help="deployment.json of --rpc-url")
    parser.add_argument("--accounts-file", type=Path, help="accounts.json of --rpc-url")
    parser.add_argument("--write", type=Path, help="also write the figures (markdown) here")
    args = parser.parse_args(argv)

    node: NodeProcess | None = None
    tmp = tempfile.TemporaryDirectory(prefix="keikochain-bench-")
    try:
        if args.rpc_url:
            rpc_url, deployment, accounts_file = args.rpc_url, args.deployment, args.accounts_file
            node_note = f"node at {args.rpc_url}"
        else:
            data_dir = Path(tmp.name) / "chain"
            node = start_node_process(data_dir, accounts=2, log_path=Path(tmp.name) / "node.log")
            rpc_url, deployment, accounts_file = (
                node.rpc_url,
                node.deployment_file,
                node.accounts_file,
            )
            node_note = "dev node started by the script in its own process"
        load_before = os.getloadavg()[0]
        results = asyncio.run(run(rpc_url, deployment, accounts_file, args.invokes, args.calls))
        results += signing_figures()
        load_after = os.getloadavg()[0]
    finally:
        if node is not None:
            node.stop()
        tmp.cleanup()

    command = "python scripts/bench/chain.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = render(results, command.strip(), node_note, (load_before, load_after))
    print(text)
    if args.write:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

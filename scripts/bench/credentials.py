"""Benchmark: signing and verifying Verifiable Credentials (Data Integrity proofs).

Builds LearningRecordCredentials of 1, 10 and 100 real signed records (Ed25519 keys,
Merkle evidence), then measures, per size and per cryptosuite, creating one proof and
verifying it: `eddsa-rdfc-2022` canonicalizes the JSON-LD graph (pyld, RDFC-1.0) and is
the cost that matters; `eddsa-jcs-2022` (RFC 8785) is the baseline in the same run.
Keiko issues both (a proof set), so issuing costs their sum. Single process, one core.

    .venv/bin/python scripts/bench/credentials.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chain.credentials.integrity import (  # noqa: E402
    Cryptosuite,
    ProofOptions,
    add_proof,
    verify_proofs,
)
from chain.credentials.learning_credentials import Issuer, learning_record_credential  # noqa: E402
from chain.credentials.records import AuthorKind  # noqa: E402
from chain.tests.credentials.factory import ANA, NOW, Ledger, statement  # noqa: E402


@dataclass
class Result:
    records: int
    suite: str
    step: str
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return 1000 / statistics.mean(self.latencies_ms)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(rounds: int, work: Callable[[], object]) -> list[float]:
    work()  # warm caches (contexts, pyld's resolved context cache)
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        out.append((time.perf_counter() - start) * 1000)
    return out


def run(rounds: int) -> list[Result]:
    results = []
    for size in (1, 10, 100):
        ledger = Ledger()
        records = ledger.anchor([(statement(ANA, n), ANA, AuthorKind.SELF) for n in range(size)])
        unsigned = learning_record_credential(
            "urn:uuid:00000000-0000-4000-8000-0000000000b1",
            Issuer(ANA.did, "Ana"),
            ANA.did,
            records,
            NOW,
            name="Learning record",
            description="benchmark",
        )
        for suite in (Cryptosuite.EDDSA_JCS_2022, Cryptosuite.EDDSA_RDFC_2022):
            options = ProofOptions(suite, ANA.method, NOW)
            signed = add_proof(unsigned, options, ANA.sign)
            assert all(c.ok for c in verify_proofs(signed))
            n = rounds if size < 100 or suite is Cryptosuite.EDDSA_JCS_2022 else max(5, rounds // 3)

            def sign(u: dict[str, object] = unsigned, o: ProofOptions = options) -> object:
                return add_proof(u, o, ANA.sign)

            def verify(s: dict[str, object] = signed) -> object:
                return verify_proofs(s)

            results.append(Result(size, suite.value, "sign", timed(n, sign)))
            results.append(Result(size, suite.value, "verify", timed(n, verify)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = run(args.rounds)
    print(f"load average before: {load:.1f}, after: {os.getloadavg()[0]:.1f}")
    print("| records | cryptosuite | step | per second | p50 ms | p95 ms | p99 ms | vs JCS |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    baseline = {
        (r.records, r.step): statistics.mean(r.latencies_ms)
        for r in results
        if r.suite == Cryptosuite.EDDSA_JCS_2022.value
    }
    for r in results:
        ratio = statistics.mean(r.latencies_ms) / baseline[(r.records, r.step)]
        print(
            f"| {r.records} | {r.suite} | {r.step} | {r.per_second:,.1f} | "
            f"{r.percentile(50):.2f} | {r.percentile(95):.2f} | {r.percentile(99):.2f} | "
            f"{ratio:.1f}x |"
        )


if __name__ == "__main__":
    main()

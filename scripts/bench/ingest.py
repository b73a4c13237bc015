"""Benchmark: the chain translator's ingest and anchoring path, end to end.

The translator runs in this process (``ChainTranslator`` + ``AnchoringEngine`` +
``ChainWatcher`` with the production settings of ``TranslatorSettings``, batch policy from
the flags); the Keikochain dev node runs in its own process, started by the script in a
temp dir (one fresh node per pass: batch ids restart with each fresh database). For each
database engine (SQLite file in a temp dir; PostgreSQL: a fresh database created and
dropped by the script) and each pass:

1. ``--records`` custodially signed ``keiko.anchor.v1`` envelopes are built before timing
   (one key per learner, ``--learners`` learners; the key records are stored first);
2. ``--concurrency`` workers call ``ChainTranslator.submit`` (envelope checks, Ed25519
   verification, learner-key lookup, the insert) as fast as it answers;
3. the engine seals batches (``--batch`` leaves or ``--max-wait-ms``), sends
   ``anchor_batch`` and the watcher confirms each batch from its ``BatchAnchored`` event.

Figures: submitted records/s (first submit to last answer), anchored records/s (first
submit to the last record confirmed), per-record latency submit -> anchored (p50/p95/p99),
batch sealed -> anchored (p50), the ``anchor_batch`` call (p50), and CPU per record of
this process, of the node and of the PostgreSQL backends.

Baseline, same run, same flags: the same pipeline with the chain replaced by the
in-memory ``interaction_anchor`` double of the tests (instant ``anchor_batch``, events
included). Everything else (submission, database, sealing, Merkle proofs, claims,
watcher) is identical, so the ratio is the cost of the real chain. A CPU-only row
(``parse_leaf_data`` alone: canonical JSON, Ed25519 verify, leaf hash) shows the floor of
one submission without any database. ``--fees reuse,estimate`` runs the dev node twice,
with the engine reusing fee estimates (the default) and estimating every send (the
baseline of that optimisation, chain.translator.anchor_fees).

    .venv/bin/python -m scripts.bench.ingest [--records 2000] [--concurrency 32] \
        [--batch 256] [--max-wait-ms 500] [--engines sqlite,postgres] \
        [--fees reuse,estimate] [--write FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from starknet_py.net.client_models import EstimatedFee, ResourceBoundsMapping  # noqa: E402

from chain.client import AnchoredBatch, EventPage, TxResult  # noqa: E402
from chain.node.process import NodeProcess, start_node_process  # noqa: E402
from chain.tests.translator_service.fakes import FakeAnchorChain  # noqa: E402
from chain.translator.anchoring import AnchoringEngine, EngineSettings  # noqa: E402
from chain.translator.batching import BatchPolicy, Domain, make_batch_id  # noqa: E402
from chain.translator.keys import KeyVault  # noqa: E402
from chain.translator.leaf_data import anchor_leaf_data, parse_leaf_data  # noqa: E402
from chain.translator.ports import (  # noqa: E402
    AnchorChain,
    ChainConnection,
    ClientAnchorChain,
    chain_config_from_env,
)
from chain.translator.service import ChainTranslator  # noqa: E402
from chain.translator.servicer import TranslatorSettings  # noqa: E402
from chain.translator.signing import canonical_bytes  # noqa: E402
from chain.translator.storage import (  # noqa: E402
    ANCHORED,
    MIGRATIONS_DIR,
    AnchorConfirmation,
    BatchRow,
    ChainStore,
    Cursor,
    records,
)
from chain.translator.watcher import ChainWatcher  # noqa: E402
from scripts.bench.pg_floor import Floor, pg_floor  # noqa: E402
from scripts.bench.throwaway import throwaway_postgres  # noqa: E402
from services.kit.auth import Principal  # noqa: E402
from services.kit.clock import Clock, SystemClock  # noqa: E402
from services.kit.db import Database  # noqa: E402
from services.kit.logging import configure_logging  # noqa: E402
from services.kit.migrations import upgrade  # noqa: E402

SERVICE = Principal("bench-learning-svc", frozenset({"service"}))
DEV_NODE = "dev node"
FEES_REUSE = "reuse"
FEES_ESTIMATE = "estimate"
IN_MEMORY = "in-memory (baseline)"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FLOOR_CONCURRENCY = 16


# -- inputs ---------------------------------------------------------------------------------


def statement(i: int, learner: str) -> dict[str, object]:
    return {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "actor": {"account": {"homePage": "https://keiko.example", "name": learner}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": f"https://keiko.example/q/{i}"},
        "result": {"score": {"scaled": 0.8}},
    }


@dataclass(frozen=True)
class Inputs:
    """Custodial keys (wrapped under ``vault``'s KEK) and the signed envelopes."""

    vault: KeyVault
    keys: dict[str, tuple[bytes, bytes]]  # learner -> (wrapped record, public key)
    envelopes: list[bytes]


def build_inputs(count: int, learners: int) -> Inputs:
    vault = KeyVault(os.urandom(32))
    keys = {}
    for n in range(learners):
        generated = vault.generate(f"learner-{n}")
        keys[f"learner-{n}"] = (generated.record, generated.public_key)
    envelopes = []
    for i in range(count):
        learner = f"learner-{i % learners}"
        record, public_key = keys[learner]
        body = statement(i, learner)
        signature = vault.sign(record, learner, canonical_bytes(body))
        envelopes.append(anchor_leaf_data(learner, body, signature, public_key))
    return Inputs(vault, keys, envelopes)


# -- instrumentation ------------------------------------------------------------------------


class TimedStore(ChainStore):
    """The real store, noting when each batch is sealed and confirmed (and by what)."""

    def __init__(self, db: Database, clock: Clock, target: int) -> None:
        super().__init__(db, clock)
        self.target = target
        self.sealed_at: dict[int, float] = {}
        self.leaves: dict[int, int] = {}
        self.anchored_at: dict[int, float] = {}
        self.confirmed_by: Counter[str] = Counter()
        self.anchored_records = 0
        self.all_anchored = asyncio.Event()

    async def seal_batch(
        self, domain: Domain, policy: BatchPolicy, *, force: bool = False
    ) -> BatchRow | None:
        batch = await super().seal_batch(domain, policy, force=force)
        if batch is not None:
            self.sealed_at[batch.batch_id] = time.perf_counter()
            self.leaves[batch.batch_id] = batch.leaf_count
        return batch

    def _anchored(self, batch_ids: Iterable[int], source: str) -> None:
        now = time.perf_counter()
        for batch_id in batch_ids:
            if batch_id in self.anchored_at or batch_id not in self.leaves:
                continue
            self.anchored_at[batch_id] = now
            self.confirmed_by[source] += 1
            self.anchored_records += self.leaves[batch_id]
        if self.anchored_records >= self.target:
            self.all_anchored.set()

    async def confirm(self, confirmations: Iterable[AnchorConfirmation], source: str) -> list[int]:
        changed = await super().confirm(confirmations, source)
        self._anchored(changed, source)
        return changed

    async def apply_events(
        self, name: str, confirmations: Sequence[AnchorConfirmation], cursor: Cursor
    ) -> list[int]:
        changed = await super().apply_events(name, confirmations, cursor)
        self._anchored(changed, "event")
        return changed


class TimedChain:
    """An :class:`AnchorChain` that times ``anchor_batch`` (sign, send, receipt)."""

    def __init__(self, inner: AnchorChain) -> None:
        self.inner = inner
        self.sends: dict[int, tuple[float, float]] = {}  # batch id -> (start, end)
        self.estimates = 0  # explicit fee estimates (sends with reused bounds have none)

    async def anchor_batch(
        self,
        batch_id: int,
        root: int,
        leaf_count: int,
        domain: str | int,
        *,
        resource_bounds: ResourceBoundsMapping | None = None,
    ) -> TxResult:
        started = time.perf_counter()
        result = await self.inner.anchor_batch(
            batch_id, root, leaf_count, domain, resource_bounds=resource_bounds
        )
        self.sends[batch_id] = (started, time.perf_counter())
        return result

    async def estimate_anchor_batch(
        self, batch_id: int, root: int, leaf_count: int, domain: str | int
    ) -> EstimatedFee:
        self.estimates += 1
        return await self.inner.estimate_anchor_batch(batch_id, root, leaf_count, domain)

    async def get_batch(self, batch_id: int) -> AnchoredBatch | None:
        return await self.inner.get_batch(batch_id)

    async def is_root_anchored(self, root: int) -> bool:
        return await self.inner.is_root_anchored(root)

    async def events(
        self,
        name: str | None = None,
        *,
        keys: list[list[int]] | None = None,
        from_block: int = 0,
        to_block: int | str | None = None,
        chunk_size: int = 100,
        continuation_token: str | None = None,
    ) -> EventPage:
        return await self.inner.events(
            name,
            keys=keys,
            from_block=from_block,
            to_block=to_block,
            chunk_size=chunk_size,
            continuation_token=continuation_token,
        )

    async def block_number(self) -> int:
        return await self.inner.block_number()


async def loop_lag(stop: asyncio.Event, samples: list[float], interval: float = 0.05) -> None:
    """How late a 50 ms sleep wakes up: how long the translator's one event loop makes
    its tasks (submits, engine, watcher) wait for their turn."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(interval)
        samples.append(time.perf_counter() - started - interval)


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (Linux ``/proc``); 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_backends_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each local PostgreSQL backend serving ``database`` (its
    process title names the database); empty where ``/proc`` shows none."""
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
            found[int(entry)] = process_cpu_seconds(int(entry))
    return found


def postgres_cpu_since(database: str, before: dict[int, float]) -> float:
    """CPU the backends of ``database`` used since ``before`` (a backend that ended
    meanwhile is not counted; the pool keeps its connections open)."""
    now = postgres_backends_cpu(database)
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())


# -- figures --------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Params:
    records: int
    concurrency: int
    batch: int
    max_wait_ms: int
    learners: int
    timeout: float


@dataclass
class PassResult:
    engine: str
    chain: str
    params: Params
    submit_seconds: float
    anchored_seconds: float | None  # None: not every record anchored before the timeout
    anchored_records: int
    submit_latencies: list[float]
    record_latencies: list[float]
    submit_to_sealed: list[float]
    seal_to_anchored: list[float]
    seal_to_send: list[float]
    send_seconds: list[float]
    send_to_anchored: list[float]
    loop_lag: list[float]
    batch_sizes: list[int]
    confirmed_by: Counter[str]
    cpu_self: float
    cpu_node: float
    cpu_db: float  # the PostgreSQL backends' (0 on SQLite, whose work is in cpu_self)
    load: tuple[float, float]
    fees: str = ""  # the dev node's: FEES_REUSE or FEES_ESTIMATE
    fee_estimates: int = 0  # explicit estimates (FEES_ESTIMATE: each send estimates)
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.chain}, fees: {self.fees}" if self.fees else self.chain

    @property
    def submit_rate(self) -> float:
        return self.params.records / self.submit_seconds

    @property
    def anchored_rate(self) -> float:
        return 0.0 if self.anchored_seconds is None else self.params.records / self.anchored_seconds


# -- one pass -------------------------------------------------------------------------------


async def warm_up_chain(connection: ChainConnection) -> int:
    """Connect, anchor one throw-away batch in another domain (node class caches, the
    client's session and nonce), and return the first block the watcher must read."""
    chain = await connection.get()
    junk = make_batch_id(Domain.GOVERNANCE, 2**63 + int.from_bytes(os.urandom(4), "big"))
    result = await chain.anchor.anchor_batch(junk, junk, 1, Domain.GOVERNANCE.value)
    if not result.succeeded:
        raise RuntimeError(f"warm-up anchor reverted: {result.revert_reason}")
    return await chain.block_number() + 1


async def run_pass(
    engine_name: str,
    chain_kind: str,
    params: Params,
    inputs: Inputs,
    workdir: Path,
    fees: str = FEES_REUSE,
) -> PassResult:
    tag = "node" if chain_kind == DEV_NODE else "mem"
    stack = AsyncExitStack()  # holds the throwaway PostgreSQL database, if any
    database_url = (
        await stack.enter_async_context(throwaway_postgres())
        if engine_name == "postgres"
        else f"sqlite+aiosqlite:///{workdir / tag / 'keiko.db'}"
    )
    node: NodeProcess | None = None
    connection: ChainConnection | None = None
    db = Database(database_url, schemas=("chain",))
    try:
        await db.create_schemas()
        await upgrade(db, "chain", MIGRATIONS_DIR)
        clock = SystemClock()
        store = TimedStore(db, clock, params.records)
        for learner, (record, public_key) in inputs.keys.items():
            await store.put_key_record(learner, record, public_key)
        tuning = TranslatorSettings(
            batch_max_leaves=params.batch, batch_max_wait_ms=params.max_wait_ms
        )
        settings: EngineSettings = tuning.engine()
        settings = replace(settings, fees=replace(settings.fees, enabled=fees == FEES_REUSE))
        start_block = 0
        inner: AnchorChain
        if chain_kind == DEV_NODE:
            node_dir = workdir / tag / "chain"
            node = await asyncio.to_thread(
                start_node_process, node_dir, accounts=2, log_path=workdir / tag / "node.log"
            )
            config = chain_config_from_env(
                data_dir=node_dir.parent, rpc_url=node.rpc_url, environ={}
            )
            connection = ChainConnection(config.rpc_url, config.account, config.deployment_file)
            start_block = await warm_up_chain(connection)
            inner = ClientAnchorChain(connection)
        else:
            inner = FakeAnchorChain()
        chain = TimedChain(inner)
        engine = AnchoringEngine(store, chain, clock, settings)
        watcher = ChainWatcher(
            store, chain, start_block=start_block, poll_interval=tuning.watcher_poll_ms / 1000
        )
        translator = ChainTranslator(store, inputs.vault, chain, engine)

        stop = asyncio.Event()
        jobs = [asyncio.create_task(job(stop)) for job in (engine.run, watcher.run)]
        lag: list[float] = []
        jobs.append(asyncio.create_task(loop_lag(stop, lag)))
        started_at: dict[str, float] = {}
        submit_latencies: list[float] = []
        queue = iter(enumerate(inputs.envelopes))

        async def worker() -> None:
            for i, envelope in queue:
                record_id = f"bench-{i}"
                t0 = started_at[record_id] = time.perf_counter()
                await translator.submit(SERVICE, Domain.LEARNING, record_id, envelope)
                submit_latencies.append(time.perf_counter() - t0)

        load_before = os.getloadavg()[0]
        cpu_self0 = time.process_time()
        cpu_node0 = process_cpu_seconds(node.pid) if node else 0.0
        database = db.url.database or ""
        cpu_db0 = postgres_backends_cpu(database) if engine_name == "postgres" else {}
        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(params.concurrency)))
        t_submitted = time.perf_counter()
        anchored_seconds: float | None
        try:
            await asyncio.wait_for(store.all_anchored.wait(), params.timeout)
            anchored_seconds = time.perf_counter() - t_start
        except TimeoutError:
            anchored_seconds = None
        cpu_self = time.process_time() - cpu_self0
        cpu_node = (process_cpu_seconds(node.pid) - cpu_node0) if node else 0.0
        cpu_db = postgres_cpu_since(database, cpu_db0) if engine_name == "postgres" else 0.0
        load_after = os.getloadavg()[0]
        stop.set()
        await asyncio.gather(*jobs, return_exceptions=True)

        async with db.session() as s:
            rows = (await s.execute(select(records.c.record_id, records.c.batch_id))).all()
        batch_of = {r.record_id: int(r.batch_id, 16) for r in rows if r.batch_id is not None}
        latencies = [
            store.anchored_at[b] - started_at[rid]
            for rid, b in batch_of.items()
            if b in store.anchored_at
        ]
        sent = {b: chain.sends[b] for b in store.anchored_at if b in chain.sends}
        errors = [f"{b.batch_id:#x}: {b.last_error}" for b in await store.list_batches()]
        errors = [e for e in errors if not e.endswith(": None")]
        if await store.count_records(status=ANCHORED) != store.anchored_records:
            errors.append("the store's ANCHORED count differs from the confirmations seen")
        return PassResult(
            engine=engine_name,
            chain=chain_kind,
            fees=fees if chain_kind == DEV_NODE else "",
            fee_estimates=chain.estimates,
            params=params,
            submit_seconds=t_submitted - t_start,
            anchored_seconds=anchored_seconds,
            anchored_records=store.anchored_records,
            submit_latencies=submit_latencies,
            record_latencies=latencies,
            submit_to_sealed=[store.sealed_at[b] - started_at[rid] for rid, b in batch_of.items()],
            seal_to_anchored=[store.anchored_at[b] - store.sealed_at[b] for b in store.anchored_at],
            seal_to_send=[start - store.sealed_at[b] for b, (start, _) in sent.items()],
            send_seconds=[end - start for start, end in sent.values()],
            send_to_anchored=[store.anchored_at[b] - end for b, (_, end) in sent.items()],
            loop_lag=lag,
            batch_sizes=[store.leaves[b] for b in sorted(store.leaves)],
            confirmed_by=store.confirmed_by,
            cpu_self=cpu_self,
            cpu_node=cpu_node,
            cpu_db=cpu_db,
            load=(load_before, load_after),
            errors=errors,
        )
    finally:
        if connection is not None:
            await connection.close()
        await db.dispose()
        if node is not None:
            await node.astop()
        await stack.aclose()


def check_only_rate(envelopes: Sequence[bytes]) -> tuple[float, float, int]:
    """``parse_leaf_data`` alone (no database): records/s, µs per record, records."""
    started = time.perf_counter()
    for envelope in envelopes:
        parse_leaf_data(envelope)
    seconds = time.perf_counter() - started
    return len(envelopes) / seconds, seconds / len(envelopes) * 1e6, len(envelopes)


# -- report ---------------------------------------------------------------------------------


def _s(value: float) -> str:
    return f"{value:.2f}"


def floor_rate(floors: Sequence[Floor]) -> float:
    """The mean of the run's PostgreSQL floors (rows/s), 0 without any."""
    return sum(f.rate for f in floors) / len(floors) if floors else 0.0


def floor_line(floors: Sequence[Floor]) -> str:
    if not floors:
        return "PostgreSQL floor: not measured (no postgres pass, or --floor-rows 0)."
    each = ", ".join(f"{f.rate:,.0f}" for f in floors)
    first = floors[0]
    return (
        f"PostgreSQL floor (one-row JSONB insert of a statement, c{first.concurrency}, "
        f"{first.rows} rows, before and after the passes): {each} rows/s, mean "
        f'{floor_rate(floors):,.0f}; "vs PG floor" is a pass\'s anchored rate over that mean.'
    )


def table(
    results: list[PassResult], check: tuple[float, float, int], floors: Sequence[Floor] = ()
) -> str:
    floor = floor_rate(floors)
    lines = [
        "| engine | chain | records / conc / batch / wait | submit rec/s | anchored rec/s "
        "| latency p50 s | p95 s | p99 s | seal->anchored p50 s | anchor_batch p50 s "
        "| batches | CPU ms/rec (bench / node / PostgreSQL) | anchored rate vs baseline "
        "| vs PG floor |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    baseline = {r.engine: r.anchored_rate for r in results if r.chain == IN_MEMORY}
    for r in results:
        p = r.params
        base = baseline.get(r.engine)
        ratio = f"{r.anchored_rate / base:.2f}x" if base and r.anchored_rate else "-"
        anchored = f"{r.anchored_rate:.0f}" if r.anchored_seconds else "timeout"
        node_cpu = f"{1000 * r.cpu_node / p.records:.2f}" if r.chain == DEV_NODE else "-"
        db_cpu = f"{1000 * r.cpu_db / p.records:.2f}" if r.engine == "postgres" else "-"
        lines.append(
            f"| {r.engine} | {r.label} | {p.records} / {p.concurrency} / {p.batch} / "
            f"{p.max_wait_ms} ms | {r.submit_rate:.0f} | {anchored} | "
            f"{_s(pct(r.record_latencies, 0.5))} | {_s(pct(r.record_latencies, 0.95))} | "
            f"{_s(pct(r.record_latencies, 0.99))} | {_s(pct(r.seal_to_anchored, 0.5))} | "
            f"{_s(pct(r.send_seconds, 0.5))} | {len(r.batch_sizes)} | "
            f"{1000 * r.cpu_self / p.records:.2f} / {node_cpu} / {db_cpu} | {ratio} | "
            + (f"{100 * r.anchored_rate / floor:.1f} % |" if floor and r.anchored_rate else "- |")
        )
    lines.append(
        f"| - | none (CPU only: `parse_leaf_data`) | {check[2]} envelopes, 1 thread | "
        f"{check[0]:.0f} | - | - | - | - | - | - | - | {check[1] / 1000:.2f} / - / - | - | - |"
    )
    return "\n".join(lines)


def details(results: list[PassResult]) -> str:
    out = []
    for r in results:
        out.append(
            f"- {r.engine}, {r.label}: submit call p50 {1000 * pct(r.submit_latencies, 0.5):.1f} ms"
            f" / p95 {1000 * pct(r.submit_latencies, 0.95):.1f} ms; per record, submit -> "
            f"sealed p50 {pct(r.submit_to_sealed, 0.5):.2f} s; per batch (p50), sealed -> "
            f"anchor_batch sent {pct(r.seal_to_send, 0.5):.2f} s, anchor_batch "
            f"{pct(r.send_seconds, 0.5):.2f} s, its answer -> watcher confirmed "
            f"{pct(r.send_to_anchored, 0.5):.2f} s; event-loop lag p50 "
            f"{1000 * pct(r.loop_lag, 0.5):.0f} ms / p95 {1000 * pct(r.loop_lag, 0.95):.0f} ms; "
            f"submitting took "
            f"{r.submit_seconds:.2f} s, all anchored after "
            + (f"{r.anchored_seconds:.2f} s" if r.anchored_seconds else "TIMEOUT")
            + (
                f"; node CPU {r.cpu_node / len(r.send_seconds):.2f} s per anchor_batch"
                f" ({len(r.send_seconds)} sends, "
                + (
                    f"{r.fee_estimates} fee estimates)"
                    if r.fees == FEES_REUSE
                    else "each estimated first)"
                )
                if r.chain == DEV_NODE and r.send_seconds
                else ""
            )
            + f"; batch sizes {r.batch_sizes}; confirmed by {dict(r.confirmed_by)}; "
            f"1-min load {r.load[0]:.1f} -> {r.load[1]:.1f}"
            + (f"; ERRORS: {r.errors}" if r.errors else "")
        )
    return "\n".join(out)


def render(
    results: list[PassResult],
    check: tuple[float, float, int],
    command: str,
    loads: list[str],
    floors: Sequence[Floor] = (),
) -> str:
    return "\n".join(
        [
            "# Chain translator ingest and anchoring: benchmark figures",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}; run on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Load (`uptime`), "
            f"before and after: {loads[0]} / {loads[-1]} (other work shares the cores).",
            "",
            "Translator in the benchmark process (`ChainTranslator.submit`, no gRPC), "
            "production engine/watcher settings (`TranslatorSettings`), dev node in its own "
            "process (fresh per pass, one warm-up anchor before timing). Latency is per "
            "record, from the start of its submit call to the commit that marks its batch "
            "anchored; rates are records over first submit -> last answer (submit) or -> "
            "last record anchored (anchored). CPU is this process's, the node's and the "
            "PostgreSQL backends' (of the pass's database) CPU time over the timed window "
            "divided by the records.",
            "",
            table(results, check, floors),
            "",
            floor_line(floors),
            "",
            details(results),
            "",
        ]
    )


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


async def measure_floor(rows: int, concurrency: int) -> Floor:
    """PostgreSQL's own pace in this run: one-row JSONB inserts of a statement at
    ``concurrency`` connections, on a throwaway database (scripts.bench.xapi_ingest)."""
    async with throwaway_postgres() as url:
        plain = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        return await pg_floor(plain, rows, concurrency, json.dumps(statement(0, "floor")))


async def amain(
    args: argparse.Namespace,
) -> tuple[list[PassResult], tuple[float, float, int], list[Floor]]:
    params = Params(
        args.records, args.concurrency, args.batch, args.max_wait_ms, args.learners, args.timeout
    )
    inputs = await asyncio.to_thread(build_inputs, params.records, params.learners)
    check = check_only_rate(inputs.envelopes)
    # Untimed warm-up: lazy imports, first-use caches, the event loop's first passes.
    warm = min(200, params.records)
    with tempfile.TemporaryDirectory(prefix="keiko-bench-ingest-") as tmp:
        await run_pass(
            "sqlite",
            IN_MEMORY,
            replace(params, records=warm),
            replace(inputs, envelopes=inputs.envelopes[:warm]),
            Path(tmp),
        )
    results: list[PassResult] = []
    floors: list[Floor] = []
    with_floor = args.floor_rows > 0 and "postgres" in args.engines.split(",")
    if with_floor:
        floors.append(await measure_floor(args.floor_rows, FLOOR_CONCURRENCY))
    fee_modes = args.fees.split(",")
    unknown = set(fee_modes) - {FEES_REUSE, FEES_ESTIMATE}
    if unknown:
        raise SystemExit(f"--fees: unknown {sorted(unknown)}; {FEES_REUSE} or {FEES_ESTIMATE}")
    chains = [(IN_MEMORY, FEES_REUSE)]
    if not args.baseline_only:
        chains += [(DEV_NODE, mode) for mode in fee_modes]
    for engine_name in args.engines.split(","):
        for chain_kind, fees in chains:
            with tempfile.TemporaryDirectory(prefix="keiko-bench-ingest-") as tmp:
                result = await run_pass(engine_name, chain_kind, params, inputs, Path(tmp), fees)
            results.append(result)
            print(
                f"[{engine_name}, {result.label}] submit {result.submit_rate:.0f}/s, anchored "
                f"{result.anchored_rate:.0f}/s, p50 {pct(result.record_latencies, 0.5):.2f} s",
                file=sys.stderr,
            )
    if with_floor:
        floors.append(await measure_floor(args.floor_rows, FLOOR_CONCURRENCY))
    return results, check, floors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256, help="max leaves per batch")
    parser.add_argument("--max-wait-ms", type=int, default=500, help="max batch wait")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--learners", type=int, default=64, help="distinct custodial keys")
    parser.add_argument("--timeout", type=float, default=300.0, help="per pass, seconds")
    parser.add_argument(
        "--baseline-only", action="store_true", help="skip the dev node (in-memory chain only)"
    )
    parser.add_argument(
        "--floor-rows",
        type=int,
        default=3000,
        help="rows of the PostgreSQL floor, measured before and after the passes (0: none)",
    )
    parser.add_argument(
        "--fees",
        default=FEES_REUSE,
        help=f"dev-node passes, comma list: {FEES_REUSE} (sends reuse a fee estimate per "
        f"batch-size band, the default) and/or {FEES_ESTIMATE} (every send estimated first)",
    )
    parser.add_argument("--write", type=Path, help="also write the figures (markdown) here")
    args = parser.parse_args(argv)
    configure_logging("WARNING", json=False)

    loads = [uptime()]
    results, check, floors = asyncio.run(amain(args))
    loads.append(uptime())
    command = ".venv/bin/python -m scripts.bench.ingest " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = render(results, check, command.strip(), loads, floors)
    print(text)
    print(f"{os.cpu_count()} cores; {loads[0]} before, {loads[-1]} after")
    if args.write:
        args.write.write_text(text)
    return 1 if any(r.errors or r.anchored_seconds is None for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Shared pieces of the read benchmarks: the whole platform (`keiko serve`) in a
subprocess, on SQLite or a throwaway PostgreSQL, a signed-up user, closed-loop load
with percentiles (wrk when installed, else a Python client), the server's CPU per
request, and the machine's load for the record."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from keiko.authenticator import SoftwareAuthenticator  # noqa: E402
from scripts.bench.grpc_load import process_cpu_seconds, process_tree_cpu_seconds  # noqa: E402
from scripts.bench.throwaway import throwaway_postgres  # noqa: E402
from scripts.bench.wrk import HttpRequest, run_wrk, wrk_path  # noqa: E402

ORIGIN = "http://localhost:8000"
# `keiko` with betterproto's pure-Python codec even where betterproto-rust-codec is
# installed (the "before" of the codec change, for side-by-side runs).
PURE_CODEC = (
    "import sys; sys.modules['betterproto_rust_codec'] = None; "
    "from keiko.cli import main; sys.exit(main(sys.argv[1:]))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Load:
    """One closed-loop run: ``requests`` calls by ``concurrency`` workers (``errors`` of
    them failed: they count in the latencies, not in the rate). Latencies either as
    samples (the Python client) or as percentiles already computed (wrk);
    ``server_cpu_s``: the server process's CPU during the run, when measured."""

    name: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int = 0
    percentiles_ms: dict[int, float] | None = None
    server_cpu_s: float | None = None
    # Requests the server answered while its CPU was measured: with wrk, those counted
    # plus the ones in flight when it stopped (one a connection; answered, not counted).
    server_requests: int | None = None

    @property
    def rate(self) -> float:
        return (self.requests - self.errors) / self.seconds

    def percentile(self, q: int) -> float:
        if self.percentiles_ms is not None:
            return self.percentiles_ms[q]
        return pct(self.latencies_ms, q)

    @property
    def cpu_ms_per_request(self) -> float | None:
        answered = self.server_requests or self.requests
        if self.server_cpu_s is None or not answered:
            return None
        return self.server_cpu_s / answered * 1000

    def row(self, baseline: Load | None) -> str:
        ratio = f"{baseline.rate / self.rate:.1f}x" if baseline is not None and self.rate else "-"
        cpu = self.cpu_ms_per_request
        return (
            f"| {self.name} | {self.concurrency} | {self.rate:,.1f} | {self.percentile(50):.1f} | "
            f"{self.percentile(95):.1f} | {self.percentile(99):.1f} | {self.errors} | "
            f"{ratio if baseline is not None else '1.0x'} | "
            f"{'-' if cpu is None else f'{cpu:.2f}'} |"
        )


TABLE_HEAD = (
    "| call | concurrency | req/s | p50 ms | p95 ms | p99 ms | errors | cost vs baseline "
    "| server CPU ms/req |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


async def closed_loop(
    name: str,
    call: Callable[[], Awaitable[object]],
    concurrency: int,
    requests: int,
    warm_up: int = 20,
) -> Load:
    for _ in range(warm_up):
        await call()
    latencies: list[float] = []
    remaining = requests
    errors = 0

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                await call()
            except (RuntimeError, httpx.HTTPError):  # a deadline, a 5xx: counted, not fatal
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Load(name, concurrency, requests, time.perf_counter() - started, latencies, errors)


@asynccontextmanager
async def profiled(pid: int, path: Path | None) -> AsyncIterator[None]:
    """Sample ``pid`` with py-spy (raw collapsed stacks in ``path``) while the block runs;
    nothing when ``path`` is None. Summarize with scripts/bench/profile_summary.py."""
    if path is None:
        yield
        return
    spy = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")),
        *("record", "--pid", str(pid), "--format", "raw", "--output", str(path)),
        *("--rate", "50", "--nonblocking"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(1.0)
        yield
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        await spy.wait()


@dataclass
class Platform:
    http_port: int
    grpc_port: int
    pid: int
    engine: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def cpu_seconds(self) -> float:
        """User + system CPU of the `keiko serve` process and, with KEIKO_WORKERS > 1, of
        its workers (not of the chain node)."""
        return server_cpu_seconds(self.pid)

    async def quiesce(self, idle_share: float = 0.1, timeout: float = 30) -> None:
        """Wait until the server is (nearly) idle: requests a load generator left in
        flight when it stopped are still being answered, and their CPU must not count in
        the next measurement."""
        deadline = time.monotonic() + timeout
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            now = self.cpu_seconds()
            if now - before < idle_share * 0.25:
                return
            before = now


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and of its descendants (a supervisor's workers), the
    chain node child excepted."""
    nodes = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _is_chain_node_of(int(entry.name), pid)
    ]
    return process_tree_cpu_seconds(pid) - sum(_cpu_or_zero(node) for node in nodes)


def _is_chain_node_of(child: int, pid: int) -> bool:
    try:
        parent = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return parent == pid and b"chain.node" in Path(f"/proc/{child}/cmdline").read_bytes()
    except OSError:  # it ended meanwhile
        return False


def _cpu_or_zero(pid: int) -> float:
    try:
        return process_cpu_seconds(pid)
    except OSError:
        return 0.0


@asynccontextmanager
async def running_platform(
    engine: str,
    *,
    with_chain: bool = False,
    extra_env: dict[str, str] | None = None,
    pure_codec: bool = False,
) -> AsyncIterator[Platform]:
    """`keiko serve` (every service and the gateway) on ``engine`` ("sqlite" or
    "postgres"); without the chain node unless ``with_chain``; ``pure_codec``: with
    betterproto's pure-Python codec."""
    database: AbstractAsyncContextManager[str] = (
        throwaway_postgres() if engine == "postgres" else nullcontext("")
    )
    async with database as database_url:
        with tempfile.TemporaryDirectory() as data_dir:
            http_port, grpc_port = free_port(), free_port()
            env = {
                **os.environ,
                "KEIKO_DATA_DIR": data_dir,
                "KEIKO_DATABASE_URL": database_url,
                "KEIKO_HTTP_PORT": str(http_port),
                "KEIKO_GRPC_PORT": str(grpc_port),
                "KEIKO_CHAIN_NODE_PORT": str(free_port()),
                "KEIKO_LOG_LEVEL": "WARNING",
                "KEIKO_WEBAUTHN_ORIGINS": f'["{ORIGIN}"]',
                "KEIKO_ACCESS_TOKEN_TTL_SECONDS": "3600",
                "KEIKO_HUMANITY_WARM_UP": "false",
                **(extra_env or {}),
            }
            keiko = (
                [sys.executable, "-c", PURE_CODEC]
                if pure_codec
                else [sys.executable, "-m", "keiko"]
            )
            if database_url:
                from chain.translator.keys import KeyVault

                env["KEIKO_KEK"] = KeyVault.new_kek()
                await asyncio.to_thread(
                    subprocess.run, [*keiko, "migrate"], env=env, check=True, capture_output=True
                )
            args = [*keiko, "serve"] + ([] if with_chain else ["--no-chain"])
            process = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
                args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                await _wait_ready(http_port, process)
                yield Platform(http_port, grpc_port, process.pid, engine)
            finally:
                process.terminate()
                process.wait(timeout=60)


async def _wait_ready(http_port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("keiko serve exited during start-up")
            try:
                if (await http.get(f"http://127.0.0.1:{http_port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    process.kill()
    raise RuntimeError("keiko serve was not ready in 300 s")


class GraphQL:
    """GraphQL over HTTP with one user's token (keep-alive connections, as a web client)."""

    def __init__(self, http: httpx.AsyncClient, token: str = "") -> None:
        self.http = http
        self.token = token

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"GraphQL failed: {response.status_code} {body}")
        return dict(body["data"])


REGISTER = """mutation($email: String!, $name: String!) {
  beginRegistration(email: $email, displayName: $name) { id optionsJson } }"""
FINISH = """mutation($id: ID!, $credential: String!) {
  finishRegistration(registrationId: $id, credentialJson: $credential) {
    user { id } tokens { accessToken } } }"""
RECORD = """mutation($input: InteractionInput!) { recordInteraction(input: $input) { id } }"""


async def sign_up(gql: GraphQL, name: str = "Bench") -> str:
    """A new user through the WebAuthn ceremony; sets ``gql.token``, returns the user id."""
    authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id="localhost")
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.org"
    begun = (await gql(REGISTER, email=email, name=name))["beginRegistration"]
    done = (
        await gql(FINISH, id=begun["id"], credential=authenticator.create(begun["optionsJson"]))
    )["finishRegistration"]
    gql.token = done["tokens"]["accessToken"]
    return str(done["user"]["id"])


def interaction(i: int, label: str = "bench") -> dict[str, Any]:
    kinds = ["QUESTION", "ANSWER", "EXERCISE", "EVALUATION"]
    return {
        "interactionType": kinds[i % len(kinds)],
        "activityId": f"https://keiko.example/activities/{label}/{i}",
        "title": f"{label} item {i}",
        "content": f"what is {i} squared?",
        "response": f"answer {i}",
        "score": {"scaled": round((i % 10) / 10, 1)},
        "success": i % 2 == 0,
    }


async def record_interactions(gql: GraphQL, count: int, concurrency: int = 8) -> None:
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await gql(RECORD, input=interaction(i))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@dataclass(frozen=True)
class ReadRun:
    """How one engine's read bench loads the server: ``client`` "wrk" (``seconds`` of
    load after a one-second warm-up) or "python" (``requests`` calls after 20 warm-up
    calls), ``concurrency`` connections; ``profile``: py-spy output for the measured read."""

    client: str
    concurrency: int
    requests: int
    seconds: float
    threads: int = 1
    profile: Path | None = None
    pure_codec: bool = False
    # Settings of this run's server (e.g. KEIKO_LOCAL_CALLS=0: the gateway's calls over
    # loopback gRPC), given to running_platform's extra_env.
    env: tuple[tuple[str, str], ...] = ()

    def platform_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**dict(self.env), **(extra or {})}

    async def load(
        self,
        name: str,
        platform: Platform,
        call: Callable[[], Awaitable[object]],
        request: HttpRequest,
        *,
        profile: bool = False,
    ) -> Load:
        """``request`` (with wrk) or ``call`` (with the Python client; the same request)
        in a closed loop, with the server's CPU over the measured part (and a py-spy
        profile of it when ``profile`` and the run has a profile path)."""
        if self.client == "wrk":
            await run_wrk(request, concurrency=self.concurrency, seconds=1, threads=self.threads)
            await platform.quiesce()  # the warm-up's requests left in flight
        else:
            for _ in range(20):
                await call()
        async with profiled(platform.pid, self.profile if profile else None):
            cpu = platform.cpu_seconds()  # from here: py-spy's start-up is not the load's
            if self.client == "wrk":
                result = await run_wrk(
                    request,
                    concurrency=self.concurrency,
                    seconds=self.seconds,
                    threads=self.threads,
                )
                measured = Load(
                    name,
                    self.concurrency,
                    result.requests,
                    result.seconds,
                    [],
                    result.errors,
                    result.percentiles_ms,
                    server_requests=result.requests + self.concurrency,
                )
                await platform.quiesce()  # until the requests in flight are answered
            else:
                measured = await closed_loop(name, call, self.concurrency, self.requests, warm_up=0)
            measured.server_cpu_s = platform.cpu_seconds() - cpu
        return measured


EngineBench = Callable[[str, ReadRun], Awaitable[list[Load]]]


def load_client(asked: str | None) -> str:
    """wrk when installed (unless the Python client is asked for); says so when it falls
    back to the Python client."""
    if asked == "python":
        return "python"
    if wrk_path() is None:
        print("wrk is not installed (Debian package `wrk`): using the Python httpx client, whose")
        print("CPU competes with the server's, so the rates below understate the server's")
        return "python"
    return "wrk"


async def read_bench_main(description: str, default_concurrency: int, bench: EngineBench) -> None:
    """The command line of a read bench: per engine, a baseline and the measured read
    (``bench`` returns both), printed as one table with the load before and after."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--client", choices=["wrk", "python"], help="load generator (default wrk)")
    parser.add_argument("--seconds", type=float, default=10, help="wrk: seconds a measurement")
    parser.add_argument("--threads", type=int, default=1, help="wrk: threads")
    parser.add_argument("--requests", type=int, default=1000, help="python client: requests")
    parser.add_argument("--concurrency", type=int, default=default_concurrency)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the server, per engine")
    parser.add_argument(
        "--pure-codec", action="store_true", help="betterproto's pure-Python codec (before)"
    )
    parser.add_argument(
        "--local-calls",
        choices=["on", "off", "both"],
        default="on",
        help="the gateway calls its co-hosted services in process (on, the default), over "
        "loopback gRPC (off), or both, one after the other per engine (off first)",
    )
    args = parser.parse_args()
    client = load_client(args.client)
    print(f"codec: {'pure Python' if args.pure_codec else 'as installed'}; load: {client}")
    print(f"before: {uptime()}")
    modes = ["off", "on"] if args.local_calls == "both" else [args.local_calls]
    for engine in args.engines.split(","):
        measured: dict[str, Load] = {}
        for mode in modes:
            suffix = f".{engine}.{mode}.txt" if len(modes) > 1 else f".{engine}.txt"
            run = ReadRun(
                client=client,
                concurrency=args.concurrency,
                requests=args.requests,
                seconds=args.seconds,
                threads=args.threads,
                profile=args.profile.with_suffix(suffix) if args.profile else None,
                pure_codec=args.pure_codec,
                env=(("KEIKO_LOCAL_CALLS", "1" if mode == "on" else "0"),),
            )
            baseline, *reads = await bench(engine, run)
            measured[mode] = reads[-1]
            rows = "\n".join(read.row(baseline) for read in reads)
            title = f"{engine}, in-process calls {mode}"
            print(f"\n{title}\n\n{TABLE_HEAD}\n{baseline.row(None)}\n{rows}\n")
            print(f"after {engine} ({mode}): {uptime()}")
        if len(measured) == 2:
            print(_compare(engine, measured["off"], measured["on"]))


def _compare(engine: str, before: Load, after: Load) -> str:
    """The same-run ratio of the last read, in-process calls off (before) and on."""
    line = f"{engine}: in-process {after.rate:,.1f} req/s vs loopback gRPC {before.rate:,.1f}"
    line += f" = {after.rate / before.rate:.2f}x"
    cpu_before, cpu_after = before.cpu_ms_per_request, after.cpu_ms_per_request
    if cpu_before is not None and cpu_after is not None:
        line += f"; server CPU a request {cpu_after:.2f} vs {cpu_before:.2f} ms"
    return line

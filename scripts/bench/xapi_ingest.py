"""Benchmark: signed and anchored interactions through the public APIs, with PostgreSQL's
own floor measured in the same run.

Starts the whole platform as a person runs it (``keiko migrate`` then ``keiko serve``:
every service, the gateway and the embedded Keikochain dev node, in a subprocess so the
load generator never shares its event loop) on a throwaway PostgreSQL database and a
Redis event bus under a key prefix of its own (deleted afterwards). One learner signs up
through the real WebAuthn ceremony (GraphQL) and records statements about themselves,
so every statement enters their passport: the learning service stores it, the outbox
relay publishes ``learning.interaction_recorded``, the translator signs it with the
learner's custodial Ed25519 key, queues its ``keiko.leaf.v2`` leaf, the anchoring engine
seals batches and sends ``anchor_batch`` to the node, and the watcher confirms them.

Scenarios (each on its own statements, one after the other, in one platform):

* ``xapi``: ``POST /xapi/statements``, one statement a request, ``--concurrency`` clients;
* ``xapi-batch``: ``POST /xapi/statements`` with arrays of ``--batch-size`` statements,
  ``--batch-concurrency`` clients;
* ``grpc``: ``keiko.learning.v1.LearningService/RecordInteraction``, ``--concurrency``
  clients on one channel;
* ``grpc-batch``: ``RecordInteractions`` with ``--batch-size`` interactions a call,
  ``--batch-concurrency`` clients (``--batch-statements`` interactions in all).

For each: requests answered per second (statements/s), then the time until the last of
them is anchored (``chain.records.anchored_at``), anchored statements/s (first request
to last anchored), and the anchoring latency per statement (its request's start to its
``anchored_at``), p50/p95/p99. CPU of the server and node processes over the scenario.

The floor, measured before and after the scenarios in the same run: a one-row JSONB
insert (the statement as it is posted) into a table of the same database, at
``--concurrency`` connections (asyncpg, prepared). Each figure is also given as a
fraction of the floor.

    .venv/bin/python -m scripts.bench.xapi_ingest [--statements 2000] \
        [--batch-statements 4000] [--concurrency 16] [--batch-concurrency 8] \
        [--batch-size 100] [--scenarios xapi,xapi-batch,grpc,grpc-batch] [--write FILE]

Measuring and the report: ``scripts.bench.ingest_measure``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chain.node.process import free_port  # noqa: E402
from chain.translator.keys import KeyVault  # noqa: E402
from keiko.authenticator import SoftwareAuthenticator  # noqa: E402
from scripts.bench.grpc_load import process_tree_cpu_seconds  # noqa: E402
from scripts.bench.ingest import process_cpu_seconds  # noqa: E402
from scripts.bench.ingest_measure import Scenario, Work, measure, report  # noqa: E402
from scripts.bench.pg_floor import Floor, pg_floor  # noqa: E402
from scripts.bench.throwaway import throwaway_postgres  # noqa: E402
from services.api.keiko.common import v1 as common  # noqa: E402
from services.api.keiko.learning import v1 as lpb  # noqa: E402
from services.kit.grpc.client import stub  # noqa: E402

ORIGIN = "http://localhost:8000"
KEIKO_HOME_PAGE = "https://keiko.network"
XAPI_VERSION = "1.0.3"

REGISTER = """mutation B($email: String!, $name: String!) {
  beginRegistration(email: $email, displayName: $name) { id optionsJson } }"""
FINISH_REGISTRATION = """mutation F($id: ID!, $credential: String!) {
  finishRegistration(registrationId: $id, credentialJson: $credential) { user { id } } }"""
LOGIN = "mutation L($email: String!) { beginLogin(email: $email) { id optionsJson } }"
FINISH_LOGIN = """mutation FL($id: ID!, $credential: String!) {
  finishLogin(loginId: $id, credentialJson: $credential) { tokens { accessToken } } }"""


# -- the platform ---------------------------------------------------------------------------


@dataclass
class Platform:
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    database_url: str  # asyncpg form
    redis_url: str

    def node_pid(self) -> int | None:
        """The dev node: the server's child process running ``chain.node`` (the workers of
        ``--workers N`` are its other children)."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                command = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid and b"chain.node" in command:
                return int(stat.parent.name)
        return None

    def server_cpu_seconds(self, node: int | None) -> float:
        """CPU of ``keiko serve`` and its workers, the node's left out."""
        total = process_tree_cpu_seconds(self.process.pid)
        return total - (process_cpu_seconds(node) if node else 0.0)


def start_platform(
    env: dict[str, str], http_port: int, grpc_port: int, log: Path, root: Path, workers: int = 1
) -> Platform:
    """``keiko migrate`` then ``keiko serve`` from the checkout ``root`` (``-m`` puts it
    first on the path: another checkout's code can be measured with this script);
    ``workers`` > 1: ``keiko serve --workers N``."""
    keiko = [sys.executable, "-m", "keiko"]
    subprocess.run([*keiko, "migrate"], env=env, cwd=root, check=True, capture_output=True)
    serve = ["serve", "--workers", str(workers)] if workers > 1 else ["serve"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*keiko, *serve], env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT
        )
    url = env["KEIKO_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    redis_url = env["KEIKO_EVENT_BUS_URL"].split("?")[0]
    return Platform(process, http_port, grpc_port, url, redis_url)


async def wait_ready(platform: Platform, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}") as http:
        while time.monotonic() < deadline:
            if platform.process.poll() is not None:
                raise RuntimeError("keiko serve exited during start-up (see its log)")
            try:
                answer = await http.post("/graphql", json={"query": "{ __typename }"})
                if answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("keiko serve did not answer in time")


async def sign_up(http: httpx.AsyncClient) -> tuple[str, str]:
    """WebAuthn registration and login over GraphQL: (user id, access token)."""

    async def gql(query: str, **variables: str) -> dict[str, object]:
        answer = await http.post("/graphql", json={"query": query, "variables": variables})
        body = answer.json()
        if "errors" in body:
            raise RuntimeError(str(body["errors"]))
        return dict(body["data"])

    authenticator = SoftwareAuthenticator(origin=ORIGIN, rp_id="localhost")
    email = f"bench-{uuid.uuid4().hex[:8]}@example.org"
    begun = (await gql(REGISTER, email=email, name="Bench Learner"))["beginRegistration"]
    assert isinstance(begun, dict)
    created = authenticator.create(begun["optionsJson"])
    done = (await gql(FINISH_REGISTRATION, id=begun["id"], credential=created))[
        "finishRegistration"
    ]
    assert isinstance(done, dict)
    login = (await gql(LOGIN, email=email))["beginLogin"]
    assert isinstance(login, dict)
    assertion = authenticator.get(login["optionsJson"])
    session = (await gql(FINISH_LOGIN, id=login["id"], credential=assertion))["finishLogin"]
    assert isinstance(session, dict)
    return str(done["user"]["id"]), str(session["tokens"]["accessToken"])


# -- inputs ---------------------------------------------------------------------------------


def statement(user_id: str, label: str, i: int) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "account": {"homePage": KEIKO_HOME_PAGE, "name": user_id}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
        "object": {
            "objectType": "Activity",
            "id": f"https://keiko.example/bench/{label}/q/{i % 50}",
            "definition": {"name": {"en-US": f"question {i % 50}"}},
        },
        "result": {"score": {"scaled": round((i % 10) / 10, 1)}, "success": i % 2 == 0},
    }


# -- scenarios ------------------------------------------------------------------------------


def xapi_work(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    user_id: str,
    label: str,
    count: int,
    size: int,
) -> Work:
    work: Work = []
    for start in range(0, count, size):
        body = [statement(user_id, label, i) for i in range(start, min(start + size, count))]
        payload = json.dumps(body[0] if size == 1 else body).encode()
        ids = [str(s["id"]) for s in body]

        async def post(payload: bytes = payload, n: int = len(body)) -> str | None:
            answer = await http.post("/xapi/statements", content=payload, headers=headers)
            if answer.status_code != 200:
                return f"POST answered {answer.status_code}: {answer.text[:200]}"
            if answer.headers.get("X-Keiko-Passport-Entries") != str(n):
                raise RuntimeError(f"not every statement entered the passport: {answer.headers}")
            return None

        work.append((ids, post))
    return work


def answer(label: str, i: int) -> lpb.InteractionInput:
    """The i-th interaction of a gRPC scenario: an answer to one of 50 questions."""
    return lpb.InteractionInput(
        interaction_type=common.InteractionType(common.InteractionType.ANSWER),
        activity_id=f"https://keiko.example/bench/{label}/q/{i % 50}",
        title=f"question {i % 50}",
        response=f"answer {i}",
        score=lpb.Score(scaled=round((i % 10) / 10, 1)),
    )


def grpc_work(learning: lpb.LearningServiceStub, label: str, count: int) -> Work:
    work: Work = []
    for i in range(count):
        statement_id = str(uuid.uuid4())
        request = lpb.RecordInteractionRequest(
            interaction=answer(label, i), statement_id=statement_id
        )

        async def record(request: lpb.RecordInteractionRequest = request) -> str | None:
            try:
                await learning.record_interaction(request)
            except grpc.aio.AioRpcError as error:
                return f"RecordInteraction: {error.code().name} {error.details()}"
            return None

        work.append(([statement_id], record))
    return work


def grpc_batch_work(learning: lpb.LearningServiceStub, label: str, count: int, size: int) -> Work:
    """RecordInteractions with ``size`` interactions a call (the same ones as ``grpc``)."""
    work: Work = []
    for start in range(0, count, size):
        ids = [str(uuid.uuid4()) for _ in range(start, min(start + size, count))]
        request = lpb.RecordInteractionsRequest(
            interactions=[
                lpb.InteractionSubmission(interaction=answer(label, start + k), statement_id=sid)
                for k, sid in enumerate(ids)
            ],
            request_id=str(uuid.uuid4()),
        )

        async def record(request: lpb.RecordInteractionsRequest = request) -> str | None:
            try:
                await learning.record_interactions(request)
            except grpc.aio.AioRpcError as error:
                return f"RecordInteractions: {error.code().name} {error.details()}"
            return None

        work.append((ids, record))
    return work


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("  ")[-1]


# -- main -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> str:
    load_before = uptime()
    prefix = f"keiko-bench-{uuid.uuid4().hex[:8]}"
    bus = f"{args.redis_url.rstrip('/')}?prefix={prefix}"
    scenarios: list[Scenario] = []
    floors: list[Floor] = []
    async with throwaway_postgres() as database_url:
        with tempfile.TemporaryDirectory() as data_dir:
            http_port, grpc_port = free_port(), free_port()
            env = {
                **os.environ,
                "KEIKO_DATA_DIR": data_dir,
                "KEIKO_DATABASE_URL": database_url,
                "KEIKO_EVENT_BUS_URL": bus,
                "KEIKO_GRPC_PORT": str(grpc_port),
                "KEIKO_HTTP_PORT": str(http_port),
                "KEIKO_CHAIN_NODE_PORT": str(free_port()),
                "KEIKO_LOG_LEVEL": "WARNING",
                "KEIKO_WEBAUTHN_ORIGINS": f'["{ORIGIN}"]',
                "KEIKO_ACCESS_TOKEN_TTL_SECONDS": "3600",
                "KEIKO_HUMANITY_WARM_UP": "false",
                "KEIKO_KEK": KeyVault.new_kek(),
            }
            log = Path(args.server_log or Path(data_dir) / "serve.log")
            root = Path(args.server_root)
            platform = start_platform(env, http_port, grpc_port, log, root, args.workers)
            try:
                await wait_ready(platform)
                pg_url = platform.database_url
                doc = json.dumps(statement("floor", "floor", 0))
                floors.append(await pg_floor(pg_url, args.floor_rows, args.concurrency, doc))
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{http_port}",
                    timeout=120,
                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
                ) as http:
                    user_id, token = await sign_up(http)
                    headers = {
                        "Authorization": f"Bearer {token}",
                        "X-Experience-API-Version": XAPI_VERSION,
                        "Content-Type": "application/json",
                    }
                    # Warm-up: connections, caches, the learner's custodial key, one batch.
                    warm = xapi_work(http, headers, user_id, "warm", 40, 1)
                    await measure("warm-up", platform, 8, warm, args.timeout)
                    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                        learning = stub(lpb.LearningServiceStub, channel, access_token=token)
                        for name in args.scenarios.split(","):
                            if args.profile_dir:
                                profile = start_profile(platform, Path(args.profile_dir), name)
                            if name == "xapi":
                                work = xapi_work(http, headers, user_id, name, args.statements, 1)
                                conc = args.concurrency
                            elif name == "xapi-batch":
                                work = xapi_work(
                                    http,
                                    headers,
                                    user_id,
                                    name,
                                    args.batch_statements,
                                    args.batch_size,
                                )
                                conc = args.batch_concurrency
                            elif name == "grpc":
                                work = grpc_work(learning, name, args.statements)
                                conc = args.concurrency
                            elif name == "grpc-batch":
                                work = grpc_batch_work(
                                    learning, name, args.batch_statements, args.batch_size
                                )
                                conc = args.batch_concurrency
                            else:
                                raise SystemExit(f"unknown scenario {name}")
                            label = {
                                "xapi": "xAPI POST, 1 statement a request",
                                "xapi-batch": f"xAPI POST, {args.batch_size} a request",
                                "grpc": "gRPC RecordInteraction",
                                "grpc-batch": f"gRPC RecordInteractions, {args.batch_size} a call",
                            }[name]
                            scenarios.append(
                                await measure(label, platform, conc, work, args.timeout)
                            )
                            if args.profile_dir:
                                stop_profile(profile)
                floors.append(await pg_floor(pg_url, args.floor_rows, args.concurrency, doc))
            finally:
                platform.process.send_signal(signal.SIGTERM)
                try:
                    platform.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    platform.process.kill()
                await drop_bus(args.redis_url, prefix)
    return report(scenarios, floors, (load_before, uptime()))


def start_profile(platform: Platform, out: Path, name: str) -> subprocess.Popen[bytes]:
    """py-spy (when installed) samples the server for the scenario: a speedscope file."""
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(platform.process.pid),
            "--format",
            "raw",
            "--output",
            str(out / f"{name}.txt"),
            "--rate",
            "50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(profile: subprocess.Popen[bytes]) -> None:
    profile.send_signal(signal.SIGINT)
    try:
        profile.wait(timeout=30)
    except subprocess.TimeoutExpired:
        profile.kill()


async def drop_bus(redis_url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--batch-statements", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-concurrency", type=int, default=8)
    parser.add_argument("--floor-rows", type=int, default=5000)
    parser.add_argument("--scenarios", default="xapi,xapi-batch,grpc")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--server-log", default="")
    parser.add_argument(
        "--server-root", default=str(ROOT), help="the checkout whose `keiko serve` is measured"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="keiko serve --workers N (server CPU: all)"
    )
    parser.add_argument("--profile-dir", default="", help="py-spy raw profiles per scenario")
    parser.add_argument("--write", default="", help="also write the report to this file")
    args = parser.parse_args(argv)
    args.server_root = str(Path(args.server_root).resolve())
    text = asyncio.run(run(args))
    print(text)
    if args.write:
        Path(args.write).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

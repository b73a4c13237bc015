"""Benchmark: N concurrent GraphQL subscribers (graphql-transport-ws), event-to-client
latency.

Starts the whole platform (`keiko serve --no-chain` in a subprocess), signs a learner up,
opens N WebSocket connections (default 1,000) each subscribed to `passportUpdated` with
the learner's token, and waits until every one has received a first event. Then, one at
a time, it records an interaction through GraphQL and measures, for every subscriber, the
time from sending the mutation to receiving the passport update it causes (so the figure
includes the write, the outbox relays, the passport's consumer, WatchPassport and the
gateway's fan-out to N sockets; every subscriber uses the same token, so they share one
gRPC stream and one execution in the gateway). The baseline in the same run is a bare
WebSocket broadcast server (`websockets`, a subprocess, without permessage-deflate like
the gateway) with the same N client connections: a trigger message is sent to all of
them, timed the same way; it is what the transport and this client cost. Each engine has
a second row timed from the mutation's reply instead (the interaction's write left out).

    .venv/bin/python scripts/bench/subscriptions.py [--subscribers 1000] [--events 10]
        [--engines sqlite,postgres]   # postgres also puts the bus on Redis Streams
        [--hops]                      # each event's server spans (a traced run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.span_sink import SpanSink
from scripts.bench.stack import (
    GraphQL,
    free_port,
    interaction,
    pct,
    profiled,
    running_platform,
    sign_up,
    uptime,
)

SUBSCRIPTION = "subscription { passportUpdated { kind occurredAt entry { statementId } } }"
RECORD = "mutation($input: InteractionInput!) { recordInteraction(input: $input) { id } }"

BROADCAST_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve, broadcast
clients = set()
async def handler(ws):
    clients.add(ws)
    try:
        async for message in ws:
            if message.startswith("fire"):
                broadcast(clients - {ws}, message)
    finally:
        clients.discard(ws)
async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), max_queue=None, compression=None):
        await asyncio.Future()
asyncio.run(main())
"""


class Subscriber:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: asyncio.Queue[float] = asyncio.Queue()

    async def read(self, is_event: Callable[[dict[str, object]], bool]) -> None:
        async for raw in self.ws:
            message = json.loads(raw) if raw != "fire" else {"type": "event"}
            if message.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
            elif is_event(message):
                self.received.put_nowait(time.perf_counter())


async def open_graphql(port: int, token: str) -> Subscriber:
    ws = await connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=120,
        max_queue=None,
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(ws.recv(), 120))
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no connection_ack: {ack}")
    sub_id = uuid.uuid4().hex
    await ws.send(
        json.dumps({"id": sub_id, "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
    )
    return Subscriber(ws)


def graphql_event(message: dict[str, object]) -> bool:
    if message.get("type") in ("error", "complete"):
        print(f"a subscription ended: {json.dumps(message)[:300]}")
    return message.get("type") == "next"


async def gather_bounded(factories: list[Callable[[], Awaitable[Subscriber]]]) -> list[Subscriber]:
    """Open connections 50 at a time (a thousand handshakes at once time out)."""
    out: list[Subscriber] = []
    for start in range(0, len(factories), 50):
        out += await asyncio.gather(*(f() for f in factories[start : start + 50]))
    return out


@dataclass
class Measured:
    """Latencies (ms) of every delivery, deliveries that did not come within 60 s (a
    stream cut off, or far behind), and each event's start (epoch ns) with its own."""

    latencies: list[float] = field(default_factory=list)
    missed: int = 0
    # The same deliveries timed from the mutation's reply (its write committed): the
    # delivery path without the write itself.
    after_reply: list[float] = field(default_factory=list)
    events: list[tuple[int, list[float]]] = field(default_factory=list)


async def measure(
    subscribers: list[Subscriber], fire: Callable[[], Awaitable[object]], events: int
) -> Measured:
    """Events fired one at a time, each timed from its firing to every subscriber."""
    out = Measured()
    for _ in range(events):
        started_ns = time.time_ns()
        started = time.perf_counter()
        await fire()
        replied = (time.perf_counter() - started) * 1000
        this_event: list[float] = []
        for subscriber in subscribers:
            left = started + 60 - time.perf_counter()
            try:
                arrived = await asyncio.wait_for(subscriber.received.get(), max(left, 0.001))
            except TimeoutError:
                out.missed += 1
                continue
            this_event.append((arrived - started) * 1000)
        if this_event:
            print(
                f"  event: reply {replied:.0f} ms, first {min(this_event):.0f}, "
                f"p50 {pct(this_event, 50):.0f}, last {max(this_event):.0f} ms"
            )
        out.latencies += this_event
        out.after_reply += [latency - replied for latency in this_event]
        out.events.append((started_ns, this_event))
        await drain(subscribers)
        await asyncio.sleep(0.2)
    return out


def print_hops(sink: SpanSink, measured: Measured) -> None:
    """Each event's trace: when each span started and ended after the mutation was sent
    (ms, server spans; the gateway's fan-out has none), then the deliveries."""
    for number, (started_ns, latencies) in enumerate(measured.events, 1):
        print(f"  hops of event {number} (ms after sending the mutation: start-end):")
        for span in sink.trace_of("graphql mutation", started_ns):
            start = (span.start_ns - started_ns) / 1e6
            end = (span.end_ns - started_ns) / 1e6
            print(f"    {start:8.1f} - {end:8.1f}  {span.name} [{span.service}]")
        if latencies:
            print(
                f"    delivered: first {min(latencies):.1f}, p50 {pct(latencies, 50):.1f}, "
                f"p95 {pct(latencies, 95):.1f}, last {max(latencies):.1f}"
            )


async def drain(subscribers: list[Subscriber]) -> None:
    for s in subscribers:
        while not s.received.empty():
            s.received.get_nowait()


async def bench_platform(
    engine: str,
    n: int,
    events: int,
    pure_codec: bool,
    profile: Path | None = None,
    sink: SpanSink | None = None,
) -> Measured:
    extra = sink.env() if sink is not None else {}
    if engine == "postgres":
        extra["KEIKO_EVENT_BUS_URL"] = f"redis://127.0.0.1:6379/0?prefix=bench{uuid.uuid4().hex}"
    async with (
        running_platform(engine, extra_env=extra, pure_codec=pure_codec) as platform,
        httpx.AsyncClient(base_url=platform.base_url, timeout=120) as http,
    ):
        gql = GraphQL(http)
        await sign_up(gql, "Watcher")
        token = gql.token
        opened = time.perf_counter()
        subscribers = await gather_bounded(
            [lambda: open_graphql(platform.http_port, token) for _ in range(n)]
        )
        readers = [asyncio.create_task(s.read(graphql_event)) for s in subscribers]
        counter = iter(range(10**6))

        async def fire() -> object:
            return await gql(RECORD, input=interaction(next(counter), "watched"))

        # Subscriptions have no acknowledgement: events until every subscriber got one.
        deadline = time.monotonic() + 180
        while any(s.received.empty() for s in subscribers):
            if time.monotonic() > deadline:
                missing = sum(s.received.empty() for s in subscribers)
                raise RuntimeError(f"{missing} subscribers never received an event")
            await fire()
            await asyncio.sleep(1.0)
        await asyncio.sleep(1.0)
        await drain(subscribers)
        setup = time.perf_counter() - opened
        print(f"[{engine}] {n} subscribers live after {setup:.1f} s")
        async with profiled(platform.pid, profile):
            measured = await measure(subscribers, fire, events)
        for task in readers:
            task.cancel()
        await asyncio.gather(*(s.ws.close() for s in subscribers), return_exceptions=True)
        if sink is not None:
            await asyncio.sleep(2.0)  # the last spans' export
            print_hops(sink, measured)
        return measured


async def bench_baseline(n: int, events: int) -> list[float]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", BROADCAST_SERVER, str(port)])  # noqa: ASYNC220
    try:
        deadline = time.monotonic() + 60
        while True:  # until the server listens
            try:
                await (await connect(f"ws://127.0.0.1:{port}")).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

        async def open_plain() -> Subscriber:
            ws = await connect(f"ws://127.0.0.1:{port}", open_timeout=120, max_queue=None)
            return Subscriber(ws)

        subscribers = await gather_bounded([open_plain for _ in range(n)])
        readers = [asyncio.create_task(s.read(lambda m: True)) for s in subscribers]
        trigger = await connect(f"ws://127.0.0.1:{port}")
        await asyncio.sleep(0.5)
        latencies = (await measure(subscribers, _broadcast(trigger), events)).latencies
        for task in readers:
            task.cancel()
        await trigger.close()
        await asyncio.gather(*(s.ws.close() for s in subscribers), return_exceptions=True)
        return latencies
    finally:
        server.terminate()
        server.wait(timeout=10)


def _broadcast(trigger: ClientConnection) -> Callable[[], Awaitable[None]]:
    async def fire() -> None:
        await trigger.send("fire")

    return fire


def row(
    name: str, latencies: list[float], n: int, baseline: list[float] | None, missed: int = 0
) -> str:
    ratio = f"{pct(latencies, 95) / pct(baseline, 95):.1f}x" if baseline else "1.0x"
    return (
        f"| {name} | {n:,} | {len(latencies):,} | {missed:,} | {pct(latencies, 50):.1f} | "
        f"{pct(latencies, 95):.1f} | {pct(latencies, 99):.1f} | {max(latencies):.1f} | {ratio} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument(
        "--pure-codec", action="store_true", help="betterproto's pure-Python codec (before)"
    )
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the server, per engine")
    parser.add_argument(
        "--hops",
        action="store_true",
        help="trace the server (OTLP to an in-process sink) and print each event's spans; "
        "tracing costs time of its own: compare hops, not these latencies, with untraced runs",
    )
    args = parser.parse_args()
    print(f"codec: {'pure Python' if args.pure_codec else 'as installed'}")
    print(f"before: {uptime()}")
    baseline = await bench_baseline(args.subscribers, args.events)
    rows = [row("bare WebSocket broadcast (baseline)", baseline, args.subscribers, None)]
    traced = " (traced)" if args.hops else ""
    for engine in args.engines.split(","):
        profile = args.profile.with_suffix(f".{engine}.txt") if args.profile else None
        with SpanSink() if args.hops else nullcontext() as sink:
            measured = await bench_platform(
                engine, args.subscribers, args.events, args.pure_codec, profile, sink
            )
        name = f"passportUpdated, {engine}{traced}"
        rows.append(row(name, measured.latencies, args.subscribers, baseline, measured.missed))
        name = f"passportUpdated, {engine}{traced}, from the mutation's reply"
        rows.append(row(name, measured.after_reply, args.subscribers, baseline, measured.missed))
    print(
        "\n| path | subscribers | deliveries | missed (> 60 s) | p50 ms | p95 ms | p99 ms | max ms "
        "| p95 vs baseline |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    print("\n".join(rows))
    print(f"\nafter: {uptime()}")


if __name__ == "__main__":
    asyncio.run(main())

"""The authorization matrix (issue 9): every GraphQL operation and every gRPC RPC, called
by each caller kind, ends with the outcome its row states.

`test_every_operation_has_rows` needs no platform: an operation in the schema or the
protos without rows in `tests/authz/table.py` fails it, by name, so a new operation cannot
skip authorization. `test_matrix` runs every row against one shared platform and reports
every mismatch at once; `KEIKO_MATRIX_ONLY=<text>` runs only the entries whose operation
name contains it (while writing rows; the world is still built whole)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from keiko import registry
from keiko.platform import running_platform
from tests.authz.calls import STREAM_CEILING_S, GraphQLCalls, GrpcCalls, Result
from tests.authz.matrix import RUN_ORDER, Caller, Outcome, Rows
from tests.authz.operations import Operation, all_operations
from tests.authz.table import TABLE
from tests.authz.world import Ctx, World
from tests.e2e_support import e2e_settings, engine_env, migrate_all


def test_every_operation_has_rows() -> None:
    operations = all_operations()
    keyed: dict[str, Rows] = {}
    names: set[str] = set()
    duplicated = []
    for entry in TABLE:
        if entry.name in names:
            duplicated.append(entry.name)
        names.add(entry.name)
        keyed[entry.op] = entry
    missing = sorted(set(operations) - set(keyed))
    unknown = sorted(set(keyed) - set(operations))
    incomplete = sorted(
        f"{entry.name} (no row for {', '.join(c.value for c in Caller if c not in entry.outcomes)})"
        for entry in TABLE
        if set(entry.outcomes) != set(Caller)
    )
    problems = []
    if missing:
        problems.append(
            "operations without authorization rows (add them to tests/authz/table.py):\n  "
            + "\n  ".join(missing)
        )
    if unknown:
        problems.append("rows for operations that do not exist:\n  " + "\n  ".join(unknown))
    if duplicated:
        problems.append("operations with two entries:\n  " + "\n  ".join(duplicated))
    if incomplete:
        problems.append("entries missing caller kinds:\n  " + "\n  ".join(incomplete))
    assert not problems, "\n".join(problems)


@pytest.fixture
async def world(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    engine_env(monkeypatch, database_url, batch_max_wait_ms="200")
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    settings = settings.model_copy(update={"humanity_warm_up": False})
    await migrate_all(database_url)
    async with (
        running_platform(settings, registry.resolve(None)) as running,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{running.http_port}",
            timeout=60,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as http,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel,
    ):
        built = World(
            running,
            GrpcCalls(channel),
            GraphQLCalls(http, f"ws://127.0.0.1:{running.http_port}/graphql"),
        )
        await built.build()
        yield built


async def _args(entry: Rows, ctx: Ctx) -> Mapping[str, Any]:
    value = entry.args(ctx)
    if inspect.isawaitable(value):
        value = await value
    return value  # type: ignore[return-value]


async def _open(world: World, op: Operation, args: Mapping[str, Any], caller: Caller) -> Any:
    """Open a stream as `caller`; the task ends with its first message or status."""
    token = world.token(caller)
    if op.is_graphql:
        sub = await world.graphql.subscription(op, args, token)
        return asyncio.create_task(sub.first())
    return asyncio.create_task(world.grpc.first(op, world.grpc.stream(op, args, token)))


async def _registered(world: World, known: set[Any], count: int, first: Any = None) -> bool:
    """Until `count` watchers not in `known` are on the fanout (or `first` ended)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_CEILING_S
    while len(set(world.fanout._watchers) - known) < count:
        if (first is not None and first.done()) or loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _streams_together(world: World, op: Operation, entry: Rows) -> dict[Caller, Result]:
    """Every caller's stream at once (for streams whose event takes long to come, e.g.
    an anchoring): the refused ones end with their status; once the others are all
    registered, each gets its event and its first message is its result."""
    known = set(world.fanout._watchers)
    contexts = {caller: Ctx(world, caller) for caller in RUN_ORDER}
    args = {caller: await _args(entry, ctx) for caller, ctx in contexts.items()}
    tasks = {caller: await _open(world, op, args[caller], caller) for caller in RUN_ORDER}
    delivering = [c for c in RUN_ORDER if entry.outcome(c) is Outcome.OK]
    results = {}
    for caller in RUN_ORDER:
        if caller not in delivering:
            results[caller] = await tasks[caller]  # refused streams end by themselves
    if await _registered(world, known, len(delivering)) and entry.trigger is not None:
        await asyncio.gather(*(entry.trigger(contexts[c], args[c]) for c in delivering))
    for caller in delivering:
        results[caller] = await tasks[caller]
    return results


async def _stream(world: World, op: Operation, entry: Rows, ctx: Ctx) -> Result:
    """Open the stream. It is refused by its first status; it is accepted once its
    watcher is registered on the platform's event fanout. An accepted stream expected to
    deliver then gets its event (`trigger`), and its first message is the result."""
    args = await _args(entry, ctx)
    known = set(world.fanout._watchers)
    first = await _open(world, op, args, ctx.caller)
    await _registered(world, known, 1, first)
    if first.done():
        return first.result()
    if entry.outcome(ctx.caller) is not Outcome.OK:
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        return Result("ACCEPTED", "the stream was opened")
    if entry.trigger is not None:
        await entry.trigger(ctx, args)
    return await first


async def _run(world: World, op: Operation, entry: Rows, caller: Caller) -> Result:
    ctx = Ctx(world, caller)
    if op.is_stream:
        return await _stream(world, op, entry, ctx)
    args = await _args(entry, ctx)
    if op.is_graphql:
        return await world.graphql.execute(op, args, world.token(caller))
    return await world.grpc.unary(op, args, world.token(caller))


@pytest.mark.timeout(1200)
async def test_matrix(world: World) -> None:
    operations = all_operations()
    failures = []
    only = os.environ.get("KEIKO_MATRIX_ONLY", "")
    for entry in TABLE:
        op = operations.get(entry.op)
        if op is None or only not in entry.name:
            continue  # unknown operations: reported by test_every_operation_has_rows
        together: dict[Caller, Result] = {}
        if entry.together:
            try:
                together = await _streams_together(world, op, entry)
            except Exception as error:
                failures.append(f"{entry.name}: raised {error!r}")
                continue
        for caller in RUN_ORDER:
            expected = entry.outcome(caller)
            row = f"{entry.name} as {caller}"
            try:
                result = together.get(caller) or await _run(world, op, entry, caller)
            except Exception as error:  # a broken row must name itself, not stop the run
                failures.append(f"{row}: expected {expected.name}, raised {error!r}")
                continue
            matches = expected.accepts(result.code, graphql=op.is_graphql)
            if caller in entry.pending:
                if matches:
                    failures.append(
                        f"{row}: now {expected.name} as designed: remove it from `pending`"
                    )
                continue
            if not matches:
                failures.append(
                    f"{row}: expected {expected.name}, got {result.code} {result.message[:160]!r}"
                )
    assert not failures, f"{len(failures)} authorization rows failed:\n" + "\n".join(failures)

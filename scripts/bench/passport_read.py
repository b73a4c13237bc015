"""Benchmark: the passport query at 50 concurrent clients.

Starts the whole platform (`keiko serve --no-chain`: every service and the gateway in a
subprocess, so the load generator never shares its event loop), signs a learner up through
the WebAuthn ceremony, records 200 interactions through GraphQL and waits until the
passport holds them all; then 50 clients send the passport query (the first page of 50
entries of the timeline) as fast as they are answered. The baseline in the same run, at
the same concurrency, is `{ __typename }`: the same HTTP server, GraphQL schema,
extensions and token, no resolver and no service call. On SQLite and PostgreSQL.

Each engine runs twice: with the gateway's rendered-passport cache off (every request
executes the query: the "before", and the cost of a read after each change) and on (the
passport does not change during the load, so it is served again after one version check
per request); each has its own baseline row.

    .venv/bin/python scripts/bench/passport_read.py [--seconds 10] [--engines sqlite,postgres]

The load is wrk's when it is installed (`--client python` for the httpx client).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.stack import (
    GraphQL,
    Load,
    ReadRun,
    read_bench_main,
    record_interactions,
    running_platform,
    sign_up,
)
from scripts.bench.wrk import HttpRequest

ENTRIES = 200
PASSPORT = """
query Passport {
  passport {
    id entryCount
    timeline(first: 50) {
      edges { cursor node { level id title
        entries { statementId interactionType summary timestamp scoreScaled
                  signatureHex publicKeyHex anchor { status batchId }
                  author { kind id displayName } }
        children { level id title entries { statementId summary } } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
TYPENAME = "query Baseline { __typename }"
CACHE_SETTING = "KEIKO_GRAPHQL_PASSPORT_CACHE_BYTES"


def graphql_request(base_url: str, token: str, query: str) -> HttpRequest:
    return HttpRequest(
        f"{base_url}/graphql",
        method="POST",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        body=json.dumps({"query": query, "variables": {}}).encode(),
    )


async def ready_passport(gql: GraphQL, engine: str) -> None:
    """A learner with ENTRIES interactions, all in the passport."""
    await sign_up(gql, "Reader")
    await record_interactions(gql, ENTRIES)
    deadline = time.monotonic() + 120
    while (await gql(PASSPORT))["passport"]["entryCount"] < ENTRIES:
        if time.monotonic() > deadline:
            raise RuntimeError("the passport never reached 200 entries")
        await asyncio.sleep(0.5)
    page = (await gql(PASSPORT))["passport"]["timeline"]["edges"]
    shown = sum(len(e["node"]["entries"]) for e in page)
    print(f"[{engine}] passport ready: {ENTRIES} entries, first page shows {shown}")


async def measure(engine: str, run: ReadRun, cache_bytes: str | None) -> list[Load]:
    """The baseline and the passport query on a platform whose rendered-passport cache
    holds ``cache_bytes`` (None: the default; "0": none, every request executes)."""
    env = run.platform_env(None if cache_bytes is None else {CACHE_SETTING: cache_bytes})
    label = "served from the cache" if cache_bytes is None else "executed (no cache)"
    async with running_platform(engine, pure_codec=run.pure_codec, extra_env=env) as platform:
        limits = httpx.Limits(max_connections=run.concurrency + 4)
        async with httpx.AsyncClient(
            base_url=platform.base_url, timeout=120, limits=limits
        ) as http:
            gql = GraphQL(http)
            await ready_passport(gql, engine)
            baseline = await run.load(
                "`{ __typename }` (baseline)",
                platform,
                lambda: gql(TYPENAME),
                graphql_request(platform.base_url, gql.token, TYPENAME),
            )
            passport = await run.load(
                f"passport timeline(first: 50), {label}",
                platform,
                lambda: gql(PASSPORT),
                graphql_request(platform.base_url, gql.token, PASSPORT),
                profile=cache_bytes is None,
            )
            return [baseline, passport]


async def bench_engine(engine: str, run: ReadRun) -> list[Load]:
    """Per engine: the query executed on every request (the cache off: what every
    request cost before it, and what a request after a change costs), then served again
    (the passport does not change during the load), each with its platform's baseline."""
    executed = await measure(engine, run, "0")
    served = await measure(engine, run, None)
    served[0].name += ", platform with the cache"
    executed[0].name += ", platform without"
    return [served[0], executed[0], executed[1], served[1]]


async def main() -> None:
    await read_bench_main((__doc__ or "").splitlines()[0], 50, bench_engine)


if __name__ == "__main__":
    asyncio.run(main())

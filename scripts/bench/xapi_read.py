"""Benchmark: `GET /xapi/statements?agent=...&limit=50` at concurrency 16.

Starts the whole platform (`keiko serve --no-chain` in a subprocess), registers an LRS
client (Basic auth) for a signed-up user, stores 200 statements about one agent through
`POST /xapi/statements` (batches of 50), then 16 clients read the newest 50 of them. The
baseline in the same run, at the same concurrency, is `GET /xapi/about`: the same server,
routes, xAPI version header and HTTP client, no authentication and no service call.

    .venv/bin/python scripts/bench/xapi_read.py [--seconds 10] [--engines sqlite,postgres]

The load is wrk's when it is installed (`--client python` for the httpx client).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.stack import (
    GraphQL,
    Load,
    ReadRun,
    read_bench_main,
    running_platform,
    sign_up,
)
from scripts.bench.wrk import HttpRequest

STATEMENTS = 200
VERSION = {"x-experience-api-version": "1.0.3"}
REGISTER = """mutation($name: String!) {
  registerLrsClient(name: $name) { client { key } secret } }"""
AGENT = {"objectType": "Agent", "mbox": "mailto:reader@example.org", "name": "Reader"}


def statement(i: int) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "actor": AGENT,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}},
        "object": {
            "objectType": "Activity",
            "id": f"https://keiko.example/activities/xapi/{i}",
            "definition": {"name": {"en-US": f"question {i}"}},
        },
        "result": {"score": {"scaled": (i % 10) / 10}, "success": i % 2 == 0, "response": "42"},
        "timestamp": f"2026-11-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
    }


async def bench_engine(engine: str, run: ReadRun) -> list[Load]:
    async with running_platform(
        engine, pure_codec=run.pure_codec, extra_env=run.platform_env()
    ) as platform:
        limits = httpx.Limits(max_connections=run.concurrency + 4)
        async with httpx.AsyncClient(
            base_url=platform.base_url, timeout=120, limits=limits
        ) as http:
            gql = GraphQL(http)
            await sign_up(gql, "Lrs")
            made = (await gql(REGISTER, name="bench"))["registerLrsClient"]
            auth = httpx.BasicAuth(made["client"]["key"], made["secret"])
            for start in range(0, STATEMENTS, 50):
                response = await http.post(
                    "/xapi/statements",
                    json=[statement(i) for i in range(start, start + 50)],
                    headers=VERSION,
                    auth=auth,
                )
                response.raise_for_status()
            params = {"agent": '{"mbox":"mailto:reader@example.org"}', "limit": "50"}
            page = await http.get("/xapi/statements", params=params, headers=VERSION, auth=auth)
            page.raise_for_status()
            print(f"[{engine}] {len(page.json()['statements'])} statements a page")
            authorization = page.request.headers["authorization"]

            async def about() -> None:
                (await http.get("/xapi/about", headers=VERSION)).raise_for_status()

            async def statements() -> None:
                response = await http.get(
                    "/xapi/statements", params=params, headers=VERSION, auth=auth
                )
                response.raise_for_status()

            baseline = await run.load(
                "GET /xapi/about (baseline)",
                platform,
                about,
                HttpRequest(f"{platform.base_url}/xapi/about", headers=VERSION),
            )
            read = await run.load(
                "GET /xapi/statements?agent=...&limit=50",
                platform,
                statements,
                HttpRequest(
                    str(page.request.url), headers={**VERSION, "authorization": authorization}
                ),
                profile=True,
            )
            return [baseline, read]


async def main() -> None:
    await read_bench_main((__doc__ or "").splitlines()[0], 16, bench_engine)


if __name__ == "__main__":
    asyncio.run(main())

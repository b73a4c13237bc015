"""Closed-loop HTTP load with wrk (the C load generator): ``concurrency`` keep-alive
connections, each sending the next request as soon as the previous one is answered,
for a fixed time. A Python client (httpx) spends more CPU a request than a fast server
does, and on a 2-core machine that CPU is taken from the server; wrk spends a few
microseconds, so the rate it sees is the server's.

The request (method, headers, body) goes to wrk in a generated Lua script whose
``done()`` prints one machine-readable line (``keiko-wrk key=value ...``: request count,
duration, errors by kind, latency percentiles in microseconds), parsed into
:class:`WrkResult`. Errors are wrk's: connection errors, timeouts and HTTP statuses
above 399; a GraphQL error in a 200 answer is not one, so a bench checks its answer once
before loading the server.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field

MARKER = "keiko-wrk"
PERCENTILES = (50, 95, 99)

_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%s requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d"
      .. " mean_us=%.1f max_us=%d",
    "{marker}", summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency.mean, latency.max))
  for _, p in ipairs({{{percentiles}}}) do
    io.write(string.format(" p%d_us=%d", p, latency:percentile(p)))
  end
  io.write("\\n")
end
"""


def wrk_path() -> str | None:
    """wrk's executable, or None when it is not installed (Debian package `wrk`)."""
    return shutil.which("wrk")


@dataclass(frozen=True)
class HttpRequest:
    """One request, sent again and again: ``url`` absolute (scheme, host, port, path and
    query), ``body`` empty for none."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    percentiles_ms: dict[int, float]
    mean_ms: float
    max_ms: float


def _lua_string(data: bytes) -> str:
    """A Lua string literal of ``data`` (any bytes): printable ASCII as is, the rest as
    decimal escapes."""
    out = []
    for byte in data:
        char = chr(byte)
        if 32 <= byte < 127 and char not in '"\\':
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def lua_script(request: HttpRequest) -> str:
    lines = [f"wrk.method = {_lua_string(request.method.encode())}"]
    if request.body:
        lines.append(f"wrk.body = {_lua_string(request.body)}")
    for name, value in request.headers.items():
        lines.append(f"wrk.headers[{_lua_string(name.encode())}] = {_lua_string(value.encode())}")
    percentiles = ", ".join(str(p) for p in PERCENTILES)
    return "\n".join(lines) + _DONE.format(marker=MARKER, percentiles=percentiles)


def parse_result(stdout: str) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith(MARKER + " "):
            values = dict(item.split("=", 1) for item in line.split()[1:])
            errors = sum(int(values[k]) for k in ("connect", "read", "write", "status", "timeout"))
            return WrkResult(
                requests=int(values["requests"]),
                seconds=int(values["duration_us"]) / 1e6,
                errors=errors,
                percentiles_ms={p: int(values[f"p{p}_us"]) / 1000 for p in PERCENTILES},
                mean_ms=float(values["mean_us"]) / 1000,
                max_ms=int(values["max_us"]) / 1000,
            )
    raise RuntimeError(f"wrk printed no {MARKER} line:\n{stdout}")


async def run_wrk(
    request: HttpRequest,
    *,
    concurrency: int,
    seconds: float,
    threads: int = 1,
    timeout_seconds: int = 60,
) -> WrkResult:
    """``concurrency`` connections over ``threads`` wrk threads for ``seconds``."""
    executable = wrk_path()
    if executable is None:
        raise RuntimeError("wrk is not installed (Debian package `wrk`)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua_script(request))
        script.flush()
        process = await asyncio.create_subprocess_exec(
            executable,
            *("-c", str(concurrency), "-t", str(max(1, min(threads, concurrency)))),
            *("-d", f"{max(1, round(seconds))}s", "--timeout", f"{timeout_seconds}s"),
            *("-s", script.name, request.url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stderr.decode()}")
    return parse_result(stdout.decode())

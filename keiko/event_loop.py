"""The event loop `keiko serve` runs on: uvloop where it is installed (its libuv loop
spends less CPU per request than the standard library's on every path: HTTP, gRPC,
database drivers), the standard library's when KEIKO_EVENT_LOOP=asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from keiko.settings import Settings

T = TypeVar("T")


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if settings.event_loop != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:  # not installed: the standard loop
        return None
    return uvloop.new_event_loop


def run_loop(settings: Settings, main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
        return runner.run(main)

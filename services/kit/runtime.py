"""What a service takes from the process that hosts it.

Services depend on this protocol, never on the composition root: `keiko.runtime.
ServiceRuntime` is the implementation the platform hands them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from services.kit.clock import Clock
from services.kit.db import Database
from services.kit.events import EventBus
from services.kit.events.fanout import EventFanout

# A long-running job of a service (outbox relay, event consumer): runs until `stop` is set.
BackgroundJob = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class ServiceRuntime(Protocol):
    @property
    def settings(self) -> Any: ...
    @property
    def database(self) -> Database: ...
    @property
    def event_bus(self) -> EventBus: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def fanout(self) -> EventFanout: ...
    def run_in_background(self, name: str, job: BackgroundJob) -> None: ...

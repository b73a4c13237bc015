"""Events: the bus interface, its in-process and Redis Streams engines, the outbox.

    bus = event_bus_from_url(settings.event_bus_url)          # "memory://" or "redis://..."
    await bus.publish(Event("learning.interaction_recorded", key=learner_id, payload={...}))
    async with bus.subscribe(["learning.interaction_recorded"], group="passport",
                             consumer=f"{host}-{pid}") as sub:
        async for delivery in sub:
            ...; await delivery.ack()      # or: await delivery.nack("why")

Services never publish state changes directly: they `enqueue` them in the outbox in the
transaction of the change, and an `OutboxRelay` publishes (see `outbox`).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from services.kit.events.base import (
    BusOptions,
    DeadLetter,
    Delivery,
    Event,
    EventBus,
    Start,
    Subscription,
)

__all__ = [
    "BusOptions",
    "DeadLetter",
    "Delivery",
    "Event",
    "EventBus",
    "Start",
    "Subscription",
    "event_bus_from_url",
]

_OPTION_NAMES = {f.name for f in fields(BusOptions)}


def event_bus_from_url(url: str, **opts: Any) -> EventBus:
    """`memory://[name]` (in-process; same name, same broker) or
    `redis://host:port/db[?prefix=keiko]` (also `rediss://`, `unix://`).
    `opts`: any `BusOptions` field (max_deliveries, claim_idle_timeout, retry_delay,
    batch_size, maxlen, block); for Redis also `prefix` and `client` (a `redis.asyncio.Redis`
    made with `decode_responses=True`)."""
    unknown = set(opts) - _OPTION_NAMES - {"prefix", "client"}
    if unknown:
        raise TypeError(f"unknown event bus options: {sorted(unknown)}")
    options = BusOptions(**{k: v for k, v in opts.items() if k in _OPTION_NAMES})
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        from services.kit.events.memory import MemoryEventBus

        if "prefix" in opts or "client" in opts:
            raise TypeError("prefix/client apply to redis:// only")
        return MemoryEventBus(url.split("://", 1)[1].strip("/") or "default", options)
    if scheme in ("redis", "rediss", "unix"):
        from services.kit.events.redis_streams import RedisEventBus

        return RedisEventBus(
            url, prefix=opts.get("prefix"), options=options, client=opts.get("client")
        )
    raise ValueError(f"unsupported event bus URL {url!r}: use memory:// or redis://")

"""Redis Streams event bus.

- one stream per topic, `<prefix>:<topic>` (prefix `keiko` unless the URL says
  `?prefix=...`), appended with `XADD ... MAXLEN ~ maxlen`;
- consumer groups (`XGROUP CREATE ... MKSTREAM`), read with `XREADGROUP`, settled with `XACK`;
- stuck deliveries (no ack within `claim_idle_timeout`) are taken over with `XAUTOCLAIM`;
  a nack re-times its pending entry with `XCLAIM ... IDLE` so that it becomes claimable
  after `retry_delay` - retries ride the same claim path, by any consumer of the group;
- after `max_deliveries` failed deliveries the entry moves to `<prefix>:dlq:<topic>`
  (XADD + XACK in one MULTI);
- connection errors are retried with exponential backoff (tenacity): forever for a
  consumer until it is closed, for a bounded time for publish / ack.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from services.kit.events.base import (
    BusEpoch,
    BusOptions,
    DeadLetter,
    Delivery,
    Event,
    Start,
    Subscription,
)

__all__ = ["RedisEventBus", "split_url"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
DEFAULT_PREFIX = "keiko"
# How long publish / ack keep retrying through a Redis outage before giving up.
OPERATION_RETRY_S = 10.0

# publish_in_epoch: the epoch check and the XADDs in one round trip, atomically (a Redis
# that restarts empty in between cannot take half of them). KEYS: the epoch key, then the
# stream of each event; ARGV: the expected epoch id, a fresh epoch value (for a key found
# missing, as RedisEventBus.epoch sets it), MAXLEN, then per event its field count and
# fields. Returns the epoch key's value; the events went out iff its id is the expected.
_PUBLISH_IN_EPOCH = """
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[2])
  current = ARGV[2]
end
if string.match(current, '^[^ ]*') ~= ARGV[1] then
  return current
end
local at = 4
for k = 2, #KEYS do
  local n = tonumber(ARGV[at])
  local command = {'XADD', KEYS[k], 'MAXLEN', '~', ARGV[3], '*'}
  for j = 1, n do
    command[#command + 1] = ARGV[at + j]
  end
  redis.call(unpack(command))
  at = at + n + 1
end
return current
"""


def split_url(url: str) -> tuple[str, str]:
    """(Redis URL without our options, key prefix) from `redis://h:p/db?prefix=x`."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX) or DEFAULT_PREFIX
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "redis unavailable, retrying", op=what, attempt=state.attempt_number, error=repr(exc)
        )

    return before_sleep


async def _retrying(
    what: str, op: Callable[[], Awaitable[T]], *, stop: Callable[[RetryCallState], bool]
) -> T:
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(_TRANSIENT),
        wait=wait_exponential_jitter(initial=0.05, max=5.0),
        stop=stop,
        before_sleep=_log_retry(what),
        reraise=True,
    ):
        with attempt:
            return await op()
    raise AssertionError("unreachable")  # AsyncRetrying either returns or raises


def _epoch_of(value: str) -> BusEpoch:
    """The epoch named by the epoch key's value ("<id> <unix time>")."""
    epoch_id, _, started = value.partition(" ")
    return BusEpoch(epoch_id, datetime.fromtimestamp(float(started or 0), UTC))


class RedisEventBus:
    """`EventBus` on Redis Streams."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str | None = None,
        options: BusOptions | None = None,
        client: aioredis.Redis | None = None,
    ) -> None:
        base, url_prefix = split_url(url)
        self.prefix = prefix or url_prefix
        self.options = options or BusOptions()
        self.redis: aioredis.Redis = client or aioredis.Redis.from_url(
            base, decode_responses=True, health_check_interval=30
        )
        self._subscriptions: set[RedisSubscription] = set()
        self._closed = False
        self._publish_script = self.redis.register_script(_PUBLISH_IN_EPOCH)

    def stream_key(self, topic: str) -> str:
        return f"{self.prefix}:{topic}"

    def dlq_key(self, topic: str) -> str:
        return f"{self.prefix}:dlq:{topic}"

    async def publish(self, event: Event) -> None:
        if self._closed:
            raise RuntimeError("event bus is closed")
        fields: Any = event.to_fields()
        key = self.stream_key(event.topic)
        await _retrying(
            "publish",
            lambda: self.redis.xadd(key, fields, maxlen=self.options.maxlen, approximate=True),
            stop=stop_after_delay(OPERATION_RETRY_S),
        )

    async def publish_many(self, events: Sequence[Event]) -> None:
        """One pipelined round trip of XADDs (not a transaction: see EventBus)."""
        if self._closed:
            raise RuntimeError("event bus is closed")
        if not events:
            return
        entries: list[tuple[str, Any]] = [
            (self.stream_key(event.topic), event.to_fields()) for event in events
        ]

        async def send() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for key, fields in entries:
                pipe.xadd(key, fields, maxlen=self.options.maxlen, approximate=True)
            await pipe.execute()

        await _retrying("publish", send, stop=stop_after_delay(OPERATION_RETRY_S))

    async def publish_in_epoch(self, events: Sequence[Event], epoch: BusEpoch) -> BusEpoch:
        """One script (EVALSHA; reloaded by redis-py when a restarted Redis forgot it):
        the outbox relay's epoch check rides with its publish instead of costing a round
        trip of its own every pass."""
        if self._closed:
            raise RuntimeError("event bus is closed")
        keys = [self.epoch_key()]
        args: list[Any] = [epoch.id, self.fresh_epoch(), self.options.maxlen]
        for event in events:
            fields = event.to_fields()
            keys.append(self.stream_key(event.topic))
            args.append(len(fields) * 2)
            for name, value in fields.items():
                args += (name, value)

        async def send() -> Any:
            return await self._publish_script(keys=keys, args=args)

        value = await _retrying("publish", send, stop=stop_after_delay(OPERATION_RETRY_S))
        return _epoch_of(str(value))

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        group: str,
        consumer: str,
        start: Start = "earliest",
    ) -> RedisSubscription:
        if self._closed:
            raise RuntimeError("event bus is closed")
        sub = RedisSubscription(
            self, topics, group=group, consumer=consumer, start=start, options=self.options
        )
        self._subscriptions.add(sub)
        return sub

    def epoch_key(self) -> str:
        return f"{self.prefix}:epoch"

    @staticmethod
    def fresh_epoch() -> str:
        """The epoch key's value for an epoch starting now: "<id> <unix time>"."""
        return f"{uuid.uuid4().hex} {time.time():.6f}"

    async def epoch(self) -> BusEpoch:
        """The epoch key (``<prefix>:epoch``, "<id> <unix time>") is set once, by the first
        caller after Redis started empty: it vanishes with everything else when Redis
        restarts without persistence or is flushed, and the next caller starts a new one.
        A Redis that kept its data (AOF, RDB) keeps its epoch across restarts."""
        fresh = self.fresh_epoch()
        key = self.epoch_key()

        async def read() -> Any:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(key, fresh, nx=True)
            pipe.get(key)
            return (await pipe.execute())[1]

        return _epoch_of(
            str(await _retrying("epoch", read, stop=stop_after_delay(OPERATION_RETRY_S)))
        )

    async def dead_letters(self, topic: str, *, limit: int = 100) -> list[DeadLetter]:
        rows: Any = await self.redis.xrange(self.dlq_key(topic), "-", "+", count=limit)
        return [DeadLetter.from_fields(fields) for _, fields in rows]

    async def pending_count(self, topic: str, group: str) -> int:
        try:
            summary = await self.redis.xpending(self.stream_key(topic), group)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                return 0
            raise
        return int(summary["pending"])

    async def groups(self, topic: str) -> list[str]:
        try:
            rows: Any = await self.redis.xinfo_groups(self.stream_key(topic))
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return []
            raise
        return sorted(row["name"] for row in rows)

    async def delete_group(self, topic: str, group: str) -> None:
        # XGROUP DESTROY answers 0 for a missing group and an error for a missing stream:
        # both mean there is nothing to delete.
        with contextlib.suppress(ResponseError):
            await _retrying(
                "xgroup destroy",
                lambda: self.redis.xgroup_destroy(self.stream_key(topic), group),
                stop=stop_after_delay(OPERATION_RETRY_S),
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            await sub.close()
        await self.redis.aclose()

    def _forget(self, sub: RedisSubscription) -> None:
        self._subscriptions.discard(sub)


class RedisSubscription(Subscription):
    def __init__(
        self,
        bus: RedisEventBus,
        topics: Sequence[str],
        *,
        group: str,
        consumer: str,
        start: Start,
        options: BusOptions,
    ) -> None:
        super().__init__(topics, group=group, consumer=consumer, options=options)
        self._bus = bus
        self._redis = bus.redis
        self._start_id = "$" if start == "latest" else "0"
        # The bus epoch a `latest` group was created in (see _recreate).
        self._epoch: str | None = None
        self._keys = {bus.stream_key(t): t for t in self.topics}
        self._cursors = dict.fromkeys(self._keys, "0-0")
        # Check for claimable entries often enough that a nack is retried about on time.
        self._claim_every = max(0.01, min(options.claim_idle_timeout, options.retry_delay) / 2)
        self._next_claim = 0.0

    # -- setup ------------------------------------------------------------------------------

    async def _setup(self) -> None:
        self._epoch = await self._create_groups()

    async def _create_groups(self) -> str:
        """Create the group on each topic (if missing), in one transaction with reading
        the bus epoch (see RedisEventBus.epoch), so the epoch is the one the groups were
        created in; returns its id."""
        epoch = self._bus.fresh_epoch()
        key = self._bus.epoch_key()

        async def create() -> str:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(key, epoch, nx=True)
            pipe.get(key)
            for stream in self._keys:
                pipe.xgroup_create(stream, self.group, id=self._start_id, mkstream=True)
            replies = await pipe.execute(raise_on_error=False)
            for reply in replies[2:]:
                if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
                    raise reply
            return str(replies[1]).partition(" ")[0]

        return await _retrying("xgroup create", create, stop=self._stop_when_closed)

    async def _recreate(self) -> None:
        """The group vanished: create it again. A `latest` group whose Redis lost its
        memory since (a new bus epoch) then reads the new stream from its start, not from
        its end: everything in it was published after this subscription began, and
        publishers (outbox relays) often reach the new Redis before this consumer does -
        "$" skipped what they sent in between, for good. A `latest` group deleted on its
        own (same epoch) still reads from now."""
        epoch = await self._create_groups()
        self._cursors = dict.fromkeys(self._keys, "0-0")  # the old stream's ids mean nothing
        if self._start_id == "$" and epoch != self._epoch:

            async def rewind() -> None:
                for stream in self._keys:
                    try:
                        await self._redis.xgroup_setid(stream, self.group, "0")
                    except ResponseError as exc:
                        if "NOGROUP" not in str(exc):
                            raise
                        return  # lost again: the next read recreates it

            await _retrying("xgroup setid", rewind, stop=self._stop_when_closed)
        self._epoch = epoch

    def _stop_when_closed(self, _state: RetryCallState) -> bool:
        return self._closed

    # -- reading ----------------------------------------------------------------------------

    async def _fetch(self) -> list[Delivery]:
        try:
            return await _retrying("read", self._fetch_once, stop=self._stop_when_closed)
        except _TRANSIENT:
            if self._closed:
                return []
            raise
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or group vanished (Redis restarted without persistence, or the key
            # was deleted): recreate and go on.
            log.warning("redis consumer group missing, recreating", group=self.group)
            await self._recreate()
            return []

    async def _fetch_once(self) -> list[Delivery]:
        if self._closed:
            return []
        out: list[Delivery] = []
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self._claim_every
            out = await self._claim()
            if out:
                return out
        block_s = min(self.options.block, self._claim_every)
        reply: Any = await self._redis.xreadgroup(
            self.group,
            self.consumer,
            dict.fromkeys(self._keys, ">"),
            count=self.fetch_size,
            block=max(1, int(block_s * 1000)),
        )
        for key, messages in reply or []:
            for message_id, fields in messages:
                if fields:
                    out.append(self._delivery(key, message_id, fields, 1))
        return out

    async def _claim(self) -> list[Delivery]:
        opts = self.options
        out: list[Delivery] = []
        for key in self._keys:
            reply: Any = await self._redis.xautoclaim(
                key,
                self.group,
                self.consumer,
                min_idle_time=int(opts.claim_idle_timeout * 1000),
                start_id=self._cursors[key],
                count=self.fetch_size,
            )
            next_cursor, messages = reply[0], reply[1]
            self._cursors[key] = next_cursor
            live = [(mid, fields) for mid, fields in messages if fields]
            if not live:
                continue
            # XAUTOCLAIM does not report delivery counts; XPENDING does.
            pipe = self._redis.pipeline(transaction=False)
            for mid, _ in live:
                pipe.xpending_range(key, self.group, min=mid, max=mid, count=1)
            counts = [rows[0]["times_delivered"] if rows else 1 for rows in await pipe.execute()]
            for (mid, fields), count in zip(live, counts, strict=True):
                if count > opts.max_deliveries:
                    event = Event.from_fields(fields)
                    reason = f"not acknowledged after {opts.max_deliveries} deliveries"
                    await self._bury(key, mid, event, count - 1, reason)
                    continue
                out.append(self._delivery(key, mid, fields, int(count)))
        return out

    def _delivery(
        self, key: str, message_id: str, fields: dict[str, str], attempt: int
    ) -> Delivery:
        return Delivery(self, self._keys[key], message_id, Event.from_fields(fields), attempt)

    # -- settling ---------------------------------------------------------------------------

    async def _ack(self, delivery: Delivery) -> None:
        key = self._bus.stream_key(delivery.topic)
        await _retrying(
            "ack",
            lambda: self._redis.xack(key, self.group, delivery.message_id),
            stop=stop_after_delay(OPERATION_RETRY_S),
        )

    async def _ack_many(self, deliveries: list[Delivery]) -> None:
        by_key: dict[str, list[str]] = {}
        for delivery in deliveries:
            by_key.setdefault(self._bus.stream_key(delivery.topic), []).append(delivery.message_id)

        async def ack() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for key, message_ids in by_key.items():
                pipe.xack(key, self.group, *message_ids)
            await pipe.execute()

        await _retrying("ack", ack, stop=stop_after_delay(OPERATION_RETRY_S))

    async def _retry_later(self, delivery: Delivery) -> None:
        opts = self.options
        idle_ms = int(max(0.0, opts.claim_idle_timeout - opts.retry_delay) * 1000)
        await self._reclaimable(delivery, idle_ms=idle_ms, retrycount=delivery.attempt)

    async def _reclaimable(self, delivery: Delivery, *, idle_ms: int, retrycount: int) -> None:
        """Re-time a pending entry so XAUTOCLAIM takes it once it is `claim_idle` old."""
        key = self._bus.stream_key(delivery.topic)
        await _retrying(
            "xclaim",
            lambda: self._redis.xclaim(
                key,
                self.group,
                self.consumer,
                min_idle_time=0,
                message_ids=[delivery.message_id],
                idle=idle_ms,
                retrycount=retrycount,
                justid=True,
            ),
            stop=stop_after_delay(OPERATION_RETRY_S),
        )

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        await self._bury(
            self._bus.stream_key(delivery.topic),
            delivery.message_id,
            delivery.event,
            delivery.attempt,
            reason,
        )

    async def _bury(
        self, key: str, message_id: str, event: Event, attempts: int, reason: str
    ) -> None:
        letter = DeadLetter(event, self.group, attempts, reason, datetime.now(UTC))
        fields: Any = letter.to_fields()
        dlq = self._bus.dlq_key(self._keys[key])

        async def move() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.xadd(dlq, fields, maxlen=self.options.maxlen, approximate=True)
            pipe.xack(key, self.group, message_id)
            await pipe.execute()

        await _retrying("dead letter", move, stop=stop_after_delay(OPERATION_RETRY_S))
        log.warning(
            "event dead-lettered",
            topic=event.topic,
            event_id=event.id,
            group=self.group,
            attempts=attempts,
            reason=reason,
        )

    async def _release(self, deliveries: list[Delivery]) -> None:
        idle_ms = int(self.options.claim_idle_timeout * 1000)
        for delivery in deliveries:
            # Never handed out: claimable now, and this delivery does not count. If Redis is
            # away, it is reclaimed after the idle timeout anyway.
            with contextlib.suppress(*_TRANSIENT):
                await self._reclaimable(delivery, idle_ms=idle_ms, retrycount=delivery.attempt - 1)

    async def _on_close(self) -> None:
        self._bus._forget(self)

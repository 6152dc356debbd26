"""Live news and rate limits shared by every process, through Redis
(redis-py's asyncio client; `proactive serve --broker redis://…`).

- `RedisBroker`: `publish` sends each piece of news to one Redis channel
  (from one task per process, in the order published); every process
  listens on it and hands what arrives to its own streams' queues (the
  in-process `Broker`). An agent reply made on process B so reaches a
  visitor whose stream is held by process A.
- `RedisRateLimiter`: the token buckets of `RateLimiter` as Redis hashes,
  updated by one Lua script (atomic across processes), each expiring once
  it would be full again: a client cannot get N budgets by spreading its
  requests over N processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math

import redis.asyncio as redis

from server_stub.broker import Broker

log = logging.getLogger("proactive.endpoint")
CHANNEL = "proactive:news"
POOL_SIZE = 64  # Redis connections per process; past it a call waits (up to 5 s) rather than failing


def client(url: str) -> redis.Redis:
    """A client whose pool makes callers wait for a free connection (redis-py's
    default pool raises MaxConnectionsError instead, under load)."""
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE, timeout=5)
    return redis.Redis(connection_pool=pool)


class RedisBroker(Broker):
    def __init__(self, url: str, channel: str = CHANNEL):
        super().__init__()
        self.url, self.channel = url, channel
        self._client: redis.Redis | None = None
        self._outbox: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Connects and starts listening; returns once news can flow both ways."""
        self._loop = asyncio.get_running_loop()
        self._client = client(self.url)
        await self._client.ping()
        self._outbox = asyncio.Queue()
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._listen(pubsub))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
        if self._client is not None:
            await self._client.aclose()

    def publish(self, topic: str, event: str, data: dict) -> None:
        if self._outbox is None:  # not started (e.g. an app used without its lifespan): this process only
            super().publish(topic, event, data)
            return
        item = json.dumps([topic, event, data], separators=(",", ":"))
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._outbox.put_nowait(item)
        else:  # a worker thread (the delivery hook)
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, item)

    async def _send(self) -> None:
        while True:
            items = [await self._outbox.get()]
            while not self._outbox.empty() and len(items) < 256:
                items.append(self._outbox.get_nowait())
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for item in items:
                        pipe.publish(self.channel, item)
                    await pipe.execute()
            except redis.RedisError as exc:  # news is best effort: streams resync on reconnect
                log.warning("publishing %d news items to Redis failed: %s", len(items), exc)
                for item in items:
                    Broker.publish(self, *json.loads(item))

    async def _listen(self, pubsub) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        topic, event, data = json.loads(message["data"])
                        Broker.publish(self, topic, event, data)
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except redis.RedisError as exc:
                log.warning("listening to Redis failed (%s); retrying", exc)
                await asyncio.sleep(1)
                try:
                    await pubsub.subscribe(self.channel)
                except redis.RedisError:
                    pass


# KEYS[1]: the bucket; ARGV: burst, rate per second. Returns {allowed (1/0),
# tokens left * 1000}. The clock is Redis's own (TIME), the same for every
# process: processes' clocks differ by milliseconds or more, and a bucket
# refilled "backwards" by a process behind would drain a generous limit.
_BUCKET = """
local burst, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 't')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 't', tostring(now))
local ttl = 3600
if rate > 0 then ttl = math.ceil(burst / rate) + 1 end
redis.call('EXPIRE', KEYS[1], ttl)
return {allowed, math.floor(tokens * 1000)}
"""


class RedisRateLimiter:
    """`RateLimiter`'s contract (`await check(name, key)` raises 429), shared."""

    def __init__(self, url: str, limits: dict[str, tuple[float, float]], prefix: str = "proactive:limit:"):
        self.url, self.limits, self.prefix = url, limits, prefix
        self._client = client(url)
        self._script = self._client.register_script(_BUCKET)

    async def check(self, name: str, key: str) -> None:
        from server_stub.api import ApiError

        burst, rate = self.limits[name]
        try:
            allowed, tokens = await self._script(keys=[f"{self.prefix}{name}:{key}"], args=[burst, rate])
        except redis.RedisError as exc:
            raise ApiError(503, "limits_unavailable", "the rate-limit store is unavailable; try again shortly",
                           retry_after=2) from exc
        if not allowed:
            left = tokens / 1000
            wait = max(1, math.ceil((1 - left) / rate)) if rate > 0 else 60
            raise ApiError(429, "rate_limited", f"too many requests ({name}); retry in {wait} s", retry_after=wait)

    async def aclose(self) -> None:
        await self._client.aclose()

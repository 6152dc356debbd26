"""In-process publish/subscribe for live news (presence, agent replies), and
the server-sent-events response that carries it to browsers.

A subscriber is an asyncio queue on the event loop that created it; `publish`
may be called from any thread (request handlers run on the loop, a delivery
hook in a worker thread) and hands each message to the right loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import anyio
from starlette.types import Receive, Scope, Send


class Broker:
    def __init__(self):
        self._lock = threading.Lock()
        self._subs: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue, frozenset[str]]] = {}
        self._next = 0

    def subscribe(self, topics: Iterable[str]) -> tuple[int, asyncio.Queue]:
        queue: asyncio.Queue = asyncio.Queue(maxsize=256)
        with self._lock:
            self._next += 1
            self._subs[self._next] = (asyncio.get_running_loop(), queue, frozenset(topics))
            return self._next, queue

    def unsubscribe(self, sub_id: int) -> None:
        with self._lock:
            self._subs.pop(sub_id, None)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, topic: str, event: str, data: dict) -> None:
        with self._lock:
            targets = [(loop, q) for loop, q, topics in self._subs.values() if topic in topics]
        for loop, queue in targets:
            try:
                loop.call_soon_threadsafe(_put, queue, (event, data))
            except RuntimeError:  # that loop is closed: its subscriber is gone
                pass


def _put(queue: asyncio.Queue, item) -> None:
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:  # a stuck client: drop rather than grow without bound
        pass


def sse_frame(event: str, data: dict, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


@dataclass(frozen=True)
class StreamLimits:
    """Caps on open event streams. Past any of them a new stream is refused
    with 503 and Retry-After (the widget backs off and retries). `total`
    None: derived from the process's file-descriptor limit, leaving a
    reserve so that /health, the agent API and ordinary requests still find
    a socket when visitors' streams are at the cap."""

    total: int | None = None
    per_address: int = 256
    per_visitor: int = 8
    agent: int = 64
    reserve: int = 256  # file descriptors kept for everything that is not a visitor stream
    retry_after: int = 30

    def resolved_total(self) -> int:
        if self.total is not None:
            return self.total
        return max(16, fd_limit() - self.reserve)


def fd_limit() -> int:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return soft if soft != resource.RLIM_INFINITY else 1 << 20
    except (ImportError, OSError, ValueError):
        return 1024


class StreamGate:
    """Counts open streams in total, per address and per visitor; `acquire`
    refuses one past a cap (503) or returns the function that releases it."""

    def __init__(self, total: int, per_address: int, per_visitor: int, retry_after: int = 30):
        self.total, self.per_address, self.per_visitor, self.retry_after = total, per_address, per_visitor, retry_after
        self.open = 0
        self._by_address: dict[str, int] = {}
        self._by_visitor: dict[str, int] = {}

    def acquire(self, address: str, visitor: str | None) -> Callable[[], None]:
        from server_stub.api import ApiError

        if self.open >= self.total:
            why = f"the server holds its maximum of {self.total} streams"
        elif self._by_address.get(address, 0) >= self.per_address:
            why = f"this address holds its maximum of {self.per_address} streams"
        elif visitor is not None and self._by_visitor.get(visitor, 0) >= self.per_visitor:
            why = f"this visitor holds its maximum of {self.per_visitor} streams"
        else:
            why = None
        if why is not None:
            raise ApiError(503, "too_many_streams", f"{why}; retry later", retry_after=self.retry_after)
        self.open += 1
        _bump(self._by_address, address, 1)
        if visitor is not None:
            _bump(self._by_visitor, visitor, 1)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open -= 1
                _bump(self._by_address, address, -1)
                if visitor is not None:
                    _bump(self._by_visitor, visitor, -1)

        return release


def _bump(counts: dict[str, int], key: str, by: int) -> None:
    n = counts.get(key, 0) + by
    if n > 0:
        counts[key] = n
    else:
        counts.pop(key, None)


class EventStream:
    """An ASGI response streaming `text/event-stream` until the client leaves
    (or `max_seconds` pass: the browser reconnects, which bounds the life of
    any one connection). Comments every `heartbeat` seconds keep proxies from
    closing an idle stream.

    Resuming: `message` events carry their message id as the SSE `id:`, so a
    reconnecting client says the last one it had (Last-Event-ID). `replay`,
    called once subscribed (so nothing published meanwhile falls between
    the two), returns the messages stored after it; live ones it already
    replayed are skipped: each message is sent once, in id order."""

    def __init__(self, broker: Broker, topics: Iterable[str], initial: Callable[[], list[tuple[str, dict]]],
                 headers: dict | None = None, heartbeat: float = 15.0, max_seconds: float = 300.0, retry_ms: int = 2000,
                 on_close: Callable[[], None] | None = None,
                 replay: Callable[[], Awaitable[list[dict]]] | None = None):
        self.broker, self.topics, self.initial, self.on_close = broker, list(topics), initial, on_close
        self.headers, self.replay = headers or {}, replay
        self.heartbeat, self.max_seconds, self.retry_ms = heartbeat, max_seconds, retry_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub_id, self._queue = self.broker.subscribe(self.topics)
        try:
            headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store",
                       "x-accel-buffering": "no", **self.headers}
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
            async with anyio.create_task_group() as tg:

                async def watch_disconnect():
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_disconnect)
                await self._stream(send)
                tg.cancel_scope.cancel()
        except OSError:
            pass
        finally:
            self.broker.unsubscribe(sub_id)
            if self.on_close is not None:
                self.on_close()

    async def _stream(self, send: Send) -> None:
        async def emit(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        await emit(f"retry: {self.retry_ms}\n\n".encode())
        for event, data in self.initial():
            await emit(sse_frame(event, data))
        sent = -1   # the highest message id sent
        for message in await self.replay() if self.replay is not None else []:
            sent = max(sent, message["id"])
            await emit(sse_frame("message", message, str(message["id"])))
        with anyio.move_on_after(self.max_seconds):
            while True:
                try:
                    event, data = await asyncio.wait_for(self._queue.get(), self.heartbeat)
                except asyncio.TimeoutError:
                    await emit(b": keep-alive\n\n")
                    continue
                if event == "message" and isinstance(data.get("id"), int):
                    if data["id"] <= sent:
                        continue   # replayed already
                    sent = data["id"]
                    await emit(sse_frame(event, data, str(data["id"])))
                else:
                    await emit(sse_frame(event, data))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

"""Running the widget origin under uvicorn, bounded (docs/endpoint.md, "Limits").

- `GuardedH11Protocol`: a connection must send a request's headers within
  `header_timeout` seconds (uvicorn waits forever for the first request: a
  client that connects and says nothing, or trickles a byte at a time, would
  hold a socket indefinitely), and past `max_connections` open connections a
  new one gets an immediate 503 with Retry-After instead of an accept() that
  fails for lack of file descriptors.
- `RateLimitedLog`: a logging filter that lets a repeated message through
  once per interval and counts the rest (asyncio logs "accept() out of system
  resource" for every failed accept — megabytes a second under attack).
- `uvicorn_config`: how `proactive serve` runs an app with both, and with
  uvicorn's own forwarded-header handling off (the app honours
  X-Forwarded-For only when created with `trust_proxy`, from those addresses).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from server_stub.broker import fd_limit

HEADER_TIMEOUT = 10.0
KEEP_ALIVE = 5.0
FD_MARGIN = 64  # file descriptors kept for the database, logs and the listening socket
_BUSY_BODY = b'{"error": {"code": "too_many_connections", "message": "the server is at its connection limit"}}\n'
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


class GuardedH11Protocol(H11Protocol):
    header_timeout: float = HEADER_TIMEOUT
    max_connections: int = 1 << 20

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(BUSY)
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        # Waiting for a request's headers (the first, or the next on a kept-
        # alive connection): the deadline runs from the first byte.
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(max_connections: int | None = None, header_timeout: float = HEADER_TIMEOUT) -> type:
    limit = max_connections if max_connections is not None else max(32, fd_limit() - FD_MARGIN)
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"max_connections": limit, "header_timeout": header_timeout})


class RateLimitedLog(logging.Filter):
    """Lets each distinct message (by logger and format string) through at
    most once per `interval` seconds; the next one that passes says how many
    were dropped meanwhile."""

    def __init__(self, interval: float = 10.0, clock=time.monotonic):
        super().__init__()
        self.interval, self.clock = interval, clock
        self._seen: dict[tuple[str, str], list] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = self.clock()
        with self._lock:
            state = self._seen.get(key)
            if state is not None and now - state[0] < self.interval:
                state[1] += 1
                return False
            dropped = state[1] if state is not None else 0
            self._seen[key] = [now, 0]
            if len(self._seen) > 1000:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like this in the last {self.interval:g} s)"
        return True


LIMITED_LOGGERS = ("asyncio", "uvicorn.error", "proactive.endpoint")


def limit_logs(interval: float = 10.0) -> RateLimitedLog:
    flt = RateLimitedLog(interval)
    for name in LIMITED_LOGGERS:
        logging.getLogger(name).addFilter(flt)
    return flt


def uvicorn_config(app, host: str, port: int, *, max_connections: int | None = None,
                   header_timeout: float = HEADER_TIMEOUT, **kwargs) -> uvicorn.Config:
    options = {"log_level": "warning", "timeout_graceful_shutdown": 2, "timeout_keep_alive": KEEP_ALIVE,
               "proxy_headers": False, **kwargs}
    return uvicorn.Config(app, host=host, port=port, http=guarded_protocol(max_connections, header_timeout), **options)

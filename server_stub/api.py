"""The endpoint's HTTP API (docs/endpoint.md, docs/openapi.json).

Two faces:
- the visitor API under /api (called by the widget from the sites in the CORS
  allow-list): geo, presence, the visitor's own conversation, beacons,
  delivery requests, and one server-sent-events stream;
- the agent API under /api/agent (called by the /agent page, same origin
  only, always behind the agent token): conversations, replies, presence,
  stats, delivery requests, and the agent's own event stream.

Every error is a JSON body `{"error": {"code", "message", ...}}`: a 4xx for
bad input, a 503 with Retry-After for a busy or full database and for
streams past their caps. A bug becomes a JSON 500 rather than a stack trace;
the property test (tests/test_endpoint_contract.py) asserts no input reaches it.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import math
import re
import os
import secrets
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server_stub import experiment_stats
from server_stub.broker import Broker, EventStream, StreamGate, StreamLimits
from server_stub.geo import GeoLocator
from server_stub.storage import SqlStore, now_ms
from widget.runtime.constants import RATINGS

log = logging.getLogger("proactive.endpoint")

EVENT_KINDS = ("shown", "clicked", "dismissed", "replied", "exposed", "goal")
DEFAULT_GOAL_WINDOW_S = 7 * 86400   # a goal counts for the arm a visitor was exposed to this long before
DELIVERY_STATUSES = ("pending", "handed_over", "sent", "failed")
MAX_TEXT = 2000
MAX_ID = 128
MAX_BODY = 16 * 1024
MAX_BEACON_BODY = 64 * 1024
MAX_BEACON_EVENTS = 200
MAX_ATTRIBUTES = 64
BODY_TIMEOUT = 10.0  # seconds for a whole request body to arrive
MAX_DEPTH = 16
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT_RE = re.compile(r"-?[0-9]{1,20}")
ASCII_SPACE = " \t\n\v\f\r"  # what "blank" means, here and in docs/openapi.json
EMAIL_RE = re.compile(r"[^\t\n\v\f\r ]*@[^\t\n\v\f\r ]*")
PRESENCE_MAX_AGE = 5  # seconds a cached GET /api/presence may be used without asking
BUCKETS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
REPLAY_MS = 3_600_000   # a resumed stream replays the messages of the last hour ...
REPLAY_MAX = 100        # ... at most this many (older ones: GET /conversation)
PRUNE_PERIOD = 3600.0  # seconds between two deletions of old raw events (and at start)
PRUNE_CHUNK = 5000


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 408: "timeout", 413: "too_large", 429: "rate_limited",
              503: "unavailable"}


async def _api_error(request: Request, exc: ApiError) -> Response:
    headers = {"retry-after": str(exc.extra.pop("retry_after"))} if "retry_after" in exc.extra else None
    if exc.status == 503:  # an overloaded server sheds the connection too (its socket is what is scarce)
        headers = {**(headers or {}), "connection": "close"}
    return error_response(exc.status, exc.code, exc.message, headers, **exc.extra)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    messages = {404: f"no such endpoint: {request.method} {request.url.path}",
                405: f"{request.method} is not allowed on {request.url.path}"}
    return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "error"),
                          messages.get(exc.status_code, exc.detail), dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "unexpected server error (logged)")


EXCEPTION_HANDLERS = {ApiError: _api_error, HTTPException: _http_error, Exception: _server_error}


# -- input -----------------------------------------------------------------------

async def read_json(request: Request, max_bytes: int = MAX_BODY) -> dict:
    """The request body as a JSON object, refusing oversized bodies before
    reading them whole and bodies that trickle in slower than BODY_TIMEOUT.
    Content-Type is not required (sendBeacon sends text); NaN and Infinity
    are not JSON. Unknown properties are ignored; the fields used are
    checked by `field_of` (and free-form ones by `check_json`) so that what
    is stored can be served back."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise ApiError(400, "bad_request", "Content-Length is not a number")
        if int(declared) > max_bytes:
            raise ApiError(413, "too_large", f"the body is larger than {max_bytes} bytes", limit=max_bytes)
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_bytes:
                    raise ApiError(413, "too_large", f"the body is larger than {max_bytes} bytes", limit=max_bytes)
    except TimeoutError:
        raise ApiError(408, "timeout", f"the body did not arrive within {BODY_TIMEOUT:g} s") from None
    if not body.strip():
        raise ApiError(400, "malformed_json", "the body is empty; expected a JSON object")
    try:
        value = json.loads(bytes(body).decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError, digit limit, depth
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def check_json(value, path: str = "", depth: int = 0, *, int64: bool = True) -> None:
    """Refuses what could not be stored or served back as JSON: lone
    surrogates (not Unicode), non-finite numbers, nesting deeper than
    MAX_DEPTH, and (`int64`) integers beyond 64 bits."""
    if depth > MAX_DEPTH:
        raise ApiError(422, "invalid_field", f"nested deeper than {MAX_DEPTH} levels", field=path or "body")
    if isinstance(value, str):
        if not _is_unicode(value):
            raise ApiError(422, "invalid_field", f"`{path}` is not valid Unicode (a lone surrogate)", field=path)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if int64 and not INT64_MIN <= value <= INT64_MAX:
            raise ApiError(422, "invalid_field", f"`{path}` is beyond a 64-bit integer", field=path)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ApiError(422, "invalid_field", f"`{path}` is not a finite number", field=path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_json(item, f"{path}[{i}]", depth + 1, int64=int64)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _is_unicode(key):
                raise ApiError(422, "invalid_field", f"a key in `{path or 'body'}` is not valid Unicode", field=path or "body")
            check_json(item, f"{path}.{key}" if path else key, depth + 1, int64=int64)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def int_param(request: Request, name: str, *, source: str = "query") -> int | None:
    """An integer from the query string or the path, within 64 bits (ASCII
    digits only: `str.isdigit` accepts "²")."""
    raw = (request.query_params if source == "query" else request.path_params).get(name)
    if raw is None:
        return None
    value = int(raw) if INT_RE.fullmatch(raw) else None
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        if source == "path":
            raise ApiError(404, "not_found", f"no such endpoint: {request.method} {request.url.path}")
        raise ApiError(422, "invalid_field", f"`{name}` must be an integer (64 bits at most)", field=name)
    return value


_MISSING = object()


def _share(value) -> float | None:
    """An arm's expected share of visitors (0 to 1), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ApiError(422, "invalid_field", "`share` must be a number from 0 to 1", field="share")
    return float(value)


def _name_of(body: dict, name: str, required: bool) -> str | None:
    """An id-like text field (an arm, a visitor id, a goal): never blank."""
    value = field_of(body, name, str, required=required, max_len=MAX_ID)
    if value is not None and not value:
        raise ApiError(422, "invalid_field", f"`{name}` is blank", field=name)
    return value


def field_of(body: dict, name: str, kind: type | tuple, *, required: bool = True, max_len: int | None = None,
             choices: tuple | None = None, default=None):
    """One field of a request body. `null` is the same as absent; strings
    are measured as sent, refused when blank if required, stored stripped."""
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise ApiError(422, "missing_field", f"`{name}` is required", field=name)
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ApiError(422, "invalid_field", f"`{name}` has the wrong type", field=name)
    if int in kinds and isinstance(value, float) and value.is_integer() and INT64_MIN <= value <= INT64_MAX:
        value = int(value)  # JSON has one number type: 5.0 is the integer 5
    if not isinstance(value, kind):
        raise ApiError(422, "invalid_field", f"`{name}` must be {'/'.join(k.__name__ for k in kinds)}", field=name)
    if not isinstance(value, (dict, list)):  # containers: their parts are checked where they are used
        check_json(value, name)
    if isinstance(value, str):
        if max_len is not None and len(value) > max_len:
            raise ApiError(422, "invalid_field", f"`{name}` is longer than {max_len} characters", field=name)
        value = value.strip(ASCII_SPACE)
        if required and not value:
            raise ApiError(422, "invalid_field", f"`{name}` must not be empty", field=name)
    if choices is not None and value not in choices:
        raise ApiError(422, "invalid_field", f"`{name}` must be one of {', '.join(map(str, choices))}", field=name)
    return value


# -- rate limiting -----------------------------------------------------------------

DEFAULT_LIMITS = {
    # name: (burst, refill per second). Keys are what a client cannot mint at
    # will: the network address (an IPv6 /64) or a visitor token it was given.
    "register": (60, 1.0),      # per address (offices share addresses)
    "message": (20, 0.5),       # per visitor
    "rating": (10, 0.2),        # per visitor
    "events_ip": (600, 20.0),   # beacon batches, per address
    "delivery": (10, 0.1),      # per visitor
    "self_service": (30, 0.5),  # export / delete a visitor's data, per address
}


class RateLimiter:
    """Token buckets in memory, one per (limit, key), with a cost per check
    that does not depend on how many keys there are: each limit keeps its
    buckets in least-recently-used order, and each check drops (from the
    old end) buckets that are full again — a full bucket is the same as no
    bucket — and any beyond `max_keys`, so memory stays bounded under a
    flood of new keys and no check ever scans the whole table."""

    def __init__(self, limits: dict[str, tuple[float, float]], clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000):
        self.limits, self.clock, self.max_keys = limits, clock, max_keys
        self._buckets: dict[str, OrderedDict[str, tuple[float, float]]] = {name: OrderedDict() for name in limits}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def check(self, name: str, key: str) -> None:
        burst, rate = self.limits[name]
        now = self.clock()
        with self._lock:
            buckets = self._buckets.setdefault(name, OrderedDict())
            state = buckets.pop(key, None)
            tokens = burst if state is None else min(burst, state[0] + (now - state[1]) * rate)
            buckets[key] = (tokens - 1 if tokens >= 1 else tokens, now)  # now the most recent
            refill = burst / rate if rate > 0 else math.inf
            for _ in range(2):  # amortised O(1): at most two old buckets go per check
                oldest = next(iter(buckets), None)
                if oldest is None:
                    break
                if len(buckets) > self.max_keys or now - buckets[oldest][1] >= refill:
                    del buckets[oldest]
                else:
                    break
        if tokens < 1:
            wait = max(1, math.ceil((1 - tokens) / rate)) if rate > 0 else 60
            raise ApiError(429, "rate_limited", f"too many requests ({name}); retry in {wait} s", retry_after=wait)


def address_key(host: str | None) -> str:
    """The rate-limit key of a network address: IPv4 as is, IPv6 by its /64
    (one subscriber gets a whole /64 and can pick any address in it)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# -- the endpoint ----------------------------------------------------------------------

@dataclass
class EndpointConfig:
    allowed_origins: list[str] = field(default_factory=lambda: ["*"])
    agent_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # The origins the agent page is served from (scheme://host:port). None:
    # any loopback name (127.0.0.1, localhost, [::1]) on any port — never a
    # name an attacker's DNS can point at this server.
    agent_origins: list[str] | None = None
    rate_limits: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    on_delivery: Callable[[dict], object] | None = None
    stream_heartbeat: float = 15.0
    stream_max_seconds: float = 300.0
    streams: StreamLimits = field(default_factory=StreamLimits)
    storage_queue: int = 4096  # storage calls waiting at once; past it, 503 storage_busy
    # A delivery request still pending this long after it was made, claimed by
    # no live process (its process died before handing it over), is handed
    # over by whichever process looks first; a claim lasts as long.
    delivery_lease_ms: int = 60_000
    # An agent who went online is offline this long after their page last
    # said so (it says so every 30 s while open): a closed laptop does not
    # leave the team "online".
    presence_ttl_ms: int = 90_000
    # redis://… : live news and rate limits shared with every process on the
    # same Redis (server_stub/broker_redis.py); None: this process only.
    broker_url: str | None = None
    # Raw beacon events older than this are deleted (the stats keep their
    # counts: storage.py's tallies); None or 0: kept until a visitor's
    # data is deleted.
    keep_events_days: float | None = None
    # Signed bundles uploaded by the studio's Publish (PUT /api/agent/bundles/NAME): stored in
    # `bundles_dir` (served at /bundles/NAME.json) only when signed by one of `bundle_keys` (the
    # sites' public keys, "ed25519:BASE64"); none: uploads are off. The endpoint never signs.
    bundle_keys: list[str] = field(default_factory=list)
    bundles_dir: str | None = None


BUNDLE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class Endpoint:
    def __init__(self, store: SqlStore, geo: GeoLocator, config: EndpointConfig):
        if not config.agent_token:
            raise ValueError("the agent API needs a token")
        # One process per database unless news is shared (docs/endpoint.md): refused before anything starts.
        store.serve(shared=bool(config.broker_url))
        self.store, self.geo, self.config = store, geo, config
        limits = {**DEFAULT_LIMITS, **config.rate_limits}
        if config.broker_url:
            from server_stub.broker_redis import RedisBroker, RedisRateLimiter

            self.broker: Broker = RedisBroker(config.broker_url)
            self.limits: RateLimiter | RedisRateLimiter = RedisRateLimiter(config.broker_url, limits)
        else:
            self.broker = Broker()
            self.limits = RateLimiter(limits)
        self.allow_any = "*" in config.allowed_origins
        caps = config.streams
        self.visitor_streams = StreamGate(caps.resolved_total(), caps.per_address, caps.per_visitor, caps.retry_after)
        self.agent_streams = StreamGate(caps.agent, caps.agent, caps.agent, caps.retry_after)
        # Storage runs on threads of its own (one for SQLite, one per pooled
        # connection for PostgreSQL): a slow or locked database delays only
        # the requests that need it, never the event loop.
        self._storage = ThreadPoolExecutor(store.threads, thread_name_prefix="proactive-storage")
        self._storage_waiting = 0
        self._beacons: list[tuple[str, str | None, list[dict], asyncio.Future]] = []
        self._beacons_flushing = False
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    async def start(self) -> None:
        """Connects to the shared broker, if any (the app's startup)."""
        start = getattr(self.broker, "start", None)
        if start is not None:
            await start()

    async def stop(self) -> None:
        for part in (self.broker, self.limits):
            for name in ("stop", "aclose"):
                if hasattr(part, name):
                    await getattr(part, name)()

    async def limit(self, name: str, key: str) -> None:
        """A rate limit (429 past it): in this process, or shared in Redis."""
        checked = self.limits.check(name, key)
        if checked is not None:
            await checked

    async def run_background(self) -> None:
        """What each process does while it runs: mark offline the agents
        whose heartbeat stopped, and hand over delivery requests that a dead
        process left pending (with a delivery hook)."""
        period = max(0.1, min(self.config.delivery_lease_ms, self.config.presence_ttl_ms) / 6000)
        pruned_at = -math.inf
        while True:
            await asyncio.sleep(period)
            try:
                if time.monotonic() - pruned_at >= PRUNE_PERIOD:
                    pruned_at = time.monotonic()
                    await self.prune_events()
                if await self.db(self.store.expire_agents):
                    await self._publish_presence()
                if self.config.on_delivery is not None:
                    for delivery_id in await self.db(self.store.unclaimed_deliveries, self.config.delivery_lease_ms):
                        await run_in_threadpool(self._hand_over, {"id": delivery_id})
            except ApiError as exc:
                log.warning("background work: %s", exc.message)

    async def prune_events(self) -> int:
        """Deletes the raw events older than `keep_events_days` (with the
        option set), a chunk per storage call so that other calls go in
        between; how many went."""
        days = self.config.keep_events_days
        if not days:
            return 0
        before, gone = now_ms() - int(days * 86_400_000), 0
        while True:
            n = await self.db(self.store.prune_events, before, PRUNE_CHUNK, 1)
            gone += n
            if n < PRUNE_CHUNK:
                return gone

    async def _publish_presence(self) -> dict:
        presence = await self.db(self.store.presence)
        self.broker.publish("presence", "presence", {k: presence[k] for k in ("team", "agents_online")})
        self.broker.publish("agent", "presence", presence)
        return presence

    def close(self) -> None:
        self._storage.shutdown(wait=True)
        self.store.close()

    # -- helpers -------------------------------------------------------------
    async def db(self, method: Callable, *args):
        """Runs a storage call on the storage thread. A busy, full or
        read-only database is a 503 with Retry-After, never a 500."""
        if self._storage_waiting >= self.config.storage_queue:
            raise ApiError(503, "storage_busy", "the database is busy; try again shortly", retry_after=2)
        self._storage_waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._storage, method, *args)
        except self.store.transient_errors as exc:
            raise storage_error(exc) from None
        finally:
            self._storage_waiting -= 1

    def origin_allowed(self, origin: str | None) -> bool:
        return origin is None or self.allow_any or origin in self.config.allowed_origins

    def _check_origin(self, request: Request) -> None:
        # CORS stops browsers from reading answers; this stops the writes of
        # "simple" requests (sendBeacon) from sites outside the allow-list.
        if not self.origin_allowed(request.headers.get("origin")):
            raise ApiError(403, "origin_not_allowed", "this site's origin is not in the endpoint's allow-list")

    async def _visitor(self, request: Request, token: str | None = None) -> str:
        if token is None:
            token = _bearer(request)
            if not token:
                raise ApiError(401, "missing_token", "send the visitor token as `Authorization: Bearer TOKEN`")
        if len(token) > 200 or not _is_unicode(token):
            raise ApiError(401, "unknown_visitor", "unknown visitor token")
        visitor = await self.db(self.store.visitor, token)
        if visitor is None:
            raise ApiError(401, "unknown_visitor", "unknown visitor token (register again: POST /api/visitors)")
        return visitor

    def _client(self, request: Request) -> str:
        """The caller's address as the server saw it (a proxy's forwarded
        address only with --trust-proxy, resolved before the app)."""
        return address_key(request.client.host if request.client else None)

    # -- visitor API -----------------------------------------------------------
    async def register(self, request: Request) -> Response:
        self._check_origin(request)
        await self.limit("register", self._client(request))
        body = await read_json(request) if await _has_body(request) else {}
        site = field_of(body, "site", str, required=False, max_len=MAX_ID)
        token = secrets.token_urlsafe(32)
        visitor = await self.db(self.store.add_visitor, token, site)
        return JSONResponse({"token": token, "visitor": visitor[:12]}, status_code=201)

    async def _self(self, request: Request) -> tuple[str | None, str | None]:
        """Whose data: the visitor of the Bearer token (optional) and the
        browser's beacon `sender` (query, optional); at least one."""
        await self.limit("self_service", self._client(request))
        token = _bearer(request)
        visitor = await self._visitor(request, token) if token else None
        sender = request.query_params.get("sender")
        if sender is not None:
            sender = sender.strip(ASCII_SPACE)
            if not sender or len(sender) > MAX_ID or not _is_unicode(sender):
                raise ApiError(422, "invalid_field", f"`sender` must be 1 to {MAX_ID} characters", field="sender")
        if visitor is None and sender is None:
            raise ApiError(401, "missing_token", "send the visitor token as `Authorization: Bearer TOKEN`, "
                                                 "or the beacon sender as ?sender=")
        return visitor, sender

    async def visitor_self(self, request: Request) -> Response:
        """GET: the export of everything kept about the caller; DELETE: all of it deleted."""
        if request.method == "DELETE":
            self._check_origin(request)
        visitor, sender = await self._self(request)
        if request.method != "DELETE":
            data = await self.db(self.store.visitor_data, visitor, sender)
            return JSONResponse({**data, "now": now_ms()}, headers={"cache-control": "no-store"})
        deleted = await self.db(self.store.delete_visitor, visitor, sender)
        return JSONResponse({"deleted": deleted})

    async def geo_answer(self, request: Request) -> Response:
        geo = self.geo.locate(request.headers, request.client.host if request.client else None)
        return JSONResponse(geo.as_json(), headers={"cache-control": "private, no-store", "vary": "*"})

    async def presence(self, request: Request) -> Response:
        """Team presence for pages without a stream: one small answer every
        visitor may share (no token, nothing personal), so a CDN or the
        browser caches it for PRESENCE_MAX_AGE seconds and then revalidates
        with If-None-Match (304 while unchanged)."""
        body = json.dumps(await self._presence_news(), separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {"cache-control": f"public, max-age={PRESENCE_MAX_AGE}", "etag": etag}
        if etag in (t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    def _public_conversation(self, conv: dict | None) -> dict | None:
        if conv is None:
            return None
        return {"id": conv["id"], "started_at": conv["started_at"], "rating": conv["rating"],
                "rating_at": conv["rating_at"], "auto_message": conv["auto_message"],
                "messages": [_public_message(m) for m in conv["messages"]]}

    async def conversation(self, request: Request) -> Response:
        visitor = await self._visitor(request)
        conv = await self.db(self.store.conversation_of, visitor)
        return JSONResponse({"conversation": self._public_conversation(conv), "now": now_ms()},
                            headers={"cache-control": "no-store"})

    async def visitor_message(self, request: Request) -> Response:
        self._check_origin(request)
        visitor = await self._visitor(request)
        await self.limit("message", visitor)
        body = await read_json(request)
        text = field_of(body, "text", str, max_len=MAX_TEXT)
        auto_message = field_of(body, "auto_message", str, required=False, max_len=MAX_ID)
        site = field_of(body, "site", str, required=False, max_len=MAX_ID)
        page_url = field_of(body, "page_url", str, required=False, max_len=2048)
        cid, message = await self.db(
            lambda: self.store.add_visitor_message(visitor, text, site=site, auto_message=auto_message, page_url=page_url))
        self.broker.publish("visitor:" + visitor, "message", _public_message(message))
        self.broker.publish("agent", "conversation", {"conversation": cid, "message": message})
        return JSONResponse({"conversation": cid, "message": _public_message(message), "now": now_ms()}, status_code=201)

    async def rating(self, request: Request) -> Response:
        self._check_origin(request)
        visitor = await self._visitor(request)
        await self.limit("rating", visitor)
        body = await read_json(request)
        value = field_of(body, "value", str, choices=RATINGS)
        result = await self.db(self.store.rate, visitor, value)
        if result is None:
            raise ApiError(409, "no_conversation", "there is no conversation to rate yet")
        self.broker.publish("visitor:" + visitor, "rating", {"rating": value, "rating_at": result["rating_at"]})
        self.broker.publish("agent", "conversation", {"conversation": result["conversation"], "rating": value})
        return JSONResponse({**result, "now": now_ms()})

    async def events(self, request: Request) -> Response:
        self._check_origin(request)
        # Per address, not per `sender`: a sender is whatever the client says.
        await self.limit("events_ip", self._client(request))
        body = await read_json(request, MAX_BEACON_BODY)
        sender = field_of(body, "sender", str, max_len=MAX_ID)
        site = field_of(body, "site", str, required=False, max_len=MAX_ID)
        events = field_of(body, "events", list)
        if len(events) > MAX_BEACON_EVENTS:
            raise ApiError(422, "too_many_events", f"at most {MAX_BEACON_EVENTS} events per batch",
                           field="events", limit=MAX_BEACON_EVENTS)
        clean = []
        for i, e in enumerate(events):
            if not isinstance(e, dict):
                raise ApiError(422, "invalid_field", f"events[{i}] must be an object", field=f"events[{i}]")
            try:
                kind = field_of(e, "type", str, choices=EVENT_KINDS)
                armed = kind in ("exposed", "goal")   # only with an arm: experiments
                clean.append({
                    "id": field_of(e, "id", str, max_len=MAX_ID),
                    "type": kind,
                    "message": field_of(e, "message", str, max_len=MAX_ID),
                    "t": field_of(e, "t", int, required=False),
                    "button": _button(e.get("button")),
                    "arm": _name_of(e, "arm", armed),
                    "visitor": _name_of(e, "visitor", armed),
                    "control": _name_of(e, "control", False),
                    "goal": _name_of(e, "goal", kind == "goal"),
                    "experiment": _name_of(e, "experiment", False),
                    "share": _share(e.get("share")),
                })
            except ApiError as exc:
                exc.extra["field"] = f"events[{i}].{exc.extra.get('field')}"
                raise
        new = await self._add_events(sender, site, clean)
        if new:
            self.broker.publish("agent", "stats", {"new_events": new})
        return JSONResponse({"accepted": len(clean), "new": new}, status_code=202)

    async def delivery(self, request: Request) -> Response:
        self._check_origin(request)
        visitor = await self._visitor(request)
        await self.limit("delivery", visitor)
        body = await read_json(request)
        message = field_of(body, "message", str, max_len=MAX_ID)
        site = field_of(body, "site", str, required=False, max_len=MAX_ID)
        attributes = field_of(body, "attributes", dict, required=False, default={})
        check_json(attributes, "attributes", int64=False)  # served back to the agent page and the mail hook
        if len(attributes) > MAX_ATTRIBUTES:
            raise ApiError(422, "invalid_field", f"`attributes` has more than {MAX_ATTRIBUTES} properties", field="attributes")
        if len(json.dumps(attributes)) > 4096:
            raise ApiError(422, "invalid_field", "`attributes` is larger than 4096 bytes", field="attributes")
        email = body.get("email")
        if email is not None and not (isinstance(email, str) and len(email) <= 254 and EMAIL_RE.fullmatch(email)):
            raise ApiError(422, "invalid_field", "`email` is not an email address", field="email")
        if email is None and isinstance(attributes.get("email"), str):
            # The page's identify() attributes: used when they hold an address, ignored otherwise.
            candidate = attributes["email"].strip(ASCII_SPACE)[:254]
            email = candidate if EMAIL_RE.fullmatch(candidate) else None
        request_, created = await self.db(self.store.add_delivery, visitor, site, message, email, attributes)
        if created:
            self.broker.publish("agent", "delivery", request_)
            if self.config.on_delivery is not None:
                request_ = await run_in_threadpool(self._hand_over, request_)
        return JSONResponse({"delivery": _public_delivery(request_), "created": created},
                            status_code=202 if created else 200)

    async def _add_events(self, sender: str, site: str | None, events: list[dict]) -> int:
        """Stores a beacon's events; beacons that arrive while a write is
        under way are written together in the next transaction (group
        commit: one storage call and one commit for many beacons)."""
        future = asyncio.get_running_loop().create_future()
        self._beacons.append((sender, site, events, future))
        if not self._beacons_flushing:
            self._beacons_flushing = True
            asyncio.ensure_future(self._flush_beacons())
        return await future

    async def _flush_beacons(self) -> None:
        try:
            while self._beacons:
                group, self._beacons = self._beacons, []
                try:
                    counts = await self.db(self.store.add_event_batches, [(s, site, ev) for s, site, ev, _ in group])
                except ApiError as exc:
                    for *_, future in group:
                        future.set_exception(ApiError(exc.status, exc.code, exc.message, **exc.extra))
                except Exception as exc:  # a bug: each waiting request reports it
                    for *_, future in group:
                        future.set_exception(exc)
                else:
                    for (*_, future), n in zip(group, counts):
                        future.set_result(n)
        finally:
            self._beacons_flushing = False

    def _hand_over(self, request_: dict) -> dict:
        """Claims the request in the database (so that of N processes one
        hands it over), calls the site's delivery hook, and records its
        outcome as the request's status."""
        try:
            claimed = self._storage.submit(self.store.claim_delivery, request_["id"], self.instance,
                                           self.config.delivery_lease_ms).result()
        except self.store.transient_errors as exc:
            log.warning("delivery request %s: could not claim it: %s", request_["id"], exc)
            return request_
        if claimed is None:  # another process has it, or it is no longer pending
            return request_
        request_ = claimed
        try:
            outcome = self.config.on_delivery(dict(request_))
        except Exception as exc:  # the hook is the site's code: record, don't crash
            log.warning("delivery hook failed for request %s: %s", request_["id"], exc)
            status, detail = "failed", str(exc)[:500]
        else:
            status, detail = (outcome if outcome in DELIVERY_STATUSES else "handed_over"), None
        try:
            return self._storage.submit(self.store.set_delivery_status, request_["id"], status, detail).result() or request_
        except self.store.transient_errors as exc:
            log.warning("delivery request %s: could not record %s: %s", request_["id"], status, exc)
            return request_

    async def stream(self, request: Request) -> Response:
        """The visitor's live news: presence, and with `?visitor=TOKEN` their
        conversation's messages and rating. Each message event's id is the
        message's; a client that says the last one it has (the Last-Event-ID
        header EventSource sends when it reconnects, or `?last_event_id=`
        when it opens a new stream) first gets the messages stored after it
        (of the last REPLAY_MS, at most REPLAY_MAX; older ones are the
        history's), whichever process stored them."""
        token = request.query_params.get("visitor")
        topics = ["presence"]
        visitor = await self._visitor(request, token) if token else None
        if visitor:
            topics.append("visitor:" + visitor)
        last = _last_event_id(request)
        presence = await self._presence_news()
        release = self.visitor_streams.acquire(self._client(request), visitor)

        async def replay() -> list[dict]:
            try:
                found = await self.db(self.store.messages_after, visitor, last, now_ms() - REPLAY_MS, REPLAY_MAX)
            except ApiError:
                return []   # a busy database: the client reads the history
            return [_public_message(m) for m in found]

        return EventStream(self.broker, topics, lambda: [("presence", presence), ("hello", {"now": now_ms()})],
                           heartbeat=self.config.stream_heartbeat, max_seconds=self.config.stream_max_seconds,
                           on_close=release, replay=replay if visitor and last is not None else None)

    async def _presence_news(self) -> dict:
        p = await self.db(self.store.presence)
        return {"team": p["team"], "agents_online": p["agents_online"]}

    # -- agent API -------------------------------------------------------------
    def _agent(self, request: Request, *, token: str | None = None) -> None:
        """Every agent call needs the agent token, on a Host this server is
        configured for (so a name an attacker's DNS points here — DNS
        rebinding — gets nothing), and writes need that origin too."""
        host = request.headers.get("host", "").lower()
        origins = self.config.agent_origins
        if origins is None:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            own = [f"http://{host}", f"https://{host}"] if name in LOOPBACK_HOSTS else []
        else:
            own = [o for o in origins if o.split("://", 1)[-1].lower() == host]
        if not own:
            raise ApiError(403, "host_not_allowed", "the agent API answers only on its configured origin")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin not in own:
                raise ApiError(403, "origin_not_allowed", "the agent API only accepts requests from its own origin")
        token = _bearer(request) if token is None else token
        if not token or not secrets.compare_digest(token.encode("utf-8", "replace"),
                                                   self.config.agent_token.encode()):
            raise ApiError(401, "agent_token_required", "this endpoint needs the agent token (`Authorization: Bearer …`)")

    async def agent_conversations(self, request: Request) -> Response:
        self._agent(request)
        return JSONResponse({"conversations": await self.db(self.store.conversations)})

    async def agent_conversation(self, request: Request) -> Response:
        self._agent(request)
        cid = int_param(request, "id", source="path")
        conv = await self.db(self.store.conversation, cid)
        if conv is None:
            raise ApiError(404, "unknown_conversation", f"no conversation {cid}")
        return JSONResponse({"conversation": conv})

    async def agent_reply(self, request: Request) -> Response:
        self._agent(request)
        cid = int_param(request, "id", source="path")
        body = await read_json(request)
        text = field_of(body, "text", str, max_len=MAX_TEXT)
        author = field_of(body, "author", str, required=False, max_len=80, default="Agent") or "Agent"
        result = await self.db(self.store.add_agent_message, cid, author, text)
        if result is None:
            raise ApiError(404, "unknown_conversation", f"no conversation {cid}")
        visitor, message = result
        self.broker.publish("visitor:" + visitor, "message", _public_message(message))
        self.broker.publish("agent", "conversation", {"conversation": cid, "message": message})
        return JSONResponse({"message": message}, status_code=201)

    async def agent_presence(self, request: Request) -> Response:
        self._agent(request)
        if request.method == "POST":
            body = await read_json(request)
            agent = field_of(body, "agent", str, max_len=80)
            online = field_of(body, "online", bool)
            if await self.db(self.store.set_agent_online, agent, online, self.config.presence_ttl_ms):
                return JSONResponse(await self._publish_presence())
            return JSONResponse(await self.db(self.store.presence))  # a heartbeat: no news
        return JSONResponse(await self.db(self.store.presence))

    async def agent_upload_bundle(self, request: Request) -> Response:
        """Store a signed bundle as /bundles/NAME.json when a configured key
        signed it and a browser holding the stored one would take it (every
        check of widget/runtime/trust.py, the stored version as the floor)."""
        self._agent(request)
        from proactive import signing
        from widget.runtime import trust

        if not self.config.bundle_keys or not self.config.bundles_dir:
            raise ApiError(403, "uploads_off", "this endpoint accepts no bundles (start it with --bundle-key KEY)")
        name = request.path_params["name"]
        if not BUNDLE_NAME.match(name):
            raise ApiError(422, "invalid_field", "a bundle name is 1-64 of a-z, 0-9, '-', '_'", field="name")
        raw = await request.body()
        if len(raw) > trust.MAX_BUNDLE_BYTES:
            raise ApiError(413, "too_large", f"a bundle is at most {trust.MAX_BUNDLE_BYTES} bytes")
        pins = [k for spec in self.config.bundle_keys for k in signing.parse_public_keys(spec)]
        target = os.path.join(self.config.bundles_dir, f"{name}.json")
        try:
            with open(target, "rb") as f:
                stored = json.loads(trust.open_envelope(f.read(), pins).payload)["version"]
        except (OSError, ValueError, KeyError, trust.BundleRejected):
            stored = None
        try:
            payload, _ = trust.verify_publication(raw, pins, signing.verify_signature, last_version=stored, now=now_ms())
        except trust.BundleRejected as exc:
            raise ApiError(422, "bundle_rejected", f"a browser would refuse this bundle: {exc}") from None
        if stored is not None and payload["version"] < stored:
            raise ApiError(409, "older_version", f"version {payload['version']} is below the stored version {stored}")
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.config.bundles_dir)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        return JSONResponse({"name": name, "version": payload["version"], "url": f"/bundles/{name}.json"})

    async def agent_stats(self, request: Request) -> Response:
        self._agent(request)
        bucket = request.query_params.get("bucket", "hour")
        if bucket not in BUCKETS:
            raise ApiError(422, "invalid_field", f"`bucket` must be one of {', '.join(BUCKETS)}", field="bucket")
        since = int_param(request, "since")
        goal = request.query_params.get("goal") or None
        if goal is not None and len(goal) > MAX_ID:
            raise ApiError(422, "invalid_field", f"`goal` is longer than {MAX_ID} characters", field="goal")
        window = int_param(request, "goal_window")
        window = DEFAULT_GOAL_WINDOW_S if window is None else window
        if not 0 <= window <= 366 * 86400:
            raise ApiError(422, "invalid_field", "`goal_window` must be 0 to 31622400 seconds", field="goal_window")
        lift = request.query_params.get("lift", "0.1")
        try:
            lift = float(lift)
        except ValueError:
            lift = math.nan
        if not 0.001 <= lift <= 10:
            raise ApiError(422, "invalid_field", "`lift` must be a number from 0.001 to 10 (0.1: a 10 % rise)", field="lift")
        stats = await self.db(self.store.stats, BUCKETS[bucket], since)
        rows, controls, shares = await self.db(self.store.arm_counts, goal, window * 1000)
        return JSONResponse({**stats, "bucket": bucket, "goal": goal, "goal_window": window,
                             "lift": lift,
                             "experiments": experiment_stats.experiment_results(rows, controls, shares, lift)})

    async def agent_deliveries(self, request: Request) -> Response:
        self._agent(request)
        status = request.query_params.get("status")
        if status is not None and status not in DELIVERY_STATUSES:
            raise ApiError(422, "invalid_field", f"`status` must be one of {', '.join(DELIVERY_STATUSES)}", field="status")
        return JSONResponse({"deliveries": await self.db(self.store.deliveries, status)})

    async def agent_set_delivery(self, request: Request) -> Response:
        self._agent(request)
        did = int_param(request, "id", source="path")
        body = await read_json(request)
        status = field_of(body, "status", str, choices=DELIVERY_STATUSES)
        detail = field_of(body, "detail", str, required=False, max_len=500)
        result = await self.db(self.store.set_delivery_status, did, status, detail)
        if result is None:
            raise ApiError(404, "unknown_delivery", f"no delivery request {did}")
        self.broker.publish("agent", "delivery", result)
        return JSONResponse({"delivery": result})

    async def agent_stream(self, request: Request) -> Response:
        self._agent(request, token=request.query_params.get("token") or _bearer(request))
        presence = await self.db(self.store.presence)
        release = self.agent_streams.acquire(self._client(request), None)
        return EventStream(self.broker, ["agent"], lambda: [("presence", presence), ("hello", {"now": now_ms()})],
                           heartbeat=self.config.stream_heartbeat, max_seconds=self.config.stream_max_seconds,
                           on_close=release)

    # -- apps ---------------------------------------------------------------------
    def visitor_app(self) -> Starlette:
        routes = [
            Route("/visitors", self.register, methods=["POST"]),
            Route("/visitors/me", self.visitor_self, methods=["GET", "DELETE"]),
            Route("/geo", self.geo_answer, methods=["GET"]),
            Route("/presence", self.presence, methods=["GET"]),
            Route("/conversation", self.conversation, methods=["GET"]),
            Route("/conversation/messages", self.visitor_message, methods=["POST"]),
            Route("/conversation/rating", self.rating, methods=["POST"]),
            Route("/events", self.events, methods=["POST"]),
            Route("/deliveries", self.delivery, methods=["POST"]),
            Route("/stream", self.stream, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]
        cors = Middleware(CORSMiddleware, allow_origins=self.config.allowed_origins, allow_methods=["GET", "POST", "DELETE"],
                          allow_headers=["Authorization", "Content-Type", "X-Proactive-Test-Geo"], max_age=600)
        return _app(routes, [cors])

    def agent_app(self) -> Starlette:
        routes = [
            Route("/conversations", self.agent_conversations, methods=["GET"]),
            Route("/conversations/{id}", self.agent_conversation, methods=["GET"]),
            Route("/conversations/{id}/messages", self.agent_reply, methods=["POST"]),
            Route("/presence", self.agent_presence, methods=["GET", "POST"]),
            Route("/stats", self.agent_stats, methods=["GET"]),
            Route("/bundles/{name}", self.agent_upload_bundle, methods=["PUT"]),
            Route("/deliveries", self.agent_deliveries, methods=["GET"]),
            Route("/deliveries/{id}", self.agent_set_delivery, methods=["POST"]),
            Route("/stream", self.agent_stream, methods=["GET"]),
        ]
        return _app(routes)

    async def openapi(self, request: Request) -> Response:
        from server_stub.openapi import document

        return JSONResponse(document())


def _app(routes: list, middleware: list | None = None) -> Starlette:
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS)
    # No "add/remove the trailing slash" redirects: they are built from the
    # request's Host header, which the client chooses.
    app.router.redirect_slashes = False
    return app


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def storage_error(exc: Exception) -> ApiError:
    """What a database failure means to a client: try again later (503), not a bug."""
    text, state = str(exc).lower(), getattr(exc, "sqlstate", None) or ""
    # SQLite says it in words; PostgreSQL in SQLSTATE codes: 55P03 lock_not_available (its lock_timeout),
    # 53100 disk_full (class 53: insufficient resources), 25006 read_only_sql_transaction.
    if "locked" in text or "busy" in text or state == "55P03":
        return ApiError(503, "storage_busy", "the database is busy; try again shortly", retry_after=2)
    if "full" in text or state == "53100":
        return ApiError(503, "storage_full", "the server's disk is full; try again later", retry_after=60)
    if "readonly" in text or "read-only" in text or state == "25006":
        return ApiError(503, "storage_read_only", "the database is read-only; try again later", retry_after=60)
    return ApiError(503, "storage_unavailable", "the database is unavailable; try again later", retry_after=10)


async def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


def _button(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ApiError(422, "invalid_field", "`button` must be a string or an index", field="button")
    check_json(value, "button")
    return str(value)[:MAX_ID]


def _last_event_id(request: Request) -> int | None:
    """The last message id a reconnecting client had: the Last-Event-ID
    header, else `?last_event_id=`; None when neither is a plain id (a
    stream without one replays nothing)."""
    for text in (request.headers.get("last-event-id"), request.query_params.get("last_event_id")):
        if text is not None and text.isascii() and text.isdigit() and len(text) <= 18:
            return int(text)
    return None


def _public_message(m: dict) -> dict:
    return {"id": m["id"], "sender": m["sender"], "author": m.get("author"), "text": m["text"], "t": m["t"]}


def _public_delivery(d: dict) -> dict:
    return {"id": d["id"], "message": d["message"], "status": d["status"], "requested_at": d["requested_at"]}

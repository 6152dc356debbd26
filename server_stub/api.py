"""The endpoint's HTTP API (docs/endpoint.md, docs/openapi.json).

Two faces:
- the visitor API under /api (called by the widget from the sites in the CORS
  allow-list): geo, presence, the visitor's own conversation, beacons,
  delivery requests, and one server-sent-events stream;
- the agent API under /api/agent (called by the /agent page, same origin only,
  optionally behind an agent token): conversations, replies, presence, stats,
  delivery requests, and the agent's own event stream.

Every error is a JSON body `{"error": {"code", "message", ...}}` with a 4xx
status; a bug becomes a JSON 500 rather than a stack trace, and tests assert
no input class reaches it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server_stub.broker import Broker, EventStream
from server_stub.geo import GeoLocator
from server_stub.storage import Store, now_ms
from widget.runtime.constants import RATINGS

log = logging.getLogger("proactive.endpoint")

EVENT_KINDS = ("shown", "clicked", "dismissed", "replied")
DELIVERY_STATUSES = ("pending", "handed_over", "sent", "failed")
MAX_TEXT = 2000
MAX_ID = 128
MAX_BODY = 16 * 1024
MAX_BEACON_BODY = 64 * 1024
MAX_BEACON_EVENTS = 200
BUCKETS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 429: "rate_limited"}


async def _api_error(request: Request, exc: ApiError) -> Response:
    headers = {"retry-after": str(exc.extra.pop("retry_after"))} if "retry_after" in exc.extra else None
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
    reading them whole. Content-Type is not required (sendBeacon sends text)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "Content-Length is not a number")
        if int(declared) > max_bytes:
            raise ApiError(413, "too_large", f"the body is larger than {max_bytes} bytes", limit=max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, "too_large", f"the body is larger than {max_bytes} bytes", limit=max_bytes)
    if not body.strip():
        raise ApiError(400, "malformed_json", "the body is empty; expected a JSON object")
    try:
        value = json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return value


_MISSING = object()


def field_of(body: dict, name: str, kind: type | tuple, *, required: bool = True, max_len: int | None = None,
             choices: tuple | None = None, default=None):
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise ApiError(422, "missing_field", f"`{name}` is required", field=name)
        return default
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ApiError(422, "invalid_field", f"`{name}` has the wrong type", field=name)
    if not isinstance(value, kind):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ApiError(422, "invalid_field", f"`{name}` must be {names}", field=name)
    if isinstance(value, str):
        value = value.strip()
        if required and not value:
            raise ApiError(422, "invalid_field", f"`{name}` must not be empty", field=name)
        if max_len is not None and len(value) > max_len:
            raise ApiError(422, "invalid_field", f"`{name}` is longer than {max_len} characters", field=name)
    if choices is not None and value not in choices:
        raise ApiError(422, "invalid_field", f"`{name}` must be one of {', '.join(map(str, choices))}", field=name)
    return value


# -- rate limiting -----------------------------------------------------------------

DEFAULT_LIMITS = {
    # name: (burst, refill per second) — per visitor (or per IP before one exists)
    "register": (60, 1.0),
    "message": (20, 0.5),
    "rating": (10, 0.2),
    "events": (60, 2.0),
    "events_ip": (600, 20.0),
    "delivery": (10, 0.1),
}


class RateLimiter:
    """Token buckets in memory, one per (limit, key)."""

    def __init__(self, limits: dict[str, tuple[float, float]], clock: Callable[[], float] = time.monotonic):
        self.limits, self.clock = limits, clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, name: str, key: str) -> None:
        burst, rate = self.limits[name]
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get((name, key), (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[(name, key)] = (tokens, now)
                wait = max(1, int((1 - tokens) / rate + 0.999)) if rate > 0 else 60
                raise ApiError(429, "rate_limited", f"too many requests ({name}); retry in {wait} s",
                               retry_after=wait)
            self._buckets[(name, key)] = (tokens - 1, now)
            if len(self._buckets) > 50_000:  # forget idle buckets rather than grow forever
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}


# -- the endpoint ----------------------------------------------------------------------

@dataclass
class EndpointConfig:
    allowed_origins: list[str] = field(default_factory=lambda: ["*"])
    agent_token: str | None = None
    rate_limits: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    on_delivery: Callable[[dict], object] | None = None
    stream_heartbeat: float = 15.0
    stream_max_seconds: float = 300.0


class Endpoint:
    def __init__(self, store: Store, geo: GeoLocator, config: EndpointConfig):
        self.store, self.geo, self.config = store, geo, config
        self.broker = Broker()
        self.limits = RateLimiter({**DEFAULT_LIMITS, **config.rate_limits})
        self.allow_any = "*" in config.allowed_origins

    # -- helpers -------------------------------------------------------------
    def origin_allowed(self, origin: str | None) -> bool:
        return origin is None or self.allow_any or origin in self.config.allowed_origins

    def _check_origin(self, request: Request) -> None:
        # CORS stops browsers from reading answers; this stops the writes of
        # "simple" requests (sendBeacon) from sites outside the allow-list.
        if not self.origin_allowed(request.headers.get("origin")):
            raise ApiError(403, "origin_not_allowed", "this site's origin is not in the endpoint's allow-list")

    def _visitor(self, request: Request, token: str | None = None) -> str:
        if token is None:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, "missing_token", "send the visitor token as `Authorization: Bearer TOKEN`")
            token = token.strip()
        if len(token) > 200:
            raise ApiError(401, "unknown_visitor", "unknown visitor token")
        visitor = self.store.visitor(token)
        if visitor is None:
            raise ApiError(401, "unknown_visitor", "unknown visitor token (register again: POST /api/visitors)")
        return visitor

    def _client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    # -- visitor API -----------------------------------------------------------
    async def register(self, request: Request) -> Response:
        self._check_origin(request)
        self.limits.check("register", self._client(request))
        body = await read_json(request) if await _has_body(request) else {}
        site = field_of(body, "site", str, required=False, max_len=MAX_ID)
        token = secrets.token_urlsafe(32)
        visitor = self.store.add_visitor(token, site)
        return JSONResponse({"token": token, "visitor": visitor[:12]}, status_code=201)

    async def geo_answer(self, request: Request) -> Response:
        geo = self.geo.locate(request.headers, request.client.host if request.client else None)
        return JSONResponse(geo.as_json(), headers={"cache-control": "private, no-store", "vary": "*"})

    async def presence(self, request: Request) -> Response:
        p = self.store.presence()
        return JSONResponse({"team": p["team"], "agents_online": p["agents_online"]},
                            headers={"cache-control": "no-store"})

    def _public_conversation(self, visitor: str) -> dict | None:
        conv = self.store.conversation_of(visitor)
        if conv is None:
            return None
        return {"id": conv["id"], "started_at": conv["started_at"], "rating": conv["rating"],
                "rating_at": conv["rating_at"], "auto_message": conv["auto_message"],
                "messages": [_public_message(m) for m in conv["messages"]]}

    async def conversation(self, request: Request) -> Response:
        visitor = self._visitor(request)
        return JSONResponse({"conversation": self._public_conversation(visitor), "now": now_ms()},
                            headers={"cache-control": "no-store"})

    async def visitor_message(self, request: Request) -> Response:
        self._check_origin(request)
        visitor = self._visitor(request)
        self.limits.check("message", visitor)
        body = await read_json(request)
        text = field_of(body, "text", str, max_len=MAX_TEXT)
        auto_message = field_of(body, "auto_message", str, required=False, max_len=MAX_ID)
        site = field_of(body, "site", str, required=False, max_len=MAX_ID)
        page_url = field_of(body, "page_url", str, required=False, max_len=2048)
        cid, message = self.store.add_visitor_message(visitor, text, site=site, auto_message=auto_message, page_url=page_url)
        self.broker.publish("visitor:" + visitor, "message", _public_message(message))
        self.broker.publish("agent", "conversation", {"conversation": cid, "message": message})
        return JSONResponse({"conversation": cid, "message": _public_message(message), "now": now_ms()}, status_code=201)

    async def rating(self, request: Request) -> Response:
        self._check_origin(request)
        visitor = self._visitor(request)
        self.limits.check("rating", visitor)
        body = await read_json(request)
        value = field_of(body, "value", str, choices=RATINGS)
        result = self.store.rate(visitor, value)
        if result is None:
            raise ApiError(409, "no_conversation", "there is no conversation to rate yet")
        self.broker.publish("visitor:" + visitor, "rating", {"rating": value, "rating_at": result["rating_at"]})
        self.broker.publish("agent", "conversation", {"conversation": result["conversation"], "rating": value})
        return JSONResponse({**result, "now": now_ms()})

    async def events(self, request: Request) -> Response:
        self._check_origin(request)
        self.limits.check("events_ip", self._client(request))
        body = await read_json(request, MAX_BEACON_BODY)
        sender = field_of(body, "sender", str, max_len=MAX_ID)
        self.limits.check("events", sender)
        site = field_of(body, "site", str, required=False, max_len=MAX_ID)
        events = field_of(body, "events", list)
        if len(events) > MAX_BEACON_EVENTS:
            raise ApiError(413, "too_many_events", f"at most {MAX_BEACON_EVENTS} events per batch", limit=MAX_BEACON_EVENTS)
        clean = []
        for i, e in enumerate(events):
            if not isinstance(e, dict):
                raise ApiError(422, "invalid_field", f"events[{i}] must be an object", field=f"events[{i}]")
            try:
                clean.append({
                    "id": field_of(e, "id", str, max_len=MAX_ID),
                    "type": field_of(e, "type", str, choices=EVENT_KINDS),
                    "message": field_of(e, "message", str, max_len=MAX_ID),
                    "t": field_of(e, "t", int, required=False),
                    "button": _button(e.get("button")),
                })
            except ApiError as exc:
                exc.extra["field"] = f"events[{i}].{exc.extra.get('field')}"
                raise
        new = self.store.add_events(sender, site, clean)
        if new:
            self.broker.publish("agent", "stats", {"new_events": new})
        return JSONResponse({"accepted": len(clean), "new": new}, status_code=202)

    async def delivery(self, request: Request) -> Response:
        self._check_origin(request)
        visitor = self._visitor(request)
        self.limits.check("delivery", visitor)
        body = await read_json(request)
        message = field_of(body, "message", str, max_len=MAX_ID)
        site = field_of(body, "site", str, required=False, max_len=MAX_ID)
        attributes = field_of(body, "attributes", dict, required=False, default={})
        if len(json.dumps(attributes)) > 4096:
            raise ApiError(422, "invalid_field", "`attributes` is larger than 4096 bytes", field="attributes")
        email = field_of(body, "email", str, required=False, max_len=254)
        if email is None and isinstance(attributes.get("email"), str):
            email = attributes["email"].strip()[:254] or None
        if email is not None and ("@" not in email or any(c.isspace() for c in email)):
            raise ApiError(422, "invalid_field", "`email` is not an email address", field="email")
        request_, created = self.store.add_delivery(visitor, site, message, email, attributes)
        if created:
            self.broker.publish("agent", "delivery", request_)
            if self.config.on_delivery is not None:
                request_ = await run_in_threadpool(self._hand_over, request_)
        return JSONResponse({"delivery": _public_delivery(request_), "created": created},
                            status_code=202 if created else 200)

    def _hand_over(self, request_: dict) -> dict:
        """Calls the site's delivery hook; its outcome becomes the request's status."""
        try:
            outcome = self.config.on_delivery(dict(request_))
        except Exception as exc:  # the hook is the site's code: record, don't crash
            log.warning("delivery hook failed for request %s: %s", request_["id"], exc)
            return self.store.set_delivery_status(request_["id"], "failed", str(exc)[:500]) or request_
        status = outcome if outcome in DELIVERY_STATUSES else "handed_over"
        return self.store.set_delivery_status(request_["id"], status) or request_

    async def stream(self, request: Request) -> Response:
        token = request.query_params.get("visitor")
        topics = ["presence"]
        if token:
            topics.append("visitor:" + self._visitor(request, token))

        def initial():
            return [("presence", self._presence_news()), ("hello", {"now": now_ms()})]

        return EventStream(self.broker, topics, initial, heartbeat=self.config.stream_heartbeat,
                           max_seconds=self.config.stream_max_seconds)

    def _presence_news(self) -> dict:
        p = self.store.presence()
        return {"team": p["team"], "agents_online": p["agents_online"]}

    # -- agent API -------------------------------------------------------------
    def _agent(self, request: Request, *, write: bool = False, token: str | None = None) -> None:
        if write:
            origin = request.headers.get("origin")
            own = f"{request.url.scheme}://{request.url.netloc}"
            if origin is not None and origin != own:
                raise ApiError(403, "origin_not_allowed", "the agent API only accepts requests from its own origin")
        expected = self.config.agent_token
        if expected is None:
            return
        if token is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""
        if not token or not secrets.compare_digest(token.encode(), expected.encode()):
            raise ApiError(401, "agent_token_required", "this endpoint needs the agent token (`Authorization: Bearer …`)")

    async def agent_conversations(self, request: Request) -> Response:
        self._agent(request)
        return JSONResponse({"conversations": self.store.conversations()})

    async def agent_conversation(self, request: Request) -> Response:
        self._agent(request)
        conv = self.store.conversation(request.path_params["id"])
        if conv is None:
            raise ApiError(404, "unknown_conversation", f"no conversation {request.path_params['id']}")
        return JSONResponse({"conversation": conv})

    async def agent_reply(self, request: Request) -> Response:
        self._agent(request, write=True)
        body = await read_json(request)
        text = field_of(body, "text", str, max_len=MAX_TEXT)
        author = field_of(body, "author", str, required=False, max_len=80, default="Agent") or "Agent"
        result = self.store.add_agent_message(request.path_params["id"], author, text)
        if result is None:
            raise ApiError(404, "unknown_conversation", f"no conversation {request.path_params['id']}")
        visitor, message = result
        self.broker.publish("visitor:" + visitor, "message", _public_message(message))
        self.broker.publish("agent", "conversation", {"conversation": request.path_params["id"], "message": message})
        return JSONResponse({"message": message}, status_code=201)

    async def agent_presence(self, request: Request) -> Response:
        self._agent(request)
        return JSONResponse(self.store.presence())

    async def agent_set_presence(self, request: Request) -> Response:
        self._agent(request, write=True)
        body = await read_json(request)
        agent = field_of(body, "agent", str, max_len=80)
        online = field_of(body, "online", bool)
        self.store.set_agent_online(agent, online)
        presence = self.store.presence()
        self.broker.publish("presence", "presence", self._presence_news())
        self.broker.publish("agent", "presence", presence)
        return JSONResponse(presence)

    async def agent_stats(self, request: Request) -> Response:
        self._agent(request)
        bucket = request.query_params.get("bucket", "hour")
        if bucket not in BUCKETS:
            raise ApiError(422, "invalid_field", f"`bucket` must be one of {', '.join(BUCKETS)}", field="bucket")
        since = request.query_params.get("since")
        if since is not None and not since.isdigit():
            raise ApiError(422, "invalid_field", "`since` must be milliseconds since the epoch", field="since")
        return JSONResponse({**self.store.stats(BUCKETS[bucket], int(since) if since else None), "bucket": bucket})

    async def agent_deliveries(self, request: Request) -> Response:
        self._agent(request)
        status = request.query_params.get("status")
        if status is not None and status not in DELIVERY_STATUSES:
            raise ApiError(422, "invalid_field", f"`status` must be one of {', '.join(DELIVERY_STATUSES)}", field="status")
        return JSONResponse({"deliveries": self.store.deliveries(status)})

    async def agent_set_delivery(self, request: Request) -> Response:
        self._agent(request, write=True)
        body = await read_json(request)
        status = field_of(body, "status", str, choices=DELIVERY_STATUSES)
        detail = field_of(body, "detail", str, required=False, max_len=500)
        result = self.store.set_delivery_status(request.path_params["id"], status, detail)
        if result is None:
            raise ApiError(404, "unknown_delivery", f"no delivery request {request.path_params['id']}")
        self.broker.publish("agent", "delivery", result)
        return JSONResponse({"delivery": result})

    async def agent_stream(self, request: Request) -> Response:
        self._agent(request, token=request.query_params.get("token") if self.config.agent_token else None)

        def initial():
            return [("presence", self.store.presence()), ("hello", {"now": now_ms()})]

        return EventStream(self.broker, ["agent"], initial, heartbeat=self.config.stream_heartbeat,
                           max_seconds=self.config.stream_max_seconds)

    # -- apps ---------------------------------------------------------------------
    def visitor_app(self) -> Starlette:
        routes = [
            Route("/visitors", self.register, methods=["POST"]),
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
        cors = Middleware(CORSMiddleware, allow_origins=self.config.allowed_origins, allow_methods=["GET", "POST"],
                          allow_headers=["Authorization", "Content-Type", "X-Proactive-Test-Geo"], max_age=600)
        return Starlette(routes=routes, middleware=[cors], exception_handlers=EXCEPTION_HANDLERS)

    def agent_app(self) -> Starlette:
        routes = [
            Route("/conversations", self.agent_conversations, methods=["GET"]),
            Route("/conversations/{id:int}", self.agent_conversation, methods=["GET"]),
            Route("/conversations/{id:int}/messages", self.agent_reply, methods=["POST"]),
            Route("/presence", self.agent_presence, methods=["GET"]),
            Route("/presence", self.agent_set_presence, methods=["POST"]),
            Route("/stats", self.agent_stats, methods=["GET"]),
            Route("/deliveries", self.agent_deliveries, methods=["GET"]),
            Route("/deliveries/{id:int}", self.agent_set_delivery, methods=["POST"]),
            Route("/stream", self.agent_stream, methods=["GET"]),
        ]
        return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)

    async def openapi(self, request: Request) -> Response:
        from server_stub.openapi import document

        return JSONResponse(document())


async def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


def _button(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ApiError(422, "invalid_field", "`button` must be a string or an index", field="button")
    return str(value)[:MAX_ID]


def _public_message(m: dict) -> dict:
    return {"id": m["id"], "sender": m["sender"], "author": m.get("author"), "text": m["text"], "t": m["t"]}


def _public_delivery(d: dict) -> dict:
    return {"id": d["id"], "message": d["message"], "status": d["status"], "requested_at": d["requested_at"]}

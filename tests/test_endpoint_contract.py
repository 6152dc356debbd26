"""The property of docs/endpoint.md, tested: over every operation of
docs/openapi.json, generated requests — valid ones and ones that break the
schema — never get a 5xx, and every response matches the document (status,
content type, headers, body schema). Schemathesis generates the requests
(Hypothesis underneath) and calls the app in process, once on SQLite and
once on PostgreSQL with the rate limits in Redis (tests/conftest.py's
`backend`)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient

from server_stub.app import create_widget_app

ROOT = Path(__file__).resolve().parents[1]
AGENT_TOKEN = "contract-agent-token"
EXAMPLES = 25  # per operation and mode (19 operations): under a minute on a busy 2-core machine


def _app(tmp: Path, broker_url: str | None = None):
    static = tmp / "widget"
    static.mkdir(parents=True, exist_ok=True)
    (static / "loader.js").write_text("")
    unlimited = {name: (10**9, 10**9) for name in ("register", "message", "rating", "events_ip", "delivery", "self_service")}
    return create_widget_app(static, allowed_origins=["*"], agent_token=AGENT_TOKEN,
                             agent_origins=["http://localhost"], rate_limits=unlimited, stream_heartbeat=0.02,
                             broker_url=broker_url)


def _ready(app, asgi=None):
    """The app (as `asgi` calls it) with a registered visitor who has a conversation: (asgi, token)."""
    app.state.endpoint.config.stream_max_seconds = 0.05  # event streams end quickly here
    asgi = asgi or app
    client = TestClient(asgi, base_url="http://localhost")  # no lifespan: the app stays open
    token = client.post("/api/visitors", json={}).json()["token"]
    client.post("/api/conversation/messages", json={"text": "hi"}, headers={"authorization": f"Bearer {token}"})
    return asgi, token


class OnOneLoop:
    """An ASGI app run on one event loop of its own (a thread), whichever
    loop calls it: the client makes a loop per request, and the app's Redis
    connections belong to the loop that opened them."""

    def __init__(self, app):
        self.app, self.loop = app, asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def __call__(self, scope, receive, send):
        caller = asyncio.get_running_loop()

        def bridged(fn):
            async def call(*args):
                return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fn(*args), caller))
            return call

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            self.app(scope, bridged(receive), bridged(send)), self.loop))

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.app.state.endpoint.stop(), self.loop).result(5)  # its Redis clients
        self.loop.call_soon_threadsafe(self.loop.stop)


SQLITE = _ready(_app(Path(tempfile.mkdtemp(prefix="contract-"))))
CURRENT = list(SQLITE)  # the app under test and its visitor's token: per backend (the test sets it)
# The document the app serves is docs/openapi.json (tests/test_server_stream.py).


async def _without_lifespan(scope, receive, send):
    """The app, its lifespan answered but not run: the client calls it per
    request, and the app's shutdown would close the database."""
    if scope["type"] != "lifespan":
        return await CURRENT[0](scope, receive, send)
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


schema = schemathesis.openapi.from_asgi("/api/openapi.json", _without_lifespan)
schema.config.generation.update(modes=["positive", "negative"], max_examples=EXAMPLES)
# A body over the size limit is refused with 413 before it is read as JSON:
# a rejection of invalid data as good as a 400 (docs/endpoint.md, "Limits").
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]

@schema.auth(refresh_interval=None)
class Credentials:
    """The agent token for the agent API, a registered visitor's token for
    the visitor API — as an auth provider, so that schemathesis's checks
    also send each request without them, or with wrong ones, and expect 401."""

    def get(self, case, ctx):
        return AGENT_TOKEN if case.path.startswith("/api/agent") else CURRENT[1]

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES)
def test_every_operation_keeps_the_contract(case, backend, request):
    # On PostgreSQL + Redis: an app on a fresh schema per operation
    # (tests/conftest.py closes its store after), its rate limits in Redis,
    # made on the operation's first example.
    if backend == "sqlite":
        CURRENT[:] = SQLITE
    elif getattr(request.node, "_contract_app", None) is None:
        app = _app(Path(tempfile.mkdtemp(prefix="contract-")), request.getfixturevalue("redis_url"))
        request.node._contract_app = _ready(app, OnOneLoop(app))
        request.addfinalizer(request.node._contract_app[0].close)
        CURRENT[:] = request.node._contract_app
    case.call_and_validate(headers={"host": "localhost"})

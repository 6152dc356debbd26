"""The reference endpoint under attack and faults (issue: a rate limiter that
cannot be turned against the server, stored data that can be served, the
agent API closed by default, bounded connections, storage off the event
loop). In process where the behaviour lives in the app, on a real uvicorn
server where it lives in the server (connections, timeouts, the event loop)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import sqlite3
import statistics
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient

from endpoint_helpers import http_call, static_dir  # noqa: F401 (a fixture)
from server_stub import api
from server_stub.api import ApiError, RateLimiter
from server_stub.app import create_widget_app
from server_stub.broker import StreamLimits
from server_stub.server import RateLimitedLog, uvicorn_config
from server_stub.storage import Store, StoreLocked
from services import fresh_schema

AGENT = "attack-test-agent-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real uvicorn server on loopback, configured as `proactive serve` configures it."""

    def __init__(self, app, **config):
        self.app, self.port = app, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", self.port, lifespan="off", **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            assert time.time() < deadline, "server did not start"
            time.sleep(0.02)

    def call(self, method, path, body=None, headers=None, timeout=10):
        return http_call(self.url + path, method, body, headers, timeout)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def serve():
    servers = []

    def start(app, **config):
        servers.append(Server(app, **config))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


# -- 1. the rate limiter ---------------------------------------------------------------

@pytest.mark.no_storage
def test_rate_limiter_cost_stays_flat_and_memory_bounded_under_200000_keys():
    limiter = RateLimiter({"x": (5, 1.0)}, max_keys=100_000)

    def cost(keys) -> float:
        t = time.perf_counter()
        for k in keys:
            limiter.check("x", k)
        return (time.perf_counter() - t) / len(keys)

    first = cost([f"a{i}" for i in range(5_000)])
    for i in range(5_000, 195_000):
        limiter.check("x", f"a{i}")
    last = cost([f"a{i}" for i in range(195_000, 200_000)])
    assert last < first * 4 + 5e-6, f"per check: {first * 1e6:.1f} µs at first, {last * 1e6:.1f} µs at 200,000 keys"
    assert len(limiter) <= 100_000
    # Forgetting never makes a client's own bucket fuller: the newest keys are kept.
    for _ in range(4):
        limiter.check("x", "a199999")
    with pytest.raises(ApiError):
        limiter.check("x", "a199999")


@pytest.mark.no_storage
def test_rate_limiter_forgets_refilled_buckets_without_a_scan():
    now = [0.0]
    limiter = RateLimiter({"x": (2, 1.0)}, clock=lambda: now[0])
    for i in range(1000):
        limiter.check("x", f"k{i}")
    now[0] = 10.0  # every bucket is full again: the same as none
    for i in range(10):
        limiter.check("x", f"n{i}")
    assert len(limiter) <= 1000 - 10  # each check dropped old full buckets as it went


def test_beacons_are_limited_per_address_not_per_client_chosen_sender(static_dir):
    app = create_widget_app(static_dir, rate_limits={"events_ip": (5, 0.0001)})
    with TestClient(app) as client:
        codes = [client.post("/api/events", json={"sender": f"fresh-{i}", "events": []}).status_code for i in range(8)]
        assert codes == [202] * 5 + [429] * 3  # a new sender is not a new budget
        assert len(app.state.endpoint.limits) == 1  # one key: the address


@pytest.mark.parametrize("limiter", ["memory", "redis"])
def test_every_limit_holds_on_the_shared_limiter_too(static_dir, request, limiter):
    """Each rate-limited operation answers 429 past its budget, whether the
    buckets are in this process or in Redis (`--broker`): a check the shared
    limiter answers asynchronously must be awaited, or it limits nothing."""
    broker = request.getfixturevalue("redis_url") if limiter == "redis" else None
    app = create_widget_app(static_dir, broker_url=broker, rate_limits={
        name: (2, 0.0001) for name in ("register", "message", "rating", "events_ip", "delivery", "self_service")})
    address = f"10.19.{os.getpid() % 250}.{secrets.randbelow(250)}"  # buckets of its own in a shared Redis
    with TestClient(app, base_url="http://127.0.0.1", client=(address, 50000)) as client:
        def twice_then(method, path, **kw):
            return [client.request(method, path, **kw) for _ in range(3)]

        registered = twice_then("POST", "/api/visitors", json={})
        assert [r.status_code for r in registered] == [201, 201, 429]
        bearer = {"authorization": f"Bearer {registered[0].json()['token']}"}
        for method, path, kw, ok in (
                ("POST", "/api/conversation/messages", {"json": {"text": "hi"}, "headers": bearer}, 201),
                ("POST", "/api/conversation/rating", {"json": {"value": "great"}, "headers": bearer}, 200),
                ("POST", "/api/events", {"json": {"sender": "s", "events": []}}, 202),
                ("POST", "/api/deliveries", {"json": {"message": "m"}, "headers": bearer}, 202),
                ("GET", "/api/visitors/me?sender=s", {}, 200)):
            codes = [r.status_code for r in twice_then(method, path, **kw)]
            assert codes[0] == ok and codes[2] == 429, (path, codes)


def test_a_flood_of_keys_leaves_others_latency_unchanged(static_dir, serve):
    app = create_widget_app(static_dir, rate_limits={"events_ip": (10**9, 10**9)})
    server = serve(app)
    beacon = {"sender": "s", "events": [{"id": "1", "type": "shown", "message": "m"}]}

    def p50() -> float:
        times = []
        for _ in range(40):
            t = time.perf_counter()
            assert server.call("POST", "/api/events", beacon)[0] == 202
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    before = p50()
    limiter = app.state.endpoint.limits
    for i in range(200_000):  # what 200,000 clients (or one minting keys) leave behind
        limiter.check("register", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    after = p50()
    assert after < before * 3 + 0.005, f"beacon p50 {before * 1000:.1f} ms before, {after * 1000:.1f} ms after"


# -- 2. what is stored can be served ---------------------------------------------------------

def _agent_client(app):
    return {"authorization": f"Bearer {app.state.agent_token}"}


@pytest.mark.parametrize("attributes", [
    '{"x": NaN}', '{"x": Infinity}', '{"x": "\\udc00"}', '{"\\ud800": 1}',
    '{"x": ' + "[" * 40 + "]" * 40 + "}",
])
def test_delivery_attributes_that_could_not_be_served_are_refused(static_dir, attributes):
    app = create_widget_app(static_dir)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        token = client.post("/api/visitors").json()["token"]
        body = '{"message": "m", "attributes": ' + attributes + "}"
        r = client.post("/api/deliveries", content=body, headers={"authorization": f"Bearer {token}"})
        assert r.status_code in (400, 422), r.text
        listed = client.get("/api/agent/deliveries", headers=_agent_client(app))
        assert listed.status_code == 200 and listed.json()["deliveries"] == []


@pytest.mark.sqlite_only
def test_rows_stored_before_the_check_are_still_served(static_dir, tmp_path):
    db = tmp_path / "e.db"
    store = Store(db)
    store.add_visitor("t", None)
    store.close()
    with sqlite3.connect(db) as raw:  # what an older server let in
        raw.execute("INSERT INTO deliveries (visitor_id, message, attributes, requested_at, updated_at)"
                    " VALUES ((SELECT id FROM visitors), 'm', ?, 1, 1)", ('{"x": NaN, "y": "\\udc00"}',))
    app = create_widget_app(static_dir, db_path=db)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get("/api/agent/deliveries", headers=_agent_client(app))
        assert r.status_code == 200
        assert r.json()["deliveries"][0]["attributes"] == {"x": None, "y": "?"}


# -- 3. the agent API: closed by default, on its own origin ------------------------------------

def test_agent_api_needs_a_token_even_when_none_was_configured(static_dir):
    app = create_widget_app(static_dir)
    token = app.state.agent_token
    assert len(token) >= 32
    with TestClient(app, base_url="http://127.0.0.1:9403") as client:
        for path in ("/api/agent/conversations", "/api/agent/presence", "/api/agent/stats",
                     "/api/agent/deliveries", "/api/agent/stream", "/api/agent/conversations/1"):
            r = client.get(path)
            assert r.status_code == 401 and r.json()["error"]["code"] == "agent_token_required", path
        assert client.get("/api/agent/conversations", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_agent_api_refuses_a_host_it_is_not_configured_for(static_dir):
    """DNS rebinding: the attacker's name resolves to this server; Host and
    Origin then agree with each other, but not with the configured origin."""
    app = create_widget_app(static_dir, agent_token=AGENT, agent_origins=["http://chat.example.com"])
    evil = {"host": "evil.example:9403", "origin": "http://evil.example:9403", "authorization": f"Bearer {AGENT}"}
    with TestClient(app, base_url="http://chat.example.com") as client:
        r = client.post("/api/agent/presence", json={"agent": "A", "online": True}, headers=evil)
        assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"
        assert client.get("/api/agent/conversations", headers=evil).status_code == 403
        ok = {"authorization": f"Bearer {AGENT}", "origin": "http://chat.example.com"}
        assert client.post("/api/agent/presence", json={"agent": "A", "online": True}, headers=ok).status_code == 200
    # Without configured origins only loopback names are the agent's own.
    default = create_widget_app(static_dir, agent_token=AGENT)
    with TestClient(default, base_url="http://127.0.0.1:9403") as client:
        assert client.get("/api/agent/presence", headers={"authorization": f"Bearer {AGENT}"}).status_code == 200
        assert client.get("/api/agent/presence", headers={"authorization": f"Bearer {AGENT}", "host": "evil.example:9403"}
                          ).status_code == 403


def test_no_redirect_echoes_the_host_header(static_dir):
    app = create_widget_app(static_dir)
    with TestClient(app, follow_redirects=False) as client:
        for path in ("/api/agent/conversations/", "/api/presence/", "/api/visitors/", "/health/"):
            r = client.get(path, headers={"host": "evil.example"})
            assert "evil.example" not in r.headers.get("location", ""), (path, r.status_code, r.headers)
            assert r.status_code == 404 or r.status_code == 405, (path, r.status_code)


# -- 5. bounded connections -------------------------------------------------------------------

def _open_stream(port: int, path: str) -> tuple[socket.socket, bytes]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head


def test_streams_are_capped_per_visitor_per_address_and_in_total(static_dir, serve):
    limits = StreamLimits(total=5, per_address=4, per_visitor=2, retry_after=7)
    server = serve(create_widget_app(static_dir, stream_limits=limits, stream_heartbeat=60))
    token = server.call("POST", "/api/visitors", {})[2]["token"]
    held = []
    try:
        for _ in range(2):
            s, head = _open_stream(server.port, f"/api/stream?visitor={token}")
            held.append(s)
            assert head.startswith(b"HTTP/1.1 200"), head
        s, head = _open_stream(server.port, f"/api/stream?visitor={token}")
        held.append(s)
        assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 7" in head.lower(), head
        for expected in (b"200", b"200", b"503"):  # the address's cap is 4
            s, head = _open_stream(server.port, "/api/stream")
            held.append(s)
            assert head.startswith(b"HTTP/1.1 " + expected), head
        # Everything else still answers, the agent's stream too.
        assert server.call("GET", "/health", timeout=2)[0] == 200
        assert server.call("GET", "/api/presence", timeout=2)[0] == 200
        s, head = _open_stream(server.port, f"/api/agent/stream?token={server.app.state.agent_token}")
        held.append(s)
        assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        for s in held:
            s.close()
    deadline = time.time() + 5
    while server.app.state.endpoint.visitor_streams.open:
        assert time.time() < deadline, "closed streams were not released"
        time.sleep(0.05)


@pytest.mark.no_storage
def test_a_connection_that_never_finishes_its_headers_is_closed(static_dir, serve):
    server = serve(create_widget_app(static_dir), header_timeout=0.5)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    trickle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    t = time.time()
    trickle.sendall(b"GET /health HTTP/1.1\r\n")
    for _ in range(3):
        time.sleep(0.2)
        try:
            trickle.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
    assert silent.recv(100) == b"" and time.time() - t < 3  # closed by the server
    assert trickle.recv(100) == b""
    assert server.call("GET", "/health")[0] == 200  # a normal client is unaffected


def test_a_body_that_trickles_in_gets_408(static_dir, serve, monkeypatch):
    monkeypatch.setattr(api, "BODY_TIMEOUT", 0.5)
    server = serve(create_widget_app(static_dir))
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"sen")
    t = time.time()
    answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.time() - t < 3
    s.close()


@pytest.mark.no_storage
def test_past_the_connection_cap_a_new_connection_gets_503_at_once(static_dir, serve):
    server = serve(create_widget_app(static_dir), max_connections=4)
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503") and b"retry-after" in answer.lower(), answer
        extra.close()
    finally:
        for s in idle:
            s.close()
    time.sleep(0.2)
    assert server.call("GET", "/health")[0] == 200


@pytest.mark.no_storage
def test_repeated_log_messages_are_rate_limited():
    now = [0.0]
    flt = RateLimitedLog(interval=10, clock=lambda: now[0])
    records = [logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource", None, None)
               for _ in range(10_000)]
    passed = [r for r in records if flt.filter(r)]
    assert len(passed) == 1
    now[0] = 11.0
    later = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource", None, None)
    assert flt.filter(later) and "9999 more like this" in later.getMessage()
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", None, None)
    assert flt.filter(other)


# -- 6. storage off the event loop --------------------------------------------------------------

@contextlib.contextmanager
def _locked_store(backend, tmp_path, request):
    """(a store whose writes wait 1.5 s for a lock, a function that makes
    another connection take the lock writes need and returns its release)."""
    if backend == "sqlite":
        db = tmp_path / "e.db"
        store = Store(db, busy_timeout=1.5)

        def hold():
            outside = sqlite3.connect(db, isolation_level=None)
            outside.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            return lambda: (outside.execute("ROLLBACK"), outside.close())

        yield store, hold
        store.close()
        return
    import psycopg

    from server_stub.storage_pg import PostgresStore

    url = request.getfixturevalue("postgres_url")
    store = PostgresStore(url, schema=fresh_schema(), pool_size=4, busy_timeout=1.5)

    def hold():
        outside = psycopg.connect(url, options=f"-c search_path={store.schema}")
        outside.execute("LOCK TABLE messages IN EXCLUSIVE MODE")  # readers go on, writers wait
        return lambda: (outside.rollback(), outside.close())

    try:
        yield store, hold
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')


def test_a_locked_database_delays_only_the_requests_that_need_it(static_dir, tmp_path, serve, backend, request):
    with _locked_store(backend, tmp_path, request) as (store, hold):
        server = serve(create_widget_app(static_dir, store=store))
        token = server.call("POST", "/api/visitors", {})[2]["token"]
        release = hold()
        result = {}
        writer = threading.Thread(target=lambda: result.update(answer=server.call(
            "POST", "/api/conversation/messages", {"text": "hi"}, {"authorization": f"Bearer {token}"})))
        try:
            writer.start()
            time.sleep(0.2)
            for path in ("/health", "/api/geo", "/api/openapi.json"):
                t = time.perf_counter()
                assert server.call("GET", path, timeout=5)[0] == 200
                assert time.perf_counter() - t < 0.5, f"{path} waited for the database"
            writer.join(10)
        finally:
            release()
        status, headers, body = result["answer"]
        assert status == 503 and body["error"]["code"] == "storage_busy", body
        assert int(headers["retry-after"]) >= 1
        # Once the lock is gone, writes go through again.
        assert server.call("POST", "/api/conversation/messages", {"text": "hi"}, {"authorization": f"Bearer {token}"})[0] == 201


# -- 8. one process per data folder ---------------------------------------------------------------

@pytest.mark.sqlite_only
def test_a_second_store_on_the_same_file_is_refused(tmp_path):
    first = Store(tmp_path / "e.db")
    with pytest.raises(StoreLocked, match="another process"):
        Store(tmp_path / "e.db")
    first.close()
    Store(tmp_path / "e.db").close()  # free again once the first is closed


@pytest.mark.sqlite_only
def test_a_full_database_is_a_503_not_a_500(static_dir, tmp_path):
    store = Store(tmp_path / "e.db")
    app = create_widget_app(static_dir, store=store)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        token = client.post("/api/visitors").json()["token"]
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        body = {"text": "x" * 1900}
        answers = [client.post("/api/conversation/messages", json=body, headers={"authorization": f"Bearer {token}"})
                   for _ in range(20)]
        full = [r for r in answers if r.status_code != 201]
        assert full and all(r.status_code == 503 and r.json()["error"]["code"] == "storage_full" for r in full), \
            [(r.status_code, r.text[:80]) for r in answers]
        assert int(full[0].headers["retry-after"]) >= 1
        assert client.get("/health").status_code == 200

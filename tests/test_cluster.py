"""Several `proactive serve` processes on one PostgreSQL and one Redis act as
one endpoint: a visitor registered through process A and an agent on
process B see each other's presence, messages, replies and stats; `kill -9`
of a process during a stream of writes loses no acknowledged write while the
other keeps serving; the delivery webhook gets each request once; rate
limits are shared."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from services import fresh_schema
from endpoint_helpers import http_call
from services import free_port
from test_server_stream import Stream

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "cluster-agent-token"


@pytest.fixture
def database(postgres_url):
    """A fresh schema's URL (libpq's `options` sets the search path)."""
    import psycopg

    schema = fresh_schema()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Process:
    def __init__(self, tmp: Path, name: str, db: str, broker: str, *extra: str, wait: bool = True,
                 flags: bool = False):
        """`proactive serve` on DB and BROKER, given as $PROACTIVE_DB and
        $PROACTIVE_BROKER (a deployment's way), or with `flags` as --db and --broker."""
        static = tmp / "widget"
        static.mkdir(exist_ok=True)
        (static / "loader.js").write_text("/* loader */")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.err = (tmp / f"{name}.err").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "proactive.cli", "serve", "--no-demo", "--port", str(self.port),
             "--static", str(static), "--data", str(tmp / f"data-{name}"), "--agent-token", TOKEN, *extra,
             *(["--db", db, "--broker", broker] if flags else [])],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.err, text=True,
            env={**{k: v for k, v in os.environ.items() if k not in ("PROACTIVE_DB", "PROACTIVE_BROKER")},
                 "PYTHONUNBUFFERED": "1", **({} if flags else {"PROACTIVE_DB": db, "PROACTIVE_BROKER": broker})})
        deadline = time.time() + 30
        while wait:
            try:
                if http_call(self.url + "/health", "GET", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert self.proc.poll() is None, self.stderr()
            assert time.time() < deadline, "proactive serve did not start"
            time.sleep(0.1)

    def call(self, method, path, body=None, token=None, timeout=10):
        headers = {"content-type": "application/json"}
        token = TOKEN if path.startswith("/api/agent") else token
        if token:
            headers["authorization"] = f"Bearer {token}"
        return http_call(self.url + path, method, body, headers, timeout)

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def cluster(tmp_path, database, redis_url):
    started: list[Process] = []

    def start(name: str, *extra: str) -> Process:
        # B is told where the database and broker are on its command line, A through the environment.
        started.append(Process(tmp_path, name, database, redis_url, *extra, flags=name == "b"))
        return started[-1]

    yield start
    for p in started:
        p.stop()


def next_event(stream: Stream, wanted: str, deadline: float = 5.0, **match):
    end = time.time() + deadline
    while time.time() < end:
        event, data = stream.next()
        if event == wanted and all(data.get(k) == v for k, v in match.items()):
            return data
    raise AssertionError(f"no {wanted} event")


def test_a_visitor_on_process_a_and_an_agent_on_process_b_act_as_one_endpoint(cluster):
    a, b = cluster("a"), cluster("b")
    status, _, body = a.call("POST", "/api/visitors", {"site": "acme"})
    assert status == 201
    visitor = body["token"]
    stream = Stream(a, f"/api/stream?visitor={visitor}")
    assert next_event(stream, "presence")["team"] == "offline"
    agent_stream = Stream(b, f"/api/agent/stream?token={TOKEN}")
    next_event(agent_stream, "hello")

    # Presence set on B reaches the visitor's stream on A.
    assert b.call("POST", "/api/agent/presence", {"agent": "Ada", "online": True})[0] == 200
    assert next_event(stream, "presence") == {"team": "online", "agents_online": 1}
    assert a.call("GET", "/api/presence")[2]["team"] == "online"

    # The visitor writes through A; the agent on B sees it, live and listed.
    status, _, sent = a.call("POST", "/api/conversation/messages", {"text": "Do you ship to Austria?"}, visitor)
    assert status == 201
    cid = sent["conversation"]
    assert next_event(agent_stream, "conversation")["message"]["text"] == "Do you ship to Austria?"
    assert [c["id"] for c in b.call("GET", "/api/agent/conversations")[2]["conversations"]] == [cid]

    # The reply made on B reaches the visitor's stream on A, in under 50 ms typically.
    t0 = time.perf_counter()
    assert b.call("POST", f"/api/agent/conversations/{cid}/messages", {"text": "We do.", "author": "Ada"})[0] == 201
    assert next_event(stream, "message", sender="agent")["text"] == "We do."
    assert time.perf_counter() - t0 < 2.0

    # A rating through A and beacons through A count in the stats read on B.
    assert a.call("POST", "/api/conversation/rating", {"value": "great"}, visitor)[0] == 200
    beacon = {"sender": "s1", "events": [{"id": "e1", "type": "shown", "message": "pricing"},
                                         {"id": "e2", "type": "replied", "message": "pricing"}]}
    assert a.call("POST", "/api/events", beacon)[2]["new"] == 2
    assert b.call("POST", "/api/events", beacon)[2]["new"] == 0  # a retry through B is not counted twice
    (pricing,) = b.call("GET", "/api/agent/stats")[2]["messages"]
    assert (pricing["shown"], pricing["replied"], pricing["reply_rate"]) == (1, 1, 1.0)
    assert b.call("GET", f"/api/agent/conversations/{cid}")[2]["conversation"]["rating"] == "great"
    stream.close()
    agent_stream.close()


def test_kill_9_during_writes_loses_no_acknowledged_write(cluster):
    a, b = cluster("a"), cluster("b")
    visitors = [a.call("POST", "/api/visitors", {})[2]["token"] for _ in range(4)]
    acknowledged: list[tuple[str, str]] = []
    stop = threading.Event()

    def write(target: Process, tag: str):
        i = 0
        while not stop.is_set():
            token = visitors[i % len(visitors)]
            text = f"{tag}-{i}"
            try:
                status = target.call("POST", "/api/conversation/messages", {"text": text}, token, timeout=3)[0]
            except OSError:
                status = None  # the process died mid-request: not acknowledged
            if status == 201:
                acknowledged.append((token, text))
            i += 1

    writers = [threading.Thread(target=write, args=(a, "a")), threading.Thread(target=write, args=(b, "b"))]
    for w in writers:
        w.start()
    time.sleep(1.5)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    time.sleep(1.0)  # B keeps taking writes
    stop.set()
    for w in writers:
        w.join()
    from_a = [t for _, t in acknowledged if t.startswith("a-")]
    from_b_after = [t for _, t in acknowledged if t.startswith("b-")]
    assert from_a and from_b_after
    stored = set()
    for token in visitors:
        conv = b.call("GET", "/api/conversation", token=token)[2]["conversation"]
        stored |= {(token, m["text"]) for m in (conv or {"messages": []})["messages"]}
    missing = [w for w in acknowledged if w not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost of {len(acknowledged)}"
    assert b.call("GET", "/health")[0] == 200


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).received.append(body["delivery"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_webhook_gets_each_delivery_request_once(cluster):
    _Webhook.received = []
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    try:
        a, b = cluster("a", "--delivery-webhook", url), cluster("b", "--delivery-webhook", url)
        visitors = [a.call("POST", "/api/visitors", {})[2]["token"] for _ in range(10)]

        def ask(process, token):
            process.call("POST", "/api/deliveries", {"message": "welcome", "email": "v@example.com"}, token)

        # Each visitor asks through both processes at once: one request each, handed over once.
        threads = [threading.Thread(target=ask, args=(p, t)) for t in visitors for p in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deliveries = b.call("GET", "/api/agent/deliveries")[2]["deliveries"]
        assert len(deliveries) == 10 and {d["status"] for d in deliveries} == {"handed_over"}
        ids = [d["id"] for d in _Webhook.received]
        assert sorted(ids) == sorted(d["id"] for d in deliveries)  # each once
    finally:
        hook.shutdown()


def test_a_request_left_pending_by_a_dead_process_is_handed_over_once(database, redis_url, static_dir):
    from server_stub.app import create_widget_app
    from server_stub.storage import open_store

    crashed = open_store(database)  # stored the request, then died before calling the hook
    visitor = crashed.add_visitor("tok", None)
    crashed.add_delivery(visitor, None, "welcome", "v@example.com", {})
    crashed.close()
    calls: list[tuple[int, int]] = []
    apps = [create_widget_app(static_dir, db_path=database, broker_url=redis_url, delivery_lease=0.3,
                              on_delivery=lambda request, n=n: calls.append((n, request["id"]))) for n in range(2)]
    with TestClient(apps[0]), TestClient(apps[1]):  # both run their background work
        deadline = time.time() + 10
        while not calls and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # several more rounds of both processes looking
        (stored,) = apps[1].state.endpoint.store.deliveries()
    assert len(calls) == 1 and calls[0][1] == stored["id"] and stored["status"] == "handed_over"


def test_without_a_shared_broker_one_process_serves_a_database(database, redis_url, static_dir):
    """Without --broker live news stays in its process: a second process on
    the same PostgreSQL database would split it silently (a reply made
    through B never reaching A's visitors), so it is refused, as a second
    process on one SQLite file is. With a shared broker any number serve it."""
    from server_stub.app import create_widget_app
    from server_stub.storage import StoreLocked

    alone = create_widget_app(static_dir, db_path=database)
    for broker in (None, redis_url):
        with pytest.raises(StoreLocked, match="--broker"):
            create_widget_app(static_dir, db_path=database, broker_url=broker)
    alone.state.endpoint.close()
    shared = [create_widget_app(static_dir, db_path=database, broker_url=redis_url) for _ in range(2)]
    with pytest.raises(StoreLocked, match="--broker"):
        create_widget_app(static_dir, db_path=database)
    for app in shared:
        app.state.endpoint.close()
    create_widget_app(static_dir, db_path=database).state.endpoint.close()  # free again once they stopped


def test_the_urls_own_options_are_kept_beside_the_lock_timeout(database):
    """The store adds `-c lock_timeout` to libpq's options: the URL's own
    (here a search_path, as an operator may give) still count."""
    from server_stub.storage_pg import PostgresStore

    store = PostgresStore(database, busy_timeout=1.5)
    try:
        (row,) = store._read("SELECT current_schema() AS s, current_setting('lock_timeout') AS t")
    finally:
        store.close()
    assert (row["s"], row["t"]) == (database.rsplit("%3D", 1)[1], "1500ms")


def test_a_read_only_postgresql_database_is_one_line_at_start(database):
    """A database that refuses writes (a standby, a read-only role) is one
    line at start (StoreError: what `serve` prints before exit 1)."""
    from server_stub.storage import StoreError
    from server_stub.storage_pg import PostgresStore

    PostgresStore(database).close()  # the tables exist
    with pytest.raises(StoreError, match="^cannot use the database .*read-only transaction$"):
        PostgresStore(database + "%20-cdefault_transaction_read_only%3Don")


def test_a_second_serve_on_a_database_without_a_broker_is_one_line_and_exit_1(tmp_path, database):
    first = Process(tmp_path, "a", database, "")
    second = Process(tmp_path, "b", database, "", wait=False)
    try:
        assert second.proc.wait(30) == 1
        err = second.stderr().strip()
        assert "another process" in err and "--broker" in err, err
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        assert first.call("GET", "/health")[0] == 200  # the first one is unaffected
    finally:
        second.stop()
        first.stop()


def test_rate_limits_are_shared_between_processes(tmp_path, database, redis_url, static_dir):
    from server_stub.app import create_widget_app

    apps = [create_widget_app(static_dir, db_path=database, broker_url=redis_url,
                              rate_limits={"register": (4, 0.001)}) for _ in range(2)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        codes = [client.post("/api/visitors", json={}).status_code for client in (first, second) * 3]
    assert codes == [201, 201, 201, 201, 429, 429]



def test_the_shared_rate_limiter_takes_hundreds_of_concurrent_checks(redis_url):
    import asyncio

    from server_stub.broker_redis import RedisRateLimiter

    async def run():
        limiter = RedisRateLimiter(redis_url, {"events_ip": (10**9, 10**9)})
        try:  # more at once than the pool has connections: they wait, none fails
            return await asyncio.gather(*(limiter.check("events_ip", f"k{i}") for i in range(300)),
                                        return_exceptions=True)
        finally:
            await limiter.aclose()

    assert [r for r in asyncio.run(run()) if r is not None] == []


def test_a_process_whose_clock_is_behind_does_not_drain_a_shared_limit(redis_url, monkeypatch):
    """The buckets run on Redis's clock: processes' clocks differ, and a
    bucket refilled backwards (a process half a second behind) used to lose
    rate × 0.5 s of tokens per check."""
    import asyncio
    import itertools

    from server_stub.broker_redis import RedisRateLimiter

    real, skew = time.time, itertools.cycle((0.0, -0.5))  # two processes, alternately
    monkeypatch.setattr(time, "time", lambda: real() + next(skew))

    async def run():
        limiter = RedisRateLimiter(redis_url, {"register": (100, 1000.0)})
        try:
            return [await limiter.check("register", "10.0.0.1") for _ in range(40)]
        finally:
            await limiter.aclose()

    assert asyncio.run(run()) == [None] * 40  # 40 calls within a burst of 100: never limited


from endpoint_helpers import static_dir  # noqa: E402,F401 (a fixture)


def test_a_reply_made_while_the_visitors_process_died_arrives_on_another_with_last_event_id(cluster):
    """The visitor's stream is on A; A is killed (-9); the agent answers on
    B meanwhile; the visitor reconnects to B with the last id it had: the
    replies come, once, in order, then live ones."""
    a, b = cluster("a"), cluster("b")
    visitor = a.call("POST", "/api/visitors", {})[2]["token"]
    cid = a.call("POST", "/api/conversation/messages", {"text": "Hello?"}, visitor)[2]["conversation"]
    stream = Stream(a, f"/api/stream?visitor={visitor}")
    next_event(stream, "hello")
    assert b.call("POST", f"/api/agent/conversations/{cid}/messages", {"text": "one"})[0] == 201
    assert next_event(stream, "message", sender="agent")["text"] == "one"
    last = stream.ids[-1]
    a.proc.kill()
    a.proc.wait()
    stream.conn.close()
    for text in ("two", "three"):
        assert b.call("POST", f"/api/agent/conversations/{cid}/messages", {"text": text})[0] == 201
    resumed = Stream(b, f"/api/stream?visitor={visitor}", {"last-event-id": last})
    next_event(resumed, "hello")
    assert [resumed.next()[1]["text"] for _ in range(2)] == ["two", "three"]
    assert b.call("POST", f"/api/agent/conversations/{cid}/messages", {"text": "four"})[0] == 201
    assert resumed.next()[1]["text"] == "four"
    assert [int(i) for i in resumed.ids] == sorted({int(i) for i in resumed.ids}) and len(resumed.ids) == 3
    resumed.close()

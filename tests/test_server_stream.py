"""Live news over server-sent events, on a real uvicorn server: presence
changes reach every visitor, an agent's reply reaches only its visitor, idle
streams get heartbeats, a closed stream unsubscribes; `proactive serve` starts,
answers and stops even with a stream open. Also: the OpenAPI document lists
exactly the app's routes, and docs/openapi.json is up to date."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import uvicorn

from server_stub.app import create_widget_app

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, backend):
    static = tmp_path / "w"
    static.mkdir()
    (static / "loader.js").write_text("")
    app = create_widget_app(static, db_path=tmp_path / "e.db" if backend == "sqlite" else None, stream_heartbeat=0.3)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not srv.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.02)
    yield type("S", (), {"url": f"http://127.0.0.1:{port}", "port": port, "app": app})
    srv.should_exit = True
    thread.join(3)


def call(server, method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if path.startswith("/api/agent"):
        token = token or server.app.state.agent_token
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(server.url + path, method=method, headers=headers,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Stream:
    """A raw SSE client: yields (event, data) and heartbeat comments."""

    def __init__(self, server, path, headers: dict | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self.conn.request("GET", path, headers={"accept": "text/event-stream", **(headers or {})})
        self.ids: list[str] = []   # the `id:` of each event read, in order
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()
        assert self.response.getheader("content-type").startswith("text/event-stream")

    def next(self, skip_comments=True):
        event, data = None, None
        while True:
            line = self.response.fp.readline().decode().rstrip("\n")
            if line.startswith(":"):
                if not skip_comments:
                    return ("comment", line)
                continue
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line.startswith("id: "):
                self.ids.append(line[4:])
            elif line.startswith("retry: "):
                continue
            elif line == "" and event:
                return event, data

    def close(self):
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def test_presence_changes_reach_every_visitor_stream(server):
    a, b = Stream(server, "/api/stream"), Stream(server, "/api/stream")
    for s in (a, b):
        assert s.next() == ("presence", {"team": "offline", "agents_online": 0})
        assert s.next()[0] == "hello"
    call(server, "POST", "/api/agent/presence", {"agent": "Ana", "online": True})
    assert a.next() == ("presence", {"team": "online", "agents_online": 1})
    assert b.next() == ("presence", {"team": "online", "agents_online": 1})
    a.close()
    b.close()


def test_agent_reply_reaches_only_its_visitor(server):
    alice = call(server, "POST", "/api/visitors", {})["token"]
    bob = call(server, "POST", "/api/visitors", {})["token"]
    cid = call(server, "POST", "/api/conversation/messages", {"text": "hi, I'm Alice"}, alice)["conversation"]
    call(server, "POST", "/api/conversation/messages", {"text": "hi, I'm Bob"}, bob)
    sa, sb = Stream(server, f"/api/stream?visitor={alice}"), Stream(server, f"/api/stream?visitor={bob}")
    for s in (sa, sb):
        s.next(), s.next()  # presence, hello
    call(server, "POST", f"/api/agent/conversations/{cid}/messages", {"text": "Hello Alice", "author": "Ana"})
    event, data = sa.next()
    assert event == "message" and data["text"] == "Hello Alice" and data["sender"] == "agent"
    # Bob's stream carries only heartbeats meanwhile.
    assert sb.next(skip_comments=False) == ("comment", ": keep-alive")
    sa.close()
    sb.close()


def test_replies_sent_while_the_visitor_was_away_arrive_on_reconnect_once_and_in_order(server):
    """Resuming with Last-Event-ID (EventSource's own reconnect) or
    ?last_event_id= (the widget's new stream): the messages after it are
    replayed, then live ones follow, each once."""
    token = call(server, "POST", "/api/visitors", {})["token"]
    cid = call(server, "POST", "/api/conversation/messages", {"text": "hello?"}, token)["conversation"]

    def reply(text):
        return call(server, "POST", f"/api/agent/conversations/{cid}/messages", {"text": text})["message"]["id"]

    first = Stream(server, f"/api/stream?visitor={token}")
    first.next(), first.next()   # presence, hello
    one = reply("one")
    assert first.next() == ("message", _message(server, token, one))
    assert first.ids == [str(one)]
    first.close()
    two, three = reply("two"), reply("three")   # the visitor is away
    for headers, query in (({"last-event-id": str(one)}, ""), ({}, f"&last_event_id={one}")):
        again = Stream(server, f"/api/stream?visitor={token}{query}", headers)
        assert [again.next()[0], again.next()[0]] == ["presence", "hello"]
        assert [again.next()[1]["text"], again.next()[1]["text"]] == ["two", "three"]
        assert again.ids == [str(two), str(three)]
        assert again.next(skip_comments=False) == ("comment", ": keep-alive")   # nothing twice
        again.close()
    # A live reply on a resumed stream comes once, after the replayed ones.
    resumed = Stream(server, f"/api/stream?visitor={token}", {"last-event-id": str(two)})
    resumed.next(), resumed.next()
    assert resumed.next()[1]["text"] == "three"
    four = reply("four")
    assert resumed.next()[1]["text"] == "four" and resumed.ids == [str(three), str(four)]
    assert resumed.next(skip_comments=False) == ("comment", ": keep-alive")
    resumed.close()
    # Without an id (or with a malformed one) nothing is replayed.
    for headers in ({}, {"last-event-id": "soon"}):
        fresh = Stream(server, f"/api/stream?visitor={token}", headers)
        fresh.next(), fresh.next()
        assert fresh.next(skip_comments=False) == ("comment", ": keep-alive")
        fresh.close()


def _message(server, token, message_id) -> dict:
    conv = call(server, "GET", "/api/conversation", token=token)["conversation"]
    return next(m for m in conv["messages"] if m["id"] == message_id)


def test_closed_streams_unsubscribe(server):
    broker = server.app.state.endpoint.broker
    before = broker.subscribers
    streams = [Stream(server, "/api/stream") for _ in range(3)]
    for s in streams:
        s.next()
    assert broker.subscribers == before + 3
    for s in streams:
        s.close()
    deadline = time.time() + 5
    while broker.subscribers != before:
        assert time.time() < deadline, f"{broker.subscribers - before} streams still subscribed"
        time.sleep(0.05)


def test_agent_stream_sees_new_visitor_messages(server):
    agent = Stream(server, f"/api/agent/stream?token={server.app.state.agent_token}")
    assert agent.next()[0] == "presence"
    assert agent.next()[0] == "hello"
    token = call(server, "POST", "/api/visitors", {})["token"]
    call(server, "POST", "/api/conversation/messages", {"text": "new here"}, token)
    event, data = agent.next()
    assert event == "conversation" and data["message"]["text"] == "new here"
    agent.close()


@pytest.mark.sqlite_only
def test_proactive_serve_starts_answers_and_stops_with_a_stream_open(tmp_path):
    static = tmp_path / "w"
    static.mkdir()
    (static / "loader.js").write_text("/* loader */")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "proactive.cli", "serve", "--no-demo", "--port", str(port), "--static", str(static),
         "--data", str(tmp_path / "data"), "--allow-origin", "http://shop.example", "--test-geo"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert json.loads(r.read()) == {"ok": True}
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.time() < deadline, "proactive serve did not start"
                time.sleep(0.1)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/geo", headers={
            "x-proactive-test-geo": "NL; Utrecht", "origin": "http://shop.example"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.loads(r.read())["country"] == "NL"
            assert r.headers["access-control-allow-origin"] == "http://shop.example"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/agent", timeout=5) as r:
            assert b"Proactive" in r.read()
        stream = Stream(type("S", (), {"port": port}), "/api/stream")
        stream.next()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)  # open streams get a short grace period, then the server exits
        stream.conn.close()
        assert (tmp_path / "data" / "endpoint.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read()
    assert "Agent page:" in out and "http://shop.example" in out


# -- the OpenAPI document ----------------------------------------------------------------

def _app_routes(app) -> set[tuple[str, str]]:
    from starlette.routing import Mount, Route

    out = set()

    def walk(routes, prefix):
        for r in routes:
            if isinstance(r, Mount) and r.path.startswith("/api"):
                walk(r.routes, prefix + r.path)
            elif isinstance(r, Route) and prefix.startswith("/api"):
                path = (prefix + r.path).replace(":int}", "}")
                for m in r.methods - {"HEAD"}:
                    out.add((m.lower(), path))

    walk(app.routes, "")
    return out


@pytest.mark.no_storage
def test_openapi_lists_exactly_the_apps_routes(tmp_path):
    from server_stub.openapi import document

    static = tmp_path / "w"
    static.mkdir()
    (static / "loader.js").write_text("")
    documented = {(m, p) for p, ops in document()["paths"].items() for m in ops}
    assert documented == _app_routes(create_widget_app(static))


@pytest.mark.no_storage
def test_docs_openapi_json_is_up_to_date():
    from server_stub.openapi import document

    on_disk = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert on_disk == json.loads(json.dumps(document())), \
        "docs/openapi.json is stale: python -m server_stub.openapi > docs/openapi.json"

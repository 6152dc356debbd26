"""The reference endpoint's HTTP API, through Starlette's TestClient: every
endpoint, every class of bad input (always a 4xx JSON error, never a 500),
visitors' isolation, rate limits, CORS, delivery requests, stats, restarts."""

from __future__ import annotations

import json
import sqlite3

import pytest
from starlette.testclient import TestClient

from endpoint_helpers import static_dir  # noqa: F401 (a fixture)
from server_stub.app import create_widget_app

SITE = "http://site.example"
AGENT_TOKEN = "agent-test-token"


class Client(TestClient):
    """TestClient that sends the agent token to the agent API (unless the
    request sets its own Authorization), as the agent page does."""

    def request(self, method, url, **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        if str(url).startswith("/api/agent") and "authorization" not in {k.lower() for k in headers}:
            headers["authorization"] = f"Bearer {AGENT_TOKEN}"
        return super().request(method, url, headers=headers, **kwargs)


def make_app(static_dir, **kwargs):
    kwargs.setdefault("allowed_origins", [SITE])
    kwargs.setdefault("agent_token", AGENT_TOKEN)
    kwargs.setdefault("agent_origins", ["http://testserver"])
    return create_widget_app(static_dir, **kwargs)


@pytest.fixture
def app(static_dir):
    return make_app(static_dir)


@pytest.fixture
def client(app):
    with Client(app, raise_server_exceptions=False) as c:
        yield c


def register(client) -> str:
    r = client.post("/api/visitors", json={"site": "acme"}, headers={"origin": SITE})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def auth(token: str) -> dict:
    return {"authorization": f"Bearer {token}", "origin": SITE}


def say(client, token, text="Hello?", **extra):
    return client.post("/api/conversation/messages", json={"text": text, **extra}, headers=auth(token))


# -- happy paths -------------------------------------------------------------------

def test_visitor_token_is_unguessable_and_unique(client):
    tokens = {register(client) for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(t) >= 43 for t in tokens)  # 32 random bytes, URL-safe base64


def test_conversation_round_trip(client):
    token = register(client)
    r = client.get("/api/conversation", headers=auth(token))
    assert r.status_code == 200 and r.json()["conversation"] is None
    r = say(client, token, "Do you ship to Austria?", auto_message="pricing-help", page_url="https://acme.test/pricing")
    assert r.status_code == 201
    cid = r.json()["conversation"]
    assert r.json()["message"]["sender"] == "visitor"

    # The agent sees it, replies; the visitor reads the reply.
    convs = client.get("/api/agent/conversations").json()["conversations"]
    assert [c["id"] for c in convs] == [cid]
    assert convs[0]["awaiting_reply"] is True and convs[0]["auto_message"] == "pricing-help"
    r = client.post(f"/api/agent/conversations/{cid}/messages", json={"text": "Yes, we do!", "author": "Ana"})
    assert r.status_code == 201
    conv = client.get("/api/conversation", headers=auth(token)).json()["conversation"]
    assert [(m["sender"], m["text"]) for m in conv["messages"]] == [
        ("visitor", "Do you ship to Austria?"), ("agent", "Yes, we do!")]
    assert conv["messages"][1]["author"] == "Ana"
    assert client.get("/api/agent/conversations").json()["conversations"][0]["awaiting_reply"] is False

    r = client.post("/api/conversation/rating", json={"value": "great"}, headers=auth(token))
    assert r.status_code == 200 and r.json()["rating"] == "great"
    assert client.get("/api/conversation", headers=auth(token)).json()["conversation"]["rating"] == "great"
    assert client.get(f"/api/agent/conversations/{cid}").json()["conversation"]["rating"] == "great"


def test_a_visitor_reads_only_their_own_conversation(client):
    alice, bob = register(client), register(client)
    say(client, alice, "alice's secret")
    cid_bob = say(client, bob, "bob's question").json()["conversation"]
    client.post(f"/api/agent/conversations/{cid_bob}/messages", json={"text": "for bob"})
    alice_view = client.get("/api/conversation", headers=auth(alice)).json()["conversation"]
    bob_view = client.get("/api/conversation", headers=auth(bob)).json()["conversation"]
    assert [m["text"] for m in alice_view["messages"]] == ["alice's secret"]
    assert [m["text"] for m in bob_view["messages"]] == ["bob's question", "for bob"]
    # No visitor endpoint takes a conversation id: there is nothing to enumerate.
    assert client.get(f"/api/conversation/{cid_bob}", headers=auth(alice)).status_code == 404


def test_geo_presence_and_openapi(client):
    r = client.get("/api/geo", headers={"cf-ipcountry": "at", "cf-ipcity": "Wien"})
    assert r.json() == {"country": "AT", "city": "Wien", "source": "cloudflare"}
    assert r.headers["cache-control"].startswith("private")
    assert client.get("/api/presence").json() == {"team": "offline", "agents_online": 0}
    client.post("/api/agent/presence", json={"agent": "Ana", "online": True})
    assert client.get("/api/presence").json() == {"team": "online", "agents_online": 1}
    client.post("/api/agent/presence", json={"agent": "Ana", "online": False})
    assert client.get("/api/presence").json()["team"] == "offline"
    assert client.get("/api/openapi.json").json()["openapi"].startswith("3.")


def test_an_agent_whose_heartbeat_stops_goes_offline_by_itself(static_dir):
    import time

    with Client(make_app(static_dir, presence_ttl=0.4), raise_server_exceptions=False) as client:
        online = {"agent": "Ana", "online": True}
        assert client.post("/api/agent/presence", json=online).json()["agents_online"] == 1
        for _ in range(8):  # heartbeats every 0.1 s keep her online
            time.sleep(0.1)
            client.post("/api/agent/presence", json=online)
        assert client.get("/api/presence").json()["team"] == "online"
        changed = client.get("/api/agent/presence").json()["agents"][0]["changed_at"]
        deadline = time.time() + 5
        while client.get("/api/presence").json()["team"] == "online":  # no heartbeat: offline within the TTL
            assert time.time() < deadline, "the agent stayed online without heartbeats"
            time.sleep(0.05)
        (ana,) = client.get("/api/agent/presence").json()["agents"]
        assert ana["online"] is False and ana["changed_at"] > changed


def test_presence_is_cacheable_with_an_etag(client):
    first = client.get("/api/presence")
    assert first.headers["cache-control"] == "public, max-age=5" and first.headers["etag"].startswith('"')
    again = client.get("/api/presence", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
    client.post("/api/agent/presence", json={"agent": "Ana", "online": True})
    changed = client.get("/api/presence", headers={"if-none-match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.json()["team"] == "online"
    assert changed.headers["etag"] != first.headers["etag"]


def test_beacons_are_counted_once_even_when_retried(client):
    batch = {"sender": "b1", "site": "acme", "events": [
        {"id": "e1", "type": "shown", "message": "welcome", "t": 1},
        {"id": "e2", "type": "clicked", "message": "welcome", "button": "Chat", "t": 2},
        {"id": "e3", "type": "shown", "message": "pricing", "t": 3},
        {"id": "e4", "type": "dismissed", "message": "pricing", "t": 4},
    ]}
    # sendBeacon sends text/plain; the endpoint reads JSON regardless.
    r = client.post("/api/events", content=json.dumps(batch), headers={"content-type": "text/plain;charset=UTF-8", "origin": SITE})
    assert r.status_code == 202 and r.json() == {"accepted": 4, "new": 4}
    r = client.post("/api/events", json=batch, headers={"origin": SITE})  # the retry on the next page
    assert r.json() == {"accepted": 4, "new": 0}
    client.post("/api/events", json={"sender": "b1", "events": [{"id": "e5", "type": "replied", "message": "welcome"}]})
    stats = client.get("/api/agent/stats?bucket=minute").json()
    by_id = {m["message"]: m for m in stats["messages"]}
    assert {k: by_id["welcome"][k] for k in ("shown", "clicked", "dismissed", "replied")} == \
        {"shown": 1, "clicked": 1, "dismissed": 0, "replied": 1}
    assert by_id["welcome"]["buttons"] == {"Chat": 1}
    assert {k: by_id["pricing"][k] for k in ("shown", "dismissed")} == {"shown": 1, "dismissed": 1}
    assert sum(p["shown"] for p in by_id["welcome"]["series"]) == 1
    assert stats["bucket_ms"] == 60_000


def test_delivery_requests_are_stored_once_and_listed(client):
    token = register(client)
    body = {"message": "welcome-mail", "attributes": {"email": "ada@example.com", "name": "Ada"}}
    r = client.post("/api/deliveries", json=body, headers=auth(token))
    assert r.status_code == 202 and r.json()["created"] is True
    r = client.post("/api/deliveries", json=body, headers=auth(token))
    assert r.status_code == 200 and r.json()["created"] is False
    listed = client.get("/api/agent/deliveries?status=pending").json()["deliveries"]
    assert len(listed) == 1 and listed[0]["recipient"] == "ada@example.com"
    assert listed[0]["attributes"]["name"] == "Ada"
    did = listed[0]["id"]
    r = client.post(f"/api/agent/deliveries/{did}", json={"status": "sent", "detail": "queued as <abc@mail>"})
    assert r.json()["delivery"]["status"] == "sent"
    assert client.get("/api/agent/deliveries?status=pending").json()["deliveries"] == []


def test_delivery_hook_hands_requests_over_and_records_failures(static_dir):
    seen = []

    def hook(request):
        seen.append(request)
        if request["message"] == "broken":
            raise RuntimeError("SMTP down")

    with Client(make_app(static_dir, on_delivery=hook)) as client:
        token = register(client)
        ok = client.post("/api/deliveries", json={"message": "welcome-mail", "email": "a@b.example"}, headers=auth(token))
        assert ok.json()["delivery"]["status"] == "handed_over"
        bad = client.post("/api/deliveries", json={"message": "broken"}, headers=auth(token))
        assert bad.status_code == 202 and bad.json()["delivery"]["status"] == "failed"
        assert [r["message"] for r in seen] == ["welcome-mail", "broken"]
        failed = client.get("/api/agent/deliveries?status=failed").json()["deliveries"]
        assert failed[0]["status_detail"] == "SMTP down"


# -- bad input: always a 4xx JSON error --------------------------------------------------

def _bad_requests():
    big = "x" * (17 * 1024)
    return [
        # (name, method, path, kwargs, needs_token, status, code)
        ("malformed JSON", "POST", "/api/conversation/messages", {"content": b"{not json"}, True, 400, "malformed_json"),
        ("JSON array, not object", "POST", "/api/conversation/messages", {"json": ["hi"]}, True, 400, "malformed_json"),
        ("empty body", "POST", "/api/conversation/messages", {"content": b""}, True, 400, "malformed_json"),
        ("invalid UTF-8", "POST", "/api/conversation/messages", {"content": b'{"text": "\xff"}'}, True, 400, "malformed_json"),
        ("oversized body", "POST", "/api/conversation/messages", {"json": {"text": big}}, True, 413, "too_large"),
        ("oversized, chunked", "POST", "/api/conversation/messages",
         {"content": [b'{"text": "', b"x" * 20000, b'"}']}, True, 413, "too_large"),  # a list: sent chunked
        ("bad content-length", "POST", "/api/conversation/messages",
         {"content": b"{}", "headers": {"content-length": "abc"}}, True, 400, "bad_request"),
        ("missing field", "POST", "/api/conversation/messages", {"json": {}}, True, 422, "missing_field"),
        ("null field", "POST", "/api/conversation/messages", {"json": {"text": None}}, True, 422, "missing_field"),
        ("wrong type", "POST", "/api/conversation/messages", {"json": {"text": 5}}, True, 422, "invalid_field"),
        ("boolean for text", "POST", "/api/conversation/messages", {"json": {"text": True}}, True, 422, "invalid_field"),
        ("blank text", "POST", "/api/conversation/messages", {"json": {"text": "   "}}, True, 422, "invalid_field"),
        ("text too long", "POST", "/api/conversation/messages", {"json": {"text": "y" * 2001}}, True, 422, "invalid_field"),
        ("bad rating value", "POST", "/api/conversation/rating", {"json": {"value": "awesome"}}, True, 422, "invalid_field"),
        ("rating before any message", "POST", "/api/conversation/rating", {"json": {"value": "poor"}}, True, 409, "no_conversation"),
        ("no token", "GET", "/api/conversation", {}, False, 401, "missing_token"),
        ("unknown token", "GET", "/api/conversation", {"headers": {"authorization": "Bearer nope"}}, False, 401, "unknown_visitor"),
        ("huge token", "GET", "/api/conversation", {"headers": {"authorization": "Bearer " + "a" * 5000}}, False, 401, "unknown_visitor"),
        ("basic auth, not bearer", "GET", "/api/conversation", {"headers": {"authorization": "Basic abc"}}, False, 401, "missing_token"),
        ("unknown stream visitor", "GET", "/api/stream?visitor=nope", {}, False, 401, "unknown_visitor"),
        ("unknown endpoint", "GET", "/api/nothing-here", {}, False, 404, "not_found"),
        ("wrong method", "PUT", "/api/conversation/messages", {"json": {"text": "x"}}, True, 405, "method_not_allowed"),
        ("wrong method on geo", "POST", "/api/geo", {}, False, 405, "method_not_allowed"),
        ("delete visitors", "DELETE", "/api/visitors", {}, False, 405, "method_not_allowed"),
        ("beacon without events", "POST", "/api/events", {"json": {"sender": "s"}}, False, 422, "missing_field"),
        ("beacon event not object", "POST", "/api/events", {"json": {"sender": "s", "events": [1]}}, False, 422, "invalid_field"),
        ("beacon unknown kind", "POST", "/api/events",
         {"json": {"sender": "s", "events": [{"id": "1", "type": "viewed", "message": "m"}]}}, False, 422, "invalid_field"),
        ("beacon too many events", "POST", "/api/events",
         {"json": {"sender": "s", "events": [{"id": str(i), "type": "shown", "message": "m"} for i in range(201)]}},
         False, 422, "too_many_events"),
        ("beacon bad button", "POST", "/api/events",
         {"json": {"sender": "s", "events": [{"id": "1", "type": "clicked", "message": "m", "button": {}}]}}, False, 422, "invalid_field"),
        ("delivery bad email", "POST", "/api/deliveries", {"json": {"message": "m", "email": "not an address"}}, True, 422, "invalid_field"),
        ("delivery attributes not object", "POST", "/api/deliveries", {"json": {"message": "m", "attributes": [1]}}, True, 422, "invalid_field"),
        ("register with bad site", "POST", "/api/visitors", {"json": {"site": ["x"]}}, False, 422, "invalid_field"),
        ("agent: unknown conversation", "GET", "/api/agent/conversations/999", {}, False, 404, "unknown_conversation"),
        ("agent: non-numeric id", "GET", "/api/agent/conversations/abc", {}, False, 404, "not_found"),
        ("agent: reply to unknown", "POST", "/api/agent/conversations/999/messages", {"json": {"text": "hi"}}, False, 404, "unknown_conversation"),
        ("agent: reply without text", "POST", "/api/agent/conversations/1/messages", {"json": {}}, False, 422, "missing_field"),
        ("agent: presence not bool", "POST", "/api/agent/presence", {"json": {"agent": "A", "online": "yes"}}, False, 422, "invalid_field"),
        ("agent: bad bucket", "GET", "/api/agent/stats?bucket=week", {}, False, 422, "invalid_field"),
        ("agent: bad since", "GET", "/api/agent/stats?since=yesterday", {}, False, 422, "invalid_field"),
        ("agent: bad delivery status", "POST", "/api/agent/deliveries/1", {"json": {"status": "lost"}}, False, 422, "invalid_field"),
        ("agent: unknown delivery", "POST", "/api/agent/deliveries/42", {"json": {"status": "sent"}}, False, 404, "unknown_delivery"),
        ("agent: filter by unknown status", "GET", "/api/agent/deliveries?status=lost", {}, False, 422, "invalid_field"),
        ("agent: cross-site write", "POST", "/api/agent/presence",
         {"json": {"agent": "A", "online": True}, "headers": {"origin": "http://evil.example"}}, False, 403, "origin_not_allowed"),
        # Inputs that once reached a 500 (a lone surrogate cannot be stored as
        # UTF-8; SQLite integers are 64-bit; "²" is a digit to str.isdigit).
        ("lone surrogate in text", "POST", "/api/conversation/messages",
         {"content": b'{"text": "\\udc00"}'}, True, 422, "invalid_field"),
        ("lone surrogate in site", "POST", "/api/visitors", {"content": b'{"site": "\\ud800x"}'}, False, 422, "invalid_field"),
        ("JSON nested 5,000 deep", "POST", "/api/events",
         {"content": b'{"sender": "s", "events": ' + b"[" * 5000 + b"]" * 5000 + b"}"}, False, 400, "malformed_json"),
        ("a 5,000-digit integer", "POST", "/api/events",
         {"content": b'{"sender": "s", "events": [], "x": ' + b"9" * 5000 + b"}"}, False, 400, "malformed_json"),
        ("NaN is not JSON", "POST", "/api/events", {"content": b'{"sender": "s", "events": [], "x": NaN}'},
         False, 400, "malformed_json"),
        ("event time beyond 64 bits", "POST", "/api/events",
         {"json": {"sender": "s", "events": [{"id": "1", "type": "shown", "message": "m", "t": 2**64}]}}, False, 422, "invalid_field"),
        ("agent: id beyond 64 bits", "GET", "/api/agent/conversations/18446744073709551616", {}, False, 404, "not_found"),
        ("agent: reply to an id beyond 64 bits", "POST", "/api/agent/conversations/18446744073709551616/messages",
         {"json": {"text": "hi"}}, False, 404, "not_found"),
        ("agent: delivery id beyond 64 bits", "POST", "/api/agent/deliveries/99999999999999999999999",
         {"json": {"status": "sent"}}, False, 404, "not_found"),
        ("agent: since beyond 64 bits", "GET", "/api/agent/stats?since=18446744073709551616", {}, False, 422, "invalid_field"),
        ("agent: since is a superscript two", "GET", "/api/agent/stats?since=%C2%B2", {}, False, 422, "invalid_field"),
        ("agent: id with a newline", "GET", "/api/agent/conversations/%0A", {}, False, 404, "not_found"),
        ("visitor write from a site not allowed", "POST", "/api/events",
         {"json": {"sender": "s", "events": []}, "headers": {"origin": "http://evil.example"}}, False, 403, "origin_not_allowed"),
    ]


@pytest.mark.parametrize("name,method,path,kwargs,needs_token,status,code", _bad_requests(), ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input_is_a_4xx_json_error(client, name, method, path, kwargs, needs_token, status, code):
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("content"), list):  # a fresh iterator per run (the test runs once per backend)
        kwargs["content"] = iter(kwargs["content"])
    headers = dict(kwargs.pop("headers", {}))
    if needs_token:
        headers = {**auth(register(client)), **headers}
    r = client.request(method, path, headers=headers, **kwargs)
    assert r.status_code == status, (name, r.status_code, r.text)
    body = r.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert r.headers["content-type"].startswith("application/json")


def test_contract_details_the_server_once_disagreed_on(client):
    token = register(client)
    # null is the same as absent for optional strings; "" is a valid optional string.
    assert say(client, token, "hi", site=None, auto_message="", page_url=None).status_code == 201
    # A negative `since` is an integer, as the schema says.
    assert client.get("/api/agent/stats?since=-5").status_code == 200
    # One route, both methods: a 405 on /api/agent/presence lists them all.
    r = client.put("/api/agent/presence")
    assert r.status_code == 405 and {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}


def test_rate_limits_per_visitor(static_dir):
    app = make_app(static_dir, rate_limits={"message": (3, 0.0001)})
    with Client(app) as client:
        slow, other = register(client), register(client)
        assert [say(client, slow, f"m{i}").status_code for i in range(3)] == [201, 201, 201]
        r = say(client, slow, "one too many")
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        assert say(client, other, "I'm fine").status_code == 201  # per visitor, not global


@pytest.mark.no_storage
def test_rate_limit_refills_over_time():
    from server_stub.api import ApiError, RateLimiter

    now = [0.0]
    limiter = RateLimiter({"x": (2, 1.0)}, clock=lambda: now[0])
    limiter.check("x", "k")
    limiter.check("x", "k")
    with pytest.raises(ApiError) as err:
        limiter.check("x", "k")
    assert err.value.status == 429
    now[0] = 1.0
    limiter.check("x", "k")  # one token back after a second


def test_agent_token_guards_the_agent_api(static_dir):
    with Client(make_app(static_dir, agent_token="s3cret")) as client:
        r = client.get("/api/agent/conversations")
        assert r.status_code == 401 and r.json()["error"]["code"] == "agent_token_required"
        assert client.get("/api/agent/conversations", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/agent/conversations", headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/agent/stream").status_code == 401
        # The visitor API stays open to visitors.
        assert client.get("/api/presence").status_code == 200


# -- CORS ------------------------------------------------------------------------------

def test_cors_allow_list(client):
    pre = client.options("/api/conversation/messages", headers={
        "origin": SITE, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == SITE
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    denied = client.options("/api/conversation/messages", headers={
        "origin": "http://evil.example", "access-control-request-method": "POST"})
    assert denied.status_code == 400 and "access-control-allow-origin" not in denied.headers
    assert client.get("/api/presence", headers={"origin": SITE}).headers["access-control-allow-origin"] == SITE
    assert "access-control-allow-origin" not in client.get("/api/presence", headers={"origin": "http://evil.example"}).headers
    # The widget's files follow the same list.
    assert client.get("/loader.js", headers={"origin": SITE}).headers["access-control-allow-origin"] == SITE
    assert "access-control-allow-origin" not in client.get("/loader.js", headers={"origin": "http://evil.example"}).headers
    # The agent API is same-origin only: no CORS at all.
    assert "access-control-allow-origin" not in client.get("/api/agent/conversations", headers={"origin": SITE}).headers


def test_any_origin_by_default(static_dir):
    with Client(create_widget_app(static_dir)) as client:
        assert client.get("/api/presence", headers={"origin": "http://x.example"}).headers["access-control-allow-origin"] == "*"
        assert client.get("/loader.js").headers["access-control-allow-origin"] == "*"


# -- storage -----------------------------------------------------------------------------

@pytest.mark.sqlite_only
def test_data_survives_a_restart(static_dir, tmp_path):
    db = tmp_path / "data" / "endpoint.db"
    with Client(make_app(static_dir, db_path=db)) as client:
        token = register(client)
        cid = say(client, token, "before the restart").json()["conversation"]
        client.post(f"/api/agent/conversations/{cid}/messages", json={"text": "agent answer"})
        client.post("/api/conversation/rating", json={"value": "average"}, headers=auth(token))
        client.post("/api/agent/presence", json={"agent": "Ana", "online": True})
        client.post("/api/events", json={"sender": "s", "events": [{"id": "1", "type": "shown", "message": "welcome"}]})
        client.post("/api/deliveries", json={"message": "mail", "email": "a@b.example"}, headers=auth(token))
    # The app is gone (its lifespan closed the database); a new one opens the file.
    with Client(make_app(static_dir, db_path=db)) as client:
        conv = client.get("/api/conversation", headers=auth(token)).json()["conversation"]
        assert [m["text"] for m in conv["messages"]] == ["before the restart", "agent answer"]
        assert conv["rating"] == "average"
        assert client.get("/api/presence").json()["team"] == "online"
        assert client.get("/api/agent/stats").json()["messages"][0]["shown"] == 1
        assert len(client.get("/api/agent/deliveries").json()["deliveries"]) == 1
        assert client.app.state.endpoint.store.journal_mode == "wal"
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # Tokens are not stored, only their hashes.
        stored = [r[0] for r in raw.execute("SELECT id FROM visitors")]
        assert token not in stored and len(stored[0]) == 64


# -- static files ------------------------------------------------------------------------------

@pytest.mark.no_storage
def test_static_files_precompressed_variants_and_caching(static_dir):
    import brotli
    import gzip

    js = b"export const x = 1;\n" * 50
    (static_dir / "shell-0123456789ab.mjs").write_bytes(js)
    (static_dir / "shell-0123456789ab.mjs.br").write_bytes(brotli.compress(js))
    (static_dir / "shell-0123456789ab.mjs.gz").write_bytes(gzip.compress(js))
    (static_dir / "pyodide-314.0.7").mkdir()
    (static_dir / "pyodide-314.0.7" / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0")
    with Client(make_app(static_dir)) as client:
        br = client.get("/shell-0123456789ab.mjs", headers={"accept-encoding": "br, gzip"})
        assert br.headers["content-encoding"] == "br" and br.content == js
        assert br.headers["content-type"].startswith("text/javascript")
        assert "immutable" in br.headers["cache-control"]
        assert br.headers["vary"] == "Accept-Encoding, Origin"  # one header, both reasons
        gz = client.get("/shell-0123456789ab.mjs", headers={"accept-encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip" and gz.content == js
        plain = client.get("/shell-0123456789ab.mjs", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == js
        refused = client.get("/shell-0123456789ab.mjs", headers={"accept-encoding": "br;q=0, gzip"})
        assert refused.headers["content-encoding"] == "gzip"
        assert len({br.headers["etag"], gz.headers["etag"], plain.headers["etag"]}) == 3
        again = client.get("/shell-0123456789ab.mjs", headers={"accept-encoding": "br", "if-none-match": br.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        wasm = client.get("/pyodide-314.0.7/pyodide.asm.wasm")
        assert wasm.headers["content-type"] == "application/wasm" and "immutable" in wasm.headers["cache-control"]
        loader = client.get("/loader.js")
        # Fresh briefly, then used while revalidated: runs from the browser's cache with the origin down.
        assert loader.headers["cache-control"] == ("public, max-age=300, stale-while-revalidate=604800, "
                                                   "stale-if-error=604800") and "etag" in loader.headers
        assert client.get("/loader.js", headers={"if-none-match": loader.headers["etag"]}).status_code == 304
        for evil in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd"):
            r = client.get(evil)
            assert r.status_code == 404, evil
        assert client.post("/loader.js").status_code == 405


@pytest.mark.no_storage
def test_bundles_have_etags(static_dir, tmp_path):
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    (bundles / "site.json").write_text('{"payload": "x"}')
    with Client(make_app(static_dir, bundles_dir=bundles)) as client:
        r = client.get("/bundles/site.json")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
        assert client.get("/bundles/site.json", headers={"if-none-match": r.headers["etag"]}).status_code == 304


@pytest.mark.no_storage
def test_agent_page_is_served_with_a_strict_csp(client):
    r = client.get("/agent")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert client.get("/agent/agent.mjs").headers["content-type"].startswith("text/javascript")
    assert client.get("/agent/agent.css").headers["content-type"].startswith("text/css")
    assert client.get("/agent/../app.py").status_code == 404
    assert client.get("/agent/secrets.txt").status_code == 404

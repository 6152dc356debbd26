"""The reference endpoint end to end: real Chromium, two origins, the agent
page in a second browser context, live presence and replies over SSE, geo
from a CDN header, beacons counted on the endpoint, email delivery requests.

Visitor actions go through the endpoint module's public API (sendMessage,
rate — what the chat panel calls); the agent acts on the real /agent page.
Server-sent news arrives in real time, so those waits poll; rule timing is
driven by Playwright's clock.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from conftest import PageGuard, T0, shown_ids, simple_messages, sync, wait_ready

TEAM_POLL_MS = 30_000   # widget/endpoint/presence.mjs
IDLE_MS = 600_000


# -- helpers -------------------------------------------------------------------------

def agent_api(site, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{site.widget_origin}/api/agent{path}", data=data, method=method,
                                 headers={"content-type": "application/json", **site.agent_auth})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def team_offline(site) -> None:
    for agent in agent_api(site, "GET", "/presence")["agents"]:
        if agent["online"]:
            agent_api(site, "POST", "/presence", {"agent": agent["name"], "online": False})


def until(fn, what: str, timeout: float = 15.0, pump=None):
    """Poll (real time) until fn() is truthy: for news that travels over the network.
    When fn reads what Playwright's event handlers collect (routes, console),
    pass `pump=page`: the sync API runs those handlers only while it waits."""
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {value!r})")
        if pump is not None:
            pump.wait_for_timeout(50)
        else:
            time.sleep(0.05)


_site: list = []


@pytest.fixture(autouse=True)
def _remember_site(site):
    _site[:] = [site]


def module_url(site) -> str:
    """The URL the widget imports widget/endpoint/endpoint.mjs from (the build may content-hash it)."""
    manifest = json.loads((site.static / "manifest.json").read_text())
    served = manifest.get("served") or {}
    return f"{site.widget_origin}/{served.get('endpoint.mjs', 'endpoint.mjs')}"


def endpoint(page, call: str, *args):
    """Call the endpoint module the widget itself loaded (same URL → same instance)."""
    return page.evaluate(
        "async ([url, call, args]) => (await import(url))[call](...args)",
        [module_url(_site[0]), call, list(args)],
    )


def collect_chat(page) -> None:
    page.evaluate("() => { window.__chat = []; proactive('on', 'message', (m) => __chat.push(m)); }")


def chat(page) -> list:
    return page.evaluate("() => window.__chat || []")


def boot(page, url: str) -> dict:
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(url)
    return wait_ready(page)


def shown_soon(page, message: str) -> bool:
    sync(page)
    return message in shown_ids(page)


@pytest.fixture
def agent_page(browser, site, guard):
    """The /agent page in its own browser context (another person), guarded too."""
    context = browser.new_context()
    agent_guard = PageGuard([site.widget_origin])
    context.on("page", agent_guard.attach)
    context.on("request", agent_guard.on_request)
    p = context.new_page()
    p.goto(f"{site.widget_origin}/agent#token={site.agent_token}")
    p.wait_for_selector("#presence-toggle")
    yield p
    context.close()
    agent_guard.check()


def bundle(site, name: str, *messages: dict) -> str:
    return site.publish(simple_messages(*messages), name)


# -- tests -----------------------------------------------------------------------------

def test_visitor_replies_agent_answers_on_agent_page_visitor_sees_it_live(site, page, guard, agent_page):
    url = bundle(site, "chat",
                 {"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
                 {"id": "no-answer", "rules": [{"rule": "time_without_agent_reply", "op": "greater", "value": 60}]})
    boot(page, site.page(tag=site.tag(bundle=url)))
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == ["hello"]
    collect_chat(page)

    sent = endpoint(page, "sendMessage", "Do you deliver to Vienna?")
    assert sent and sent["sender"] == "visitor" and sent["text"] == "Do you deliver to Vienna?"

    # The agent sees the conversation appear live, opens it and answers.
    item = agent_page.locator("#conversation-list li.conversation").filter(has_text="Do you deliver to Vienna?")
    item.wait_for()
    item.click()
    agent_page.locator("#thread-messages .msg.visitor").filter(has_text="Do you deliver to Vienna?").wait_for()
    assert "reply to hello" in item.inner_text()
    agent_page.fill("#reply-text", "Yes — tomorrow <b>morning</b>.")
    agent_page.click("#reply-send")
    agent_page.locator("#thread-messages .msg.agent").filter(has_text="tomorrow").wait_for()

    # The visitor's page gets the answer over the live stream, as text.
    answer = until(lambda: [m for m in chat(page) if m["sender"] == "agent"], "the agent's answer")
    assert answer[0]["text"] == "Yes — tomorrow <b>morning</b>."
    # Answered: the "no reply from agent" message never comes.
    page.clock.run_for(120_000)
    sync(page)
    assert "no-answer" not in shown_ids(page)

    # History survives a reload (and it is this visitor's only).
    page.goto(site.page(tag=site.tag(bundle=url)))
    wait_ready(page)
    history = until(lambda: endpoint(page, "messages"), "the chat history after reload")
    assert [(m["sender"], m["text"]) for m in history] == [
        ("visitor", "Do you deliver to Vienna?"), ("agent", "Yes — tomorrow <b>morning</b>.")]


def test_time_without_agent_reply_fires_when_the_agent_stays_silent(site, page, guard):
    url = bundle(site, "silent", {"id": "sorry-wait", "rules": [
        {"rule": "time_without_agent_reply", "op": "greater", "value": 30}]})
    boot(page, site.page(tag=site.tag(bundle=url)))
    assert endpoint(page, "sendMessage", "Hello? Anyone there?")["sender"] == "visitor"
    sync(page)
    page.clock.run_for(30_000)  # exactly 30 s without a reply: "greater 30" is still false
    sync(page)
    assert shown_ids(page) == []
    page.clock.run_for(1)
    sync(page)
    assert shown_ids(page) == ["sorry-wait"]


def test_rating_rule_fires_after_a_rating(site, page, guard):
    url = bundle(site, "rating", {"id": "sorry-poor", "rules": [{"rule": "rating", "op": "equals", "value": "poor"}]})
    boot(page, site.page(tag=site.tag(bundle=url)))
    endpoint(page, "sendMessage", "The checkout is broken")
    assert endpoint(page, "rate", "great") == {"rating": "great", "stored": True}
    sync(page)
    assert shown_ids(page) == []
    assert endpoint(page, "rate", "poor") == {"rating": "poor", "stored": True}
    sync(page)
    assert shown_ids(page) == ["sorry-poor"]
    conv = agent_api(site, "GET", "/conversations")["conversations"]
    assert any(c["last_text"] == "The checkout is broken" and c["rating"] == "poor" for c in conv)


def test_team_online_message_appears_only_after_an_agent_goes_online(site, page, guard, agent_page):
    team_offline(site)
    agent_page.fill("#agent-name", "Grace")
    agent_page.dispatch_event("#agent-name", "change")
    url = site.publish({"site": "test", "widgets": [{"id": "main"}], "messages": [
        {"id": "we-are-here", "type": "proactive", "widget": "main", "team": "online", "content": {"text": "Chat now"},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}]}, "team")
    boot(page, site.page(tag=site.tag(bundle=url)))
    page.clock.run_for(10_000)
    sync(page)
    assert shown_ids(page) == [], "shown while the team is offline"
    assert agent_page.inner_text("#team-status") == "Team offline"
    agent_page.click("#presence-toggle")
    agent_page.wait_for_selector('#presence-toggle[aria-pressed="true"]')
    assert agent_page.inner_text("#team-status").startswith("Team online")
    # A visitor who is not chatting holds no stream: the page reads the
    # team's presence again every TEAM_POLL_MS (widget/endpoint/presence.mjs;
    # the answer may be cached for 5 s of real time).
    def next_poll():
        page.clock.run_for(TEAM_POLL_MS)
        page.wait_for_timeout(200)
        return shown_soon(page, "we-are-here")

    until(next_poll, "the team-online message after the agent went online")
    agent_page.click("#presence-toggle")  # leave the team offline for other tests
    agent_page.wait_for_selector('#presence-toggle[aria-pressed="false"]')


def test_country_rule_fires_from_a_cdn_geo_header_and_geo_is_asked_once_per_visit(site, page, guard):
    url = bundle(site, "geo",
                 {"id": "hallo-berlin", "rules": [{"rule": "country", "op": "equals", "value": "DE"},
                                                  {"rule": "city", "op": "equals", "value": "Berlin"}]},
                 {"id": "bonjour", "rules": [{"rule": "country", "op": "equals", "value": "FR"}]})
    geo_requests = []

    def add_cdn_headers(route):
        geo_requests.append(route.request.url)
        route.continue_(headers={**route.request.headers, "cf-ipcountry": "DE", "cf-ipcity": "Berlin"})

    page.route(f"{site.widget_origin}/api/geo", add_cdn_headers)
    boot(page, site.page(tag=site.tag(bundle=url)))
    until(lambda: shown_soon(page, "hallo-berlin"), "the country rule to fire")
    assert shown_ids(page) == ["hallo-berlin"]
    assert len(geo_requests) == 1
    # The next page of the same visit uses the cached answer: no new request.
    page.goto(site.page(tag=site.tag(bundle=url)))
    wait_ready(page)
    until(lambda: shown_soon(page, "hallo-berlin"), "the country rule on the next page")
    assert len(geo_requests) == 1


def test_widget_works_when_the_endpoint_is_down(site, page, guard):
    dead = "http://127.0.0.1:9"
    guard.allowed.append(dead)
    guard.allowed_console_errors += ["ERR_CONNECTION_REFUSED", "Failed to load resource", "EventSource"]
    url = bundle(site, "down",
                 {"id": "de-only", "rules": [{"rule": "country", "op": "equals", "value": "DE"}]},
                 {"id": "fr-not", "rules": [{"rule": "country", "op": "is_not", "value": "FR"}]},
                 {"id": "welcome", "rules": [{"rule": "time_on_page", "op": "greater", "value": 3}]})
    status = boot(page, site.page(tag=site.tag(bundle=url, data_endpoint=f"{dead}/api")))
    page.clock.run_for(3000 - (page.evaluate("Date.now()") - status["navStart"]))  # exactly 3 s on the page
    sync(page)
    assert shown_ids(page) == []
    page.clock.run_for(10)
    sync(page)
    assert shown_ids(page) == ["welcome"]  # unknown country: neither "equals DE" nor "is_not FR" holds
    until(lambda: any("geo answer is unavailable" in w for w in guard.warnings()), f"a warning (console: {guard.console})", 5, pump=page)


def test_beacons_count_shown_and_dismissed_once_with_retry_on_the_next_page(site, context, page, guard):
    url = bundle(site, "beacons", {"id": "beacon-me", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]})
    guard.allowed_console_errors += ["Failed to load resource", "ERR_FAILED"]
    blocked = []
    # On the context: keepalive fetches and beacons leave through the browser, not the page.
    context.route(f"{site.widget_origin}/api/events", lambda route: (blocked.append(route.request.url), route.abort()))
    boot(page, site.page(tag=site.tag(bundle=url)))
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == ["beacon-me"]
    page.get_by_role("button", name="Dismiss").first.click()
    # The batch is due 2 s after its first event; its send fails (the endpoint is unreachable).
    for _ in range(40):
        page.clock.run_for(250)
        if blocked:
            break
        time.sleep(0.05)
    assert blocked, json.dumps({"stats": site.endpoint.store.stats(60_000)["messages"], "now": page.evaluate("Date.now()"),
                                "storage": page.evaluate("() => Object.fromEntries(Object.entries(localStorage))")})[:3000]
    queued = page.evaluate("() => Object.entries(localStorage).filter(([k]) => k.endsWith(':beacons')).map(([, v]) => JSON.parse(v))")
    assert [e["type"] for e in queued[0]] == ["shown", "dismissed"]
    page.close()  # its last-chance sendBeacon is blocked too
    context.unroute(f"{site.widget_origin}/api/events")

    # The next page of the visitor (same storage), with the endpoint reachable, re-sends.
    sent = []
    nxt = context.new_page()
    nxt.on("request", lambda r: sent.append(r.url) if r.url.endswith("/api/events") else None)
    nxt.goto(site.page(tag=site.tag(bundle=url)))
    wait_ready(nxt)

    def counted():
        m = {m["message"]: m for m in site.endpoint.store.stats(60_000)["messages"]}.get("beacon-me")
        return m and m["shown"] >= 1 and m["dismissed"] >= 1 and m

    stats = until(counted, "the beacons to be counted")
    assert (stats["shown"], stats["dismissed"]) == (1, 1)
    assert sent, "the next page did not re-send the batch"
    until(lambda: not nxt.evaluate(
        "() => Object.entries(localStorage).filter(([k]) => k.endsWith(':beacons')).flatMap(([, v]) => JSON.parse(v)).length"),
        "the queue to empty once the endpoint confirmed")


def test_agent_page_shows_stats_with_a_chart(site, page, guard, agent_page):
    # Feed a few beacons for a message id of this test (stats are endpoint-wide).
    r = urllib.request.Request(f"{site.widget_origin}/api/events", method="POST", data=json.dumps({
        "sender": "e2e-stats", "events": [
            {"id": "1", "type": "shown", "message": "stats-demo"}, {"id": "2", "type": "shown", "message": "stats-demo"},
            {"id": "3", "type": "clicked", "message": "stats-demo", "button": "Chat"},
            {"id": "4", "type": "replied", "message": "stats-demo"}]}).encode())
    with urllib.request.urlopen(r, timeout=10) as resp:
        assert resp.status == 202
    agent_page.click('[data-tab="stats"]')
    row = agent_page.locator('#stats-table tr[data-message="stats-demo"]')
    row.wait_for()
    assert agent_page.locator("#tab-conversations").is_hidden()  # one tab at a time
    # Shown twice to one visitor, who clicked and replied: the columns after Shown count visitors.
    assert row.locator("td.times").inner_text() == "2"
    assert [row.locator(f"td.{k}").inner_text() for k in ("shown", "clicked", "dismissed", "replied")] == ["1", "1", "0", "1"]
    assert row.locator("td.rate").inner_text() == "100 %"
    assert row.locator("svg.chart polyline.shown").count() == 1
    assert "shown 2" in row.locator("svg.chart").get_attribute("aria-label")


def test_email_message_becomes_a_delivery_request(site, page, guard, agent_page):
    url = site.publish({"site": "test", "widgets": [{"id": "main"}], "messages": [
        {"id": "welcome-mail", "type": "email", "widget": "main", "audience": "users",
         "content": {"text": "Welcome aboard"}, "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}]}, "mail")
    boot(page, site.page(tag=site.tag(bundle=url)))
    page.evaluate("() => proactive('identify', {email: 'ada@example.com', name: 'Ada'})")
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == []  # never shown in the page
    deliveries = until(lambda: [d for d in site.endpoint.store.deliveries() if d["recipient"] == "ada@example.com"],
                       "the delivery request")
    assert deliveries[0]["message"] == "welcome-mail" and deliveries[0]["attributes"]["name"] == "Ada"
    agent_page.click('[data-tab="deliveries"]')
    agent_page.locator("#deliveries-table td").filter(has_text="ada@example.com").wait_for()


def test_through_the_chat_ui_reply_on_the_card_answer_in_the_panel_then_rate(site, page, guard, agent_page):
    url = bundle(site, "ui",
                 {"id": "ui-hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
                 {"id": "ui-thanks", "rules": [{"rule": "rating", "op": "equals", "value": "great"}]})
    boot(page, site.page(tag=site.tag(bundle=url)))
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == ["ui-hello"]
    widget = page.locator("proactive-widget")
    reply = widget.get_by_label("Reply to this message")
    hostile = 'Is the blue one in stock? <img src=x onerror="window.__pwned=1">'
    reply.fill(hostile)
    reply.press("Enter")

    item = agent_page.locator("#conversation-list li.conversation").filter(has_text="Is the blue one in stock?")
    item.wait_for()
    assert "reply to ui-hello" in item.inner_text()
    item.click()
    # The visitor's text is text on the agent page too.
    agent_page.locator("#thread-messages .msg.visitor").filter(has_text=hostile).wait_for()
    assert agent_page.locator("#thread-messages img, #conversation-list img").count() == 0
    assert agent_page.evaluate("() => window.__pwned") is None
    agent_page.fill("#reply-text", "It is <script>alert(1)</script>!")
    agent_page.press("#reply-text", "Enter")

    # The answer appears in the visitor's chat panel, as text.
    answer = widget.locator(".bubble.agent").filter(has_text="It is <script>alert(1)</script>!")
    answer.wait_for(timeout=15_000)
    assert widget.locator(".bubble.agent script").count() == 0
    widget.get_by_role("button", name="Great").click()
    sync(page)
    assert "ui-thanks" in page.evaluate("() => proactive('status').shown.map((s) => s.message)")
    assert until(lambda: [c for c in agent_api(site, "GET", "/conversations")["conversations"]
                          if c["last_text"] == "It is <script>alert(1)</script>!" and c["rating"] == "great"],
                 "the rating on the agent side")


def test_an_answer_given_while_the_visitor_was_away_stops_the_no_reply_timer(site, context, page, guard):
    url = bundle(site, "away", {"id": "still-waiting", "rules": [
        {"rule": "time_without_agent_reply", "op": "greater", "value": 60}]})
    boot(page, site.page(tag=site.tag(bundle=url)))
    endpoint(page, "sendMessage", "Please call me back")
    sync(page)
    sent_at = page.evaluate("Date.now()")
    page.close()  # the visitor leaves; the agent answers later
    cid = [c for c in agent_api(site, "GET", "/conversations")["conversations"] if c["last_text"] == "Please call me back"][0]["id"]
    agent_api(site, "POST", f"/conversations/{cid}/messages", {"text": "Called you!"})

    back = context.new_page()
    # The visitor comes back half a minute later (the test clock stood still meanwhile).
    back.clock.pause_at((sent_at + 30_000) / 1000)
    back.goto(site.page(tag=site.tag(bundle=url)))
    wait_ready(back)
    until(lambda: len(back.evaluate(
        "async (u) => (await import(u)).messages()", module_url(site))) == 2, "the history on return")
    back.clock.run_for(120_000)
    sync(back)
    assert "still-waiting" not in shown_ids(back)


def conversation_of(site, text: str) -> int:
    return next(c["id"] for c in agent_api(site, "GET", "/conversations")["conversations"] if c["last_text"] == text)


def test_live_stream_reconnects_with_backoff_and_resumes_with_the_reply_sent_meanwhile(site, page, guard):
    guard.allowed_console_errors += ["Failed to load resource", "ERR_FAILED"]
    url = bundle(site, "backoff", {"id": "hi", "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]})
    attempts = []
    page.route(f"{site.widget_origin}/api/stream*", lambda route: (attempts.append(route.request.url), route.abort()))
    boot(page, site.page(tag=site.tag(bundle=url)))
    collect_chat(page)
    assert endpoint(page, "sendMessage", "Anyone there? (backoff)")
    until(lambda: attempts, "the first stream attempt", pump=page)
    # Step the clock in small steps so each failure is seen before time moves on.
    for _ in range(60):  # 15 s of page time
        page.clock.run_for(250)
        page.wait_for_timeout(30)
    # Retries after 0.5–1 s, 1–2 s, 2–4 s, 4–8 s (jittered): 4 or 5 attempts in 15 s, not one every few hundred ms.
    assert 4 <= len(attempts) <= 6, attempts
    # Each attempt resumes after the last message the page has (its own).
    assert all("last_event_id=" in a for a in attempts), attempts
    # The agent answers while the page cannot connect.
    agent_api(site, "POST", f"/conversations/{conversation_of(site, 'Anyone there? (backoff)')}/messages",
              {"text": "Here! (sent while you were away)"})
    page.unroute(f"{site.widget_origin}/api/stream*")
    # The next retry connects (within 8–16 s of page time) and the reply is replayed, once.
    # The connection itself takes real time (slow under CPU load): page time and real time both pass.
    deadline = time.time() + 30
    while not [m for m in chat(page) if m["sender"] == "agent"] and time.time() < deadline:
        page.clock.run_for(250)
        page.wait_for_timeout(50)
    page.wait_for_timeout(500)
    assert [m["text"] for m in chat(page) if m["sender"] == "agent"] == ["Here! (sent while you were away)"]


STREAM_WATCH = """() => {
  const Real = window.EventSource;
  window.__streams = [];
  window.EventSource = class extends Real {
    constructor(...args) { super(...args); window.__streams.push(this); }
  };
}"""


def open_streams(page) -> int:
    return page.evaluate("() => (window.__streams || []).filter((s) => s.readyState !== 2).length")


def one_message_page(site, page, name: str, message: dict) -> list[str]:
    """A bundle of one message shown after 1 s on the page, the page booted
    with its API requests and event streams watched, and two minutes of page
    time (four TEAM_POLL_MS): the URLs of the page's /api/ requests so far
    (the list grows as the page makes more)."""
    url = site.publish({"site": "test", "widgets": [{"id": "main"}], "messages": [
        {"type": "proactive", "widget": "main", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}],
         **message}]}, name)
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
    page.add_init_script(f"({STREAM_WATCH})()")
    boot(page, site.page(tag=site.tag(bundle=url)))
    for _ in range(4):
        page.clock.run_for(TEAM_POLL_MS)
        page.wait_for_timeout(100)
    return requests


def test_a_visitor_who_is_not_chatting_holds_no_stream_until_they_send_a_message(site, page, guard, agent_page):
    """No conversation: no event stream at all, whatever the page time; the
    team's presence is read with the cacheable GET, only because a message
    depends on the team. The visitor writes: the stream opens and the agent's
    answer arrives on it; IDLE_MS after the last message it closes."""
    team_offline(site)
    requests = one_message_page(site, page, "nostream",
                                {"id": "offline-note", "team": "offline", "content": {"text": "Leave a note"}})
    until(lambda: shown_soon(page, "offline-note"), "the team-offline message (presence read with GET)")
    assert not [u for u in requests if "/api/stream" in u] and page.evaluate("() => window.__streams.length") == 0
    assert [u for u in requests if u.endswith("/api/presence")], requests

    collect_chat(page)
    assert endpoint(page, "sendMessage", "Is anyone reading this?")
    until(lambda: open_streams(page) == 1, "the stream, once the visitor has a conversation", pump=page)
    agent_api(site, "POST", f"/conversations/{conversation_of(site, 'Is anyone reading this?')}/messages",
              {"text": "Yes, I am."})
    until(lambda: [m for m in chat(page) if m["sender"] == "agent"], "the agent's answer over the stream")
    # Idle: IDLE_MS after the last message the stream closes.
    page.clock.run_for(IDLE_MS + 1000)
    until(lambda: open_streams(page) == 0, "the stream to close when the conversation is idle", pump=page)


def test_a_bundle_without_a_team_message_never_reads_the_teams_presence(site, page, guard):
    """The team's presence is read only for a bundle with a message that
    depends on the team: with none, no GET /api/presence and no stream,
    however long the visitor stays (every TEAM_POLL_MS would read it)."""
    requests = one_message_page(site, page, "noteam", {"id": "anytime", "content": {"text": "Hello"}})
    until(lambda: shown_soon(page, "anytime"), "the message (the widget ran)")
    page.wait_for_timeout(300)
    assert [u for u in requests if u.endswith("/api/events")], requests   # the page did talk to the endpoint
    assert not [u for u in requests if "/api/presence" in u or "/api/stream" in u], requests
    assert page.evaluate("() => window.__streams.length") == 0

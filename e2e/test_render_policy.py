"""Delivery policy and the chat panel in the browser: business hours under
Pyodide (built-in time-zone rules, scheduled wake-ups on the page's clock),
targeted and email messages from identify, a url button, and a conversation
through the panel with the reference endpoint (agent answer as text)."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timezone

from conftest import T0, shown_ids, sync, wait_ready
from test_render import EVENTS_HEAD, events, shadow, shoot


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def until(fn, what: str, timeout: float = 15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_business_hours_in_berlin_decide_under_pyodide_to_the_millisecond(site, page, guard):
    # T0 is Thursday 2026-05-28 20:26:40 UTC = 22:26:40 in Berlin: the team is closed.
    site.publish({"site": "test", "team": {"timezone": "Europe/Berlin", "hours": {"mon-fri": "09:00-18:00"}},
                  "messages": [
                      {"id": "online", "team": "online", "priority": 2, "content": {"text": "We're here — ask away!"},
                       "rules": []},
                      {"id": "offline", "team": "offline", "content": {"text": "Leave us a message"}, "rules": []},
                  ]}, "hours")
    url = site.page("<p>hours</p>", tag=site.tag(bundle=site.bundle_url("hours"), data_endpoint="off"))
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(url)
    wait_ready(page)
    sync(page)
    assert shown_ids(page) == ["offline"]
    explain = page.evaluate("proactive('explain')")
    assert explain["online"]["gates"]["team"]["source"] == "business hours"
    assert explain["online"]["gates"]["team"]["next_change"] == utc_ms("2026-05-29T07:00:00")
    page.keyboard.press("Escape")
    sync(page)
    assert shown_ids(page) == []
    # Fast-forward the page's clock: the shell's one timer wakes the engine at 09:00 Berlin.
    page.clock.run_for(utc_ms("2026-05-29T07:00:00") - page.evaluate("Date.now()") - 1)
    sync(page)
    assert shown_ids(page) == []
    page.clock.run_for(1)
    sync(page)
    assert shown_ids(page) == ["online"]
    shown = page.evaluate("proactive('status').shown")
    assert shown[-1] == {"message": "online", "t": utc_ms("2026-05-29T07:00:00")}


def test_targeted_and_email_messages_follow_identify(site, page, guard):
    site.publish({"site": "test", "messages": [
        {"id": "pro", "type": "targeted", "content": {"text": "Hi {{name}}, your {{plan}} plan has new reports."},
         "rules": [{"rule": "user.plan", "op": "equals", "value": "pro"}]},
        {"id": "welcome-mail", "type": "email", "content": {"text": "Welcome {{name}}"},
         "rules": [{"rule": "user.email", "op": "exists"}]},
        {"id": "visitors-only", "content": {"text": "Hello stranger"}, "rules": [{"rule": "time_on_page", "op": "greater", "value": 60}]},
    ]}, "targeted")
    head = EVENTS_HEAD.replace('"open", "close"', '"open", "close", "email"')
    url = site.page("<p>app</p>", head=head, tag=site.tag(bundle=site.bundle_url("targeted"), data_endpoint="off"))
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(url)
    wait_ready(page)
    assert shown_ids(page) == []
    page.evaluate("proactive('identify', {name: 'Ann', plan: 'pro', email: 'ann@example.com'})")
    sync(page)
    assert shown_ids(page) == ["pro"]
    assert shadow(page, "root.querySelector('.card .text').textContent") == "Hi Ann, your pro plan has new reports."
    names = [e[0] for e in events(page)]
    assert names.count("email") == 1 and [e[1]["message"] for e in events(page) if e[0] == "email"] == ["welcome-mail"]
    page.clock.run_for(61_000)   # a logged-in user is not a visitor: the visitors-only message never shows
    sync(page)
    assert shown_ids(page) == ["pro"]


def test_conversation_through_the_panel_with_the_endpoint(site, page, guard):
    site.publish({"site": "test", "widgets": [{"id": "main", "title": "Acme Support"}], "messages": [
        {"id": "convo-hello", "content": {"text": "Need help choosing a plan?", "sender": "Maya",
                                    "buttons": [{"id": "plans", "label": "Compare plans", "action": "url", "url": "/plans.html"},
                                                {"id": "chat", "label": "Ask us", "action": "chat"}]},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}]}, "convo")
    (site.pages / "plans.html").write_text("<!doctype html><title>plans</title><h1>Plans</h1>")
    url = site.page("<p>shop</p>", head=EVENTS_HEAD, tag=site.tag(bundle=site.bundle_url("convo")))
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(url)
    wait_ready(page)
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == ["convo-hello"]

    # A url button is a real link: a new tab opens, the click is reported.
    with page.context.expect_page() as popup:
        page.locator("proactive-widget [data-button=plans]").click()
    assert popup.value.url.endswith("/plans.html")
    popup.value.close()
    assert ["clicked", {"message": "convo-hello", "button": "plans", "action": "url", "label": "Compare plans"}] in events(page)

    # The visitor answers in the card: the panel opens with the conversation.
    field = page.locator("proactive-widget .card input")
    field.fill("Do you ship to Vienna?")
    field.press("Enter")
    assert shadow(page, "!root.querySelector('.panel').hidden")
    assert ["replied", {"message": "convo-hello", "text": "Do you ship to Vienna?"}] in events(page)
    until(lambda: shadow(page, "[...root.querySelectorAll('.bubble.visitor')].map(b => b.className)") == ["bubble visitor"],
          "the endpoint to confirm the visitor's message")

    # The agent answers; the visitor sees it live, as text.
    def agent(method, path, body=None):
        req = urllib.request.Request(f"{site.widget_origin}/api/agent{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"content-type": "application/json", **site.agent_auth})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    cid = until(lambda: [c["id"] for c in agent("GET", "/conversations")["conversations"]
                         if c["last_text"] == "Do you ship to Vienna?"], "the conversation on the agent side")[0]
    agent("POST", f"/conversations/{cid}/messages", {"text": "Yes — tomorrow <b>morning</b>."})
    until(lambda: shadow(page, "[...root.querySelectorAll('.bubble.agent:not(.auto)')].map(b => b.textContent).join('|')"),
          "the agent's answer")
    answer = shadow(page, """(() => { const b = [...root.querySelectorAll('.bubble.agent:not(.auto)')].pop();
        return { text: b.textContent, elements: b.querySelectorAll('b').length,
                 rate: !root.querySelector('.rate').hidden }; })()""")
    assert answer["text"].endswith("Yes — tomorrow <b>morning</b>.") and answer["elements"] == 0 and answer["rate"]
    page.set_viewport_size({"width": 1280, "height": 800})
    shoot(page, "desktop-conversation")

    # The site owner counts them: shown, clicked (which button) and replied reach the endpoint in a batch.
    page.clock.run_for(3000)   # the endpoint's batching timer runs on the page's clock
    counted = until(lambda: [m for m in agent("GET", "/stats")["messages"]
                             if m["message"] == "convo-hello" and m["replied"]], "the events batch")[0]
    assert (counted["shown"], counted["clicked"], counted["replied"], counted["buttons"]) == (1, 1, 1, {"plans": 1})

"""Issue 22, item 6: a long session keeps bounded state. Hundreds of route
changes (each showing a message) and hundreds of agent replies on one page:
what the page keeps — `status().shown`, the transcript in the chat panel —
stops growing at its cap, while the counts stay exact. bench/soak.py measures
the same over 8 simulated hours (docs/benchmarks.md)."""

from __future__ import annotations

import json
import urllib.request

from conftest import T0, simple_messages, sync, wait_ready
from shell_helpers import wait_until

SHOWN_KEPT = 100      # widget: status().shown keeps the last 100 shows
TRANSCRIPT_KEPT = 200  # widget: the chat panel keeps the last 200 messages


def agent_reply(site, conversation: int, text: str) -> None:
    req = urllib.request.Request(f"{site.widget_origin}/api/agent/conversations/{conversation}/messages",
                                 data=json.dumps({"text": text, "author": "Soak"}).encode(), method="POST",
                                 headers={"content-type": "application/json", **site.agent_auth})
    urllib.request.urlopen(req, timeout=10).read()


def test_status_keeps_the_last_shows_and_counts_them_all(site, page, guard):
    bundle = site.publish(simple_messages({"id": "per-page", "rules": [{"rule": "time_on_page", "op": "greater", "value": 5}]}),
                          "soakshown")
    # 250 pages in a few real seconds: the endpoint's rate limit refuses some beacons (the browser logs each 429).
    guard.allowed_console_errors.append("status of 429")
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_ready(page)
    for n in range(1, 251):
        page.evaluate("(n) => history.pushState({}, '', location.pathname + '?p=' + n)", n)
        page.clock.run_for(6000)
        if n % 25 == 0:
            sync(page)
    sync(page)
    status = page.evaluate("() => proactive('status')")
    assert status["shownCount"] == 250      # one per route change (the first page never reached 5 s)
    assert len(status["shown"]) == SHOWN_KEPT
    assert [e["message"] for e in status["shown"]] == ["per-page"] * SHOWN_KEPT
    assert status["shown"][-1]["t"] > status["shown"][0]["t"]


def test_the_chat_panel_keeps_the_last_messages(site, page, guard):
    bundle = site.publish(simple_messages({"id": "never", "rules": [{"rule": "page_views", "op": "greater", "value": 99}]}),
                          "soakchat")
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_ready(page)
    page.evaluate("""async () => {
        window.__answers = 0; proactive('on', 'message', (m) => { if (m.sender === 'agent') __answers++; });
        const base = [...document.scripts].map(s => s.src).find(s => s.includes('loader.js')).replace('loader.js', '');
        const manifest = await (await fetch(base + 'manifest.json')).json();
        const m = await import(base + ((manifest.served || {})['endpoint.mjs'] || 'endpoint.mjs'));
        await m.sendMessage('hello?'); }""")
    req = urllib.request.Request(f"{site.widget_origin}/api/agent/conversations", headers=site.agent_auth)
    with urllib.request.urlopen(req, timeout=10) as r:
        conversations = json.loads(r.read())["conversations"]
    conversation = max(c["id"] for c in conversations)
    page.evaluate("() => proactive('open')")
    for n in range(1, 231):
        agent_reply(site, conversation, f"answer {n}")
    wait_until(page, "() => window.__answers >= 230", timeout=60)
    bubbles = page.evaluate("""() => { const el = document.querySelector('proactive-widget');
        return [...el.shadowRoot.querySelectorAll('.bubble')].map(b => b.textContent); }""")
    assert len(bubbles) <= TRANSCRIPT_KEPT, len(bubbles)
    assert any("answer 230" in b for b in bubbles)

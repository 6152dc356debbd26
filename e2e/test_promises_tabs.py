"""Issue 22, item 2: tabs opened together. Two tabs of a page with a
once-per-user message (time_on_page > 1) opened 0.1 s apart, in real time:
exactly one of them shows it, and the record counts two page views of one
visit and one invitation."""

from __future__ import annotations

import json
import time

from conftest import shown_ids, simple_messages, wait_ready
from shell_helpers import wait_until

MESSAGES = simple_messages(
    {"id": "once", "once_per_user": True, "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
)


def stored(page, bundle: str) -> dict:
    text = page.evaluate("(k) => localStorage.getItem(k)", f"proactive:v1:{bundle}")
    return json.loads(text) if text else {}


def open_together(site, context, name: str):
    bundle = site.publish(MESSAGES, name)
    url = site.page(tag=site.tag(bundle=bundle), name=name)
    a, b = context.new_page(), context.new_page()
    a.goto(url, wait_until="commit")
    time.sleep(0.1)
    b.goto(url, wait_until="commit")
    for tab in (a, b):
        wait_ready(tab, timeout=120)
    return bundle, a, b


def test_two_tabs_opened_together_show_a_once_per_user_message_once(site, context, guard):
    bundle, a, b = open_together(site, context, "together")
    # Each tab has been on the page well over 1 s: the message is due in both.
    deadline = time.time() + 20
    while time.time() < deadline and not (shown_ids(a) or shown_ids(b)):
        time.sleep(0.1)
    time.sleep(1.5)   # time for a second, wrong show
    for tab in (a, b):
        tab.evaluate("() => proactive('sync')")
    assert sorted(shown_ids(a) + shown_ids(b)) == ["once"]
    shown = [e for tab in (a, b) for e in tab.evaluate("() => proactive('status').shown")]
    assert [e["message"] for e in shown] == ["once"]
    wait_until(a, "(k) => { const r = JSON.parse(localStorage.getItem(k) || '{}'); return r.once && r.once.length === 1 "
                  "&& r.invitations_sent === 1; }", f"proactive:v1:{bundle}")


def test_two_tabs_opened_together_count_both_page_views_in_one_visit(site, context, guard):
    bundle, a, b = open_together(site, context, "counting")
    key = f"proactive:v1:{bundle}"
    wait_until(a, "(k) => { const r = JSON.parse(localStorage.getItem(k) || '{}'); return r.page_views === 2; }", key)
    record = stored(a, bundle)
    assert (record["visits"], record["page_views"]) == (1, 2), record
    assert record["invitations_sent"] == len(shown_ids(a) + shown_ids(b))

"""The visitor record across pages, visits, tabs and hours; storage blocked or
full. The main thread owns the clock, so Playwright's clock drives it all."""

from __future__ import annotations

import json

from conftest import T0, shown_ids, simple_messages, sync, wait_ready
from shell_helpers import observed, set_visibility, wait_until

MINUTE = 60_000


def stored_record(page, bundle: str):
    text = page.evaluate("(k) => localStorage.getItem(k)", f"proactive:v1:{bundle}")
    return json.loads(text) if text else None


def test_hours_of_visits_under_the_clock(site, page, guard):
    """A visit lasts while a page of the site is shown, and 30 min after the
    last one was hidden or left; time this visit counts across pages;
    fast-forwarding hours fires at the exact ms."""
    msgs = simple_messages(
        {"id": "long-visit", "rules": [{"rule": "time_this_visit", "op": "greater", "value": 3600}]},
        {"id": "count", "rules": [{"rule": "visits", "op": "greater", "value": 99}, {"rule": "page_views", "op": "greater", "value": 99}]},
    )
    bundle = site.publish(msgs, "hours")
    tag = site.tag(bundle=bundle)
    first, second, third = (site.page(tag=tag) for _ in range(3))
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(first)
    wait_ready(page)
    visit_start = stored_record(page, bundle)["visit_start"]
    for n in range(3):                          # an SPA page view every 19 minutes
        page.clock.fast_forward(19 * MINUTE)
        page.evaluate("(n) => history.pushState({}, '', '/app/' + n)", n)
    sync(page)
    assert shown_ids(page) == []
    now = page.evaluate("Date.now()")
    page.clock.run_for(visit_start + 3_600_000 - now)   # exactly 1 h into the visit
    sync(page)
    assert shown_ids(page) == []
    page.clock.fast_forward(2 * 3_600_000)              # jump 2 h: the timer fires late,
    sync(page)                                          # the decision keeps its instant
    assert shown_ids(page) == ["long-visit"]
    assert page.evaluate("proactive('status')")["shown"] == [{"message": "long-visit", "t": visit_start + 3_600_001}]
    assert (observed(page, "count", "visits"), observed(page, "count", "page_views")) == (1, 4)

    set_visibility(page, "hidden")                      # the visitor switches to another tab
    page.clock.fast_forward(31 * MINUTE)
    page.goto(second)                                   # back 31 min after the page was hidden: a new visit
    wait_ready(page)
    assert (observed(page, "count", "visits"), observed(page, "count", "page_views")) == (2, 1)
    page.clock.fast_forward(29 * MINUTE)
    page.goto(third)                                    # 29 min later: the same visit
    wait_ready(page)
    assert (observed(page, "count", "visits"), observed(page, "count", "page_views")) == (2, 2)
    record = stored_record(page, bundle)
    assert record["v"] == 1 and record["visits"] == 2 and record["page_views"] == 2
    assert page.context.cookies() == []


def test_two_tabs_share_the_record(site, context, guard):
    """Two pages of one context: one visit, not two; once_per_user holds
    across tabs (the storage event becomes a record_sync for the engine)."""
    msgs = simple_messages(
        {"id": "once", "once_per_user": True, "rules": [{"rule": "time_on_page", "op": "greater", "value": 10}]},
        {"id": "count", "rules": [{"rule": "visits", "op": "greater", "value": 99}, {"rule": "page_views", "op": "greater", "value": 99}]},
    )
    bundle = site.publish(msgs, "tabs")
    tag = site.tag(bundle=bundle)
    context.clock.install(time=T0)
    context.clock.pause_at(T0 + 1)
    a = context.new_page()
    a.goto(site.page(tag=tag))
    wait_ready(a)
    context.clock.run_for(3000)
    b = context.new_page()
    b.goto(site.page(tag=tag))
    wait_ready(b)
    sync(a)
    wait_until(a, "() => proactive('explain').then((e) => e.count.conditions[1].observed === 2)")
    for tab in (a, b):
        assert (observed(tab, "count", "visits"), observed(tab, "count", "page_views")) == (1, 2)
    assert stored_record(a, bundle)["visits"] == 1

    start_a, start_b = (tab.evaluate("proactive('status').navStart") for tab in (a, b))
    assert 0 < start_b - start_a <= 3100               # B's navigation started a little before its loader ran
    context.clock.run_for(start_a + 10_001 - a.evaluate("Date.now()"))   # tab A: 10.001 s on the page
    sync(a)
    assert shown_ids(a) == ["once"] and shown_ids(b) == []
    assert stored_record(a, bundle)["once"] == ["once"]
    # Tab B hears about it through the storage event, before its own 10 s.
    wait_until(b, "() => proactive('explain').then((e) => e.once.gates.once_per_user.already_delivered)")
    context.clock.run_for(start_b + 12_000 - b.evaluate("Date.now()"))   # tab B: 12 s on the page
    sync(b)
    assert shown_ids(b) == []
    once = b.evaluate("proactive('explain')")["once"]
    assert once["rules"] is True and once["blocked_by"] == ["once_per_user"], once


BLOCK_STORAGE = """
Object.defineProperty(window, 'localStorage', {
  configurable: true,
  get() { throw new DOMException('The user denied permission to access the database.', 'SecurityError'); },
});
"""

FILL_STORAGE = """
(() => {
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (key, value) {
    if (String(value).length > 20) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    return setItem.call(this, key, value);
  };
})();
"""


def test_storage_blocked_runs_in_memory_with_one_warning(site, page, guard):
    bundle = site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 2}]}), "mem")
    page.add_init_script(BLOCK_STORAGE)
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    status = wait_ready(page)
    assert status["storage"] == "memory"
    page.clock.run_for(3000)
    page.evaluate("history.pushState({}, '', '/next')")
    sync(page)
    assert shown_ids(page) == ["hello"]
    assert observed(page, "hello", "time_on_page") == 0
    storage_warnings = [w for w in guard.warnings() if "localStorage" in w]
    assert storage_warnings == ["[proactive] localStorage is unavailable: the visitor record is kept in memory for this page only"]
    assert page.context.cookies() == []


def test_storage_full_runs_in_memory_with_one_warning(site, page, guard):
    bundle = site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 2}]}), "full")
    page.add_init_script(FILL_STORAGE)
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_ready(page)                                    # the probe fits; the record does not
    page.clock.run_for(3000)
    for n in range(3):
        page.evaluate("(n) => history.pushState({}, '', '/full/' + n)", n)
    sync(page)
    assert shown_ids(page) == ["hello"]
    assert observed(page, "hello", "time_on_page") == 0
    assert page.evaluate("proactive('status')")["storage"] == "memory"
    storage_warnings = [w for w in guard.warnings() if "localStorage" in w]
    assert storage_warnings == ["[proactive] localStorage is full: the visitor record is kept in memory for this page only"]
    assert stored_record(page, bundle) is None

"""Every visitor signal the shell captures, end to end: real pointer, real
scrolling, real history API, device emulation, Playwright's clock."""

from __future__ import annotations

import time

import pytest
from conftest import T0, shown_ids, simple_messages, sync, wait_ready
from shell_helpers import (PIXEL_7, TALL, collect, events, explain, leave, observed, scroll_to,
                           set_visibility, wait_shell)

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
EXIT = {"id": "exit", "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 1}]}


def open_page(site, page, body="", **attrs):
    bundle = attrs.pop("bundle", None)
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(body, head=VIEWPORT, tag=site.tag(bundle=bundle, **attrs)))
    status = wait_ready(page)
    assert status["ready"], status
    return status


def test_exit_intent_desktop_pointer_through_the_top(site, page, guard):
    bundle = site.publish(simple_messages(EXIT), "exit")
    status = open_page(site, page, TALL, bundle=bundle, data_exit_sensitivity="20", data_exit_delay="3")
    collect(page, "exit_intent")
    start = page.evaluate("Date.now()")
    assert start - status["navStart"] < 3000  # (the loader ran within 3 s of navigation)
    shows = lambda: [s["message"] for s in page.evaluate("proactive('status')")["shown"]]

    leave(page, 300, -5)                    # within the first 3 s: not armed yet
    page.clock.run_for(1500)
    leave(page, -5, 300)                    # through the left edge, far from the top
    set_visibility(page, "hidden")          # a tab switch is no exit intent on desktop
    page.clock.run_for(5000)
    set_visibility(page, "visible")
    scroll_to(page, 600)
    leave(page, 300, -5)                    # right after scrolling: ignored
    sync(page)
    assert events(page, "exit_intent") == [] and shown_ids(page) == []

    page.clock.run_for(600)
    at = page.evaluate("Date.now()")
    leave(page, -5, 15)                     # through the left edge, 15 px from the top: within 20 px
    sync(page)
    assert [e["how"] for e in events(page, "exit_intent")] == ["pointer"]
    assert shows() == ["exit"] and shown_ids(page) == ["exit"]
    assert page.evaluate("proactive('status')")["shown"][0]["t"] == at
    assert at - start == 1500 + 5000 + 600

    leave(page, 300, -5)                    # once per page view
    page.evaluate("history.pushState({}, '', '/spa-page')")
    leave(page, 300, -5)                    # a new page view re-arms after the delay
    page.clock.run_for(2999)
    leave(page, 300, -5)
    sync(page)
    assert [e["how"] for e in events(page, "exit_intent")] == ["pointer"]
    page.clock.run_for(1)
    leave(page, 300, -5)
    sync(page)
    assert [e["how"] for e in events(page, "exit_intent")] == ["pointer", "pointer"]
    assert shows() == ["exit", "exit"]


def test_exit_intent_default_sensitivity_is_10_px(site, page, guard):
    bundle = site.publish(simple_messages(EXIT), "exit")
    open_page(site, page, bundle=bundle)
    collect(page, "exit_intent")
    page.clock.run_for(2000)
    leave(page, -5, 15)                     # 15 px from the top: outside the default band
    leave(page, -5, 8)
    sync(page)
    assert [e["how"] for e in events(page, "exit_intent")] == ["pointer"]
    assert shown_ids(page) == ["exit"]


def test_spa_route_changes_are_new_pages(site, page, guard):
    moved = {"id": "moved", "rules": [{"rule": "page_views", "op": "greater", "value": 4},
                                      {"rule": "time_on_page", "op": "greater", "value": 10}]}
    bundle = site.publish(simple_messages(moved), "spa")
    open_page(site, page, bundle=bundle)
    collect(page, "page_view")
    start = page.evaluate("Date.now()")
    first = page.url
    page.clock.run_for(8000)
    page.evaluate("history.pushState({}, '', '/spa/a')")
    page.clock.run_for(4000)             # 12 s since load, 4 s on /spa/a
    page.evaluate("history.replaceState({}, '', '/spa/b?x=1')")
    page.evaluate("history.replaceState({n: 2}, '', location.href)")  # same URL: not a new page
    page.evaluate("() => new Promise((r) => { addEventListener('hashchange', r, { once: true }); location.hash = '/faq'; })")
    page.evaluate("() => new Promise((r) => { addEventListener('hashchange', r, { once: true }); location.hash = '/faq/top'; })")
    page.evaluate("() => new Promise((r) => { addEventListener('popstate', r, { once: true }); history.back(); })")
    sync(page)
    views = events(page, "page_view")
    origin = site.site_origin
    assert [v["url"].replace(origin, "") for v in views] == ["/spa/a", "/spa/b?x=1", "/spa/b?x=1#/faq", "/spa/b?x=1#/faq/top", "/spa/b?x=1#/faq"]
    assert [v["referrer"].replace(origin, "") for v in views] == [first.replace(origin, ""), "/spa/a", "/spa/b?x=1", "/spa/b?x=1#/faq", "/spa/b?x=1#/faq/top"]
    assert observed(page, "moved", "page_views") == 6
    last = views[-1]["t"]
    assert last - start == 12000
    page.clock.run_for(10000)            # exactly 10 s on the last page: "greater 10" is false
    sync(page)
    assert shown_ids(page) == []
    page.clock.run_for(1)
    sync(page)
    assert shown_ids(page) == ["moved"]
    assert page.evaluate("proactive('status')")["shown"][0]["t"] == last + 10001


@pytest.mark.browser_context_args(**PIXEL_7)
def test_touch_heuristics_fast_scroll_up_and_tab_return(site, page, guard):
    bundle = site.publish(simple_messages(EXIT), "exit")
    status = open_page(site, page, TALL, bundle=bundle)
    assert status["touch"] is True
    collect(page, "exit_intent")
    scroll_to(page, 2000)
    page.clock.run_for(1500)
    for y in (1850, 1700, 1550, 1400):   # a slow read back up: 150 px per 300 ms
        scroll_to(page, y)
        page.clock.run_for(300)
    sync(page)
    assert events(page, "exit_intent") == []
    scroll_to(page, 1300)
    scroll_to(page, 1000)                # 300 px (> 25 % of 839 px) within 250 ms
    sync(page)
    assert [e["how"] for e in events(page, "exit_intent")] == ["scroll_up"]
    assert shown_ids(page) == ["exit"]

    page.evaluate("history.pushState({}, '', '/next')")
    page.clock.run_for(1500)
    set_visibility(page, "hidden")
    page.clock.run_for(500)              # hidden for less than a second: not a departure
    set_visibility(page, "visible")
    set_visibility(page, "hidden")
    page.clock.run_for(4000)
    set_visibility(page, "visible")
    sync(page)
    assert [e["how"] for e in events(page, "exit_intent")] == ["scroll_up", "tab_return"]
    shown = page.evaluate("proactive('status')")["shown"]
    assert [s["message"] for s in shown] == ["exit", "exit"]
    assert explain(page)["exit"]["result"] == "delivered"


@pytest.mark.browser_context_args(**PIXEL_7)
def test_touch_heuristics_can_be_switched_off(site, page, guard):
    bundle = site.publish(simple_messages(EXIT), "exit")
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(TALL, head=VIEWPORT, tag=site.tag(bundle=bundle, data_exit_scroll_up="off", data_exit_tab_return="off")))
    wait_shell(page)
    collect(page, "exit_intent")
    scroll_to(page, 2000)
    page.clock.run_for(1500)
    scroll_to(page, 1500)
    scroll_to(page, 500)
    set_visibility(page, "hidden")
    page.clock.run_for(4000)
    set_visibility(page, "visible")
    wait_ready(page)
    assert events(page, "exit_intent") == []
    assert shown_ids(page) == []


LANDING = "/landing.html?utm_source=newsletter&utm_campaign=Spring&utm_medium=email"


@pytest.mark.browser_context_args(locale="de-DE")
def test_context_signals_language_agent_platform_referrer_landing_utm(site, page, guard):
    msgs = simple_messages(
        {"id": "language", "rules": [{"rule": "browser_language", "op": "equals", "value": ["de"]}]},
        {"id": "agent", "rules": [{"rule": "user_agent", "op": "contains", "value": "Chrome"}]},
        {"id": "platform", "rules": [{"rule": "platform", "op": "equals", "value": "desktop"}]},
        {"id": "referrer", "rules": [{"rule": "referrer_url", "op": "contains", "value": "/from.html"}]},
        {"id": "source", "rules": [{"rule": "source_url", "op": "contains", "value": "/landing"}]},
        {"id": "campaign", "rules": [{"rule": "utm_campaign", "op": "equals", "value": "spring"},
                                     {"rule": "utm_source", "op": "equals", "value": "newsletter"},
                                     {"rule": "utm_medium", "op": "equals", "value": "email"}]},
        {"id": "url", "rules": [{"rule": "page_url", "op": "contains", "value": "/landing"}]},
    )
    bundle = site.publish(msgs, "context")
    tag = site.tag(bundle=bundle)
    site.page(tag=tag, name="landing")
    page.goto(site.page(f'<a id=go href="{LANDING}">go</a>', tag="", name="from"))
    page.click("#go")
    page.wait_for_url(f"**{LANDING}")
    wait_ready(page)
    result = explain(page)
    assert {k: v["rules"] for k, v in result.items()} == dict.fromkeys(result, True), result
    assert observed(page, "language") == "de-DE"
    assert observed(page, "referrer") == f"{site.site_origin}/from.html"

    page.evaluate("history.pushState({}, '', '/pricing')")   # UTM and source stay with the visit
    sync(page)
    result = explain(page)
    assert {k: v["rules"] for k, v in result.items()} == {**dict.fromkeys(result, True), "url": False, "referrer": False}, result
    assert observed(page, "referrer") == site.site_origin + LANDING

    page.evaluate("""() => {   // the visitor changes the browser's languages
        Object.defineProperty(navigator, 'languages', { configurable: true, get: () => ['fr-FR', 'fr'] });
        Object.defineProperty(navigator, 'language', { configurable: true, get: () => 'fr-FR' });
        dispatchEvent(new Event('languagechange')); }""")
    sync(page)
    assert observed(page, "language") == "fr-FR" and explain(page)["language"]["rules"] is False


def test_signals_before_the_runtime_is_ready_are_replayed_in_order(site, page, guard):
    """The bundle is held back: exit intent, an SPA page and identify happen
    before the runtime is ready; once it is, each decision carries the
    instant its rules held, and the messages show at once."""
    msgs = simple_messages(
        {"id": "early-exit", "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 1}]},
        {"id": "second-page", "audience": "users",
         "rules": [{"rule": "page_url", "op": "contains", "value": "/early"},
                   {"rule": "time_on_page", "op": "greater", "value": 0.5}]},
    )
    bundle = site.publish(msgs, "early")
    held = []
    page.route(bundle, lambda route: held.append(route))
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(TALL, head=VIEWPORT, tag=site.tag(bundle=bundle)))
    wait_shell(page)
    start = page.evaluate("proactive('status').navStart")
    now = page.evaluate("Date.now()")
    exit_at = max(1500, now - start + 100)                # (the loader may run late on a busy machine)
    page.clock.run_for(start + exit_at - now)
    leave(page, 300, -5)                                  # exit intent at 1.5 s
    page.clock.run_for(500)
    page.evaluate("history.pushState({}, '', '/early')")  # a new page at 2 s
    page.evaluate("proactive('identify', {id: 7})")
    page.clock.run_for(1000)                              # 3 s
    status = page.evaluate("proactive('status')")
    assert not status["ready"] and status["shown"] == [] and shown_ids(page) == []
    deadline = time.time() + 20
    while not held and time.time() < deadline:
        page.wait_for_timeout(50)      # (the sync API runs the route handler only while it waits)
    assert held, "the bundle was never requested"
    held[0].continue_()
    wait_ready(page)
    shown = page.evaluate("proactive('status')")["shown"]
    assert shown == [{"message": "early-exit", "t": start + exit_at}, {"message": "second-page", "t": start + exit_at + 1001}]
    assert shown_ids(page) == ["second-page"]          # one card at a time: the newer page's
    assert observed(page, "second-page", "page_url") == site.site_origin + "/early"

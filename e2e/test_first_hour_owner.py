"""A site owner's first hour in the browser: testing their own tag locally."""

from __future__ import annotations

import functools
import re
import http.server
import threading

import pytest

from server_stub import storage
from test_endpoint import agent_page  # noqa: F401 - the agent page fixture


@pytest.fixture
def plain_static_host(site):
    """The widget folder behind `python3 -m http.server`: no CORS headers."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site.static))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_widget_served_without_cors_names_the_missing_header(site, page, guard, plain_static_host):
    from playwright.sync_api import expect  # noqa: F401 - the page fixture needs playwright

    guard.allowed.append(plain_static_host)
    guard.allowed_console_errors += ["CORS policy", "Failed to load resource", "net::ERR_FAILED"]
    tag = (f'<script async src="{plain_static_host}/loader.js" data-bundle="{site.bundle_url()}" '
           f'data-key="{site.public_key}"></script>')
    with page.expect_console_message(lambda m: m.text.startswith("[proactive] could not load"), timeout=15000) as msg:
        page.goto(site.page(tag=tag))
    text = msg.value.text
    assert text.startswith(f"[proactive] could not load the widget from {plain_static_host}/: ")
    assert f"sends no Access-Control-Allow-Origin header for {site.site_origin}" in text, text
    assert page.evaluate("typeof window.proactive") == "function"  # the page keeps its queue stub, no error


def test_a_widget_folder_that_is_not_there_says_http_404_not_cors(site, page, guard):
    guard.allowed_console_errors += ["404", "Failed to load resource"]
    tag = (f'<script async src="{site.widget_origin}/nowhere/loader.js" data-bundle="{site.bundle_url()}" '
           f'data-key="{site.public_key}"></script>')
    page.route(f"{site.widget_origin}/nowhere/loader.js",
               lambda route: route.fulfill(path=str(site.static / "loader.js"), content_type="text/javascript",
                                           headers={"access-control-allow-origin": "*"}))
    with page.expect_console_message(lambda m: m.text.startswith("[proactive] could not load"), timeout=15000) as msg:
        page.goto(site.page(tag=tag))
    assert re.search(rf"HTTP 404 for {site.widget_origin}/nowhere/shell-[0-9a-f]{{12}}\.mjs$", msg.value.text), msg.value.text


# -- the agent page's numbers -----------------------------------------------------------------

def _beacons(site, sender: str, *events: dict) -> None:
    import json
    import urllib.request

    body = json.dumps({"sender": sender, "events": [{"id": str(i), **e} for i, e in enumerate(events)]}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{site.widget_origin}/api/events", data=body,
                                                       method="POST"), timeout=10) as r:
        assert r.status == 202


def test_reply_rate_counts_visitors_and_the_page_says_what_each_column_counts(site, agent_page):
    # One message shown once, replied to twice (the 200 %), and a second visitor who did not reply.
    _beacons(site, "fh-ada", {"type": "shown", "message": "fh-rate"}, {"type": "replied", "message": "fh-rate"},
             {"type": "replied", "message": "fh-rate"})
    _beacons(site, "fh-bob", {"type": "shown", "message": "fh-rate"})
    agent_page.click('[data-tab="stats"]')
    row = agent_page.locator('#stats-table tr[data-message="fh-rate"]')
    row.wait_for()
    assert row.locator("td.times").inner_text() == "2"
    assert row.locator("td.shown").inner_text() == "2" and row.locator("td.replied").inner_text() == "1"
    assert row.locator("td.rate").inner_text() == "50 %"
    titles = agent_page.locator("#stats-table thead th").evaluate_all("ths => ths.map(th => [th.textContent, th.title])")
    assert all(title for name, title in titles if name != "Message"), titles
    assert "a visitor who replied twice counts once" in agent_page.locator("#stats-columns").inner_text()


def test_a_day_by_hour_has_axes_and_a_readable_scale(site, agent_page, monkeypatch):
    hour = 3_600_000
    day_start = 1_780_000_000_000 // hour * hour
    for h in range(24):
        # Received in hour h of that day (the endpoint runs in this process;
        # its stats' tallies are kept on write, so the clock is set, not the rows).
        monkeypatch.setattr(storage, "now_ms", lambda h=h: day_start + h * hour + 60_000)
        _beacons(site, f"fh-day-{h}", *[{"type": "shown", "message": "fh-day"}] * (3 + h % 5),
                 {"type": "replied", "message": "fh-day"})
        monkeypatch.undo()
    agent_page.click('[data-tab="stats"]')
    assert agent_page.locator("#bucket").input_value() == "hour"
    svg = agent_page.locator('#stats-table tr[data-message="fh-day"] svg.chart')
    svg.wait_for()
    # y: 0, half, and a rounded top at or above the busiest hour (7 shown) → 10.
    assert svg.locator("text.y-tick").all_text_contents() == ["0", "5", "10"]
    first, last = svg.locator("text.x-tick").all_text_contents()
    assert first.endswith(":00") and last.endswith(":00") and first != last
    shown = svg.locator("polyline.shown").get_attribute("points").split()
    assert len(shown) == 24
    ys = {float(p.split(",")[1]) for p in shown}
    assert max(ys) - min(ys) > 20  # the hours differ visibly: not a flat line
    assert "events per hour" in svg.get_attribute("aria-label")


# -- the agent's presence toggle (the flaky test_team_online_message_appears_only_after_an_agent_goes_online) --

def test_a_late_presence_answer_never_turns_the_toggle_back_off(site, agent_page):
    """The page's answers to GET /presence arrive last (as under CPU load, each
    on its own connection): the one asked at start and, on the old page, the
    one the name field's `change` asked (typing a name and clicking the
    toggle blurs the field). They carry what the endpoint said before the
    agent went online; delivered after the click's POST and the stream's news,
    they must not turn the toggle back off."""
    import json

    from test_endpoint import agent_api, team_offline

    team_offline(site)
    offline = json.dumps(agent_api(site, "GET", "/presence"))   # what a GET asked before the click answers
    held = []

    def hold_reads(route):
        if route.request.method == "GET":
            held.append(route)
        else:
            route.continue_()

    agent_page.route("**/api/agent/presence", hold_reads)
    agent_page.reload()          # the page's first GET /presence is held from the start
    agent_page.wait_for_selector("#presence-toggle")
    for _ in range(100):
        if held:
            break
        agent_page.wait_for_timeout(50)   # (route handlers run only while the sync API waits)
    assert held, "the agent page did not ask GET /presence at start"
    agent_page.fill("#agent-name", "Lin")
    agent_page.click("#presence-toggle")
    agent_page.wait_for_selector('#presence-toggle[aria-pressed="true"]')
    try:
        agent_page.wait_for_timeout(300)  # the stream's news of the POST arrives too
        for route in held:
            route.fulfill(status=200, content_type="application/json", body=offline)
        agent_page.wait_for_timeout(300)
        assert agent_page.get_attribute("#presence-toggle", "aria-pressed") == "true"
        assert agent_page.inner_text("#team-status").startswith("Team online")
    finally:
        agent_api(site, "POST", "/presence", {"agent": "Lin", "online": False})

"""Issue 22, items 4 and 5: no silent failure, no noise. Each fault gives the
site owner exactly one clear [proactive] warning, and the widget recovers
where it can: a worker that never boots, the host page's document.open(),
a non-JSON 200 from /geo, a page that defines <proactive-widget> first, a
sandboxed iframe without allow-same-origin."""

from __future__ import annotations

import time

from conftest import T0, shown_ids, simple_messages, sync, wait_ready
from shell_helpers import wait_shell, wait_until

HELLO = {"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 2}]}


def proactive_warnings(guard, *needles: str) -> list[str]:
    return [w for w in guard.warnings() if any(n in w for n in needles)]


def test_a_worker_that_never_boots_times_out_with_one_warning_and_runs_on_the_main_thread(site, page, guard):
    bundle = site.publish(simple_messages(HELLO), "noboot")
    # The worker's module never arrives (the request hangs); the page itself is fine.
    page.route("**/worker*.mjs", lambda route: None)
    page.clock.install(time=T0)
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_shell(page)
    page.clock.run_for(16_000)   # past the boot timeout
    status = wait_ready(page)
    assert status["ready"] and status["mode"] == "main", status
    warned = proactive_warnings(guard, "worker")
    assert len(warned) == 1 and "did not start within" in warned[0], guard.warnings()
    page.clock.run_for(3000)
    sync(page)
    assert shown_ids(page) == ["hello"]


def test_document_open_removes_the_widget_and_it_comes_back(site, page, guard):
    bundle = site.publish(simple_messages(
        HELLO, {"id": "later", "rules": [{"rule": "time_on_page", "op": "greater", "value": 20}]}), "docopen")
    page.clock.install(time=T0)
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_ready(page)
    page.clock.run_for(3000)
    sync(page)
    assert shown_ids(page) == ["hello"]
    page.evaluate("() => { document.open(); document.write('<!doctype html><title>new</title><p>rewritten</p>'); document.close(); }")
    wait_until(page, "() => !!document.querySelector('proactive-widget')")
    assert shown_ids(page) == ["hello"]
    page.keyboard.press("Escape")        # the widget's keydown listener is back: it dismisses the card
    sync(page)
    assert shown_ids(page) == []
    page.clock.run_for(20_000)
    sync(page)
    assert shown_ids(page) == ["later"]
    warned = proactive_warnings(guard, "document.open")
    assert len(warned) == 1, guard.warnings()


def test_a_geo_answer_that_is_not_json_gives_one_warning(site, page, guard):
    bundle = site.publish(simple_messages(HELLO), "geohtml")
    page.route("**/api/geo", lambda route: route.fulfill(status=200, content_type="text/html", body="<html>portal</html>",
                                                          headers={"access-control-allow-origin": "*"}))
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_ready(page)
    wait_until(page, "() => true")
    time.sleep(0.5)
    warned = proactive_warnings(guard, "geo")
    assert len(warned) == 1 and "not JSON" in warned[0], guard.warnings()


def test_a_page_that_defines_proactive_widget_first_gets_one_clear_warning(site, page, guard):
    bundle = site.publish(simple_messages(HELLO), "predefined")
    head = """<script>customElements.define('proactive-widget', class extends HTMLElement {
        constructor() { super(); this.attachShadow({ mode: 'closed' }).textContent = 'the page own'; } });</script>"""
    page.clock.install(time=T0)
    page.goto(site.page(tag=site.tag(bundle=bundle), head=head))
    wait_ready(page)
    page.clock.run_for(3000)
    sync(page)
    assert guard.warnings() and all("proactive-widget" in w for w in guard.warnings()), guard.warnings()
    assert len(guard.warnings()) == 1, guard.warnings()
    shown = page.evaluate("""() => [...document.querySelectorAll('*')].filter(e => e.shadowRoot)
        .flatMap(e => [...e.shadowRoot.querySelectorAll('[data-message-id]')].map(x => x.dataset.messageId))""")
    assert shown == ["hello"]


def test_a_sandboxed_iframe_without_same_origin_names_the_opaque_origin(site, page, guard):
    bundle = site.publish(simple_messages(HELLO), "sandboxed")
    inner = site.page(tag=site.tag(bundle=bundle), name="sandboxed-inner")
    outer = site.page(tag="", body=f'<iframe sandbox="allow-scripts" src="{inner}" width=600 height=400></iframe>',
                      name="sandboxed-outer")
    # The browser's own lines for the refused requests ("Origin: null" is not on the widget's allow-list).
    guard.allowed_console_errors.extend(["blocked by CORS policy", "net::ERR_FAILED"])
    page.goto(outer)
    frame = page.frames[1]
    deadline = time.time() + 30
    while time.time() < deadline and not guard.warnings():
        page.wait_for_timeout(100)     # (console events arrive only while the sync API waits)
    page.wait_for_timeout(1000)
    assert frame.evaluate("() => self.origin") == "null"
    warned = guard.warnings()
    assert any("opaque origin" in w and "allow-same-origin" in w for w in warned), warned
    assert not any("Content-Security-Policy" in w for w in warned), warned

"""The walking skeleton, end to end: tag → worker → signed bundle → message."""

from __future__ import annotations

from conftest import T0, shown_ids, simple_messages, sync, wait_ready


def test_message_appears_after_time_on_page_and_not_before(site, page, guard):
    site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 5}]}))
    url = site.page()
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(url)
    status = wait_ready(page)
    assert status["ready"] and status["mode"] == "worker", (status, guard.console)
    assert shown_ids(page) == []
    # The page started at navigation start (a few ms before the loader ran).
    elapsed = page.evaluate("Date.now()") - status["navStart"]
    page.clock.run_for(5000 - elapsed)  # exactly 5 s on the page: "greater 5" is still false
    sync(page)
    assert shown_ids(page) == []
    page.clock.run_for(1)  # 5.001 s
    sync(page)
    assert shown_ids(page) == ["hello"]
    assert page.locator('proactive-widget [data-message-id="hello"]').inner_text().strip().startswith("hello")


def test_host_page_and_widget_are_on_different_origins(site, page, guard):
    site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]}))
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(site.page())
    wait_ready(page)
    page_origin = page.evaluate("location.origin")
    assert page_origin == site.site_origin != site.widget_origin
    widget_requests = [u for u in requests if u.startswith(site.widget_origin)]
    assert any(u.endswith("/loader.js") for u in widget_requests)
    assert any(u.endswith("pyodide.asm.wasm") for u in widget_requests)
    assert any("/bundles/test.json" in u for u in widget_requests)
    assert not guard.foreign_requests


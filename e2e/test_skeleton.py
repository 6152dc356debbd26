"""The walking skeleton, end to end: tag → worker → signed bundle → message."""

from __future__ import annotations

from conftest import T0, shown_ids, simple_messages, wait_ready


def test_message_appears_after_time_on_page_and_not_before(site, proactive, guard):
    # Through the QA kit (proactive/pytest_plugin.py), its first user: a paused
    # clock, and every step waits until the runtime has handled it.
    site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 5}]}))
    proactive.install(time=T0).visit(site.page())
    status = proactive.status()
    assert status["ready"] and status["mode"] == "worker", (status, guard.console)
    assert shown_ids(proactive.page) == []
    # Time on page counts from navigation start (a few ms before the loader ran).
    proactive.advance_to(5)  # exactly 5 s on the page: "greater 5" is still false
    assert shown_ids(proactive.page) == [] and proactive.shown() == []
    proactive.expect_shown("hello", within=0.001)  # 5.001 s
    assert [(s["message"], s["t"]) for s in proactive.status()["shown"]] == [("hello", status["navStart"] + 5001)]
    assert shown_ids(proactive.page) == ["hello"]
    assert proactive.page.locator('proactive-widget [data-message-id="hello"]').inner_text().strip().startswith("hello")


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


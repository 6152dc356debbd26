"""Issue 22, item 1: returning visitors keep their messages with the widget's
host down. A persistent browser profile visits a page; the widget's origin
then stops answering; the visitor comes back in a new browser session, after
the loader's max-age ran out: the message shows from the browser's cache,
with one [proactive] warning that says so."""

from __future__ import annotations

import time

import pytest

from conftest import CHROMIUM, CHROMIUM_FLAGS, PageGuard, _Server, shown_ids, simple_messages, wait_ready
from server_stub import static
from server_stub.app import create_widget_app, script_tag

# Refused connections are the browser's own network log lines, not the widget's.
NETWORK_DOWN = ("net::ERR_CONNECTION_REFUSED", "Failed to load resource")


def _wait_shown(page, message: str, timeout: float = 40.0) -> list[str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        ids = shown_ids(page)
        if message in ids:
            return ids
        time.sleep(0.1)
    raise AssertionError(f"{message} not shown; status: {page.evaluate('() => window.proactive && proactive(`status`)')}")


def _visit(browser_type, profile, url, allowed):
    context = browser_type.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    guard = PageGuard(allowed)
    guard.allowed_console_errors.extend(NETWORK_DOWN)
    page = context.pages[0] if context.pages else context.new_page()
    guard.attach(page)
    context.on("request", guard.on_request)
    page.goto(url)
    return context, page, guard


def test_a_returning_visitor_sees_the_message_with_the_widget_origin_down(site, browser_type, tmp_path, monkeypatch):
    # The loader is fresh for 1 s here (300 s by default), so the second visit
    # takes the stale-while-revalidate path, the one a real visitor takes.
    monkeypatch.setattr(static, "LOADER_MAX_AGE", 1)
    widget = _Server(create_widget_app(site.static, site.bundles, allowed_origins=[site.site_origin],
                                       db_path=tmp_path / "endpoint.db"), "127.0.0.1")
    origin = f"http://127.0.0.1:{widget.port}"
    site.publish(simple_messages({"id": "welcome-back", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}),
                 name="offline")
    url = site.page(tag=script_tag(origin, f"{origin}/bundles/offline.json", site.public_key), name="offline")
    profile = tmp_path / "profile"
    allowed = [origin, site.site_origin]
    try:
        context, page, guard = _visit(browser_type, profile, url, allowed)
        wait_ready(page)
        _wait_shown(page, "welcome-back")
        first_warnings = guard.warnings()
        context.close()
        guard.check()
    finally:
        widget.stop()

    time.sleep(2)   # the loader's max-age is over: the browser must revalidate it, and cannot
    context, page, guard = _visit(browser_type, profile, url, allowed)
    try:
        assert _wait_shown(page, "welcome-back") == ["welcome-back"]
        status = page.evaluate("() => proactive('status')")
        assert status["ready"] and status["bundle"]["version"] == 1
        time.sleep(1)   # let the late fetches fail, and their warnings come
        new = [w for w in guard.warnings() if w not in first_warnings]
        assert len(new) == 1, new
        assert "could not be fetched" in new[0] and "using the cached bundle (version 1)" in new[0]
        guard.check()
    finally:
        context.close()


@pytest.mark.parametrize("path, expected", [
    ("loader.js", "public, max-age=300, stale-while-revalidate=604800, stale-if-error=604800"),
    ("shell-0123456789ab.mjs", "public, max-age=31536000, immutable"),
    ("shell.mjs", "no-cache"),
])
def test_cache_headers_by_kind_of_file(path, expected):
    assert static.cache_control(path) == expected

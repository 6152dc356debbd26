"""A site owner's first hour in the browser: testing their own tag locally."""

from __future__ import annotations

import functools
import re
import http.server
import threading

import pytest


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

"""The loader captures signals from the first millisecond but loads the
shell (its modules, then the bundle) only at the page's load event, so the
widget never competes with the page's own resources; a page whose load
event never comes gets it 10 s after the loader ran. Real Chromium, two
origins."""

from __future__ import annotations

import time

from conftest import shown_ids, simple_messages, wait_ready

SLOW_MS = 1500
SHELL = "/shell"  # shell.mjs under its content-hashed name


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


def _held_image(page, site) -> list:
    """`/slow.png` on the site, held until the test fulfils it (or never):
    the page's load event waits for it."""
    held: list = []
    page.route(f"{site.site_origin}/slow.png*", lambda route: held.append(route))
    return held


def _release(held: list) -> None:
    for route in held:
        route.fulfill(status=200, body=PNG, headers={"Content-Type": "image/png", "Cache-Control": "no-store"})


def test_the_shell_loads_at_the_load_event_and_signals_before_it_count(site, page, guard):
    site.publish(simple_messages({"id": "early", "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]}), "afterload")
    requests = []
    page.on("request", lambda r: requests.append((time.monotonic(), r.url)))
    held = _held_image(page, site)
    url = site.page('<img src="/slow.png" alt="">', tag=site.tag(bundle=site.bundle_url("afterload")))
    page.goto(url, wait_until="domcontentloaded")
    # The loader ran (its queue stub is there) and the page has not loaded
    # (its image is held): no shell module and no bundle requested yet.
    page.wait_for_function("() => typeof window.proactive === 'function'")
    deadline = time.time() + 10
    while not held:
        assert time.time() < deadline, "the page never asked for its image"
        page.wait_for_timeout(50)
    page.wait_for_timeout(SLOW_MS)
    assert page.evaluate("document.readyState") != "complete"
    assert not [u for _, u in requests if SHELL in u or "/bundles/" in u], requests
    released = time.monotonic()
    _release(held)
    page.wait_for_load_state("load")
    status = wait_ready(page)
    assert status["ready"], status
    assert min(t for t, u in requests if SHELL in u) >= released, "the shell was requested before the page's load event"
    # The page view the loader captured at navigation is the engine's first
    # signal: the message that can show at once shows.
    assert shown_ids(page) == ["early"]
    assert not guard.errors, guard.errors


def test_a_page_whose_load_event_never_comes_gets_the_shell_after_10_s(site, page, guard):
    site.publish(simple_messages({"id": "late", "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]}), "neverload")
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    _held_image(page, site)  # never released: no load event
    page.clock.install()
    page.goto(site.page('<img src="/slow.png" alt="">', tag=site.tag(bundle=site.bundle_url("neverload"))), wait_until="domcontentloaded")
    page.wait_for_function("() => typeof window.proactive === 'function'")
    page.clock.run_for(9_000)
    page.wait_for_timeout(300)
    assert page.evaluate("document.readyState") != "complete"
    assert not [u for u in requests if SHELL in u], requests
    page.clock.run_for(1_500)
    deadline = time.time() + 20
    while not [u for u in requests if SHELL in u]:
        assert time.time() < deadline, "no shell 10 s after the loader ran on a page that never loads"
        page.wait_for_timeout(100)
    # The shell does not wait for the load event again: the loader already
    # did (10 s). The runtime is started within seconds, not 10 s later, and
    # the message that can show at once shows.
    started = time.time()
    status = None
    while not (status and status.get("mode")):
        assert time.time() - started < 6, f"the runtime did not start after the loader's 10 s: {status}"
        page.wait_for_timeout(100)
        status = page.evaluate("() => window.proactive.__target ? window.proactive('status', { boot: false }) : null")
    page.clock.resume()
    wait_ready(page)
    assert shown_ids(page) == ["late"]
    assert page.evaluate("document.readyState") != "complete"
    assert not guard.errors, guard.errors


def test_shutdown_before_the_load_event_starts_nothing(site, page, guard):
    """`proactive('shutdown')` called while the page loads: the shell, when
    it arrives, starts nothing (no bundle, no engine) and undoes the
    loader's listeners."""
    site.publish(simple_messages({"id": "no", "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]}), "shutearly")
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    held = _held_image(page, site)
    page.goto(site.page('<img src="/slow.png" alt="">', tag=site.tag(bundle=site.bundle_url("shutearly"))), wait_until="domcontentloaded")
    page.wait_for_function("() => typeof window.proactive === 'function'")
    page.evaluate("() => window.proactive('shutdown')")
    deadline = time.time() + 10
    while not held:
        assert time.time() < deadline, "the page never asked for its image"
        page.wait_for_timeout(50)
    _release(held)
    page.wait_for_load_state("load")
    deadline = time.time() + 10
    while not [u for u in requests if SHELL in u]:
        assert time.time() < deadline, "no shell after the load event"
        page.wait_for_timeout(50)
    page.wait_for_timeout(1500)
    assert not [u for u in requests if "/bundles/" in u or "pyodide" in u], requests
    assert page.locator("proactive-widget").count() == 0
    assert page.evaluate("() => window.proactive('status')") is None

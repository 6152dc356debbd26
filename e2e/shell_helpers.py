"""Helpers shared by the shell's e2e tests (e2e/test_shell_*.py)."""

from __future__ import annotations

import time

# Playwright's "Pixel 7" descriptor, spelled out so that a test can use it in
# @pytest.mark.browser_context_args.
PIXEL_7 = {
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Mobile Safari/537.36",
    "viewport": {"width": 412, "height": 839},
    "device_scale_factor": 2.625,
    "is_mobile": True,
    "has_touch": True,
}

TALL = '<div style="height:5000px">tall page</div>'


def collect(page, *names: str) -> None:
    """Record the widget's public events NAME in window.__events[NAME]."""
    page.evaluate(
        """(names) => { window.__events = window.__events || {};
             for (const n of names) { __events[n] = __events[n] || [];
               proactive('on', n, (e) => __events[n].push(e)); } }""",
        list(names),
    )


def events(page, name: str) -> list:
    return page.evaluate("(n) => (window.__events && __events[n]) || []", name)


def scroll_to(page, y: int) -> None:
    """Scroll and wait for the scroll event (so the widget has seen it)."""
    page.evaluate(
        """(y) => new Promise((resolve) => {
             if (Math.round(scrollY) === y) return resolve();
             addEventListener('scroll', () => resolve(), { once: true });
             scrollTo(0, y); })""",
        y,
    )


def leave(page, x: int, y: int) -> None:
    """Move the real pointer into the page, then out of the window at (x, y)."""
    page.mouse.move(300, 300)
    page.mouse.move(x, y)


def set_visibility(page, state: str) -> None:
    """Headless Chromium never hides a page (minimising, a second tab in front
    and Page.setWebLifecycleState all leave it "visible"), so flip
    document.visibilityState the way a tab switch does and fire the event."""
    page.evaluate(
        """(state) => {
             Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
             Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' });
             document.dispatchEvent(new Event('visibilitychange')); }""",
        state,
    )


def explain(page) -> dict:
    return page.evaluate("() => proactive('explain')")


def observed(page, message_id: str, rule: str | None = None):
    """The observed value of a message's (first) condition, from explain."""
    entry = explain(page)[message_id]
    for c in entry["conditions"]:
        if rule is None or c["rule"] == rule:
            return c["observed"]
    raise KeyError(rule)


def wait_shell(page, timeout: float = 20.0) -> None:
    """Wait until the shell answers (it loads before the runtime is ready)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if page.evaluate("() => !!(window.proactive && window.proactive('status'))"):
            return
        time.sleep(0.03)
    raise AssertionError("the shell did not start")


def wait_until(page, script: str, arg=None, timeout: float = 20.0):
    """Poll `script` (a function) with evaluate until it returns truthy (works
    under a strict CSP, where wait_for_function is blocked)."""
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = page.evaluate(script, arg)
        if value:
            return value
        time.sleep(0.03)
    raise AssertionError(f"timed out waiting for {script}: {value}")

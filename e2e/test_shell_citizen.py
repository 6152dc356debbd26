"""A good citizen on any page: a strict CSP, hostile CSS, host scripts that
throw, one global and one element, worker mode by default and the main
thread when asked or when workers are unavailable."""

from __future__ import annotations

import pytest
from conftest import T0, shown_ids, simple_messages, sync, wait_ready
from shell_helpers import TALL, collect, events, leave

HELLO = {"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 2}]}


def csp_for(site) -> str:
    w = site.widget_origin
    return f"script-src 'self' {w} 'wasm-unsafe-eval'; worker-src blob: {w}; connect-src 'self' {w}"


@pytest.mark.parametrize("mode", ["worker", "main"])
def test_strict_content_security_policy(site, page, guard, mode):
    bundle = site.publish(simple_messages(HELLO), "csp")
    url = site.page(tag=site.tag(bundle=bundle, data_mode=mode if mode == "main" else None),
                    headers={"Content-Security-Policy": csp_for(site)})
    page.clock.install(time=T0)
    page.goto(url)
    status = wait_ready(page)                      # polls with evaluate: wait_for_function is blocked here
    assert status["ready"] and status["mode"] == mode, status
    # the policy is in force: an inline script is refused
    guard.allowed_console_errors.append("Executing inline script violates the following Content Security Policy")
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = 1'; document.head.append(s); }")
    assert page.evaluate("window.inlineRan") is None
    page.clock.run_for(3000)
    sync(page)
    assert shown_ids(page) == ["hello"]


# A global reset, then everything a stylesheet can throw at the widget's own
# element (it matches `*`), and inherited properties that would leak into it
# through <body>. (Effects on an ancestor's whole box — opacity, filter,
# transform, clip on <html>/<body> — hit every fixed-position widget alike:
# docs/embedding.md says so.)
HOSTILE_CSS = """<style>
* { all: unset !important; }
*:not(html):not(body) { display: inline !important; position: static !important; visibility: hidden !important;
    opacity: .05 !important; z-index: -5 !important; width: 0 !important; height: 0 !important; max-width: 0 !important;
    overflow: hidden !important; transform: scale(.2) !important; filter: blur(9px) !important;
    clip-path: inset(50%) !important; margin: 300px !important; pointer-events: none !important;
    box-sizing: content-box !important; writing-mode: vertical-rl !important; }
html, body { display: block !important; height: 100% !important; }
body { font-size: 48px !important; line-height: 0 !important;
    color: transparent !important; letter-spacing: 30px !important;
    text-transform: uppercase !important; visibility: hidden !important; cursor: none !important; }
</style>"""

HOSTILE_SCRIPTS = """<script>
Object.prototype.hostPollution = 'yes';
Array.prototype.hostExtra = function () { return 'extra'; };
window.addEventListener('scroll', function () { throw new Error('host boom in scroll'); });
document.addEventListener('mouseout', function () { throw new Error('host boom in mouseout'); });
window.addEventListener('popstate', function () { throw new Error('host boom in popstate'); });
Promise.reject(new Error('host rejection'));
throw new Error('host boom at load');
</script>"""

HOST_ROUTER = """<script>
// a router that patches history after the widget did
(function () { var push = history.pushState;
  history.pushState = function () { var r = push.apply(this, arguments); window.routed = (window.routed || 0) + 1; return r; }; })();
</script>"""


def test_hostile_css_and_host_scripts_that_throw(site, page, guard):
    bundle = site.publish(simple_messages({"id": "exit", "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 1}]},
                                          HELLO), "hostile")
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(TALL + HOST_ROUTER, head=HOSTILE_CSS + HOSTILE_SCRIPTS, tag=site.tag(bundle=bundle)))
    wait_ready(page)
    collect(page, "exit_intent", "page_view")
    page.clock.run_for(1500)
    leave(page, 300, -5)                           # the host's mouseout listener throws first
    sync(page)
    assert [e["how"] for e in events(page, "exit_intent")] == ["pointer"]
    assert shown_ids(page) == ["exit"]
    page.evaluate("history.pushState({}, '', '/routed')")
    assert page.evaluate("window.routed") == 1
    assert [e["url"].rsplit("/", 1)[1] for e in events(page, "page_view")] == ["routed"]

    host = page.evaluate("""() => { const el = document.querySelector('proactive-widget');
        const s = getComputedStyle(el);
        const card = el.shadowRoot.querySelector('[data-message-id="exit"]');
        const box = card.getBoundingClientRect();
        const hit = el.shadowRoot.elementFromPoint(box.x + box.width / 2, box.y + 10);
        return { position: s.position, visibility: s.visibility, opacity: s.opacity, display: s.display,
                 overflow: s.overflow, zIndex: s.zIndex, pointer: s.pointerEvents, fontSize: s.fontSize,
                 writing: s.writingMode, spacing: s.letterSpacing, textTransform: s.textTransform,
                 box: [box.x, box.y, box.width, box.height], hitInCard: !!hit && card.contains(hit),
                 viewport: [innerWidth, innerHeight] }; }""")
    assert (host["position"], host["visibility"], host["opacity"], host["display"], host["overflow"]) == \
        ("fixed", "visible", "1", "block", "visible"), host
    assert (host["pointer"], host["fontSize"], host["writing"], host["spacing"], host["textTransform"]) == \
        ("auto", "14px", "horizontal-tb", "normal", "none"), host
    assert int(host["zIndex"]) > 2_000_000_000, host
    x, y, w, h = host["box"]
    vw, vh = host["viewport"]
    assert 200 <= w <= 400 and 30 <= h <= 400 and x + w <= vw and y + h <= vh and x > vw / 2, host
    assert host["hitInCard"], host
    page.locator('proactive-widget [data-message-id="exit"] button[aria-label="Dismiss message"]').click()
    sync(page)
    assert shown_ids(page) == []

    # Shutdown leaves the router's history patch in place (ours becomes a pass-through).
    page.evaluate("proactive('shutdown')")
    page.evaluate("history.pushState({}, '', '/after-shutdown')")
    assert page.evaluate("window.routed") == 2 and len(events(page, "page_view")) == 1
    assert page.evaluate("location.pathname") == "/after-shutdown"

    host_errors = [e for e in guard.errors if "host " in e]
    assert any("host boom at load" in e for e in host_errors) and any("host rejection" in e for e in host_errors)
    assert any("host boom in mouseout" in e for e in host_errors)
    guard.errors[:] = [e for e in guard.errors if e not in host_errors]   # the rest must be empty


ONE_GLOBAL = """
(() => {
  const before = new Set(Object.getOwnPropertyNames(window));
  Object.defineProperty(window, '__newGlobals', { value: () =>
    Object.getOwnPropertyNames(window).filter((n) => !before.has(n) && n !== '__newGlobals' && !n.startsWith('__pw')) });
})();
"""


def test_one_global_one_element_no_other_nodes(site, page, guard):
    bundle = site.publish(simple_messages(HELLO), "citizen")
    page.add_init_script(ONE_GLOBAL)
    page.clock.install(time=T0)
    page.goto(site.page("<p>content</p>", tag=site.tag(bundle=bundle)))
    wait_ready(page)
    page.clock.run_for(3000)
    sync(page)
    assert shown_ids(page) == ["hello"]
    assert page.evaluate("__newGlobals()") == ["proactive"]
    tags = page.evaluate("[...document.querySelectorAll('*')].map((e) => e.tagName.toLowerCase())")
    assert tags == ["html", "head", "meta", "title", "script", "body", "h1", "p", "proactive-widget"], tags
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("[...document.styleSheets].length") == 0


def test_main_thread_mode_keeps_exact_time(site, page, guard):
    bundle = site.publish(simple_messages(HELLO), "main")
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(tag=site.tag(bundle=bundle, data_mode="main")))
    status = wait_ready(page)
    assert status["mode"] == "main" and page.workers == []
    elapsed = page.evaluate("Date.now()") - status["navStart"]
    page.clock.run_for(2000 - elapsed)
    sync(page)
    assert shown_ids(page) == []
    page.clock.run_for(1)
    sync(page)
    assert shown_ids(page) == ["hello"]


def test_main_thread_when_workers_are_unavailable(site, page, guard):
    bundle = site.publish(simple_messages(HELLO), "noworker")
    page.add_init_script("delete window.Worker;")
    page.clock.install(time=T0)
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    status = wait_ready(page)
    assert status["mode"] == "main" and page.workers == []
    page.clock.run_for(3000)
    sync(page)
    assert shown_ids(page) == ["hello"]


def test_worker_refused_by_the_policy_falls_back_to_the_main_thread(site, page, guard):
    bundle = site.publish(simple_messages(HELLO), "nocspworker")
    w = site.widget_origin
    policy = f"script-src 'self' {w} 'wasm-unsafe-eval'; worker-src {w}; connect-src 'self' {w}"   # no blob:
    guard.allowed_console_errors.append("violates the following Content Security Policy directive: \"worker-src")
    page.clock.install(time=T0)
    page.goto(site.page(tag=site.tag(bundle=bundle), headers={"Content-Security-Policy": policy}))
    status = wait_ready(page)
    assert status["ready"] and status["mode"] == "main", status
    assert len([w for w in guard.warnings() if "main thread" in w]) == 1, guard.warnings()
    page.clock.run_for(3000)
    sync(page)
    assert shown_ids(page) == ["hello"]

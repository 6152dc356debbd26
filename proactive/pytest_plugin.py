"""Test a site's auto messages with Playwright: the `proactive` fixture.

    def test_pricing_help(proactive):
        proactive.install()                    # paused clock, fresh visitor
        proactive.visit("/pricing", utm={"campaign": "spring"})
        proactive.expect_shown("pricing-help", within=60)

The fixture drives pytest-playwright's `page` on any site that embeds the
widget (pass `--base-url https://staging.example.com`). Time moves only when
the test says so (Playwright's clock, paused), so a 40-second rule takes
milliseconds to test; a failed expectation says why, from the engine's live
trace in the page:

    pricing-help not shown within 60 s: time_on_page greater 40 → false
    (observed 12.0 s); country equals DE → unknown (no geo)

Installed with the package and registered through the `pytest11` entry
point, so it is loaded in every pytest run: importing it costs nothing
(standard library and pytest only; Playwright is reached through the page).
See docs/qa.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import secrets
import time as _time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

__all__ = ["Proactive", "describe_condition", "describe_gate", "why_not", "with_utm"]

STORAGE_PREFIX = "proactive:v1:"  # v = constants.RECORD_VERSION (tests/test_constants.py)
GEO_TEST_HEADER = "X-Proactive-Test-Geo"
UTM_FIELDS = ("campaign", "content", "medium", "source", "term")
DAY_MS = 86_400_000
VISIT_GAP_MS = 30 * 60 * 1000  # = widget/runtime/constants.py (this plugin must not import the widget; tests/test_constants.py)
MAX_STEPS = 10_000

# The failure messages' words (also `proactive simulate --explain`'s and the studio's).
from proactive.explain_words import (UNKNOWN_BECAUSE, _duration, _seconds, _value, decisive,  # noqa: E402,F401
                                     describe_condition, describe_entry, describe_gate, why_not)

def pytest_addoption(parser):
    parser.addini("proactive_timeout", "seconds to wait for the Proactive widget to be ready (default 30)",
                  default="30")


@pytest.fixture
def proactive(request, page):
    """The Proactive QA driver bound to pytest-playwright's `page`."""
    timeout = float(request.config.getini("proactive_timeout") or 30)
    yield Proactive(page, new_context=lambda **kw: request.getfixturevalue("new_context")(**kw), timeout=timeout)


# -- the driver --------------------------------------------------------------------

class _Snapshot:
    """One synchronised look at the page: its clock and the widget's status."""

    def __init__(self, raw: dict):
        self.now: int = raw["now"]
        self.status: dict = raw.get("status") or {}
        self.rendered: list[str] = raw.get("rendered") or []
        # This page's start: the document's navigation start, or the last SPA
        # route change (a new page for time_on_page; status.navStart stays the
        # document's).
        nav = self.status.get("navStart")
        self.page_start = raw.get("pageStart") if raw.get("pageStart") is not None else nav
        self.page_index = raw.get("pageIndex") or 0

    def _this_page(self) -> list[dict]:
        return (self.status.get("shown") or [])[self.page_index:]

    @property
    def shown(self) -> list[str]:
        return [s["message"] for s in self._this_page()]

    def shown_at(self, message_id: str) -> int | None:
        for s in self._this_page():
            if s.get("message") == message_id:
                return s.get("t")
        return None


_SNAPSHOT_JS = """async () => {
  const p = window.proactive;
  if (p && typeof p.__target === "function") await p("sync");
  const el = document.querySelector("proactive-widget");
  const rendered = el && el.shadowRoot
    ? [...el.shadowRoot.querySelectorAll("[data-message-id]")].map((e) => e.dataset.messageId) : [];
  const live = p && typeof p.__target === "function";
  if (live && !window.__proactiveQaPages) {  // SPA route changes: the page's start moves
    window.__proactiveQaPages = { start: null };
    p("on", "page_view", (e) => {  // before the engine hears of it: what was shown is the old pages'
      if (e && typeof e.t === "number") window.__proactiveQaPages = { start: e.t, index: (p("status").shown || []).length };
    });
  }
  const pages = window.__proactiveQaPages || {};
  return { now: Date.now(), status: live ? p("status") : null, rendered,
           pageStart: pages.start ?? null, pageIndex: pages.index ?? 0 };
}"""

_READY_JS = """() => {
  const p = window.proactive;
  if (!p) return { loader: false };
  if (typeof p.__target !== "function") return { loader: true, shell: false };
  return { loader: true, shell: true, status: p("status") };
}"""

# The engine's trace; only from a live runtime (one without a bundle answers
# pings but not explain).
_EXPLAIN_JS = """async () => {
  const p = window.proactive;
  if (!p || typeof p.__target !== "function") return null;
  const s = p("status");
  if (!s || !s.ready || s.failed) return null;
  return await p("explain");
}"""

# Runs before the page's scripts, in the top frame, until a widget has started
# on this origin in this tab: forget every earlier visitor record (a fresh
# visitor) and queue the seeded record, if any, before the loader arrives.
_PREPARE_JS = """(() => { try {
  if (window.top !== window) return;
  const flag = "proactive-qa:" + %(nonce)s;
  if (sessionStorage.getItem(flag)) return;
  if (%(fresh)s) {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const key = localStorage.key(i);
      if (key && key.startsWith(%(prefix)s)) localStorage.removeItem(key);
    }
  }
  const stub = window.proactive || function () { (stub.q = stub.q || []).push(Array.prototype.slice.call(arguments)); };
  window.proactive = stub;
  const seed = %(seed)s;
  if (seed) stub("seed", seed);
  const arms = %(arms)s;
  if (arms) stub("arms", arms);
  stub("on", "ready", () => { try { sessionStorage.setItem(flag, "1"); } catch (e) {} });
} catch (e) {} })();"""


class Proactive:
    """Drives one visitor's browser tab against a site that embeds the widget.

    Setup (before `visit`): `install`, `as_visitor`, `returning_visitor`.
    Actions: `visit`, `advance`, `exit_intent`, `open_widget`, `close_widget`, `reply`.
    Checks: `expect_shown`, `expect_not_shown`, `shown`, `explain`, `why`.
    Every action waits until the widget's runtime has handled it."""

    def __init__(self, page, *, new_context=None, timeout: float = 30.0):
        self.page = page
        self.timeout = timeout
        self._new_context = new_context
        self._context_hooks: list = []
        self._start: float | None = None      # epoch seconds the clock was paused at
        self._clocked: set[int] = set()       # ids of contexts whose clock is installed
        self._fresh = True
        self._seed: dict | None = None
        self._seed_fields: dict | None = None
        self._arms: dict | None = None         # experiments' arms forced by as_visitor(arms=…)
        self._geo: tuple[str | None, str | None] | None = None
        self._geo_answers: list[dict] = []
        self._prepared: set[int] = set()      # ids of pages with the prepare script
        self.console: list[tuple[str, str]] = []
        self._watch(page)

    # -- setup -------------------------------------------------------------------
    def install(self, time=None, *, fresh: bool = True) -> "Proactive":
        """Install Playwright's clock, paused at `time` (a datetime or epoch
        seconds; default: now, to the second), and start as a fresh visitor
        (the widget's stored record `proactive:v1:*` is forgotten) unless
        `fresh=False`. Call it before `visit`; `visit` calls it if you did not."""
        if isinstance(time, _dt.datetime):
            time = time.timestamp()
        start = float(math.floor(_time.time()) if time is None else time)
        if id(self.page) in self._prepared:
            raise RuntimeError("install() comes before the first visit() of this tab")
        self._fresh = fresh
        context = self.page.context
        if id(context) in self._clocked:  # installed already (e.g. by an autouse fixture): move it
            if start < self._start:
                raise ValueError("install(time=…) cannot move the clock back: call it once per test, "
                                 "before the other calls")
            context.clock.pause_at(start)
            self._start = start
            return self
        self._start = start
        self._install_clock(context)
        return self

    def as_visitor(self, language: str | None = None, user_agent: str | None = None,
                   country: str | None = None, city: str | None = None, *,
                   mobile: bool = False, arms: dict | None = None) -> "Proactive":
        """Be a visitor with this browser language (e.g. "de-DE") and user
        agent (and, with `mobile=True`, a phone's touch screen and viewport) —
        a new browser context with those options, so navigator and HTTP
        headers agree — and from this country/city, through the endpoint's
        test override (the `X-Proactive-Test-Geo` request header, honoured
        only by an endpoint started with `--test-geo`). `arms` forces
        experiments' arms: `{"plans": "hand"}` (a variant id, or "holdout")."""
        if arms is not None:
            if id(self.page) in self._prepared:
                raise RuntimeError("as_visitor(arms=…) comes before the first visit() of this tab")
            if not isinstance(arms, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in arms.items()):
                raise TypeError("as_visitor(arms=…) takes {message id: arm id}")
            self._arms = dict(arms)
        if language or user_agent or mobile:
            options = {}
            if language:
                options["locale"] = language
            if user_agent:
                options["user_agent"] = user_agent
            if mobile:
                options.update(is_mobile=True, has_touch=True, viewport={"width": 390, "height": 844})
            if self._new_context is None:
                raise RuntimeError("as_visitor(language=…, user_agent=…) needs pytest-playwright's new_context")
            context = self._new_context(**options)
            for hook in self._context_hooks:
                hook(context)
            self.page = context.new_page()
            self._watch(self.page)
            if self._start is not None:
                self._install_clock(context)
        if country is not None or city is not None:
            self._geo = (country, city)
            self._route_geo(self.page.context)
        return self

    def returning_visitor(self, visits: int = 3, last_visit_days_ago: float = 2,
                          invitations_sent: int = 1, **record) -> "Proactive":
        """Seed the visitor record so that the next `visit` is this visitor's
        visit number `visits` (the `visits` rule observes it), the previous
        one `last_visit_days_ago` days before, after `invitations_sent`
        invitations. Other record fields may be given too (e.g. `chat=True`,
        `rating="great"`). Call it before `visit`."""
        if id(self.page) in self._prepared:
            raise RuntimeError("returning_visitor() comes before the first visit() of this tab")
        if visits < 2:
            raise ValueError("a returning visitor is on visit 2 or later (visits counts this visit too); "
                             "a first visit is what install() gives")
        self._seed_fields = {"visits": visits, "last_visit_days_ago": last_visit_days_ago,
                             "invitations_sent": invitations_sent, **record}
        return self

    def on_new_context(self, hook) -> "Proactive":
        """Call `hook(context)` for each browser context `as_visitor` creates
        (to route requests, add cookies, or watch for errors)."""
        self._context_hooks.append(hook)
        return self

    # -- actions -----------------------------------------------------------------
    def visit(self, url: str, *, utm: dict | None = None, referrer: str | None = None,
              wait: bool = True) -> "Proactive":
        """Open `url` (relative to --base-url) as the visitor, with UTM
        parameters added to it (`{"campaign": "spring"}` or `{"utm_campaign": …}`)
        and this referrer, then wait until the widget is ready (`wait=False`:
        call `wait_ready()` yourself, e.g. after accepting a consent banner
        that loads the widget)."""
        __tracebackhide__ = True
        if self._start is None:
            self.install()
        self._prepare(self.page)
        self.page.goto(with_utm(url, utm), referer=referrer)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> dict:
        """Wait (in real time; the page's clock stays paused) until the
        widget has started, verified its bundle and handled everything."""
        __tracebackhide__ = True
        deadline = _time.monotonic() + self.timeout
        probe = {}
        while _time.monotonic() < deadline:
            try:
                probe = self.page.evaluate(_READY_JS)
            except Exception as exc:  # noqa: BLE001 - the site navigated (a redirect): look again
                if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                    raise
                _time.sleep(0.05)
                continue
            status = probe.get("status") or {}
            if status.get("ready") or status.get("failed"):
                self._snapshot()  # syncs, and starts following SPA route changes
                return status
            _time.sleep(0.05)
        if not probe.get("loader"):
            raise AssertionError(
                f"no Proactive widget on {self.page.url}: window.proactive is missing after "
                f"{_duration(self.timeout)} (does the page embed the widget's script tag?)"
                + self._warnings_text())
        raise AssertionError(f"the Proactive widget on {self.page.url} was not ready after "
                             f"{_duration(self.timeout)}: {probe}" + self._warnings_text())

    def advance(self, seconds: float) -> "Proactive":
        """Let `seconds` pass on the page's clock, stopping at each of the
        widget's wake-ups so every decision happens at its exact instant."""
        self._run(self._snapshot().now + _ms(seconds))
        return self

    def advance_to(self, seconds_on_page: float) -> "Proactive":
        """Let time pass until the current page has been open `seconds_on_page`
        seconds (counted from its navigation start, as `time_on_page` is)."""
        __tracebackhide__ = True
        snap = self._snapshot()
        target = snap.page_start + _ms(seconds_on_page)
        if target < snap.now:
            raise ValueError(f"advance_to({seconds_on_page:g}): the page is already "
                             f"{_seconds((snap.now - snap.page_start) / 1000)} s old")
        self._run(target)
        return self

    def exit_intent(self) -> "Proactive":
        """Move the real mouse up and out through the top edge of the window.
        As for a real visitor, the widget ignores it in the first second
        after the page loaded and right after a scroll."""
        size = self.page.viewport_size or {"width": 1280, "height": 720}
        x = size["width"] // 2
        self.page.mouse.move(x, min(200, size["height"] // 2))
        self.page.mouse.move(x, 2, steps=4)
        self.page.mouse.move(x, -20)
        self._snapshot()
        return self

    def leave(self, seconds: float) -> "Proactive":
        """The visitor goes elsewhere (another tab or app) for `seconds`,
        then comes back to this page: the page is hidden, the clock runs,
        and the page is shown again. A visit ends 30 minutes after the last
        moment a page of the site was shown (docs/rules.md, "Visits"), so
        `leave(40 * 60)` then `visit(...)` starts a new visit, while
        `advance(40 * 60)` (reading on this page) then `visit(...)` does not."""
        self._visibility("hidden")
        self.advance(seconds)
        self._visibility("visible")
        return self

    def _visibility(self, state: str) -> None:
        self.page.evaluate("""(state) => {
            Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
            Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' });
            document.dispatchEvent(new Event('visibilitychange')); }""", state)
        self._snapshot()

    def open_widget(self) -> "Proactive":
        """Open the chat widget (the site's `proactive('open')`)."""
        self.page.evaluate("() => window.proactive('open')")
        self._snapshot()
        return self

    def close_widget(self) -> "Proactive":
        """Close the chat widget (the site's `proactive('close')`)."""
        self.page.evaluate("() => window.proactive('close')")
        self._snapshot()
        return self

    def dismiss(self, message_id: str) -> "Proactive":
        """Click the dismiss button of a shown message, as the visitor."""
        __tracebackhide__ = True
        button = self.page.locator("proactive-widget").locator(
            f'[data-message-id={json.dumps(message_id)}] button[data-action="dismiss"]')
        if button.count() == 0:
            raise AssertionError(f"dismiss(): {message_id} is not on screen with a dismiss button")
        button.first.click()
        self._snapshot()
        return self

    def reply(self, text: str) -> "Proactive":
        """Type `text` into the widget's reply box and send it, as the visitor."""
        __tracebackhide__ = True
        self.open_widget()
        box = self.page.locator("proactive-widget").locator(
            "[data-proactive-composer] textarea, [data-proactive-composer] input[type=text], textarea")
        if box.count() == 0:
            raise AssertionError("reply(): the widget shows no reply box (no textarea in proactive-widget)")
        box.first.fill(text)
        box.first.press("Enter")
        self._snapshot()
        return self

    # -- checks ------------------------------------------------------------------
    def status(self) -> dict:
        """The widget's `proactive('status')`: navStart, bundle, nextWakeup, shown, …."""
        return self._snapshot().status

    def seconds_on_page(self) -> float:
        """Time on the current page, in seconds, by the page's clock."""
        snap = self._snapshot()
        return (snap.now - snap.page_start) / 1000

    def shown(self) -> list[str]:
        """Ids of the messages shown on this page so far, in order."""
        return self._snapshot().shown

    def explain(self, message_id: str | None = None) -> dict:
        """The engine's trace, live from the page: per message its result,
        each condition (rule, op, expected, observed, result) and each gate."""
        __tracebackhide__ = True
        self._snapshot()
        trace = self.page.evaluate(_EXPLAIN_JS) or {}
        if message_id is None:
            return trace
        if message_id not in trace:
            raise AssertionError(self._unknown(message_id, trace))
        return trace[message_id]

    def why(self, message_id: str) -> str:
        """Why `message_id` is not shown right now, in one line (for a
        message reading the exit intent, at the exit's instant)."""
        entry, _ = decisive(self.explain(message_id))
        return why_not(message_id, entry)

    def expect_shown(self, message_id: str, within: float = 0) -> "Proactive":
        """Pass as soon as `message_id` is shown, letting at most `within`
        seconds pass (the clock stops at the instant it shows)."""
        __tracebackhide__ = True
        start = self._snapshot()
        snap = self._run(start.now + _ms(within), stop=lambda s: message_id in s.shown)
        if message_id in snap.shown:
            if message_id not in snap.rendered and not self._rendered(message_id):
                raise AssertionError(f"{message_id} was shown at {self._on_page(snap, snap.shown_at(message_id))} "
                                     f"but is not in the page (no [data-message-id] element in the widget)")
            return self
        trace = self._trace(message_id)
        entry, what = decisive(trace[message_id])
        at = f"at {what} ({self._on_page(snap, entry.get('at'))}): " if what else ""
        raise AssertionError(self._report(f"{message_id} not shown within {_duration(within)}: "
                                          f"{at}{why_not(message_id, entry)}", message_id, trace, snap))

    def expect_not_shown(self, message_id: str, during: float = 0) -> "Proactive":
        """Let `during` seconds pass, failing at the instant `message_id` shows."""
        __tracebackhide__ = True
        start = self._snapshot()
        trace = self._trace(message_id)  # an unknown id fails here, not silently
        if message_id in start.shown:
            raise AssertionError(self._report(
                f"{message_id} was already shown (at {self._on_page(start, start.shown_at(message_id))})",
                message_id, trace, start))
        snap = self._run(start.now + _ms(during), stop=lambda s: message_id in s.shown)
        if message_id in snap.shown:
            trace = self._trace(message_id)
            entry, _ = decisive(trace[message_id])   # at its show: its own show not yet counted
            conditions = "; ".join(describe_condition(c) for c in entry.get("conditions") or [])
            raise AssertionError(self._report(
                f"{message_id} shown after {_seconds((snap.now - start.now) / 1000)} s, expected not within "
                f"{_duration(during)}: {conditions or 'it has no conditions'}", message_id, trace, snap))
        return self

    # -- internals -----------------------------------------------------------------
    def _watch(self, page) -> None:
        page.on("console", lambda msg: self.console.append((msg.type, msg.text)))

    def _install_clock(self, context) -> None:
        if id(context) in self._clocked:
            return
        # Paused: time moves only when the test says so. Installed a second
        # early and paused at the start, so the page's time is exactly it.
        context.clock.install(time=self._start - 1)
        context.clock.pause_at(self._start)
        self._clocked.add(id(context))

    def _prepare(self, page) -> None:
        if self._seed_fields is not None:
            self._seed = self._seed_record(**self._seed_fields)
            self._seed_fields = None
        key = id(page)
        if key in self._prepared:
            return
        self._prepared.add(key)
        page.add_init_script(_PREPARE_JS % {
            "nonce": json.dumps(secrets.token_hex(8)), "fresh": "true" if self._fresh else "false",
            "prefix": json.dumps(STORAGE_PREFIX), "seed": json.dumps(self._seed),
            "arms": json.dumps(self._arms or None),
        })

    def _seed_record(self, visits, last_visit_days_ago, invitations_sent, **fields) -> dict:
        from widget.runtime.engine import new_record  # the record format, from the engine itself

        now = int(round(self._start * 1000))
        last = now - int(round(last_visit_days_ago * DAY_MS))
        new_visit = now - last >= VISIT_GAP_MS
        record = new_record()
        record.update({
            "visits": visits - 1 if new_visit else visits,
            "visit_start": last, "last_seen": last, "page_views": 1,
            "invitations_sent": invitations_sent,
            "last_invitation": last if invitations_sent else None,
        })
        unknown = set(fields) - set(record)
        if unknown:
            raise TypeError(f"returning_visitor(): unknown record fields {sorted(unknown)} "
                            f"(fields: {', '.join(sorted(record))})")
        record.update(fields)
        return record

    def _route_geo(self, context) -> None:
        if getattr(context, "_proactive_geo_routed", False):
            return
        context._proactive_geo_routed = True

        def is_geo(url: str) -> bool:
            return urlsplit(url).path.rstrip("/").endswith("/geo")

        def add_header(route, request):
            country, city = self._geo or (None, None)
            response = route.fetch(headers={**request.headers, GEO_TEST_HEADER: f"{country or ''}; {city or ''}"})
            try:
                self._geo_answers.append(response.json())
            except Exception:  # noqa: BLE001 - not JSON: reported as not honoured
                self._geo_answers.append({"status": response.status})
            route.fulfill(response=response)

        context.route(is_geo, add_header)

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(self.page.evaluate(_SNAPSHOT_JS))

    def _run(self, target: int, stop=None) -> _Snapshot:
        """Advance the paused clock to `target` (ms), one wake-up at a time,
        returning early when `stop(snapshot)` holds."""
        clock = self.page.clock
        snap = self._snapshot()
        stalled = 0
        for _ in range(MAX_STEPS):
            if stop is not None and stop(snap):
                return snap
            if snap.now >= target:
                return snap
            wake = snap.status.get("nextWakeup")
            if isinstance(wake, (int, float)) and wake <= target:
                step = max(0, int(wake) - snap.now)
                if step == 0:
                    stalled += 1
                    step = 0 if stalled < 3 else 1
                else:
                    stalled = 0
            else:
                step = target - snap.now
            clock.run_for(step)
            snap = self._snapshot()
        raise AssertionError(f"the widget asked for more than {MAX_STEPS} wake-ups before {target} ms")

    def _trace(self, message_id: str) -> dict:
        __tracebackhide__ = True
        trace = self.page.evaluate(_EXPLAIN_JS) or {}
        if message_id not in trace:
            raise AssertionError(self._unknown(message_id, trace))
        return trace

    def _unknown(self, message_id: str, trace: dict) -> str:
        status = self._snapshot().status
        if status.get("failed") or not status.get("bundle"):
            return (f"{message_id}: the widget on {self.page.url} has no bundle "
                    f"({status.get('failed') or 'not ready'})" + self._warnings_text())
        bundle = status["bundle"]
        names = ", ".join(sorted(trace)) or "none"
        return (f"{message_id} is not a message of the bundle on {self.page.url} "
                f"(site {bundle.get('site')}, version {bundle.get('version')}); its messages: {names}")

    def _rendered(self, message_id: str) -> bool:
        return bool(self.page.evaluate(
            """(id) => { const el = document.querySelector("proactive-widget");
                        return !!(el && el.shadowRoot && [...el.shadowRoot.querySelectorAll("[data-message-id]")]
                          .some((e) => e.dataset.messageId === id)); }""", message_id))

    def _on_page(self, snap: _Snapshot, t) -> str:
        nav = snap.page_start
        if t is None or nav is None:
            return "an earlier instant"
        return f"{_seconds((t - nav) / 1000)} s on the page"

    def _report(self, headline: str, message_id: str, trace: dict, snap: _Snapshot) -> str:
        bundle = snap.status.get("bundle") or {}
        entry, what = decisive(trace[message_id])   # the instant that decided it
        when = (f"{what} ({self._on_page(snap, entry.get('at'))})" if what
                else self._on_page(snap, snap.now))
        lines = [headline,
                 f"  trace at {when} ({self.page.url}, "
                 f"bundle {bundle.get('site')} v{bundle.get('version')}):"]
        lines += describe_entry(entry)
        others = snap.shown
        if others:
            lines.append(f"  shown on this page: {', '.join(others)}")
        arms = snap.status.get("arms") or {}
        if arms:
            lines.append("  experiments' arms: " + ", ".join(f"{m} = {a}" for m, a in sorted(arms.items()))
                         + ("" if snap.status.get("visitor") else " (no stored visitor id: the first variant)"))
        lines += self._geo_problems()
        return "\n".join(lines) + self._warnings_text()

    def _geo_problems(self) -> list[str]:
        if self._geo is None:
            return []
        wanted = f"as_visitor(country={self._geo[0]!r}, city={self._geo[1]!r})"
        if not self._geo_answers:
            return [f"  {wanted}: the widget asked no geo endpoint (…/geo) on this page"]
        answer = self._geo_answers[-1]
        if answer.get("source") != "test":
            return [f"  {wanted} was not honoured: the endpoint answered {json.dumps(answer, sort_keys=True)} "
                    f"(start it with --test-geo, docs/endpoint.md)"]
        return []

    def _warnings_text(self) -> str:
        warnings = [t for kind, t in self.console if kind == "warning" and t.startswith("[proactive]")]
        return ("\n  widget warnings:\n    " + "\n    ".join(warnings)) if warnings else ""


def _ms(seconds: float) -> int:
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"seconds must be a finite number >= 0, not {seconds!r}")
    return int(round(seconds * 1000))


def with_utm(url: str, utm: dict | None) -> str:
    """`url` with utm_* query parameters added (or replaced)."""
    if not utm:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {}
    for key, value in utm.items():
        name = key if key.startswith("utm_") else f"utm_{key}"
        if name[4:] not in UTM_FIELDS:
            raise ValueError(f"unknown UTM field {key!r} (one of: {', '.join(UTM_FIELDS)})")
        names[name] = str(value)
    query = [(k, v) for k, v in query if k not in names] + list(names.items())
    return urlunsplit(parts._replace(query=urlencode(query)))

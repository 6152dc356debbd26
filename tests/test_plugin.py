"""The QA kit's pytest plugin (proactive/pytest_plugin.py), run by pytest
itself (pytester): it is registered by the package, cheap to import, and a
failed expectation reads exactly as a QA engineer sees it in the report.

The pages here are not browsers: FakeWidgetPage answers the plugin's page
calls with the real rule engine (widget.runtime.engine) behind a fake clock,
the way the shell does in Chromium (one timer for the engine's next wake-up).
e2e/test_qa*.py runs the same plugin against real Chromium and Pyodide."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

FAKE_CONFTEST = '''
import json
import pytest
from proactive import publishing, pytest_plugin as plugin
from widget.runtime.engine import Engine

NAV = 1_780_000_000_000   # navigation start on the fake clock (ms)


class FakeClock:
    def __init__(self, page):
        self.page = page

    def install(self, time=None):
        self.page.now = int(time * 1000)

    def pause_at(self, time):
        self.page.now = int(time * 1000)

    def run_for(self, ms):
        self.page.run_until(self.page.now + int(ms))


class FakeContext:
    def __init__(self, page):
        self.clock = FakeClock(page)


class FakeMouse:
    """The pointer leaving through the top edge is an exit intent, as the loader reports it."""

    def __init__(self, page):
        self.page = page

    def move(self, x, y, steps=1):
        if y < 0:
            self.page.apply(self.page.engine.step([{"type": "exit_intent", "t": self.page.now}], self.page.now))


class FakeWidgetPage:
    """The widget's JS API as the plugin calls it, backed by the real engine."""

    def __init__(self, messages, widget=True, geo=None):
        self.messages, self.widget, self.geo = messages, widget, geo
        self.context = FakeContext(self)
        self.clock = self.context.clock
        self.now = 0
        self.url = "about:blank"
        self.viewport_size = {"width": 800, "height": 600}
        self.engine = None
        self.shown = []
        self.next_wakeup = None
        self.nav = None
        self.mouse = FakeMouse(self)

    def on(self, event, callback):
        pass

    def add_init_script(self, script):
        pass

    def goto(self, url, referer=None):
        self.url = url
        self.nav = self.now
        payload = json.loads(publishing.build_payload(self.messages, version=7))
        self.engine = Engine(payload, None, {"language": "en-US", "languages": ["en-US"]})
        events = [{"type": "page_view", "t": self.now, "url": url, "referrer": referer or ""}]
        if self.geo:
            events.append({"type": "geo", "t": self.now, **self.geo})
        self.apply(self.engine.step(events, self.now))

    def apply(self, result):
        for d in result["decisions"]:
            if d["action"] == "show":
                self.shown.append({"message": d["message"], "t": d["t"]})
        self.next_wakeup = result["next_wakeup"]

    def run_until(self, target):
        while self.next_wakeup is not None and self.next_wakeup <= target:
            self.now = self.next_wakeup
            self.apply(self.engine.step([{"type": "tick", "t": self.now}], self.now))
        self.now = target

    def status(self):
        return {"ready": True, "navStart": self.nav, "mode": "worker", "nextWakeup": self.next_wakeup,
                "bundle": {"site": "shop", "version": 7, "source": "fetched"}, "shown": list(self.shown)}

    def evaluate(self, script, arg=None):
        if script == plugin._READY_JS:
            return {"loader": self.widget, "shell": self.widget, "status": self.status() if self.widget else None}
        if script == plugin._SNAPSHOT_JS:
            return {"now": self.now, "status": self.status() if self.widget else None,
                    "rendered": [s["message"] for s in self.shown]}
        if script == plugin._EXPLAIN_JS:
            return self.engine.explain(self.now)
        if "proactive('sync')" in script:
            return True
        if "data-message-id" in script:
            return any(s["message"] == arg for s in self.shown)
        raise AssertionError(f"unexpected script: {script}")


def bundle(*messages):
    return {"site": "shop", "widgets": [{"id": "main"}],
            "messages": [{"type": "proactive", "widget": "main", "content": {"text": m["id"]}, **m}
                         for m in messages]}


PRICING = {"id": "pricing-help", "rules": [
    {"rule": "time_on_page", "op": "greater", "value": 90},
    {"rule": "country", "op": "equals", "value": "DE"}]}


@pytest.fixture
def page(request):
    marker = request.node.get_closest_marker("widget")
    kwargs = dict(marker.kwargs) if marker else {}
    messages = kwargs.pop("messages", None) or bundle(PRICING)
    return FakeWidgetPage(messages, **kwargs)


def pytest_configure(config):
    config.addinivalue_line("markers", "widget(messages=None, widget=True, geo=None): the fake page's widget")
    config.addinivalue_line("markers", "widget_bundle: unused")
'''


@pytest.fixture
def qa(pytester):
    pytester.makeconftest(FAKE_CONFTEST)
    pytester.makeini("[pytest]\nproactive_timeout = 0.3\n")
    return pytester


def with_messages(*messages) -> str:
    """A test module's first lines: the fake page runs these proactive messages."""
    payload = {"site": "shop", "widgets": [{"id": "main"}],
               "messages": [{"type": "proactive", "widget": "main", "content": {"text": m["id"]}, **m} for m in messages]}
    return f"import pytest\npytestmark = pytest.mark.widget(messages={payload!r})\n"


def run(qa, source: str):
    qa.makepyfile(test_site=textwrap.dedent(source))
    return qa.runpytest("-p", "no:cacheprovider", "-p", "no:playwright", "-q")


def failure_lines(result) -> list[str]:
    """The exception's lines as pytest prints them (after its "E       ")."""
    return [line[8:] for line in result.outlines if line.startswith("E       ")]


# -- registration -----------------------------------------------------------------

def test_the_plugin_is_registered_by_the_package_entry_point():
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="pytest11") if ep.value == "proactive.pytest_plugin"]
    assert [ep.name for ep in found] == ["proactive"]


def test_the_fixture_is_there_without_any_conftest(pytester):
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    text = result.stdout.str()
    assert "fixtures defined from proactive.pytest_plugin" in text
    assert "proactive -- " in text


def test_importing_the_plugin_loads_neither_playwright_nor_the_widget():
    code = ("import sys, proactive.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('playwright', 'widget', 'cryptography', 'starlette', 'uvicorn', 'yaml')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_it_adds_only_the_proactive_fixture_next_to_the_harness_names(pytester):
    # A site's suite (and ours, e2e/conftest.py) may define site, page, guard.
    pytester.makeconftest("""
        import pytest
        @pytest.fixture
        def site(): return "site"
        @pytest.fixture
        def guard(): return "guard"
        class Page:
            def on(self, event, callback): pass
        @pytest.fixture
        def page(): return Page()
    """)
    pytester.makepyfile("""
        from proactive.pytest_plugin import Proactive
        def test_names(site, guard, proactive):
            assert (site, guard) == ("site", "guard")
            assert isinstance(proactive, Proactive)
    """)
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:playwright").assert_outcomes(passed=1)


# -- what a QA engineer reads ---------------------------------------------------------

def test_expect_shown_says_why_not_from_the_live_trace(qa):
    result = run(qa, """
        def test_pricing(proactive):
            proactive.install(time=1_780_000_000)
            proactive.visit("https://shop.example/pricing")
            proactive.expect_shown("pricing-help", within=60)
    """)
    result.assert_outcomes(failed=1)
    assert failure_lines(result) == [
        "AssertionError: pricing-help not shown within 60 s: time_on_page greater 90 → false "
        "(observed 60.0 s); country equals DE → unknown (no geo)",
        "  trace at 60.0 s on the page (https://shop.example/pricing, bundle shop v7):",
        "    time_on_page greater 90 → false (observed 60.0 s)",
        "    country equals DE → unknown (no geo)",
        "    gates: " + ", ".join(f"{g} ok" for g in _gate_names()),
    ]
    # The report points at the test's line, not into the plugin.
    assert '>       proactive.expect_shown("pricing-help", within=60)' in result.outlines
    assert not [line for line in result.outlines if "pytest_plugin.py" in line]


def test_expect_shown_passes_at_the_instant_and_leaves_the_clock_there(qa):
    result = run(qa, """
        import pytest
        pytestmark = pytest.mark.widget(geo={"country": "DE", "city": "Berlin"})

        def test_pricing(proactive, page):
            proactive.install(time=1_780_000_000).visit("https://shop.example/pricing")
            proactive.expect_shown("pricing-help", within=600)
            assert page.now - page.nav == 90_001
            assert proactive.shown() == ["pricing-help"]
            assert proactive.explain("pricing-help")["result"] == "delivered"
    """)
    result.assert_outcomes(passed=1)


def test_expect_not_shown_fails_at_the_instant_it_shows(qa):
    result = run(qa, """
        import pytest
        pytestmark = pytest.mark.widget(geo={"country": "DE", "city": None})

        def test_pricing(proactive):
            proactive.install(time=1_780_000_000).visit("https://shop.example/pricing")
            proactive.advance(30)
            proactive.expect_not_shown("pricing-help", during=3600)
    """)
    result.assert_outcomes(failed=1)
    assert failure_lines(result)[0] == (
        "AssertionError: pricing-help shown after 60.001 s, expected not within 3600 s: "
        "time_on_page greater 90 → true (observed 90.001 s); country equals DE → true (observed DE)")


DECISIVE = [
    # A message that shows is reported as it was just before its show
    # (`invitations_sent` still 0, no gate closed by its own show) ...
    ({"id": "first", "rules": [{"rule": "invitations_sent", "op": "equals", "value": 0},
                               {"rule": "time_on_page", "op": "greater", "value": 5}]},
     'proactive.expect_not_shown("first", during=60)',
     ["AssertionError: first shown after 5.001 s, expected not within 60 s: "
      "invitations_sent equals 0 → true (observed 0); time_on_page greater 5 → true (observed 5.001 s)",
      "  trace at its show (5.001 s on the page) (https://shop.example/, bundle shop v7):",
      "    invitations_sent equals 0 → true (observed 0)",
      "    time_on_page greater 5 → true (observed 5.001 s)"]),
    # ... an exit-intent message that did not show, as it was at the exit
    # (a moment later the exit's duration is unknown).
    ({"id": "exit", "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 2}]},
     'proactive.advance_to(1.5).exit_intent().advance(3)\n'
     '    assert proactive.why("exit") == "time_before_exit_intent greater 2 → false (observed 1.5 s)"\n'
     '    proactive.expect_shown("exit", within=10)',
     ["AssertionError: exit not shown within 10 s: at the exit intent (1.5 s on the page): "
      "time_before_exit_intent greater 2 → false (observed 1.5 s)",
      "  trace at the exit intent (1.5 s on the page) (https://shop.example/, bundle shop v7):",
      "    time_before_exit_intent greater 2 → false (observed 1.5 s)"]),
]


@pytest.mark.parametrize("message,steps,expected", DECISIVE, ids=["shown", "exit"])
def test_a_failure_reports_the_message_at_the_instant_that_decided_it(qa, message, steps, expected):
    """Issue 14 item 5 (docs/rules.md, "Explaining a decision")."""
    result = run(qa, with_messages(message) + "\ndef test_it(proactive):\n"
                 '    proactive.install(time=1_780_000_000).visit("https://shop.example/")\n    ' + steps + "\n")
    result.assert_outcomes(failed=1)
    lines = failure_lines(result)
    assert lines[:len(expected)] == expected
    gates = [line for line in lines if line.startswith("    gates: ")]
    assert gates and "CLOSED" not in gates[0], gates



def test_a_blocked_message_names_its_closed_gates(qa):
    result = run(qa, """
        import pytest
        pytestmark = pytest.mark.widget(messages={
            "site": "shop", "widgets": [{"id": "main"}],
            "messages": [{"id": "sales", "type": "proactive", "widget": "main", "team": "online",
                          "content": {"text": "hi"}, "rules": [{"rule": "page_views", "op": "greater", "value": 0}]}]})

        def test_sales(proactive):
            proactive.install(time=1_780_000_000).visit("https://shop.example/")
            proactive.expect_shown("sales", within=5)
    """)
    result.assert_outcomes(failed=1)
    lines = failure_lines(result)
    assert lines[0] == "AssertionError: sales not shown within 5 s: its rules hold, but team must be online, is unknown"
    assert "    page_views greater 0 → true (observed 1)" in lines
    assert any(line.startswith("    gates: team CLOSED, audience ok") for line in lines)


def test_an_unknown_message_id_lists_the_bundles_messages(qa):
    result = run(qa, """
        def test_typo(proactive):
            proactive.install(time=1_780_000_000).visit("https://shop.example/")
            proactive.expect_not_shown("pricing_help", during=10)
    """)
    result.assert_outcomes(failed=1)
    assert failure_lines(result) == [
        "AssertionError: pricing_help is not a message of the bundle on https://shop.example/ "
        "(site shop, version 7); its messages: pricing-help"]


def test_a_page_without_the_widget_says_so(qa):
    result = run(qa, """
        import pytest

        @pytest.mark.widget(widget=False)
        def test_no_widget(proactive):
            proactive.install(time=1_780_000_000).visit("https://shop.example/")
    """)
    result.assert_outcomes(failed=1)
    assert failure_lines(result) == [
        "AssertionError: no Proactive widget on https://shop.example/: window.proactive is missing "
        "after 0.3 s (does the page embed the widget's script tag?)"]


def test_why_and_explain_answer_without_failing(qa):
    result = run(qa, """
        def test_why(proactive):
            proactive.install(time=1_780_000_000).visit("https://shop.example/pricing").advance(12)
            assert proactive.why("pricing-help") == (
                "time_on_page greater 90 → false (observed 12.0 s); country equals DE → unknown (no geo)")
            conditions = proactive.explain("pricing-help")["conditions"]
            assert [(c["rule"], c["op"], c["expected"], c["observed"], c["result"]) for c in conditions] == [
                ("time_on_page", "greater", 90, 12.0, "false"), ("country", "equals", "DE", None, "unknown")]
    """)
    result.assert_outcomes(passed=1)


def _gate_names() -> list[str]:
    """The gates the engine reports, in its order (they grow with the policy)."""
    import json

    from proactive import publishing
    from widget.runtime.engine import Engine

    doc = {"site": "s", "widgets": [{"id": "main"}], "messages": [
        {"id": "m", "type": "proactive", "widget": "main", "content": {"text": "x"}, "rules": []}]}
    engine = Engine(json.loads(publishing.build_payload(doc, version=1)))
    engine.step([{"type": "page_view", "t": 0, "url": "https://x/", "referrer": ""}], 0)
    engine.step([{"type": "dismiss", "message": "m", "t": 0}], 0)
    return list(engine.explain(0)["m"]["gates"])


# -- the helpers a site's tests may use directly -----------------------------------------

@pytest.mark.parametrize(("condition", "text"), [
    ({"rule": "time_on_page", "op": "greater", "expected": 40, "observed": 12.0, "result": "false"},
     "time_on_page greater 40 → false (observed 12.0 s)"),
    ({"rule": "time_on_page", "op": "less", "expected": 30, "observed": 40.001, "result": "false"},
     "time_on_page less 30 → false (observed 40.001 s)"),
    ({"rule": "country", "op": "equals", "expected": "DE", "observed": None, "result": "unknown"},
     "country equals DE → unknown (no geo)"),
    ({"rule": "browser_language", "op": "equals", "expected": ["en", "fr"], "observed": "de-DE", "result": "false"},
     "browser_language equals en, fr → false (observed de-DE)"),
    ({"rule": "chat_history", "op": "not_exists", "expected": None, "observed": True, "result": "false"},
     "chat_history not_exists → false (observed true)"),
    ({"rule": "referrer_url", "op": "contains", "expected": "google", "observed": None, "result": "unknown"},
     "referrer_url contains google → unknown (no referrer)"),
    ({"rule": "utm_source", "op": "equals", "expected": "news", "observed": None, "result": "unknown"},
     "utm_source equals news → unknown (no utm_source in the landing URL)"),
    ({"rule": "time_before_exit_intent", "op": "greater", "expected": 5, "observed": None, "result": "unknown"},
     "time_before_exit_intent greater 5 → unknown (no exit intent at this instant)"),
    ({"rule": "user_agent", "op": "equals", "expected": "Windows 10", "observed": "Mozilla/5.0 (X11; Linux)",
      "observed_as": "Chrome 120 on Linux", "result": "false"},
     "user_agent equals Windows 10 → false (observed Chrome 120 on Linux)"),
    ({"rule": "visits", "op": "greater", "expected": 2, "observed": 1, "result": "false"},
     "visits greater 2 → false (observed 1)"),
])
def test_condition_wording(condition, text):
    from proactive.pytest_plugin import describe_condition

    assert describe_condition(condition) == text


@pytest.mark.parametrize(("url", "utm", "expected"), [
    ("/pricing", {"campaign": "spring"}, "/pricing?utm_campaign=spring"),
    ("/p?a=1&utm_source=old", {"utm_source": "new", "medium": "cpc"}, "/p?a=1&utm_source=new&utm_medium=cpc"),
    ("https://shop.example/", None, "https://shop.example/"),
])
def test_utm_parameters_are_added_to_the_url(url, utm, expected):
    from proactive.pytest_plugin import with_utm

    assert with_utm(url, utm) == expected


def test_an_unknown_utm_field_is_refused():
    from proactive.pytest_plugin import with_utm

    with pytest.raises(ValueError, match="unknown UTM field 'campain'"):
        with_utm("/", {"campain": "x"})


class _Page:
    url = "https://shop.example/"

    def on(self, event, callback):
        pass


@pytest.mark.parametrize(("answers", "expected"), [
    ([], ["  as_visitor(country='DE', city='Berlin'): the widget asked no geo endpoint (…/geo) on this page"]),
    ([{"country": None, "city": None, "source": None}],
     ["  as_visitor(country='DE', city='Berlin') was not honoured: the endpoint answered "
      '{"city": null, "country": null, "source": null} (start it with --test-geo, docs/endpoint.md)']),
    ([{"country": "DE", "city": "Berlin", "source": "test"}], []),
])
def test_a_geo_override_the_endpoint_ignored_is_named_in_failures(answers, expected):
    from proactive.pytest_plugin import Proactive

    qa = Proactive(_Page())
    qa._geo, qa._geo_answers = ("DE", "Berlin"), answers
    assert qa._geo_problems() == expected


def test_returning_visitor_seeds_the_engines_record():
    from proactive.pytest_plugin import Proactive
    from widget.runtime.engine import Engine, new_record

    qa = Proactive(_Page())
    qa._start = 1_780_000_000
    record = qa._seed_record(visits=3, last_visit_days_ago=2, invitations_sent=1, chat=True)
    assert set(record) == set(new_record())
    # What the engine makes of it on the next page view, two days later.
    doc = {"site": "s", "widgets": [{"id": "main"}], "messages": []}
    import json

    from proactive import publishing

    engine = Engine(json.loads(publishing.build_payload(doc, version=1)), record)
    now = 1_780_000_000_000
    out = engine.step([{"type": "page_view", "t": now, "url": "https://shop.example/", "referrer": ""}], now)
    facts = engine._facts_at(now)
    assert (facts["visits"], facts["invitations_sent"], facts["page_views"], facts["chat_history"]) == (3, 1, 1, True)
    assert now - facts["time_since_last_invitation"] == 2 * 86_400_000
    assert out["record"]["visits"] == 3
    with pytest.raises(TypeError, match="unknown record fields"):
        qa._seed_record(visits=3, last_visit_days_ago=2, invitations_sent=1, colour="red")
    with pytest.raises(ValueError, match="visit 2 or later"):
        qa.returning_visitor(visits=1)


@pytest.mark.parametrize(("name", "gate", "text"), [
    ("team", {"ok": False, "required": "online", "current": "offline", "source": "business hours"},
     "team must be online, is offline (business hours)"),
    ("audience", {"ok": False, "required": "users", "authenticated": False},
     "audience is users, the visitor is an anonymous visitor"),
    ("screen", {"ok": False, "on_screen": "welcome"}, "another message is on screen (welcome)"),
    ("once_per_user", {"ok": False, "required": True, "already_delivered": True},
     "once per user, and this visitor already had it"),
    ("caps", {"ok": False, "caps": {"per_visit": 1}, "lifetime": 3, "this_visit": 1, "last_24h": 2},
     'frequency cap reached ({"per_visit": 1}; shown 3 in all, 1 this visit, 2 in 24 h)'),
    ("dismissed", {"ok": False, "dismissed_at": 1_780_000_000_000, "dismissed_for_ms": 86_400_000,
                   "until": 1_780_086_400_000},
     "dismissed by the visitor, away until 2026-05-29T20:26:40.000Z"),
    ("min_gap", {"ok": False, "min_gap_ms": 60_000, "last_invitation": 1_780_000_000_000,
                 "opens_at": 1_780_000_060_001},
     "too soon after the last invitation (the gap ends at 2026-05-28T20:27:40.001Z)"),
    ("schedule", {"ok": False, "start": 1_780_000_000_000, "end": None},
     "outside its dates (from 2026-05-28T20:26:40.000Z until —)"),
    ("someday", {"ok": False, "why": "new"}, "someday closed (why new)"),
])
def test_gate_wording(name, gate, text):
    from proactive.pytest_plugin import describe_gate

    assert describe_gate(name, gate) == text

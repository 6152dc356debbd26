"""The engine starts just in time (widget/shell/boot.mjs): never on a page
where no message can show, `lead` before the first one that can, and no
decision changes for it (a property test over random journeys, booted at
once and just in time). Real Chromium, real Pyodide, two origins."""

from __future__ import annotations

import json
import re
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proactive import publishing, signing

from conftest import simple_messages

T0 = 1_790_000_000  # seconds (Playwright's clock)
ENGINE = re.compile(r"/(pyodide[^/]*|runtime-[^/]*|stdlib-[^/]*|host-[^/]*|worker-[^/]*|python-[^/]*|untar-[^/]*)$")
STATUS = "() => window.proactive && window.proactive.__target ? window.proactive('status', { boot: false }) : null"


def watch_engine(context) -> list:
    """Every request for the engine's files (Pyodide, the runtime, its modules)."""
    seen: list = []
    context.on("request", lambda r: seen.append(r.url) if ENGINE.search(r.url.split("?")[0]) else None)
    return seen


def status(page) -> dict | None:
    return page.evaluate(STATUS)


def wait_status(page, test, timeout: float = 30.0) -> dict:
    deadline = time.time() + timeout
    s = None
    while time.time() < deadline:
        s = status(page)
        if s and test(s):
            return s
        time.sleep(0.05)
    raise AssertionError(f"timed out; status {s}")


def record_of(page) -> dict:
    return page.evaluate("() => proactive('sync').then(() => JSON.parse(Object.entries(localStorage)"
                         ".find(([k]) => /:jit$/.test(k))[1]))")


def sign(site, doc: dict, name: str, mutate=None) -> str:
    payload = json.loads(publishing.build_payload(doc, version=1))
    if mutate:
        mutate(payload)
    raw = signing.sign_payload(json.dumps(payload).encode(), [site.key])
    (site.bundles / f"{name}.json").write_bytes(raw)
    return site.bundle_url(name)


PRICING_ONLY = simple_messages({"id": "plans", "rules": [{"rule": "page_url", "op": "contains", "value": "/pricing"},
                                                          {"rule": "time_on_page", "op": "greater", "value": 1}]},
                               site_id="jit")


def test_a_page_where_no_message_can_show_downloads_no_engine(site, context, page, guard):
    url = site.publish(PRICING_ONLY, "jit-none")
    engine = watch_engine(context)
    page.goto(site.page(tag=site.tag(bundle=url, data_site="jit"), name="about-us"))
    s = wait_status(page, lambda s: s["boot"]["state"] == "never")
    page.wait_for_timeout(1500)   # time enough for anything that would still come
    assert engine == [] and not status(page)["ready"], engine
    assert "no message can show" in s["boot"]["reason"]
    # Its signals wait for the next page that starts the engine: the pricing page.
    pending = page.evaluate("() => Object.entries(localStorage).filter(([k]) => k.endsWith(':pending'))")
    assert len(pending) == 1 and '"page_view"' in pending[0][1]
    page.goto(site.page(tag=site.tag(bundle=url, data_site="jit"), name="pricing"))
    wait_status(page, lambda s: s["ready"])
    page.wait_for_selector("proactive-widget >> [data-message-id=plans]")
    assert record_of(page)["page_views"] == 2     # the page that never started counted
    left = page.evaluate("() => JSON.parse(Object.entries(localStorage).find(([k]) => k.endsWith(':pending'))[1])")
    assert left and all("events" not in p and "done" in p for p in left), left   # tombstones only: replayed
    assert engine, "the pricing page started the engine"


def test_a_page_still_open_in_another_tab_counts_once(site, context, page, guard):
    """Tab A waits (no message on its page) and stays open; tab B starts its
    engine: B's record has A's page view and A's landing page, as if A had
    started its engine at once; A's page view is not counted again later."""
    url = site.publish(PRICING_ONLY, "jit-tabs")
    tag = site.tag(bundle=url, data_site="jit")
    page.goto(site.page(tag=tag, name="landing") + "?ref=news")   # (utm_* URLs are left to the engine: it starts)
    wait_status(page, lambda s: s["boot"]["state"] == "never")
    other = context.new_page()
    other.goto(site.page(tag=tag, name="pricing"))
    wait_status(other, lambda s: s["ready"])
    first = record_of(other)
    assert first["page_views"] == 2, first
    assert first["source_url"].endswith("/landing.html?ref=news")
    # Tab A goes on (a route change, no message there either), then starts its engine.
    page.evaluate("() => history.pushState({}, '', '/landing2.html')")
    page.evaluate("() => proactive('boot')")
    wait_status(page, lambda s: s["ready"])
    after = record_of(page)
    assert after["page_views"] == 3, after    # landing (once), pricing, landing2
    other.close()


def test_consent_keeps_every_waiting_page(site, context, page, guard):
    """data-consent: each page starts in memory and its site grants consent
    (a CMP, on every page); the pages waiting for the engine then join the
    ones already on the device, and the page that starts it counts them all."""
    url = site.publish(PRICING_ONLY, "jit-consent")
    context.add_init_script("window.proactive = window.proactive || function () { (proactive.q = proactive.q || [])"
                            ".push([].slice.call(arguments)); }; proactive('consent', true);")
    tag = site.tag(bundle=url, data_site="jit", data_consent="required")
    for name in ("about", "team"):
        page.goto(site.page(tag=tag, name=name))
        wait_status(page, lambda s: s["boot"]["state"] == "never" and s["consent"] == "granted")
    page.goto(site.page(tag=tag, name="pricing"))
    wait_status(page, lambda s: s["ready"])
    assert record_of(page)["page_views"] == 3


def test_the_launcher_and_the_chat_do_not_wait_for_the_engine(site, context, page, guard):
    doc = dict(PRICING_ONLY, widgets=[{"id": "main", "color": "#0f766e"}])
    url = site.publish(doc, "jit-chat")
    engine = watch_engine(context)
    page.goto(site.page(tag=site.tag(bundle=url, data_site="jit"), name="contact"))
    wait_status(page, lambda s: s["boot"]["state"] == "never")
    launcher = page.locator("proactive-widget .launcher")
    launcher.wait_for()
    assert page.evaluate("() => getComputedStyle(document.querySelector('proactive-widget').shadowRoot"
                         ".querySelector('.launcher')).backgroundColor") == "rgb(15, 118, 110)"
    launcher.click()
    page.locator("proactive-widget .compose textarea").fill("Do you ship to Vienna?")
    page.locator("proactive-widget .compose .send").click()
    page.locator("proactive-widget .log .bubble.visitor").wait_for()
    page.wait_for_timeout(500)
    assert engine == [] and "failed" not in page.locator("proactive-widget .log").inner_html()
    # The chat counts in the visitor record once a page starts the engine.
    page.goto(site.page(tag=site.tag(bundle=url, data_site="jit"), name="pricing"))
    wait_status(page, lambda s: s["ready"])
    record = record_of(page)
    assert record["chat"] is True and record["page_views"] == 2


def test_the_engine_starts_lead_seconds_before_the_first_possible_message(site, context, page, guard):
    doc = simple_messages({"id": "late", "rules": [{"rule": "time_on_page", "op": "greater", "value": 30}]}, site_id="jit")
    url = site.publish(doc, "jit-late")
    engine = watch_engine(context)
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(site.page(tag=site.tag(bundle=url, data_boot_lead="5")))
    s = wait_status(page, lambda s: s["boot"]["state"] == "scheduled")
    assert s["boot"]["at"] == s["navStart"] + 30_001 - 5000
    page.clock.run_for(20_000)
    page.wait_for_timeout(500)
    assert engine == [] and status(page)["boot"]["state"] == "scheduled"
    page.clock.run_for(s["boot"]["at"] - page.evaluate("Date.now()"))
    wait_status(page, lambda s: s["ready"])
    assert engine
    page.clock.run_for(s["navStart"] + 30_001 - page.evaluate("Date.now()"))
    page.wait_for_selector("proactive-widget >> [data-message-id=late]")
    assert status(page)["shown"] == [{"message": "late", "t": s["navStart"] + 30_001}]


def test_a_single_page_app_route_change_re_plans(site, context, page, guard):
    url = site.publish(PRICING_ONLY, "jit-spa")
    engine = watch_engine(context)
    page.goto(site.page(tag=site.tag(bundle=url), name="home"))
    wait_status(page, lambda s: s["boot"]["state"] == "never")
    page.evaluate("() => history.pushState({}, '', '/pricing')")
    page.wait_for_selector("proactive-widget >> [data-message-id=plans]")
    assert engine


def test_a_bundle_without_a_hint_boots_at_once_with_one_warning(site, page, guard):
    url = sign(site, PRICING_ONLY, "jit-nohint", lambda p: p.pop("boot"))
    page.goto(site.page(tag=site.tag(bundle=url), name="no-hint"))
    s = wait_status(page, lambda s: s["ready"])
    assert s["boot"]["state"] == "started"
    hint = [w for w in guard.warnings() if "boot hint" in w]
    assert len(hint) == 1 and "no boot hint" in hint[0], guard.warnings()


def test_a_returning_visitor_with_an_older_bundle_cached_is_not_warned_again(site, context, page, guard):
    """The first visit after upgrading: the cached bundle (signed before the
    hint) does not matter once the fetched one is newer and has a hint."""
    url = sign(site, PRICING_ONLY, "jit-upgrade", lambda p: p.pop("boot"))
    page.goto(site.page(tag=site.tag(bundle=url, data_site="jit"), name="upgrade"))
    wait_status(page, lambda s: s["ready"])
    page.evaluate("() => proactive('sync')")
    assert len([w for w in guard.warnings() if "boot hint" in w]) == 1
    doc = json.loads(publishing.build_payload(PRICING_ONLY, version=2))
    (site.bundles / "jit-upgrade.json").write_bytes(signing.sign_payload(json.dumps(doc).encode(), [site.key]))
    engine = watch_engine(context)
    page.goto(site.page(tag=site.tag(bundle=url, data_site="jit"), name="upgrade"))
    s = wait_status(page, lambda s: s["boot"]["state"] == "never")
    page.wait_for_timeout(500)
    assert engine == [] and len([w for w in guard.warnings() if "boot hint" in w]) == 1, guard.warnings()


def test_a_malformed_hint_boots_at_once_with_one_warning(site, page, guard):
    url = sign(site, PRICING_ONLY, "jit-badhint", lambda p: p.update(boot={"v": 1, "at": "soon"}))
    page.goto(site.page(tag=site.tag(bundle=url), name="bad-hint"))
    wait_status(page, lambda s: s["ready"])
    hint = [w for w in guard.warnings() if "boot hint" in w]
    assert len(hint) == 1 and "malformed" in hint[0], guard.warnings()


def test_the_engine_warns_when_the_signed_hint_is_later_than_its_rules(site, page, guard):
    doc = simple_messages({"id": "soon", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}, site_id="jit")
    url = sign(site, doc, "jit-late-hint", lambda p: p.update(boot={"v": 1, "at": [[2000, None]]}))
    page.goto(site.page(tag=site.tag(bundle=url), name="late-hint"))
    page.wait_for_selector("proactive-widget >> [data-message-id=soon]")
    page.evaluate("() => proactive('sync')")
    assert any("later than its rules allow" in w for w in guard.warnings()), guard.warnings()


def test_a_bundle_signed_by_another_key_is_not_trusted_for_the_hint(site, page, guard):
    other = signing.generate_private_key()
    payload = json.loads(publishing.build_payload(PRICING_ONLY, version=1))
    (site.bundles / "jit-forged.json").write_bytes(signing.sign_payload(json.dumps(payload).encode(), [other]))
    page.goto(site.page(tag=site.tag(bundle=site.bundle_url("jit-forged")), name="forged"))
    s = wait_status(page, lambda s: s["ready"] or s.get("failed"))
    assert s["boot"]["state"] == "started"   # started at once: the engine says what is wrong
    assert any("no auto message will be shown" in w for w in guard.warnings()), guard.warnings()


# -- no decision changes: random journeys, booted at once and just in time ----

JOURNEY_DOC = simple_messages(
    {"id": "pricing-30", "rules": [{"rule": "page_url", "op": "contains", "value": "/pricing"},
                                   {"rule": "time_on_page", "op": "greater", "value": 12}]},
    {"id": "second-visit-page", "rules": [{"rule": "page_views", "op": "greater", "value": 1},
                                          {"rule": "time_on_page", "op": "greater", "value": 9}]},
    {"id": "blog-exit", "rules": [{"rule": "page_url", "op": "matches", "value": "/blog*"},
                                  {"rule": "time_before_exit_intent", "op": "greater", "value": 6}]},
    {"id": "anywhere-late", "delay": 2, "rules": {"any": [{"rule": "time_on_page", "op": "greater", "value": 20},
                                                          {"rule": "page_url", "op": "equals", "value": "/docs.html"}]}},
    site_id="jit",
)
PAGES = ["home", "pricing", "blog-post", "docs", "about"]
STEP = st.tuples(st.sampled_from(PAGES), st.integers(1, 30), st.one_of(st.none(), st.integers(1, 29)))


def run_journey(browser, site, url: str, journey, boot_mode: str) -> dict:
    context = browser.new_context()
    errors: list = []
    context.on("weberror", lambda e: errors.append(str(e.error)))
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.clock.install(time=T0)
        page.clock.pause_at(T0 + 1)
        decisions = []
        for name, dwell, exit_at in journey:
            page.goto(site.page(tag=site.tag(bundle=url, data_boot=boot_mode, data_boot_lead="3", data_site="jit"), name=name))
            s = wait_status(page, lambda s: s["boot"]["state"] in ("scheduled", "never", "started"))
            start = s["navStart"]
            for target in sorted({dwell * 1000, *( [exit_at * 1000] if exit_at and exit_at < dwell else [])}):
                page.clock.run_for(max(start + target - page.evaluate("Date.now()"), 1))
                if status(page)["boot"]["state"] == "started":
                    wait_status(page, lambda s: s["ready"] or s.get("failed"))
                    page.evaluate("() => proactive('sync')")
                if exit_at and target == exit_at * 1000:
                    page.mouse.move(300, 300)
                    page.mouse.move(300, -5)   # out through the top edge: an exit intent
            if status(page)["boot"]["state"] == "started":
                page.evaluate("() => proactive('sync')")
            decisions += [(name, d["message"], d["t"] - start) for d in status(page)["shown"]]
        # The last page's record, after it is left for a page that starts the engine.
        page.goto(site.page(tag=site.tag(bundle=url, data_boot="now", data_site="jit"), name="end"))
        wait_status(page, lambda s: s["ready"])
        record = record_of(page)
        assert not errors, errors
        return {"decisions": decisions, "visits": record["visits"], "page_views": record["page_views"],
                "invitations": record["invitations_sent"], "source": record["source_url"]}
    finally:
        context.close()


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(STEP, min_size=2, max_size=4))
def test_random_journeys_decide_the_same_booted_at_once_and_just_in_time(browser, site, journey):
    url = site.publish(JOURNEY_DOC, "jit-journey")
    at_once = run_journey(browser, site, url, journey, "now")
    just_in_time = run_journey(browser, site, url, journey, "auto")
    assert just_in_time == at_once, journey

"""The QA kit, used the way a site's QA team uses it: the `proactive` fixture
(proactive/pytest_plugin.py) against our harness site — real Chromium, real
Pyodide, real HTTP. The exact wording of failures is pinned in
tests/test_plugin.py; here every expectation runs against a live page.
e2e/test_qa_any_site.py runs the kit against a different site."""

from __future__ import annotations

import re

import pytest
from conftest import T0, simple_messages

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
WINDOWS_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")


@pytest.fixture
def proactive(proactive, guard):
    """Every browser context the kit opens is watched by the page guard too."""
    def watch(context):
        context.on("page", guard.attach)
        context.on("request", guard.on_request)
        context.on("weberror", lambda err: guard.errors.append(f"weberror: {err.error}"))
    return proactive.on_new_context(watch)


def publish(site, name, *messages):
    site.publish(simple_messages(*messages, site_id="qa"), name)
    return site.tag(bundle=site.bundle_url(name))


def test_expectations_follow_the_clock_to_the_millisecond_and_say_why(site, proactive):
    tag = publish(site, "qa-time", {"id": "pricing-help", "rules": [
        {"rule": "time_on_page", "op": "greater", "value": 40},
        {"rule": "page_url", "op": "contains", "value": "/pricing"}]})
    url = site.page(name="pricing", tag=tag)
    proactive.install(time=T0).visit(url)
    nav = proactive.status()["navStart"]
    assert proactive.shown() == []

    with pytest.raises(AssertionError) as failed:
        proactive.expect_shown("pricing-help", within=30)
    first = str(failed.value).splitlines()[0]
    match = re.fullmatch(r"pricing-help not shown within 30 s: time_on_page greater 40 → false \(observed (\S+) s\)", first)
    assert match, first
    assert float(match.group(1)) == proactive.seconds_on_page()   # the trace is read at the end of the window
    assert "page_url contains /pricing → true (observed " + url in str(failed.value)

    # The clock stops at the instant it shows: 40.001 s after navigation start.
    proactive.expect_shown("pricing-help", within=15)
    status = proactive.status()
    assert status["shown"][0]["t"] - nav == 40_001
    assert status["shown"][0]["t"] == proactive.page.evaluate("Date.now()")
    assert proactive.explain("pricing-help")["result"] == "delivered"
    # A message shown earlier on this page fails expect_not_shown at once.
    with pytest.raises(AssertionError, match=r"^pricing-help was already shown \(at 40\.001 s on the page\)"):
        proactive.expect_not_shown("pricing-help", during=5)


def test_expect_not_shown_stops_at_the_instant_it_shows(site, proactive):
    tag = publish(site, "qa-not", {"id": "nudge", "rules": [{"rule": "time_on_page", "op": "greater", "value": 5}]})
    proactive.install(time=T0).visit(site.page(tag=tag))
    proactive.advance_to(5)   # exactly 5 s on the page: "greater 5" is not yet true
    assert proactive.shown() == []
    with pytest.raises(AssertionError) as failed:
        proactive.expect_not_shown("nudge", during=3600)
    assert str(failed.value).splitlines()[0] == (
        "nudge shown after 0.001 s, expected not within 3600 s: "
        "time_on_page greater 5 → true (observed 5.001 s)")
    assert proactive.shown() == ["nudge"]
    with pytest.raises(AssertionError, match=r"^nope is not a message of the bundle on .* its messages: nudge$"):
        proactive.explain("nope")


def test_exit_intent_is_a_real_mouse_leaving_through_the_top(site, proactive):
    tag = publish(site, "qa-exit", {"id": "exit-offer", "rules": [
        {"rule": "time_before_exit_intent", "op": "greater", "value": 2}]})
    proactive.install(time=T0).visit(site.page(tag=tag))
    proactive.advance_to(3).exit_intent()
    proactive.expect_shown("exit-offer")
    trace = proactive.explain("exit-offer")["conditions"][0]
    assert (trace["result"], trace["observed"]) == ("true", 3.0)
    # Known at the instant of the exit intent only: unknown a millisecond later.
    proactive.advance(0.001)
    assert proactive.explain("exit-offer")["conditions"][0]["result"] == "unknown"

    # Too early (1.5 s on the page): the condition is false at that instant,
    # and a failure says so, from the trace taken at the exit (issue 14 item 5).
    proactive.visit(site.page(tag=tag))
    proactive.advance_to(1.5).exit_intent()
    proactive.expect_not_shown("exit-offer", during=60)
    assert proactive.why("exit-offer") == "time_before_exit_intent greater 2 → false (observed 1.5 s)"
    with pytest.raises(AssertionError) as failed:
        proactive.expect_shown("exit-offer", within=5)
    assert str(failed.value).splitlines()[:2] == [
        "exit-offer not shown within 5 s: at the exit intent (1.5 s on the page): "
        "time_before_exit_intent greater 2 → false (observed 1.5 s)",
        f"  trace at the exit intent (1.5 s on the page) ({proactive.page.url}, bundle qa v1):"]


def test_a_message_that_shows_is_reported_as_it_was_at_its_show(site, proactive):
    """Issue 14 item 5: expect_not_shown's failure reads the state just
    before the show: invitations_sent still 0, no gate closed by the show."""
    tag = publish(site, "qa-first", {"id": "first", "rules": [
        {"rule": "invitations_sent", "op": "equals", "value": 0},
        {"rule": "time_on_page", "op": "greater", "value": 5}]})
    proactive.install(time=T0).visit(site.page(tag=tag))
    with pytest.raises(AssertionError) as failed:
        proactive.expect_not_shown("first", during=60)
    lines = str(failed.value).splitlines()
    assert re.fullmatch(r"first shown after \S+ s, expected not within 60 s: invitations_sent equals 0 → true "
                        r"\(observed 0\); time_on_page greater 5 → true \(observed 5\.001 s\)", lines[0]), lines[0]
    assert lines[1].startswith("  trace at its show (5.001 s on the page)")
    gates = next(line for line in lines if line.startswith("    gates: "))
    assert "CLOSED" not in gates, gates
    assert proactive.explain("first")["conditions"][0]["observed"] == 1   # live: after its own show


def test_visitor_language_user_agent_utm_and_referrer(site, page, proactive):
    tag = publish(site, "qa-visitor", {"id": "spring-de", "rules": [
        {"rule": "browser_language", "op": "equals", "value": "de"},
        {"rule": "user_agent", "op": "equals", "value": "Windows 10"},
        {"rule": "utm_campaign", "op": "equals", "value": "spring"},
        {"rule": "referrer_url", "op": "contains", "value": "google.com"}]})
    url = site.page(tag=tag)
    proactive.install(time=T0).as_visitor(language="de-DE", user_agent=WINDOWS_CHROME)
    assert proactive.page.context is not page.context  # a new browser context, with those options
    proactive.visit(url, utm={"campaign": "spring", "utm_source": "news"}, referrer="https://www.google.com/search?q=chat")
    proactive.expect_shown("spring-de")
    seen = {c["rule"]: c["observed"] for c in proactive.explain("spring-de")["conditions"]}
    assert seen == {"browser_language": "de-DE", "user_agent": WINDOWS_CHROME, "utm_campaign": "spring",
                    "referrer_url": "https://www.google.com/search?q=chat"}
    assert proactive.page.evaluate("location.search") == "?utm_campaign=spring&utm_source=news"


def test_a_mobile_visitor(site, proactive):
    tag = publish(site, "qa-mobile", {"id": "phones", "rules": [
        {"rule": "platform", "op": "equals", "value": "mobile"},
        {"rule": "user_agent", "op": "equals", "value": "iPhone"}]})
    proactive.install(time=T0).as_visitor(user_agent=IPHONE, mobile=True).visit(site.page(tag=tag))
    proactive.expect_shown("phones")
    assert proactive.page.evaluate("navigator.maxTouchPoints > 0 && screen.width === 390")


def test_a_plain_visitor_is_told_why_not(site, proactive):
    tag = publish(site, "qa-why", {"id": "spring-de", "rules": [
        {"rule": "browser_language", "op": "equals", "value": "de"},
        {"rule": "utm_campaign", "op": "equals", "value": "spring"},
        {"rule": "country", "op": "equals", "value": "DE"}]})
    proactive.install(time=T0).visit(site.page(tag=tag))
    with pytest.raises(AssertionError) as failed:
        proactive.expect_shown("spring-de", within=10)
    language = proactive.page.evaluate("navigator.language")
    assert str(failed.value).splitlines()[0] == (
        f"spring-de not shown within 10 s: browser_language equals de → false (observed {language}); "
        "utm_campaign equals spring → unknown (no utm_campaign in the landing URL); "
        "country equals DE → unknown (no geo)")


def test_geo_through_the_endpoints_test_override(site, proactive):
    tag = publish(site, "qa-geo", {"id": "berlin", "rules": [
        {"rule": "country", "op": "equals", "value": "Germany"},
        {"rule": "city", "op": "equals", "value": "Berlin"}]})
    proactive.install(time=T0).as_visitor(country="DE", city="Berlin").visit(site.page(tag=tag))
    proactive.expect_shown("berlin", within=5)
    seen = {c["rule"]: c["observed"] for c in proactive.explain("berlin")["conditions"]}
    assert seen == {"country": "DE", "city": "Berlin"}


def test_returning_visitor_is_seeded_in_the_engines_record_format(site, proactive):
    tag = publish(site, "qa-return",
                  {"id": "welcome-back", "rules": [
                      {"rule": "visits", "op": "equals", "value": 3},
                      {"rule": "invitations_sent", "op": "equals", "value": 1},
                      {"rule": "time_since_last_invitation", "op": "greater", "value": 2 * 86400 - 1},
                      {"rule": "page_views", "op": "equals", "value": 1}]},
                  {"id": "second-page", "rules": [
                      {"rule": "visits", "op": "equals", "value": 3},
                      {"rule": "page_views", "op": "equals", "value": 2}]})
    proactive.install(time=T0).returning_visitor(visits=3, last_visit_days_ago=2, invitations_sent=1)
    proactive.visit(site.page(tag=tag))
    proactive.expect_shown("welcome-back")
    # The seed is applied once: the next page continues the same visit.
    proactive.visit(site.page(tag=tag))
    proactive.expect_shown("second-page")


def test_install_starts_a_fresh_visitor(site, page, proactive):
    tag = publish(site, "qa-fresh", {"id": "first-view", "rules": [
        {"rule": "visits", "op": "equals", "value": 1}, {"rule": "page_views", "op": "equals", "value": 1}]})
    url = site.page(tag=tag)
    # An earlier visitor on this origin left a record behind (real time, no kit).
    page.goto(url)
    page.wait_for_function("() => window.proactive && window.proactive('status') && window.proactive('status').ready")
    stored = page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('proactive:v1:'))")
    assert stored
    proactive.install().visit(url)
    proactive.expect_shown("first-view")


def test_open_close_and_reply_reach_the_engine(site, proactive):
    tag = publish(site, "qa-chat",
                  {"id": "while-open", "once_per_user": True, "rules": [{"rule": "widget_opened", "op": "is_true"}]},
                  {"id": "after-close", "rules": [{"rule": "time_since_widget_closed", "op": "greater", "value": 10}]},
                  {"id": "replied", "rules": [{"rule": "chat_history", "op": "exists"}]})
    url = site.page(tag=tag)
    proactive.install(time=T0).visit(url)
    proactive.open_widget().expect_shown("while-open")
    proactive.close_widget()
    # The next page: the record remembers when the widget was closed.
    proactive.visit(url)
    proactive.expect_not_shown("after-close", during=10)
    proactive.expect_shown("after-close", within=0.001)
    proactive.dismiss("after-close")
    proactive.reply("Hello, is anyone there?")
    proactive.expect_shown("replied")


def test_debug_view_loads_only_when_asked_and_shows_every_condition_live(site, proactive):
    from playwright.sync_api import expect

    tag = publish(site, "qa-debug",
                  {"id": "pricing-help", "rules": [{"rule": "time_on_page", "op": "greater", "value": 40}]},
                  {"id": "german", "rules": [{"rule": "country", "op": "equals", "value": "DE"}]},
                  {"id": "members", "audience": "users", "rules": [{"rule": "page_views", "op": "greater", "value": 0}]})
    url = site.page(tag=tag)
    requests = []
    proactive.page.on("request", lambda r: requests.append(r.url))
    proactive.install(time=T0).visit(url)
    widget = proactive.page.locator("proactive-widget")
    debug_module = re.compile(r"/debug(-[0-9a-f]+)?\.mjs$")  # content-hashed by the build
    assert not any(debug_module.search(u) for u in requests)
    assert widget.locator("[data-proactive-debug]").count() == 0

    proactive.visit(url + "?proactive_debug=1")
    assert any(debug_module.search(u) for u in requests)
    view = widget.locator("[data-proactive-debug]")
    expect(view).to_be_visible()
    expect(view).to_contain_text("bundle: site qa, version 1")
    expect(view).to_contain_text("signature: verified (Ed25519")
    pricing = view.locator('[data-message="pricing-help"]')
    time_row = pricing.locator('tr[data-rule="time_on_page"]')
    expect(time_row).to_contain_text("greater")
    expect(time_row).to_contain_text("40")
    expect(time_row).to_contain_text("false")
    expect(view.locator('[data-message="german"] tr[data-rule="country"]')).to_contain_text("observed unknown")
    members = view.locator('[data-message="members"]')
    expect(members).to_contain_text("blocked by audience")
    expect(members).to_contain_text("audience blocks: audience is users, the visitor is an anonymous visitor")
    expect(members).to_contain_text("gates open: team, ")
    expect(view).to_contain_text(re.compile(r"next wake-up: in [0-9.]+ s \(40\.001 s on this page\)"))
    proactive.advance(12)
    expect(time_row).to_contain_text("observed 12.")  # live: follows the page's clock
    proactive.advance(30)
    expect(time_row).to_contain_text("true")
    expect(view).to_contain_text("next wake-up: none")

    proactive.page.evaluate("proactive('debug', false)")
    expect(view).to_have_count(0)
    proactive.page.evaluate("proactive('debug', true)")
    expect(widget.locator("[data-proactive-debug]")).to_be_visible()


def test_a_rejected_bundle_is_reported_not_waited_for(site, proactive):
    from proactive import signing

    other_key = signing.public_key_spec(signing.generate_private_key())
    site.publish(simple_messages({"id": "hello", "rules": []}, site_id="qa"), "qa-bad-key")
    url = site.page(tag=site.tag(bundle=site.bundle_url("qa-bad-key"), key=other_key))
    proactive.install(time=T0).visit(url)
    with pytest.raises(AssertionError) as failed:
        proactive.expect_shown("hello", within=10)
    text = str(failed.value)
    assert text.startswith(f"hello: the widget on {url} has no bundle (no bundle)\n  widget warnings:\n"), text
    assert re.search(r"\[proactive\] bundle .*qa-bad-key.json rejected: unknown_key", text), text
    # The debug view says the same.
    from playwright.sync_api import expect

    proactive.page.evaluate("proactive('debug', true)")
    view = proactive.page.locator("proactive-widget [data-proactive-debug]")
    expect(view).to_contain_text("signature: rejected")
    expect(view).to_contain_text("rejected: unknown_key")
    expect(view).to_contain_text("bundle: none")


def test_as_visitor_forces_an_experiments_arm_and_failures_name_it(site, proactive):
    site.publish({"site": "qa", "widgets": [{"id": "main"}], "messages": [{
        "id": "plans", "widget": "main", "holdout": 20,
        "variants": [{"id": "ask", "content": {"text": "Questions about plans?"}},
                     {"id": "hand", "content": {"text": "Need a hand choosing?"}}],
        "rules": [{"rule": "time_on_page", "op": "greater", "value": 5}]}]}, "qa-arms")
    url = site.page(tag=site.tag(bundle=site.bundle_url("qa-arms")))
    proactive.as_visitor(arms={"plans": "holdout"}).install(time=T0).visit(url)
    proactive.expect_not_shown("plans", during=10)
    assert proactive.status()["arms"] == {"plans": "holdout"}
    with pytest.raises(AssertionError) as failed:
        proactive.expect_shown("plans", within=1)
    text = str(failed.value)
    assert "control group (holdout)" in text.splitlines()[0]
    assert "experiments' arms: plans = holdout" in text
    # The debug view says the same.
    from playwright.sync_api import expect

    proactive.page.evaluate("proactive('debug', true)")
    view = proactive.page.locator("proactive-widget [data-proactive-debug]")
    expect(view).to_contain_text("experiments: plans = holdout; visitor ")

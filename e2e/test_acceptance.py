"""Acceptance: a shop that is not ours, its own rule file, real visitor journeys.

"Brewhaus" sells coffee: five plain pages and a single-page app, ten auto
messages that touch most rules (page URL contains/matches, time on page, exit
intent with time before it, UTM, visits/page views/time this visit, referrer
and landing URL, platform and user agent, browser language, team online or
offline from business hours, once per user, delay, priority, language
variants, buttons). Each test is a visitor's journey in real Chromium under
Playwright's clock, checked to the millisecond where a rule says so.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import yaml
from conftest import shown_ids

MESSAGES = """
site: brewhaus
widgets: [{id: main, color: "#7c2d12", title: Brewhaus Help}]
team:
  timezone: Europe/Berlin
  hours: {mon-fri: "09:00-18:00", sat: "10:00-14:00"}
  closed_on: [2026-12-24, 2026-12-25]
delivery: {min_gap: 0, dismissed_for: 3600}
messages:
  - id: pricing-help
    priority: 5
    rules:
      - {rule: page_url, op: contains, value: /pricing}
      - {rule: time_on_page, op: greater, value: 20}
    content:
      en:
        sender: {name: Lena from Brewhaus}
        text: "Comparing **subscriptions**? I can help you pick."
        buttons:
          - {id: chat, label: Ask Lena, action: chat}
          - {id: compare, label: Compare plans, action: url, url: /compare}
      de:
        sender: {name: Lena von Brewhaus}
        text: "Du vergleichst **Abos**? Ich helfe dir gern."
        buttons: [{id: chat, label: Frag Lena, action: chat}]
  - id: exit-offer
    priority: 20
    once_per_user: true
    rules:
      - {rule: page_url, op: matches, value: "*/pricing*"}
      - {rule: time_before_exit_intent, op: greater, value: 5}
    content:
      en: {text: "Leaving already? Take **10% off** your first bag: BREW10"}
      de: {text: "Schon weg? **10 % Rabatt** auf die erste Tüte: BREW10"}
  - id: google-ads
    priority: 10
    rules:
      - {rule: utm_source, op: equals, value: google}
      - {rule: utm_medium, op: equals, value: cpc}
      - {rule: utm_campaign, op: contains, value: espresso}
      - {rule: referrer_url, op: contains, value: google.}
      - {rule: time_on_page, op: greater, value: 3}
    content: {text: "Welcome! Your {{utm_campaign}} deal is waiting at checkout."}
  - id: welcome-back
    once_per_user: true
    rules:
      - {rule: visits, op: greater, value: 1}
      - {rule: time_on_page, op: greater, value: 2}
    content: {text: "Welcome back! Pick up where you left off?"}
  - id: deep-browser
    delay: 2
    rules:
      - {rule: page_views, op: greater, value: 2}
      - {rule: time_this_visit, op: greater, value: 30}
      - {rule: page_url, op: not_contains, value: /checkout}
    content: {text: "You've seen a few of our roasts. Want a recommendation?"}
  - id: german
    rules:
      - any:
          - {rule: country, op: equals, value: [DE, AT, CH]}
          - {rule: browser_language, op: equals, value: de}
      - {rule: page_url, op: contains, value: /home}
      - {rule: time_on_page, op: greater, value: 6}
    content:
      en: {text: "We ship to Germany, Austria and Switzerland."}
      de: {text: "Wir liefern nach Deutschland, Österreich und in die Schweiz."}
  - id: from-blog
    rules:
      - {rule: referrer_url, op: contains, value: coffeeblog.example}
      - {rule: source_url, op: matches, value: "*/beans/*"}
    content: {text: "Hello reader of Coffee Blog! Here's the bean from the review."}
  - id: mobile-app
    rules:
      - {rule: platform, op: equals, value: mobile}
      - {rule: time_on_page, op: greater, value: 10}
      - {rule: user_agent, op: not_contains, value: bot}
    content: {text: "Order faster in our app."}
  - id: windows-app
    rules:
      - {rule: user_agent, op: equals, value: "Windows 10"}
      - {rule: page_url, op: contains, value: /beans/}
      - {rule: time_on_page, op: greater, value: 1.5}
    content: {text: "Our Windows app tracks your deliveries."}
  - id: pro-thanks
    type: targeted
    rules:
      - {rule: user.plan, op: equals, value: pro}
      - {rule: page_url, op: contains, value: /beans/}
    content: {text: "Thanks for being on Pro, {{name|friend}}! Your next bag ships Friday."}
  - id: live-help
    team: online
    rules:
      - {rule: page_url, op: contains, value: /checkout}
      - {rule: time_on_page, op: greater, value: 15}
    content: {text: "Stuck at checkout? We're online now."}
  - id: after-hours
    team: offline
    rules:
      - {rule: page_url, op: contains, value: /checkout}
      - {rule: time_on_page, op: greater, value: 15}
    content: {text: "We're offline right now; leave a message and we'll reply by email."}
"""

NAV = ('<nav><a id="to-home" href="/home.html">Home</a> <a id="to-beans" href="/beans/ethiopia.html">Beans</a> '
       '<a id="to-pricing" href="/pricing.html">Pricing</a> <a id="to-checkout" href="/checkout.html">Checkout</a></nav>'
       '<p id="host-state">untouched</p><label>Coupon <input id="host-input"></label>'
       '<button id="host-button" onclick="document.getElementById(\'host-state\').textContent=\'clicked\'">Order</button>'
       '<div style="height: 2000px"></div>')

SPA = """<nav><a data-route="/app/beans" id="spa-beans" href="/app/beans">Beans</a>
<a data-route="/app/pricing" id="spa-pricing" href="/app/pricing">Pricing</a></nav><p id="route">/app</p>
<script>
window.__routes = [];
window.proactive = window.proactive || function () { (proactive.q = proactive.q || []).push(arguments); };
proactive('on', 'page_view', (e) => window.__routes.push(e.t));
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-route]'); if (!a) return;
  e.preventDefault(); history.pushState({}, '', a.dataset.route);
  document.getElementById('route').textContent = a.dataset.route;
});
</script>"""

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
WEDNESDAY_11_BERLIN = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
SATURDAY_20_BERLIN = datetime(2026, 11, 28, 19, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def shop(site):
    """The shop's pages (endpoint off: business hours decide the team) and bundle."""
    bundle = site.publish(yaml.safe_load(MESSAGES), "brewhaus")
    tag = site.tag(bundle=bundle, data_site="brewhaus", data_endpoint="off")
    (site.pages / "beans").mkdir(exist_ok=True)
    urls = {}
    for name in ("home", "pricing", "checkout", "beans/ethiopia"):
        urls[name] = site.page(NAV, tag=tag, name=name, head=VIEWPORT)
    urls["app"] = site.page(SPA, tag=tag, name="app", head=VIEWPORT)
    # One page with the endpoint on (geo: the harness's endpoint honours the test header).
    (site.pages / "ch").mkdir(exist_ok=True)
    urls["geo/home"] = site.page(NAV, tag=site.tag(bundle=bundle, data_site="brewhaus"), name="ch/home", head=VIEWPORT)
    # And its pricing page, for the chat button (a conversation needs the endpoint).
    urls["chat/pricing"] = site.page(NAV, tag=site.tag(bundle=bundle, data_site="brewhaus"), name="ch/pricing",
                                     head=VIEWPORT)
    return urls


@pytest.fixture
def visitor(proactive, guard):
    """The QA kit, with the page guard on every context it opens (as_visitor)."""
    def watch(context):
        context.on("page", guard.attach)
        context.on("request", guard.on_request)
        context.on("weberror", lambda err: guard.errors.append(f"weberror: {err.error}"))
    return proactive.on_new_context(watch)


def shown_at(kit, message_id):
    """The instant `message_id` was shown, in ms after its page's navigation start."""
    status = kit.status()
    times = [s["t"] for s in status["shown"] if s["message"] == message_id]
    assert times, (message_id, status["shown"])
    return times[0] - status["navStart"]


def card(kit, message_id):
    return kit.page.locator(f'proactive-widget [data-message-id="{message_id}"]')


def test_google_ad_visitor_browses_three_pages_leaves_and_returns_after_40_minutes(shop, visitor, guard):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["home"], utm={"source": "google", "medium": "cpc", "campaign": "espresso_week"},
              referrer="https://www.google.com/")
    kit.advance_to(3)
    assert kit.shown() == []
    kit.expect_shown("google-ads", within=0.001)
    assert shown_at(kit, "google-ads") == 3001
    assert card(kit, "google-ads").inner_text().count("Welcome! Your espresso_week deal is waiting at checkout.") == 1
    # The host page still works under and beside the card.
    kit.page.click("#host-button")
    assert kit.page.inner_text("#host-state") == "clicked"
    kit.dismiss("google-ads")
    assert shown_ids(kit.page) == []

    # Page 2 (a real link): the visit keeps its UTM values, but the ad greeting
    # was dismissed for an hour.
    kit.page.click("#to-beans")
    kit.wait_ready()
    kit.expect_not_shown("google-ads", during=5)
    assert kit.explain("google-ads")["blocked_by"] == ["dismissed"]

    # Page 3: pricing. An exit intent after more than 5 s shows the offer (it
    # outranks everything), once per user.
    kit.page.click("#to-pricing")
    kit.wait_ready()
    kit.advance_to(6)
    kit.exit_intent()
    kit.expect_shown("exit-offer")
    assert "10% off" in card(kit, "exit-offer").inner_text()
    # One at a time: pricing-help's 20 s pass while the offer is on screen.
    kit.advance_to(25)
    assert shown_ids(kit.page) == ["exit-offer"]
    assert "another message is on screen (exit-offer)" in kit.why("pricing-help")
    # Dismissed: pricing-help holds now (its moment is still true) and shows at once.
    kit.dismiss("exit-offer")
    kit.expect_shown("pricing-help")
    # A static host (endpoint off): no chat button, the link stays.
    assert card(kit, "pricing-help").get_by_role("button", name="Ask Lena").count() == 0
    assert card(kit, "pricing-help").get_by_role("link", name="Compare plans").is_visible()
    kit.dismiss("pricing-help")

    # A reload of pricing: the offer was once per user, even after a second exit.
    kit.page.reload()
    kit.wait_ready()
    kit.advance_to(7)
    kit.exit_intent()
    kit.expect_not_shown("exit-offer", during=2)
    assert "once per user" in kit.why("exit-offer")

    # Away for 40 minutes (the tab hidden), then back: the next page view is a new visit.
    kit.leave(40 * 60)
    kit.visit(shop["home"])
    kit.advance_to(2)
    assert kit.shown() == []
    kit.expect_shown("welcome-back", within=0.001)
    assert shown_at(kit, "welcome-back") == 2001
    # The new visit has no UTM: the ad greeting is not for it.
    assert kit.explain("google-ads")["result"] == "rules_false"
    assert not guard.warnings()


def test_three_page_views_and_30_s_in_the_visit_with_a_2_s_delay(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["home"])
    nav0 = kit.status()["navStart"]
    kit.advance(4)
    kit.page.click("#to-beans")
    kit.wait_ready()
    kit.advance(4)
    kit.page.click("#to-home")
    kit.wait_ready()
    # 30.001 s into the visit the rules hold; the delay makes it 32.001 s.
    kit.expect_shown("deep-browser", within=40)
    status = kit.status()
    assert [s["t"] for s in status["shown"] if s["message"] == "deep-browser"] == [nav0 + 32_001]


def test_spa_route_change_is_a_new_page(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["app"])
    kit.advance(7)
    kit.page.click("#spa-pricing")
    kit.wait_ready()
    assert kit.page.url.endswith("/app/pricing")
    route_start = kit.page.evaluate("window.__routes.at(-1)")
    assert route_start >= kit.status()["navStart"] + 7000
    # The kit counts time on page from the route change, as time_on_page does.
    assert kit.seconds_on_page() < 0.1
    kit.advance_to(20)
    assert kit.shown() == []
    kit.expect_shown("pricing-help", within=0.001)
    assert [s["t"] for s in kit.status()["shown"]] == [route_start + 20_001]
    # A route change frees the screen (docs/decisions.md: the card stays until
    # a new message replaces it, never two cards). Third page view, 27 s into
    # the visit: deep-browser holds at 30.001 s, shows 2 s later, replacing it.
    kit.page.click("#spa-beans")
    kit.wait_ready()
    assert kit.page.inner_text("#route") == "/app/beans"
    assert kit.shown() == []
    kit.expect_shown("deep-browser", within=6)
    assert kit.status()["shown"][-1]["t"] == kit.status()["navStart"] + 32_001
    assert shown_ids(kit.page) == ["deep-browser"]


def test_coming_from_a_blog_review_to_a_bean_page(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["beans/ethiopia"], referrer="https://coffeeblog.example/best-beans-2026")
    kit.expect_shown("from-blog")
    assert shown_at(kit, "from-blog") < 1500  # at once, as soon as the engine had the page view


def test_german_browser_gets_german_content(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN).as_visitor(language="de-DE")
    kit.visit(shop["home"])
    kit.advance_to(6)
    assert kit.shown() == []
    kit.expect_shown("german", within=0.001)
    assert "Wir liefern nach Deutschland" in card(kit, "german").inner_text()
    kit.dismiss("german")
    kit.visit(shop["pricing"])
    kit.expect_shown("pricing-help", within=21)
    text = card(kit, "pricing-help").inner_text()
    assert "Du vergleichst" in text and "Ask Lena" not in text and "Frag Lena" not in text  # static: no chat button


def test_mobile_visitor(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN).as_visitor(mobile=True)
    kit.visit(shop["beans/ethiopia"])
    kit.advance_to(10)
    assert kit.shown() == []
    kit.expect_shown("mobile-app", within=0.001)
    box = card(kit, "mobile-app").bounding_box()
    # Under 480 px the card spans the phone's screen and stays on it.
    assert box and box["width"] >= 340 and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert 0 <= box["y"] and box["y"] + box["height"] <= 844, box
    # The chat panel is full screen on a phone.
    card(kit, "mobile-app").get_by_role("button", name="Dismiss").first.click()
    kit.visit(shop["geo/home"])  # a page with the endpoint: there is a conversation to open
    kit.open_widget()
    panel = kit.page.locator("proactive-widget section[role=dialog]").bounding_box()
    assert panel and round(panel["width"]) == 390 and round(panel["height"]) == 844, panel


@pytest.mark.parametrize("when, shows, not_shows", [
    (WEDNESDAY_11_BERLIN, "live-help", "after-hours"),
    (SATURDAY_20_BERLIN, "after-hours", "live-help"),
    # 10 s before closing time: at 15.001 s on the page the team is offline.
    (datetime(2026, 11, 25, 16, 59, 50, tzinfo=timezone.utc), "after-hours", "live-help"),
    # 10 s before opening time: at 15.001 s the team is online.
    (datetime(2026, 11, 25, 7, 59, 50, tzinfo=timezone.utc), "live-help", "after-hours"),
])
def test_checkout_help_follows_business_hours(shop, visitor, when, shows, not_shows):
    kit = visitor.install(when)
    kit.visit(shop["checkout"])
    kit.advance_to(15)
    assert kit.shown() == []
    kit.expect_shown(shows, within=0.001)
    assert not_shows not in kit.shown()
    assert kit.explain(not_shows)["blocked_by"][0] == "team"


def test_christmas_eve_is_closed(shop, visitor):
    kit = visitor.install(datetime(2026, 12, 24, 10, 0, tzinfo=timezone.utc))  # a Thursday, 11:00 in Berlin
    kit.visit(shop["checkout"])
    kit.expect_shown("after-hours", within=15.001)
    assert shown_at(kit, "after-hours") == 15_001


def test_windows_visitor_by_user_agent(shop, visitor):
    windows = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/126.0.0.0 Safari/537.36")
    kit = visitor.install(WEDNESDAY_11_BERLIN).as_visitor(user_agent=windows)
    kit.visit(shop["beans/ethiopia"])
    kit.advance_to(1.5)
    assert kit.shown() == []
    kit.expect_shown("windows-app", within=0.001)
    kit.visit(shop["pricing"])
    kit.expect_not_shown("windows-app", during=3)


def test_buttons_esc_and_once_per_user_across_tabs(shop, visitor, guard):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["chat/pricing"])  # the chat button needs the endpoint
    page = kit.page
    page.evaluate("""() => { window.__events = [];
        for (const n of ['clicked', 'dismissed', 'open']) proactive('on', n, (e) => __events.push([n, e])); }""")
    kit.expect_shown("pricing-help", within=21)
    compare = card(kit, "pricing-help").get_by_role("link", name="Compare plans")
    assert compare.get_attribute("target") == "_blank"
    assert compare.evaluate("a => a.href") == shop["home"].rsplit("/", 1)[0] + "/compare"
    # The chat button opens the chat panel; the card becomes the conversation.
    card(kit, "pricing-help").get_by_role("button", name="Ask Lena").click()
    kit.status()
    events = page.evaluate("__events")
    assert ["clicked", {"message": "pricing-help", "button": "chat", "action": "chat", "label": "Ask Lena"}] in events
    assert [name for name, _ in events].count("open") == 1
    assert "Comparing" in page.locator("proactive-widget [role=log]").inner_text()
    kit.close_widget()

    # Another tab of the same visitor: the exit offer, dismissed with Esc ...
    other = page.context.new_page()
    other.goto(shop["pricing"])
    kit.page = other
    kit.wait_ready()
    kit.advance_to(6)
    kit.exit_intent()
    kit.expect_shown("exit-offer")
    other.keyboard.press("Escape")
    kit.status()
    assert shown_ids(other) == []
    # ... is once per user in the first tab too, after a reload.
    other.close()
    kit.page = page
    page.reload()
    kit.wait_ready()
    kit.advance_to(7)
    kit.exit_intent()
    kit.expect_not_shown("exit-offer", during=1)
    assert "once per user" in kit.why("exit-offer")


def test_the_demo_shows_off_its_messages(site, visitor):
    """`make demo`'s site and messages (demo/), as a visitor walks them."""
    from conftest import ROOT

    bundle = site.publish(yaml.safe_load((ROOT / "demo" / "messages.yaml").read_text()), "demo")
    tag = site.tag(bundle=bundle, data_endpoint="off")
    (site.pages / "demo").mkdir(exist_ok=True)
    for name in ("index", "pricing"):
        html = (ROOT / "demo" / "site" / f"{name}.html").read_text().replace("{{PROACTIVE_TAG}}", tag)
        (site.pages / "demo" / f"{name}.html").write_text(html.replace('href="/', 'href="/demo/'))
    home = f"{site.site_origin}/demo/"
    kit = visitor.install(WEDNESDAY_11_BERLIN)

    kit.visit(home)
    kit.advance_to(4)
    assert kit.shown() == []
    kit.expect_shown("welcome", within=0.001)  # the welcome, a few seconds in, as always
    assert "Hi there!" in card(kit, "welcome").inner_text()

    kit.page.click("text=Pricing")
    kit.wait_ready()
    kit.advance_to(3.5)
    kit.exit_intent()
    kit.expect_shown("exit-offer")
    assert "BEANS10" in card(kit, "exit-offer").inner_text()
    kit.dismiss("exit-offer")
    kit.advance_to(8)
    kit.expect_shown("pricing-help", within=0.001)
    assert "welcome" not in kit.shown()

    kit.visit(home + "?utm_source=newsletter&utm_campaign=spring")
    kit.expect_shown("campaign", within=1.001)
    assert "Thanks for coming from our spring newsletter!" in card(kit, "campaign").inner_text()
    kit.dismiss("campaign")

    kit.leave(40 * 60)   # away (the tab hidden) for 40 minutes: a new visit
    kit.visit(home)
    kit.expect_shown("welcome-back", within=2.001)
    assert shown_at(kit, "welcome-back") == 2001


def test_exit_intent_counts_to_the_millisecond_and_spa_routes_rearm_it(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["pricing"])
    kit.advance_to(5)
    kit.exit_intent()  # 5.000 s on the page: "greater 5" is false
    kit.expect_not_shown("exit-offer", during=0.5)
    kit.page.reload()
    kit.wait_ready()
    kit.advance_to(5.001)
    kit.exit_intent()
    kit.expect_shown("exit-offer")
    assert shown_at(kit, "exit-offer") == 5001


def test_spa_exit_intent_is_armed_per_route(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["app"])
    kit.advance(2)
    kit.page.click("#spa-pricing")
    kit.wait_ready()
    kit.advance(0.5)
    kit.exit_intent()  # within the first second of the route: ignored, as after a load
    kit.expect_not_shown("exit-offer", during=5)
    kit.exit_intent()  # 5.5 s into the route
    kit.expect_shown("exit-offer")


def test_phone_exit_intent_is_a_fast_flick_back_up(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN).as_visitor(mobile=True)
    kit.visit(shop["pricing"])
    page = kit.page
    kit.advance(4)
    page.evaluate("window.scrollTo(0, 1500)")
    kit.advance(1)
    page.evaluate("window.scrollTo(0, 1400)")  # reading back up slowly: not an exit
    kit.advance(1)
    kit.expect_not_shown("exit-offer", during=0.5)
    for y in (1300, 1000, 700, 400, 100):  # the flick towards the address bar
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(20)
    kit.expect_shown("exit-offer", within=0.1)


def test_an_in_page_anchor_is_not_a_new_page(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["pricing"])
    kit.advance(15)
    kit.page.evaluate("location.hash = 'faq'")  # what a click on <a href="#faq"> does
    kit.status()
    # 20.001 s after the page opened, whatever the visitor scrolled to.
    kit.expect_shown("pricing-help", within=5.1)


def test_a_swiss_visitor_by_geo_with_an_english_browser(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN).as_visitor(country="CH", city="Zürich")
    kit.visit(shop["geo/home"])
    kit.advance_to(6)
    assert kit.shown() == []
    kit.expect_shown("german", within=0.001)
    assert "We ship to Germany, Austria and Switzerland." in card(kit, "german").inner_text()


def test_a_message_never_takes_the_focus_from_a_visitor_typing(shop, visitor):
    kit = visitor.install(SATURDAY_20_BERLIN)
    kit.visit(shop["checkout"])
    page = kit.page
    page.click("#host-input")
    page.keyboard.type("BREW")
    kit.expect_shown("after-hours", within=15.001)
    page.keyboard.type("10")
    assert page.evaluate("document.activeElement.id") == "host-input"
    assert page.input_value("#host-input") == "BREW10"
    page.keyboard.press("Escape")  # the page's field owns Esc while the visitor types
    kit.status()
    assert shown_ids(page) == ["after-hours"]


def test_a_signed_in_subscriber_gets_the_targeted_message_with_their_name(shop, visitor):
    kit = visitor.install(WEDNESDAY_11_BERLIN)
    kit.visit(shop["beans/ethiopia"])
    kit.expect_not_shown("pro-thanks", during=1)
    kit.page.evaluate("() => proactive('identify', {name: '<b>Ada</b>', plan: 'Pro'})")
    kit.expect_shown("pro-thanks")
    text = card(kit, "pro-thanks").inner_text()
    assert "Thanks for being on Pro, <b>Ada</b>! Your next bag ships Friday." in text  # plain text, never markup
    # identify holds for the page it was called on (nothing about the user is
    # stored): the next page is a visitor's again until the site identifies.
    kit.visit(shop["pricing"])
    kit.page.evaluate("() => proactive('identify', {plan: 'pro'})")
    kit.expect_not_shown("pricing-help", during=25)  # a user is not a visitor
    assert kit.explain("pricing-help")["blocked_by"] == ["audience"]

"""Experiments on a real page: the engine's arm reaches the card, a holdout
visitor sees nothing while the exposure is reported, status() names the arms,
a visitor id is created once and kept; storage blocked: the first variant."""

from __future__ import annotations

import json

from conftest import shown_ids, simple_messages, sync, wait_ready

from test_endpoint import agent_page, boot  # noqa: F401 (a fixture)
from test_shell_persistence import BLOCK_STORAGE

from widget.runtime import bundle as bundle_mod
from widget.runtime import experiments

TEXTS = {"ask": "Questions about plans?", "hand": "Need a hand choosing?"}


def plans_messages(site_id: str) -> dict:
    return simple_messages({
        "id": "plans", "holdout": 20, "content": None,
        "variants": [{"id": arm, "weight": 1, "content": {"text": text}} for arm, text in TEXTS.items()],
        "rules": [{"rule": "time_on_page", "op": "greater", "value": 2}],
    }, site_id=site_id)


def clean(messages: dict) -> dict:
    for m in messages["messages"]:
        if m.get("content") is None:
            m.pop("content")
    return messages


def visitor_in(arm: str, messages: dict) -> str:
    exp = bundle_mod.parse(messages).messages[0].experiment
    return next(v for v in (f"{i:032x}" for i in range(1, 5000)) if experiments.assign(exp, v, "plans") == arm)


def card_texts(page) -> list[str]:
    return page.evaluate("""() => { const el = document.querySelector('proactive-widget');
        if (!el || !el.shadowRoot) return [];
        return [...el.shadowRoot.querySelectorAll('[data-message-id]')].map(e => e.textContent); }""")


def open_as(site, context, url: str, bundle_name: str, visitor: str | None):
    """A fresh page whose stored record already holds `visitor` (a forced id)."""
    page = context.new_page()
    if visitor is not None:
        page.add_init_script(f"""if (!localStorage.getItem({json.dumps('proactive:v1:' + bundle_name)}))
            localStorage.setItem({json.dumps('proactive:v1:' + bundle_name)}, {json.dumps(json.dumps({'v': 1, 'visitor_id': visitor}))});""")
    page.add_init_script("window.__exposed = []; window.addEventListener('load', () => "
                         "proactive('on', 'exposed', (d) => window.__exposed.push(d)));")
    return past_the_rules(page, url)


def past_the_rules(page, url: str):
    """Open `url` under a paused clock and let 3 s pass: the message's rules hold."""
    boot(page, url)
    page.clock.run_for(3000)
    sync(page)
    return page


def test_two_visitors_see_two_arms_and_a_holdout_visitor_sees_nothing(site, browser, guard):
    messages = clean(plans_messages("exp"))
    bundle = site.publish(messages, "exp")
    url = site.page(tag=site.tag(bundle=bundle))
    key = bundle   # the record's key: the tag's data-site, else the bundle URL
    for arm in ("ask", "hand", "holdout"):
        context = browser.new_context()
        context.on("page", guard.attach)
        visitor = visitor_in(arm, messages)
        page = open_as(site, context, url, key, visitor)
        status = page.evaluate("proactive('status')")
        assert status["visitor"] == visitor
        assert status["arms"] == {"plans": arm}
        exposed = page.evaluate("window.__exposed")
        assert [(e["message"], e["arm"]) for e in exposed] == [("plans", arm)]
        if arm == "holdout":
            assert shown_ids(page) == []
            assert status["shown"] == []
        else:
            assert shown_ids(page) == ["plans"]
            assert TEXTS[arm] in card_texts(page)[0]
            assert status["shown"][0]["arm"] == arm
        context.close()


def test_a_visitor_id_is_created_once_and_kept(site, page, guard):
    messages = clean(plans_messages("exp2"))
    bundle = site.publish(messages, "exp2")
    url = site.page(tag=site.tag(bundle=bundle))
    page.goto(url)
    wait_ready(page)
    first = page.evaluate("proactive('status')")["visitor"]
    assert isinstance(first, str) and len(first) == 32
    page.goto(url)
    wait_ready(page)
    assert page.evaluate("proactive('status')")["visitor"] == first
    stored = json.loads(page.evaluate("(k) => localStorage.getItem(k)", f"proactive:v1:{bundle}"))
    assert stored["visitor_id"] == first
    # the record reset (the site's data cleared, no page of it open): a new visitor with a new id
    page.goto(site.page(tag=""))
    page.evaluate("localStorage.clear()")
    page.goto(url)
    wait_ready(page)
    second = page.evaluate("proactive('status')")["visitor"]
    assert isinstance(second, str) and len(second) == 32 and second != first


def test_storage_blocked_sees_the_first_variant_uncounted(site, page, guard):
    messages = clean(plans_messages("exp3"))
    bundle = site.publish(messages, "exp3")
    url = site.page(tag=site.tag(bundle=bundle))
    page.add_init_script(BLOCK_STORAGE)
    past_the_rules(page, url)
    assert shown_ids(page) == ["plans"] and TEXTS["ask"] in card_texts(page)[0]
    status = page.evaluate("proactive('status')")
    assert status["visitor"] is None and status["arms"] == {"plans": "ask"}


def agent_stats(site) -> dict:
    import urllib.request
    req = urllib.request.Request(f"{site.widget_origin}/api/agent/stats", headers=site.agent_auth)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def arms_counted(site, message: str) -> dict:
    for exp in agent_stats(site)["experiments"]:
        if exp["message"] == message:
            return {a["arm"]: (a["exposed"], a["shown"], a["goals"]) for a in exp["arms"]}
    return {}


def test_exposures_and_goals_reach_the_agent_stats_per_arm(site, browser, guard, agent_page):  # noqa: F811
    import time

    messages = clean(simple_messages({
        "id": "plans-measured", "holdout": 30, "content": None,
        "variants": [{"id": arm, "weight": 1, "content": {"text": text}} for arm, text in TEXTS.items()],
        "rules": [{"rule": "time_on_page", "op": "greater", "value": 2}],
    }, site_id="exp4"))
    exp = bundle_mod.parse(messages).messages[0].experiment
    bundle = site.publish(messages, "exp4")
    url = site.page(tag=site.tag(bundle=bundle))

    def visitor(arm):
        return next(v for v in (f"{i:032x}" for i in range(1, 5000)) if experiments.assign(exp, v, "plans-measured") == arm)

    want = {}
    for arm, goal in (("holdout", True), ("hand", True), ("ask", False)):
        context = browser.new_context()
        context.on("page", guard.attach)
        page = open_as(site, context, url, bundle, visitor(arm))
        assert shown_ids(page) == ([] if arm == "holdout" else ["plans-measured"])
        if goal:
            page.evaluate("proactive('goal', 'purchase')")
        want[arm] = (1, 0 if arm == "holdout" else 1, 1 if goal else 0)
        for _ in range(40):   # the batch leaves 2 s after its first event
            page.clock.run_for(250)
            time.sleep(0.05)
            if arms_counted(site, "plans-measured").get(arm) == want[arm]:
                break
        context.close()
    assert arms_counted(site, "plans-measured") == want
    (result,) = [e for e in agent_stats(site)["experiments"] if e["message"] == "plans-measured"]
    assert result["control"] == "holdout"
    hand = next(a for a in result["arms"] if a["arm"] == "hand")
    assert hand["goal_rate"]["value"] == 1.0 and hand["goal_difference"]["value"] == 0.0
    # the agent page's Auto messages view: one row per arm, the goal after exposure counted
    agent_page.click('[data-tab="stats"]')
    row = agent_page.locator('#experiments-table tr[data-message="plans-measured"][data-arm="hand"]')
    row.wait_for()
    assert row.locator("td.exposed").inner_text() == "1"
    assert row.locator("td.goal-rate").inner_text().startswith("1 · 100.0 % (")
    assert row.locator("td.diff").inner_text().startswith("+0.0 (")
    control = agent_page.locator('#experiments-table tr[data-message="plans-measured"][data-arm="holdout"]')
    assert control.locator("td.arm").inner_text() == "holdout (control)"
    assert control.locator("td.goal-rate").inner_text().startswith("1 · 100.0 %")
    # a goal rate of 100 % leaves no room for a rise: no estimate of the visitors needed
    assert agent_page.locator('#experiments-table tr.needed[data-message="plans-measured"]').count() == 0


def test_before_consent_the_first_variant_uncounted_after_it_an_arm(site, page, guard):
    """Consent-first mode (data-consent="required"): before consent there is
    no stored visitor id, so the first variant shows and nothing is exposed
    nor sent; with consent given before the loader, the page has an id and
    the visitor is assigned and exposed."""
    messages = clean(plans_messages("exp5"))
    bundle = site.publish(messages, "exp5")
    tag = site.tag(bundle=bundle, data_consent="required")
    sent = []
    page.on("request", lambda r: "/api/events" in r.url and sent.append(r.post_data))
    page.add_init_script("window.__exposed = []; window.addEventListener('load', () => "
                         "proactive('on', 'exposed', (d) => window.__exposed.push(d)));")
    past_the_rules(page, site.page(tag=tag))
    status = page.evaluate("proactive('status')")
    assert status["consent"] == "pending" and status["visitor"] is None
    assert status["arms"] == {"plans": "ask"} and shown_ids(page) == ["plans"] and TEXTS["ask"] in card_texts(page)[0]
    page.clock.run_for(5000)
    sync(page)
    assert page.evaluate("window.__exposed") == [] and sent == []

    early = ("<script>window.proactive = window.proactive || function () {"
             " (proactive.q = proactive.q || []).push([].slice.call(arguments)); }; proactive('consent', true);</script>")
    past_the_rules(page, site.page(tag=tag, head=early))
    status = page.evaluate("proactive('status')")
    visitor = status["visitor"]
    assert isinstance(visitor, str) and len(visitor) == 32
    exp = bundle_mod.parse(messages).messages[0].experiment
    arm = experiments.assign(exp, visitor, "plans")
    assert status["arms"] == {"plans": arm}
    assert [(e["message"], e["arm"]) for e in page.evaluate("window.__exposed")] == [("plans", arm)]

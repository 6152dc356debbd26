"""Property: Engine.reactions says exactly what `step` will show for the
page's own signals: an exit intent, or a single-page-app route change to a
URL not known in advance, at any instant of its validity window.

The page relies on it to show such a message in the event handler itself,
with no round trip to the worker (widget/decisions/reactions.mjs, docs/decisions.md),
so a wrong answer would be a message the engine never decided. Journeys and
bundles are drawn at random (URL rules of every operator, exit durations,
time rules, priorities, delays, caps, the minimum gap, dismissal cooldowns,
dates, business hours, live presence, audiences and identification); the engine is driven live to a random instant,
then the reaction is compared with a copy of the engine stepped with the
signal at random instants of the window, its ends included."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedule_harness import drive, journey
from widget.runtime.conditions import residual_holds
from widget.runtime.engine import Engine

GRID = 100
T0 = 1_700_000_000_000   # a Tuesday, 22:13 UTC: business hours matter
URLS = ["https://s.example/", "https://s.example/pricing", "https://s.example/pricing/",
        "https://s.example/Pricing?plan=pro", "https://s.example/blog/post-1",
        "https://s.example/blog", "https://s.example/docs/a//b", "https://s.example/#/cart",
        "https://s.example/p?b=2&a=1", "https://shop.example:8443/pricing",
        "http://s.example/checkout?step=2#top"]

url_rule = st.builds(
    lambda rule, op, value: {"rule": rule, "op": op, "value": value} if op not in ("exists", "not_exists")
    else {"rule": rule, "op": op},
    st.sampled_from(["page_url", "page_url", "referrer_url"]),
    st.sampled_from(["equals", "is_not", "contains", "not_contains", "matches", "exists", "not_exists"]),
    st.sampled_from(["/pricing", "pricing", "/blog/*", "*/post-*", "s.example/pricing", "https://s.example/",
                     "/p?a=1&b=2", "/#/cart", "shop.example:8443/*", "CHECKOUT", "/docs/a/b", "/"]),
)
time_rule = st.builds(
    lambda rule, op, value: {"rule": rule, "op": op, "value": value},
    st.sampled_from(["time_on_page", "time_before_exit_intent", "time_before_exit_intent", "time_this_visit",
                     "time_since_last_invitation"]),
    st.sampled_from(["greater", "less", "equals", "is_not"]),
    st.integers(0, 30).map(lambda n: n / 10),
)
count_rule = st.builds(lambda op, n: {"rule": "page_views", "op": op, "value": n},
                       st.sampled_from(["greater", "less", "equals"]), st.integers(0, 3))
leaf = st.one_of(url_rule, url_rule, time_rule, time_rule, count_rule)
rules = st.recursive(st.lists(leaf, max_size=3),
                     lambda inner: st.lists(st.one_of(leaf, inner.filter(bool).map(lambda r: {"any": r}),
                                                      inner.map(lambda r: {"all": r})), max_size=3),
                     max_leaves=6)


@st.composite
def scenarios(draw):
    messages = []
    for i in range(draw(st.integers(1, 4))):
        m = {"id": f"m{i}", "content": {"text": f"Hello {i}"}, "rules": draw(rules),
             "priority": draw(st.integers(0, 2)), "delay": draw(st.sampled_from([0, 0, 0, 0.3]))}
        if draw(st.integers(0, 4)) == 0:
            m["type"] = "email"
        if draw(st.booleans()):
            m["dismissed_for"] = draw(st.sampled_from([0, 0.4, 2]))
        if draw(st.integers(0, 3)) == 0:
            m["caps"] = {draw(st.sampled_from(["per_visit", "lifetime", "per_day"])): draw(st.integers(1, 2))}
        if draw(st.integers(0, 3)) == 0:
            m["team"] = draw(st.sampled_from(["online", "offline"]))
        if draw(st.integers(0, 4)) == 0:
            m["audience"] = draw(st.sampled_from(["users", "visitors"]))
        if draw(st.integers(0, 4)) == 0:
            m["end"] = _iso(T0 + draw(st.integers(1, 60)) * GRID)
        messages.append(m)
    payload = {"site": "prop", "messages": messages,
               "delivery": {"min_gap": draw(st.sampled_from([0, 0.5, 2])),
                            "dismissed_for": draw(st.sampled_from([0, 0.7]))}}
    if draw(st.booleans()):
        # opens 22:14:00 UTC on T0's day: inside the journeys' minutes
        payload["team"] = {"timezone": "UTC", "hours": {"daily": draw(st.sampled_from(["22:14-23:00", "08:00-22:14"]))}}
    kinds = st.sampled_from(["page_view", "page_view", "exit_intent", "dismiss", "widget_open", "widget_close", "tick",
                             "team", "identify"])
    raw = draw(st.lists(st.tuples(st.integers(1, 60), kinds), max_size=8))

    def extra(e):
        if e["type"] == "team":     # live presence overrides business hours
            e["value"] = draw(st.sampled_from(["online", "offline"]))
        elif e["type"] == "identify":
            e["attributes"] = {"plan": "pro"}
    events = journey(draw, raw, messages, GRID, extra)
    for e in events:
        e["t"] += T0
        if e["type"] == "page_view":
            e["url"] = draw(st.sampled_from(URLS))
    stop = T0 + draw(st.integers(0, 70)) * GRID + draw(st.integers(0, 99))
    return payload, events, stop


def _iso(ms: int) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


def drive_to(payload, events, stop) -> Engine:
    """The engine as the page leaves it: stepped at each event and each
    wake-up it asked for, up to `stop`."""
    engine = Engine(payload)
    for _ in drive(engine, events, stop):
        pass
    engine.step([], stop)
    return engine


def shows(engine: Engine, signal: dict) -> list:
    result = copy.deepcopy(engine).step([signal], signal["t"])
    return [(d["message"], d["content"]) for d in result["decisions"] if d["action"] == "show"]


def instants(draw, r, until) -> list:
    start = r["from"]
    end = until - 1 if until is not None else start + 5_000
    picks = {start, end} | set(draw(st.lists(st.integers(start, end), max_size=3)))
    return sorted(picks)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_the_exit_reaction_is_what_step_shows(case, data):
    payload, events, stop = case
    engine = drive_to(payload, events, stop)
    r = engine.reactions()
    assert r is not None
    predicted = [] if r["exit"]["show"] is None else [(r["exit"]["show"]["message"], r["exit"]["show"]["content"])]
    for t in instants(data.draw, r, r["exit"]["until"]):
        assert shows(engine, {"type": "exit_intent", "t": t}) == predicted, (t, r)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_the_route_reaction_is_what_step_shows(case, data):
    payload, events, stop = case
    engine = drive_to(payload, events, stop)
    r = engine.reactions()
    if r["route"] is None:   # a new visit: left to the engine
        rec = engine.record
        assert rec["last_seen"] is None or stop - rec["last_seen"] >= 30 * 60 * 1000
        return
    route = r["route"]
    for t in instants(data.draw, r, route["until"]):
        for url in URLS:
            hit = next((c["show"] for c in route["candidates"] if residual_holds(c["when"], url)), None)
            predicted = [] if hit is None else [(hit["message"], hit["content"])]
            signal = {"type": "page_view", "t": t, "url": url, "referrer": route["referrer"] or "https://elsewhere.example/"}
            assert shows(engine, signal) == predicted, (t, url, r)


def test_a_route_reaction_names_its_url_tests():
    payload = {"site": "s", "messages": [
        {"id": "pricing", "content": {"text": "Plans?"}, "priority": 2,
         "rules": [{"rule": "page_url", "op": "matches", "value": "/pricing/*"}]},
        {"id": "any-page", "content": {"text": "Hi"}, "rules": [{"rule": "page_views", "op": "greater", "value": 1}]},
        {"id": "never", "content": {"text": "-"}, "rules": [{"rule": "page_views", "op": "greater", "value": 9}]},
    ]}
    engine = Engine(payload)
    engine.step([{"type": "page_view", "t": T0, "url": "https://s.example/", "referrer": ""}], T0 + 10)
    r = engine.reactions()
    route = r["route"]
    assert r["from"] == T0 + 10 and route["referrer"] is None   # no rule reads the referrer
    assert [c["show"]["message"] for c in route["candidates"]] == ["pricing", "any-page"]
    assert route["candidates"][0]["when"] == {"url": [["matches", [False, False, False], "/pricing/*"]], "not": False}
    assert route["candidates"][1]["when"] is True
    assert route["until"] == T0 + 30 * 60 * 1000   # the visit ends: a page view then starts a new one
    assert residual_holds(route["candidates"][0]["when"], "https://s.example/PRICING?x=1")
    assert not residual_holds(route["candidates"][0]["when"], "https://s.example/pricingx")


def test_the_exit_reaction_expires_when_a_later_exit_would_decide_otherwise():
    payload = {"site": "s", "messages": [
        {"id": "late", "content": {"text": "Leaving already?"}, "priority": 1,
         "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 30}]},
        {"id": "early", "content": {"text": "Bye"}, "rules": [{"rule": "time_before_exit_intent", "op": "less", "value": 60}]},
    ]}
    engine = Engine(payload)
    engine.step([{"type": "page_view", "t": T0, "url": "https://s.example/", "referrer": ""}], T0 + 1000)
    r = engine.reactions()
    assert r["exit"]["show"]["message"] == "early"
    assert r["exit"]["until"] == T0 + 30_001     # from then on an exit shows "late"
    engine.step([], r["exit"]["until"])
    r = engine.reactions()
    assert r["exit"]["show"]["message"] == "late" and r["exit"]["until"] is None
    assert engine.step([{"type": "exit_intent", "t": T0 + 99_000}], T0 + 99_000)["decisions"][0]["message"] == "late"


@pytest.mark.parametrize("on_screen", [True, False])
def test_nothing_reacts_to_an_exit_while_a_message_is_on_screen(on_screen):
    payload = {"site": "s", "messages": [
        {"id": "welcome", "content": {"text": "Hi"}, "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]
         if on_screen else [{"rule": "page_views", "op": "greater", "value": 5}]},
        {"id": "exit", "content": {"text": "Bye"}, "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 0}]},
    ]}
    engine = Engine(payload)
    engine.step([{"type": "page_view", "t": T0, "url": "https://s.example/", "referrer": ""}], T0 + 500)
    r = engine.reactions()
    assert (r["exit"]["show"] is None) == on_screen


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_renewing_the_answers_at_their_expiry_never_spins(case):
    """The page's timer fires at the earliest of the engine's wake-up and the
    answers' `until`: over a minute that is a handful of wake-ups, never a
    loop of 1 ms steps (a bound that moves with the instant asked about)."""
    payload, events, stop = case
    engine = drive_to(payload, [e for e in events if e["t"] <= stop], stop)
    wakes, t = 0, stop
    while True:
        r = engine.reactions()
        due = [x for x in (engine.next_wakeup(), r["exit"]["until"], (r["route"] or {}).get("until"))
               if x is not None and x <= stop + 60_000]
        if not due:
            break
        t = min(due)
        engine.step([{"type": "tick", "t": t}], t)
        wakes += 1
        assert wakes <= 60, (wakes, t - stop, r)


def test_a_long_candidate_list_is_cut_and_stays_exact():
    """60 URL-only messages: the page gets the 50 best; a URL only a later
    one matches is left to the engine (the page finds none that holds)."""
    payload = {"site": "s", "messages": [
        {"id": f"m{i}", "priority": 0, "content": {"text": f"{i}"},
         "rules": [{"rule": "page_url", "op": "equals", "value": f"/p{i}"}]} for i in range(60)]}
    engine = Engine(payload)
    engine.step([{"type": "page_view", "t": T0, "url": "https://s.example/", "referrer": ""}], T0 + 1)
    route = engine.reactions()["route"]
    assert [c["show"]["message"] for c in route["candidates"]] == [f"m{i}" for i in range(50)]
    assert not any(residual_holds(c["when"], "https://s.example/p55") for c in route["candidates"])
    assert residual_holds(route["candidates"][7]["when"], "https://s.example/p7")
    signal = {"type": "page_view", "t": T0 + 2, "url": "https://s.example/p55", "referrer": "https://s.example/"}
    assert shows(engine, signal)[0][0] == "m55"   # what the round trip then shows

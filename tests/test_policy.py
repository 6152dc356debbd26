"""Delivery policy (widget/runtime/policy.py) through the engine: team
presence and business hours, audience and targeting, email, caps, minimum
gap, dismissal cooldown, start/end dates, priority and one at a time.

Most cases are driven *live*: the test only steps the engine at its own
next_wakeup instants (as the browser's shell does), so a gate that opens
with time must be scheduled to the millisecond, not merely noticed late."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widget.runtime import bundle, policy
from widget.runtime.engine import Engine, merge_records

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
URL = "https://s.example/"


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def msg(mid, rules=None, **kw):
    return {"id": mid, "content": {"text": mid}, "rules": rules or [], **kw}


def page(t, url=URL):
    return {"t": t, "type": "page_view", "url": url, "referrer": ""}


def live(payload, events, until, *, record=None, context=None):
    """Drive like the browser: events at their instants, wake-ups at the
    engine's next_wakeup; returns [(action, message, t)] and the engine."""
    engine = Engine(payload, record=record, context=context)
    out = []
    pending = sorted(events, key=lambda e: e["t"])
    result = None
    while True:
        wake = result["next_wakeup"] if result else None
        nxt_event = pending[0]["t"] if pending else None
        candidates = [x for x in (wake, nxt_event) if x is not None and x <= until]
        if not candidates:
            break
        t = min(candidates)
        batch = [e for e in pending if e["t"] == t]
        pending = [e for e in pending if e["t"] != t]
        result = engine.step(batch, t)
        for d in result["decisions"]:
            assert d["t"] == t or not batch, d   # a wake-up's decision is at the wake-up's instant
            out.append((d["action"], d["message"], d["t"]))
    return out, engine


BERLIN = {"timezone": "Europe/Berlin", "hours": {"mon-fri": "09:00-18:00"}}


# -- team: presence, business hours, unknown ------------------------------------

def test_business_hours_open_the_team_at_nine_berlin_time():
    payload = {"site": "s", "team": BERLIN, "messages": [msg("online", team="online")]}
    start = utc("2026-05-28T05:30:00")   # Thursday 07:30 in Berlin (CEST, UTC+2)
    out, _ = live(payload, [page(start)], start + 4 * HOUR)
    assert out == [("show", "online", utc("2026-05-28T07:00:00"))]


def test_offline_message_shows_outside_hours_and_stops_at_opening():
    payload = {"site": "s", "team": BERLIN, "messages": [msg("offline", team="offline", rules=[
        {"rule": "time_on_page", "op": "greater", "value": 3600}])]}
    start = utc("2026-05-28T06:30:00")   # 08:30 Berlin: offline now, online at 09:00, before the hour passes
    out, _ = live(payload, [page(start)], start + 3 * HOUR)
    assert out == []
    start = utc("2026-05-28T16:30:00")   # 18:30 Berlin: offline, stays offline
    out, _ = live(payload, [page(start)], start + 3 * HOUR)
    assert out == [("show", "offline", start + HOUR + 1)]


@pytest.mark.parametrize("when,online", [
    ("2026-05-30T10:00:00", False),   # Saturday
    ("2026-05-29T06:59:59", False),   # Friday 08:59:59 Berlin
    ("2026-05-29T07:00:00", True),    # Friday 09:00 Berlin
    ("2026-05-29T15:59:59", True),    # 17:59:59
    ("2026-05-29T16:00:00", False),   # 18:00 closes
    ("2026-01-15T08:00:00", True),    # winter (CET, UTC+1): 09:00
    ("2026-01-15T07:59:00", False),
    ("2026-03-30T07:00:00", True),    # the Monday after the spring change: 09:00 CEST
])
def test_business_hours_across_weekdays_and_daylight_saving(when, online):
    payload = {"site": "s", "team": BERLIN, "messages": [msg("m", team="online")]}
    t = utc(when)
    out, _ = live(payload, [page(t)], t)
    assert bool(out) is online


def test_live_presence_overrides_business_hours():
    payload = {"site": "s", "team": BERLIN, "messages": [msg("online", team="online")]}
    saturday = utc("2026-05-30T10:00:00")
    out, _ = live(payload, [page(saturday), {"t": saturday + 5000, "type": "team", "value": "online"}], saturday + HOUR)
    assert out == [("show", "online", saturday + 5000)]


def test_without_presence_or_hours_only_any_messages_show():
    payload = {"site": "s", "messages": [msg("on", team="online"), msg("off", team="offline"), msg("any")]}
    out, _ = live(payload, [page(0)], DAY)
    assert out == [("show", "any", 0)]


def test_closed_days_overnight_ranges_and_fixed_offsets():
    team = {"timezone": "UTC+02:00", "hours": {"daily": "22:00-02:00"}, "closed_on": ["2026-05-29"]}
    payload = {"site": "s", "team": team, "messages": [msg("m", team="online")]}
    t = utc("2026-05-27T23:30:00")   # Thursday 01:30 local: inside Wednesday's 22:00-02:00
    assert live(payload, [page(t)], t)[0] == [("show", "m", t)]
    t = utc("2026-05-28T00:30:00")   # 02:30 local: closed; opens at 22:00 local = 20:00 UTC
    assert live(payload, [page(t)], t + DAY)[0] == [("show", "m", utc("2026-05-28T20:00:00"))]
    t = utc("2026-05-29T20:30:00")   # 22:30 local on a closed day
    assert live(payload, [page(t)], t + HOUR)[0] == []


# -- audience, targeting, email ------------------------------------------------------

def test_audience_visitors_users_all_with_identify():
    payload = {"site": "s", "messages": [msg("visitors", audience="visitors", priority=3),
                                         msg("users", audience="users", priority=2),
                                         msg("all", audience="all", priority=1)]}
    out, _ = live(payload, [page(0), {"t": 10, "type": "dismiss", "message": "visitors"}, page(20)], 30)
    # "visitors" was dismissed: it stays away (default cooldown), so "all" shows again on the next page
    assert out == [("show", "visitors", 0), ("show", "all", 10), ("show", "all", 20)]
    out, _ = live(payload, [{"t": 0, "type": "identify", "attributes": {}}, page(1),
                            {"t": 10, "type": "dismiss", "message": "users"}], 30)
    assert out == [("show", "users", 1), ("show", "all", 10)]


def test_targeted_messages_use_identify_attributes_and_email_is_never_shown():
    payload = {"site": "s", "messages": [
        msg("pro", type="targeted", rules=[{"rule": "user.plan", "op": "equals", "value": "Pro"}]),
        msg("trial", type="targeted", rules=[{"rule": "user.plan", "op": "equals", "value": "trial"}]),
        msg("welcome", type="email", rules=[{"rule": "user.email", "op": "exists"}]),
    ]}
    assert bundle.validate(payload) == []
    events = [page(0), {"t": 100, "type": "identify", "attributes": {"plan": "pro", "email": "a@b.example"}}]
    out, _ = live(payload, events, 1000)
    assert out == [("show", "pro", 100), ("email", "welcome", 100)]
    out, _ = live(payload, [page(0)], 1000)   # not identified: attributes unknown
    assert out == []


def test_user_rules_validate_like_text_rules():
    bad = {"site": "s", "messages": [msg("m", rules=[{"rule": "user.", "op": "equals", "value": "x"},
                                                      {"rule": "user.plan", "op": "greater", "value": 1}])]}
    assert [p.path[-1] for p in bundle.validate(bad)] == ["rule", "op"]


# -- frequency ------------------------------------------------------------------------

def test_caps_per_visit_per_day_and_lifetime():
    payload = {"site": "s", "messages": [msg("m", caps={"per_visit": 1, "lifetime": 2})]}
    left = lambda t: {"t": t, "type": "page_hide"}             # the visitor leaves the site
    events = [page(0), page(MIN), page(2 * MIN), left(2 * MIN),  # one visit: shown once
              page(2 * HOUR), left(2 * HOUR),                  # a new visit: shown again
              page(5 * HOUR)]                                  # third visit: lifetime cap reached
    out, engine = live(payload, events, 6 * HOUR)
    assert out == [("show", "m", 0), ("show", "m", 2 * HOUR)]
    assert engine.record["shows"]["m"][0] == 2


def test_per_day_cap_reopens_exactly_24_hours_later_on_a_long_page():
    payload = {"site": "s", "messages": [msg("m", caps={"per_day": 1})]}
    events = [page(0), page(1000)]   # second page: capped, the page stays open (a kiosk)
    out, _ = live(payload, events, 2 * DAY)
    assert out == [("show", "m", 0), ("show", "m", DAY)]


def test_minimum_gap_between_invitations_is_scheduled_to_the_millisecond():
    payload = {"site": "s", "delivery": {"min_gap": 60},
               "messages": [msg("a", priority=2), msg("b", priority=1)]}
    out, _ = live(payload, [page(0), {"t": 1000, "type": "dismiss", "message": "a"}], 5 * MIN)
    assert out == [("show", "a", 0), ("show", "b", MIN + 1)]


def test_min_gap_does_not_hold_back_email():
    payload = {"site": "s", "delivery": {"min_gap": 600}, "messages": [
        msg("a", audience="all"), msg("mail", type="email", rules=[{"rule": "user.id", "op": "exists"}])]}
    out, _ = live(payload, [page(0), {"t": 5, "type": "identify", "attributes": {"id": "7"}}], MIN)
    assert out == [("show", "a", 0), ("email", "mail", 5)]


def test_dismissed_message_stays_away_for_its_cooldown():
    payload = {"site": "s", "messages": [msg("m", dismissed_for=3600)]}
    events = [page(0), {"t": 1000, "type": "dismiss", "message": "m"},
              page(10 * MIN),                  # within the hour: not again
              page(50 * MIN)]                  # a new visit, still within the hour; reopens at 1 h + 1 s
    out, _ = live(payload, events, 3 * HOUR)
    assert out == [("show", "m", 0), ("show", "m", HOUR + 1000)]


def test_global_dismissal_cooldown_default():
    payload = {"site": "s", "delivery": {"dismissed_for": 60}, "messages": [msg("m")]}
    out, _ = live(payload, [page(0), {"t": 1000, "type": "dismiss", "message": "m"}, page(30_000)], 2 * MIN)
    assert out == [("show", "m", 0), ("show", "m", 61_000)]


def test_start_and_end_dates_in_the_team_time_zone():
    payload = {"site": "s", "team": BERLIN, "messages": [msg("sale", start="2026-06-01", end="2026-06-02")]}
    t = utc("2026-05-31T20:00:00")   # 22:00 Berlin on May 31
    assert live(payload, [page(t)], t + 3 * HOUR)[0] == [("show", "sale", utc("2026-05-31T22:00:00"))]
    t = utc("2026-06-02T21:59:59")   # 23:59:59 Berlin on June 2: the end date is included
    assert live(payload, [page(t)], t)[0] == [("show", "sale", t)]
    t = utc("2026-06-02T22:00:00")
    assert live(payload, [page(t)], t + DAY)[0] == []


def test_start_with_explicit_offset_and_no_team():
    payload = {"site": "s", "messages": [msg("m", start="2026-06-01T12:00:00+02:00")]}
    t = utc("2026-06-01T09:00:00")
    assert live(payload, [page(t)], t + DAY)[0] == [("show", "m", utc("2026-06-01T10:00:00"))]


# -- several at once ---------------------------------------------------------------------

def test_priority_then_file_order_one_on_screen_and_the_queue_rechecks():
    payload = {"site": "s", "messages": [
        msg("first-in-file", priority=1),
        msg("second-in-file", priority=1),
        msg("urgent", priority=5),
        msg("short-lived", priority=3, rules=[{"rule": "time_on_page", "op": "less", "value": 5}]),
    ]}
    events = [page(0), {"t": 1000, "type": "dismiss", "message": "urgent"},
              {"t": 2000, "type": "dismiss", "message": "short-lived"},
              {"t": 3000, "type": "dismiss", "message": "first-in-file"}]
    out, _ = live(payload, events, MIN)
    assert out == [("show", "urgent", 0), ("show", "short-lived", 1000), ("show", "first-in-file", 2000),
                   ("show", "second-in-file", 3000)]
    # The same queue, but "short-lived" no longer holds when the screen frees: it is skipped.
    events = [page(0), {"t": 6000, "type": "dismiss", "message": "urgent"}]
    out, _ = live(payload, events, MIN)
    assert out == [("show", "urgent", 0), ("show", "first-in-file", 6000)]


# -- explain, records, validation --------------------------------------------------------

def test_explain_lists_every_gate():
    payload = {"site": "s", "team": BERLIN, "delivery": {"min_gap": 60},
               "messages": [msg("m", team="online", caps={"lifetime": 1})]}
    engine = Engine(payload)
    t = utc("2026-05-30T10:00:00")   # Saturday
    engine.step([page(t)], t)
    gates = engine.explain(t)["m"]["gates"]
    assert gates["team"] == {"required": "online", "current": "offline", "source": "business hours",
                             "next_change": utc("2026-06-01T07:00:00"), "ok": False,
                             "text": "team must be online, is offline (business hours)"}
    assert list(gates)[:8] == ["team", "audience", "widget", "once_per_user", "schedule", "caps", "min_gap", "dismissed"]
    assert engine.explain(t)["m"]["blocked_by"] == ["team"]


def test_show_history_merges_across_tabs():
    a = {"v": 1, "shows": {"m": [2, [10, 20]], "x": [1, [5]]}}
    b = {"v": 1, "shows": {"m": [3, [20, 30]]}}
    ab, ba = merge_records(a, b), merge_records(b, a)
    assert ab["shows"] == ba["shows"] == {"m": [3, [10, 20, 30]], "x": [1, [5]]}
    assert merge_records(ab, ab)["shows"] == ab["shows"]


BAD = [
    ("team without hours", {"team": {"timezone": "Europe/Berlin"}}, ("team", "hours")),
    ("unknown time zone", {"team": {"timezone": "Mars/Olympus", "hours": {"daily": "09:00-17:00"}}}, ("team", "timezone")),
    ("bad day", {"team": {"hours": {"someday": "09:00-17:00"}}}, ("team", "hours", "someday")),
    ("bad hours", {"team": {"hours": {"mon": "9 to 5"}}}, ("team", "hours", "mon")),
    ("hour 25", {"team": {"hours": {"mon": "09:00-25:00"}}}, ("team", "hours", "mon")),
    ("bad closed day", {"team": {"hours": {"mon": "09:00-17:00"}, "closed_on": ["christmas"]}}, ("team", "closed_on", 0)),
    ("unknown delivery field", {"delivery": {"gap": 5}}, ("delivery", "gap")),
    ("negative gap", {"delivery": {"min_gap": -1}}, ("delivery", "min_gap")),
]


@pytest.mark.parametrize("name,extra,path", BAD, ids=[b[0] for b in BAD])
def test_bad_team_and_delivery_settings(name, extra, path):
    payload = {"site": "s", "messages": [msg("m")], **extra}
    assert [p.path for p in bundle.validate(payload)] == [path]


BAD_MESSAGE = [
    ("cap zero", {"caps": {"per_day": 0}}, ("caps", "per_day")),
    ("unknown cap", {"caps": {"per_week": 1}}, ("caps", "per_week")),
    ("bad start", {"start": "next monday"}, ("start",)),
    ("end before start", {"start": "2026-06-02", "end": "2026-06-01"}, ("end",)),
    ("negative cooldown", {"dismissed_for": -5}, ("dismissed_for",)),
]


@pytest.mark.parametrize("name,fields,path", BAD_MESSAGE, ids=[b[0] for b in BAD_MESSAGE])
def test_bad_message_delivery_fields(name, fields, path):
    payload = {"site": "s", "messages": [msg("m", **fields)]}
    assert [p.path for p in bundle.validate(payload)] == [("messages", 0) + path]


def test_hours_state_reports_the_next_change():
    settings = policy.Settings({"team": BERLIN})
    is_open, nxt = settings.hours.state(utc("2026-05-29T15:00:00"))   # Friday 17:00
    assert is_open and nxt == utc("2026-05-29T16:00:00")
    is_open, nxt = settings.hours.state(utc("2026-05-29T16:00:00"))   # Friday 18:00 → Monday 09:00
    assert not is_open and nxt == utc("2026-06-01T07:00:00")


@st.composite
def _tabs_from_a_common_history(draw, tabs=2):
    """A message's show history (count, instants) at the last agreement, then
    each tab's own later shows (new instants), each tab dropping any number of
    its oldest listed instants as record_show does."""
    listed = sorted(draw(st.sets(st.integers(0, 10_000), max_size=8)))
    count = len(listed) + draw(st.integers(0, 5))      # shows too old to be listed
    fresh = iter(sorted(draw(st.sets(st.integers(10_001, 20_000), min_size=tabs * 4, max_size=tabs * 4))))
    sides, added = [], 0
    for _ in range(tabs):
        mine = [next(fresh) for _ in range(draw(st.integers(0, 4)))]
        added += len(mine)
        kept = listed + mine
        kept = kept[draw(st.integers(0, len(listed))):]   # pruned oldest first
        sides.append({"m": [count + len(mine), kept]})
    for _ in range(tabs * 4 - added):
        next(fresh)
    return sides, count + added


@settings(max_examples=300, deadline=None)
@given(_tabs_from_a_common_history())
def test_two_tabs_showing_a_message_both_count(history):
    """A lifetime cap counts every tab's shows: two tabs that each showed the
    message once since they last agreed add two, not one."""
    (a, b), total = history
    assert policy.merge_shows(a, b)["m"][0] == total
    assert policy.merge_shows(a, b) == policy.merge_shows(b, a)
    assert policy.merge_shows(a, a) == a


@settings(max_examples=300, deadline=None)
@given(_tabs_from_a_common_history(tabs=3))
def test_three_tabs_merge_in_any_order_to_the_same_count(history):
    (a, b, c), total = history
    left = policy.merge_shows(policy.merge_shows(a, b), c)
    right = policy.merge_shows(a, policy.merge_shows(b, c))
    assert left["m"][0] == right["m"][0] == total

"""The delivery gate table (policy.GATES), gate by gate.

Each gate is read through the narrow view the engine hands it (policy.Visitor);
here a `View` with the same members stands in, so every case states the whole
situation it depends on. A table of cases per gate pins what it allows, when
it next changes and how it words a closed gate; a property test checks that
no gate's `allows` changes at an instant its `next_change` did not announce,
and that `opens_at` (derived from the table) is never late nor early."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widget.runtime import bundle, policy
from widget.runtime.engine import Engine

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
BERLIN = {"timezone": "Europe/Berlin", "hours": {"mon-fri": "09:00-18:00"}}


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


T = utc("2026-06-03T10:00:00")   # a Wednesday, 12:00 in Berlin


@dataclass
class View:
    """What a gate may read, and nothing else (policy.Visitor's members)."""

    settings: policy.Settings
    presence: str | None = None
    authenticated: bool = False
    widget: str | None = None
    once: set = field(default_factory=set)
    record: dict = field(default_factory=dict)
    page_url: str | None = "https://s.example/"
    shown: set = field(default_factory=set)
    on_screen: str | None = None

    @property
    def has_page(self) -> bool:
        return self.page_url is not None

    def had_once(self, mid: str) -> bool:
        return mid in self.once

    def shown_on_page(self, mid: str) -> bool:
        return mid in self.shown


def compiled(message: dict | None = None, **top) -> tuple[bundle.Bundle, bundle.Message]:
    b = bundle.parse({"site": "s", "messages": [{"id": "m", "content": {"text": "hi"}, "rules": [],
                                                  **(message or {})}], **top})
    return b, b.messages[0]


def view(b: bundle.Bundle, **kw) -> View:
    return View(settings=b.settings, **kw)


def test_the_view_names_what_the_engine_gives():
    members = {"settings", "presence", "authenticated", "widget", "record", "page_url", "has_page",
               "on_screen", "had_once", "shown_on_page"}
    assert members <= set(dir(policy.Visitor))
    assert members <= set(dir(View)) | set(View.__dataclass_fields__)
    assert set(policy.Visitor.__slots__) == {"_engine"}   # a view, not a copy


# (name, message fields, top-level bundle fields, view fields, t, allows, next_change, words of a closed gate)
CASES = {
    "enabled": [
        ("paused: closed for good", {"enabled": False}, {}, {}, T, False, None,
         "paused (enabled: false): never shown nor emailed"),
    ],
    "team": [
        ("any: open without presence or hours", {"team": "any"}, {}, {}, T, True, None, None),
        ("online required, presence unknown, no hours: closed for good", {"team": "online"}, {}, {}, T,
         False, None, "team must be online, is unknown"),
        ("presence online", {"team": "online"}, {}, {"presence": "online"}, T, True, None, None),
        ("presence beats business hours", {"team": "offline"}, {"team": BERLIN}, {"presence": "online"}, T,
         False, None, "team must be offline, is online"),
        ("business hours open: closes at 18:00 Berlin", {"team": "online"}, {"team": BERLIN}, {}, T,
         True, utc("2026-06-03T16:00:00"), None),
        ("business hours closed: opens Thursday 09:00", {"team": "online"}, {"team": BERLIN}, {},
         utc("2026-06-03T17:00:00"), False, utc("2026-06-04T07:00:00"),
         "team must be online, is offline (business hours)"),
    ],
    "audience": [
        ("visitors, anonymous", {"audience": "visitors"}, {}, {}, T, True, None, None),
        ("users, anonymous", {"audience": "users"}, {}, {}, T, False, None,
         "audience is users, the visitor is an anonymous visitor"),
        ("visitors, logged in", {"audience": "visitors"}, {}, {"authenticated": True}, T, False, None,
         "audience is visitors, the visitor is a logged-in user"),
        ("all", {"audience": "all"}, {}, {"authenticated": True}, T, True, None, None),
    ],
    "widget": [
        ("no widget on the page", {}, {"widgets": [{"id": "a"}]}, {}, T, True, None, None),
        ("other widget", {"widget": "a"}, {"widgets": [{"id": "a"}, {"id": "b"}]}, {"widget": "b"}, T,
         False, None, "for widget a, this is b"),
    ],
    "once_per_user": [
        ("not had yet", {"once_per_user": True}, {}, {}, T, True, None, None),
        ("had it", {"once_per_user": True}, {}, {"once": {"m"}}, T, False, None,
         "once per user, and this visitor already had it"),
        ("not once per user", {}, {}, {"once": {"m"}}, T, True, None, None),
    ],
    "holdout": [
        ("not exposed yet: open (it is decided at the instant it would show)", {"holdout": 10, "experiment": "e1"},
         {}, {}, T, True, None, None),
        ("exposed in a variant arm", {"holdout": 10, "experiment": "e1"}, {},
         {"record": {"exposed": {"m@e1": ["default", T - 1]}}}, T, True, None, None),
        ("exposed in the control group: closed for good", {"holdout": 10, "experiment": "e1"}, {},
         {"record": {"exposed": {"m@e1": ["holdout", T - 1]}}}, T, False, None,
         "the visitor is in the experiment's control group (holdout)"),
        ("held out of an earlier experiment (another salt): open", {"holdout": 10, "experiment": "e2"}, {},
         {"record": {"exposed": {"m@e1": ["holdout", T - 1]}}}, T, True, None, None),
    ],
    "schedule": [
        ("before its start", {"start": "2026-06-04"}, {}, {}, T, False, utc("2026-06-04T00:00:00"),
         "outside its dates (from 2026-06-04T00:00:00.000Z until —)"),
        ("within: changes at the end (the end date included)", {"end": "2026-06-05"}, {}, {}, T,
         True, utc("2026-06-06T00:00:00"), None),
        ("after its end: for good", {"end": "2026-06-01"}, {}, {}, T, False, None,
         "outside its dates (from — until 2026-06-02T00:00:00.000Z)"),
        ("dates in the team's zone", {"start": "2026-06-04"}, {"team": BERLIN}, {}, T,
         False, utc("2026-06-03T22:00:00"), "outside its dates (from 2026-06-03T22:00:00.000Z until —)"),
    ],
    "caps": [
        ("no caps", {}, {}, {"record": {"shows": {"m": [9, [T - 1]]}}}, T, True, None, None),
        ("lifetime reached: for good", {"caps": {"lifetime": 2}}, {}, {"record": {"shows": {"m": [2, []]}}}, T,
         False, None, 'frequency cap reached ({"lifetime": 2}; shown 2 in all, 0 this visit, 0 in 24 h)'),
        ("per visit reached", {"caps": {"per_visit": 1}}, {},
         {"record": {"visit_start": T - HOUR, "shows": {"m": [1, [T - MIN]]}}}, T,
         False, None, 'frequency cap reached ({"per_visit": 1}; shown 1 in all, 1 this visit, 1 in 24 h)'),
        ("per day reached: opens when enough shows are a day old", {"caps": {"per_day": 2}}, {},
         {"record": {"shows": {"m": [3, [T - 5 * HOUR, T - 3 * HOUR, T - HOUR]]}}}, T,
         False, T - 3 * HOUR + DAY,
         'frequency cap reached ({"per_day": 2}; shown 3 in all, 0 this visit, 3 in 24 h)'),
        ("per day open: time only opens it further", {"caps": {"per_day": 2}}, {},
         {"record": {"shows": {"m": [1, [T - HOUR]]}}}, T, True, None, None),
        ("per day and lifetime reached: for good", {"caps": {"per_day": 1, "lifetime": 1}}, {},
         {"record": {"shows": {"m": [1, [T - HOUR]]}}}, T, False, None,
         'frequency cap reached ({"lifetime": 1, "per_day": 1}; shown 1 in all, 0 this visit, 1 in 24 h)'),
    ],
    "min_gap": [
        ("no gap set", {}, {}, {"record": {"last_invitation": T - 1}}, T, True, None, None),
        ("too soon", {}, {"delivery": {"min_gap": 60}}, {"record": {"last_invitation": T - 10_000}}, T,
         False, T + 50_001, "too soon after the last invitation (the gap ends at 2026-06-03T10:00:50.001Z)"),
        ("gap over", {}, {"delivery": {"min_gap": 60}}, {"record": {"last_invitation": T - 60_001}}, T,
         True, None, None),
        ("emails are not invitations", {"type": "email", "audience": "users"}, {"delivery": {"min_gap": 60}},
         {"record": {"last_invitation": T - 1}}, T, True, None, None),
    ],
    "dismissed": [
        ("never dismissed", {}, {}, {}, T, True, None, None),
        ("dismissed: away a day by default", {}, {}, {"record": {"dismissed": {"m": T - HOUR}}}, T,
         False, T - HOUR + DAY, "dismissed by the visitor, away until 2026-06-04T09:00:00.000Z"),
        ("the message's own cooldown", {"dismissed_for": 60}, {"delivery": {"dismissed_for": 7200}},
         {"record": {"dismissed": {"m": T - 30_000}}}, T, False, T + 30_000,
         "dismissed by the visitor, away until 2026-06-03T10:00:30.000Z"),
        ("the bundle's cooldown, over", {}, {"delivery": {"dismissed_for": 60}},
         {"record": {"dismissed": {"m": T - 60_000}}}, T, True, None, None),
    ],
    "page": [
        ("a page is open", {}, {}, {}, T, True, None, None),
        ("no page view yet", {}, {}, {"page_url": None}, T, False, None, "no page view yet"),
    ],
    "per_page": [
        ("not shown on this page", {}, {}, {}, T, True, None, None),
        ("shown on this page", {}, {}, {"shown": {"m"}}, T, False, None, "already shown on this page"),
    ],
    "screen": [
        ("nothing on screen", {}, {}, {}, T, True, None, None),
        ("itself on screen", {}, {}, {"on_screen": "m"}, T, True, None, None),
        ("another on screen", {}, {}, {"on_screen": "x"}, T, False, None, "another message is on screen (x)"),
    ],
}


def test_every_gate_has_cases():
    assert list(CASES) == [g.name for g in policy.GATES]


FLAT = [(gate, *case) for gate, cases in CASES.items() for case in cases]


@pytest.mark.parametrize("gate,name,message,top,state,t,allows,next_change,words", FLAT,
                         ids=[f"{c[0]}: {c[1]}" for c in FLAT])
def test_gate(gate, name, message, top, state, t, allows, next_change, words):
    b, msg = compiled(message, **top)
    v = view(b, **state)
    g = policy.GATES_BY_NAME[gate]
    assert g.allows(v, msg, t) is allows
    assert g.next_change(v, msg, t) == next_change
    entry = policy.explain(v, msg, t)[gate]
    assert entry["ok"] is allows
    assert entry.get("text") == words
    if words is not None:
        assert policy.describe(gate, {k: x for k, x in entry.items() if k != "text"}) == words


def test_the_holdout_gate_is_listed_only_for_experiments():
    b, msg = compiled()
    assert "holdout" not in policy.explain(view(b), msg, T)
    b, msg = compiled({"holdout": 5})
    assert policy.explain(view(b), msg, T)["holdout"] == {"held_out": False, "ok": True}


def test_the_enabled_gate_is_listed_only_for_paused_messages():
    b, msg = compiled({"enabled": True})
    assert "enabled" not in policy.explain(view(b), msg, T)
    b, msg = compiled({"enabled": False})
    assert policy.explain(view(b), msg, T)["enabled"]["ok"] is False


def test_a_paused_message_is_never_shown_nor_emailed():
    from widget.runtime.simulate import simulate

    messages = [{"id": "shown", "priority": 1, "content": {"text": "a"}, "rules": []},
                {"id": "paused", "enabled": False, "priority": 9, "content": {"text": "b"}, "rules": []},
                {"id": "mail", "type": "email", "enabled": False, "content": {"text": "c"}, "rules": []}]
    journey = {"visitor": {"authenticated": True},
               "events": [{"t": 0, "type": "page_view", "url": "https://s.example/"},
                          {"t": 5, "type": "dismiss", "message": "shown"},
                          {"t": 10, "type": "page_view", "url": "https://s.example/b"}], "until": 60}
    out = simulate({"site": "s", "messages": [dict(m, audience="all") for m in messages]}, journey)
    assert [s["message"] for s in out["shown"]] == ["shown"]
    assert out["emails"] == []
    active = simulate({"site": "s", "messages": [dict(m, audience="all", enabled=True) for m in messages]}, journey)
    assert {s["message"] for s in active["shown"]} >= {"paused"} and active["emails"]


def test_enabled_must_be_true_or_false():
    problems = bundle.validate({"site": "s", "messages": [{"id": "m", "enabled": "no", "rules": []}]})
    assert [(p.path, p.expected) for p in problems] == [(("messages", 0, "enabled"), "true or false")]


def test_screen_is_not_a_gate_of_emails():
    b, msg = compiled({"type": "email", "audience": "users"})
    assert "screen" not in policy.explain(view(b, on_screen="x"), msg, T)


def test_an_unknown_gate_is_still_worded():
    assert policy.describe("someday", {"ok": False, "why": "new"}) == "someday closed (why new)"


def test_the_engine_explains_with_the_table():
    payload = {"site": "s", "messages": [{"id": "m", "audience": "users", "content": {"text": "x"}, "rules": []}]}
    engine = Engine(payload)
    engine.step([{"t": T, "type": "page_view", "url": "https://s.example/"}], T)
    entry = engine.explain(T)["m"]
    # not an experiment, not paused
    assert list(entry["gates"]) == [g.name for g in policy.GATES if g.name not in ("holdout", "enabled")]
    assert entry["blocked_by"] == ["audience"]
    assert entry["gates"]["audience"]["text"] == "audience is users, the visitor is an anonymous visitor"


# -- property: allows changes only where next_change said it may ------------------------

SITUATIONS = st.fixed_dictionaries({
    "team": st.sampled_from(["any", "online", "offline"]),
    "presence": st.sampled_from([None, None, "online", "offline"]),
    "hours": st.sampled_from([None, BERLIN, {"timezone": "America/New_York", "hours": {"daily": "22:00-02:00"}}]),
    "caps": st.fixed_dictionaries({}, optional={"per_day": st.integers(1, 3), "per_visit": st.integers(1, 3),
                                                "lifetime": st.integers(1, 4)}),
    "shows": st.lists(st.integers(-2 * DAY, 0), max_size=4),
    "visit_start": st.sampled_from([None, -HOUR, -3 * DAY]),
    "last_invitation": st.sampled_from([None, -10_000, -HOUR, 5_000]),
    "min_gap": st.sampled_from([0, 60, 3600]),
    "dismissed": st.sampled_from([None, -HOUR, -10 * MIN]),
    "dismissed_for": st.sampled_from([None, 0, 60, 7200]),
    "start": st.sampled_from([None, "2026-06-04", "2026-06-01T12:00"]),
    "end": st.sampled_from([None, "2026-06-05", "2026-06-12T08:30"]),
    "type": st.sampled_from(["proactive", "email"]),
})


def situation(s: dict) -> tuple[View, bundle.Message]:
    message = {"team": s["team"], "type": s["type"], "audience": "all"}
    if s["caps"]:
        message["caps"] = s["caps"]
    if s["dismissed_for"] is not None:
        message["dismissed_for"] = s["dismissed_for"]
    for key in ("start", "end"):
        if s[key] is not None:
            message[key] = s[key]
    if s["start"] and s["end"] and s["end"] < s["start"]:
        message.pop("end")
    top = {"delivery": {"min_gap": s["min_gap"]}}
    if s["hours"]:
        top["team"] = s["hours"]
    b, msg = compiled(message, **top)
    shows = sorted(T + x for x in s["shows"])
    record = {"shows": {"m": [len(shows), shows]} if shows else {},
              "visit_start": None if s["visit_start"] is None else T + s["visit_start"],
              "last_invitation": None if s["last_invitation"] is None else T + s["last_invitation"],
              "dismissed": {} if s["dismissed"] is None else {"m": T + s["dismissed"]}}
    return view(b, presence=s["presence"], record=record), msg


def probes(t: int, until: int | None, extra: list[int]) -> list[int]:
    """Instants in (t, until): both ends' neighbours, then a spread."""
    end = until if until is not None else t + 12 * DAY
    points = {t + 1, end - 1, *(t + (end - t) * k // 17 for k in range(1, 17)), *extra}
    return sorted(p for p in points if t < p < end)


@settings(max_examples=300, deadline=None)
@given(SITUATIONS, st.integers(-DAY, 3 * DAY), st.lists(st.integers(1, 6 * DAY), max_size=3))
def test_allows_changes_only_where_next_change_said(s, offset, extra):
    v, msg = situation(s)
    t = T + offset
    for gate in policy.DELIVERY_GATES:
        now = gate.allows(v, msg, t)
        nxt = gate.next_change(v, msg, t)
        assert nxt is None or nxt > t, gate.name
        for p in probes(t, nxt, [t + e for e in extra]):
            assert gate.allows(v, msg, p) is now, (gate.name, t, p, nxt)
        if nxt is not None and gate.name != "team":   # business hours may announce a DST switch that changes nothing
            assert gate.allows(v, msg, nxt) is not now, (gate.name, t, nxt)


@settings(max_examples=300, deadline=None)
@given(SITUATIONS, st.integers(-DAY, 3 * DAY))
def test_opens_at_is_exactly_when_every_closed_gate_may_open(s, offset):
    v, msg = situation(s)
    t = T + offset
    if policy.allows(v, msg, t):
        assert policy.opens_at(v, msg, t) is None
        return
    opens = policy.opens_at(v, msg, t)
    for p in probes(t, opens, []):
        assert not policy.allows(v, msg, p), (t, p, opens)
    if opens is not None:
        # every gate closed at t has had its announced change by then
        closed = [g for g in policy.DELIVERY_GATES if not g.allows(v, msg, t)]
        assert opens == max(g.next_change(v, msg, t) for g in closed)

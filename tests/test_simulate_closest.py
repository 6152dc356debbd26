"""`simulate --explain` finds each message's closest instant without
explaining every message at every instant (widget/runtime/simulate.py,
`_Closest`): the result must be exactly the brute-force one — every
message's full explain entry at every instant, the closest kept — on the
issue's scenario, the studio's bench file, and random journeys over
messages that use every kind of gate that opens or closes with time."""

from __future__ import annotations

import json

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from widget.runtime import simulate as sim
from test_simulate import MESSAGES, SCENARIO


class BruteForce(sim._Closest):
    """The reference: every message, every instant, its full entry."""

    def look(self, t, changed):
        for mid, entry in self.engine.explain(t, decisive=False).items():
            kept = self.kept.get(mid)
            if kept is not None and (kept[0] is None or kept[0] <= sim.closeness(entry)):
                continue
            self.kept[mid] = (sim.closeness(entry), sim._readable(entry) | {"at": sim._secs(t)})


def both(doc, journey, monkeypatch):
    fast = sim.simulate(doc, journey, explain=True)
    with monkeypatch.context() as m:
        m.setattr(sim, "_Closest", BruteForce)
        slow = sim.simulate(doc, journey, explain=True)
    return json.loads(json.dumps(fast)), json.loads(json.dumps(slow))


def test_the_issue_scenario_explains_as_the_brute_force(monkeypatch):
    fast, slow = both(yaml.safe_load(MESSAGES), SCENARIO, monkeypatch)
    assert fast == slow and fast["explain"]


def test_the_studio_bench_file_explains_as_the_brute_force(monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from studio import messages

    journey = {"visitor": {"language": "en"}, "until": 600, "events": [
        *({"t": 120 * k, "type": "page_view", "url": f"https://b.example/p{k}", "referrer": ""} for k in range(5)),
        {"t": 590, "type": "exit_intent", "how": "pointer"}]}
    fast, slow = both(messages(60), journey, monkeypatch)
    assert fast == slow and len(fast["explain"]) == 60


GATED = {
    "site": "acme",
    "team": {"timezone": "UTC", "hours": {"daily": "00:00-00:02"}},
    "delivery": {"min_gap": 20, "dismissed_for": 15},
    "messages": [
        {"id": "capped", "caps": {"per_visit": 1, "per_day": 2}, "rules": [{"rule": "time_on_page", "op": "greater", "value": 5}],
         "content": {"text": "a"}},
        {"id": "offline", "team": "offline", "rules": [{"rule": "page_url", "op": "contains", "value": "/b"}],
         "content": {"text": "b"}},
        {"id": "later", "start": "1970-01-01T00:01", "rules": [{"rule": "time_this_visit", "op": "greater", "value": 30}],
         "content": {"text": "c"}},
        {"id": "chatty", "delay": 7, "rules": {"any": [{"rule": "time_without_agent_reply", "op": "greater", "value": 12},
                                                       {"rule": "time_since_widget_closed", "op": "less", "value": 9}]},
         "content": {"text": "d"}},
        {"id": "exit", "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 3},
                                 {"rule": "page_views", "op": "greater", "value": 1}], "content": {"text": "e"}},
        {"id": "once", "once_per_user": True, "dismissed_for": 40,
         "rules": [{"rule": "time_since_last_invitation", "op": "greater", "value": 10}], "content": {"text": "f"}},
    ]}
EVENTS = st.one_of(
    st.builds(lambda p: {"type": "page_view", "url": f"https://a.example/{p}", "referrer": ""}, st.sampled_from("ab")),
    st.sampled_from([{"type": "exit_intent"}, {"type": "widget_open"}, {"type": "widget_close"},
                     {"type": "visitor_message"}, {"type": "agent_message"}, {"type": "team", "value": "offline"},
                     {"type": "team", "value": "online"}]),
    st.builds(lambda m: {"type": "dismiss", "message": m}, st.sampled_from([m["id"] for m in GATED["messages"]])))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 150), EVENTS), max_size=10), st.integers(0, 200))
def test_random_journeys_over_every_timed_gate_explain_as_the_brute_force(steps, until):
    import pytest

    events = [{"t": 0, "type": "page_view", "url": "https://a.example/a", "referrer": ""}]
    events += [dict(e, t=t) for t, e in steps]
    journey = {"visitor": {"language": "en"}, "events": events, "until": max([until] + [t for t, _ in steps])}
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = both(GATED, journey, monkeypatch)
    assert fast == slow


def test_a_gate_that_opens_by_itself_is_seen_at_the_next_instant(monkeypatch):
    """`later`'s start date passes at 60 s with no event; the next instant is
    a wake-up at 70 s with no decision (`delayed`'s rules turn true, its
    delay starts): `later` came closest there, not at the journey's end."""
    doc = {"site": "acme", "messages": [
        {"id": "later", "start": "1970-01-01T00:01", "rules": [{"rule": "page_url", "op": "contains", "value": "/never"}],
         "content": {"text": "a"}},
        {"id": "delayed", "delay": 50, "rules": [{"rule": "time_on_page", "op": "greater", "value": 70}],
         "content": {"text": "b"}}]}
    journey = {"until": 100, "events": [{"t": 0, "type": "page_view", "url": "https://a.example/", "referrer": ""}]}
    fast, slow = both(doc, journey, monkeypatch)
    assert fast == slow
    assert fast["explain"]["later"]["at"] == 70.001 and fast["explain"]["later"]["blocked_by"] == []

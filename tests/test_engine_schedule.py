"""Property: the engine's own schedule (next_wakeup) gives exactly the
decisions of a brute-force evaluation at every 100 ms step.

Events and thresholds lie on a 100 ms grid, so every instant at which a
decision can change lies on a grid step g or just after it (`greater` turns
true 1 ms after its threshold, and a decision at g+1 can start a chain that
adds one more millisecond per link). The brute force has no schedule and no
incremental cache: it re-evaluates every message at g, g+1, ..., g+4 for
every grid step."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedule_harness import drive_brute, drive_late, drive_live, journey

GRID = 100
DURATIONS = ["time_on_page", "time_this_visit", "time_since_last_invitation",
             "time_since_widget_closed", "time_without_agent_reply"]


tenths = st.integers(min_value=0, max_value=60).map(lambda n: n / 10)
duration_cond = st.builds(lambda r, op, v: {"rule": r, "op": op, "value": v},
                          st.sampled_from(DURATIONS), st.sampled_from(["greater", "less", "equals", "is_not"]), tenths)
exit_cond = st.builds(lambda op, v: {"rule": "time_before_exit_intent", "op": op, "value": v},
                      st.sampled_from(["greater", "less", "equals"]), tenths)
event_cond = st.sampled_from([
    {"rule": "widget_opened", "op": "is_true"}, {"rule": "widget_opened", "op": "is_false"},
    {"rule": "invitations_sent", "op": "less", "value": 2}, {"rule": "invitations_sent", "op": "greater", "value": 0},
    {"rule": "page_views", "op": "greater", "value": 1}, {"rule": "chat_history", "op": "exists"},
    {"rule": "page_url", "op": "contains", "value": "/p"}, {"rule": "page_url", "op": "is_not", "value": "/p"},
    {"rule": "country", "op": "equals", "value": "DE"},
])
leaf = st.one_of(duration_cond, duration_cond, exit_cond, event_cond)
tree = st.recursive(leaf, lambda kids: st.one_of(
    st.builds(lambda xs: {"all": xs}, st.lists(kids, min_size=1, max_size=3)),
    st.builds(lambda xs: {"any": xs}, st.lists(kids, min_size=1, max_size=3))), max_leaves=5)


@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=1, max_value=3))
    messages = [{"id": f"m{i}", "content": {}, "rules": draw(tree),
                 "delay": draw(st.sampled_from([0, 0, 0.5, 1.2])),
                 "priority": draw(st.integers(0, 2)), "once_per_user": draw(st.booleans()),
                 "team": draw(st.sampled_from(["any", "any", "online"]))} for i in range(n)]
    kinds = st.sampled_from(["page_view", "exit_intent", "widget_open", "widget_close",
                             "visitor_message", "agent_message", "dismiss", "team", "tick", "geo"])
    raw = draw(st.lists(st.tuples(st.integers(1, 120), kinds), max_size=10))

    def extra(e):
        if e["type"] == "geo":
            e["country"] = draw(st.sampled_from(["DE", "FR", None]))
        elif e["type"] == "team":
            e["value"] = draw(st.sampled_from(["online", "offline"]))

    events = journey(draw, raw, messages, GRID, extra)
    return {"site": "prop", "messages": messages}, events


END = 150 * GRID


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_schedule_matches_brute_force_every_100ms(case):
    payload, events = case
    # The engine as the page drives it (events as they happen, one timer)
    # against a brute force at every 100 ms step (and the 4 ms after each).
    assert drive_live(payload, events, END) == drive_brute(payload, events, END, GRID, 5)


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_one_late_step_gives_the_same_decisions_as_live_driving(case):
    """A caller that wakes late (one step with everything) still gets every
    decision stamped with its exact instant."""
    payload, events = case
    assert drive_late(payload, events, END) == drive_live(payload, events, END)

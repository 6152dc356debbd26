"""Property: with delivery policy gates (minimum gap, dismissal cooldowns,
caps, start/end instants), the engine driven at its own next_wakeup gives
exactly the decisions of a brute-force evaluation at every grid step.

Same method as tests/test_engine_schedule.py: events and every authored
duration lie on a 100 ms grid; a gate opens at a grid instant or a few
milliseconds after one (the minimum gap opens 1 ms after `last + gap`, and a
show can itself happen a few ms after a grid step), so the brute force
steps g, g+1, ..., g+7 with no schedule and no incremental cache."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedule_harness import drive_brute, drive_late, drive_live, journey

GRID = 100
END = 150 * GRID
SUBSTEPS = 8


def iso(ms: int) -> str:
    return f"1970-01-01T00:00:{ms // 1000:02d}.{ms % 1000:03d}+00:00"


tenths = st.integers(min_value=0, max_value=40).map(lambda n: n / 10)
rule = st.sampled_from([
    [], [{"rule": "time_on_page", "op": "greater", "value": 0.5}],
    [{"rule": "time_on_page", "op": "less", "value": 6}],
    [{"rule": "page_views", "op": "greater", "value": 1}],
    [{"rule": "time_since_last_invitation", "op": "greater", "value": 0.3}],
])


@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=1, max_value=3))
    messages = []
    for i in range(n):
        m = {"id": f"m{i}", "content": {"text": f"m{i}"}, "rules": draw(rule),
             "priority": draw(st.integers(0, 2)), "delay": draw(st.sampled_from([0, 0, 0.4]))}
        if draw(st.booleans()):
            m["dismissed_for"] = draw(tenths)
        if draw(st.booleans()):
            m["caps"] = {draw(st.sampled_from(["per_visit", "lifetime", "per_day"])): draw(st.integers(1, 2))}
        start = draw(st.integers(0, 80))
        if draw(st.booleans()):
            m["start"] = iso(start * GRID)
        if draw(st.booleans()):
            m["end"] = iso(draw(st.integers(start + 1, 150)) * GRID)
        messages.append(m)
    payload = {"site": "prop", "messages": messages,
               "delivery": {"min_gap": draw(st.sampled_from([0, 0.5, 1.2, 3])),
                            "dismissed_for": draw(st.sampled_from([0, 0.7, 2]))}}
    kinds = st.sampled_from(["page_view", "dismiss", "dismiss", "widget_open", "tick"])
    raw = draw(st.lists(st.tuples(st.integers(1, 140), kinds), max_size=12))
    events = journey(draw, raw, messages, GRID)
    return payload, events


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_policy_gates_are_scheduled_exactly(case):
    payload, events = case
    assert drive_live(payload, events, END) == drive_brute(payload, events, END, GRID, SUBSTEPS)


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_one_late_step_equals_live_driving_with_policy(case):
    payload, events = case
    assert drive_late(payload, events, END) == drive_live(payload, events, END)

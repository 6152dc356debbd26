"""Condition evaluation: truth, next time-based change, and traces."""

import pytest

from widget.runtime.conditions import compile_rules, facts_from_state

ANCHOR = 1_000_000


def cond(rule, op, value=None):
    d = {"rule": rule, "op": op}
    if value is not None:
        d["value"] = value
    return d


# (name, rules, now - ANCHOR, expected truth, expected next change - ANCHOR or None)
TIMELINE = [
    ("greater: false until, change at +1 ms", cond("time_on_page", "greater", 30), 0, False, 30_001),
    ("greater: true for ever after", cond("time_on_page", "greater", 30), 30_001, True, None),
    ("less: true, turns false at the threshold", cond("time_on_page", "less", 30), 29_999, True, 30_000),
    ("less: false for ever after", cond("time_on_page", "less", 30), 30_000, False, None),
    ("equals: before the window", cond("time_on_page", "equals", 30), 10, False, 30_000),
    ("equals: inside the window", cond("time_on_page", "equals", 30), 30_000, True, 31_000),
    ("equals: after the window", cond("time_on_page", "equals", 30), 31_000, False, None),
    ("equals list: next window", cond("time_on_page", "equals", [10, 30]), 11_000, False, 30_000),
    ("is_not: true before, changes at the window", cond("time_on_page", "is_not", 30), 0, True, 30_000),
    ("all false on an event fact: no time change", {"all": [cond("country", "equals", "DE"), cond("time_on_page", "greater", 5)]}, 0, False, None),
    ("all waits for its time condition", {"all": [cond("widget_opened", "is_false"), cond("time_on_page", "greater", 5)]}, 0, False, 5_001),
    ("all true: earliest member change", {"all": [cond("time_on_page", "less", 50), cond("time_on_page", "less", 20)]}, 0, True, 20_000),
    ("any true on an event fact: no time change", {"any": [cond("widget_opened", "is_false"), cond("time_on_page", "less", 5)]}, 0, True, None),
    ("any false: earliest member change", {"any": [cond("time_on_page", "greater", 50), cond("time_on_page", "greater", 20)]}, 0, False, 20_001),
    ("exit intent has no time change", cond("time_before_exit_intent", "greater", 1), 0, False, None),
]


@pytest.mark.parametrize("name,rules,offset,truth,change", TIMELINE, ids=[t[0] for t in TIMELINE])
def test_truth_and_next_change(name, rules, offset, truth, change):
    facts = {"time_on_page": ANCHOR, "widget_opened": False}
    ok, nxt = compile_rules(rules).evaluate(facts, ANCHOR + offset)
    assert ok is truth
    assert nxt == (None if change is None else ANCHOR + change)


def test_next_change_is_never_in_the_past_or_present():
    node = compile_rules(cond("time_on_page", "equals", [0, 1, 2]))
    for offset in range(0, 4000, 250):
        _, nxt = node.evaluate({"time_on_page": ANCHOR}, ANCHOR + offset)
        assert nxt is None or nxt > ANCHOR + offset


def test_exit_intent_is_known_only_at_its_instant():
    node = compile_rules(cond("time_before_exit_intent", "greater", 10))
    facts = {"time_before_exit_intent": (ANCHOR, 12_000)}
    assert node.evaluate(facts, ANCHOR) == (True, None)
    assert node.evaluate(facts, ANCHOR + 1) == (False, None)
    assert node.trace(facts, ANCHOR + 1)[0]["result"] == "unknown"


@pytest.mark.parametrize("name,rules,state,observed,result", [
    ("seconds as floats", cond("time_on_page", "greater", 30), {"time_on_page": 12_345}, 12.345, "false"),
    ("unknown says unknown", cond("country", "is_not", "DE"), {}, None, "unknown"),
    ("exists on unknown is plainly false", cond("city", "exists"), {}, None, "false"),
    ("not_exists on unknown is true", cond("city", "not_exists"), {}, None, "true"),
    ("counts default to zero", cond("invitations_sent", "less", 1), {}, 0, "true"),
    ("text as observed", cond("city", "equals", "Berlin"), {"city": "Berlin"}, "Berlin", "true"),
])
def test_trace_entries(name, rules, state, observed, result):
    facts, now = facts_from_state(state)
    (entry,) = compile_rules(rules).trace(facts, now)
    assert entry["observed"] == observed and entry["result"] == result
    assert entry["rule"] == rules["rule"] and entry["op"] == rules["op"]


def test_user_agent_trace_names_what_it_saw():
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/76.0.3809.100 Safari/537.36"
    facts, now = facts_from_state({"user_agent": ua})
    (entry,) = compile_rules(cond("user_agent", "equals", "Windows 10")).trace(facts, now)
    assert entry["result"] == "true" and entry["observed"] == ua
    assert entry["observed_as"].startswith("Chrome 76 on windows 10")


def test_trace_paths_follow_the_authored_tree():
    rules = {"all": [cond("visits", "greater", 1), {"any": [cond("city", "exists"), cond("country", "exists")]}]}
    facts, now = facts_from_state({})
    assert [e["path"] for e in compile_rules(rules).trace(facts, now)] == [["all", 0], ["all", 1, "any", 0], ["all", 1, "any", 1]]


@pytest.mark.parametrize("rule,op,value", [
    ("page_url", "bogus", "X"),              # no such operator: never "equals"
    ("page_url", "greater", 3),              # an operator of another kind
    ("utm_term", "matches", "run*"),
    ("country", "contains", "DE"),
    ("time_on_page", "matches", 3),
    ("no_such_rule", "equals", "x"),
    ("page_url", None, "X"),
])
def test_unknown_rules_and_operators_are_refused_not_guessed(rule, op, value):
    from widget.runtime.conditions import NotCompilable

    with pytest.raises(NotCompilable):
        compile_rules({"all": [cond("visits", "greater", 0), {"rule": rule, "op": op, "value": value}]})

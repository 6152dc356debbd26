"""Experiments (widget/runtime/experiments.py): authoring checks, assignment,
exposure at the instant a message would show, holdout, arms and the record.

Reference values come from scipy (chi-square), not from the code under test."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from widget.runtime import bundle, experiments, record
from widget.runtime.engine import Engine

N_IDS = 100_000
PV = {"t": 0, "type": "page_view", "url": "https://s.example/", "referrer": ""}


def ids(n: int, seed: int = 17) -> list[str]:
    """Random visitor ids, shaped like the page's (32 hex digits)."""
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(n)]


def message(**fields) -> dict:
    out = {"id": "plans", "rules": {"rule": "time_on_page", "op": "greater", "value": 5},
           "variants": [{"id": "a", "weight": 1, "content": {"text": "Questions about plans?"}},
                        {"id": "b", "weight": 1, "content": {"text": "Need a hand choosing?"}}]}
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def payload(*messages, version=1) -> dict:
    return {"site": "s", "version": version, "messages": list(messages)}


def experiment_of(*weights, holdout=0, salt=None) -> experiments.Experiment:
    variants = [{"id": f"v{i}", "weight": w, "content": {"text": f"v{i}"}} for i, w in enumerate(weights)]
    b = bundle.parse(payload(message(variants=variants, holdout=holdout or None, experiment=salt)))
    return b.messages[0].experiment


def arms_of(exp, visitors) -> list[str]:
    return [experiments.assign(exp, v, "plans") for v in visitors]


# -- authoring -----------------------------------------------------------------

@pytest.mark.parametrize("fields,where,text", [
    ({"variants": [{"id": "a", "weight": 0, "content": {"text": "x"}}]}, "variants.0.weight", "not a weight"),
    ({"variants": [{"id": "a", "weight": -1, "content": {"text": "x"}}]}, "variants.0.weight", "not a weight"),
    ({"variants": [{"id": "a", "weight": True, "content": {"text": "x"}}]}, "variants.0.weight", "not a weight"),
    ({"variants": [{"id": "a", "content": {"text": "x"}}, {"id": "a", "content": {"text": "y"}}]},
     "variants.1.id", "duplicate variant id 'a'"),
    ({"variants": [{"id": "holdout", "content": {"text": "x"}}]}, "variants.0.id", "control group"),
    ({"variants": [{"id": "A b", "content": {"text": "x"}}]}, "variants.0.id", "bad variant id"),
    ({"variants": [{"id": "a", "weight": 1}]}, "variants.0.content", "needs its content"),
    ({"variants": [{"id": "a", "content": {"text": "x"}, "colour": 1}]}, "variants.0.colour", "unknown field"),
    ({"variants": []}, "variants", "non-empty list"),
    ({"holdout": 51}, "holdout", "not a holdout percentage"),
    ({"holdout": -1}, "holdout", "not a holdout percentage"),
    ({"holdout": "10%"}, "holdout", "not a holdout percentage"),
    ({"experiment": "no spaces"}, "experiment", "not an experiment name"),
    ({"content": {"text": "x"}}, "content", "takes its content from them"),
])
def test_validate_names_each_problem(fields, where, text):
    problems = bundle.validate(payload(message(**fields)))
    assert any(".".join(map(str, p.path)) == f"messages.0.{where}" and text in p.message for p in problems), problems


def test_a_valid_experiment_compiles_its_arms():
    exp = bundle.parse(payload(message(holdout=20))).messages[0].experiment
    assert [(a.id, a.weight) for a in exp.arms] == [("a", 1.0), ("b", 1.0), ("holdout", 0.5)]   # 20 % of the whole
    assert exp.first.id == "a" and exp.holdout == 20
    only_holdout = bundle.parse(payload(message(variants=None, content={"text": "hi"}, holdout=10))).messages[0]
    assert [a.id for a in only_holdout.experiment.arms] == ["default", "holdout"]
    plain = bundle.parse(payload(message(variants=None, content={"text": "hi"}))).messages[0]
    assert plain.experiment is None


def test_the_salt_is_stable_unless_the_arms_change():
    base = experiment_of(1, 1, holdout=10)
    assert experiment_of(3, 1, holdout=10).salt == base.salt          # weights: the same experiment
    assert experiment_of(1, 1, holdout=30).salt == base.salt          # holdout size: the same experiment
    assert experiment_of(1, 1, 1, holdout=10).salt != base.salt       # a new variant: a new experiment
    assert experiment_of(1, 1).salt != base.salt                      # no holdout any more: new
    assert experiment_of(1, 1, holdout=10, salt="plans-2").salt == "plans-2"


# -- assignment ------------------------------------------------------------------

WEIGHT_SETS = [((1, 1), 0), ((1, 1), 10), ((3, 1), 0), ((1, 2, 3), 0), ((5, 3, 2), 50), ((0.5, 0.25), 5)]


@pytest.mark.parametrize("weights,holdout", WEIGHT_SETS)
def test_assignment_matches_the_weights_chi_square(weights, holdout):
    exp = experiment_of(*weights, holdout=holdout)
    arms = arms_of(exp, ids(N_IDS))
    observed = [arms.count(a.id) for a in exp.arms]
    total = sum(a.weight for a in exp.arms)
    expected = [N_IDS * a.weight / total for a in exp.arms]
    _, p = stats.chisquare(observed, expected)
    assert p > 0.001, (observed, expected, p)
    if holdout:
        assert abs(observed[-1] / N_IDS - holdout / 100) < 0.01


def test_the_chi_square_check_catches_a_skewed_assignment():
    """The test above can fail: a 52/48 split of a 50/50 experiment is caught."""
    _, p = stats.chisquare([52_000, 48_000], [50_000, 50_000])
    assert p < 0.001


def test_the_same_id_keeps_its_arm_across_bundle_versions():
    visitors = ids(2000, seed=3)
    first = Engine(payload(message(holdout=10), version=1)).messages[0].experiment
    other = {"id": "other", "content": {"text": "o"}, "rules": []}
    later = Engine(payload(other, message(holdout=10, priority=5), version=9)).messages[1].experiment
    assert first.salt == later.salt
    assert arms_of(first, visitors) == arms_of(later, visitors)


def moved(before, after, visitors) -> float:
    a, b = arms_of(before, visitors), arms_of(after, visitors)
    return sum(x != y for x, y in zip(a, b)) / len(visitors)


@pytest.mark.parametrize("old,new,share", [
    ((1, 1), (7, 3), 0.2),                 # A from 50 % to 70 %: 20 % move, all of them to A
    ((1, 1, 1), (2, 1, 1), 1 / 6),         # one arm up: its share rises 1/3 -> 1/2 (cumulative ranges: 1/4)
    ((1, 1, 1), (1, 1, 2), 1 / 6),
    ((2, 1, 1), (1, 1, 1), 1 / 6),         # one arm down: only its visitors leave
])
def test_a_weight_change_moves_only_the_changed_share(old, new, share):
    visitors = ids(N_IDS, seed=5)
    measured = moved(experiment_of(*old), experiment_of(*new), visitors)
    assert abs(measured - share) < 0.006, measured


def test_a_holdout_change_moves_only_the_holdout_share():
    visitors = ids(N_IDS, seed=6)
    before, after = experiment_of(1, 1, holdout=10), experiment_of(1, 1, holdout=20)
    a, b = arms_of(before, visitors), arms_of(after, visitors)
    assert all(y == "holdout" for x, y in zip(a, b) if x != y)    # nobody moves between the variants
    assert abs(sum(x != y for x, y in zip(a, b)) / N_IDS - 0.10) < 0.006


def test_a_new_experiment_reshuffles():
    visitors = ids(20_000, seed=7)
    assert moved(experiment_of(1, 1, salt="one"), experiment_of(1, 1, salt="two"), visitors) > 0.45


# -- the engine: exposure at the instant it would show --------------------------------

def run(msgs, visitor="visitor-00000001", now=20_000, events=None, record_in=None, **context):
    engine = Engine(payload(*msgs), record=record_in, context=dict(context, **({"visitor_id": visitor} if visitor else {})))
    result = engine.step(events or [PV], now)
    return engine, [(d["action"], d["message"], d["t"], d.get("arm")) for d in result["decisions"]], result


def visitor_in(arm: str, msg: dict) -> str:
    exp = bundle.parse(payload(msg)).messages[0].experiment
    return next(v for v in ids(500, seed=11) if experiments.assign(exp, v, msg["id"]) == arm)


def test_a_variant_arm_is_exposed_and_shown_at_the_same_instant_with_its_content():
    msg = message(holdout=10)
    visitor = visitor_in("b", msg)
    engine, decisions, result = run([msg], visitor)
    assert decisions == [("exposed", "plans", 5001, "b"), ("show", "plans", 5001, "b")]
    assert result["decisions"][1]["content"]["text"] == "Need a hand choosing?"
    assert result["decisions"][0]["visitor"] == visitor
    assert result["decisions"][0]["control"] == "holdout" and abs(result["decisions"][0]["share"] - 0.45) < 1e-12
    assert result["record"]["visitor_id"] == visitor and result["record"]["visitor_since"] == 0


def test_a_holdout_visitor_sees_nothing_is_exposed_then_and_the_next_message_shows():
    msg = message(holdout=50, priority=5)
    other = {"id": "fallback", "content": {"text": "f"}, "rules": {"rule": "time_on_page", "op": "greater", "value": 5}}
    visitor = visitor_in("holdout", msg)
    engine, decisions, _ = run([msg, other], visitor)
    assert decisions == [("exposed", "plans", 5001, "holdout"), ("show", "fallback", 5001, None)]
    assert "holdout" in engine.explain(20_000)["plans"]["blocked_by"]
    # the next page: no second exposure, still nothing
    result = engine.step([dict(PV, t=70_000)], 90_000)
    assert [(d["action"], d["message"]) for d in result["decisions"]] == [("show", "fallback")]


def test_a_delayed_message_is_exposed_when_it_would_show_not_when_armed():
    msg = message(holdout=50, delay=10)
    visitor = visitor_in("holdout", msg)
    _, decisions, _ = run([msg], visitor, now=30_000)
    assert decisions == [("exposed", "plans", 15_001, "holdout")]
    visitor = visitor_in("a", msg)
    _, decisions, _ = run([msg], visitor, now=30_000)
    assert decisions == [("exposed", "plans", 15_001, "a"), ("show", "plans", 15_001, "a")]


def test_a_delayed_message_left_before_it_shows_is_not_exposed():
    msg = message(holdout=50, delay=10)
    visitor = visitor_in("holdout", msg)
    events = [PV, dict(PV, t=8_000, url="https://s.example/x")]   # a new page before it is due (10 s)
    _, decisions, result = run([dict(msg, rules={"rule": "page_url", "op": "equals", "value": "https://s.example/"})],
                               visitor, now=30_000, events=events)
    assert decisions == [] and result["record"]["exposed"] == {}


def test_exposure_happens_once_and_caps_apply_to_the_arm_shown():
    msg = message(caps={"lifetime": 2})
    visitor = visitor_in("b", msg)
    engine, decisions, _ = run([msg], visitor)
    shows = [d for d in decisions]
    for k in range(1, 4):
        shows += [(d["action"], d["message"], d["t"], d.get("arm"))
                  for d in engine.step([dict(PV, t=k * 100_000)], k * 100_000 + 20_000)["decisions"]]
    assert shows == [("exposed", "plans", 5001, "b"), ("show", "plans", 5001, "b"),
                     ("show", "plans", 105_001, "b")]


def test_once_per_user_with_claims_exposes_when_the_claim_is_won():
    msg = message(once_per_user=True)
    visitor = visitor_in("a", msg)
    engine, decisions, _ = run([msg], visitor, now=6000, claims=True)
    assert decisions == [("claim", "plans", 5001, None)]
    result = engine.step([{"t": 6000, "type": "claim", "message": "plans", "won": True}], 6000)
    assert [(d["action"], d.get("arm")) for d in result["decisions"]] == [("exposed", "a"), ("show", "a")]


def test_without_a_stored_id_the_first_variant_shows_uncounted():
    msg = message(holdout=50)
    _, decisions, result = run([msg], visitor=None)
    assert decisions == [("show", "plans", 5001, "a")]
    assert result["record"]["exposed"] == {} and result["record"]["visitor_id"] is None


def test_a_forced_arm_wins_over_the_assignment_but_not_over_an_exposure():
    msg = message(holdout=10)
    visitor = visitor_in("a", msg)
    _, decisions, result = run([msg], visitor, arms={"plans": "holdout"})
    assert decisions == [("exposed", "plans", 5001, "holdout")]
    _, decisions, _ = run([msg], visitor, arms={"plans": "b"}, record_in=result["record"])
    assert decisions == []   # held out already: the exposure decides


def test_the_reactions_never_offer_a_holdout_visitors_message():
    msg = message(holdout=50, rules={"rule": "time_before_exit_intent", "op": "greater", "value": 1})
    other = {"id": "fallback", "content": {"text": "f"}, "rules": {"rule": "time_before_exit_intent", "op": "greater", "value": 1},
             "priority": -1}
    engine, _, _ = run([msg, other], visitor_in("holdout", msg), now=2000)
    assert engine.reactions()["exit"]["show"]["message"] == "fallback"
    result = engine.step([{"t": 3000, "type": "exit_intent", "how": "pointer"}], 3000)
    assert [(d["action"], d["message"]) for d in result["decisions"]] == [("exposed", "plans"), ("show", "fallback")]
    engine, _, _ = run([msg, other], visitor_in("b", msg), now=2000)
    show = engine.reactions()["exit"]["show"]
    assert (show["message"], show["arm"], show["content"]["text"]) == ("plans", "b", "Need a hand choosing?")


def test_emails_have_arms_and_a_holdout():
    msg = message(type="email", audience="all", holdout=50)
    _, decisions, _ = run([msg], visitor_in("holdout", msg))
    assert decisions == [("exposed", "plans", 5001, "holdout")]
    _, decisions, _ = run([msg], visitor_in("a", msg))
    assert decisions == [("exposed", "plans", 5001, "a"), ("email", "plans", 5001, "a")]


# -- the record ------------------------------------------------------------------------

def test_the_visitor_id_is_kept_and_merged_deterministically():
    r1 = Engine(payload(message()), context={"visitor_id": "first-tab-id"}).step([dict(PV, t=100)], 100)["record"]
    r2 = Engine(payload(message()), context={"visitor_id": "second-tab-id"}).step([dict(PV, t=200)], 200)["record"]
    for merged in (record.merge_records(r1, r2), record.merge_records(r2, r1)):
        assert (merged["visitor_id"], merged["visitor_since"]) == ("first-tab-id", 100)
    kept = Engine(payload(message()), record=r2, context={"visitor_id": "third-tab-id0"}).step([dict(PV, t=300)], 300)
    assert kept["record"]["visitor_id"] == "second-tab-id"      # an id is created once
    assert record.upgrade(dict(r1, visitor_id="bad id!"))["visitor_id"] is None


def test_exposures_merge_to_the_earliest():
    a = dict(record.new_record(), exposed={"plans@s1": ["b", 500], "x@s": ["a", 9]})
    b = dict(record.new_record(), exposed={"plans@s1": ["holdout", 400], "plans@s2": ["a", 900]})
    c = dict(record.new_record(), exposed={"plans@s1": ["a", 400]})
    want = {"plans@s1": ["a", 400], "plans@s2": ["a", 900], "x@s": ["a", 9]}
    for left, right in ((a, b), (b, a)):
        assert record.merge_records(record.merge_records(left, right), c)["exposed"] == want
    assert record.merge_records(a, record.merge_records(b, c))["exposed"] == want
    assert record.upgrade(dict(a, exposed={"k": ["a", "late"]}))["exposed"] == {}


def test_signing_writes_the_salt_the_engine_would_derive():
    import json

    from proactive import publishing
    doc = payload(message(holdout=10), {"id": "plain", "content": {"text": "p"}, "rules": []},
                  message(id="solo", variants=None, content={"text": "s"}, holdout=5))
    signed = json.loads(publishing.build_payload(doc, version=2))
    derived = [m.experiment.salt if m.experiment else None for m in bundle.parse(doc).messages]
    assert [m.get("experiment") for m in signed["messages"]] == derived
    assert derived[1] is None and all(derived[i] for i in (0, 2))
    kept = json.loads(publishing.build_payload(payload(message(experiment="mine")), version=3))
    assert kept["messages"][0]["experiment"] == "mine"


@pytest.mark.parametrize("fields,ok", [
    ({"holdout": 10}, True),
    ({"holdout": 60}, False),
    ({"variants": [{"id": "a", "weight": 0, "content": {"text": "x"}}]}, False),
    ({"variants": [{"id": "holdout", "content": {"text": "x"}}]}, False),
    ({"variants": [{"id": "a", "content": {"text": "x"}, "extra": 1}]}, False),
    ({"experiment": "with space"}, False),
    ({}, True),
])
def test_the_json_schema_agrees_with_validate(fields, ok):
    import jsonschema

    from proactive import schema
    doc = payload(message(**fields))
    doc.pop("version")
    schema_ok = not list(jsonschema.Draft7Validator(schema.messages_schema()).iter_errors(doc))
    assert (schema_ok, not bundle.validate(doc)) == (ok, ok)


def test_proactive_validate_points_at_the_line_of_each_experiment_problem(tmp_path, capsys):
    from proactive.cli import main
    path = tmp_path / "messages.yaml"
    path.write_text("""site: demo
messages:
  - id: plans
    holdout: 70
    variants:
      - {id: ask, weight: 0, content: {text: A}}
      - {id: ask, weight: 1, content: {text: B}}
    rules: [{rule: time_on_page, op: greater, value: 5}]
""")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr()
    text = err.out + err.err
    assert f"{path}:4" in text and "holdout percentage" in text
    assert f"{path}:6" in text and "not a weight" in text
    assert f"{path}:7" in text and "duplicate variant id 'ask'" in text

"""Engine contract (docs/architecture.md), record, explain and validation."""

import json

import pytest

from widget.runtime.bundle import BundleInvalid, Problem, validate
from widget.runtime.engine import Engine, merge_records, new_record

PRICING = {
    "site": "acme", "widgets": [{"id": "main"}],
    "messages": [{
        "id": "pricing-help", "type": "proactive", "widget": "main", "team": "online",
        "audience": "visitors", "once_per_user": True, "delay": 0, "priority": 10,
        "content": {"text": "Questions about our plans?", "buttons": [{"label": "Yes"}]},
        "rules": {"all": [
            {"rule": "page_url", "op": "contains", "value": "/pricing"},
            {"rule": "time_on_page", "op": "greater", "value": 40},
            {"any": [{"rule": "country", "op": "equals", "value": ["DE", "AT", "CH"]},
                     {"rule": "browser_language", "op": "equals", "value": "de"}]}]}}]}
T0 = 1_764_000_000_000


def start(payload=PRICING, **kw):
    engine = Engine(payload, **kw)
    engine.step([{"t": T0, "type": "team", "value": "online"},
                 {"t": T0, "type": "page_view", "url": "https://shop.example/pricing", "referrer": ""}], T0)
    return engine


def test_step_result_shape_and_show_decision_passes_content_through():
    engine = start(context={"language": "de-DE"})
    result = engine.step([], T0 + 40_000)
    assert result["decisions"] == [] and result["next_wakeup"] == T0 + 40_001
    result = engine.step([], T0 + 40_001)
    (d,) = result["decisions"]
    assert d["action"] == "show" and d["message"] == "pricing-help" and d["t"] == T0 + 40_001
    # resolved content (content.py): one language variant, placeholders filled
    assert d["content"]["text"] == PRICING["messages"][0]["content"]["text"]
    assert [b["label"] for b in d["content"]["buttons"]] == ["Yes"]
    assert d["priority"] == 10
    assert result["record"]["invitations_sent"] == 1 and result["next_wakeup"] is None
    json.dumps(result)


def test_nothing_fires_while_unknown_then_geo_arrives():
    engine = start()
    assert engine.step([], T0 + 60_000)["decisions"] == []
    r = engine.step([{"t": T0 + 61_000, "type": "geo", "country": "AT", "city": None}], T0 + 61_000)
    assert [d["t"] for d in r["decisions"]] == [T0 + 61_000]


def test_record_is_versioned_json_and_survives_a_reload():
    engine = start(context={"language": "de"})
    engine.step([], T0 + 50_000)
    stored = json.loads(json.dumps(engine.record))
    assert stored["v"] == 1 and stored["once"] == ["pricing-help"]
    again = start(record=stored, context={"language": "de"})
    assert again.step([], T0 + 100_000)["decisions"] == []   # once per user


@pytest.mark.parametrize("record", [None, {}, {"v": 99, "visits": 5}, {"v": 1, "visits": "x"}, "garbage"])
def test_unreadable_records_start_over_instead_of_breaking(record):
    engine = start(record=record)
    assert engine.record["v"] == 1 and isinstance(engine.record["visits"], int)


def test_merge_records_takes_max_union_latest():
    a = dict(new_record(), visits=3, invitations_sent=2, once=["x"], last_invitation=10, visit_start=100,
             page_views=2, rating="poor", rating_at=5, chat=False, dismissed={"x": 7})
    b = dict(new_record(), visits=2, invitations_sent=4, once=["y"], last_invitation=20, visit_start=100,
             page_views=5, rating="great", rating_at=9, chat=True, dismissed={"x": 3, "y": 1})
    m = merge_records(a, b)
    assert (m["visits"], m["invitations_sent"], m["once"]) == (3, 4, ["x", "y"])
    assert (m["last_invitation"], m["page_views"], m["rating"], m["chat"]) == (20, 5, "great", True)
    assert m["dismissed"] == {"x": 7, "y": 1}
    assert merge_records(a, b) == merge_records(b, a)
    assert merge_records(m, m) == m


def test_merge_takes_the_later_visit_whole():
    later = 100 + 31 * 60_000   # more than the visit gap after the first one: another visit
    a = dict(new_record(), visits=1, visit_start=100, page_views=9, source_url="https://a/", utm={"utm_source": "a"})
    b = dict(new_record(), visits=1, visit_start=later, page_views=1, source_url="https://b/", utm={})
    m = merge_records(a, b)
    assert (m["visit_start"], m["page_views"], m["source_url"], m["utm"]) == (later, 1, "https://b/", {})


def test_merge_joins_visits_less_than_the_gap_apart():
    """Two tabs that each started "a visit" 100 ms apart made one visit."""
    a = dict(new_record(), visits=1, visit_start=100, page_views=9, source_url="https://a/", utm={"utm_source": "a"})
    b = dict(new_record(), visits=1, visit_start=200, page_views=1, source_url="https://b/", utm={})
    m = merge_records(a, b)
    assert (m["visits"], m["visit_start"], m["page_views"]) == (1, 100, 10)
    assert (m["source_url"], m["utm"]) == ("https://a/", {"utm_source": "a"})


def test_explain_reports_values_operators_results_and_gates():
    engine = start()
    info = engine.explain(T0 + 12_500)["pricing-help"]
    assert info["result"] == "rules_false" and info["rules"] is False
    by_rule = {c["rule"]: c for c in info["conditions"]}
    assert by_rule["time_on_page"] == {"path": ["all", 1], "rule": "time_on_page", "op": "greater",
                                       "expected": 40, "observed": 12.5, "result": "false"}
    assert by_rule["country"]["result"] == "unknown" and by_rule["country"]["observed"] is None
    assert by_rule["page_url"]["result"] == "true"
    assert info["gates"]["team"] == {"required": "online", "current": "online", "ok": True}
    assert info["gates"]["once_per_user"]["ok"] is True
    json.dumps(engine.explain(T0))


def test_explain_names_the_blocking_gate():
    engine = start(context={"language": "de"})
    engine.step([{"t": T0 + 1, "type": "team", "value": "offline"}], T0 + 1)
    info = engine.explain(T0 + 50_000)["pricing-help"]
    assert info["result"] == "blocked" and info["blocked_by"] == ["team"]


def test_explain_keeps_each_message_at_the_instant_that_decided_it():
    """A shown message also carries `decided` (the state just before its own
    show); one reading the exit intent that did not show carries `at_exit`;
    the next page view starts over (docs/rules.md, "Explaining a decision")."""
    payload = {"site": "s", "messages": [
        {"id": "first", "content": {"text": "x"}, "rules": [{"rule": "invitations_sent", "op": "equals", "value": 0}]},
        {"id": "exit", "content": {"text": "y"}, "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 2}]}]}
    engine = Engine(payload)
    engine.step([{"t": T0, "type": "page_view", "url": "https://s.example/"}], T0)
    engine.step([{"t": T0 + 1, "type": "dismiss", "message": "first"}, {"t": T0 + 1500, "type": "exit_intent"}], T0 + 1500)
    later = engine.explain(T0 + 9000)
    first, leaving = later["first"], later["exit"]
    assert first["result"] == "delivered" and first["conditions"][0]["observed"] == 1   # live: after its show
    assert first["decided"]["at"] == T0 and first["decided"]["blocked_by"] == []
    assert [(c["observed"], c["result"]) for c in first["decided"]["conditions"]] == [(0, "true")]
    assert leaving["conditions"][0]["result"] == "unknown"                                  # live: no exit now
    assert leaving["at_exit"]["at"] == T0 + 1500 and leaving["at_exit"]["result"] == "rules_false"
    assert [(c["observed"], c["result"]) for c in leaving["at_exit"]["conditions"]] == [(1.5, "false")]
    json.dumps(later)
    engine.step([{"t": T0 + 10_000, "type": "page_view", "url": "https://s.example/b"}], T0 + 10_000)
    assert not {"decided", "at_exit"} & set(engine.explain(T0 + 10_000)["exit"])


def test_an_exit_intent_traces_nothing_until_asked(monkeypatch):
    """The exit's state is kept; explain traces from it on demand (an exit
    intent with many exit-intent messages must stay as cheap as before)."""
    payload = {"site": "s", "messages": [
        {"id": f"exit{i}", "content": {"text": "y"}, "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 9}]}
        for i in range(20)]}
    engine = Engine(payload)
    engine.step([{"t": T0, "type": "page_view", "url": "https://s.example/"}], T0)
    traced = []
    real = Engine._explain_entry
    monkeypatch.setattr(Engine, "_explain_entry", lambda self, *a, **k: traced.append(a[0]) or real(self, *a, **k))
    engine.step([{"t": T0 + 1500, "type": "exit_intent"}], T0 + 1500)
    assert traced == []
    assert engine.explain(T0 + 5000)["exit3"]["at_exit"]["conditions"][0]["observed"] == 1.5


def test_the_state_kept_at_the_exit_answers_everything_the_gates_read():
    """explain's at_exit reads the gates through policy.Visitor over the kept
    state (engine._Moment): every question the view asks the engine, it
    answers, and as the engine did at that instant."""
    from widget.runtime import policy

    payload = {"site": "s", "messages": [
        {"id": "m", "content": {"text": "y"}, "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 9}]}]}
    engine = Engine(payload)
    engine.step([{"t": T0, "type": "page_view", "url": "https://s.example/"}, {"t": T0 + 1500, "type": "exit_intent"}],
                T0 + 1500)
    kept, live = engine.exit_moment.view, engine.view
    for name, member in vars(policy.Visitor).items():
        if isinstance(member, property):
            assert getattr(kept, name) == getattr(live, name), name
        elif callable(member) and not name.startswith("_"):
            assert getattr(kept, name)("m") == getattr(live, name)("m"), name


def test_a_late_event_is_applied_at_the_present():
    engine = start(context={"language": "de"})
    engine.step([], T0 + 45_000)
    r = engine.step([{"t": T0 + 1_000, "type": "dismiss", "message": "pricing-help"}], T0 + 45_000)
    assert r["decisions"] == []
    assert engine.record["dismissed"]["pricing-help"] == T0 + 45_000


def test_unknown_event_types_are_ignored():
    engine = start()
    assert engine.step([{"t": T0 + 5, "type": "spaceship"}], T0 + 5)["decisions"] == []


def test_only_messages_reading_a_changed_fact_are_reevaluated():
    messages = [{"id": f"m{i}", "rules": [{"rule": "city", "op": "equals", "value": f"c{i}"}]} for i in range(50)]
    messages.append({"id": "w", "rules": [{"rule": "widget_opened", "op": "is_true"}]})
    engine = Engine({"site": "s", "messages": messages})
    engine.step([{"t": 0, "type": "page_view", "url": "https://s/", "referrer": ""}], 0)
    calls = []
    original = engine._reevaluate
    engine._reevaluate = lambda idx, facts, t: (calls.append(idx), original(idx, facts, t))
    r = engine.step([{"t": 10, "type": "widget_open"}], 10)
    assert calls == [50] and [d["message"] for d in r["decisions"]] == ["w"]


@pytest.mark.parametrize("name,payload,path", [
    ("unknown rule id", {"rules": {"all": [{"rule": "time_on_page", "op": "greater", "value": 1}, {"rule": "nope", "op": "equals", "value": 1}]}}, ("messages", 0, "rules", "all", 1, "rule")),
    ("operator not allowed", {"rules": {"all": [{"rule": "city", "op": "exists"}, {"rule": "city", "op": "greater", "value": 1}]}}, ("messages", 0, "rules", "all", 1, "op")),
    ("wrong value type", {"rules": [{"rule": "visits", "op": "greater", "value": "2"}]}, ("messages", 0, "rules", 0, "value")),
    ("bad id pattern", {"id": "Pricing_Help", "rules": []}, ("messages", 0, "id")),
    ("bad type", {"type": "sms", "rules": []}, ("messages", 0, "type")),
    ("bad team", {"team": "sometimes", "rules": []}, ("messages", 0, "team")),
    ("negative delay", {"delay": -1, "rules": []}, ("messages", 0, "delay")),
    ("content not a mapping", {"content": "hi", "rules": []}, ("messages", 0, "content")),
    ("unknown field", {"once_per_usr": True, "rules": []}, ("messages", 0, "once_per_usr")),
    ("unknown widget", {"widget": "side", "rules": []}, ("messages", 0, "widget")),
    ("proactive without rules", {}, ("messages", 0, "rules")),
])
def test_validation_problem_paths(name, payload, path):
    message = dict({"id": "m"}, **payload)
    problems = validate({"site": "s", "widgets": [{"id": "main"}], "messages": [message]})
    assert path in [p.path for p in problems], problems
    assert all(isinstance(p, Problem) and p.message for p in problems)


def test_every_problem_is_collected_and_engine_refuses():
    payload = {"site": "", "messages": [
        {"id": "a", "rules": [{"rule": "nope", "op": "x"}]},
        {"id": "a", "rules": [{"rule": "time_on_page", "op": "contains", "value": 3}]},
        {"id": "B", "rules": {"any": []}}]}
    with pytest.raises(BundleInvalid) as info:
        Engine(payload)
    paths = [p.path for p in info.value.problems]
    assert paths == [("site",), ("messages", 0, "rules", 0, "rule"), ("messages", 1, "id"),
                     ("messages", 1, "rules", 0, "op"), ("messages", 2, "id"), ("messages", 2, "rules", "any")]


def test_payload_metadata_from_the_signer_is_accepted():
    payload = dict(PRICING, version=7, issued_at="2026-01-01T00:00:00Z", expires_at="2027-01-01T00:00:00Z")
    assert Engine(payload).bundle.version == 7


@pytest.mark.parametrize("bad", [{"type": "page_view"}, {"t": "soon", "type": "tick"}, {"t": True, "type": "tick"},
                                 "not an event", {"t": float("nan"), "type": "tick"}])
def test_events_without_a_usable_time_are_dropped(bad):
    engine = start()
    r = engine.step([bad, {"t": T0 + 10, "type": "geo", "country": "DE"}], T0 + 10)
    assert r["decisions"] == [] and engine.geo["country"] == "DE"


# -- chat_history (the endpoint's conversation summary) ------------------------

def _chat_engine():
    payload = {"site": "s", "widgets": [{"id": "main"}], "messages": [
        {"id": "chatted", "type": "proactive", "widget": "main", "content": {"text": "x"},
         "rules": [{"rule": "chat_history", "op": "exists"}]},
        {"id": "loved", "type": "proactive", "widget": "main", "content": {"text": "y"},
         "rules": [{"rule": "rating", "op": "equals", "value": "great"}]},
    ]}
    return Engine(payload)


def test_chat_history_event_marks_chat_and_rating_from_the_endpoint():
    e = _chat_engine()
    e.step([{"type": "page_view", "t": 1_000, "url": "https://a.example/", "referrer": ""}], 1_000)
    assert e.record["chat"] is False
    out = e.step([{"type": "chat_history", "t": 2_000, "exists": True, "visitor_msg_at": 500,
                   "agent_msg_at": 900, "rating": "great", "rating_at": 950}], 2_000)
    assert [d["message"] for d in out["decisions"]] == ["chatted"]
    assert e.record["chat"] is True and e.record["agent_msg_at"] == 900
    assert e.record["rating"] == "great" and e.record["rating_at"] == 950


def test_chat_history_never_moves_timestamps_back_and_ignores_bad_values():
    e = _chat_engine()
    e.step([{"type": "page_view", "t": 1_000, "url": "https://a.example/", "referrer": ""},
            {"type": "visitor_message", "t": 1_500}], 1_500)
    e.step([{"type": "chat_history", "t": 2_000, "exists": "yes", "visitor_msg_at": 10,
             "agent_msg_at": True, "rating": "<b>great</b>", "rating_at": 5}], 2_000)
    assert e.record["visitor_msg_at"] == 1_500
    assert e.record["agent_msg_at"] is None
    assert e.record["rating"] is None


# -- a bundle is compiled once ------------------------------------------------------

def _count_compiles(monkeypatch):
    """Count rule-tree compilations and delivery-settings builds."""
    from widget.runtime import bundle as bundle_mod, policy

    counts = {"rules": 0, "settings": 0}
    compile_rules, settings_init = bundle_mod.conditions.compile_rules, policy.Settings.__init__

    def counting_compile(*args, **kwargs):
        counts["rules"] += 1
        return compile_rules(*args, **kwargs)

    def counting_settings(self, *args, **kwargs):
        counts["settings"] += 1
        settings_init(self, *args, **kwargs)

    monkeypatch.setattr(bundle_mod.conditions, "compile_rules", counting_compile)
    monkeypatch.setattr(policy.Settings, "__init__", counting_settings)
    return counts


def test_validation_checks_and_parse_compiles_once_for_engine_and_gates(monkeypatch):
    from widget.runtime import bundle as bundle_mod

    payload = {"site": "s", "team": {"timezone": "Europe/Berlin", "hours": {"daily": "09:00-17:00"}},
               "messages": [{"id": f"m{i}", "content": {"text": "x"},
                             "rules": [{"rule": "time_on_page", "op": "greater", "value": i}]} for i in range(3)]}
    counts = _count_compiles(monkeypatch)
    assert bundle_mod.validate(payload) == []
    assert counts == {"rules": 0, "settings": 0}      # validation only checks
    compiled = bundle_mod.parse(payload)
    once = dict(counts)
    assert once["rules"] >= 3 and once["settings"] == 1
    engine = Engine(compiled)
    engine.step([{"t": 0, "type": "page_view", "url": "https://s.example/"}], 10_000)
    engine.explain(10_000)
    assert counts == once      # the engine and its gates share the compiled bundle
    assert engine.bundle is compiled and engine.view.settings is compiled.settings


def test_the_runtime_compiles_an_accepted_bundle_once(monkeypatch):
    import json

    from proactive import publishing, signing
    from widget.runtime.adapter import Runtime

    key = signing.generate_private_key()
    doc = {"site": "s", "messages": [{"id": "m", "content": {"text": "x"}, "rules": []}]}
    raw = signing.sign_payload(publishing.build_payload(doc, version=1), [key])
    rt = Runtime(json.dumps({"keys": signing.public_key_spec(key), "context": {}}))
    assert json.loads(rt.signing_request(raw))["ok"]
    counts = _count_compiles(monkeypatch)
    assert json.loads(rt.offer(raw, "fetched", "valid", "", 1_780_000_000_000))["ok"]
    assert json.loads(rt.start("", "[]", 1_780_000_000_000))["ok"]
    assert counts["settings"] == 1   # the rule tree [] compiles in one call, and only once
    assert counts["rules"] == 1

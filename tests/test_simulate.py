"""`proactive simulate` and the pure simulate() behind it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proactive.cli import main
from widget.runtime.simulate import ScenarioInvalid, simulate

MESSAGES = """\
site: acme
widgets: [{id: main}]
messages:
  - id: pricing-help
    team: online
    once_per_user: true
    priority: 10
    content: {text: "Questions about our plans?"}
    rules:
      all:
        - {rule: page_url, op: contains, value: /pricing}
        - {rule: time_on_page, op: greater, value: 40}
        - any:
            - {rule: country, op: equals, value: [DE, AT, CH]}
            - {rule: browser_language, op: equals, value: de}
  - id: exit-offer
    content: {text: "Before you go"}
    rules: {rule: time_before_exit_intent, op: greater, value: 10}
  - id: never
    content: {text: "x"}
    rules: [{rule: rating, op: equals, value: poor}]
  - id: welcome-mail
    type: email
    rules: []
"""
SCENARIO = {
    "visitor": {"language": "de-DE", "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                "country": "DE", "city": "Berlin", "authenticated": False},
    "team": "online",
    "events": [
        {"t": 0, "type": "page_view", "url": "https://shop.example/pricing?utm_source=google", "referrer": "https://www.google.com/"},
        {"t": 12.5, "type": "exit_intent"},
        {"t": 20, "type": "widget_open"}, {"t": 25, "type": "widget_close"},
        {"t": 30, "type": "visitor_message"}, {"t": 50, "type": "agent_message"},
        {"t": 60, "type": "rating", "value": "great"},
        {"t": 70, "type": "dismiss", "message": "pricing-help"},
        {"t": 80, "type": "team", "value": "offline"},
        {"t": 90, "type": "identify"}],
    "until": 120}


@pytest.fixture
def files(tmp_path):
    m = tmp_path / "messages.yaml"
    m.write_text(MESSAGES)
    s = tmp_path / "scenario.json"
    s.write_text(json.dumps(SCENARIO))
    return m, s


def test_the_issue_scenario(files, capsys):
    m, s = files
    assert main(["simulate", str(m), str(s)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shown"] == [{"message": "exit-offer", "t": 12.5}, {"message": "pricing-help", "t": 40.001}]
    assert out["emails"] == [{"message": "welcome-mail", "t": 90.0}]


def test_explain_at_firing_and_at_the_end(files, capsys):
    m, s = files
    assert main(["simulate", str(m), str(s), "--explain", "--json"]) == 0
    ex = json.loads(capsys.readouterr().out)["explain"]
    fired = ex["pricing-help"]
    assert fired["at"] == 40.001
    t = [c for c in fired["conditions"] if c["rule"] == "time_on_page"][0]
    assert (t["observed"], t["op"], t["expected"], t["result"]) == (40.001, "greater", 40, "true")
    never = ex["never"]   # closest at 70 s: its rating known (false) and no other card on screen
    assert never["at"] == 70.0 and never["conditions"][0]["observed"] == "great"
    assert never["conditions"][0]["result"] == "false" and never["blocked_by"] == []


def test_a_shown_message_is_traced_from_the_state_just_before_its_show():
    payload = {"site": "s", "messages": [{"id": "first", "content": {"text": "x"},
                                          "rules": [{"rule": "invitations_sent", "op": "equals", "value": 0}]}]}
    scenario = {"events": [{"t": 0, "type": "page_view", "url": "https://s.example/"}], "until": 30}
    entry = simulate(payload, scenario, explain=True)["explain"]["first"]
    assert entry["result"] == "delivered" and entry["at"] == 0
    assert [(c["observed"], c["result"]) for c in entry["conditions"]] == [(0, "true")]
    assert entry["blocked_by"] == [] and entry["gates"]["per_page"]["ok"] is True


def test_an_exit_message_not_shown_is_traced_at_the_exit():
    payload = {"site": "s", "messages": [{"id": "exit", "content": {"text": "x"},
                                          "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 2}]}]}
    scenario = {"events": [{"t": 0, "type": "page_view", "url": "https://s.example/"},
                           {"t": 1.5, "type": "exit_intent"}], "until": 60}
    entry = simulate(payload, scenario, explain=True)["explain"]["exit"]
    assert entry["at"] == 1.5 and entry["result"] == "rules_false"
    assert [(c["observed"], c["result"]) for c in entry["conditions"]] == [(1.5, "false")]


def test_invalid_messages_report_file_and_line(files, capsys):
    m, s = files
    m.write_text(MESSAGES.replace("op: greater, value: 40", "op: contains, value: 40"))
    assert main(["simulate", str(m), str(s)]) == 1
    err = capsys.readouterr().err
    # The same file:line:col report as `proactive validate`.
    assert f"{m}:12:" in err and "messages[0].rules.all[1].op" in err
    assert "operator 'contains' is not allowed for time_on_page" in err


def test_an_impossible_date_is_reported_not_a_traceback(files, capsys):
    m, s = files
    m.write_text(MESSAGES.replace("  - id: ", "  - start: 2026-13-01\n    id: ", 1))
    assert main(["simulate", str(m), str(s)]) == 1
    err = capsys.readouterr().err
    assert "'2026-13-01' is not a date" in err and "nothing simulated" in err


def test_bad_scenario_is_reported(files, capsys):
    m, s = files
    s.write_text(json.dumps({"events": [{"t": -1, "type": "page_view"}]}))
    assert main(["simulate", str(m), str(s)]) == 1
    assert "events[0].t" in capsys.readouterr().err


def test_simulate_is_pure_and_deterministic():
    import yaml
    payload = yaml.safe_load(MESSAGES)
    assert simulate(payload, SCENARIO) == simulate(payload, SCENARIO)
    with pytest.raises(ScenarioInvalid):
        simulate(payload, {"events": "nope"})


def test_runtime_imports_only_the_standard_library():
    """The runtime must load in Pyodide with nothing else installed."""
    code = ("import sys; import widget.runtime.engine, widget.runtime.simulate, widget.runtime.conformance;"
            "bad = [m for m in ('yaml', 'hypothesis', 'cryptography', 'js', 'pyodide') if m in sys.modules];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", ["engine", "conditions", "catalog", "bundle", "urls", "useragent", "simulate", "conformance"])
def test_runtime_never_reads_a_clock(module):
    source = (Path(__file__).parent.parent / "widget" / "runtime" / f"{module}.py").read_text()
    for forbidden in ("import time", "from time", "datetime", "perf_counter", "monotonic", "random"):
        assert forbidden not in source, f"{module}.py mentions {forbidden}"


def test_the_docs_simulate_example_prints_what_the_doc_says(tmp_path):
    # docs/authoring.md had no word on the scenario format (acceptance); its
    # example journey, messages and output are checked here.
    import json
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "authoring.md").read_text(encoding="utf-8")

    def example(name):
        m = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w+\n(.*?)\n```", doc, re.S)
        assert m, name
        return m.group(1)

    (tmp_path / "messages.yaml").write_text(example("simulate messages"))
    (tmp_path / "journey.json").write_text(example("journey.json"))
    out = subprocess.run([sys.executable, "-m", "proactive.cli", "simulate", str(tmp_path / "messages.yaml"),
                          str(tmp_path / "journey.json")], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(example("simulate output"))


@pytest.mark.parametrize("event, says", [
    ({"t": 0, "type": "pageview", "url": "https://x/"}, "events[0].type: unknown event 'pageview'"),
    ({"t": 0, "type": "page_view", "ur": "https://x/"}, "events[0]: a page_view needs a `url`"),
])
def test_a_typo_in_a_journey_is_reported_not_simulated_as_nothing(files, capsys, event, says):
    # Acceptance: the engine ignores unknown events, so a typo simulated an
    # empty journey and printed {"shown": []} with exit status 0.
    m, s = files
    s.write_text(json.dumps({"events": [event], "until": 60}))
    assert main(["simulate", str(m), str(s)]) == 1
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("scenario, says", [
    ({"event": [{"t": 0, "type": "page_view", "url": "https://x/"}]}, "event: unknown key"),
    ({"visitor": {"lang": "de"}, "events": []}, "visitor.lang: unknown key"),
])
def test_a_misspelt_scenario_key_is_reported(files, capsys, scenario, says):
    m, s = files
    s.write_text(json.dumps(scenario))
    assert main(["simulate", str(m), str(s)]) == 1
    assert says in capsys.readouterr().err


def test_developer_tools_stay_out_of_the_runtime_archive():
    """simulate.py and conformance.py drive the engine in CPython; no visitor
    downloads them (build/build.py DEV_TOOLS)."""
    import runpy

    build = runpy.run_path(str(Path(__file__).parent.parent / "build" / "build.py"))
    names = {name for name, _ in build["runtime_sources"]()}
    assert "widget/runtime/engine.py" in names and "widget/runtime/policy.py" in names
    assert not {"widget/runtime/simulate.py", "widget/runtime/conformance.py"} & names


def test_explain_prints_a_timeline_for_people(files, capsys):
    m, s = files
    assert main(["simulate", str(m), str(s), "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "   12.500 s  show   exit-offer: time_before_exit_intent greater 10 → true (observed 12.5 s)",
        "   40.001 s  show   pricing-help: page_url contains /pricing → true (observed https://shop.example/pricing?utm_source=google);"
        " time_on_page greater 40 → true (observed 40.001 s); country equals DE, AT, CH → true (observed DE);"
        " browser_language equals de → true (observed de-DE)",
        "   90.000 s  email  welcome-mail: no conditions",
        "  not shown  never: closest at 70 s: rating equals poor → false (observed great)",
    ]


@pytest.mark.parametrize("events,why", [
    ([{"t": 0, "type": "page_view", "url": "https://s.example/"}, {"t": 0.5, "type": "exit_intent"}],
     "within 1 s of the page view (data-exit-delay)"),
    ([{"t": 0, "type": "page_view", "url": "https://s.example/"}, {"t": 5, "type": "exit_intent"},
      {"t": 8, "type": "exit_intent"}], "a second exit intent on the same page view"),
    ([{"t": 3, "type": "exit_intent"}], "no page is open"),
])
def test_exit_intents_a_browser_never_sends_are_not_simulated(events, why):
    payload = {"site": "s", "messages": [{"id": "exit", "content": {"text": "x"},
                                          "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 0}]},
                                         {"id": "again", "content": {"text": "y"}, "priority": -1,
                                          "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 0}]}]}
    out = simulate(payload, {"events": events, "until": 20})
    assert out["not_sent"][-1]["why"] == why
    shown = [d["message"] for d in out["shown"]]
    assert shown == (["exit"] if len(events) == 3 else [])   # the second exit would have shown "again"


def test_a_later_page_view_rearms_the_exit_intent():
    payload = {"site": "s", "messages": [{"id": "exit", "content": {"text": "x"},
                                          "rules": [{"rule": "time_before_exit_intent", "op": "greater", "value": 0}]}]}
    events = [{"t": 0, "type": "page_view", "url": "https://s.example/"}, {"t": 5, "type": "exit_intent"},
              {"t": 6, "type": "page_view", "url": "https://s.example/b"}, {"t": 6.5, "type": "exit_intent"},
              {"t": 9, "type": "exit_intent"}]
    out = simulate(payload, {"events": events, "until": 20, "exit_delay": 2})
    assert out["shown"] == [{"message": "exit", "t": 5.0}, {"message": "exit", "t": 9.0}]
    assert [d["t"] for d in out["not_sent"]] == [6.5]


# -- experiments: the scenario's visitor.id decides the arm; --arm forces one ----------

EXPERIMENT = """\
site: demo
messages:
  - id: plans
    experiment: plans-1
    holdout: 20
    variants:
      - {id: ask, weight: 1, content: {text: "Questions about plans?"}}
      - {id: hand, weight: 1, content: {text: "Need a hand choosing?"}}
    rules: [{rule: time_on_page, op: greater, value: 5}]
"""


def _visitor_in(arm: str) -> str:
    from widget.runtime import bundle, experiments
    exp = bundle.parse(yaml.safe_load(EXPERIMENT)).messages[0].experiment
    return next(v for v in (f"visitor-{i:04d}" for i in range(1000)) if experiments.assign(exp, v, "plans") == arm)


@pytest.mark.parametrize("arm", ["ask", "hand", "holdout"])
def test_simulate_the_visitor_id_decides_the_arm(tmp_path, capsys, arm):
    m = tmp_path / "m.yaml"
    m.write_text(EXPERIMENT)
    s = tmp_path / "s.json"
    s.write_text(json.dumps({"visitor": {"id": _visitor_in(arm)}, "until": 30,
                             "events": [{"t": 0, "type": "page_view", "url": "https://s.example/"}]}))
    assert main(["simulate", str(m), str(s)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exposed"] == [{"message": "plans", "t": 5.001, "arm": arm}]
    assert out["shown"] == ([] if arm == "holdout" else [{"message": "plans", "t": 5.001, "arm": arm}])


def test_simulate_arm_forces_one_and_the_timeline_names_it(tmp_path, capsys):
    m = tmp_path / "m.yaml"
    m.write_text(EXPERIMENT)
    s = tmp_path / "s.json"
    s.write_text(json.dumps({"visitor": {"id": _visitor_in("ask")}, "until": 30,
                             "events": [{"t": 0, "type": "page_view", "url": "https://s.example/"}]}))
    assert main(["simulate", str(m), str(s), "--arm", "plans=holdout", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "expose  plans [arm holdout]" in text
    assert "control group (holdout)" in text
    assert main(["simulate", str(m), str(s), "--arm", "plans=nope"]) == 1
    assert "no arm 'nope' (one of ask, hand, holdout)" in capsys.readouterr().err


def test_simulate_without_a_visitor_id_shows_the_first_variant_uncounted():
    result = simulate(yaml.safe_load(EXPERIMENT), {"until": 30, "events": [{"t": 0, "type": "page_view", "url": "https://s.example/"}]})
    assert result["shown"] == [{"message": "plans", "t": 5.001, "arm": "ask"}] and "exposed" not in result

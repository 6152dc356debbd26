"""Run the language-neutral cases file (tests/cases.json) in any interpreter.

Stdlib only, so the e2e suite can run the very same file under Pyodide in
Chromium and compare with CPython. Each case is [name, rules, state, expected]:

- condition case: `rules` is a rule tree, `state` maps rule ids to observed
  values (durations in elapsed milliseconds; absent or null = unknown) and
  `expected` is true/false, or "invalid" when the rules must be refused;
- journey case: `rules` is a list of messages, `state` is {"events": [...],
  "now": ms, "context"?: {...}, "record"?: {...}} and `expected` is the list
  of decisions as [action, message, t], from one `step(events, now)` call
  (with a fourth item, the arm, for a message of an experiment).
"""

from __future__ import annotations

import json

from . import bundle, conditions
from .engine import Engine


def run_case(rules, state, expected=None):
    """The actual outcome of one case, comparable with its `expected`."""
    if isinstance(state, dict) and "events" in state:
        payload = {"site": "cases", "widgets": [{"id": "main"}], "messages": rules}
        try:
            engine = Engine(payload, record=state.get("record"), context=state.get("context"))
        except bundle.BundleInvalid:
            return "invalid"
        result = engine.step(state["events"], state["now"])
        return [[d["action"], d["message"], d["t"]] + ([d["arm"]] if "arm" in d else []) for d in result["decisions"]]
    chk = bundle._Checker()
    bundle.check_rules(rules, ("rules",), chk)
    if chk.problems:
        return "invalid"
    facts, now = conditions.facts_from_state(state)
    ok, _ = conditions.compile_rules(rules).evaluate(facts, now)
    return ok


def run_cases(cases) -> list:
    """[(name, expected, actual)] for every case; `cases` may be the parsed
    list or the JSON text of the cases file."""
    if isinstance(cases, (str, bytes)):
        cases = json.loads(cases)
    out = []
    for name, rules, state, expected in cases:
        try:
            actual = run_case(rules, state, expected)
        except Exception as exc:   # a crash is a failed case, not a crashed run
            actual = f"error: {type(exc).__name__}: {exc}"
        out.append((name, expected, actual))
    return out


def failures(cases) -> list:
    """The cases whose actual outcome differs from the expected one."""
    return [r for r in run_cases(cases) if r[1] != r[2]]

"""Run the language-neutral cases file (tests/cases.json) in any interpreter.

Stdlib only, so the e2e suite can run the very same file under Pyodide in
Chromium and compare with CPython. Each case is [name, rules, state, expected]:

- condition case: `rules` is a rule tree, `state` maps rule ids to observed
  values (durations in elapsed milliseconds; absent or null = unknown) and
  `expected` is true/false, or "invalid" when the rules must be refused;
- journey case: `rules` is a list of messages, `state` is {"events": [...],
  "now": ms, "context"?: {...}, "record"?: {...}} and `expected` is the list
  of decisions as [action, message, t], from one `step(events, now)` call
  (with a fourth item, the arm, for a message of an experiment);
- a journey case whose state says `"traces": true` expects
  {"decisions": [...], "traces": {message: trace}}: each message's trace at
  the instant that decided it (explain's `decided` / `at_exit`, else at
  `now`) as {"at", "result", "conditions": [[rule, op, observed, result]],
  "blocked_by"};
- a journey case whose state has `"browser": {"exit_delay": s}` first drops
  the events a browser never sends (simulate.browser_filter, the loader's
  rules) and expects {"decisions": [...], "not_sent": [[type, t, why]]}.
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
        events, not_sent = state["events"], None
        if "browser" in state:
            from .simulate import browser_filter   # a developer tool: not in the runtime archive

            events, dropped = browser_filter(sorted(events, key=lambda e: e["t"]),
                                             round(state["browser"].get("exit_delay", 1) * 1000))
            not_sent = [[d["event"]["type"], d["event"]["t"], d["why"]] for d in dropped]
        result = engine.step(events, state["now"])
        decisions = [[d["action"], d["message"], d["t"]] + ([d["arm"]] if "arm" in d else [])
                     for d in result["decisions"]]
        if not_sent is None and not state.get("traces"):
            return decisions
        out = {"decisions": decisions}
        if not_sent is not None:
            out["not_sent"] = not_sent
        if state.get("traces"):
            out["traces"] = {mid: _trace(entry, state["now"]) for mid, entry in engine.explain(state["now"]).items()}
        return out
    chk = bundle._Checker()
    bundle.check_rules(rules, ("rules",), chk)
    if chk.problems:
        return "invalid"
    facts, now = conditions.facts_from_state(state)
    ok, _ = conditions.compile_rules(rules).evaluate(facts, now)
    return ok


def _trace(entry: dict, now: int) -> dict:
    """A message's trace at the instant that decided it, in the cases' terms."""
    chosen = entry.get("decided") or (entry.get("at_exit") if entry["result"] != "delivered" else None) or entry
    return {"at": chosen.get("at", now), "result": chosen["result"],
            "conditions": [[c["rule"], c["op"], c["observed"], c["result"]] for c in chosen["conditions"]],
            "blocked_by": chosen["blocked_by"]}


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

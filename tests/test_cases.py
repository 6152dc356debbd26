"""The language-neutral conformance file, run under CPython. The e2e suite
runs the same file under Pyodide through widget.runtime.conformance."""

import json
from pathlib import Path

import pytest

from widget.runtime.conformance import run_cases

CASES = json.loads((Path(__file__).parent / "cases.json").read_text(encoding="utf-8"))


def test_the_file_is_big_and_names_are_unique():
    names = [c[0] for c in CASES]
    assert len(CASES) >= 200
    assert len(set(names)) == len(names)


def test_every_rule_and_operator_is_covered():
    from widget.runtime import catalog
    seen = set()

    def walk(tree):
        if isinstance(tree, list):
            for t in tree:
                walk(t)
        elif isinstance(tree, dict) and ("all" in tree or "any" in tree):
            walk(tree.get("all", tree.get("any")))
        elif isinstance(tree, dict):
            seen.add((tree.get("rule"), tree.get("op")))

    for _, rules, state, _ in CASES:
        if "events" not in state:
            walk(rules)
    missing = [(r.id, op) for r in catalog.RULES.values() for op in r.ops if (r.id, op) not in seen]
    assert missing == []


@pytest.mark.parametrize("name,expected,actual", run_cases(CASES), ids=[c[0] for c in CASES])
def test_case(name, expected, actual):
    assert actual == expected


def test_runner_reports_a_wrong_expectation():
    bad = [["wrong on purpose", {"rule": "visits", "op": "greater", "value": 1}, {"visits": 2}, False]]
    assert run_cases(bad) == [("wrong on purpose", False, True)]


def test_runner_accepts_json_text_and_survives_a_crashing_case():
    text = json.dumps([["crash", {"rule": "visits", "op": "greater", "value": 1}, {"no_such_rule": 1}, False]])
    (name, expected, actual), = run_cases(text)
    assert (name, expected) == ("crash", False)
    assert actual is False or str(actual).startswith("error:")


def test_docs_rules_md_documents_every_rule_and_its_operators():
    from widget.runtime import catalog
    text = (Path(__file__).parent.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in catalog.RULES.values():
        start = text.index(f"### `{rule.id}`")
        section = text[start:text.find("\n### ", start + 1)]
        for op in rule.ops:
            assert f"`{op}`" in section, (rule.id, op)

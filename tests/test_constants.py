"""One source for what Python and the browser share (issue 16 item 4).

widget/runtime/constants.py holds the values; the build writes them into the
browser side as constants.mjs. These tests fail when a copy appears or
drifts: in the generated module, in a browser module that writes its own, in
Python modules, in the engine's event handling. URL normalisation, whose
logic exists in both languages (urls.py, reactions.mjs), runs one shared
cases file through both: tests/url_cases.json."""

from __future__ import annotations

import ast
import inspect
import json
import re
import runpy
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from widget.runtime import catalog, constants, engine, trust, urls

ROOT = Path(__file__).resolve().parents[1]
WIDGET = ROOT / "widget"
NODE = shutil.which("node")
CASES = json.loads((ROOT / "tests" / "url_cases.json").read_text())
needs_node = pytest.mark.skipif(NODE is None, reason="node runs the browser modules (the build needs it too)")


def node(script: str, payload) -> object:
    run = subprocess.run([NODE, "--input-type=module", "-e", script], input=json.dumps(payload),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


READ_STDIN = "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));".replace(
    "require('fs')", "(await import('node:fs'))")


@needs_node
def test_the_generated_module_holds_the_python_values(tmp_path):
    module = tmp_path / "constants.mjs"
    module.write_text(runpy.run_path(str(ROOT / "build" / "build.py"))["constants_module"]())
    got = node(f"const c = await import({json.dumps(module.as_uri())}); console.log(JSON.stringify(c));", None)
    assert got == {name: list(v) if isinstance(v, tuple) else v for name, v in constants.SHARED.items()}


def browser_modules():
    return sorted(p for p in WIDGET.rglob("*") if p.suffix in (".mjs", ".js") and "runtime" not in p.parts)


COPIES = [r"30\s*\*\s*60\s*\*\s*1000", r"1024\s*\*\s*1024", r"\b1800000\b", r"\b1048576\b",
          r"""["']great["'],\s*["']average["'],\s*["']poor["']""", r"""["']context["'],\s*["']record_sync["']"""]


@pytest.mark.parametrize("path", browser_modules(), ids=lambda p: str(p.relative_to(WIDGET)))
def test_no_browser_module_keeps_its_own_copy(path):
    text = path.read_text()
    for pattern in COPIES:
        assert not re.search(pattern, text), f"{path.name} has its own copy ({pattern}): import it from constants.mjs"
    for name in constants.SHARED:
        # A module may name a shared value only by importing it (or a value
        # made from an import, e.g. a Set of the imported list).
        for rhs in re.findall(rf"(?:const|let|var)\s+{name}\s*=\s*([^;]+);", text):
            assert re.fullmatch(r"(new Set\()?[A-Za-z_]\w*\)?", rhs.strip()), f"{path.name} defines its own {name}"


def test_python_uses_the_one_source():
    assert engine.VISIT_GAP_MS is constants.VISIT_GAP_MS and engine.RECORD_VERSION is constants.RECORD_VERSION
    assert trust.MAX_BUNDLE_BYTES == constants.BUNDLE_MAX_BYTES
    assert catalog.RULES["rating"].choices == constants.RATINGS
    # The pytest plugin may not import the widget (a site's suite loads it): a
    # checked copy.
    from proactive import pytest_plugin

    assert pytest_plugin.VISIT_GAP_MS == constants.VISIT_GAP_MS
    assert pytest_plugin.STORAGE_PREFIX == f"proactive:v{constants.RECORD_VERSION}:"
    for folder in ("widget", "proactive", "server_stub"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name in ("constants.py", "pytest_plugin.py"):
                continue
            text = path.read_text()
            assert not re.search(r"^(VISIT_GAP_MS|RECORD_VERSION|BUNDLE_MAX_BYTES|MAX_BUNDLE_BYTES|RATINGS)\s*=", text, re.M), path
            assert not re.search(r"""["']great["'],\s*["']average["'],\s*["']poor["']""", text), path


def test_the_engine_reads_exactly_the_shared_event_names():
    """Engine._apply's branches plus `tick` (a wake-up: no state of its own)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(engine.Engine._apply)))
    handled = {node.comparators[0].value for node in ast.walk(tree)
               if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "kind"
               and isinstance(node.ops[0], ast.Eq) and isinstance(node.comparators[0], ast.Constant)}
    assert handled | {"tick"} == set(constants.ENGINE_EVENTS)


@pytest.mark.parametrize("case", CASES["urls"], ids=[c["url"] for c in CASES["urls"]])
def test_python_normalises_the_shared_urls(case):
    parsed = urls.parse(case["url"])
    assert {k: getattr(parsed, k) for k in case["parts"]} == case["parts"]


@pytest.mark.parametrize("case", CASES["rules"], ids=[f'{c["url"]} {c["op"]} {c["value"]}' for c in CASES["rules"]])
def test_python_compares_the_shared_urls(case):
    assert getattr(urls, case["op"])(case["url"], case["value"]) is case["holds"]


def residual(op: str, value: str) -> list:
    """The residual URL test the engine sends the page (conditions.partial)."""
    if op == "contains":
        return ["contains", value.strip().casefold()]
    shape, text = urls.matches_shape(value) if op == "matches" else urls.equals_key(value)
    return [op, list(shape), text]


@needs_node
def test_the_browser_normalises_and_compares_the_same_way():
    reactions = (WIDGET / "decisions" / "reactions.mjs").as_uri()
    script = READ_STDIN + f"""
const {{ observe, holds }} = await import({json.dumps(reactions)});
console.log(JSON.stringify({{
  urls: input.urls.map((u) => observe(u)),
  rules: input.rules.map(([u, test]) => {{ const o = observe(u); return o ? holds({{ url: [test], not: false }}, o) : null; }}),
}}));"""
    got = node(script, {"urls": [c["url"] for c in CASES["urls"]],
                        "rules": [[c["url"], residual(c["op"], c["value"])] for c in CASES["rules"]]})
    for case, parts in zip(CASES["urls"], got["urls"]):
        assert parts == (case["parts"] if case["browser"] else None), case["url"]
    for case, holds in zip(CASES["rules"], got["rules"]):
        assert holds is case["holds"], case
    assert sum(c["browser"] for c in CASES["urls"]) >= len(CASES["urls"]) // 2  # the browser answers most


def test_the_loaders_exit_delay_is_the_shared_one():
    """widget/loader.js is a classic script (it imports nothing): its
    data-exit-delay default is checked here against constants.EXIT_DELAY_S,
    which simulate and the docs use."""
    loader = (ROOT / "widget" / "loader.js").read_text()
    found = re.findall(r'number\("exit-delay",\s*([0-9.]+)\)', loader)
    assert found == [str(constants.EXIT_DELAY_S)], found

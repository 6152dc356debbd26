"""The language-neutral cases file, run under Pyodide in Chromium, must give
exactly what CPython gives (and what the file expects).

The runner (widget/runtime/conformance.py) and simulate.py (whose browser
filter the "browser - …" cases apply) are developer tools, not in the
runtime archive visitors download: the test writes them beside the runtime."""

from __future__ import annotations

import json
from pathlib import Path

from widget.runtime.conformance import run_cases

CASES = Path(__file__).resolve().parents[1] / "tests" / "cases.json"

RUNTIME = Path(__file__).resolve().parents[1] / "widget" / "runtime"
DEV_TOOLS = ("conformance.py", "simulate.py")

RUN_IN_PYODIDE = """async ({ widget, pyodideDir, archive, stdlib, cases, tools }) => {
  const { loadPyodide } = await import(`${widget}/${pyodideDir}/pyodide.mjs`);
  const options = { indexURL: `${widget}/${pyodideDir}/` };
  if (stdlib) options.stdLibURL = `${widget}/${stdlib}`;  // the build's trimmed, precompiled stdlib
  const pyodide = await loadPyodide(options);
  const tar = await (await fetch(`${widget}/${archive}`)).arrayBuffer();
  const { untarInto } = await import(`${widget}/untar.mjs`);   // as the widget unpacks it
  untarInto(pyodide.FS, tar, "/proactive");
  pyodide.runPython("import sys; sys.path.insert(0, '/proactive')");
  const shipped = Object.keys(tools).filter((name) => pyodide.runPython(
    `import importlib.util; importlib.util.find_spec('widget.runtime.${name.replace(".py", "")}') is not None`));
  for (const [name, text] of Object.entries(tools)) pyodide.FS.writeFile(`/proactive/widget/runtime/${name}`, text);
  pyodide.globals.set("cases_json", cases);
  return {
    shipped,
    version: pyodide.runPython("import sys; sys.version"),
    results: pyodide.runPython(`
import json
from widget.runtime.conformance import run_cases
json.dumps(run_cases(cases_json))
`),
  };
}"""


def test_cases_file_gives_identical_results_in_pyodide_and_cpython(site, page):
    text = CASES.read_text()
    manifest = json.loads((site.static / "manifest.json").read_text())
    page.goto(site.page(tag=""))
    out = page.evaluate(
        RUN_IN_PYODIDE,
        {"widget": site.widget_origin, "pyodideDir": manifest["pyodide_dir"],
         "archive": manifest["runtime_archive"], "stdlib": manifest.get("stdlib_zip"), "cases": text,
         "tools": {name: (RUNTIME / name).read_text() for name in DEV_TOOLS}},
    )
    assert out["shipped"] == []   # visitors never download the developer tools
    assert out["version"].startswith("3.14"), out["version"]
    in_pyodide = json.loads(out["results"])
    in_cpython = json.loads(json.dumps(run_cases(text)))
    assert len(in_pyodide) == len(json.loads(text)) >= 200
    assert in_pyodide == in_cpython
    failed = [r for r in in_pyodide if r[1] != r[2]]
    assert not failed, failed[:5]

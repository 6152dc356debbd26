// The rule engine under Pyodide (Node, no browser): runs tests/cases.json
// and compares with CPython's results file if given, then times per-event
// decisions with 1,000 messages x 10 conditions. Not run by tests.
//
//   node bench/bench_engine_pyodide.mjs
import { loadPyodide } from "../node_modules/pyodide/pyodide.mjs";
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const py = await loadPyodide({ indexURL: path.join(root, "node_modules/pyodide/") });

function copyPy(src, dst) {
  py.FS.mkdirTree(dst);
  for (const f of fs.readdirSync(src)) {
    const p = path.join(src, f);
    if (fs.statSync(p).isDirectory()) { if (f !== "__pycache__") copyPy(p, `${dst}/${f}`); }
    else if (f.endsWith(".py")) py.FS.writeFile(`${dst}/${f}`, fs.readFileSync(p));
  }
}
copyPy(path.join(root, "widget"), "/home/pyodide/widget");
copyPy(path.join(root, "bench"), "/home/pyodide/bench");
py.FS.writeFile("/home/pyodide/cases.json", fs.readFileSync(path.join(root, "tests/cases.json")));

console.log(py.runPython(`
import json, sys
sys.path.insert(0, "/home/pyodide"); sys.path.insert(0, "/home/pyodide/bench")
from widget.runtime.conformance import run_cases
results = run_cases(open("/home/pyodide/cases.json").read())
bad = [r for r in results if r[1] != r[2]]
f"Python {sys.version.split()[0]} (Pyodide): {len(results)} cases, {len(bad)} failing"
`));
for (const extra of ["", ", '--no-freeze'"]) {
  console.log(py.runPython(`
import sys, io, contextlib, gc
sys.argv = ["bench_engine.py", "--rounds", "5"${extra}]
import bench_engine
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    bench_engine.main()
gc.unfreeze()
buf.getvalue()
`));
}

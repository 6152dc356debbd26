// bench/run.py's decision benchmark without a browser: 1,000 messages x 10
// conditions (run.py's decision_messages), one SPA page view per event,
// through adapter.Runtime.step (JSON in and out, as the worker calls it) and
// Engine.step alone, under Pyodide in Node (high-resolution timer; Chromium
// coarsens a worker's performance.now() to 0.1 ms). Not run by tests.
//
//   node bench/bench_decision_pyodide.mjs [checkout]   (default: this one)
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = path.resolve(process.argv[2] || here);
const { loadPyodide } = await import(path.join(here, "node_modules/pyodide/pyodide.mjs"));
const py = await loadPyodide({ indexURL: path.join(here, "node_modules/pyodide/") });
function copyPy(src, dst) { py.FS.mkdirTree(dst); for (const f of fs.readdirSync(src)) { const p = path.join(src, f);
  if (fs.statSync(p).isDirectory()) { if (f !== "__pycache__") copyPy(p, `${dst}/${f}`); } else if (f.endsWith(".py")) py.FS.writeFile(`${dst}/${f}`, fs.readFileSync(p)); } }
copyPy(path.join(root, "widget"), "/home/pyodide/widget");
py.FS.writeFile("/home/pyodide/runsrc.py", fs.readFileSync(path.join(root, "bench/run.py")));
py.runPython(`
import sys, json; sys.path.insert(0, "/home/pyodide")
src = open("/home/pyodide/runsrc.py").read()
ns = {}; exec(src[src.index("def decision_messages"):src.index("def trigger_messages")], ns)
doc, rules = ns["decision_messages"](1000); doc["version"] = 1
rules_json = json.dumps(rules)
from widget.runtime import adapter
from widget.runtime.engine import Engine, settle_memory
ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
ctx = {"language": "en-US", "languages": ["en-US"], "user_agent": ua, "platform": "desktop"}
rt = adapter.Runtime(json.dumps({"site": "bench", "keys": "ed25519:" + "A"*43 + "=", "context": ctx}))
rt._staged = (doc, Engine(doc).bundle)
`);
const rt = py.globals.get("rt");
const rules = JSON.parse(py.globals.get("rules_json"));
const ref = "https://www.google.com/search?q=tents";
let t = 1_700_000_000_000;
JSON.parse(rt.start("", JSON.stringify([{ type: "page_view", t, url: "https://shop.example/category/0", referrer: ref }]), t));
py.runPython("settle_memory()");
const times = [];
for (let i = -20; i < 500; i++) {
  t += 1000;
  const ev = JSON.stringify([{ type: "page_view", t, url: `https://shop.example/category/${(i + 20) % 7}`, referrer: ref }]);
  const s = performance.now();
  const r = JSON.parse(rt.step(ev, t));
  if (i >= 0) times.push(performance.now() - s);
}
times.sort((a, b) => a - b);
const mean = times.reduce((a, b) => a + b) / times.length;
console.log(`${root}: Runtime.step under Pyodide (Node): p50 ${times[250].toFixed(3)} p95 ${times[475].toFixed(3)} mean ${mean.toFixed(3)} ms`);
const eng = JSON.parse(py.runPython(`
import time, json
_ts = []; _t = ${t}
for _i in range(500):
    _t += 1000
    _ev = [{"type": "page_view", "t": _t, "url": "https://shop.example/category/%d" % (_i % 7), "referrer": "${ref}"}]
    _s = time.perf_counter(); rt.engine.step(_ev, _t); _ts.append((time.perf_counter() - _s) * 1000)
_ts.sort()
json.dumps([_ts[250], _ts[475], sum(_ts)/len(_ts)])
`));
console.log(`  Engine.step: p50 ${eng[0].toFixed(3)} p95 ${eng[1].toFixed(3)} mean ${eng[2].toFixed(3)} ms`);

// json-logic-js on the same rules and data, in the same process (run.py's baseline).
const { createRequire } = await import("module");
const jsonLogic = createRequire(import.meta.url)(path.join(here, "node_modules/json-logic-js/logic.js"));
const data = { time_on_page: 1, language: "en", page_views: 1, visits: 1, platform: "desktop", referrer: ref,
  user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
  time_this_visit: 10, invitations_sent: 0 };
const jl = [];
for (let i = -20; i < 500; i++) {
  const d = { ...data, url: `https://shop.example/category/${(i + 20) % 7}`, page_views: i + 22 };
  const s = performance.now();
  let matched = 0;
  for (const rule of rules) if (jsonLogic.apply(rule, d)) matched++;
  if (i >= 0) jl.push(performance.now() - s);
}
jl.sort((a, b) => a - b);
console.log(`  json-logic-js, same rules: p50 ${jl[250].toFixed(3)} p95 ${jl[475].toFixed(3)} mean ${(jl.reduce((a, b) => a + b) / jl.length).toFixed(3)} ms`);

"""Start-up in real Chromium: the trimmed precompiled stdlib holds everything
the runtime imports, and the memory snapshot kept in the browser is restored
on the next load, reseeded, checked with fresh imports, and refused when
another build made it."""

from __future__ import annotations

import ast
import json
import sys
import time
import zipfile

from conftest import ROOT, shown_ids, simple_messages, wait_ready

RUNTIME = ROOT / "widget"


def runtime_stdlib_imports() -> list[str]:
    """Every stdlib module the runtime's sources import, anywhere (CPython's
    ast: the runtime is valid Python 3.11 and 3.14)."""
    found = set()
    for path in sorted(RUNTIME.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module)
    return sorted(n for n in found if n.split(".")[0] not in ("widget", "__future__") and n.split(".")[0] in sys.stdlib_module_names)


def runtime_modules() -> list[str]:
    """The modules the runtime archive carries (the developer tools stay out:
    build.DEV_TOOLS)."""
    from build.build import DEV_TOOLS

    out = []
    for path in sorted(RUNTIME.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        if rel.with_suffix(".py").as_posix() in DEV_TOOLS:
            continue
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    return out


# Runs in a module worker of the widget's origin that drives host.mjs's
# startPython directly, the way init() does.
WORKER = """
import { startPython, snapshotStore } from "./%(host)s";
self.onmessage = async (e) => {
  const job = e.data;
  try {
    if (job.plant) await snapshotStore("put", { meta: { key: job.plant, made: 0 }, current: new Uint8Array(64) });
    const archive = fetch("./%(runtime)s").then((r) => r.arrayBuffer());
    const t0 = performance.now();
    const { pyodide, snapshot } = await startPython(archive, job.snapshot);
    const ms = performance.now() - t0;
    const out = { state: snapshot.state, fresh: snapshot.fresh, ms };
    out.rand = pyodide.runPython("import random; str(random.getrandbits(64))");
    out.check = pyodide.runPython(job.python);
    out.kept = job.snapshot ? await snapshot.keepLater() : false;
    self.postMessage({ ok: true, ...out });
  } catch (err) {
    self.postMessage({ ok: false, error: String((err && err.stack) || err) });
  }
};
"""

PAGE = """<!doctype html><meta charset=utf-8><link rel=icon href="data:,"><title>startup</title><script type=module>
window.startOnce = (job) => new Promise((resolve) => {
  const w = new Worker("./startup-worker.mjs", { type: "module" });
  w.onmessage = (e) => { w.terminate(); resolve(e.data); };
  w.onerror = (e) => { w.terminate(); resolve({ ok: false, error: e.message }); };
  w.postMessage(job);
});
</script>"""

# Imports every runtime module and every stdlib module the runtime imports;
# returns which stdlib ones were not imported before (so fresh, from the zip).
CHECK = """
import importlib, json, sys
NEEDED = %(needed)s
RUNTIME = %(runtime)s
fresh = [m for m in NEEDED if m not in sys.modules]
missing = []
for name in NEEDED + RUNTIME:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        missing.append(f"{name}: {exc}")
from datetime import datetime
datetime.strptime("2026-05-28 10:00", "%%Y-%%m-%%d %%H:%%M")  # _strptime, imported lazily
# The .pyc keep line numbers (not columns): a traceback through the stdlib
# names its lines; the runtime is sourceless, its functions keep theirs.
import traceback
try:
    json.loads('{"a": ')
except ValueError as exc:
    stdlib_frames = [(f.filename.rpartition(".zip/")[2], f.lineno) for f in traceback.extract_tb(exc.__traceback__)]
import widget.runtime.engine as engine
runtime = {"origin": engine.__spec__.origin, "loader": type(engine.__spec__.loader).__name__,
           "lines": sorted({l for _, _, l in engine.Engine.step.__code__.co_lines() if l}),
           "first": engine.Engine.step.__code__.co_firstlineno}
json.dumps({"fresh": fresh, "missing": missing, "origin": sys.modules["json"].__spec__.origin,
            "stdlib_frames": stdlib_frames, "runtime": runtime})
"""


def _setup(site) -> str:
    manifest = json.loads((site.static / "manifest.json").read_text())
    host = manifest["served"]["host.mjs"]
    (site.static / "startup-worker.mjs").write_text(WORKER % {"host": host, "runtime": manifest["runtime_archive"]})
    (site.static / "startup.html").write_text(PAGE)
    return f"{site.widget_origin}/startup.html"


def test_trimmed_stdlib_has_every_module_the_runtime_imports_and_the_snapshot_round_trips(site, page):
    url = _setup(site)
    page.goto(url)
    python = CHECK % {"needed": json.dumps(runtime_stdlib_imports()), "runtime": json.dumps(runtime_modules())}

    def start(**job):
        result = page.evaluate("(job) => window.startOnce(job)", {"snapshot": False, "python": python, **job})
        assert result["ok"], result.get("error")
        result["check"] = json.loads(result["check"])
        assert result["check"]["missing"] == [], result["check"]["missing"]
        return result

    # 1. No snapshot: every import works from the trimmed, precompiled zip.
    plain = start()
    assert plain["state"] == "off"
    assert plain["check"]["origin"].startswith("/lib/python3") and ".zip/" in plain["check"]["origin"]
    # Line numbers survive the slimmer location tables: each stdlib frame's
    # line is the line of Pyodide's own source that raised or called.
    frames = [(name, line) for name, line in plain["check"]["stdlib_frames"] if name.startswith("json/")]
    assert len(frames) >= 2, plain["check"]["stdlib_frames"]
    with zipfile.ZipFile(ROOT / "node_modules" / "pyodide" / "python_stdlib.zip") as z:
        for name, line in frames:
            text = z.read(name).decode().splitlines()[line - 1]
            assert "raise" in text or "decode(" in text, (name, line, text)
    # The runtime: sourceless .pyc, its line numbers those of its source.
    runtime = plain["check"]["runtime"]
    assert runtime["origin"].endswith("/widget/runtime/engine.pyc") and runtime["loader"] == "SourcelessFileLoader", runtime
    step = next(n for n in ast.walk(ast.parse((RUNTIME / "runtime" / "engine.py").read_text()))
                if isinstance(n, ast.FunctionDef) and n.name == "step")
    assert runtime["first"] == step.lineno and set(runtime["lines"]) <= set(range(step.lineno, step.end_lineno + 1)), runtime
    assert len(runtime["lines"]) > 5, runtime

    # 2. First start with snapshots on: made, and kept in IndexedDB.
    made = start(snapshot=True)
    assert made["state"] == "made" and made["kept"] is True, made

    # 3. Restored twice: fresh imports work after the restore (the zip matches
    #    the heap), and `random` is reseeded (same heap, different numbers).
    first = start(snapshot=True)
    second = start(snapshot=True)
    for r in (first, second):
        assert r["state"] == "restored", r
        assert r["fresh"] and "not imported yet" in r["fresh"], r["fresh"]
    # (first["check"]["fresh"] may be empty: since the runtime reads time zones
    # with zoneinfo, the snapshot holds every stdlib module the runtime imports;
    # the fresh import above is of a module it does not hold.)
    assert first["rand"] != second["rand"], "two restores of one snapshot gave the same random numbers"

    # 4. A snapshot another build made is refused (and replaced).
    refused = start(snapshot=True, plant="made by another build")
    assert refused["state"] == "refused, made", refused
    again = start(snapshot=True)
    assert again["state"] == "restored", again

    # 5. Bytes that do not restore (this build's key, a broken heap): a
    #    normal start instead, and a new snapshot.
    manifest = json.loads((site.static / "manifest.json").read_text())
    key = f"{manifest['pyodide_dir']}/{manifest['stdlib_zip']}/{manifest['runtime_archive']}"
    broken = start(snapshot=True, plant=key)
    assert broken["state"] == "failed, made", broken


def _stored_snapshot(page) -> bool:
    return page.evaluate(
        """() => new Promise((resolve) => {
             const open = indexedDB.open("proactive-snapshot", 1);
             open.onupgradeneeded = () => open.result.createObjectStore("snapshots");
             open.onerror = () => resolve(false);
             open.onsuccess = () => {
               const db = open.result;
               const req = db.transaction("snapshots").objectStore("snapshots").count("current");
               req.onsuccess = () => { db.close(); resolve(req.result === 1); };
               req.onerror = () => { db.close(); resolve(false); };
             };
           })"""
    )


def test_widget_restores_its_snapshot_on_the_next_page_load(site, context, guard):
    site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]}), "startup")
    url = site.page(tag=site.tag(bundle=site.bundle_url("startup")))
    fetched = []
    context.on("request", lambda request: fetched.append(request.url))

    first = context.new_page()
    first.goto(url)
    status = wait_ready(first)
    assert status["ready"] and status["mode"] == "worker", status
    assert status["timings"]["snapshot"] == "made", status["timings"]
    deadline = time.time() + 20
    while not _stored_snapshot(first):
        assert time.time() < deadline, "the snapshot was not kept in IndexedDB"
        time.sleep(0.2)
    first.close()

    second = context.new_page()
    second.goto(url)
    status = wait_ready(second)
    assert status["ready"], status
    assert status["timings"]["snapshot"] == "restored", status["timings"]
    explain = second.evaluate("() => window.proactive('explain')")
    assert explain and "hello" in explain, explain
    assert not guard.warnings(), guard.warnings()
    # Pyodide gets an empty lock file (the widget installs no package): its
    # 22 KB one is never fetched; the engine's files are.
    assert any("/stdlib-" in u for u in fetched) and any("/runtime-" in u for u in fetched), fetched
    assert not [u for u in fetched if "pyodide-lock" in u], fetched


def test_data_snapshot_off_keeps_no_snapshot(site, page, guard):
    site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]}), "nosnap")
    page.goto(site.page(tag=site.tag(bundle=site.bundle_url("nosnap"), data_snapshot="off")))
    status = wait_ready(page)
    assert status["ready"] and status["timings"]["snapshot"] == "off", status
    page.wait_for_timeout(1500)  # past the moment a snapshot would be kept
    assert not _stored_snapshot(page)
    assert shown_ids(page) == ["hello"]

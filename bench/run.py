"""Start-up and speed benchmarks, side by side with their baselines (`make bench`).

    .venv/bin/python bench/run.py [--runs 5] [--triggers 60] [--events 200] [--quick]

Real Chromium (/usr/bin/chromium, the e2e harness's flags), real HTTP on two
origins, the widget built three ways in the same run:

  plain     Pyodide as shipped: full source stdlib, nothing precompiled (the "before")
  pyc       trimmed stdlib + runtime precompiled to .pyc by Pyodide's CPython
  snapshot  pyc + the memory snapshot kept in the visitor's browser (the default build)
  main      the default build with data-mode="main": Pyodide on the page's main thread

Measured, median and range over --runs runs (a new browser profile each):
  ready         navigation start -> the widget's "ready" event (the runtime can decide),
                cold (new profile) and warm (second load, same profile)
  long tasks    the page's PerformanceObserver("longtask") total, minus the same page
                without the widget
  LCP           the host page's largest contentful paint, with and without the widget
  bytes         what the widget's origin sent per file (counted by the server), first
                and repeat visit; brotli sizes from the build
  heap          the worker's wasm memory at ready
  triggers      DOM event (pointer leaving through the top; SPA pushState) -> message
                painted (next animation frame), p50/p95 over --triggers each
  decision      one event with 1,000 messages x 10 conditions: the runtime under Pyodide
                (adapter.Runtime.step, JSON in and out, as the worker calls it) vs
                json-logic-js on equivalent rules, in the same worker

Prints a table and writes bench/results/bench-<UTC time>.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "e2e")]

import runpy  # noqa: E402

from conftest import CHROMIUM, CHROMIUM_FLAGS, _Server  # noqa: E402  (the e2e harness's launch flags and server)
from proactive import publishing, signing  # noqa: E402
from server_stub.app import create_site_app, create_widget_app, script_tag  # noqa: E402

RESULTS = ROOT / "bench" / "results"
VARIANTS = ("plain", "pyc", "snapshot", "main")


# -- servers ----------------------------------------------------------------

class ByteCounter:
    """ASGI middleware: bytes each path sent (body + status line/headers
    estimate), with status and content-encoding, until reset()."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.sent: dict[str, dict] = {}
        self.accept_encoding: set[str] = set()

    def reset(self) -> dict:
        with self.lock:
            out, self.sent = self.sent, {}
        return out

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        for k, v in scope.get("headers", []):
            if k == b"accept-encoding":
                self.accept_encoding.add(v.decode())

        async def counting(message):
            with self.lock:
                entry = self.sent.setdefault(path, {"bytes": 0, "requests": 0, "status": [], "encoding": None})
                if message["type"] == "http.response.start":
                    entry["requests"] += 1
                    entry["status"].append(message["status"])
                    headers = message.get("headers", [])
                    entry["bytes"] += 17 + sum(len(k) + len(v) + 4 for k, v in headers)
                    for k, v in headers:
                        if k.lower() == b"content-encoding":
                            entry["encoding"] = v.decode()
                elif message["type"] == "http.response.body":
                    entry["bytes"] += len(message.get("body", b""))
            await send(message)

        return await self.app(scope, receive, counting)


def _png(width: int, height: int) -> bytes:
    """A gradient PNG (the host page's hero image: its LCP element)."""
    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
                    for y in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


INSTRUMENT = """<script>
window.__bench = { longtasks: [], lcp: null, readyAt: null };
new PerformanceObserver((list) => { for (const e of list.getEntries()) __bench.longtasks.push([e.startTime, e.duration]); })
  .observe({ type: "longtask", buffered: true });
new PerformanceObserver((list) => { const all = list.getEntries(); __bench.lcp = all[all.length - 1].startTime; })
  .observe({ type: "largest-contentful-paint", buffered: true });
window.proactive = window.proactive || function () { (window.proactive.q = window.proactive.q || []).push([].slice.call(arguments)); };
proactive("on", "ready", function () { __bench.readyAt = performance.now(); });
</script>"""

HOST_BODY = """<header><h1>Acme outdoor gear</h1></header>
<main><img src="/hero.png" width="960" height="400" alt="Hero">
<p>{text}</p><p>{text}</p><p>{text}</p></main>"""
LOREM = ("Tents, stoves and jackets for every season. Free returns within 30 days, "
         "and a repair service for everything we sell. ") * 6

TRIGGER_JS = """
// One trigger: t0 just before the DOM event; "dom" when the card is in the
// shadow DOM (checked as soon as the event's dispatch returns, else by a
// MutationObserver); "painted" at the next animation frame after that (the
// frame that paints it). The widget must hold the engine's answer first
// (status.prepared), as it does a few ms after every step.
window.__prepared = () => new Promise((resolve) => {
  const check = () => (proactive('status').prepared ? resolve() : setTimeout(check, 5));
  check();
});
const cardIn = (root, id) => root && root.querySelector(`[data-message-id="${id}"]`);
window.__measure = (id, fire, root = () => document.querySelector("proactive-widget").shadowRoot) => new Promise((resolve) => {
  // `first`: the first frame after the event. The card made it when the
  // frame after the card is in the DOM is that same frame.
  let first = null;
  const done = (t0, dom) => requestAnimationFrame((frame) => resolve({ dom: dom - t0, painted: performance.now() - t0, next_frame: frame === first ? 1 : 0 }));
  const r = root();
  requestAnimationFrame((frame) => { first = frame; });
  const before = cardIn(r, id); // a card of an earlier trigger does not count
  const fresh = () => { const el = cardIn(r, id); return el && el !== before; };
  const t0 = performance.now();
  fire();
  if (fresh()) return done(t0, performance.now());
  const observer = new MutationObserver(() => {
    if (!fresh()) return;
    observer.disconnect();
    done(t0, performance.now());
  });
  observer.observe(r, { childList: true, subtree: true });
});
window.__triggerSpa = async (i) => {
  await proactive("sync");
  await __prepared();
  return __measure("spa", () => history.pushState({}, "", `/spa/${i}`));
};
window.__triggerExit = async (i) => {
  history.pushState({}, "", `/exit/${i}`);
  await proactive("sync");
  await __prepared();
  return __measure("exit", () => document.dispatchEvent(new MouseEvent("mouseout", { clientX: 300, clientY: 0, relatedTarget: null, bubbles: true })));
};
// The floor: the host page itself appends a card in the event's own handler,
// measured the same way. No widget can paint before the next frame either.
window.__triggerFloor = async (i) => {
  await new Promise((r) => setTimeout(r, Math.random() * 17));
  const box = document.getElementById("floor") || document.body.appendChild(Object.assign(document.createElement("div"), { id: "floor" }));
  box.replaceChildren();
  const handler = () => box.appendChild(Object.assign(document.createElement("p"), { textContent: "floor" })).setAttribute("data-message-id", "floor");
  document.addEventListener("floor", handler, { once: true });
  return __measure("floor", () => document.dispatchEvent(new Event("floor")), () => box);
};
"""

# A module worker on the widget's origin: json-logic-js (wrapped as a module)
# and the runtime through host.mjs's startPython, the way the widget's worker runs it.
DECISION_WORKER = """
import jsonLogic from "./jsonlogic.mjs";
self.onmessage = async (e) => {
  const job = e.data;
  try {
    const { startPython } = await import("./%(host)s");
    const archive = fetch("./%(runtime)s").then((r) => r.arrayBuffer());
    const { pyodide } = await startPython(archive, false);
    const adapter = pyodide.pyimport("widget.runtime.adapter");
    const rt = adapter.Runtime(JSON.stringify({ site: "bench", keys: job.key, context: job.context }));
    const envelope = new Uint8Array(await (await fetch(job.bundle)).arrayBuffer());
    const opened = JSON.parse(rt.signing_request(envelope));
    if (!opened.ok) throw new Error(opened.error);
    const accepted = JSON.parse(rt.offer(envelope, "fetched", "valid", "", job.now)); // signed by the bench itself
    if (!accepted.ok) throw new Error(accepted.error);
    let t = job.now;
    JSON.parse(rt.start("", JSON.stringify([{ type: "page_view", t, url: job.urls[0], referrer: job.referrer }]), t));
    const py = [], jl = [], reactions = [], reactionBytes = [];
    let shownPy = 0, shownJl = 0;
    for (let i = -job.warmup; i < job.events; i++) { // the first `warmup` events are not timed
      t += 1000;
      const url = job.urls[(i + job.warmup) %% job.urls.length];
      const events = JSON.stringify([{ type: "page_view", t, url, referrer: job.referrer }]);
      let t0 = performance.now();
      const reply = JSON.parse(rt.step(events, t));
      if (i >= 0) py.push(performance.now() - t0);
      if (!reply.ok) throw new Error(reply.error);
      shownPy += reply.decisions.length;
      t0 = performance.now(); // what the worker computes after each step, off the trigger path
      const answer = rt.reactions();
      if (i >= 0) { reactions.push(performance.now() - t0); reactionBytes.push(answer.length); }
      const data = { ...job.data, url, page_views: job.data.page_views + i + job.warmup + 1 };
      t0 = performance.now();
      let matched = 0;
      for (const rule of job.rules) if (jsonLogic.apply(rule, data)) matched++;
      if (i >= 0) jl.push(performance.now() - t0);
      shownJl += matched ? 1 : 0;
    }
    // Means over blocks of consecutive events, one interval per block: a
    // worker's performance.now() is coarsened to 0.1 ms, as long as one
    // event takes. The same events and data as above, `blocks` times, but
    // without Runtime.reactions between steps (the loop above has it: the
    // worker computes it after each step, and it leaves the next step, and
    // json-logic-js after it, slower).
    const pyBlocks = [], jlBlocks = [];
    for (let b = 0; b < job.blocks; b++) {
      let t0 = performance.now();
      for (let i = 0; i < job.events; i++) {
        t += 1000;
        const url = job.urls[i %% job.urls.length];
        if (!JSON.parse(rt.step(JSON.stringify([{ type: "page_view", t, url, referrer: job.referrer }]), t)).ok) throw new Error("a step failed");
      }
      pyBlocks.push((performance.now() - t0) / job.events);
      t0 = performance.now();
      for (let i = 0; i < job.events; i++) {
        const data = { ...job.data, url: job.urls[i %% job.urls.length], page_views: job.data.page_views + i + 1 };
        for (const rule of job.rules) jsonLogic.apply(rule, data);
      }
      jlBlocks.push((performance.now() - t0) / job.events);
    }
    // The engine alone (no JSON across the boundary), timed in Python.
    pyodide.globals.set("rt", rt);
    const engineOnly = JSON.parse(pyodide.runPython(`
import json, time
_times = []
_t = ${t}
for _i in range(${job.events}):
    _t += 1000
    _ev = [{"type": "page_view", "t": _t, "url": "https://shop.example/category/%%d" %% (_i %% 7), "referrer": "${job.referrer}"}]
    _s = time.perf_counter()
    rt.engine.step(_ev, _t)
    _times.append((time.perf_counter() - _s) * 1000)
json.dumps(_times)
`));
    const replyBytes = rt.step(JSON.stringify([{ type: "tick", t: t + 1000 * (job.events + 1) }]), t + 1000 * (job.events + 1)).length;
    self.postMessage({ ok: true, py, jl, shownPy, shownJl, engineOnly, replyBytes, reactions, reactionBytes, pyBlocks, jlBlocks });
  } catch (err) {
    self.postMessage({ ok: false, error: String((err && err.stack) || err) });
  }
};
"""

DECISION_PAGE = """<!doctype html><meta charset=utf-8><link rel=icon href="data:,"><title>decision</title><script>
window.runDecision = (job) => new Promise((resolve) => {
  const w = new Worker("./decision-worker.mjs", { type: "module" });
  w.onmessage = (e) => { w.terminate(); resolve(e.data); };
  w.onerror = (e) => { w.terminate(); resolve({ ok: false, error: e.message }); };
  w.postMessage(job);
});
</script>"""


def decision_messages(n: int = 1000) -> tuple[dict, list]:
    """n messages x 10 conditions in the authoring format, and the same rules
    for json-logic-js (same order, so both can stop at the same condition)."""
    messages, rules = [], []
    for i in range(n):
        conds = [
            ({"rule": "page_url", "op": "contains", "value": f"/products/{i}"}, {"in": [f"/products/{i}", {"var": "url"}]}),
            ({"rule": "time_on_page", "op": "less", "value": 600}, {"<": [{"var": "time_on_page"}, 600]}),
            ({"rule": "browser_language", "op": "equals", "value": ["de", "en"]}, {"in": [{"var": "language"}, ["de", "en"]]}),
            ({"rule": "page_views", "op": "greater", "value": i % 5}, {">": [{"var": "page_views"}, i % 5]}),
            ({"rule": "visits", "op": "less", "value": 50 + i % 3}, {"<": [{"var": "visits"}, 50 + i % 3]}),
            ({"rule": "platform", "op": "equals", "value": "desktop"}, {"==": [{"var": "platform"}, "desktop"]}),
            ({"rule": "referrer_url", "op": "contains", "value": "google"}, {"in": ["google", {"var": "referrer"}]}),
            ({"rule": "user_agent", "op": "contains", "value": "Chrome"}, {"in": ["Chrome", {"var": "user_agent"}]}),
            ({"rule": "time_this_visit", "op": "less", "value": 3600}, {"<": [{"var": "time_this_visit"}, 3600]}),
            ({"rule": "invitations_sent", "op": "less", "value": 100 + i % 7}, {"<": [{"var": "invitations_sent"}, 100 + i % 7]}),
        ]
        messages.append({"id": f"m{i}", "type": "proactive", "widget": "main", "content": {"text": f"Message {i}"},
                         "rules": [c for c, _ in conds]})
        rules.append({"and": [j for _, j in conds]})
    return {"site": "bench", "widgets": [{"id": "main"}], "messages": messages}, rules


def trigger_messages() -> dict:
    return {"site": "bench", "widgets": [{"id": "main"}], "messages": [
        {"id": "spa", "type": "proactive", "widget": "main", "content": {"text": "Welcome to this section"},
         "rules": [{"rule": "page_url", "op": "contains", "value": "/spa/"}]},
        {"id": "exit", "type": "proactive", "widget": "main", "content": {"text": "Before you go"},
         "rules": [{"rule": "page_url", "op": "contains", "value": "/exit/"},
                   {"rule": "time_before_exit_intent", "op": "greater", "value": 0}]},
    ]}


class Bench:
    def __init__(self, tmp: Path, args):
        self.tmp = tmp
        self.args = args
        build = runpy.run_path(str(ROOT / "build" / "build.py"))
        self.key = signing.generate_private_key()
        self.public_key = signing.public_key_spec(self.key)
        self.bundles = tmp / "bundles"
        self.bundles.mkdir()
        self.pages = tmp / "site"
        self.pages.mkdir()
        (self.pages / "hero.png").write_bytes(_png(960, 400))
        self.site = _Server(create_site_app(self.pages, ""), "localhost")
        self.site_origin = f"http://localhost:{self.site.port}"
        self.builds, self.servers, self.counters, self.origins = {}, {}, {}, {}
        for variant, options in (("plain", {"plain": True}), ("pyc", {"snapshot": "off"}), ("snapshot", {})):
            out = tmp / f"widget-{variant}"
            print(f"building {variant} ...", flush=True)
            self.builds[variant] = (out, build["build"](out, **options))
            counter = ByteCounter(create_widget_app(out, self.bundles, allowed_origins=[self.site_origin],
                                                   db_path=tmp / f"endpoint-{variant}.db"))
            self.counters[variant] = counter
            self.servers[variant] = _Server(counter, "127.0.0.1")
            self.origins[variant] = f"http://127.0.0.1:{self.servers[variant].port}"
        for alias in ("main",):
            self.builds[alias], self.counters[alias], self.origins[alias] = (
                self.builds["snapshot"], self.counters["snapshot"], self.origins["snapshot"])
        self._sign(simple_page_messages(), "page")
        self._sign(trigger_messages(), "trigger")
        self.decision_doc, self.decision_rules = decision_messages(1000)
        self._sign(self.decision_doc, "decision")

    def _sign(self, doc: dict, name: str) -> None:
        payload = publishing.build_payload(doc, version=1)
        (self.bundles / f"{name}.json").write_bytes(signing.sign_payload(payload, [self.key]))

    def tag(self, variant: str, bundle: str = "page", **attrs) -> str:
        origin = self.origins[variant]
        # The engine's own start-up and triggers: started at the load event on
        # every page, as before the just-in-time engine (bench/lighthouse.py
        # measures that one).
        attrs.setdefault("data_boot", "now")
        if variant == "main":
            attrs["data_mode"] = "main"
        return script_tag(origin, f"{origin}/bundles/{bundle}.json", self.public_key, **attrs)

    def page(self, name: str, tag: str, extra: str = "") -> str:
        html = (f"<!doctype html><html lang=en><head><meta charset=utf-8><link rel=icon href=\"data:,\"><title>{name}</title>"
                f"{INSTRUMENT}{tag}{extra}</head><body>{HOST_BODY.format(text=LOREM)}</body></html>")
        (self.pages / f"{name}.html").write_text(html)
        return f"{self.site_origin}/{name}.html"

    def stop(self):
        for s in self.servers.values():
            s.stop()
        self.site.stop()


def simple_page_messages() -> dict:
    return {"site": "bench", "widgets": [{"id": "main"}], "messages": [
        {"id": "hello", "type": "proactive", "widget": "main", "content": {"text": "Hello"},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 30}]}]}


# -- measurements -----------------------------------------------------------

def _launch(p, profile: Path):
    return p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                                headless=True, viewport={"width": 1280, "height": 800})


def _load(context, url: str, widget: bool, settle_ms: int = 1000) -> dict:
    page = context.new_page()
    page.goto(url, wait_until="load")
    if widget:
        page.wait_for_function("() => window.__bench.readyAt !== null || (window.proactive && window.proactive('status') && window.proactive('status').failed)",
                               timeout=120_000, polling=50)
    page.wait_for_timeout(settle_ms)
    data = page.evaluate("() => ({ ...window.__bench, status: window.proactive && window.proactive.__target ? window.proactive('status') : null })")
    page.close()
    if widget and data["readyAt"] is None:
        raise RuntimeError(f"widget failed: {data.get('status')}")
    return {
        "ready_ms": data["readyAt"],
        "longtask_ms": sum(d for _, d in data["longtasks"]),
        "longtask_max_ms": max((d for _, d in data["longtasks"]), default=0),
        "lcp_ms": data["lcp"],
        "heap_bytes": ((data.get("status") or {}).get("timings") or {}).get("heap_bytes"),
        "snapshot": ((data.get("status") or {}).get("timings") or {}).get("snapshot"),
        "timings": ((data.get("status") or {}).get("timings") or {}),
        "phases": phases(data["readyAt"], ((data.get("status") or {}).get("timings") or {})),
    }


# Navigation to ready, phase by phase (the worker's clock differs from the
# page's: its phases are durations; what is left of the page's interval
# after them is the ready message's trip back and the page's handling).
PHASES = ("before the runtime starts (loader, shell, worker boot)", "pyodide.mjs import", "wasm: fetch + compile + Python start",
          "snapshot restore", "runtime archive unpack", "runtime imports / restore check", "snapshot made (first start)",
          "adapter.Runtime", "bundle wait (fetch + signature)",
          "first step", "ready message to the page")


def phases(ready_at, timings: dict) -> dict | None:
    init_at = timings.get("init_at")
    if ready_at is None or init_at is None or "ready" not in timings:
        return None
    sp = timings.get("start_phases") or {}
    # timings.runtime - timings.pyodide spans unpack, imports and the
    # snapshot too (the laps after loadPyodide): adapter.Runtime is the rest.
    # (After a restore, the worker's `pyodide` mark comes after those laps.)
    after_load = [sp.get(k) for k in ("unpack", "imports", "snapshot") if sp.get(k) is not None and "load" in sp]
    worker = [sp.get("import"), sp.get("load"), sp.get("restore"), sp.get("unpack"), sp.get("imports", sp.get("check")),
              sp.get("snapshot"), timings["runtime"] - timings["pyodide"] - sum(after_load),
              timings.get("bundle_wait"), timings.get("first_step")]
    values = [init_at, *worker, ready_at - init_at - timings["ready"]]
    return {name: v for name, v in zip(PHASES, values) if v is not None}


def _wait_snapshot_kept(context, origin_url: str, timeout: float = 30) -> bool:
    page = context.new_page()
    page.goto(origin_url)
    deadline = time.time() + timeout
    kept = False
    while time.time() < deadline and not kept:
        kept = page.evaluate("""() => new Promise((resolve) => {
            const open = indexedDB.open("proactive-snapshot", 1);
            open.onupgradeneeded = () => open.result.createObjectStore("snapshots");
            open.onerror = () => resolve(false);
            open.onsuccess = () => { const db = open.result;
              const req = db.transaction("snapshots").objectStore("snapshots").count("current");
              req.onsuccess = () => { db.close(); resolve(req.result === 1); }; req.onerror = () => { db.close(); resolve(false); }; };
          })""")
        if not kept:
            time.sleep(0.2)
    page.close()
    return kept


def measure_loads(bench: Bench, p, variants: list, runs: int) -> dict:
    """cold + warm loads of the host page with each widget variant (None: no
    widget), interleaved run by run so that the machine's load drifts the same
    way for every variant."""
    out = {}
    for variant in variants:
        name = f"host-{variant or 'none'}"
        url = bench.page(name, bench.tag(variant) if variant else "")
        out[variant or "none"] = {"url": url, "cold": [], "warm": [], "bytes_first": [], "bytes_repeat": []}
    for run in range(runs):
        for variant in variants:
            row = out[variant or "none"]
            counter = bench.counters.get(variant) if variant else None
            profile = Path(tempfile.mkdtemp(prefix="profile-", dir=bench.tmp))
            context = _launch(p, profile)
            try:
                if counter:
                    counter.reset()
                row["cold"].append(_load(context, row["url"], variant is not None))
                if counter:
                    row["bytes_first"].append(counter.reset())
                if variant == "snapshot":
                    _wait_snapshot_kept(context, f"{bench.site_origin}/hero.png")
                row["warm"].append(_load(context, row["url"], variant is not None))
                if counter:
                    row["bytes_repeat"].append(counter.reset())
            finally:
                context.close()
                shutil.rmtree(profile, ignore_errors=True)
            cold, warm = row["cold"][-1], row["warm"][-1]
            print(f"  run {run + 1} {variant or 'no widget':9} cold {cold['ready_ms'] or cold['lcp_ms']:.0f} ms, "
                  f"warm {warm['ready_ms'] or warm['lcp_ms']:.0f} ms ({cold['snapshot']} / {warm['snapshot']}), "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for row in out.values():
        del row["url"]
    return out


def measure_triggers(bench: Bench, p, n: int) -> dict:
    url = bench.page("triggers", bench.tag("snapshot", bundle="trigger", data_exit_delay="0"), f"<script>{TRIGGER_JS}</script>")
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=bench.tmp))
    context = _launch(p, profile)
    out = {}
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("() => window.__bench.readyAt !== null", timeout=120_000, polling=50)
        page.evaluate("() => __triggerSpa(0)")  # mounts the widget
        kinds = (("spa_pushstate", "__triggerSpa"), ("exit_intent", "__triggerExit"), ("floor", "__triggerFloor"))
        for kind, _ in kinds:
            out[kind] = {"dom": [], "painted": [], "next_frame": []}
        for i in range(1, n + 1):   # interleaved: the three see the same machine
            for kind, fn in kinds:
                sample = page.evaluate(f"(i) => {fn}(i)", i + (0 if kind == "spa_pushstate" else 10_000))
                for key in ("dom", "painted", "next_frame"):
                    out[kind][key].append(sample[key])
                page.wait_for_timeout(20)
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)
    return out


def measure_decision(bench: Bench, p, events: int) -> dict:
    out_dir, manifest = bench.builds["snapshot"]
    logic = (ROOT / "node_modules" / "json-logic-js" / "logic.js").read_text()
    (out_dir / "jsonlogic.mjs").write_text(  # the UMD file as a module (its CommonJS branch)
        "const module = { exports: {} }; const exports = module.exports;\n" + logic + "\nexport default module.exports;\n")
    (out_dir / "decision-worker.mjs").write_text(DECISION_WORKER % {"host": manifest["served"]["host.mjs"], "runtime": manifest["runtime_archive"]})
    (out_dir / "decision.html").write_text(DECISION_PAGE)
    origin = bench.origins["snapshot"]
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=bench.tmp))
    context = _launch(p, profile)
    try:
        page = context.new_page()
        page.goto(f"{origin}/decision.html")
        ua = page.evaluate("navigator.userAgent")
        job = {
            "key": bench.public_key, "bundle": f"{origin}/bundles/decision.json", "events": events, "warmup": 20, "blocks": 5,
            "now": int(time.time() * 1000), "referrer": "https://www.google.com/search?q=tents",
            "context": {"language": "en-US", "languages": ["en-US"], "user_agent": ua, "platform": "desktop"},
            "urls": [f"https://shop.example/category/{i}" for i in range(7)],
            "data": {"time_on_page": 1, "language": "en", "page_views": 1, "visits": 1, "platform": "desktop",
                     "referrer": "https://www.google.com/search?q=tents", "user_agent": ua, "time_this_visit": 10,
                     "invitations_sent": 0},
            "rules": bench.decision_rules,
        }
        result = page.evaluate("(job) => window.runDecision(job)", job)
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)
    if not result.get("ok"):
        raise RuntimeError(result.get("error"))
    return result


# -- report -----------------------------------------------------------------

def stats(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    ordered = sorted(values)
    def pct(q):
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
    return {"median": statistics.median(values), "min": ordered[0], "max": ordered[-1],
            "p50": pct(0.5), "p95": pct(0.95), "n": len(values)}


def fmt(s: dict | None, unit: str = "ms", scale: float = 1.0, digits: int = 0) -> str:
    if not s:
        return "-"
    return f"{s['median'] * scale:.{digits}f} {unit} ({s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f})"


def bytes_total(runs: list[dict], prefix: str = "") -> list[int]:
    return [sum(v["bytes"] for k, v in r.items() if k.startswith(prefix)) for r in runs]


def per_file(runs: list[dict]) -> dict:
    files = sorted({k for r in runs for k in r})
    return {f: {"bytes_median": statistics.median([r.get(f, {}).get("bytes", 0) for r in runs]),
                "status": sorted({s for r in runs for s in r.get(f, {}).get("status", [])}),
                "encoding": next((r[f]["encoding"] for r in runs if f in r and r[f]["encoding"]), None)} for f in files}


def machine() -> dict:
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = os.getloadavg()
    return {"cpu": cpu, "cores": os.cpu_count(), "chromium": chromium, "python": platform.python_version(),
            "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
            "os": platform.platform(), "loadavg_at_start": [round(x, 2) for x in load]}


# Static imports and re-exports between served modules: `import … from "./x"`,
# `import "./x"`, `export … from "./x"` (not `import("./x")`, loaded on demand).
_STATIC_IMPORT = re.compile(r"""(?:^|[;}\n])\s*(?:import|export)\b\s*[^;()]*?["']\./([^"']+\.m?js)["']""")  # minified too


def first_visit_modules(out: Path, manifest: dict) -> list[str]:
    """What every first visit downloads of the browser side: loader.js, the
    shell and the worker with everything they import statically (the
    endpoint and the debug view load on demand, off the trigger path)."""
    served = manifest["served"]
    seen, todo = ["loader.js"], [served[n] for n in ("shell.mjs", "worker.mjs") if n in served]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        todo += _STATIC_IMPORT.findall((out / name).read_text())
    if "host.mjs" in served and served["host.mjs"] not in seen:  # older layouts: the shell imported it by URL
        seen.append(served["host.mjs"])
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--triggers", type=int, default=60)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2 runs, 10 triggers, 30 events (a smoke test)")
    parser.add_argument("--only", nargs="*", default=None, help="subset: loads triggers decision")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.triggers, args.events = 2, 10, 30
    only = set(args.only or ["loads", "triggers", "decision"])
    from playwright.sync_api import sync_playwright

    started = datetime.now(timezone.utc)
    info = machine()
    tmp = Path(tempfile.mkdtemp(prefix="proactive-bench-"))
    bench = Bench(tmp, args)
    results = {"started": started.isoformat(), "machine": info, "command": " ".join(["bench/run.py", *(argv or sys.argv[1:])]),
               "runs": args.runs, "loads": {}, "builds": {}}
    for variant in ("plain", "pyc", "snapshot"):
        out, manifest = bench.builds[variant]
        sizes = manifest.get("sizes", {})
        first = first_visit_modules(out, manifest)
        first += [manifest["stdlib_zip"], manifest["runtime_archive"]]
        # (not pyodide-lock.json: the worker hands Pyodide an empty lock file,
        # so no build fetches it: e2e/test_startup.py)
        first += [f"{manifest['pyodide_dir']}/{n}" for n in ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm")]
        results["builds"][variant] = {
            "brotli_first_visit_bytes": sum(sizes.get(n, {}).get("br", sizes.get(n, {}).get("raw", 0)) for n in first),
            "raw_first_visit_bytes": sum(sizes.get(n, {}).get("raw", 0) for n in first),
            "stdlib_zip": {"raw": sizes.get(manifest["stdlib_zip"], {}).get("raw"), "br": sizes.get(manifest["stdlib_zip"], {}).get("br")},
        }
    try:
        with sync_playwright() as p:
            if "loads" in only:
                print("page loads (ready = navigation start -> the widget's ready event)", flush=True)
                results["loads"] = measure_loads(bench, p, [None, "plain", "pyc", "snapshot", "main"], args.runs)
            if "triggers" in only:
                print("triggers", flush=True)
                results["triggers"] = measure_triggers(bench, p, args.triggers)
            if "decision" in only:
                print("decision", flush=True)
                results["decision"] = measure_decision(bench, p, args.events)
    finally:
        bench.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["accept_encoding_seen"] = sorted(bench.counters["snapshot"].accept_encoding)
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    summary = summarise(results)
    results["summary"] = summary
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=1))
    print_table(results, summary)
    path.with_suffix(".md").write_text(markdown(results, summary))
    print(f"\nwrote {path.relative_to(ROOT)} and {path.with_suffix('.md').relative_to(ROOT)}")
    return 0


def summarise(results: dict) -> dict:
    s: dict = {"loads": {}}
    loads = results.get("loads", {})
    base_long = {phase: stats([r["longtask_ms"] for r in loads["none"][phase]]) for phase in ("cold", "warm")} if "none" in loads else {}
    for variant, data in loads.items():
        row = {}
        for phase in ("cold", "warm"):
            row[f"ready_{phase}"] = stats([r["ready_ms"] for r in data[phase]])
            row[f"longtask_{phase}"] = stats([r["longtask_ms"] for r in data[phase]])
            row[f"lcp_{phase}"] = stats([r["lcp_ms"] for r in data[phase]])
            if base_long.get(phase):
                row[f"longtask_widget_{phase}"] = stats([r["longtask_ms"] - base_long[phase]["median"] for r in data[phase]])
        row["heap"] = stats([r["heap_bytes"] for r in data["cold"]])
        for phase in ("cold", "warm"):
            found = [r.get("phases") for r in data[phase] if r.get("phases")]
            row[f"phases_{phase}"] = {name: stats([f[name] for f in found if name in f]) for name in PHASES
                                      if any(name in f for f in found)}
        row["snapshot_states"] = sorted({str(r["snapshot"]) for r in data["cold"] + data["warm"]})
        if data["bytes_first"]:
            row["bytes_first"] = stats(bytes_total(data["bytes_first"]))
            row["bytes_repeat"] = stats(bytes_total(data["bytes_repeat"]))
            row["bytes_first_static"] = stats([sum(v["bytes"] for k, v in r.items() if not k.startswith("/api")) for r in data["bytes_first"]])
            row["bytes_repeat_static"] = stats([sum(v["bytes"] for k, v in r.items() if not k.startswith("/api")) for r in data["bytes_repeat"]])
            row["files_first"] = per_file(data["bytes_first"])
            row["files_repeat"] = per_file(data["bytes_repeat"])
        s["loads"][variant] = row
    if "triggers" in results:
        s["triggers"] = {k: {part: stats(v) for part, v in parts.items() if part != "next_frame"} if isinstance(parts, dict) else {"painted": stats(parts)}
                         for k, parts in results["triggers"].items()}
        for k, parts in results["triggers"].items():
            if isinstance(parts, dict) and parts.get("next_frame"):
                s["triggers"][k]["next_frame_share"] = sum(parts["next_frame"]) / len(parts["next_frame"])
    if "decision" in results:
        d = results["decision"]
        s["decision"] = {"pyodide": stats(d["py"]), "jsonlogic": stats(d["jl"]), "shown_pyodide": d["shownPy"], "matched_jsonlogic": d["shownJl"],
                         "engine_only": stats(d.get("engineOnly") or []), "reply_bytes": d.get("replyBytes"),
                         "reactions": stats(d.get("reactions") or []), "reaction_bytes": stats(d.get("reactionBytes") or []),
                         "pyodide_block_mean": stats(d.get("pyBlocks") or []), "jsonlogic_block_mean": stats(d.get("jlBlocks") or [])}
    ratios = {}
    L = s["loads"]
    for a, b, label in (("plain", "pyc", "pyc vs plain"), ("plain", "snapshot", "snapshot vs plain"), ("pyc", "snapshot", "snapshot vs pyc"),
                        ("main", "snapshot", "worker vs main thread")):
        if a in L and b in L:
            ratios[label] = {phase: (L[b][f"ready_{phase}"]["median"] / L[a][f"ready_{phase}"]["median"])
                             for phase in ("cold", "warm") if L[a].get(f"ready_{phase}") and L[b].get(f"ready_{phase}")}
    if "main" in L and "snapshot" in L:
        ratios["long tasks: worker vs main thread (cold)"] = {
            "main_ms": L["main"]["longtask_cold"]["median"], "worker_ms": L["snapshot"]["longtask_cold"]["median"]}
    floor = ((s.get("triggers") or {}).get("floor") or {}).get("painted")
    if floor:
        for kind, parts in s["triggers"].items():
            if kind != "floor" and parts.get("painted"):
                ratios[f"trigger {kind} / floor (p95, painted)"] = parts["painted"]["p95"] / max(floor["p95"], 1e-6)
    if "decision" in s:
        ratios["decision: pyodide / json-logic-js (p50)"] = s["decision"]["pyodide"]["p50"] / max(s["decision"]["jsonlogic"]["p50"], 1e-6)
        if s["decision"]["pyodide_block_mean"] and s["decision"]["jsonlogic_block_mean"]:
            ratios["decision: pyodide / json-logic-js (mean per event over blocks, median of blocks)"] = (
                s["decision"]["pyodide_block_mean"]["median"] / max(s["decision"]["jsonlogic_block_mean"]["median"], 1e-6))
    s["ratios"] = ratios
    return s


def print_table(results: dict, s: dict) -> None:
    m = results["machine"]
    print(f"\nMachine: {m['cpu']} x{m['cores']}, {m['chromium']}, load average {m['loadavg_at_start']}")
    print(f"Runs: {results['runs']} per cell (median, range)\n")
    header = f"{'':10} {'ready cold':>22} {'ready warm':>22} {'long tasks cold':>20} {'long tasks warm':>20} {'LCP cold':>20} {'first visit':>18} {'repeat':>14}"
    print(header)
    for variant, row in s["loads"].items():
        print(f"{variant:10} {fmt(row['ready_cold']):>22} {fmt(row['ready_warm']):>22} {fmt(row['longtask_cold']):>20} "
              f"{fmt(row['longtask_warm']):>20} {fmt(row['lcp_cold']):>20} "
              f"{fmt(row.get('bytes_first_static'), 'MB', 1e-6, 2):>18} {fmt(row.get('bytes_repeat_static'), 'kB', 1e-3, 1):>14}")
    for variant, b in results["builds"].items():
        print(f"build {variant}: {b['brotli_first_visit_bytes'] / 1e6:.2f} MB brotli first visit (stdlib zip {b['stdlib_zip']})")
    if "triggers" in s:
        for kind, parts in s["triggers"].items():
            print(f"trigger {kind}: " + "; ".join(f"→ {part} p50 {st['p50']:.2f} ms, p95 {st['p95']:.2f} ms, max {st['max']:.2f} ms"
                                                  for part, st in parts.items() if isinstance(st, dict))
                  + f"; in the first frame after the event: {parts.get('next_frame_share', float('nan')):.0%} (n={parts['painted']['n']})")
    if "decision" in s:
        d = s["decision"]
        print(f"decision, 1,000 messages x 10 conditions, per event: Pyodide p50 {d['pyodide']['p50']:.2f} ms p95 {d['pyodide']['p95']:.2f} ms; "
              f"json-logic-js p50 {d['jsonlogic']['p50']:.2f} ms p95 {d['jsonlogic']['p95']:.2f} ms")
        if d.get("pyodide_block_mean"):
            print(f"  mean per event over blocks of {d['pyodide']['n']} events (median of {d['pyodide_block_mean']['n']} blocks): "
                  f"Pyodide {d['pyodide_block_mean']['median']:.3f} ms, json-logic-js {d['jsonlogic_block_mean']['median']:.3f} ms")
        if d.get("engine_only"):
            print(f"  the engine alone: p50 {d['engine_only']['p50']:.2f} ms p95 {d['engine_only']['p95']:.2f} ms; reply {d.get('reply_bytes')} chars")
        if d.get("reactions"):
            print(f"  reactions after a step (worker, off the trigger path): p50 {d['reactions']['p50']:.2f} ms p95 {d['reactions']['p95']:.2f} ms; "
                  f"{d['reaction_bytes']['median']:.0f} chars")
    for label, value in s["ratios"].items():
        print(f"ratio {label}: {json.dumps(value, default=lambda x: round(x, 3)) if not isinstance(value, float) else round(value, 3)}")
    print(f"Accept-Encoding seen by the widget origin: {results.get('accept_encoding_seen')}")


def markdown(results: dict, s: dict) -> str:
    """The docs/benchmarks.md tables for one run."""
    m = results["machine"]
    lines = [f"Machine: {m['cpu']} × {m['cores']} cores, {m['chromium']}, Node {m['node']}; "
             f"load average {m['loadavg_at_start'][0]} at the start{(', ' + str(m['loadavg_at_end'][0]) + ' at the end') if m.get('loadavg_at_end') else ''}. "
             f"{results['runs']} runs per cell: median (min–max).", "",
             "| build | ready cold | ready warm | long tasks cold | long tasks warm | host LCP cold | first visit (sent) | repeat visit (sent) | wasm heap |",
             "|---|---|---|---|---|---|---|---|---|"]
    def ms(st):
        return f"{st['median'] / 1000:.2f} s ({st['min'] / 1000:.2f}–{st['max'] / 1000:.2f})" if st else "–"
    def lt(st):
        return f"{st['median']:.0f} ms ({st['min']:.0f}–{st['max']:.0f})" if st else "–"
    names = {"none": "no widget", "plain": "plain (before)", "pyc": "pyc", "snapshot": "pyc + snapshot (default)", "main": "main thread (data-mode=main)"}
    for variant, row in s["loads"].items():
        first = row.get("bytes_first_static")
        repeat = row.get("bytes_repeat_static")
        first, repeat, heap = row.get("bytes_first_static"), row.get("bytes_repeat_static"), row.get("heap")
        first_txt = f"{first['median'] / 1e6:.2f} MB" if first else "–"
        repeat_txt = f"{repeat['median'] / 1e3:.1f} kB" if repeat else "–"
        heap_txt = f"{heap['median'] / 2**20:.0f} MiB" if heap else "–"
        lines.append(f"| {names.get(variant, variant)} | {ms(row['ready_cold'])} | {ms(row['ready_warm'])} | {lt(row['longtask_cold'])} | "
                     f"{lt(row['longtask_warm'])} | {lt(row['lcp_cold'])} | {first_txt} | {repeat_txt} | {heap_txt} |")
    lines.append("")
    for variant, b in results["builds"].items():
        lines.append(f"- build `{variant}`: {b['brotli_first_visit_bytes'] / 1e6:.2f} MB brotli on a first visit "
                     f"({b['raw_first_visit_bytes'] / 1e6:.2f} MB uncompressed); stdlib zip {b['stdlib_zip']['raw'] / 1e6:.2f} MB, "
                     f"{b['stdlib_zip']['br'] / 1e6:.2f} MB brotli")
    if "triggers" in s:
        lines.append("")
        lines.append("| trigger | → card in the DOM p50 / p95 / max | → next frame (painted) p50 / p95 / max | painted in the first frame after the event | n |")
        lines.append("|---|---|---|---|---|")
        for kind, parts in s["triggers"].items():
            cells = [f"{st['p50']:.2f} / {st['p95']:.2f} / {st['max']:.2f} ms" if st else "–"
                     for st in (parts.get("dom"), parts.get("painted"))]
            share = parts.get("next_frame_share")
            lines.append(f"| {kind} | {cells[0]} | {cells[1]} | {'–' if share is None else f'{share:.0%}'} | {parts['painted']['n']} |")
    if "decision" in s:
        d = s["decision"]
        lines.append(f"- decision per event, 1,000 messages × 10 conditions: runtime under Pyodide p50 {d['pyodide']['p50']:.2f} ms, "
                     f"p95 {d['pyodide']['p95']:.2f} ms; json-logic-js p50 {d['jsonlogic']['p50']:.2f} ms, p95 {d['jsonlogic']['p95']:.2f} ms "
                     f"(n = {d['pyodide']['n']}); the engine alone (`Engine.step`, no JSON) p50 "
                     f"{(d.get('engine_only') or {}).get('p50', float('nan')):.2f} ms, p95 {(d.get('engine_only') or {}).get('p95', float('nan')):.2f} ms; "
                     f"a reply is {d.get('reply_bytes')} characters of JSON")
        if d.get("pyodide_block_mean"):
            lines.append(f"- decision, mean per event over blocks of consecutive events (one timer reading per block; "
                         f"median of {d['pyodide_block_mean']['n']} blocks): runtime under Pyodide {d['pyodide_block_mean']['median']:.3f} ms, "
                         f"json-logic-js {d['jsonlogic_block_mean']['median']:.3f} ms")
        if d.get("reactions"):
            lines.append(f"- the answer for the page's next signal (`Runtime.reactions`, computed in the worker after each step): "
                         f"p50 {d['reactions']['p50']:.2f} ms, p95 {d['reactions']['p95']:.2f} ms, {d['reaction_bytes']['median']:.0f} characters")
    for variant, row in s["loads"].items():
        cold, warm = row.get("phases_cold") or {}, row.get("phases_warm") or {}
        if cold or warm:
            lines += ["", f"Navigation → ready, phase by phase, `{variant}` (median ms):", "", "| phase | cold | warm |", "|---|---|---|"]
            for name in PHASES:
                c, w = cold.get(name), warm.get(name)
                if c or w:
                    lines.append(f"| {name} | {c['median']:.0f} | {w['median']:.0f} |" if c and w else
                                 f"| {name} | {c['median']:.0f} | – |" if c else f"| {name} | – | {w['median']:.0f} |")
    lines.append("")
    lines.append("| ratio (one run) | cold | warm |")
    lines.append("|---|---|---|")
    for label, value in s["ratios"].items():
        if isinstance(value, dict) and "cold" in value:
            lines.append(f"| ready: {label} | {value['cold']:.2f} | {value.get('warm', float('nan')):.2f} |")
    for label, value in s["ratios"].items():
        if isinstance(value, float):
            lines.append(f"| {label} | {value:.2f} | |")
    return "\n".join(lines) + "\n"


def report(path: Path) -> int:
    results = json.loads(path.read_text())
    summary = summarise(results)
    print_table(results, summary)
    print()
    print(markdown(results, summary))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        sys.exit(report(Path(sys.argv[2])))
    sys.exit(main())

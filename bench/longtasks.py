"""Main-thread long tasks caused by the widget, worker mode vs main-thread mode.

    .venv/bin/python bench/longtasks.py [--runs 5] [--messages 200] [--steps 40]

Real Chromium (/usr/bin/chromium, the e2e harness's flags), real HTTP on two
origins, the widget built from the sources (build/build.py, default build).
Three ways of loading the same host page:

  none     the page without the widget (the page's own long tasks: the baseline)
  worker   the default: the runtime in a module worker
  main     data-mode="main": Pyodide and the engine on the page's main thread

Each run is a new browser context (a new visitor: cold HTTP cache, no stored
record). A PerformanceObserver({type: "longtask", buffered: true}) installed
before any page script records every task over 50 ms on the page's main
thread, in two windows:

  start-up  navigation start -> ready + 1 s (Pyodide, runtime, bundle, replay)
  steady    --steps rounds of: an SPA page view (pushState), the pointer
            leaving through the top, a wake-up the engine asked for; with a
            bundle of --messages messages (a decision per step)

For each window: count, total duration, the longest task, and the total
blocking time (TBT: the sum over tasks of their time beyond 50 ms). Medians and
ranges over --runs. Prints a Markdown table (docs/benchmarks.md) and the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "e2e")]

from conftest import CHROMIUM, CHROMIUM_FLAGS, _Server, build_widget  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from proactive import publishing, signing  # noqa: E402
from server_stub.app import create_site_app, create_widget_app, script_tag  # noqa: E402

OBSERVER = """
window.__lt = { tasks: [] };
new PerformanceObserver((list) => { for (const e of list.getEntries()) __lt.tasks.push([e.startTime, e.duration]); })
  .observe({ type: "longtask", buffered: true });
"""

MODES = ("none", "worker", "main")


def messages(n: int) -> dict:
    """n messages of a few conditions each, so every step has real work."""
    out = []
    for i in range(n):
        out.append({
            "id": f"m{i}", "type": "proactive", "widget": "main", "content": {"text": f"message {i}"},
            "rules": [
                {"rule": "page_url", "op": "contains", "value": f"/never/{i}"},
                {"rule": "time_on_page", "op": "greater", "value": 5 + i % 50},
                {"any": [{"rule": "page_views", "op": "greater", "value": i % 7},
                         {"rule": "time_before_exit_intent", "op": "greater", "value": 1 + i % 5}]},
            ],
        })
    return {"site": "bench", "widgets": [{"id": "main"}], "messages": out}


def blocking(tasks) -> dict:
    durations = [d for _, d in tasks]
    return {"count": len(durations), "total_ms": round(sum(durations), 1),
            "max_ms": round(max(durations, default=0.0), 1),
            "tbt_ms": round(sum(max(0.0, d - 50) for d in durations), 1)}


def wait_ready(page, timeout=60.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = page.evaluate("() => window.proactive && window.proactive('status') || null")
        if status and (status.get("ready") or status.get("failed")):
            if status.get("failed"):
                raise RuntimeError(f"widget failed: {status['failed']}")
            return status
        time.sleep(0.02)
    raise RuntimeError("widget not ready")


def one_run(browser, url: str, mode: str, steps: int) -> dict:
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(OBSERVER)
    page.goto(url)
    if mode == "none":
        page.wait_for_load_state("load")
        time.sleep(3.0)       # about as long as the widget takes to start
        ready_at = None
    else:
        ready_at = wait_ready(page)["readyAt"]
        time.sleep(1.0)
    startup = page.evaluate("__lt.tasks.slice()")
    mark = page.evaluate("performance.now()")
    for i in range(steps):
        page.evaluate("(i) => history.pushState({}, '', '/steady/' + i)", i)
        page.mouse.move(400, 300)
        page.mouse.move(400, -5)
        if mode != "none":
            page.evaluate("() => proactive('sync')")
        time.sleep(0.05)
    time.sleep(0.5)
    steady = [t for t in page.evaluate("__lt.tasks.slice()") if t[0] >= mark]
    context.close()
    return {"ready_ms": ready_at, "startup": blocking(startup), "steady": blocking(steady)}


def summarise(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="longtasks-"))
    static, bundles, pages = tmp / "widget", tmp / "bundles", tmp / "site"
    bundles.mkdir()
    pages.mkdir()
    build_widget(static)
    key = signing.generate_private_key()
    payload = publishing.build_payload(messages(args.messages), version=1)
    (bundles / "bench.json").write_bytes(signing.sign_payload(payload, [key]))
    widget = _Server(create_widget_app(static, bundles), "127.0.0.1")
    site = _Server(create_site_app(pages, ""), "localhost")
    w = f"http://127.0.0.1:{widget.port}"
    body = "<h1>A host page</h1>" + "<p>Some text of the host page.</p>" * 50
    for mode in MODES:
        tag = "" if mode == "none" else script_tag(
            w, f"{w}/bundles/bench.json", signing.public_key_spec(key), **({"data_mode": "main"} if mode == "main" else {}))
        (pages / f"{mode}.html").write_text(
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{mode}</title>{tag}</head><body>{body}</body></html>")

    results = {mode: [] for mode in MODES}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for _ in range(args.runs):
            for mode in MODES:     # interleaved, so machine load hits every mode alike
                results[mode].append(one_run(browser, f"http://localhost:{site.port}/{mode}.html", mode, args.steps))
        browser.close()
    widget.stop()
    site.stop()

    summary = {}
    for mode, runs in results.items():
        summary[mode] = {"ready_ms": summarise([r["ready_ms"] for r in runs])}
        for window in ("startup", "steady"):
            summary[mode][window] = {k: summarise([r[window][k] for r in runs]) for k in ("count", "total_ms", "max_ms", "tbt_ms")}

    def cell(s, unit=" ms"):
        if s is None:
            return "–"
        fmt = (lambda v: f"{v:.0f}") if unit else (lambda v: f"{v:g}")
        return f"{fmt(s['median'])}{unit} ({fmt(s['min'])}–{fmt(s['max'])})"

    load = os.getloadavg()[0]
    print(f"{args.runs} runs per mode, {args.messages} messages, {args.steps} steady steps; load average {load:.1f}\n")
    print("| mode | window | long tasks | total | longest | TBT |")
    print("|---|---|---:|---:|---:|---:|")
    for mode in MODES:
        for window in ("startup", "steady"):
            s = summary[mode][window]
            print(f"| {mode} | {window} | {cell(s['count'], '')} | {cell(s['total_ms'])} | {cell(s['max_ms'])} | {cell(s['tbt_ms'])} |")
    print()
    for mode in ("worker", "main"):
        print(f"ready ({mode}): {cell(summary[mode]['ready_ms'])}")
    print()
    print(json.dumps({"args": vars(args), "load_average": load, "summary": summary, "runs": results}, indent=1))


if __name__ == "__main__":
    main()

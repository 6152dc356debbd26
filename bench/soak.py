"""Soak: a long session on one page, in simulated hours (issue 22, item 6).

    .venv/bin/python bench/soak.py [--hours 8] [--route-every 30] [--reply-every 300]

Real Chromium (the e2e harness's flags), real HTTP on two origins, Playwright's
clock: one page of a single-page app stays open for --hours simulated hours;
every --route-every simulated seconds the app changes route (pushState, so a
new page view and an auto message per page), every --reply-every seconds an
agent answers the visitor's conversation over the real endpoint (the answer
arrives over the live stream and is rendered in the chat panel).

Each simulated hour, after a forced garbage collection (DevTools protocol):
the page's JS heap in use, its DOM node and listener counts, the widget's
shadow DOM size, the length of what `proactive('status')` keeps, and the
renderer process's resident and private memory (Linux /proc: the page, its
worker and Pyodide's WebAssembly memory together, the issue's measure). Prints a
table and the growth per hour (least squares over hours 1..N, hour 0 being
warm-up), and writes bench/results/soak-<UTC time>.json. Bounded: a fixed
number of steps on loopback only; about a minute of real time for 8 hours.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "e2e")]

from playwright.sync_api import sync_playwright  # noqa: E402

from conftest import CHROMIUM, CHROMIUM_FLAGS, T0, Site, simple_messages, wait_ready  # noqa: E402
from shell_helpers import wait_until  # noqa: E402
from test_endpoint import agent_api  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MESSAGES = simple_messages(
    {"id": "per-page", "rules": [{"rule": "time_on_page", "op": "greater", "value": 5}]},
    {"id": "pricing", "priority": 5, "rules": [{"rule": "page_url", "op": "contains", "value": "pricing"},
                                               {"rule": "time_on_page", "op": "greater", "value": 2}]},
)


def renderer_pid(browser) -> int:
    """The renderer process that hosts the page and its worker (Pyodide's
    memory lives there): of the browser's renderers, the one holding the most
    private memory once the widget is ready."""
    info = browser.new_browser_cdp_session().send("SystemInfo.getProcessInfo")["processInfo"]
    return max((p["id"] for p in info if p["type"] == "renderer"), key=lambda pid: process_memory(pid)["private"])


def process_memory(pid: int) -> dict:
    """A process's resident and private (unshared) memory in bytes, from
    /proc/PID/smaps_rollup (Linux): private is what Chrome's task manager
    calls its memory footprint, and what a leak in the page or its worker —
    JS heaps, the DOM, Pyodide's WebAssembly memory — adds to."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) * 1024
    return {"rss": fields["Rss"], "private": fields["Private_Clean"] + fields["Private_Dirty"]}


def measure(page, cdp, renderer: int) -> dict:
    cdp.send("HeapProfiler.collectGarbage")
    heap = cdp.send("Runtime.getHeapUsage")
    counters = cdp.send("Memory.getDOMCounters")
    page_state = page.evaluate("""() => {
        const el = document.querySelector('proactive-widget');
        const s = proactive('status');
        return { shadow_nodes: el && el.shadowRoot ? el.shadowRoot.querySelectorAll('*').length : 0,
                 status_bytes: JSON.stringify(s).length, shown_kept: s.shown.length,
                 shown_total: s.shownCount ?? s.shown.length };
    }""")
    memory = process_memory(renderer)
    return {"heap_used": heap["usedSize"], "dom_nodes": counters["nodes"],
            "listeners": counters["jsEventListeners"], "renderer_rss": memory["rss"],
            "renderer_private": memory["private"], **page_state}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares growth per unit of x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def soak(hours: int, route_every: int, reply_every: int) -> dict:
    site = Site(Path(tempfile.mkdtemp(prefix="soak-")))
    try:
        bundle = site.publish(MESSAGES, "soak")
        url = site.page(tag=site.tag(bundle=bundle), name="soak")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.clock.install(time=T0)
            page.clock.pause_at(T0 + 1)
            page.goto(url)
            wait_ready(page)
            cdp = page.context.new_cdp_session(page)
            renderer = renderer_pid(browser)
            page.evaluate("() => { window.__answers = 0; proactive('on', 'message', (m) => { if (m.sender === 'agent') __answers++; }); }")
            manifest = json.loads((site.static / "manifest.json").read_text())
            module = f"{site.widget_origin}/{(manifest.get('served') or {}).get('endpoint.mjs', 'endpoint.mjs')}"
            page.evaluate("async (u) => (await import(u)).sendMessage('Hello, anyone there?')", module)
            conversation = None
            deadline = time.time() + 15
            while conversation is None and time.time() < deadline:
                found = agent_api(site, "GET", "/conversations")["conversations"]
                conversation = found[0]["id"] if found else None
                time.sleep(0.05)
            if conversation is None:
                raise RuntimeError("the visitor's conversation did not reach the endpoint")
            samples = [dict(hour=0, **measure(page, cdp, renderer))]
            routes = replies = 0
            t_real = time.time()
            per_hour = 3600 // route_every
            for hour in range(1, hours + 1):
                for i in range(per_hour):
                    routes += 1
                    path = "/pricing" if routes % 4 == 0 else "/docs"
                    page.evaluate("(n) => history.pushState({}, '', location.pathname + '?' + n[0] + '=' + n[1])",
                                  [path.strip("/"), routes])
                    page.clock.run_for(route_every * 1000)
                    if (routes * route_every) % reply_every == 0:
                        replies += 1
                        agent_api(site, "POST", f"/conversations/{conversation}/messages",
                                  {"text": f"Answer {replies}", "author": "Soak"})
                        wait_until(page, "(n) => window.__answers >= n", replies)
                    if i % 10 == 9:
                        page.evaluate("() => proactive('sync')")
                page.evaluate("() => proactive('sync')")
                samples.append(dict(hour=hour, **measure(page, cdp, renderer)))
                print(f"  hour {hour}: {samples[-1]}", flush=True)
            real = time.time() - t_real
            browser.close()
    finally:
        site.stop()
    grown = [(s["hour"], s["heap_used"]) for s in samples if s["hour"] >= 1]
    return {
        "hours": hours, "route_changes": routes, "agent_replies": replies, "real_seconds": round(real, 1),
        "heap_growth_bytes_per_hour": round(slope(grown)),
        # Once the caps are reached (the transcript's 200 entries take a while): the second half only.
        "heap_growth_bytes_per_hour_second_half": round(slope(grown[len(grown) // 2:])),
        "renderer_private_growth_bytes_per_hour": round(slope([(s["hour"], s["renderer_private"]) for s in samples
                                                               if s["hour"] >= 1])),
        "renderer_private_growth_bytes_per_hour_second_half": round(slope(
            [(s["hour"], s["renderer_private"]) for s in samples if s["hour"] >= 1][len(grown) // 2:])),
        "dom_nodes_growth_per_hour": round(slope([(s["hour"], s["dom_nodes"]) for s in samples if s["hour"] >= 1]), 1),
        "samples": samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=int, default=8)
    ap.add_argument("--route-every", type=int, default=30, help="simulated seconds between route changes")
    ap.add_argument("--reply-every", type=int, default=300, help="simulated seconds between agent replies")
    args = ap.parse_args()
    result = soak(args.hours, args.route_every, args.reply_every)
    print(f"\n{result['hours']} simulated hours, {result['route_changes']} route changes, "
          f"{result['agent_replies']} agent replies, {result['real_seconds']} s real time")
    print(f"{'hour':>4} {'heap MB':>8} {'renderer MB':>12} {'DOM nodes':>10} {'listeners':>10} {'shadow':>7} {'shown kept':>11} {'status B':>9}")
    for s in result["samples"]:
        print(f"{s['hour']:>4} {s['heap_used'] / 1e6:>8.2f} {s['renderer_private'] / 1e6:>12.2f} {s['dom_nodes']:>10} {s['listeners']:>10} "
              f"{s['shadow_nodes']:>7} {s['shown_kept']:>11} {s['status_bytes']:>9}")
    print(f"heap growth: {result['heap_growth_bytes_per_hour'] / 1e6:.3f} MB/h "
          f"({result['heap_growth_bytes_per_hour_second_half'] / 1e6:.3f} MB/h over the second half); "
          f"DOM nodes: {result['dom_nodes_growth_per_hour']}/h")
    print(f"renderer process (page and worker), private memory: "
          f"{result['renderer_private_growth_bytes_per_hour'] / 1e6:.3f} MB/h "
          f"({result['renderer_private_growth_bytes_per_hour_second_half'] / 1e6:.3f} MB/h over the second half)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""The shell's module waterfall after the page's load event, on a slow network.

    .venv/bin/python bench/shell_waterfall.py [--widget dist/widget] [--runs 5] [--latency 150]

The loader imports the shell at the page's `load` event. How long from that
event until the shell runs (the `proactive` API answers) and the launcher is
on the page, with Chromium's network emulation adding `--latency` ms to every
request (a mobile round trip), a cold cache each run. Also: how far apart the
first and the last of the shell's module requests start (one round trip when
they are imported side by side, one per level of imports when not). Run it
on two builds to compare them (e.g. a worktree of an older commit). Not part
of `make test`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "e2e"), str(ROOT / "bench")]

from conftest import CHROMIUM, CHROMIUM_FLAGS, _Server  # noqa: E402
from proactive import publishing, signing  # noqa: E402
from run import HOST_BODY, LOREM  # noqa: E402
from server_stub.app import create_site_app, create_widget_app, script_tag  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widget", type=Path, default=ROOT / "dist" / "widget")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=150.0)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="proactive-waterfall-"))
    key = signing.generate_private_key()
    bundles, pages = tmp / "bundles", tmp / "site"
    bundles.mkdir()
    pages.mkdir()
    doc = {"site": "bench", "widgets": [{"id": "main"}], "messages": [
        {"id": "hello", "type": "proactive", "widget": "main", "content": {"text": "Hello"},
         "rules": [{"rule": "page_url", "op": "contains", "value": "/pricing"}]}]}
    (bundles / "b.json").write_bytes(signing.sign_payload(publishing.build_payload(doc, version=1), [key]))
    site = _Server(create_site_app(pages, ""), "localhost")
    widget = _Server(create_widget_app(args.widget, bundles, allowed_origins=[f"http://localhost:{site.port}"],
                                       db_path=tmp / "endpoint.db"), "127.0.0.1")
    origin = f"http://127.0.0.1:{widget.port}"
    tag = script_tag(origin, f"{origin}/bundles/b.json", signing.public_key_spec(key))
    (pages / "p.html").write_text(f"<!doctype html><html lang=en><head><meta charset=utf-8><title>p</title>{tag}</head>"
                                  f"<body>{HOST_BODY.format(text=LOREM)}</body></html>")
    url = f"http://localhost:{site.port}/p.html"
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            for _ in range(args.runs):
                context = browser.new_context()
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": args.latency,
                                                               "downloadThroughput": 1.6e6 / 8, "uploadThroughput": 7.5e5 / 8})
                starts = []
                page.on("request", lambda r: starts.append((time.monotonic(), r.url)))
                page.goto(url, wait_until="load")
                page.wait_for_function("() => window.proactive && window.proactive.__target && document.querySelector('proactive-widget')",
                                       timeout=60_000, polling=10)
                timing = page.evaluate("""() => ({ load: performance.getEntriesByType('navigation')[0].loadEventStart,
                                                   now: performance.now() })""")
                shell = [t for t, u in starts if u.startswith(origin) and u.endswith(".mjs")]
                rows.append({"after_load_ms": None, "module_spread_ms": (max(shell) - min(shell)) * 1000 if shell else None,
                             "modules": len(shell), "load_ms": timing["load"]})
                # the launcher's arrival, in page time, polled at 10 ms
                rows[-1]["after_load_ms"] = timing["now"] - timing["load"]
                context.close()
            browser.close()
    finally:
        site.stop()
        widget.stop()
    med = {k: statistics.median([r[k] for r in rows if r[k] is not None]) for k in ("after_load_ms", "module_spread_ms", "modules")}
    print(json.dumps({"widget": str(args.widget), "latency_ms": args.latency, "runs": rows, "median": med}, indent=1))
    print(f"load event -> launcher on the page: {med['after_load_ms']:.0f} ms (median of {len(rows)}); "
          f"the shell's {med['modules']:.0f} module requests start within {med['module_spread_ms']:.0f} ms of each other")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The studio's speed (issue 13): `.venv/bin/python bench/studio.py [--messages 200]`.

Real Chromium, the real `proactive studio` on a file of N messages (each with
a URL rule, an OR group and two languages). Measured from navigation:
  list        the messages list on screen (the server read and checked the file)
  python      the project's Python ready in the page (PyScript, Pyodide, the wheel)
  keystroke   the in-page check of the whole document after each of 10 keystrokes in
              the editor (performance.now() around the worker's check, round trip included), ms
  simulate    a 10-minute journey (5 page views, an exit intent) over the N messages,
              in the page's Python, ms: the median of 3 runs after a first one
              (simulate_first_ms: that first, which also imports the modules)
Not part of `make test`."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from playwright.sync_api import sync_playwright  # noqa: E402
from studio_helpers import make_key, studio  # noqa: E402

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def messages(n: int) -> dict:
    return {"site": "bench", "messages": [
        {"id": f"m{i}", "priority": i % 7,
         "rules": [{"rule": "page_url", "op": "contains", "value": f"/p{i % 20}"},
                   {"any": [{"rule": "time_on_page", "op": "greater", "value": i % 90},
                            {"rule": "country", "op": "equals", "value": ["DE", "AT"]}]}],
         "content": {"en": {"text": f"Hello **{i}**", "buttons": [{"id": "chat", "label": "Chat", "action": "chat"}]},
                     "de": {"text": "Hallo"}}} for i in range(n)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        (tmp / "m.yaml").write_text(json.dumps(messages(args.messages)))
        key, _ = make_key(tmp)
        journey = {"visitor": {"language": "en"}, "until": 600, "events": [
            *({"t": 120 * k, "type": "page_view", "url": f"https://b.example/p{k}", "referrer": ""} for k in range(5)),
            {"t": 590, "type": "exit_intent", "how": "pointer"}]}
        with studio(tmp / "m.yaml", key, tmp / "b.json") as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            t0 = time.perf_counter()
            page.goto(url)
            page.get_by_role("status").filter(has_text="Ready").wait_for(timeout=120_000)
            listed = time.perf_counter() - t0
            page.locator("body[data-python=page]").wait_for(state="attached", timeout=180_000)
            python = time.perf_counter() - t0
            page.get_by_role("row").nth(1).get_by_role("button", name="Edit").click()
            box = page.get_by_label("Message text").first
            keys = []
            for ch in "abcdefghij":
                box.press("End")
                box.press_sequentially(ch)
                page.wait_for_timeout(80)
                keys.append(page.evaluate("() => window.__lastCheckMs"))
            # the first run imports the simulation's modules in the worker; then three more
            sims = [page.evaluate("""async (journey) => { const S = window.__studio; const doc = JSON.stringify(S.doc);
                const t = performance.now(); const out = JSON.parse(await S.python.sync.simulate(doc, JSON.stringify(journey)));
                return [performance.now() - t, out.result ? out.result.shown.length : out.error]; }""", journey)
                    for _ in range(4)]
            sim = [statistics.median(s[0] for s in sims[1:]), sims[0][1]]
            browser.close()
        print(json.dumps({"messages": args.messages, "list_s": round(listed, 2), "python_ready_s": round(python, 2),
                          "keystroke_check_ms": {"median": round(statistics.median(keys), 1), "max": round(max(keys), 1)},
                          "simulate_10min_ms": round(sim[0], 1), "simulate_first_ms": round(sims[0][0], 1),
                          "shown": sim[1]}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

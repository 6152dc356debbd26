"""Walking-skeleton time-to-ready: cold (new profile) and warm (second load, same profile), 5 runs.

    .venv/bin/python bench/skeleton_ready.py
"""
import sys, time, statistics, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from pathlib import Path
from playwright.sync_api import sync_playwright
from conftest import Site, CHROMIUM, CHROMIUM_FLAGS, simple_messages
site = Site(Path(tempfile.mkdtemp()))
site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 60}]}))
url = site.page()
def ready(page):
    page.goto(url)
    for _ in range(600):
        s = page.evaluate("() => window.proactive && window.proactive('status')")
        if s and s.get("ready"):
            return s["readyAt"], s["timings"]
        time.sleep(0.02)
cold, warm = [], []
with sync_playwright() as p:
    for i in range(5):
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        ctx = b.new_context()
        pg = ctx.new_page()
        cold.append(ready(pg)[0])
        pg2 = ctx.new_page()
        warm.append(ready(pg2)[0])
        b.close()
print("cold", sorted(cold), "median", statistics.median(cold))
print("warm", sorted(warm), "median", statistics.median(warm))
site.stop()

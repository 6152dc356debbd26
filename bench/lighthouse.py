"""Lighthouse with and without the widget, same page, same run (`make bench-lighthouse`).

    .venv/bin/python bench/lighthouse.py [--runs 3]

What a site owner sees in PageSpeed / Lighthouse: the host page of the
start-up bench (bench/run.py), served on one origin, the widget's default
build on another, measured by Lighthouse 12.2.3 (pinned in
bench/lighthouse/package.json; Node 20 needs 12.2.x) with its default mobile
preset (simulated throttling), performance category only, on three pages:

  none       the page without the widget
  later      the page with the widget, whose only message needs 10 s on the page:
             the engine starts just in time (data-boot="auto", the default),
             4 s before, after Lighthouse has finished
  later-now  the same with data-boot="now": the engine starts at the load
             event, as before the just-in-time engine (the "before" row)
  at-once    the page with the widget, whose message can show at once
  never      the page with the widget, whose only message is for /pricing:
             no engine at all on this page
  empty-js   a control: the page with an empty `<script async>` from the
             widget's origin instead of the widget (what one script from
             another origin costs in Lighthouse's simulation)

Runs are interleaved (none, later, at-once, none, ...) so that the machine's
load drifts the same way for each. Per page, median and range over --runs:
score, LCP (simulated, and as observed on this machine), TBT, CLS, total
byte weight, and the widget origin's bytes per file (from the
`total-byte-weight` audit). Prints a table and writes
bench/results/lighthouse-<UTC time>.json and .md. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "e2e"), str(ROOT / "bench")]

from conftest import CHROMIUM, CHROMIUM_FLAGS, _Server  # noqa: E402  (the e2e harness's launch flags and server)
from proactive import publishing, signing  # noqa: E402
from run import HOST_BODY, LOREM, RESULTS, _png, machine  # noqa: E402  (the start-up bench's host page)
from server_stub.app import create_site_app, create_widget_app, script_tag  # noqa: E402

LIGHTHOUSE = ROOT / "bench" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
PAGES = {   # name: (rules, extra tag attributes)
    "later": ([{"rule": "time_on_page", "op": "greater", "value": 10}], {}),
    "later-now": ([{"rule": "time_on_page", "op": "greater", "value": 10}], {"data-boot": "now"}),
    "at-once": ([{"rule": "time_on_page", "op": "greater", "value": 0}], {}),
    "never": ([{"rule": "page_url", "op": "contains", "value": "/pricing"}], {}),
}
AUDITS = {"lcp_ms": "largest-contentful-paint", "tbt_ms": "total-blocking-time", "cls": "cumulative-layout-shift",
          "fcp_ms": "first-contentful-paint", "bytes": "total-byte-weight"}


def serve(tmp: Path) -> dict:
    build = runpy.run_path(str(ROOT / "build" / "build.py"))
    out = tmp / "widget"
    build["build"](out)
    key = signing.generate_private_key()
    bundles = tmp / "bundles"
    bundles.mkdir()
    pages = tmp / "site"
    pages.mkdir()
    (pages / "hero.png").write_bytes(_png(960, 400))
    site = _Server(create_site_app(pages, ""), "localhost")
    site_origin = f"http://localhost:{site.port}"
    widget = _Server(create_widget_app(out, bundles, allowed_origins=[site_origin], db_path=tmp / "endpoint.db"), "127.0.0.1")
    widget_origin = f"http://127.0.0.1:{widget.port}"
    (out / "empty.js").write_text("")
    urls = {}
    for name, (rules, attrs) in {"none": (None, {}), **PAGES, "empty-js": (None, {})}.items():
        tag = f'<script async src="{widget_origin}/empty.js"></script>' if name == "empty-js" else ""
        if rules is not None:
            doc = {"site": "bench", "widgets": [{"id": "main"}], "messages": [
                {"id": "hello", "type": "proactive", "widget": "main", "content": {"text": "Hello"}, "rules": rules}]}
            (bundles / f"{name}.json").write_bytes(signing.sign_payload(publishing.build_payload(doc, version=1), [key]))
            tag = script_tag(widget_origin, f"{widget_origin}/bundles/{name}.json", signing.public_key_spec(key), **attrs)
        (pages / f"{name}.html").write_text(
            f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<link rel=icon href=\"data:,\"><title>{name}</title>{tag}</head><body>{HOST_BODY.format(text=LOREM)}</body></html>")
        urls[name] = f"{site_origin}/{name}.html"
    return {"urls": urls, "servers": [site, widget], "widget_origin": widget_origin}


def lighthouse(url: str, widget_origin: str) -> dict:
    flags = " ".join(["--headless=new", *CHROMIUM_FLAGS])
    proc = subprocess.run(
        [str(LIGHTHOUSE), url, "--output=json", "--output-path=stdout", "--quiet", "--only-categories=performance",
         f"--chrome-flags={flags}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "CHROME_PATH": CHROMIUM})
    if proc.returncode != 0:
        raise RuntimeError(f"lighthouse failed ({proc.returncode}): {proc.stderr[-2000:]}")
    lhr = json.loads(proc.stdout)
    audits = lhr["audits"]
    row = {k: audits[a].get("numericValue") for k, a in AUDITS.items()}
    row["score"] = round((lhr["categories"]["performance"]["score"] or 0) * 100)
    observed = ((audits.get("metrics") or {}).get("details") or {}).get("items") or [{}]
    row["observed_lcp_ms"] = observed[0].get("observedLargestContentfulPaint")
    items = (audits["total-byte-weight"].get("details") or {}).get("items") or []
    row["widget_files"] = {i["url"][len(widget_origin):].split("?")[0]: i["totalBytes"]
                           for i in items if i["url"].startswith(widget_origin)}
    row["enormous_payloads_flagged"] = audits["total-byte-weight"].get("score") is not None and audits["total-byte-weight"]["score"] < 1
    return row


def med(values: list) -> dict:
    values = [v for v in values if v is not None]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)} if values else {}


def summarise(runs: dict) -> dict:
    out = {}
    for name, rows in runs.items():
        s = {k: med([r.get(k) for r in rows]) for k in ("score", "observed_lcp_ms", *AUDITS)}
        s["widget_bytes"] = med([sum(r["widget_files"].values()) for r in rows])
        s["flagged_runs"] = sum(1 for r in rows if r["enormous_payloads_flagged"])
        files: dict = {}
        for r in rows:
            for f, b in r["widget_files"].items():
                files.setdefault(f, []).append(b)
        s["widget_files"] = {f: statistics.median(b) for f, b in sorted(files.items(), key=lambda kv: -statistics.median(kv[1]))}
        out[name] = s
    return out


def markdown(summary: dict, runs: int, info: dict) -> str:
    def cell(st, scale=1.0, digits=0, unit=""):
        if not st:
            return "–"
        f = f"{{:.{digits}f}}"
        return f"{f.format(st['median'] * scale)}{unit} ({f.format(st['min'] * scale)}–{f.format(st['max'] * scale)})"

    lines = [f"Lighthouse 12.2.3, mobile preset, performance only; {runs} runs per page, interleaved; "
             f"median (range). {info['cpu']} x{info['cores']}, {info['chromium']}.", "",
             "| page | score | LCP | LCP observed | TBT | CLS | total bytes | widget's bytes | \"enormous payloads\" flagged |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {cell(s['score'])} | {cell(s['lcp_ms'], 1e-3, 2, ' s')} | {cell(s.get('observed_lcp_ms'), 1, 0, ' ms')} | "
                     f"{cell(s['tbt_ms'], 1, 0, ' ms')} | "
                     f"{cell(s['cls'], 1, 3)} | {cell(s['bytes'], 1 / 1024, 0, ' KiB')} | {cell(s['widget_bytes'], 1 / 1024, 0, ' KiB')} | "
                     f"{s['flagged_runs']} of {runs} |")
    for name, s in summary.items():
        if s["widget_files"]:
            lines += ["", f"Widget origin's files on `{name}` (transfer bytes, median):", "",
                      "| file | KiB |", "|---|---|"]
            lines += [f"| `{f}` | {b / 1024:.1f} |" for f, b in s["widget_files"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if not LIGHTHOUSE.exists():
        print("Lighthouse is not installed: npm ci --prefix bench/lighthouse (make bench-lighthouse does it)", file=sys.stderr)
        return 2
    started = datetime.now(timezone.utc)
    info = machine()
    tmp = Path(tempfile.mkdtemp(prefix="proactive-lighthouse-"))
    env = serve(tmp)
    runs: dict = {name: [] for name in env["urls"]}
    try:
        for n in range(args.runs):
            for name, url in env["urls"].items():
                row = lighthouse(url, env["widget_origin"])
                runs[name].append(row)
                print(f"  run {n + 1} {name:8} score {row['score']}, LCP {row['lcp_ms']:.0f} ms, TBT {row['tbt_ms']:.0f} ms, "
                      f"{row['bytes'] / 1024:.0f} KiB, load average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        for s in env["servers"]:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarise(runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"lighthouse-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps({"started": started.isoformat(), "machine": info, "runs": runs, "summary": summary}, indent=1))
    text = markdown(summary, args.runs, info)
    path.with_suffix(".md").write_text(text)
    print("\n" + text)
    print(f"wrote {path.relative_to(ROOT)} and {path.with_suffix('.md').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

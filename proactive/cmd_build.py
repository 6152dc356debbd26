"""`proactive build`: the static widget folder (runs build/build.py).

One layout everywhere (README, docs/publishing.md): the folder you host holds
the widget and, in its `bundles/`, the bundles you sign into it. A rebuild
replaces the widget files and keeps `bundles/` as it is."""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_arguments(p) -> None:
    p.add_argument("--out", type=Path, default=ROOT / "dist" / "widget",
                   help="the folder to write (replaced, except its bundles/ folder): host its content as is")
    p.add_argument("--no-minify", action="store_true",
                   help="serve the browser modules as written, not minified (for debugging the widget)")


PROGRESS_EVERY = 10.0  # seconds between "still building" lines


def _progress(done: threading.Event, started: float) -> None:
    """A line every PROGRESS_EVERY seconds while the build runs (compiling
    the runtime under Pyodide takes up to a minute), so it never looks stuck."""
    while not done.wait(PROGRESS_EVERY):
        print(f"  … still building ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)


def run(args) -> int:
    build = runpy.run_path(str(ROOT / "build" / "build.py"))
    out = Path(args.out)
    kept = out.parent / f".{out.name}.bundles-{os.getpid()}"
    if (out / "bundles").is_dir() and any((out / "bundles").iterdir()):
        os.replace(out / "bundles", kept)
    done = threading.Event()
    threading.Thread(target=_progress, args=(done, time.monotonic()), daemon=True).start()
    try:
        status = build["main"](["--out", str(out)] + (["--no-minify"] if getattr(args, "no_minify", False) else []))
    finally:
        done.set()
        if kept.exists():
            shutil.rmtree(out / "bundles", ignore_errors=True)
            out.mkdir(parents=True, exist_ok=True)
            os.replace(kept, out / "bundles")
    if status == 0:
        signed = sorted(p.name for p in (out / "bundles").glob("*.json"))
        print(f"bundles: {', '.join(signed)} kept in {out / 'bundles'}" if signed else
              f"next: proactive sign messages.yaml --key site.key --out {out / 'bundles' / 'site.json'}; "
              f"then host {out} as is")
    return status

"""`proactive build`: the static widget folder (runs build/build.py).

One layout everywhere (README, docs/publishing.md): the folder you host holds
the widget and, in its `bundles/`, the bundles you sign into it. A rebuild
replaces the widget files and keeps `bundles/` as it is."""

from __future__ import annotations

import os
import runpy
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_arguments(p) -> None:
    p.add_argument("--out", type=Path, default=ROOT / "dist" / "widget",
                   help="the folder to write (replaced, except its bundles/ folder): host its content as is")


def run(args) -> int:
    build = runpy.run_path(str(ROOT / "build" / "build.py"))
    out = Path(args.out)
    kept = out.parent / f".{out.name}.bundles-{os.getpid()}"
    if (out / "bundles").is_dir() and any((out / "bundles").iterdir()):
        os.replace(out / "bundles", kept)
    try:
        return build["main"](["--out", str(out)])
    finally:
        if kept.exists():
            shutil.rmtree(out / "bundles", ignore_errors=True)
            out.mkdir(parents=True, exist_ok=True)
            os.replace(kept, out / "bundles")

"""`proactive build`: the static widget folder (runs build/build.py)."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_arguments(p) -> None:
    p.add_argument("--out", type=Path, default=ROOT / "dist" / "widget")


def run(args) -> int:
    build = runpy.run_path(str(ROOT / "build" / "build.py"))
    return build["main"](["--out", str(args.out)])

"""Build the static widget folder a site owner hosts.

    python build/build.py [--out dist/widget]

Output (everything the widget's origin serves, nothing from a CDN):
  loader.js, shell.mjs, render.mjs, host.mjs, worker.mjs   the browser side
  runtime-<hash>.tar                                      the Python runtime (content-hashed)
  pyodide-<version>/                                       the pinned, self-hosted Pyodide core
  manifest.json                                            what was built, for tools and tests

This folder is not an importable package on purpose (it would shadow PyPA's
`build`); `proactive build` runs this file.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDGET = ROOT / "widget"
PYODIDE_NPM = ROOT / "node_modules" / "pyodide"
PYODIDE_FILES = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"]
JS_FILES = ["loader.js", "shell.mjs", "render.mjs", "host.mjs", "worker.mjs", "endpoint.mjs"]


def pyodide_version() -> str:
    package = PYODIDE_NPM / "package.json"
    if not package.exists():
        sys.exit("node_modules/pyodide is missing: run `npm ci` first (make does it)")
    return json.loads(package.read_text())["version"]


def runtime_archive() -> bytes:
    """A reproducible tar of the `widget` package's Python files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        files = sorted(p for p in WIDGET.rglob("*.py") if "__pycache__" not in p.parts)
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(str(path.relative_to(ROOT)))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build(out: Path) -> dict:
    version = pyodide_version()
    pyodide_dir = f"pyodide-{version}"
    if out.exists():
        shutil.rmtree(out)
    (out / pyodide_dir).mkdir(parents=True)
    (out / "bundles").mkdir()
    for name in PYODIDE_FILES:
        shutil.copy2(PYODIDE_NPM / name, out / pyodide_dir / name)

    archive = runtime_archive()
    archive_name = f"runtime-{hashlib.sha256(archive).hexdigest()[:12]}.tar"
    (out / archive_name).write_bytes(archive)

    replacements = {"__PYODIDE_DIR__": pyodide_dir, "__RUNTIME_ARCHIVE__": archive_name}
    for name in JS_FILES:
        text = (WIDGET / name).read_text(encoding="utf-8")
        for placeholder, value in replacements.items():
            text = text.replace(placeholder, value)
        (out / name).write_text(text, encoding="utf-8")

    manifest = {"pyodide": version, "pyodide_dir": pyodide_dir, "runtime_archive": archive_name, "files": JS_FILES}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "widget")
    args = parser.parse_args(argv)
    manifest = build(args.out)
    print(f"built {args.out} (runtime {manifest['runtime_archive']}, Pyodide {manifest['pyodide']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

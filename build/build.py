"""Build the static widget folder a site owner hosts.

    python build/build.py [--out dist/widget] [--plain] [--snapshot local|off]

Output (everything the widget's origin serves, nothing from a CDN):
  loader.js                        the one file a tag names (revalidated, never renamed)
  shell-<hash>.mjs, render-<hash>.mjs, host-<hash>.mjs, worker-<hash>.mjs, ...
                                   the browser side, content-hashed (immutable);
                                   the same files under their plain names too.
                                   widget/'s folders (shell/, signals/, engine/,
                                   decisions/, render/, bundle/, endpoint/, qa/)
                                   are flattened: every module is served beside
                                   the loader, so a module's name is unique
  runtime-<hash>.tar               the Python runtime as sourceless .pyc precompiled for Pyodide
  stdlib-<hash>.zip                the standard library trimmed to what the runtime
                                   needs, precompiled (sourceless .pyc)
  pyodide-<version>/               the pinned, self-hosted Pyodide core
  *.br, *.gz                       precompressed siblings (the endpoint picks one)
  manifest.json                    what was built, for tools and tests

Start-up work happens here, not in the visitor's browser: the .pyc files are
compiled by Pyodide's own CPython (run under Node: build/pyodide_compile.mjs),
because a .pyc is only valid for the interpreter version that wrote it. The
expensive results (compiled zip, brotli) are cached by a hash of their inputs
in $PROACTIVE_BUILD_CACHE (default ~/.cache/proactive/build), so a rebuild
takes a second or two; the first build on a new machine takes ~30-60 s.

`--plain` builds the unoptimised baseline (Pyodide's full source stdlib, no
.pyc, no snapshot) that the benchmarks compare against. `--snapshot off`
disables the memory snapshot kept in the visitor's browser (docs/benchmarks.md).

This folder is not an importable package on purpose (it would shadow PyPA's
`build`); `proactive build` runs this file.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import runpy
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
WIDGET = ROOT / "widget"
PYODIDE_NPM = ROOT / "node_modules" / "pyodide"
PYODIDE_CORE = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "pyodide-lock.json"]
PYODIDE_FILES = PYODIDE_CORE + ["python_stdlib.zip"]
UNHASHED = {"loader.js"}  # the name in every site's script tag
# Stdlib modules the runtime imports lazily inside stdlib functions (the
# static closure only follows import-time imports in the stdlib). Add here
# when tests/test_build_stdlib.py or e2e/test_startup.py says one is missing.
EXTRA_MODULES = ["_strptime"]
COMPILE_FORMAT = 1  # bump to invalidate every cached compile
# The stdlib's .pyc are compiled with -OO: no docstrings, no asserts.
STDLIB_OPTIMIZE = 2
COMPRESS_SUFFIXES = (".js", ".mjs", ".wasm", ".zip", ".tar", ".json")


def cache_dir() -> Path:
    """$PROACTIVE_BUILD_CACHE, else ~/.cache/proactive/build, else (a
    read-only home, some CI) a directory under the system's temp dir."""
    env = os.environ.get("PROACTIVE_BUILD_CACHE")
    if env:
        return Path(env)
    for candidate in (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "proactive" / "build",
                      Path(tempfile.gettempdir()) / f"proactive-build-cache-{os.getuid() if hasattr(os, 'getuid') else 0}"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            continue
    sys.exit("no writable directory for the build cache: set PROACTIVE_BUILD_CACHE")


def pyodide_version() -> str:
    package = PYODIDE_NPM / "package.json"
    if not package.exists():
        sys.exit("node_modules/pyodide is missing: run `npm ci` first (make does it)")
    return json.loads(package.read_text())["version"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar(files: list[tuple[str, bytes]]) -> bytes:
    """A reproducible tar (sorted names, mtime 0)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Developer tools that live beside the engine (they drive it in CPython) but
# that no visitor's browser runs: kept out of the runtime archive. The e2e
# suite loads conformance.py into Pyodide on its own (e2e/test_conformance.py).
DEV_TOOLS = frozenset({"widget/runtime/simulate.py", "widget/runtime/conformance.py"})


def runtime_sources() -> list[tuple[str, bytes]]:
    """The Python files every visitor's browser needs: the `widget` package
    without its developer tools."""
    files = sorted(p for p in WIDGET.rglob("*.py") if "__pycache__" not in p.parts)
    named = ((p.relative_to(ROOT).as_posix(), p) for p in files)
    return [(name, p.read_bytes()) for name, p in named if name not in DEV_TOOLS]


def runtime_archive() -> bytes:
    """A reproducible tar of the runtime's Python sources (runtime_sources)."""
    return _tar(runtime_sources())


def _atomic_dir(target: Path, fill) -> Path:
    """Fill a temp dir beside `target`, then rename it into place (parallel
    builds of the same key both succeed; one rename wins)."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        fill(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _prune(pattern: str, keep: int) -> None:
    """The cache keeps the `keep` most recently used entries matching `pattern`."""
    entries = sorted(cache_dir().glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _touch(path: Path) -> Path:
    try:
        os.utime(path)
    except OSError:
        pass
    return path


def compile_for_pyodide(source_tar: bytes) -> Path:
    """The trimmed precompiled stdlib + runtime .pyc, from the cache or by
    running Pyodide under Node. Returns the directory holding stdlib.zip,
    runtime/ and manifest.json."""
    key = hashlib.sha256()
    for part in (
        str(COMPILE_FORMAT).encode(),
        pyodide_version().encode(),
        (PYODIDE_NPM / "python_stdlib.zip").read_bytes(),
        (PYODIDE_NPM / "pyodide.asm.wasm").stat().st_size.to_bytes(8, "little"),
        (HERE / "pyodide_compile.mjs").read_bytes(),
        (WIDGET / "engine" / "untar.mjs").read_bytes(),
        (HERE / "pyodide_compile.py").read_bytes(),
        json.dumps(EXTRA_MODULES).encode(),
        str(STDLIB_OPTIMIZE).encode(),
        source_tar,
    ):
        key.update(_sha(part).encode())
    target = cache_dir() / f"compile-{key.hexdigest()[:24]}"

    def fill(tmp: Path) -> None:
        (tmp / "source.tar").write_bytes(source_tar)
        job = {
            "root": str(ROOT),
            "pyodide_dir": str(PYODIDE_NPM),
            "runtime_tar": str(tmp / "source.tar"),
            "out": str(tmp),
            "runtime_prefix": "/proactive",
            "optimize": STDLIB_OPTIMIZE,
            "extra_modules": EXTRA_MODULES,
        }
        (tmp / "job.json").write_text(json.dumps(job))
        node = shutil.which("node")
        if not node:
            sys.exit("node is missing: the build compiles .pyc files with Pyodide under Node (apt-get install nodejs)")
        result = subprocess.run([node, str(HERE / "pyodide_compile.mjs"), str(tmp / "job.json")],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            sys.exit(f"compiling .pyc under Pyodide failed:\n{result.stdout}\n{result.stderr}")
        (tmp / "source.tar").unlink()

    if target.exists():
        return _touch(target)
    _atomic_dir(target, fill)
    _prune("compile-*", keep=16)
    return target


def _compressed(data: bytes, kind: str) -> bytes:
    """brotli (quality 11) or gzip (level 9) of `data`, cached by content."""
    path = cache_dir() / "compressed" / f"{_sha(data)}.{kind}"
    if path.exists():
        return _touch(path).read_bytes()
    if kind == "br":
        import brotli

        out = brotli.compress(data, quality=11)
    else:
        out = gzip.compress(data, compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(out)
    os.replace(tmp, path)
    _prune("compressed/*", keep=600)
    return out


def precompress(out: Path) -> dict:
    """NAME.br and NAME.gz beside every compressible file that shrinks."""
    sizes = {}
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.suffix not in COMPRESS_SUFFIXES or path.name == "manifest.json":
            continue
        data = path.read_bytes()
        entry = {"raw": len(data)}
        for kind in ("br", "gz"):
            packed = _compressed(data, kind)
            if len(packed) < len(data):
                path.with_name(path.name + "." + kind).write_bytes(packed)
                entry[kind] = len(packed)
        sizes[str(path.relative_to(out))] = entry
    return sizes


def _hashed(name: str, data: bytes) -> str:
    stem, dot, ext = name.partition(".")
    return f"{stem}-{_sha(data)[:12]}.{ext}"


CONSTANTS = "constants.mjs"  # generated: widget/runtime/constants.py's SHARED values


def constants_module() -> str:
    """The values the runtime shares with the browser, as a JS module: their
    one source is widget/runtime/constants.py (plain literals, run without
    importing the runtime)."""
    shared = runpy.run_path(str(WIDGET / "runtime" / "constants.py"))["SHARED"]
    lines = ["// Generated by build/build.py from widget/runtime/constants.py: edit that file instead.", ""]
    for name, value in shared.items():
        if isinstance(value, (tuple, list)):
            lines.append(f"export const {name} = Object.freeze({json.dumps(list(value))});")
        elif isinstance(value, (int, str)) and not isinstance(value, bool):
            lines.append(f"export const {name} = {json.dumps(value)};")
        else:
            sys.exit(f"constants.py: {name} is not a number, a string or a list of them")
    return "\n".join(lines) + "\n"


def js_sources() -> dict[str, str]:
    """widget/'s browser modules: path under widget/ → served (plain) name.
    The served folder is flat, so two modules may not share a file name.
    CONSTANTS is generated (constants_module), as if it were widget/CONSTANTS."""
    paths = sorted(str(p.relative_to(WIDGET)) for p in WIDGET.rglob("*")
                   if p.suffix in (".js", ".mjs") and "runtime" not in p.relative_to(WIDGET).parts)
    if (WIDGET / "runtime" / "constants.py").exists():
        paths.append(CONSTANTS)
    names: dict[str, str] = {}
    for path in paths:
        name = path.rpartition("/")[2]
        clash = next((other for other, n in names.items() if n == name), None)
        if clash:
            sys.exit(f"widget/{path} and widget/{clash} would both be served as {name}: rename one")
        names[path] = name
    return names


# A module reference in quotes: "./host.mjs", '../render/render.mjs', or a
# path from the loader's folder ("shell/shell.mjs", resolved against its URL).
_REF = re.compile(r"""(["'`])((?:\.{1,2}/)*[A-Za-z0-9_./-]+\.m?js)\1""")


def _references(path: str, text: str, names: dict[str, str]) -> list[tuple[re.Match, str]]:
    """(match, referenced module's path) for every quoted string in `text`
    that names another widget module relative to `path`'s folder."""
    folder = posixpath.dirname(path)
    found = []
    for match in _REF.finditer(text):
        target = posixpath.normpath(posixpath.join(folder, match.group(2)))
        if target in names and target != path:
            found.append((match, target))
    return found


ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
# The syntax the minified output may use: the modules' own (ES2020: module
# workers, `?.`, `??`), and the loader's (a classic script that must parse
# everywhere it is pasted: no optional catch binding, nothing past ES2017).
ESBUILD_TARGET = {".mjs": "es2020", ".js": "es2017"}


def _esbuild_version() -> str:
    package = ROOT / "node_modules" / "esbuild" / "package.json"
    return json.loads(package.read_text())["version"] if package.exists() else "missing"


def minified(data: bytes, name: str) -> bytes:
    """`data` minified by esbuild (pinned in package.json, cached by content,
    version and flags): whitespace, comments and local names go; imports,
    exports, strings and `/*! ... */` comments stay; the output's syntax is
    no newer than ESBUILD_TARGET. loader.js is a classic script: its
    top-level names stay, and non-ASCII text is escaped (a host page may not
    be UTF-8); modules are always read as UTF-8."""
    module = name.endswith(".mjs")
    args = ["--minify", "--loader=js", "--log-level=error", f"--target={ESBUILD_TARGET['.mjs' if module else '.js']}"]
    args += ["--format=esm", "--charset=utf8"] if module else []
    key = _sha(data + json.dumps([name, _esbuild_version(), args]).encode())
    path = cache_dir() / "minified" / f"{key}.js"
    if path.exists():
        return _touch(path).read_bytes()
    if not ESBUILD.exists():
        sys.exit("node_modules/.bin/esbuild is missing: run `npm ci` first (make does it)")
    result = subprocess.run([str(ESBUILD), *args], input=data, capture_output=True, timeout=60)
    if result.returncode != 0:
        sys.exit(f"esbuild could not minify {name}:\n{result.stderr.decode(errors='replace')}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(result.stdout)
    os.replace(tmp, path)
    _prune("minified/*", keep=400)
    return result.stdout


# A static import or re-export: `import … from "./x.mjs"`, `export … from
# "./x.mjs"`, `import "./x.mjs"` (not `import("./x.mjs")`, which loads later).
_STATIC_IMPORT = re.compile(r"""^\s*(?:(?:import|export)\s[^;]*?\bfrom\s*|import\s*)(["'])(\.{1,2}/[^"']+\.m?js)\1""", re.M)
SHELL_GRAPH = '"__SHELL_GRAPH__"'  # in loader.js: the shell's static module graph, as a JSON string


def _static_graph(start: str, texts: dict[str, str], names: dict[str, str]) -> list[str]:
    """`start` and every module it imports statically, transitively (paths
    under widget/), in a stable order."""
    seen, todo = [], [start]
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.append(path)
        folder = posixpath.dirname(path)
        for match in _STATIC_IMPORT.finditer(texts[path]):
            target = posixpath.normpath(posixpath.join(folder, match.group(2)))
            if target in names:
                todo.append(target)
    return seen


def write_js(out: Path, replacements: dict[str, str], minify: bool = True) -> dict[str, str]:
    """Copy the browser modules into the flat served folder with placeholders
    filled in, every reference to another module pointed at its
    content-hashed name (dependencies first: a name is the hash of a text
    that already names its dependencies' hashes), and minified (`minify`).
    Returns plain → served name."""
    names = js_sources()
    texts = {}
    for path in names:
        if path == CONSTANTS and not (WIDGET / path).exists():
            texts[path] = constants_module()
            continue
        text = (WIDGET / path).read_text(encoding="utf-8")
        for placeholder, value in replacements.items():
            text = text.replace(placeholder, value)
        texts[path] = text
    deps = {path: {target for _, target in _references(path, text, names)} for path, text in texts.items()}
    served: dict[str, str] = {}  # path → served name
    while len(served) < len(texts):
        progress = False
        for path, text in texts.items():
            if path in served or not deps[path] <= served.keys():
                continue
            pieces, last = [], 0
            for match, target in _references(path, text, names):
                spec = match.group(2)
                prefix = "./" if spec.startswith(".") else ""  # an import needs "./"; a loader URL keeps its form
                pieces += [text[last:match.start()], f"{match.group(1)}{prefix}{served[target]}{match.group(1)}"]
                last = match.end()
            text = "".join(pieces) + text[last:]
            if SHELL_GRAPH in text and "shell/shell.mjs" in texts:
                # The loader imports the shell's whole static graph side by
                # side (one round trip, not one per level of imports).
                graph = [served[p] for p in _static_graph("shell/shell.mjs", texts, names) if p in served]
                text = text.replace(SHELL_GRAPH, json.dumps(json.dumps(graph)))
            data = text.encode("utf-8")
            name = names[path]
            if minify:
                data = minified(data, name)
            served[path] = name if name in UNHASHED else _hashed(name, data)
            (out / served[path]).write_bytes(data)
            if served[path] != name:
                (out / name).write_bytes(data)  # the plain name too, revalidated (tools, old tags)
            progress = True
        if not progress:
            cycle = {path: sorted(d - served.keys()) for path, d in deps.items() if path not in served}
            sys.exit(f"circular imports between widget modules (each name hashes its imports' names): {cycle}")
    return {names[path]: name for path, name in served.items()}


def build(out: Path, *, plain: bool = False, snapshot: str = "local", compress: bool = True, minify: bool = True) -> dict:
    """Build the widget folder into `out` (replaced). `plain`: the unoptimised
    baseline (full source stdlib, no .pyc, no snapshot). `minify`: the
    browser modules minified (esbuild); off, they are served as written."""
    started = time.monotonic()
    version = pyodide_version()
    pyodide_dir = f"pyodide-{version}"
    if snapshot not in ("local", "off"):
        raise ValueError(f"snapshot must be 'local' or 'off', not {snapshot!r}")
    if out.exists():
        shutil.rmtree(out)
    (out / pyodide_dir).mkdir(parents=True)
    (out / "bundles").mkdir()
    for name in PYODIDE_CORE:
        shutil.copy2(PYODIDE_NPM / name, out / pyodide_dir / name)

    sources = runtime_sources()
    compiled_manifest = None
    if plain:
        snapshot = "off"
        stdlib = (PYODIDE_NPM / "python_stdlib.zip").read_bytes()
        archive = _tar(sources)
    else:
        compiled = compile_for_pyodide(_tar(sources))
        compiled_manifest = json.loads((compiled / "manifest.json").read_text())
        stdlib = (compiled / "stdlib.zip").read_bytes()
        pycs = [(f"widget/{rel}", (compiled / "runtime" / "widget" / rel).read_bytes())
                for rel in (p[len("widget/"):] for p in compiled_manifest["runtime_pycs"])]
        archive = _tar(pycs)  # sourceless: the .pyc sit where the .py would
    stdlib_name = _hashed("stdlib.zip", stdlib)
    (out / stdlib_name).write_bytes(stdlib)
    archive_name = _hashed("runtime.tar", archive)
    (out / archive_name).write_bytes(archive)

    replacements = {
        "__PYODIDE_DIR__": pyodide_dir,
        "__RUNTIME_ARCHIVE__": archive_name,
        "__STDLIB_ZIP__": stdlib_name,
        "__SNAPSHOT__": snapshot,
        # (a JS string holding the JSON: the quotes are part of the placeholder)
        '"__PYODIDE_LOCK_INFO__"': json.dumps(json.dumps(
            json.loads((PYODIDE_NPM / "pyodide-lock.json").read_text())["info"], sort_keys=True)),
    }
    served = write_js(out, replacements, minify=minify)

    manifest = {
        "pyodide": version,
        "pyodide_dir": pyodide_dir,
        "runtime_archive": archive_name,
        "stdlib_zip": stdlib_name,
        "precompiled": not plain,
        "minified": minify,
        "snapshot": snapshot,
        "files": sorted(served),
        "served": served,
    }
    if compiled_manifest:
        manifest["python"] = compiled_manifest["python"]
        manifest["stdlib_modules"] = sorted(compiled_manifest["stdlib_modules"])
        manifest["runtime_import_errors"] = compiled_manifest["runtime_import_errors"]
    if compress:
        manifest["sizes"] = precompress(out)
    manifest["build_seconds"] = round(time.monotonic() - started, 2)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "widget")
    parser.add_argument("--plain", action="store_true", help="the unoptimised baseline (for benchmarks)")
    parser.add_argument("--snapshot", choices=["local", "off"], default="local",
                        help="keep a memory snapshot in the visitor's browser for repeat visits (default: local)")
    parser.add_argument("--no-compress", action="store_true", help="skip the .br/.gz siblings")
    parser.add_argument("--no-minify", action="store_true", help="serve the browser modules as written (for debugging)")
    args = parser.parse_args(argv)
    manifest = build(args.out, plain=args.plain, snapshot=args.snapshot, compress=not args.no_compress, minify=not args.no_minify)
    for module, error in (manifest.get("runtime_import_errors") or {}).items():
        print(f"warning: {module} failed to import under Pyodide: {error}", file=sys.stderr)
    print(f"built {args.out} in {manifest['build_seconds']} s (runtime {manifest['runtime_archive']}, "
          f"stdlib {manifest['stdlib_zip']}, Pyodide {manifest['pyodide']}, snapshot {manifest['snapshot']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

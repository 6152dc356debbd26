"""The build's start-up artifacts, checked in CPython: the trimmed stdlib
holds every module the runtime needs (and the check notices when one is
missing), .pyc files are made for Pyodide's interpreter, names are content
hashes, compressed siblings decompress to their file, and a cached rebuild
is fast. (e2e/test_startup.py imports it all in Chromium.)"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import re
import runpy
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import brotli
import pytest

ROOT = Path(__file__).resolve().parents[1]
PYODIDE_STDLIB = ROOT / "node_modules" / "pyodide" / "python_stdlib.zip"


@pytest.fixture(scope="module")
def build_module():
    return runpy.run_path(str(ROOT / "build" / "build.py"))


@pytest.fixture(scope="module")
def built(build_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("widget")
    manifest = build_module["build"](out)
    return out, manifest


def _stands_in(node: ast.Try, builtins: set[str]) -> bool:
    """A `try:` of imports only, from modules built into Pyodide (`try: from
    _datetime import *`), whose handlers catch only ImportError: the
    fallback never runs."""
    def only_import_errors(h):
        names = [] if h.type is None else h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        return bool(names) and all(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)

    if not node.body or not all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in node.body):
        return False
    if not node.handlers or not all(only_import_errors(h) for h in node.handlers):
        return False
    modules = [a.name for s in node.body if isinstance(s, ast.Import) for a in s.names]
    modules += [s.module for s in node.body if isinstance(s, ast.ImportFrom) and not s.level]
    return len(modules) == sum(len(s.names) if isinstance(s, ast.Import) else 1 for s in node.body) and all(m in builtins for m in modules)


def _import_names(source: str, module: str, is_package: bool, everywhere: bool, fallback_for: set[str] | None = None) -> set[str]:
    """Module names imported by `source` (all imports, or only those that run
    at import time: not inside functions, `if __name__ == "__main__"`,
    `if sys.platform == "win32"`, `if TYPE_CHECKING`, nor the `except
    ImportError` fallback for a module in `fallback_for`, Pyodide's builtins)."""
    package = module if is_package else module.rpartition(".")[0]
    try:
        tree = ast.parse(source)
    except SyntaxError:
        # Newer syntax than this CPython parses (a few 3.14 stdlib modules):
        # their unindented import statements, which run at import time.
        tree = ast.Module(body=[], type_ignores=[])
        for line in source.splitlines():
            if re.match(r"(import|from) [\w.]", line) and not line.rstrip().endswith(("(", "\\")):
                try:
                    tree.body += ast.parse(line).body
                except SyntaxError:
                    pass
            elif re.match(r"from ([\w.]+) import \(", line):
                tree.body += ast.parse(line.split("(")[0] + "x").body
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if not everywhere:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.Try) and fallback_for and _stands_in(node, fallback_for):
                todo.extend(node.body + node.orelse + node.finalbody)  # the `except ImportError` never runs
                continue
            if isinstance(node, ast.If):
                test = ast.unparse(node.test).replace("'", '"')
                if test in ('__name__ == "__main__"', 'sys.platform == "win32"', "TYPE_CHECKING", "typing.TYPE_CHECKING"):
                    todo.extend(node.orelse)
                    continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        todo.extend(ast.iter_child_nodes(node))
    for name in list(found):
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found


def missing_modules(trimmed: set[str], builtins: set[str]) -> list[str]:
    """Stdlib modules the runtime needs that `trimmed` (module names) lacks:
    every import in the runtime's sources, then what those stdlib modules
    import when they are imported, read from Pyodide's own stdlib sources."""
    with zipfile.ZipFile(PYODIDE_STDLIB) as z:
        sources = {}
        for name in z.namelist():
            if name.endswith("/__init__.py"):
                sources[name[: -len("/__init__.py")].replace("/", ".")] = (name, True)
            elif name.endswith(".py"):
                sources[name[:-3].replace("/", ".")] = (name, False)
        todo = []
        for path in sorted((ROOT / "widget").rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            todo += sorted(_import_names(path.read_text(encoding="utf-8"), module, rel.name == "__init__", True))
        seen, missing = set(), []
        while todo:
            module = todo.pop()
            if module in seen or module.split(".")[0] in ("widget", "__future__"):
                continue
            seen.add(module)
            if module in builtins:
                continue
            if module not in sources:
                continue  # not a stdlib module (e.g. `from x import a_function`)
            if module not in trimmed:
                missing.append(module)
                continue
            entry, is_package = sources[module]
            todo += sorted(_import_names(z.read(entry).decode("utf-8"), module, is_package, False, builtins))
    return sorted(missing)


def _zip_modules(data: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n[:-4].replace("/", ".").removesuffix(".__init__") for n in z.namelist() if n.endswith(".pyc")}


def test_trimmed_stdlib_has_every_module_the_runtime_needs(built, build_module):
    out, manifest = built
    stdlib = (out / manifest["stdlib_zip"]).read_bytes()
    modules = _zip_modules(stdlib)
    compiled = json.loads((build_module["compile_for_pyodide"](build_module["runtime_archive"]()) / "manifest.json").read_text())
    builtins = set(compiled["builtin_modules"])
    assert missing_modules(modules, builtins) == []
    assert not manifest["runtime_import_errors"], manifest["runtime_import_errors"]
    # Trimmed: far fewer modules than Pyodide's full stdlib.
    with zipfile.ZipFile(PYODIDE_STDLIB) as z:
        full = sum(1 for n in z.namelist() if n.endswith(".py"))
    assert 100 < len(modules) < full / 2, (len(modules), full)


def test_the_check_notices_a_missing_module(built, build_module):
    out, manifest = built
    modules = _zip_modules((out / manifest["stdlib_zip"]).read_bytes())
    compiled = json.loads((build_module["compile_for_pyodide"](build_module["runtime_archive"]()) / "manifest.json").read_text())
    builtins = set(compiled["builtin_modules"])
    # urllib.parse is imported by widget/runtime/urls.py; dataclasses by
    # bundle.py, and dataclasses imports inspect when it is imported.
    assert "urllib.parse" in missing_modules(modules - {"urllib.parse"}, builtins)
    assert "inspect" in missing_modules(modules - {"inspect"}, builtins)


def test_pyc_files_are_made_for_pyodides_interpreter(built, build_module):
    out, manifest = built
    with zipfile.ZipFile(out / manifest["stdlib_zip"]) as z:
        names = z.namelist()
        assert names and all(n.endswith(".pyc") for n in names), "sourceless .pyc only"
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist()), "stored: brotli compresses the file"
        headers = {z.read(n)[:8] for n in names}
    magics = {h[:4] for h in headers}
    assert len(magics) == 1
    # Not this CPython's bytecode: Pyodide's (3.14), which is what imports it.
    assert magics != {__import__("importlib.util").util.MAGIC_NUMBER} or sys.version_info[:2] == (3, 14)
    assert manifest["python"].startswith("3.14")
    # Unchecked-hash pycs: nothing is stat'ed or re-hashed at import.
    assert {int.from_bytes(h[4:8], "little") for h in headers} == {0b01}
    # The runtime: sourceless .pyc where each .py would be (nothing else).
    with tarfile.open(out / manifest["runtime_archive"]) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "widget").rglob("*.py") if "__pycache__" not in p.parts}
    assert set(files) == {s[:-3] + ".pyc" for s in sources - build_module["DEV_TOOLS"]}
    assert {data[:4] for data in files.values()} == magics


def test_names_are_content_hashes_and_only_the_loader_is_unhashed(built):
    out, manifest = built
    served = manifest["served"]
    assert served["loader.js"] == "loader.js"
    for plain, name in served.items():
        if plain == "loader.js":
            continue
        data = (out / name).read_bytes()
        assert name == re.sub(r"\.", f"-{hashlib.sha256(data).hexdigest()[:12]}.", plain, count=1), name
    for name in (manifest["stdlib_zip"], manifest["runtime_archive"]):
        stem = name.split("-")[1].split(".")[0]
        assert hashlib.sha256((out / name).read_bytes()).hexdigest()[:12] == stem
    # Each module imports its siblings by their hashed names.
    loader = (out / "loader.js").read_text()
    assert f'"{served["shell.mjs"]}"' in loader and '"shell.mjs"' not in loader
    python = (out / served["python.mjs"]).read_text()
    assert manifest["stdlib_zip"] in python and manifest["runtime_archive"] in python and "__STDLIB_ZIP__" not in python
    host = (out / served["host.mjs"]).read_text()
    assert f'"./{served["python.mjs"]}"' in host and '"./python.mjs"' not in host
    worker = (out / served["worker.mjs"]).read_text()
    assert served["host.mjs"] in worker


def test_compressed_siblings_decompress_to_their_file(built):
    out, manifest = built
    checked = 0
    for name in [manifest["stdlib_zip"], manifest["runtime_archive"], "loader.js", f"{manifest['pyodide_dir']}/pyodide.asm.mjs"]:
        data = (out / name).read_bytes()
        assert brotli.decompress((out / f"{name}.br").read_bytes()) == data
        assert gzip.decompress((out / f"{name}.gz").read_bytes()) == data
        checked += 1
    assert checked == 4
    wasm = manifest["sizes"][f"{manifest['pyodide_dir']}/pyodide.asm.wasm"]
    assert wasm["br"] < wasm["raw"] / 3


def test_a_cached_rebuild_is_fast(build_module, built, tmp_path):
    started = time.monotonic()
    build_module["build"](tmp_path / "again")
    assert time.monotonic() - started < 10


def test_plain_build_is_the_unoptimised_baseline(build_module, tmp_path):
    manifest = build_module["build"](tmp_path / "plain", plain=True, compress=False)
    assert manifest["snapshot"] == "off" and not manifest["precompiled"]
    assert (tmp_path / "plain" / manifest["stdlib_zip"]).read_bytes() == PYODIDE_STDLIB.read_bytes()

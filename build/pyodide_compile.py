"""Runs inside Pyodide (under Node), started by build/pyodide_compile.mjs.

1. Finds the standard-library modules the runtime can need: everything
   Pyodide imported to start, everything importing each runtime module
   imported (the archive is unpacked by JavaScript: widget/engine/untar.mjs),
   and the static closure of all of
   that (every `import` statement anywhere in those modules, including ones
   inside functions and `try` blocks), resolved against Pyodide's own stdlib.
   An `except ImportError` branch is left out when the imports it stands in
   for succeed here (`try: from _datetime import *` / `except ImportError:
   from _pydatetime import *`: Pyodide has `_datetime`).
2. Compiles them with this interpreter into sourceless .pyc files
   (unchecked-hash, so nothing is stat'ed or re-hashed at import), in a zip
   whose entries are stored (not deflated): the HTTP layer compresses the
   whole file with brotli, which compresses better across files and costs no
   inflate at import time. Their location tables keep the line numbers but
   not the columns (`lines_only`: a traceback still names every line; a
   third less to download).
3. Compiles the runtime's sources into sourceless .pyc files in their place
   (`widget/runtime/engine.pyc`: the archive carries no source), -OO (the
   build refuses an `assert` in the runtime: -OO would drop it) with
   line-only location tables.
4. Writes manifest.json: what was kept and why, for tools and tests.

The JOB global is a JSON string (see build/build.py `_compile_job`).
"""

import ast
import importlib.util
import json
import os
import sys
import types
import zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

job = json.loads(JOB)  # noqa: F821 - set by pyodide_compile.mjs
OUT = "/job/out"
RUNTIME = "/job/runtime"
STDLIB = f"/lib/python{sys.version_info[0]}{sys.version_info[1]}.zip"
stdlib = zipfile.ZipFile(STDLIB)
names = set(stdlib.namelist())
FIXED_DATE = (2020, 1, 1, 0, 0, 0)


def stdlib_entry(module):
    path = module.replace(".", "/")
    for candidate in (path + ".py", path + "/__init__.py"):
        if candidate in names:
            return candidate
    return None


def _never_here(test):
    """`if __name__ == "__main__"`, `if sys.platform == "win32"`,
    `if TYPE_CHECKING`: bodies that never run when Pyodide imports a module."""
    text = ast.unparse(test).replace("'", '"')
    return text in ('__name__ == "__main__"', 'sys.platform == "win32"', "TYPE_CHECKING", "typing.TYPE_CHECKING")


def _from_module(node, package):
    """The module a `from X import …` (relative or absolute) imports from."""
    if not node.level:
        return node.module
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _only_import_errors(handler):
    """The handler catches ImportError / ModuleNotFoundError and nothing else."""
    if handler.type is None:
        return False
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return all(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


def _shipped(module):
    """Built into Pyodide, or a stdlib module the zip can carry (not a file
    that only this build's sys.path has)."""
    return module in sys.builtin_module_names or stdlib_entry(module) is not None


def _fallback_never_runs(node, package):
    """A `try:` of import statements only, whose every handler catches only
    ImportError, and whose imports all succeed in this interpreter (the same
    Pyodide build that imports the module in the browser) from modules the
    browser has: its handlers are a fallback that never runs there."""
    if not node.body or not all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in node.body):
        return False
    if not node.handlers or not all(_only_import_errors(h) for h in node.handlers):
        return False
    for statement in node.body:
        if isinstance(statement, ast.Import):
            targets = [(alias.name, None) for alias in statement.names]
        else:
            module = _from_module(statement, package)
            targets = [(module, alias.name) for alias in statement.names]
        for module, name in targets:
            if not module or not _shipped(module):
                return False
            try:
                imported = importlib.import_module(module)
            except Exception:
                return False
            if name in (None, "*") or hasattr(imported, name):
                continue
            if not _shipped(f"{module}.{name}"):
                return False
            try:
                importlib.import_module(f"{module}.{name}")
            except Exception:
                return False
    return True


def _walk(tree, everywhere, package=""):
    """ast.walk, or only what runs at import time (not function bodies, not
    an `except ImportError` fallback whose `try` imports succeed here)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if not everywhere:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.If) and _never_here(node.test):
                todo.extend(node.orelse)
                continue
            if isinstance(node, ast.Try) and _fallback_never_runs(node, package):
                todo.extend(node.body + node.orelse + node.finalbody)
                continue
        todo.extend(ast.iter_child_nodes(node))


def _varint(n):
    out = bytearray()
    while n >= 64:
        out.append(0x40 | (n & 0x3F))
        n >>= 6
    out.append(n)
    return out


def lines_only(code):
    """`code` (and the code objects in it) with a location table that keeps
    each instruction's line but no columns or end lines (CPython's
    Objects/locations.md: entry kind 13 "no column info", 15 "no location").
    `co_lines()` is unchanged, so tracebacks and warnings name the same
    lines; only the ^^^ markers under a traceback's line go."""
    table = bytearray()
    previous = code.co_firstlineno
    for start, end, line in code.co_lines():
        units = (end - start) // 2
        while units > 0:
            n = min(units, 8)
            if line is None:
                table.append(0x80 | (15 << 3) | (n - 1))
            else:
                delta = line - previous
                table.append(0x80 | (13 << 3) | (n - 1))
                table += _varint((-delta << 1) | 1 if delta < 0 else delta << 1)
                previous = line
            units -= n
    consts = tuple(lines_only(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_linetable=bytes(table), co_consts=consts)


def _compiled_pyc(source, filename, optimize):
    code = compile(source, filename, "exec", dont_inherit=True, optimize=optimize)
    slim = lines_only(code)
    if list(_all_lines(slim)) != list(_all_lines(code)):
        raise SystemExit(f"{filename}: the line-only location table changed the line numbers")
    return bytes(_code_to_hash_pyc(slim, importlib.util.source_hash(source), checked=False))


def _all_lines(code):
    yield code.co_name, list(code.co_lines())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _all_lines(const)


def imports_of(source, module, is_package, everywhere):
    """Module names import statements in `source` may load: all of them
    (`everywhere`), or those that run when the module is imported."""
    found = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    package = module if is_package else module.rpartition(".")[0]
    for node in _walk(tree, everywhere, package):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _from_module(node, package)
            if not target:
                continue
            found.add(target)
            for alias in node.names:
                found.add(f"{target}.{alias.name}")
    # Every package on the way is imported too.
    for name in list(found):
        parts = name.split(".")
        for i in range(1, len(parts)):
            found.add(".".join(parts[:i]))
    return found


# 1a. Runtime modules: import each one (records what they import at module level).
sys.path.insert(0, RUNTIME)
runtime_modules = {}
import_errors = {}
for dirpath, dirnames, filenames in os.walk(RUNTIME):
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
    for filename in sorted(filenames):
        if not filename.endswith(".py"):
            continue
        rel = os.path.relpath(os.path.join(dirpath, filename), RUNTIME)
        module = rel[:-3].replace("/", ".")
        is_package = module.endswith(".__init__")
        if is_package:
            module = module[: -len(".__init__")]
        runtime_modules[module] = (rel, is_package)
for module in sorted(runtime_modules):
    try:
        importlib.import_module(module)
    except Exception as exc:  # reported; the static closure still covers it
        import_errors[module] = f"{type(exc).__name__}: {exc}"

# Every stdlib module a runtime module imports anywhere (even in a function
# that only runs later), imported here once, so that what *those* import when
# they run (e.g. zoneinfo -> sysconfig -> _sysconfigdata_*, by computed name)
# is recorded too.
for module, (rel, is_package) in sorted(runtime_modules.items()):
    with open(os.path.join(RUNTIME, rel), "rb") as f:
        for dep in sorted(imports_of(f.read(), module, is_package, everywhere=True)):
            if dep.split(".")[0] in runtime_modules or dep in sys.modules or stdlib_entry(dep) is None:
                continue
            try:
                importlib.import_module(dep)
            except Exception:  # e.g. a Windows-only module: the static closure decides
                pass

startup = set(job["startup_modules"])
dynamic = set(sys.modules)

# 1b. The static closure, over the stdlib zip's sources: every import in the
# runtime's own modules (even inside functions), and what runs at import time
# in the stdlib modules (a stdlib function's lazy import is only kept when the
# runtime or start-up imported it, or EXTRA_MODULES in build.py names it).
wanted = {}  # module -> why
queue = []


def want(module, why):
    if module in wanted or module in runtime_modules:
        return
    if stdlib_entry(module) is None:
        return
    wanted[module] = why
    queue.append(module)


for module in sorted(startup):
    want(module, "pyodide start-up")
for module in sorted(dynamic - startup):
    want(module, "imported by the runtime")
for module in sorted(job.get("extra_modules", [])):
    want(module, "build.py EXTRA_MODULES")
for module, (rel, is_package) in sorted(runtime_modules.items()):
    with open(os.path.join(RUNTIME, rel), "rb") as f:
        for dep in sorted(imports_of(f.read(), module, is_package, everywhere=True)):
            want(dep, f"imported by {module}")
while queue:
    module = queue.pop()
    entry = stdlib_entry(module)
    for dep in sorted(imports_of(stdlib.read(entry), module, entry.endswith("/__init__.py"), everywhere=False)):
        want(dep, f"imported by {module}")

# 2. The precompiled, trimmed stdlib.
optimize = int(job.get("optimize", 0))
zip_path = os.path.join(OUT, "stdlib.zip")
kept = {}
with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as out:
    for module in sorted(wanted, key=stdlib_entry):
        entry = stdlib_entry(module)
        data = _compiled_pyc(stdlib.read(entry), f"{STDLIB}/{entry}", optimize)
        info = zipfile.ZipInfo(entry[:-3] + ".pyc", date_time=FIXED_DATE)
        info.external_attr = 0o644 << 16
        out.writestr(info, bytes(data))
        kept[module] = {"entry": entry[:-3] + ".pyc", "why": wanted[module]}
    # Data files Pyodide's stdlib ships beside its modules (none are needed
    # by the runtime; listed so a future need shows up in the manifest).
    skipped_data = sorted(n for n in names if not n.endswith((".py", "/")))

# 3. The runtime, precompiled in place of its sources (sourceless: Python
# imports widget/runtime/engine.pyc where no engine.py is). -OO drops
# docstrings and asserts: the runtime keeps no assert (its checks raise).
tag = sys.implementation.cache_tag
runtime_pycs = []
for module, (rel, is_package) in sorted(runtime_modules.items()):
    with open(os.path.join(RUNTIME, rel), "rb") as f:
        source = f.read()
    asserts = [n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Assert)]
    if asserts:
        raise SystemExit(f"{rel}: assert on line(s) {asserts}: the runtime is compiled -OO, which drops it; raise instead")
    pyc_rel = rel[:-3] + ".pyc"
    target = os.path.join(OUT, "runtime", pyc_rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        f.write(_compiled_pyc(source, f"{job['runtime_prefix']}/{rel}", 2))
    runtime_pycs.append(pyc_rel)

# 4. What was built.
manifest = {
    "python": sys.version.split()[0],
    "cache_tag": tag,
    "stdlib_path": STDLIB,
    "optimize": optimize,
    "builtin_modules": sorted(sys.builtin_module_names),
    "startup_modules": sorted(startup),
    "runtime_modules": sorted(runtime_modules),
    "runtime_import_errors": import_errors,
    "runtime_pycs": runtime_pycs,
    "stdlib_modules": kept,
    "stdlib_available": sorted(n for n in names if n.endswith(".py")),
    "stdlib_data_files_skipped": skipped_data,
}
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
print(f"compiled {len(kept)} stdlib modules and {len(runtime_pycs)} runtime modules with Python {manifest['python']}")

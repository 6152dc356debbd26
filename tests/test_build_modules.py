"""The build's module graph: widget/'s browser modules live in folders by
flow (shell/, signals/, engine/, decisions/, render/, bundle/, endpoint/,
qa/) and are served flat beside loader.js under content-hashed names; every
reference between them is rewritten to the served name of its target."""

from __future__ import annotations

import hashlib
import json
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def write_js():
    return runpy.run_path(str(ROOT / "build" / "build.py"))["write_js"]


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def build_tree(write_js, monkeypatch, tmp_path, files, minify=False):
    monkeypatch.setitem(write_js.__globals__, "WIDGET", tree(tmp_path / "widget", files))
    out = tmp_path / "out"
    out.mkdir()
    return out, write_js(out, {"__X__": "filled"}, minify=minify)


def test_folders_are_served_flat_with_every_reference_rewritten(write_js, monkeypatch, tmp_path):
    out, served = build_tree(write_js, monkeypatch, tmp_path, {
        "loader.js": 'import(new URL("shell/shell.mjs", src).href); // not "widget/shell.mjs"',
        "shell/shell.mjs": 'import { a } from "../render/render.mjs";\nimport { b } from "./api.mjs";\nconst w = new URL("../engine/worker.mjs", import.meta.url);',
        "shell/api.mjs": 'export const b = "__X__";',
        "render/render.mjs": 'export const a = 1;',
        "engine/worker.mjs": 'import "./host.mjs";',
        "engine/host.mjs": 'export {};',
        "runtime/ignored.js": 'not a browser module',
    })
    assert sorted(served) == ["api.mjs", "host.mjs", "loader.js", "render.mjs", "shell.mjs", "worker.mjs"]
    shell = (out / served["shell.mjs"]).read_text()
    assert f'from "./{served["render.mjs"]}"' in shell and f'from "./{served["api.mjs"]}"' in shell
    assert f'new URL("./{served["worker.mjs"]}", import.meta.url)' in shell
    assert "../" not in shell
    assert f'new URL("{served["shell.mjs"]}", src)' in (out / "loader.js").read_text()
    assert '"widget/shell.mjs"' in (out / "loader.js").read_text()  # not a module of this tree: left alone
    assert (out / served["api.mjs"]).read_text() == 'export const b = "filled";'
    for plain, name in served.items():
        data = (out / name).read_bytes()
        if plain != "loader.js":
            assert name == re.sub(r"\.", f"-{hashlib.sha256(data).hexdigest()[:12]}.", plain, count=1)
            assert (out / plain).read_bytes() == data
    # A changed dependency changes the name of every module that imports it.
    before = dict(served)
    (tmp_path / "widget" / "engine" / "host.mjs").write_text("export const changed = 1;")
    for path in out.iterdir():
        path.unlink()
    served = write_js(out, {}, minify=False)
    assert served["host.mjs"] != before["host.mjs"] and served["worker.mjs"] != before["worker.mjs"]
    assert served["shell.mjs"] != before["shell.mjs"] and served["render.mjs"] == before["render.mjs"]


def test_two_modules_may_not_share_a_served_name(write_js, monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match=r"widget/(a|b)/x\.mjs and widget/(a|b)/x\.mjs would both be served as x\.mjs"):
        build_tree(write_js, monkeypatch, tmp_path, {"a/x.mjs": "", "b/x.mjs": ""})


def test_circular_imports_are_refused(write_js, monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match="circular imports"):
        build_tree(write_js, monkeypatch, tmp_path, {
            "a/x.mjs": 'import "../b/y.mjs";', "b/y.mjs": 'import "../a/x.mjs";',
        })


def test_the_real_widget_references_only_served_modules(write_js, tmp_path):
    served = write_js(tmp_path, {})
    names = set(served.values())
    for name in names:
        text = (tmp_path / name).read_text()
        assert not re.search(r"""["'`]\.\./""", text), name
        for ref in re.findall(r"""["'`]\./([A-Za-z0-9_.-]+\.m?js)["'`]""", text):
            assert ref in names, (name, ref)
    # One home per concept: the shell's pieces are separate modules.
    for module in ("shell.mjs", "clock.mjs", "record.mjs", "api.mjs", "config.mjs", "reactions.mjs",
                   "conversation.mjs", "cards.mjs", "panel.mjs", "cache.mjs", "fetch.mjs", "verify.mjs"):
        assert module in served, module


def test_the_shell_is_small_modules_of_small_functions():
    """No module-level function over 150 lines (a closure holding the whole
    shell is what the split removed), no ownership fences, and the endpoint
    module imported from one place."""
    widget = ROOT / "widget"
    sources = {p: p.read_text() for p in widget.rglob("*.mjs")}
    for path, text in sources.items():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if re.match(r"(export )?(async )?function \w+", line):
                end = next(j for j in range(i + 1, len(lines)) if lines[j] == "}")
                assert end - i <= 150, f"{path.relative_to(ROOT)}:{i + 1} is {end - i} lines"
        assert "--- owner" not in text and "--- end of" not in text, path
    importers = [p.name for p, text in sources.items() if re.search(r"""["']\.\./endpoint/endpoint\.mjs["']""", text)]
    assert importers == ["conversation.mjs"]


def test_constants_are_generated_and_cannot_be_hand_written(write_js, monkeypatch, tmp_path):
    files = {"runtime/constants.py": 'SHARED = {"GAP": 5, "NAMES": ("a", "b")}\n',
             "shell/x.mjs": 'import { GAP } from "../constants.mjs";'}
    out, served = build_tree(write_js, monkeypatch, tmp_path, files)
    assert (out / served["constants.mjs"]).read_text().endswith(
        'export const GAP = 5;\nexport const NAMES = Object.freeze(["a", "b"]);\n')
    assert f'"./{served["constants.mjs"]}"' in (out / served["x.mjs"]).read_text()
    with pytest.raises(SystemExit, match="would both be served as constants.mjs"):
        build_tree(write_js, monkeypatch, tmp_path / "again", {**files, "constants.mjs": "export const GAP = 6;"})


def test_minified_modules_keep_their_references_strings_and_the_loaders_globals(write_js, monkeypatch, tmp_path):
    """The build serves modules minified (esbuild): names are the hashes of
    the minified text, references still point at the hashed names, strings
    and `/*! */` comments stay, and the loader (a classic script) keeps its
    top-level names."""
    out, served = build_tree(write_js, monkeypatch, tmp_path, {
        "loader.js": '/*! the loader */\nvar keepMe = 1;\n// a comment that goes\nimport(new URL("shell/shell.mjs", document.baseURI).href);',
        "shell/shell.mjs": '// what this module is\nimport { longName } from "../render/render.mjs";\n'
                           'export function start(someArgument) {\n  const localValue = longName + someArgument;\n  return `${localValue} "__X__"`;\n}\n',
        "render/render.mjs": 'export const longName = "a string that stays";\n',
    }, minify=True)
    shell = (out / served["shell.mjs"]).read_text()
    assert f'"./{served["render.mjs"]}"' in shell and "what this module is" not in shell and "localValue" not in shell
    assert "export{" in shell.replace(" ", "") and "start" in shell and '"filled"' in shell
    assert "a string that stays" in (out / served["render.mjs"]).read_text()
    loader = (out / "loader.js").read_text()
    assert loader.startswith("/*! the loader */") and "keepMe" in loader and "a comment that goes" not in loader
    assert f'"{served["shell.mjs"]}"' in loader
    for plain, name in served.items():
        if plain != "loader.js":
            assert name == re.sub(r"\.", f"-{hashlib.sha256((out / name).read_bytes()).hexdigest()[:12]}.", plain, count=1)


def test_the_loader_lists_the_shells_static_graph_for_side_by_side_imports(write_js, monkeypatch, tmp_path):
    """`"__SHELL_GRAPH__"` in the loader becomes the served names of the shell
    and every module it imports statically (not what it loads on demand,
    not the worker's), so the loader imports them in one round trip."""
    out, served = build_tree(write_js, monkeypatch, tmp_path, {
        "loader.js": 'var graph = JSON.parse("__SHELL_GRAPH__"); import(new URL("shell/shell.mjs", src).href);',
        "shell/shell.mjs": 'import {\n  a,\n} from "../render/render.mjs";\nexport { b } from "./api.mjs";\n'
                           'const later = () => import("../qa/debug.mjs");\nconst w = new URL("../engine/worker.mjs", import.meta.url);',
        "shell/api.mjs": 'import "./warn.mjs";\nexport const b = 1;',
        "shell/warn.mjs": "export {};",
        "render/render.mjs": "export const a = 1;",
        "qa/debug.mjs": "export {};",
        "engine/worker.mjs": "export {};",
    })
    loader = (out / "loader.js").read_text()
    listed = json.loads(json.loads(loader[loader.index("JSON.parse(") + len("JSON.parse("):loader.index(");")]))
    assert sorted(listed) == sorted(served[n] for n in ("shell.mjs", "render.mjs", "api.mjs", "warn.mjs"))
    assert served["debug.mjs"] not in listed and served["worker.mjs"] not in listed

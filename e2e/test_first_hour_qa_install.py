"""A QA engineer's first hour: docs/qa.md's install, as documented, works.

`make wheel` builds the package; a fresh virtual environment, outside the
repository, installs that wheel with pip (no package index: every dependency
must already be declared and present) and runs docs/qa.md's example suite and
its conftest.py, copied from the page as is, against another site ("shop",
e2e/test_qa_any_site.py).

The third-party dependencies are taken from this project's environment
through a `.pth` file rather than downloaded again, so the test stays offline
and takes seconds. Only what the wheel declares (its Requires-Dist, followed
transitively) and pytest-playwright (docs/qa.md installs it beside) is on that
path, as a fresh environment downloading them would have: a module the package
imports but does not declare fails here as it would for a QA engineer. The
project itself is not on it, so only the wheel can provide it.
"""

from __future__ import annotations

import email.parser
import re
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path, PurePath

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from conftest import CHROMIUM, CHROMIUM_FLAGS, ROOT
from test_qa_any_site import doc_example, shop  # noqa: F401 - the shop fixture

# docs/qa.md installs it beside the wheel.
BESIDE = ["pytest-playwright"]


@pytest.fixture(scope="module")
def wheel() -> Path:
    run = subprocess.run(["make", "--no-print-directory", "wheel"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    wheels = sorted((ROOT / "dist").glob("proactive_chat-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def declared_requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist, as a fresh environment's pip reads them."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(z.read(name).decode()).get_all("Requires-Dist") or []


def installed_closure(requirements: list[str]) -> list[metadata.Distribution]:
    """The distributions of this environment that pip would install for
    `requirements`: each one's own requirements followed, with the extras
    asked for (psycopg[binary,pool]) and the markers of this Python."""
    todo = [(Requirement(r), frozenset({""})) for r in requirements]
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        key = canonicalize_name(req.name)
        if key in seen:
            continue
        seen[key] = dist = metadata.distribution(req.name)
        todo += [(Requirement(r), frozenset({"", *req.extras})) for r in dist.requires or []]
    return list(seen.values())


def declared_dependencies(wheel: Path, into: Path) -> Path:
    """A folder of links to the files of the wheel's dependencies installed in
    this environment (and nothing else: not the project, not the test tools)."""
    into.mkdir()
    for dist in installed_closure(declared_requirements(wheel) + BESIDE):
        assert dist.files, f"{dist.metadata['Name']} lists no files"
        for top in {PurePath(f).parts[0] for f in dist.files}:
            if top not in ("..", "__pycache__") and not top.endswith(".pth") and not (into / top).exists():
                (into / top).symlink_to(Path(dist.locate_file(top)))
    return into


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("qa-engineer")
    env = home / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = declared_dependencies(wheel, home / "deps")
    Path(purelib, "qa_test_dependencies.pth").write_text(f"{deps}\n")
    # docs/qa.md: `pip install proactive-chat pytest-playwright`, with the wheel for the package name.
    run = subprocess.run([python, "-m", "pip", "install", "--no-index", "--quiet", str(wheel), "pytest-playwright"],
                         cwd=home, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return env


def test_the_built_wheel_installs_and_runs_the_docs_example_suite(fresh_env, shop, tmp_path):  # noqa: F811
    python = fresh_env / "bin" / "python"
    where = subprocess.run([python, "-c", "import proactive.pytest_plugin as p; print(p.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(fresh_env)), f"the plugin came from {where}, not from the installed wheel"

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_auto_messages.py").write_text(doc_example("tests/test_auto_messages.py"))
    conftest = doc_example("conftest.py")
    assert '"executable_path": "/usr/bin/chromium"' in conftest
    # This machine's Chromium and its flags (containers need --no-sandbox).
    (tmp_path / "conftest.py").write_text(conftest.replace('"/usr/bin/chromium"', f"{CHROMIUM!r}, 'args': {CHROMIUM_FLAGS!r}"))
    run = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_auto_messages.py",
                          "--base-url", shop.origin], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and re.search(r"\b8 passed\b", out.strip().splitlines()[-1]), out


def test_the_proactive_command_of_the_wheel_validates_a_messages_file(fresh_env, tmp_path):
    (tmp_path / "messages.yaml").write_text(doc_example("messages.yaml"))
    run = subprocess.run([fresh_env / "bin" / "proactive", "validate", "messages.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "messages.yaml: ok (5 messages)" in run.stderr, run.stdout + run.stderr
    assert sys.executable not in run.stderr

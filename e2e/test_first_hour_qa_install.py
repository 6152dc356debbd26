"""A QA engineer's first hour: docs/qa.md's install, as documented, works.

`make wheel` builds the package; a fresh virtual environment, outside the
repository, installs that wheel with pip (no package index: every dependency
must already be declared and present) and runs docs/qa.md's example suite and
its conftest.py, copied from the page as is, against another site ("shop",
e2e/test_qa_any_site.py).

The third-party dependencies (pytest-playwright, cryptography, …) are taken
from this project's environment through a `.pth` file rather than downloaded
again, so the test stays offline and takes seconds; the project itself is left
out of that path, so only the wheel can provide it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_FLAGS, ROOT
from test_qa_any_site import doc_example, shop  # noqa: F401 - the shop fixture

OWN_DISTRIBUTION = re.compile(r"^(proactive|widget|server_stub|__editable__.*proactive|_?proactive_chat)", re.I)


@pytest.fixture(scope="module")
def wheel() -> Path:
    run = subprocess.run(["make", "--no-print-directory", "wheel"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    wheels = sorted((ROOT / "dist").glob("proactive_chat-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def dependencies_without_the_project(into: Path) -> Path:
    """A folder of links to this environment's installed packages, minus the project's own."""
    into.mkdir()
    site_packages = Path(sysconfig.get_paths()["purelib"])
    for entry in site_packages.iterdir():
        if not OWN_DISTRIBUTION.match(entry.name) and not entry.name.endswith(".pth"):
            (into / entry.name).symlink_to(entry)
    return into


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("qa-engineer")
    env = home / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = dependencies_without_the_project(home / "deps")
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

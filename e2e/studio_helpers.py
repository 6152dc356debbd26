"""The studio under test: `proactive studio` started as a site owner starts
it (the real CLI, a real port), and a browser page on it that fails the test
on any page error or console error."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from proactive import signing

ROOT = Path(__file__).resolve().parents[1]


def make_key(folder: Path) -> tuple[Path, str]:
    """A key file and its data-key."""
    key = signing.generate_private_key()
    path = folder / "site.key"
    signing.write_private_key(key, path)
    return path, signing.public_key_spec(key)


@contextmanager
def studio(messages: Path, key: Path, bundle: Path, *extra: str):
    """Run `proactive studio` (with `extra` arguments); yield its printed URL (with the token)."""
    proc = subprocess.Popen([sys.executable, "-m", "proactive.cli", "studio", str(messages), "--key", str(key),
                             "--bundle", str(bundle), "--port", "0", *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]+/)", line)
        if not match:
            proc.kill()
            raise AssertionError(f"studio did not start: {line!r} {proc.stderr.read()!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


class StudioPage:
    """A page on the studio that records page and console errors."""

    def __init__(self, browser, url: str, viewport=(1280, 800), python: bool = True):
        """`python=False`: open the page with #server (no Pyodide in the page,
        the studio server checks with the same functions): for tests of the
        forms and the file, which do not need the page's Python."""
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        self.page.goto(url if python else url + "#server")
        self.page.get_by_role("status").filter(has_text=re.compile("Ready|cannot be read")).wait_for()

    def wait_python(self, timeout: float = 90_000) -> None:
        """Until the project's Python runs in the page (PyScript on Pyodide)."""
        self.page.locator("body[data-python=page]").wait_for(state="attached", timeout=timeout)

    def close(self):
        if self.context is None:
            return
        self.context.close()
        self.context = None
        assert not self.errors, self.errors


def unlabeled_controls(page) -> list[str]:
    """Every input, select, textarea and button without a visible label:
    a <label> for it, aria-labelledby pointing at visible text, or (a
    button) its own visible text."""
    return page.evaluate("""() => {
      const visibleText = (el) => el && el.offsetParent !== null && el.textContent.trim() !== '';
      const out = [];
      for (const el of document.querySelectorAll('input, select, textarea, button')) {
        if (el.offsetParent === null) continue;   // not shown
        let ok = false;
        if (el.tagName === 'BUTTON') ok = visibleText(el);
        else ok = [...(el.labels || [])].some(visibleText);
        const by = el.getAttribute('aria-labelledby');
        if (!ok && by) ok = by.split(' ').some((id) => visibleText(document.getElementById(id)));
        if (!ok) out.push(el.outerHTML.slice(0, 120));
      }
      return out;
    }""")


@contextmanager
def opened(browser, folder: Path, text: str | None = None, *extra: str, viewport=(1280, 800), python: bool = False):
    """`proactive studio` on FOLDER/messages.yaml (written with `text` unless
    None), publishing to FOLDER/bundle.json, and a page on it (`python`:
    wait for nothing, but load the page's Python; default #server). Yields
    the StudioPage, with `.bundle` and `.data_key`; closed (and checked for
    errors) at the end."""
    messages = folder / "messages.yaml"
    if text is not None:
        messages.write_text(text)
    if (folder / "site.key").exists():   # a second studio in the same test: the same key
        key, data_key = folder / "site.key", signing.public_key_spec(signing.load_private_key(folder / "site.key"))
    else:
        key, data_key = make_key(folder)
    with studio(messages, key, folder / "bundle.json", *extra) as url:
        s = StudioPage(browser, url, viewport, python=python)
        s.bundle, s.data_key, s.key = folder / "bundle.json", data_key, key
        yield s
        s.close()

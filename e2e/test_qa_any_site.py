"""The QA kit works on any site that embeds the widget, not only our harness.

"shop" is a second, different deployment: its own site origin with its own
pages, scripts, hostile CSS and a strict Content-Security-Policy, its own
widget origin (endpoint started with the test geo override, CORS allowing only
the shop), its own signing key and bundle. Against it run
- the complete example suite of docs/qa.md, copied from the page as is, in a
  separate pytest process with `--base-url` (how a site's QA team runs it);
- the kit under our page guard, with the debug view under the shop's CSP.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CHROMIUM, CHROMIUM_FLAGS, ROOT, _Server

from proactive import publishing, signing
from server_stub.app import create_site_app, create_widget_app, script_tag

DOC = ROOT / "docs" / "qa.md"

HOSTILE_CSS = """* { all: unset; } html, body, div, section, p, a, nav, h1 { display: block; }
button { font-size: 40px !important; } table, tr, td { display: block !important; color: red !important; }"""

SITE_JS = """// The shop's own script: the widget's queue stub, then a listener.
window.proactive = window.proactive || function () { (proactive.q = proactive.q || []).push(arguments); };
proactive("on", "shown", function (e) { document.body.dataset.lastShown = e.message; });
"""

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop — {title}</title>
<link rel="stylesheet" href="/shop.css"><script src="/shop.js"></script>
{{{{PROACTIVE_TAG}}}}</head>
<body><nav><a href="/">Home</a> <a href="/pricing">Pricing</a> <a href="/cart">Cart</a></nav>
<main><h1>{title}</h1><p>{text}</p></main></body></html>"""


def doc_example(name: str) -> str:
    """A code block of docs/qa.md, marked `<!-- example: NAME -->`."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w+\n(.*?)\n```", text, re.S)
    assert match, f"docs/qa.md has no example {name}"
    return match.group(1) + "\n"


class Shop:
    def __init__(self, static: Path, tmp: Path):
        pages, bundles = tmp / "pages", tmp / "bundles"
        pages.mkdir()
        bundles.mkdir()
        self.site = _Server(create_site_app(pages, ""), "localhost")
        self.origin = f"http://localhost:{self.site.port}"
        self.widget = _Server(create_widget_app(static, bundles, allowed_origins=[self.origin],
                                                db_path=tmp / "shop.db", test_geo=True), "127.0.0.1")
        self.widget_origin = f"http://127.0.0.1:{self.widget.port}"
        key = signing.generate_private_key()
        messages = yaml.safe_load(doc_example("messages.yaml"))
        payload = publishing.build_payload(messages, version=1)
        (bundles / "shop.json").write_bytes(signing.sign_payload(payload, [key]))
        tag = script_tag(self.widget_origin, f"{self.widget_origin}/bundles/shop.json", signing.public_key_spec(key))
        csp = (f"default-src 'self'; script-src 'self' {self.widget_origin} 'wasm-unsafe-eval'; "
               f"worker-src blob: {self.widget_origin}; connect-src 'self' {self.widget_origin}; "
               "style-src 'self'; img-src 'self' data:")
        for name, title in (("index", "Home"), ("pricing", "Pricing"), ("cart", "Cart")):
            (pages / f"{name}.html").write_text(PAGE.format(title=title, text=f"The {title.lower()} page."))
            (pages / f"{name}.html.headers.json").write_text(f'{{"content-security-policy": "{csp}"}}')
        (pages / "shop.css").write_text(HOSTILE_CSS)
        (pages / "shop.js").write_text(SITE_JS)
        self.html = [pages / f"{n}.html" for n in ("index", "pricing", "cart")]
        for page in self.html:
            page.write_text(page.read_text().replace("{{PROACTIVE_TAG}}", tag))

    def stop(self):
        self.site.stop()
        self.widget.stop()


@pytest.fixture(scope="module")
def shop(site, tmp_path_factory):
    s = Shop(site.static, tmp_path_factory.mktemp("shop"))
    yield s
    s.stop()


def test_the_docs_example_suite_passes_against_another_site(shop, tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_auto_messages.py").write_text(doc_example("tests/test_auto_messages.py"))
    # The one line docs/qa.md gives for a system Chromium, plus this machine's flags.
    (tmp_path / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture(scope='session')\n"
        "def browser_type_launch_args(browser_type_launch_args):\n"
        f"    return {{**browser_type_launch_args, 'executable_path': {CHROMIUM!r}, 'args': {CHROMIUM_FLAGS!r}}}\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                          "--base-url", shop.origin], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and re.search(r"\b8 passed\b", out.strip().splitlines()[-1]), out


@pytest.fixture
def proactive(proactive, guard, shop):
    guard.allowed += [shop.origin, shop.widget_origin]
    return proactive


def test_the_kit_and_the_debug_view_under_the_shops_csp(shop, proactive):
    from playwright.sync_api import expect

    proactive.install()
    proactive.visit(f"{shop.origin}/pricing?proactive_debug=1")
    view = proactive.page.locator("proactive-widget [data-proactive-debug]")
    expect(view).to_contain_text("bundle: site shop, version 1")
    expect(view.locator('[data-message="pricing-help"] tr[data-rule="time_on_page"]')).to_contain_text("false")
    with pytest.raises(AssertionError) as failed:
        proactive.expect_shown("pricing-help", within=30)
    assert re.match(r"pricing-help not shown within 30 s: time_on_page greater 40 → false \(observed 30\.\d+ s\)\n"
                    rf"  trace at 30\.\d+ s on the page \({shop.origin}/pricing\?proactive_debug=1, bundle shop v1\):\n"
                    rf"    page_url contains /pricing → true \(observed {shop.origin}/pricing\?proactive_debug=1\)\n"
                    r"    time_on_page greater 40 → false", str(failed.value)), str(failed.value)
    proactive.expect_shown("pricing-help", within=11)
    expect(view.locator('[data-message="pricing-help"]')).to_contain_text("shown on this page")
    # The site's own listener heard it, through its own queue stub.
    assert proactive.page.evaluate("document.body.dataset.lastShown") == "pricing-help"
    # A different page of the same site: the visitor record carries over.
    proactive.visit(f"{shop.origin}/cart")
    proactive.advance(6).exit_intent()
    proactive.expect_shown("exit-offer")

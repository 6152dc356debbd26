"""End-to-end harness: real Chromium, real Pyodide, real HTTP, two origins.

- the widget's origin (http://127.0.0.1:PORT) serves the built widget folder
  and the bundles the tests sign;
- the site's origin (http://localhost:PORT) serves pages the tests write.

Every test fails on any page error, unhandled rejection, console error, or a
request to any origin other than these two.
"""

from __future__ import annotations

import json
import runpy
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from proactive import publishing, signing
from server_stub.app import create_site_app, create_widget_app, script_tag

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
T0 = 1_780_000_000  # a fixed instant (2026-05-28), in seconds as Playwright's Python clock API takes it


def build_widget(out: Path) -> dict:
    build = runpy.run_path(str(ROOT / "build" / "build.py"))
    return build["build"](out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, app, host: str, lifespan: str = "off"):
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan=lifespan))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(5)


class Site:
    """Both origins plus helpers to sign bundles and write pages."""

    def __init__(self, tmp: Path, **endpoint):
        """`endpoint`: create_widget_app's storage and broker options (default:
        a SQLite file in `tmp`); with a broker the app's lifespan runs."""
        self.tmp = tmp
        self.bundles = tmp / "bundles"
        self.pages = tmp / "site"
        self.bundles.mkdir()
        self.pages.mkdir()
        self.key = signing.generate_private_key()
        self.public_key = signing.public_key_spec(self.key)
        # Each test session builds its own widget folder from the sources, so
        # tests always exercise the current code and never race another build.
        self.static = tmp / "widget"
        build_widget(self.static)
        self.site = _Server(create_site_app(self.pages, ""), "localhost")
        self.site_origin = f"http://localhost:{self.site.port}"
        # The endpoint allows only the site's origin (CORS allow-list), keeps
        # its data in this session's folder, and honours the test geo header.
        self.widget_app = create_widget_app(self.static, self.bundles, allowed_origins=[self.site_origin],
                                            test_geo=True, **{"db_path": tmp / "endpoint.db", **endpoint})
        self.endpoint = self.widget_app.state.endpoint
        self.agent_token = self.widget_app.state.agent_token  # the agent API's credential
        self.agent_auth = {"authorization": f"Bearer {self.agent_token}"}
        self.widget = _Server(self.widget_app, "127.0.0.1", "on" if endpoint.get("broker_url") else "off")
        self.widget_origin = f"http://127.0.0.1:{self.widget.port}"
        self._n = 0

    def publish(self, messages: dict, name: str = "test", *, version: int = 1, keys=None, expires_at=None) -> str:
        """Sign `messages` (the authoring format, as a dict) into bundles/NAME.json."""
        payload = publishing.build_payload(messages, version=version, expires_at=expires_at)
        envelope = signing.sign_payload(payload, keys or [self.key])
        (self.bundles / f"{name}.json").write_bytes(envelope)
        return self.bundle_url(name)

    def bundle_url(self, name: str = "test") -> str:
        return f"{self.widget_origin}/bundles/{name}.json"

    def tag(self, bundle: str | None = None, key: str | None = None, **attrs) -> str:
        return script_tag(self.widget_origin, bundle or self.bundle_url(), key or self.public_key, **attrs)

    def page(self, body: str = "", *, tag: str | None = None, head: str = "", headers: dict | None = None, name: str | None = None) -> str:
        """Write a page that embeds the widget; returns its URL on the site origin."""
        self._n += 1
        name = name or f"page{self._n}"
        html = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{name}</title>{head}{self.tag() if tag is None else tag}</head>"
            f"<body><h1>{name}</h1>{body}</body></html>"
        )
        (self.pages / f"{name}.html").write_text(html)
        if headers:
            (self.pages / f"{name}.html.headers.json").write_text(json.dumps(headers))
        return f"{self.site_origin}/{name}.html"

    def stop(self):
        self.widget.stop()
        self.site.stop()


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("e2e"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}


class PageGuard:
    """Collects everything that must not happen on a host page."""

    def __init__(self, allowed_origins: list[str]):
        self.allowed = allowed_origins
        self.errors: list[str] = []
        self.foreign_requests: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.allowed_console_errors: list[str] = []

    def attach(self, page):
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._on_console)

    def _on_console(self, msg):
        self.console.append((msg.type, msg.text))

    def on_request(self, request):
        url = request.url
        if url.startswith(("blob:", "data:", "about:")):
            return
        if not any(url.startswith(o + "/") or url == o for o in self.allowed):
            self.foreign_requests.append(url)

    def warnings(self) -> list[str]:
        return [text for kind, text in self.console if kind == "warning" and text.startswith("[proactive]")]

    def check(self):
        console_errors = [
            text for kind, text in self.console
            if kind == "error" and not any(a in text for a in self.allowed_console_errors)
        ]
        # The widget's own "internal" warnings are bugs wherever they appear.
        internal = [text for kind, text in self.console if kind == "warning" and text.startswith("[proactive] internal")]
        problems = self.errors + [f"console error: {t}" for t in console_errors] + [f"widget bug: {t}" for t in internal]
        if problems:
            problems.append("console was:\n  " + "\n  ".join(f"{k}: {t}" for k, t in self.console))
        problems += [f"request outside the two origins: {u}" for u in self.foreign_requests]
        assert not problems, "\n".join(problems)


@pytest.fixture
def guard(site, context):
    g = PageGuard([site.widget_origin, site.site_origin])
    context.on("page", g.attach)
    context.on("request", g.on_request)
    context.on("weberror", lambda err: g.errors.append(f"weberror: {err.error}"))
    for p in context.pages:
        g.attach(p)
    yield g
    g.check()


@pytest.fixture
def page(context, guard):
    p = context.new_page()
    yield p


def wait_ready(page, timeout: float = 30.0) -> dict:
    """Wait (in real time) until the runtime has handled everything so far."""
    status = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = page.evaluate("() => window.proactive && window.proactive('status') || null")
        if status and (status.get("ready") or status.get("failed")):
            page.evaluate("() => window.proactive('sync')")
            return status
        time.sleep(0.05)
    raise AssertionError(f"widget not ready after {timeout} s: {status}")


def sync(page) -> None:
    """Round trip to the runtime: everything sent before has been handled."""
    page.evaluate("() => window.proactive('sync')")


def shown_ids(page) -> list[str]:
    return page.evaluate(
        """() => { const el = document.querySelector('proactive-widget');
                   if (!el || !el.shadowRoot) return [];
                   return [...el.shadowRoot.querySelectorAll('[data-message-id]')].map(e => e.dataset.messageId); }"""
    )


def simple_messages(*messages: dict, site_id: str = "test") -> dict:
    out = []
    for m in messages:
        out.append({"type": "proactive", "widget": "main", "content": {"text": m["id"]}, **m})
    return {"site": site_id, "widgets": [{"id": "main"}], "messages": out}

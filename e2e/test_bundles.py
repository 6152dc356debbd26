"""Signed bundles in the browser: the runtime trusts only what the site owner
signed, starts at once from the last good bundle cached in the visitor's
browser, replaces it with a verified newer one, and keeps working (one
console warning naming the reason, never a page error) when the fetched
bundle is tampered, rolled back, expired, or the endpoint is down, slow,
broken or the browser offline.

A returning visitor is a second navigation in the same browser context
(same localStorage and HTTP cache). `Endpoint` is a bundle endpoint on its own
port whose behaviour each test sets (ok with ETag/304, 404, 500, garbage,
held: answering only when the test says), so failures come from real HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import _Server, shown_ids, simple_messages, wait_ready

from proactive import publishing, signing


def messages(*ids: str, site_id: str = "test") -> dict:
    """Messages that show as soon as the page has been open for a moment."""
    return simple_messages(*({"id": i, "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]} for i in ids),
                           site_id=site_id)


def signed(doc: dict, version: int, keys, expires_at=None) -> bytes:
    return signing.sign_payload(publishing.build_payload(doc, version=version, expires_at=expires_at), list(keys))


class Endpoint:
    """A bundle endpoint with a switchable behaviour, served over real HTTP."""

    def __init__(self):
        self.mode = "ok"
        self.body = b""
        self.requests: list[dict] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.answered = 0  # responses sent
        self.server = _Server(self, "127.0.0.1")
        self.origin = f"http://127.0.0.1:{self.server.port}"
        self.url = f"{self.origin}/bundle.json"

    def set(self, mode: str, body: bytes | None = None):
        self.mode = mode
        if body is not None:
            self.body = body
        self.arrived.clear()
        self.release.clear()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        mode, body = self.mode, self.body
        self.requests.append({"path": scope["path"], "if_none_match": headers.get("if-none-match"), "mode": mode})
        self.arrived.set()
        cors = [(b"access-control-allow-origin", b"*")]
        if mode == "hold":
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        status, out, extra = 200, body, []
        if mode == "404":
            status, out = 404, b"not found"
        elif mode == "500":
            status, out = 500, b"internal server error"
        elif mode == "garbage":
            out = b"<html><body>Welcome to nginx!</body></html>"
        elif mode == "huge":
            out = b" " * (5 * 1024 * 1024)
        else:
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            extra = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
            if headers.get("if-none-match") == etag:
                status, out = 304, b""
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *cors, *extra]})
        await send({"type": "http.response.body", "body": out})
        self.answered += 1

    def stop(self):
        self.release.set()
        self.server.stop()


@pytest.fixture(scope="module")
def endpoint():
    e = Endpoint()
    yield e
    e.stop()


@pytest.fixture
def ep(endpoint, guard):
    """The endpoint, allowed as a third origin for this test's page guard."""
    guard.allowed.append(endpoint.origin)
    endpoint.set("ok", b"")
    endpoint.requests.clear()
    return endpoint


class Visitor:
    """One browser (context) visiting pages; tracks the warnings of each visit."""

    def __init__(self, page, guard):
        self.page = page
        self.guard = guard
        self.seen = 0

    def visit(self, url: str, wait_until: str = "load") -> dict:
        self.seen = len(self.guard.warnings())
        self.page.goto(url, wait_until=wait_until)
        return self.ready()

    def ready(self) -> dict:
        return wait_ready(self.page)

    def warnings(self) -> list[str]:
        return self.guard.warnings()[self.seen:]

    def shown(self, expected: list[str], timeout: float = 10.0) -> list[str]:
        deadline = time.time() + timeout
        ids = shown_ids(self.page)
        while ids != expected and time.time() < deadline:
            time.sleep(0.05)
            ids = shown_ids(self.page)
        return ids

    def stored_version(self) -> int | None:
        return self.page.evaluate(
            """() => { for (let i = 0; i < localStorage.length; i++) { const k = localStorage.key(i);
                         if (k.endsWith(':bundle-version')) return JSON.parse(localStorage.getItem(k)).version; }
                       return null; }""")

    def wait_warning(self, timeout: float) -> list[str]:
        deadline = time.time() + timeout
        while not self.warnings() and time.time() < deadline:
            self.page.evaluate("1")  # let Playwright deliver console events
            time.sleep(0.05)
        return self.warnings()


@pytest.fixture
def visitor(page, guard):
    return Visitor(page, guard)


def only_warning(v: Visitor) -> str:
    warnings = v.warnings()
    assert len(warnings) == 1, warnings
    return warnings[0]


# -- trust: tampered, rollback, expired, equal version, newer -------------------

def test_refused_bundles_fall_back_to_the_last_good_one(site, visitor, guard):
    name = "trust"
    url = site.page(tag=site.tag(bundle=site.bundle_url(name)))
    site.publish(messages("v2"), name, version=2)
    status = visitor.visit(url)
    assert status["ready"] and status["bundle"]["version"] == 2 and visitor.shown(["v2"]) == ["v2"]
    assert visitor.warnings() == [] and visitor.stored_version() == 2

    # Tampered: the payload edited after signing (a new message slipped in).
    good = json.loads((site.bundles / f"{name}.json").read_bytes())
    evil = json.loads(base64.b64decode(good["payload"]))
    evil["version"] = 3
    evil["messages"][0]["content"]["text"] = "Send us your password"
    good["payload"] = base64.b64encode(json.dumps(evil).encode()).decode()
    (site.bundles / f"{name}.json").write_text(json.dumps(good))
    status = visitor.visit(url)
    assert status["bundle"]["version"] == 2 and visitor.shown(["v2"]) == ["v2"]
    assert "bad_signature" in only_warning(visitor) and "using the cached bundle (version 2)" in only_warning(visitor)

    # Rollback: an older, correctly signed bundle is served again.
    site.publish(messages("v1"), name, version=1)
    status = visitor.visit(url)
    assert status["bundle"]["version"] == 2 and visitor.shown(["v2"]) == ["v2"]
    assert "rollback" in only_warning(visitor)

    # Expired: a newer bundle whose expires_at has passed.
    site.publish(messages("v3"), name, version=3, expires_at=datetime.now(timezone.utc) - timedelta(hours=1))
    status = visitor.visit(url)
    assert status["bundle"]["version"] == 2 and visitor.shown(["v2"]) == ["v2"]
    assert "expired" in only_warning(visitor) and visitor.stored_version() == 2

    # Newer and valid: it replaces the cached one, silently. (The first page
    # after the publish may start on the cached bundle when the fetch is
    # slower than the start, and swap the new one in mid-page, as in
    # test_key_rotation: the page after it runs the new bundle from its first step.)
    site.publish(messages("v4"), name, version=4)
    visitor.visit(url)
    deadline = time.time() + 10
    while visitor.stored_version() != 4 and time.time() < deadline:
        visitor.page.wait_for_timeout(50)
    assert visitor.warnings() == [] and visitor.stored_version() == 4
    status = visitor.visit(url)
    assert status["bundle"]["version"] == 4 and visitor.shown(["v4"]) == ["v4"]
    assert visitor.warnings() == [] and visitor.stored_version() == 4

    # Equal version: the same publication; the cached copy is kept.
    site.publish(messages("v4-resigned"), name, version=4)
    status = visitor.visit(url)
    assert status["bundle"]["version"] == 4 and visitor.shown(["v4"]) == ["v4"]
    assert visitor.warnings() == []


def test_key_rotation(site, visitor, guard):
    old, new = site.key, signing.generate_private_key()
    old_pin, new_pin = site.public_key, signing.public_key_spec(new)
    name = "rotation"
    # Step 1: the tag pins both keys; bundles still signed by the old key work.
    both = site.page(tag=site.tag(bundle=site.bundle_url(name), key=f"{old_pin},{new_pin}"))
    site.publish(messages("old-key"), name, version=1, keys=[old])
    assert visitor.visit(both)["bundle"]["version"] == 1 and visitor.shown(["old-key"]) == ["old-key"]
    # Step 2: publish signed by the new key (co-signed by both during the overlap).
    # (The first page after a publish may start on the cached bundle and swap
    # the new one in mid-page, its message waiting behind the one on screen:
    # the page after it runs the new bundle from its first step.)
    site.publish(messages("co-signed"), name, version=2, keys=[old, new])
    assert visitor.visit(both)["bundle"]["version"] == 2 and visitor.warnings() == []
    assert visitor.visit(both)["bundle"]["version"] == 2 and visitor.shown(["co-signed"]) == ["co-signed"]
    site.publish(messages("new-key"), name, version=3, keys=[new])
    assert visitor.visit(both)["bundle"]["version"] == 3 and visitor.warnings() == []
    assert visitor.visit(both)["bundle"]["version"] == 3 and visitor.shown(["new-key"]) == ["new-key"]
    assert visitor.warnings() == []
    # Step 3: the tag drops the old key; a bundle signed only by it is refused.
    only_new = site.page(tag=site.tag(bundle=site.bundle_url(name), key=new_pin))
    site.publish(messages("stolen-old-key"), name, version=4, keys=[old])
    status = visitor.visit(only_new)
    assert status["bundle"]["version"] == 3 and visitor.shown(["new-key"]) == ["new-key"]
    assert "unknown_key" in only_warning(visitor)


def test_recovery_after_a_key_compromise(site, visitor, guard):
    """A thief signs a huge version with a stolen key the tag still pins; once
    the tag pins only a new key, the site owner's next bundle is accepted again
    (the rollback floor came from a key that is no longer trusted)."""
    stolen, fresh = site.key, signing.generate_private_key()
    name = "compromise"
    site.publish(messages("thief"), name, version=1_000_000, keys=[stolen])
    assert visitor.visit(site.page(tag=site.tag(bundle=site.bundle_url(name))))["bundle"]["version"] == 1_000_000
    assert visitor.stored_version() == 1_000_000
    site.publish(messages("owner-again"), name, version=5, keys=[fresh])
    status = visitor.visit(site.page(tag=site.tag(bundle=site.bundle_url(name), key=signing.public_key_spec(fresh))))
    assert status["bundle"]["version"] == 5 and visitor.shown(["owner-again"]) == ["owner-again"]
    assert visitor.warnings() == [] and visitor.stored_version() == 5


# -- the endpoint: 304, 404, 500, garbage, slow, offline ---------------------------

def test_returning_visitor_keeps_working_when_the_endpoint_fails(site, visitor, guard, ep):
    guard.allowed_console_errors += ["Failed to load resource", "ERR_CONNECTION_REFUSED"]  # Chromium logs these itself
    guard.allowed.append("http://127.0.0.1:9")
    # data-site keys the visitor's cache by site, so the bundle URL may change.
    url = site.page(tag=site.tag(bundle=ep.url, data_site="test"))
    ep.set("ok", signed(messages("cached"), 1, [site.key]))
    assert visitor.visit(url)["bundle"]["version"] == 1 and visitor.shown(["cached"]) == ["cached"]
    assert ep.requests[-1]["if_none_match"] is None

    # Unchanged: revalidated through the HTTP cache with If-None-Match → 304.
    status = visitor.visit(url)
    assert ep.requests[-1]["if_none_match"], ep.requests
    assert status["bundle"]["version"] == 1 and visitor.shown(["cached"]) == ["cached"] and visitor.warnings() == []

    down = site.page(tag=site.tag(bundle="http://127.0.0.1:9/bundle.json", data_site="test"))  # nothing listens there
    for mode, reason in [("404", "HTTP 404"), ("500", "HTTP 500"), ("garbage", "bad_envelope"), ("huge", "too_large"),
                         ("down", "could not be fetched")]:
        ep.set(mode)
        status = visitor.visit(down if mode == "down" else url)
        assert status["ready"] and status["bundle"]["version"] == 1, (mode, status)
        assert visitor.shown(["cached"]) == ["cached"], mode
        warning = only_warning(visitor)
        assert reason in warning and "using the cached bundle (version 1)" in warning, (mode, warning)
    assert visitor.stored_version() == 1


def test_slow_endpoint_never_delays_triggering(site, visitor, guard, ep):
    url = site.page(tag=site.tag(bundle=ep.url))
    ep.set("ok", signed(messages("cached"), 1, [site.key]))
    visitor.visit(url)
    assert visitor.shown(["cached"]) == ["cached"]

    # The endpoint answers only after the runtime's 8 s timeout (held until the end).
    ep.set("hold", signed(messages("late"), 2, [site.key]))
    answered = ep.answered
    try:
        status = visitor.visit(url)
        assert status["bundle"]["version"] == 1 and visitor.shown(["cached"]) == ["cached"]
        assert ep.answered == answered, "triggering waited for the endpoint"
        warning = visitor.wait_warning(timeout=15)
        assert len(warning) == 1 and "no answer within 8 s" in warning[0] and "using the cached bundle" in warning[0], warning
        assert shown_ids(visitor.page) == ["cached"] and visitor.stored_version() == 1
    finally:
        ep.release.set()


def test_offline_returning_visitor_fires_from_cache(site, visitor, guard, ep, context):
    guard.allowed_console_errors.append("ERR_INTERNET_DISCONNECTED")
    url = site.page(tag=site.tag(bundle=ep.url))
    ep.set("ok", signed(messages("cached"), 1, [site.key]))
    visitor.visit(url)
    assert visitor.shown(["cached"]) == ["cached"]

    # Second visit: the page loads, then the network goes away while the
    # bundle request is in flight; the runtime files come from the HTTP cache.
    ep.set("hold")
    visitor.seen = len(guard.warnings())
    visitor.page.goto(url, wait_until="commit")
    assert ep.arrived.wait(20), "the bundle was never requested"
    context.set_offline(True)
    try:
        status = visitor.ready()
        assert status["ready"] and status["bundle"]["version"] == 1, status
        assert visitor.shown(["cached"]) == ["cached"]
        warning = visitor.wait_warning(timeout=10)
        assert len(warning) == 1 and "could not be fetched" in warning[0] and "using the cached bundle" in warning[0], warning
    finally:
        context.set_offline(False)
        ep.release.set()


def test_a_newer_bundle_arriving_late_takes_over_the_running_page(site, visitor, guard, ep):
    url = site.page(tag=site.tag(bundle=ep.url))
    ep.set("ok", signed(messages("first"), 1, [site.key]))
    visitor.visit(url)
    assert visitor.shown(["first"]) == ["first"]

    ep.set("hold", signed(messages("first", "second"), 2, [site.key]))
    status = visitor.visit(url)  # ready from the cached bundle while the endpoint holds
    assert status["bundle"]["version"] == 1 and visitor.shown(["first"]) == ["first"]
    visitor.page.evaluate("() => document.querySelector('proactive-widget')")  # the page is live
    ep.release.set()
    deadline = time.time() + 10
    while visitor.page.evaluate("() => window.proactive('status').bundle.version") != 2 and time.time() < deadline:
        time.sleep(0.05)
    assert visitor.page.evaluate("() => window.proactive('status').bundle.version") == 2
    assert visitor.stored_version() == 2 and visitor.warnings() == []
    # "first" stays shown once on this page; "second" waits for it to go (one message at a time).
    assert shown_ids(visitor.page) == ["first"]


# -- bad input on the page (issue 2): one clear warning, the page keeps working -----

def _page_still_works(page):
    page.evaluate("() => { const b = document.createElement('button'); b.id = 'host-btn';"
                  " b.onclick = () => { b.textContent = 'clicked'; }; document.body.append(b); }")
    page.click("#host-btn")
    assert page.inner_text("#host-btn") == "clicked"


BAD_TAGS = [
    ("missing data-bundle", dict(bundle=""), "data-bundle is missing"),
    ("missing data-key", dict(key=""), "data-key is missing"),
    ("malformed data-bundle", dict(bundle="javascript:alert(1)"), "is not an http(s) URL"),
    ("malformed data-key", dict(key="ed25519:not-a-key"), "is malformed"),
    ("unreachable bundle", dict(bundle="http://127.0.0.1:9/bundle.json"), "could not be fetched"),
    ("bundle not found", dict(bundle="/missing-bundle.json"), "HTTP 404"),
    ("bundle signed by another key", dict(key=signing.public_key_spec(signing.generate_private_key())), "unknown_key"),
    ("bad signature", dict(bundle="BAD_SIG"), "bad_signature"),
    ("garbage bundle", dict(bundle="GARBAGE"), "bad_envelope"),
]


def test_bad_tag_or_bundle_on_a_first_visit(site, page, guard):
    guard.allowed_console_errors += ["Failed to load resource", "ERR_CONNECTION_REFUSED"]
    guard.allowed.append("http://127.0.0.1:9")
    site.publish(messages("never-shown-if-bad"), "bad-input")
    env = json.loads((site.bundles / "bad-input.json").read_bytes())
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[payload.index(b"never")] = ord("N")
    env["payload"] = base64.b64encode(bytes(payload)).decode()
    (site.bundles / "bad-sig.json").write_text(json.dumps(env))
    (site.bundles / "garbage.json").write_bytes(b"\x89PNG\r\n\x1a\n not a bundle")
    special = {"BAD_SIG": site.bundle_url("bad-sig"), "GARBAGE": site.bundle_url("garbage")}
    for name, attrs, expected in BAD_TAGS:
        if attrs.get("bundle") in special:
            attrs = dict(attrs, bundle=special[attrs["bundle"]])
        tag = site.tag(bundle=site.bundle_url("bad-input"), key=site.public_key)
        tag = tag.replace(f'data-bundle="{site.bundle_url("bad-input")}"', f'data-bundle="{attrs["bundle"]}"') if "bundle" in attrs else tag
        tag = tag.replace(f'data-key="{site.public_key}"', f'data-key="{attrs["key"]}"') if "key" in attrs else tag
        seen = len(guard.warnings())
        page.goto(site.page(tag=tag))
        deadline = time.time() + 30
        while len(guard.warnings()) == seen and time.time() < deadline:
            page.evaluate("1")
            time.sleep(0.05)
        page.evaluate("() => window.proactive && window.proactive('sync')")
        warnings = guard.warnings()[seen:]
        assert len(warnings) == 1 and expected in warnings[0], (name, warnings)
        assert shown_ids(page) == [], name
        _page_still_works(page)
        assert page.evaluate("() => typeof window.proactive") == "function", name

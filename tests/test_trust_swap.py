"""A fresher bundle replaces the running one (adapter Runtime.swap) keeping the
visitor record and this page's state: the browser's cache-first start-up."""

from __future__ import annotations

import base64
import json

from proactive import publishing, signing
from widget.runtime.adapter import Runtime

NOW = 1_780_000_000_000
KEY = signing.generate_private_key()


def bundle(version, *messages):
    doc = {"site": "acme", "widgets": [{"id": "main"}], "messages": [
        {"id": mid, "type": "proactive", "widget": "main", "content": {"text": mid},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": secs}]} for mid, secs in messages]}
    return signing.sign_payload(publishing.build_payload(doc, version=version), [KEY])


def accept(rt, raw, which="fetched"):
    """As widget/engine/host.mjs offers a bundle (`cryptography` for WebCrypto)."""
    opened = json.loads(rt.signing_request(raw))
    assert opened["ok"], opened
    message = base64.b64decode(opened["message"])
    assert any(signing.verify_signature(base64.b64decode(k), message, base64.b64decode(s)) for k, s in opened["candidates"])
    return json.loads(rt.offer(raw, which, "valid", "", NOW))


def started(raw):
    rt = Runtime(json.dumps({"keys": signing.public_key_spec(KEY), "context": {}}))
    assert accept(rt, raw)["ok"]
    events = [{"type": "page_view", "t": NOW, "url": "https://acme.example/", "referrer": ""}]
    reply = json.loads(rt.start("", json.dumps(events), NOW))
    assert reply["ok"], reply
    return rt


def shown(reply):
    return [d["message"] for d in reply["decisions"] if d["action"] == "show"]


def test_a_newer_bundle_takes_over_at_the_engine_present_keeping_the_page():
    rt = started(bundle(1, ("old", 2)))
    assert shown(json.loads(rt.step(json.dumps([{"type": "tick", "t": NOW + 2001}]), NOW + 2001))) == ["old"]
    record_before = rt.engine.snapshot()
    assert accept(rt, bundle(2, ("old", 2), ("new", 10)))["version"] == 2
    reply = json.loads(rt.swap(None))
    assert reply["ok"] and reply["version"] == 2 and shown(reply) == []
    assert rt.engine.record["invitations_sent"] == record_before["invitations_sent"] == 1
    assert rt.engine.record["page_views"] == record_before["page_views"] == 1  # not a new page view
    # "old" was shown on this page (not again); it is still on screen, so "new" waits for its dismissal.
    later = json.loads(rt.step(json.dumps([{"type": "dismiss", "message": "old", "t": NOW + 10_001}]), NOW + 10_001))
    assert shown(later) == ["new"]


def test_a_message_that_already_holds_shows_at_once_after_the_swap():
    rt = started(bundle(1, ("slow", 600)))
    json.loads(rt.step(json.dumps([{"type": "tick", "t": NOW + 20_000}]), NOW + 20_000))
    accept(rt, bundle(2, ("slow", 600), ("quick", 5)))
    reply = json.loads(rt.swap(None))
    assert shown(reply) == ["quick"] and reply["decisions"][0]["t"] == NOW + 20_000
    assert reply["next_wakeup"] is None or reply["next_wakeup"] > NOW + 20_000


def test_time_rules_keep_counting_from_the_page_start():
    rt = started(bundle(1, ("never", 10_000)))
    accept(rt, bundle(2, ("soon", 30)))
    reply = json.loads(rt.swap(NOW + 1000))
    assert shown(reply) == [] and reply["next_wakeup"] == NOW + 30_001


def test_a_rejected_bundle_leaves_the_staged_one():
    rt = Runtime(json.dumps({"keys": signing.public_key_spec(KEY), "context": {}}))
    assert accept(rt, bundle(3, ("a", 1)))["ok"]
    assert accept(rt, bundle(2, ("b", 1)))["reason"] == "rollback"
    reply = json.loads(rt.start("", json.dumps([{"type": "page_view", "t": NOW, "url": "https://x/", "referrer": ""}]), NOW))
    assert reply["ok"] and rt.bundle["version"] == 3
    assert json.loads(rt.swap(None))["ok"] is False  # nothing staged: a clear failure, no exception

"""The JS-facing adapter, driven the way widget/engine/host.mjs drives it, under CPython."""

from __future__ import annotations

import base64
import json

import pytest

from proactive import publishing, signing
from widget.runtime.adapter import Runtime

NOW = 1_780_000_000_000


@pytest.fixture
def key():
    return signing.generate_private_key()


def messages(**extra):
    return {
        "site": "acme",
        "widgets": [{"id": "main"}],
        "messages": [{"id": "hello", "type": "proactive", "widget": "main", "content": {"text": "Hi"},
                      "rules": [{"rule": "time_on_page", "op": "greater", "value": 3}], **extra}],
    }


def envelope(key, version=1, **kwargs) -> bytes:
    return signing.sign_payload(publishing.build_payload(messages(), version=version, **kwargs), [key])


def runtime_for(key, site=None) -> Runtime:
    return Runtime(json.dumps({"keys": signing.public_key_spec(key), "site": site, "context": {}}))


def verdict_like_the_browser(rt: Runtime, raw: bytes) -> str | None:
    """What widget/bundle/verify.mjs answers (`cryptography` for WebCrypto)."""
    opened = json.loads(rt.signing_request(raw))
    if not opened["ok"]:
        return None
    message = base64.b64decode(opened["message"])
    valid = any(
        signing.verify_signature(base64.b64decode(k), message, base64.b64decode(s)) for k, s in opened["candidates"]
    )
    return "valid" if valid else "invalid"


def offer(rt: Runtime, raw: bytes, which="fetched") -> dict:
    return json.loads(rt.offer(raw, which, verdict_like_the_browser(rt, raw), "", NOW))


def test_accepts_a_signed_bundle_and_decides(key):
    rt = runtime_for(key)
    accepted = offer(rt, envelope(key))
    assert accepted == {"ok": True, "site": "acme", "version": 1, "widgets": [{"id": "main"}],  # + appearance (render)
                        "team": False, "keep": {"kind": "newer", "run": True, "store": True, "lowerFloor": False}}
    first = json.loads(rt.start("", json.dumps([{"type": "page_view", "t": NOW, "url": "https://a.example/", "referrer": ""}]), NOW))
    assert first["ok"] and first["decisions"] == [] and first["next_wakeup"] == NOW + 3001
    later = json.loads(rt.step(json.dumps([{"type": "tick", "t": NOW + 3001}]), NOW + 3001))
    assert [d["message"] for d in later["decisions"]] == ["hello"]


def test_unknown_key_is_a_named_rejection(key):
    other = signing.generate_private_key()
    reply = json.loads(runtime_for(key).signing_request(envelope(other)))
    assert reply["ok"] is False and reply["reason"] == "unknown_key"
    assert offer(runtime_for(key), envelope(other))["reason"] == "unknown_key"


def test_rollback_and_wrong_site_are_named_rejections(key):
    assert offer(runtime_for(key, site="other"), envelope(key, version=2))["reason"] == "wrong_site"
    rt = Runtime(json.dumps({"keys": signing.public_key_spec(key), "context": {}, "floor": 3}))
    assert offer(rt, envelope(key, version=2))["reason"] == "rollback"


def test_garbage_never_raises(key):
    rt = runtime_for(key)
    for raw in [b"", b"{", b"[]", b"null", "é".encode(), b"\x00" * 10]:
        assert json.loads(rt.signing_request(raw))["ok"] is False
        for verdict in (None, "valid", "bogus"):
            assert json.loads(rt.offer(raw, "fetched", verdict, "", NOW))["ok"] is False
    # A good envelope without a verdict is refused (fail closed), by name.
    assert json.loads(rt.offer(envelope(key), "fetched", None, "", NOW))["reason"] == "bad_signature"
    assert json.loads(rt.step("not json", NOW))["ok"] is False


@pytest.mark.parametrize("team, reads", [("any", False), (None, False), ("online", True), ("offline", True)])
def test_the_offer_says_whether_a_message_depends_on_the_team(key, team, reads):
    """The page reads the team's presence from the endpoint only when it matters."""
    payload = messages(**({} if team is None else {"team": team}))
    raw = signing.sign_payload(publishing.build_payload(payload, version=1), [key])
    assert offer(runtime_for(key), raw)["team"] is reads

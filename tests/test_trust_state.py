"""Trust in one browser (trust.BundleTrust) as a table: the cached copy, the
fetched bundle, the rollback floor, key rotation and equal versions. Each
case is what the runtime host does on a page load: offer the cached bundle
(if any), then the fetched one, with WebCrypto's verdict (`cryptography`
here); the table says what each offer kept or why it was refused, and which
bundle runs in the end."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from proactive import publishing, signing
from widget.runtime import trust

NOW = datetime(2026, 5, 28, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
OLD_KEY = signing.generate_private_key()
NEW_KEY = signing.generate_private_key()
OLD, NEW = signing.public_key_spec(OLD_KEY), signing.public_key_spec(NEW_KEY)


def bundle(version, key=NEW_KEY, *, text="hi", site="acme", expires_at=None) -> bytes:
    doc = {"site": site, "widgets": [{"id": "main"}], "messages": [
        {"id": "hello", "type": "proactive", "widget": "main", "content": {"text": text},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 3}]}]}
    payload = publishing.build_payload(doc, version=version, now=NOW, expires_at=expires_at)
    return signing.sign_payload(payload, [key])


def tampered(raw: bytes) -> bytes:
    """The same envelope with another valid payload under the old signature."""
    import base64
    import json

    env = json.loads(raw)
    env["payload"] = base64.b64encode(base64.b64decode(env["payload"]).replace(b'"hi"', b'"yo"')).decode()
    return json.dumps(env).encode()


def browser_verdict(raw: bytes, pins: list[bytes]) -> str | None:
    """What widget/bundle/verify.mjs answers, or None when the envelope did not open."""
    try:
        opened = trust.open_envelope(raw, pins)
    except trust.BundleRejected:
        return None
    valid = any(signing.verify_signature(k, opened.message, s) for k, s in opened.candidates)
    return "valid" if valid else "invalid"


def outcome(offer, raw, pins):
    try:
        keep = offer(raw, browser_verdict(raw, pins), NOW_MS)
    except trust.BundleRejected as exc:
        return exc.reason
    flags = [name for name in ("run", "store", "lower_floor") if getattr(keep, name)]
    return (keep.kind, keep.version, *flags)


V1, V2, V3 = bundle(1), bundle(2), bundle(3)
V2_AGAIN = bundle(2, text="re-signed")  # the same version, other bytes

CASES = [
    # name, pins, floor, cached, fetched, (cached outcome, fetched outcome), version that runs
    ("first visit: the fetched bundle runs and is kept",
     NEW, None, None, V1, (None, ("newer", 1, "run", "store")), 1),
    ("repeat visit, nothing new (a 304): the cached copy runs, nothing is stored",
     NEW, 1, V1, V1, (("cached", 1, "run"), ("unchanged", None)), 1),
    ("a newer publication replaces the cached copy and is kept",
     NEW, 1, V1, V2, (("cached", 1, "run"), ("newer", 2, "run", "store")), 2),
    ("rollback: an older, correctly signed bundle is refused; the cached copy runs",
     NEW, 2, V2, V1, (("cached", 2, "run"), "rollback"), 2),
    ("equal version, other bytes: the same publication; the copy that runs stays",
     NEW, 2, V2, V2_AGAIN, (("cached", 2, "run"), ("same", 2)), 2),
    ("equal to the floor with nothing cached: it runs and is kept",
     NEW, 2, None, V2, (None, ("same", 2, "run", "store")), 2),
    ("below the floor with nothing cached: refused, nothing runs",
     NEW, 3, None, V2, (None, "rollback"), None),
    ("a cached copy below the floor (another tab took a newer one) is refused",
     NEW, 3, V1, V3, ("rollback", ("same", 3, "run", "store")), 3),
    ("key rotation: a cached copy by an unpinned key drops the floor it set",
     NEW, 99, bundle(99, OLD_KEY), V3, ("unknown_key", ("newer", 3, "run", "store", "lower_floor")), 3),
    ("both keys pinned: the old key's floor still holds",
     f"{OLD},{NEW}", 5, bundle(5, OLD_KEY), V3, (("cached", 5, "run"), "rollback"), 5),
    ("a tampered cached copy is refused but keeps the floor",
     NEW, 2, tampered(V2), V1, ("bad_signature", "rollback"), None),
    ("a tampered fetched bundle is refused; the cached copy runs",
     NEW, 1, V1, tampered(V2), (("cached", 1, "run"), "bad_signature"), 1),
    ("an expired cached copy: the same bytes fetched again are unchanged, nothing runs",
     NEW, 1, bundle(1, expires_at=NOW - timedelta(seconds=1)), bundle(1, expires_at=NOW - timedelta(seconds=1)),
     ("expired", ("unchanged", None)), None),
    ("an expired newer bundle is refused; the cached copy runs",
     NEW, 1, V1, bundle(2, expires_at=NOW), (("cached", 1, "run"), "expired"), 1),
    ("a bundle for another site is refused",
     NEW, None, None, bundle(1, site="other"), (None, "wrong_site"), None),
    ("signed by a key the tag does not pin",
     NEW, None, None, bundle(1, OLD_KEY), (None, "unknown_key"), None),
]


@pytest.mark.parametrize("name, pins, floor, cached, fetched, expected, runs", CASES, ids=[c[0] for c in CASES])
def test_which_bundle_runs_and_what_is_kept(name, pins, floor, cached, fetched, expected, runs):
    keys = trust.parse_key_list(pins)
    state = trust.BundleTrust(keys, site="acme", floor=floor)
    got_cached = outcome(state.offer_cached, cached, keys) if cached is not None else None
    got_fetched = outcome(state.offer_fetched, fetched, keys)
    assert (got_cached, got_fetched) == expected
    assert (state.current["version"] if state.current else None) == runs


def test_a_refusal_changes_nothing():
    keys = trust.parse_key_list(NEW)
    state = trust.BundleTrust(keys, site="acme", floor=1)
    state.offer_cached(V1, "valid", NOW_MS)
    for raw, verdict in [(V3, "invalid"), (bundle(3, site="other"), "valid"), (b"garbage", None)]:
        with pytest.raises(trust.BundleRejected):
            state.offer_fetched(raw, verdict, NOW_MS)
        assert state.current["version"] == 1 and state.floor == 1 and not state.floor_dropped
    assert state.offer_fetched(V2, "valid", NOW_MS).version == 2


@pytest.mark.parametrize("verdict, reason", [("invalid", "bad_signature"), ("unsupported", "no_ed25519"),
                                             (None, "bad_signature"), ("yes", "bad_signature")])
def test_the_signature_verdict_fails_closed(verdict, reason):
    state = trust.BundleTrust(trust.parse_key_list(NEW), site="acme")
    with pytest.raises(trust.BundleRejected) as info:
        state.offer_fetched(V1, verdict, NOW_MS, "WebCrypto needs a secure (https) page")
    assert info.value.reason == reason and state.current is None
    if reason == "no_ed25519":
        assert str(info.value) == ("no_ed25519: this browser cannot verify Ed25519 signatures "
                                   "(WebCrypto needs a secure (https) page)")


def test_a_bundle_the_engine_cannot_compile_is_a_bad_payload_and_changes_nothing():
    def compile_(payload):
        if payload["version"] == 2:
            raise RuntimeError("no")
        return ("compiled", payload["version"])

    state = trust.BundleTrust(trust.parse_key_list(NEW), site="acme", compile=compile_)
    assert state.offer_fetched(V1, "valid", NOW_MS).compiled == ("compiled", 1)
    with pytest.raises(trust.BundleRejected, match="bad_payload: .*RuntimeError: no"):
        state.offer_fetched(V2, "valid", NOW_MS)
    assert state.current["version"] == 1
    assert state.offer_fetched(V3, "valid", NOW_MS).compiled == ("compiled", 3)


def test_payload_validation_cannot_be_skipped(monkeypatch):
    """Issue 16 item 5: without the engine's validator no payload is accepted."""
    import sys

    import widget.runtime

    monkeypatch.setitem(sys.modules, "widget.runtime.bundle", None)  # import fails
    monkeypatch.delattr(widget.runtime, "bundle", raising=False)
    with pytest.raises(trust.BundleRejected, match="bad_payload: .*validator could not be loaded"):
        trust.BundleTrust(trust.parse_key_list(NEW), site="acme").offer_fetched(V1, "valid", NOW_MS)


def test_offering_the_bytes_just_opened_does_not_parse_them_again(monkeypatch):
    state = trust.BundleTrust(trust.parse_key_list(NEW), site="acme")
    calls = []
    real = trust.open_envelope
    monkeypatch.setattr(trust, "open_envelope", lambda *a, **k: calls.append(1) or real(*a, **k))
    opened = state.open(V1)
    assert state.offer_fetched(V1, "valid", NOW_MS).version == 1 and len(calls) == 1
    assert state.open(V1) is opened
    with pytest.raises(trust.BundleRejected):
        state.offer_fetched(tampered(V2), "invalid", NOW_MS)  # other bytes: opened afresh
    assert len(calls) == 2

"""The bundle verifier as a table of cases: each kind of bad bundle is refused
with its own reason, in the documented order; rotation, rollback, expiry and
the equal-version rule hold. Checks run exactly as `proactive verify` and the
browser run them (widget/runtime/trust.py; `cryptography` for the signature)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from proactive import publishing, signing
from widget.runtime import trust

NOW = datetime(2026, 5, 28, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)

KEY_A = signing.generate_private_key()
KEY_B = signing.generate_private_key()
STRANGER = signing.generate_private_key()
PIN_A = signing.public_key_spec(KEY_A)
PIN_B = signing.public_key_spec(KEY_B)


def doc(site="acme", **extra):
    return {"site": site, "widgets": [{"id": "main"}], "messages": [
        {"id": "hello", "type": "proactive", "widget": "main", "content": {"text": "Hi"},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 3}]}], **extra}


def payload(version=1, expires_at=None, **kw) -> bytes:
    return publishing.build_payload(doc(**kw), version=version, now=NOW, expires_at=expires_at)


def sign(p: bytes, *keys) -> bytes:
    return signing.sign_payload(p, list(keys or [KEY_A]))


def envelope_with(**changes) -> bytes:
    env = json.loads(sign(payload()))
    env.update(changes)
    return json.dumps(env).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check(raw: bytes, pins: str = PIN_A, *, site=None, last_version=None) -> dict:
    return publishing.verify_bundle(raw, pins, site=site, last_version=last_version, now_ms=NOW_MS)


GOOD = sign(payload())
OTHER_SIG = json.loads(sign(payload(version=2)))["signatures"][0]["sig"]

REJECTED = [
    # name, raw bundle, pins, kwargs, reason
    ("over the size cap (checked before parsing)", b" " * (trust.MAX_BUNDLE_BYTES + 1), PIN_A, {}, "too_large"),
    ("not JSON", b"<html>502 Bad Gateway</html>", PIN_A, {}, "bad_envelope"),
    ("JSON but not an object", b"[1, 2]", PIN_A, {}, "bad_envelope"),
    ("empty body", b"", PIN_A, {}, "bad_envelope"),
    ("invalid UTF-8", b'{"payload": "\xff"}', PIN_A, {}, "bad_envelope"),
    ("deeply nested JSON", b"[" * 100_000, PIN_A, {}, "bad_envelope"),
    ("a missing field", envelope_with(payloadType=None) .replace(b'"payloadType": null, ', b""), PIN_A, {}, "bad_envelope"),
    ("an extra field", envelope_with(note="hi"), PIN_A, {}, "bad_envelope"),
    ("a duplicated field", GOOD.replace(b'"payloadType"', b'"payload": "e30=",\n "payloadType"', 1), PIN_A, {}, "bad_envelope"),
    ("another payload type", envelope_with(payloadType="application/json"), PIN_A, {}, "bad_envelope"),
    ("payload not base64", envelope_with(payload="not base64!"), PIN_A, {}, "bad_envelope"),
    ("payload base64 not canonical", envelope_with(payload="e31="), PIN_A, {}, "bad_envelope"),
    ("no signatures", envelope_with(signatures=[]), PIN_A, {}, "bad_envelope"),
    ("too many signatures", envelope_with(signatures=[{"keyid": "0" * 16, "sig": b64(bytes(64))}] * 17), PIN_A, {}, "bad_envelope"),
    ("a signature of the wrong length", envelope_with(signatures=[{"keyid": trust.key_id(signing.raw_public_key(KEY_A)), "sig": b64(bytes(63))}]), PIN_A, {}, "bad_envelope"),
    ("signed by a key the tag does not pin", sign(payload(), STRANGER), PIN_A, {}, "unknown_key"),
    ("a pinned key id with a stranger's signature", sign(payload(), STRANGER).replace(
        trust.key_id(signing.raw_public_key(STRANGER)).encode(), trust.key_id(signing.raw_public_key(KEY_A)).encode()), PIN_A, {}, "bad_signature"),
    ("a signature taken from another bundle", envelope_with(signatures=[{"keyid": trust.key_id(signing.raw_public_key(KEY_A)), "sig": OTHER_SIG}]), PIN_A, {}, "bad_signature"),
    ("payload re-encoded (same JSON, other bytes)", envelope_with(payload=b64(json.dumps(json.loads(payload()), indent=2).encode())), PIN_A, {}, "bad_signature"),
    ("payload fields reordered", envelope_with(payload=b64(json.dumps(dict(reversed(json.loads(payload()).items())), separators=(",", ":")).encode())), PIN_A, {}, "bad_signature"),
    ("payload edited (version bumped)", envelope_with(payload=b64(payload(version=99))), PIN_A, {}, "bad_signature"),
    ("signed payload is not JSON", sign(b"hello"), PIN_A, {}, "bad_payload"),
    ("signed payload without a version", sign(json.dumps({"site": "acme", "messages": [], "issued_at": "2026-01-01T00:00:00Z"}).encode()), PIN_A, {}, "bad_payload"),
    ("signed payload with a bad issued_at", sign(json.dumps({"site": "acme", "version": 1, "messages": [], "issued_at": "yesterday"}).encode()), PIN_A, {}, "bad_payload"),
    ("signed payload with an unknown rule", sign(json.dumps({**doc(), "version": 1, "issued_at": "2026-01-01T00:00:00Z",
        "messages": [{"id": "x", "rules": [{"rule": "moon_phase", "op": "equals", "value": "full"}]}]}).encode()), PIN_A, {}, "bad_payload"),
    ("signed for another site", sign(payload(site="other")), PIN_A, {"site": "acme"}, "wrong_site"),
    ("expired a second ago", sign(payload(expires_at=NOW - timedelta(seconds=1))), PIN_A, {}, "expired"),
    ("expiring exactly now", sign(payload(expires_at=NOW)), PIN_A, {}, "expired"),
    ("an older version than one accepted (rollback)", sign(payload(version=3)), PIN_A, {"last_version": 4}, "rollback"),
]


@pytest.mark.parametrize("name, raw, pins, kwargs, reason", REJECTED, ids=[c[0] for c in REJECTED])
def test_rejected(name, raw, pins, kwargs, reason):
    with pytest.raises(trust.BundleRejected) as info:
        check(raw, pins, **kwargs)
    assert info.value.reason == reason, str(info.value)
    assert str(info.value).startswith(reason + ": " + trust.REASONS[reason])


ACCEPTED = [
    ("a good bundle", sign(payload(version=7)), PIN_A, {}, 7),
    ("for the site the tag names", sign(payload(site="acme")), PIN_A, {"site": "acme"}, 1),
    ("not yet expired", sign(payload(expires_at=NOW + timedelta(seconds=1))), PIN_A, {}, 1),
    ("newer than the last accepted", sign(payload(version=5)), PIN_A, {"last_version": 4}, 5),
    ("equal to the last accepted (the caller keeps its copy)", sign(payload(version=4)), PIN_A, {"last_version": 4}, 4),
    ("rotation: the tag pins A and B, signed by B", sign(payload(), KEY_B), f"{PIN_A},{PIN_B}", {}, 1),
    ("rotation: co-signed by A and B, the tag pins only B", sign(payload(), KEY_A, KEY_B), PIN_B, {}, 1),
    ("rotation: co-signed by a stranger and A", sign(payload(), STRANGER, KEY_A), PIN_A, {}, 1),
    ("envelope reformatted (the signed bytes are unchanged)", json.dumps(json.loads(GOOD), separators=(",", ":")).encode(), PIN_A, {}, 1),
]


@pytest.mark.parametrize("name, raw, pins, kwargs, version", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted(name, raw, pins, kwargs, version):
    assert check(raw, pins, **kwargs)["version"] == version


def test_checks_run_in_the_documented_order():
    """A bundle wrong in every way is refused for the first check in the order."""
    expired_old_other_site = sign(payload(site="other", version=1, expires_at=NOW - timedelta(days=1)))
    assert _reason(expired_old_other_site, site="acme", last_version=5) == "wrong_site"
    assert _reason(sign(payload(version=1, expires_at=NOW - timedelta(days=1))), last_version=5) == "expired"
    assert _reason(sign(b"not json", STRANGER)) == "unknown_key"
    assert list(trust.REASONS) == ["too_large", "bad_envelope", "unknown_key", "bad_signature", "no_ed25519",
                                   "bad_payload", "bad_rollout", "wrong_site", "expired", "rollback"]


def _reason(raw, pins=PIN_A, **kw):
    try:
        check(raw, pins, **kw)
    except trust.BundleRejected as exc:
        return exc.reason
    return None


def test_signature_covers_pae_of_the_exact_payload_bytes():
    p = payload()
    env = json.loads(sign(p))
    assert base64.b64decode(env["payload"]) == p
    message = trust.pae(trust.PAYLOAD_TYPE, p)
    assert message.startswith(b"DSSEv1 %d %s %d " % (len(trust.PAYLOAD_TYPE), trust.PAYLOAD_TYPE.encode(), len(p)))
    raw_key = signing.raw_public_key(KEY_A)
    assert env["signatures"][0]["keyid"] == trust.key_id(raw_key) and len(trust.key_id(raw_key)) == 16
    assert signing.verify_signature(raw_key, message, base64.b64decode(env["signatures"][0]["sig"]))


@pytest.mark.parametrize("spec", ["", "ed25519:", "rsa:AAAA", "ed25519:not-base64!", "ed25519:" + b64(bytes(31))])
def test_malformed_pins_are_refused_clearly(spec):
    with pytest.raises(ValueError):
        trust.parse_key_list(spec)


def test_the_browser_reads_no_more_than_the_size_cap():
    """bundle/fetch.mjs stops reading at the cap + 1 byte; the cap is
    constants.py's, written into the browser's constants.mjs by the build."""
    import re
    from pathlib import Path

    from widget.runtime import constants

    source = (Path(__file__).resolve().parents[1] / "widget" / "bundle" / "fetch.mjs").read_text()
    assert re.search(r'import \{ BUNDLE_MAX_BYTES \} from "\.\./constants\.mjs";', source)
    assert "readCapped(response, BUNDLE_MAX_BYTES + 1)" in source
    value = constants.BUNDLE_MAX_BYTES
    assert value == trust.MAX_BUNDLE_BYTES
    with pytest.raises(trust.BundleRejected, match="too_large"):
        check(b" " * (value + 1))

"""Bundle trust checks, in a fixed order, without I/O and without crypto.

The signature itself is checked by the caller (WebCrypto in the browser,
`cryptography` in the CLI) between `open_envelope` and `accept_payload`, so
that this module stays pure standard library and runs unchanged in Pyodide.

Order of checks (each failure is a `BundleRejected` with its own reason):
  1) size cap, before parsing
  2) envelope shape
  3) known key id (a signature by a pinned key must be present)
  4) signature                      -- done by the caller
  5) payload shape
  6) site id
  7) expiry
  8) version: lower than the last accepted one is a rollback
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime, timezone

PAYLOAD_TYPE = "application/vnd.proactive.bundle+json"
MAX_BUNDLE_BYTES = 1024 * 1024

REASONS = {
    "too_large": "the bundle is larger than the size cap",
    "bad_envelope": "the bundle is not a signed envelope",
    "unknown_key": "no signature by a key pinned in the script tag",
    "bad_signature": "the signature does not match the payload",
    "bad_payload": "the signed payload is not a valid bundle",
    "wrong_site": "the bundle is for another site",
    "expired": "the bundle has expired",
    "rollback": "the bundle's version is lower than one already accepted",
}


class BundleRejected(Exception):
    """A bundle failed one of the trust checks; `reason` is a key of REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        text = REASONS.get(reason, reason)
        super().__init__(f"{reason}: {text}" + (f" ({detail})" if detail else ""))


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def key_id(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def parse_key_spec(spec: str) -> bytes:
    """`ed25519:BASE64` → 32 raw bytes; ValueError with a clear text otherwise."""
    spec = spec.strip()
    algo, sep, data = spec.partition(":")
    if not sep or algo.lower() != "ed25519":
        raise ValueError(f"key {spec[:40]!r} must look like ed25519:BASE64")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key {spec[:40]!r} is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"key {spec[:40]!r} is {len(raw)} bytes, an Ed25519 key is 32")
    return raw


def parse_key_list(spec: str) -> list[bytes]:
    keys = [parse_key_spec(part) for part in spec.split(",") if part.strip()]
    if not keys:
        raise ValueError("no key given")
    return keys


class OpenedEnvelope:
    """An envelope that passed checks 1-3: what remains is the signature."""

    def __init__(self, payload: bytes, message: bytes, candidates: list[tuple[bytes, bytes]]):
        self.payload = payload
        self.message = message  # the bytes the signature covers
        self.candidates = candidates  # (raw pinned key, signature) pairs


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleRejected("bad_envelope", f"{what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleRejected("bad_envelope", f"{what} is not base64") from None


def open_envelope(raw: bytes, pinned_keys: list[bytes], max_size: int = MAX_BUNDLE_BYTES) -> OpenedEnvelope:
    # 1) size cap, before parsing
    if len(raw) > max_size:
        raise BundleRejected("too_large", f"{len(raw)} bytes > {max_size}")
    # 2) envelope shape
    try:
        env = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BundleRejected("bad_envelope", "not JSON") from None
    if not isinstance(env, dict) or set(env) != {"payloadType", "payload", "signatures"}:
        raise BundleRejected("bad_envelope", "expected exactly payloadType, payload, signatures")
    if env["payloadType"] != PAYLOAD_TYPE:
        raise BundleRejected("bad_envelope", f"payloadType is not {PAYLOAD_TYPE}")
    payload = _b64(env["payload"], "payload")
    sigs = env["signatures"]
    if not isinstance(sigs, list) or not sigs or len(sigs) > 16:
        raise BundleRejected("bad_envelope", "signatures must be a non-empty list")
    by_id = {key_id(k): k for k in pinned_keys}
    candidates = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or set(s) != {"keyid", "sig"} or not isinstance(s["keyid"], str):
            raise BundleRejected("bad_envelope", f"signature {i} must have exactly keyid and sig")
        sig = _b64(s["sig"], f"signature {i}")
        if len(sig) != 64:
            raise BundleRejected("bad_envelope", f"signature {i} is not 64 bytes")
        if s["keyid"] in by_id:
            candidates.append((by_id[s["keyid"]], sig))
    # 3) known key id
    if not candidates:
        raise BundleRejected("unknown_key", "key ids " + ", ".join(str(s.get("keyid"))[:16] for s in sigs))
    return OpenedEnvelope(payload, pae(PAYLOAD_TYPE, payload), candidates)


def _instant_ms(value: object, what: str) -> int:
    if not isinstance(value, str):
        raise BundleRejected("bad_payload", f"{what} must be an ISO 8601 string")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BundleRejected("bad_payload", f"{what} is not an ISO 8601 instant") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def accept_payload(payload: bytes, *, site: str | None, last_version: int | None, now: int) -> dict:
    """Checks 5-8 on signed payload bytes; returns the parsed payload.

    `now` is ms since the epoch (from the caller's clock). A payload whose
    version equals `last_version` is accepted: the caller keeps its copy."""
    # 5) payload shape
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BundleRejected("bad_payload", "not JSON") from None
    if not isinstance(doc, dict):
        raise BundleRejected("bad_payload", "not an object")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleRejected("bad_payload", "version must be a positive integer")
    if not isinstance(doc.get("site"), str) or not doc["site"]:
        raise BundleRejected("bad_payload", "site must be a non-empty string")
    if not isinstance(doc.get("messages"), list):
        raise BundleRejected("bad_payload", "messages must be a list")
    _instant_ms(doc.get("issued_at"), "issued_at")
    # 6) site id
    if site and doc["site"] != site:
        raise BundleRejected("wrong_site", f"bundle site {doc['site']!r}, page expects {site!r}")
    # 7) expiry
    if doc.get("expires_at") is not None and _instant_ms(doc["expires_at"], "expires_at") <= now:
        raise BundleRejected("expired", f"expired at {doc['expires_at']}")
    # 8) rollback
    if last_version is not None and version < last_version:
        raise BundleRejected("rollback", f"version {version} < {last_version}")
    return doc

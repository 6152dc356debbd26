"""From an authoring file to signed bundle bytes (site-owner side)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from proactive import signing
from widget.runtime import trust


def load_messages(path: Path) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    doc = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with site, widgets and messages")
    return doc


def last_published_version(bundle_path: Path) -> int | None:
    """The version inside an existing bundle (read, not trusted: it only picks the next number)."""
    try:
        env = json.loads(Path(bundle_path).read_bytes())
        return int(json.loads(base64.b64decode(env["payload"]))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_payload(doc: dict, *, version: int, now: datetime | None = None, expires_at: datetime | None = None) -> bytes:
    now = now or datetime.now(timezone.utc)
    payload = {k: v for k, v in doc.items() if k not in ("version", "issued_at", "expires_at")}
    payload["version"] = version
    payload["issued_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if expires_at is not None:
        payload["expires_at"] = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `90m` from now, or an ISO 8601 instant."""
    now = now or datetime.now(timezone.utc)
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text and text[-1] in units and text[:-1].isdigit():
        return now + timedelta(**{units[text[-1]]: int(text[:-1])})
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def sign_file(messages: Path, keys: list[Path], out: Path, *, version: int | None = None, expires: str | None = None) -> tuple[bytes, int]:
    doc = load_messages(messages)
    if version is None:
        last = last_published_version(out)
        version = 1 if last is None else last + 1
    expires_at = parse_expiry(expires) if expires else None
    payload = build_payload(doc, version=version, expires_at=expires_at)
    envelope = signing.sign_payload(payload, [signing.load_private_key(k) for k in keys])
    return envelope, version


def verify_bundle(raw: bytes, key_spec: str, *, site: str | None = None, last_version: int | None = None,
                  now_ms: int | None = None) -> dict:
    """Every check the browser makes, in its order (widget/runtime/trust.py),
    with `cryptography` standing in for WebCrypto for the signature."""
    try:
        keys = trust.parse_key_list(key_spec)
    except ValueError as exc:
        raise trust.BundleRejected("unknown_key", str(exc)) from None
    if now_ms is None:
        now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    return trust.verify(raw, keys, signing.verify_signature, site=site, last_version=last_version, now=now_ms)

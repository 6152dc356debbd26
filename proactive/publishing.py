"""From an authoring file to signed bundle bytes (site-owner side)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from proactive import authoring, signing
from widget.runtime import boothint, trust, zones


class PublishError(Exception):
    """Signing refused; `.problems` lists file:line:col problems when the
    messages file is invalid."""

    def __init__(self, message: str, problems: list | None = None):
        self.problems = list(problems or [])
        super().__init__(message)


def load_messages(path: Path) -> dict:
    """The messages file as a document, or PublishError listing every problem."""
    source, problems = authoring.check_file(path)
    if problems:
        raise PublishError(f"{path}: {len(problems)} problem(s); nothing signed", problems)
    return source.document


def read_bundle(where: str | Path) -> bytes:
    """A bundle file, or a URL fetched like the widget does (no cookies, at most
    the size cap + 1 bytes, so an oversized answer is still `too_large`)."""
    where = str(where)
    if not where.startswith(("http://", "https://")):
        return Path(where).read_bytes()
    import urllib.request

    request = urllib.request.Request(where, headers={"Accept": "application/json", "Cache-Control": "no-cache"})
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - http(s) only, checked above
        return response.read(trust.MAX_BUNDLE_BYTES + 1)


def last_published_version(bundle: str | Path) -> int | None:
    """The version inside an existing bundle (read, not trusted: it only picks the next number)."""
    try:
        env = json.loads(read_bundle(bundle))
        return int(json.loads(base64.b64decode(env["payload"]))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def tzdata_for(doc: dict) -> dict | None:
    """The tz database file of the zone the business hours name, to travel in
    the signed bundle (the browser has no tz database: widget/runtime/zones.py).
    None when the document names no IANA zone."""
    team = doc.get("team")
    name = team.get("timezone") if isinstance(team, dict) else None
    data = zones.database_tzif(name.strip()) if isinstance(name, str) else None
    if data is None:
        return None   # no zone, UTC, a fixed offset, or one the validator reports
    return {"version": zones.database_version(), "zones": {name.strip(): base64.b64encode(data).decode("ascii")}}


def with_salt(message, site):
    """An experiment's message with its salt written out: the one the engine
    would derive (widget/runtime/experiments.py), carried by the signed
    bundle, so every version keeps it while the variant ids stay."""
    from widget.runtime import experiments

    if not isinstance(message, dict) or "experiment" in message or not isinstance(message.get("id"), str):
        return message
    variants, holdout = message.get("variants"), message.get("holdout", 0)
    if not (variants or holdout) or not isinstance(variants or [], list):
        return message
    ids = [v.get("id") if isinstance(v, dict) else None for v in variants or []]
    if not all(isinstance(i, str) for i in ids) or not isinstance(holdout, (int, float)):
        return message
    ids = ids or [experiments.DEFAULT_ARM]
    return dict(message, experiment=experiments.derive_salt(site, message["id"], ids, holdout))


def build_payload(doc: dict, *, version: int, now: datetime | None = None, expires_at: datetime | None = None) -> bytes:
    now = now or datetime.now(timezone.utc)
    payload = {k: v for k, v in doc.items() if k not in ("version", "issued_at", "expires_at", "tzdata", "boot")}
    tzdata = tzdata_for(doc)
    if tzdata is not None:
        payload["tzdata"] = tzdata
    payload["version"] = version
    payload["issued_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(payload.get("messages"), list):
        payload["messages"] = [with_salt(m, payload.get("site")) for m in payload["messages"]]
    if expires_at is not None:
        payload["expires_at"] = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    # When a message can show at the earliest, per page: the page starts the
    # engine just in time (widget/runtime/boothint.py, docs/embedding.md).
    payload["boot"] = boothint.hint(payload)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `90m` from now, or an ISO 8601 instant."""
    now = now or datetime.now(timezone.utc)
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text and text[-1] in units and text[:-1].isdigit():
        return now + timedelta(**{units[text[-1]]: int(text[:-1])})
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _expiry(expires: str | None, now: datetime) -> datetime | None:
    """`--expires` as an instant in the future, or None."""
    try:
        expires_at = parse_expiry(expires, now) if expires else None
    except ValueError:
        raise PublishError(f"--expires {expires!r}: expected 30d, 12h, 90m or an ISO 8601 instant") from None
    if expires_at is not None and expires_at <= now:
        raise PublishError(f"--expires {expires!r} is not in the future")
    return expires_at


def sign_file(messages: Path, keys: list[Path], out: Path, *, version: int | None = None, expires: str | None = None,
              previous: str | Path | None = None, now: datetime | None = None,
              rollout: float | None = None) -> tuple[bytes, int]:
    """Validate, then sign `messages` into envelope bytes (not written).

    The version defaults to the last published one + 1, read from `out` (the
    bundle being replaced) and `previous`; an explicit version must be above
    it, since browsers refuse a lower one (rollback) and keep their copy on an
    equal one. `rollout` (a percentage): a staged rollout (`stage`). The
    result is checked the way a browser checks it before it is returned."""
    now = now or datetime.now(timezone.utc)
    if rollout is not None:
        return stage(messages, keys, out, percent=rollout, version=version, expires=expires, previous=previous, now=now)
    doc = load_messages(messages)
    known = []
    for path in (out, previous):
        if path is None or not (str(path).startswith(("http://", "https://")) or Path(path).exists()):
            continue
        v = last_published_version(path)
        if v is None and version is None:
            raise PublishError(f"{path}: no readable bundle version (unreachable, or not a bundle): pass --version (above the last published one)")
        if v is not None:
            known.append(v)
    last = max(known) if known else None
    if version is None:
        version = (last or 0) + 1
    elif version < 1:
        raise PublishError(f"version {version}: a version is a positive integer")
    elif last is not None and version <= last:
        raise PublishError(f"version {version} is not above the last published version {last}: browsers that "
                           f"accepted {last} would {'refuse it (rollback)' if version < last else 'keep their copy'}")
    expires_at = _expiry(expires, now)
    private = [load_signing_key(k) for k in keys]
    payload = build_payload(doc, version=version, now=now, expires_at=expires_at)
    envelope = signing.sign_payload(payload, private)
    now_ms = int(now.timestamp() * 1000)
    pins = [signing.raw_public_key(k) for k in private]
    trust.verify(envelope, pins, signing.verify_signature, site=doc.get("site"), last_version=last, now=now_ms)
    return envelope, version


# -- staged rollout (widget/runtime/trust.py, "A staged rollout") -----------------

def rollout_salt(site: str, previous_version: int) -> str:
    """Who is in a rollout over version N: the same visitors for every
    rollout over N (widening, or a fixed candidate replacing a bad one), other
    visitors once N is no longer the base."""
    text = "\0".join(("proactive-rollout", str(site), str(previous_version)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _content(payload: dict) -> dict:
    """A payload without what each signing changes: equal for the same messages."""
    return {k: v for k, v in payload.items() if k not in ("version", "issued_at", "expires_at", "boot", trust.ROLLOUT_FIELD)}


def _published(where, pins: list[bytes], now_ms: int):
    """(raw, its newest payload, the Rollout or None, the opened envelope) of
    the bundle published at `where`, verified with the signing keys (one
    rolls out only over what one signed), or None when there is none."""
    if where is None or not (str(where).startswith(("http://", "https://")) or Path(where).exists()):
        return None
    try:
        raw = read_bundle(where)
    except OSError as exc:
        raise PublishError(f"{where}: cannot read the published bundle ({exc.strerror or exc})") from None
    try:
        opened = trust.open_envelope(raw, pins)
        if not any(signing.verify_signature(k, opened.message, sig) for k, sig in opened.candidates):
            raise trust.BundleRejected("bad_signature")
        _, rollout = trust.accept(opened, site=None, last_version=None, now=now_ms)
    except trust.BundleRejected as exc:
        if exc.reason == "expired":
            raise PublishError(f"{where}: the published bundle has expired ({exc.detail}), and a rollout would keep it "
                               f"for the other visitors: publish without --rollout") from None
        raise PublishError(f"{where}: the published bundle does not verify with these keys ({exc}); a rollout "
                           f"carries the previous version inside the new signed one, so sign with the key(s) "
                           f"that signed it (repeat --key)") from None
    new = json.loads(opened.payload) if rollout is None else rollout.new
    return raw, new, rollout, opened


def stage(messages: Path, keys: list[Path], out: Path, *, percent: float, version: int | None = None,
          expires: str | None = None, previous: str | Path | None = None,
          now: datetime | None = None) -> tuple[bytes, int]:
    """`sign --rollout PERCENT`: the messages as a new version to PERCENT %
    of visitors, the published version to the others, in one signed file.

    Over a published plain version N: version N+1 to PERCENT %. Over a
    rollout in progress (N+1 over N): the same messages re-signed at the
    new percentage, same version (widening; or narrowing, which moves no one
    back), or other messages as N+2 over N (a fixed candidate, to the same
    visitors). PERCENT 100 ends the rollout: a plain bundle of the messages,
    the same version when they are the rolled-out ones."""
    now = now or datetime.now(timezone.utc)
    if not (0 < percent <= 100):
        raise PublishError(f"--rollout {percent:g}: a percentage above 0, at most 100")
    percent = int(percent) if float(percent).is_integer() else float(percent)
    now_ms = int(now.timestamp() * 1000)
    doc = load_messages(messages)
    private = [load_signing_key(k) for k in keys]
    pins = [signing.raw_public_key(k) for k in private]
    published = _published(out, pins, now_ms) or _published(previous, pins, now_ms)
    if published is None:
        raise PublishError(f"--rollout: no published bundle at {out}{' or ' + str(previous) if previous else ''} "
                           f"to roll out from; publish a first version without --rollout")
    _, current, rollout, opened = published
    base = rollout.previous if rollout else current   # what visitors outside the rollout keep
    base_bytes = opened.previous if rollout else opened.payload
    same = rollout is not None and _content(json.loads(build_payload(doc, version=1, now=now))) == _content(current)
    if version is None:
        version = current["version"] if same else current["version"] + 1
    elif version < current["version"] or (version == current["version"] and not same):
        raise PublishError(f"version {version} is not above the last published version {current['version']}")
    expires_at = _expiry(expires, now)
    if doc.get("site") != base["site"]:
        raise PublishError(f"site {doc.get('site')!r} is not the published bundle's {base['site']!r}")
    payload = json.loads(build_payload(doc, version=version, now=now, expires_at=expires_at))
    if percent < 100:
        payload["boot"] = boothint.hint(payload, base)   # one hint for both parts
        payload[trust.ROLLOUT_FIELD] = {"percent": percent, "salt": rollout_salt(base["site"], base["version"]),
                                        "previous": {"version": base["version"],
                                                     "sha256": hashlib.sha256(base_bytes).hexdigest()}}
    payload_bytes = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    envelope = signing.sign_payload(payload_bytes, private)
    if percent < 100:
        env = json.loads(envelope)
        env[trust.PREVIOUS_FIELD] = base64.b64encode(base_bytes).decode("ascii")
        envelope = json.dumps(env, indent=1).encode("utf-8") + b"\n"
    # The self-check, for both parts: a visitor inside, and one who had neither.
    trust.verify(envelope, pins, signing.verify_signature, site=doc.get("site"), now=now_ms,
                 last_version=base["version"] + 1)
    trust.verify(envelope, pins, signing.verify_signature, site=doc.get("site"), now=now_ms)
    return envelope, version


def pause_bundle(bundle: Path, keys: list[Path], *, now: datetime | None = None) -> tuple[bytes, int, int]:
    """The kill switch: the published `bundle`, re-signed as the next version
    with every message paused (none left to show), everything else (site,
    widgets, team, delivery settings) as it was and no expiry. Browsers take it
    as any newer bundle: open pages at their next revalidation (the tag's
    data-revalidate), others at their next page. The current bundle must
    verify with these keys (one cannot pause what one did not sign). Resume:
    sign the messages file again (a newer version still). Returns (envelope,
    version, messages paused)."""
    now = now or datetime.now(timezone.utc)
    private = [load_signing_key(k) for k in keys]
    pins = [signing.raw_public_key(k) for k in private]
    try:
        raw = read_bundle(bundle)
    except OSError as exc:
        raise PublishError(f"{bundle}: cannot read the published bundle ({exc.strerror or exc})") from None
    now_ms = int(now.timestamp() * 1000)
    try:
        current, rollout = trust.verify_publication(raw, pins, signing.verify_signature, now=now_ms)
        current = rollout.new if rollout else current  # a rollout in progress: its new version is paused too
    except trust.BundleRejected as exc:
        if exc.reason != "expired":
            raise PublishError(f"{bundle}: not a bundle these keys signed ({exc})") from None
        current = read_payload(raw)
    doc = {k: v for k, v in current.items()
           if k not in ("version", "issued_at", "expires_at", "tzdata", "boot", "messages", trust.ROLLOUT_FIELD)}
    paused = [m.get("id") for m in current.get("messages", []) if isinstance(m, dict)]
    doc["messages"] = []
    doc["description"] = (f"paused by `proactive pause` at {now.strftime('%Y-%m-%dT%H:%M:%SZ')}: version "
                          f"{current['version']}'s {len(paused)} message(s) ({', '.join(map(str, paused))[:1000]})")
    version = int(current["version"]) + 1
    envelope = signing.sign_payload(build_payload(doc, version=version, now=now), private)
    trust.verify(envelope, pins, signing.verify_signature, site=doc.get("site"), last_version=version - 1, now=now_ms)
    return envelope, version, len(paused)


def load_signing_key(path: Path | str):
    """The private key `sign` needs, or PublishError saying what was given
    instead (the tag's public key, a messages file, no file at all)."""
    given = str(path)
    if given.strip().lower().startswith("ed25519:"):
        raise PublishError(f"--key {given[:20]}…: that is a public key (the script tag's data-key); signing needs "
                           f"the private key file that `proactive keygen --out FILE` wrote")
    path = Path(path)
    if not path.is_file():
        raise PublishError(f"--key {path}: no such key file; create a signing key with `proactive keygen --out {path}` "
                           f"(it prints the public key for the script tag)")
    data = path.read_bytes()[:64 * 1024]
    if b"PRIVATE KEY" not in data:
        text = data.decode("utf-8", "replace").strip()
        if text.lower().startswith("ed25519:"):
            what = "it holds a public key (the script tag's data-key)"
        elif path.suffix.lower() in (".yaml", ".yml", ".json") or text.startswith(("site:", "{")):
            what = "it looks like a messages file: `proactive sign MESSAGES --key KEYFILE --out BUNDLE`"
        else:
            what = "it is not a PEM private key"
        raise PublishError(f"--key {path}: not a private key file ({what}); signing needs the private key file "
                           f"that `proactive keygen --out FILE` wrote")
    try:
        return signing.load_private_key(path)
    except (OSError, ValueError, TypeError) as exc:
        raise PublishError(f"--key {path}: cannot load the private key ({exc})") from None


def write_bundle(envelope: bytes, out: Path) -> None:
    """Replace `out` atomically: a static host never serves half a bundle."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(envelope)
    os.replace(tmp, out)


def verify_bundle(raw: bytes, key_spec: str, *, site: str | None = None, last_version: int | None = None,
                  now_ms: int | None = None, visitor: str | None = None, rollout: bool = False):
    """Every check the browser makes, in its order (widget/runtime/trust.py),
    with `cryptography` standing in for WebCrypto for the signature: the
    payload that runs (for `visitor`, in a staged rollout), or with
    `rollout=True` (that payload, the trust.Rollout or None)."""
    keys = trust.parse_key_list(key_spec)  # ValueError: a usage error, not a rejection
    if now_ms is None:
        now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    result = trust.verify_publication(raw, keys, signing.verify_signature, site=site, last_version=last_version,
                                      now=now_ms, visitor=visitor)
    return result if rollout else result[0]


def read_payload(envelope: bytes) -> dict:
    """The payload of an envelope this process just made or verified."""
    return json.loads(base64.b64decode(json.loads(envelope)["payload"]))

"""Bundle trust checks, in a fixed order, without I/O and without crypto,
and the state of trust in one browser (`BundleTrust`).

The signature itself is checked by the caller (WebCrypto in the browser,
`cryptography` in the CLI) between `open_envelope` and `accept_payload`, so
that this module stays pure standard library and runs unchanged in Pyodide.
`verify` runs the whole sequence with a signature checker passed in; the CLI
and the tests use it. The browser asks `open_envelope` what to verify, and
hands the bytes with WebCrypto's verdict to `BundleTrust`, which decides
which bundle runs and which one the page keeps for the next visit.

Order of checks (each failure is a `BundleRejected` with its own reason):
  1) size cap, before parsing
  2) envelope shape (strict JSON, no duplicate keys, canonical base64)
  3) known key id (a signature by a pinned key must be present)
  4) signature                      -- done by the caller
  5) payload shape (the authoring format, as the engine will compile it)
  6) site id
  7) expiry
  8) version: lower than the last accepted one is a rollback; equal means
     "the same publication": the caller keeps the copy it has

A staged rollout (`proactive sign --rollout 10`) is one file, fetched as
any bundle: the envelope of the new version N+1, whose signed payload says
`rollout: {percent, salt, previous: {version, sha256}}`, and beside it
`previousPayload`, the bytes of version N's payload, bound by that hash
(so signed too: no byte a browser runs is outside the signature's reach).
Step 5 checks the rollout part (`bad_rollout`); between 7 and 8 the part
that runs here is chosen (`Rollout.part_for`): the new version for a
visitor inside the rollout (`in_rollout`: the visitor id's hash, from
experiments.draw, under the percentage) or one who already accepted a
version above N (no way back to N), else version N; a page without a stored
visitor id (consent pending, storage blocked) gets N. Step 8 then applies to
the chosen part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime, timezone

from widget.runtime import experiments
from widget.runtime.constants import BUNDLE_MAX_BYTES as MAX_BUNDLE_BYTES

PAYLOAD_TYPE = "application/vnd.proactive.bundle+json"
MAX_SIGNATURES = 16

REASONS = {
    "too_large": "the bundle is larger than the size cap",
    "bad_envelope": "the bundle is not a signed envelope",
    "unknown_key": "no signature by a key pinned in the script tag",
    "bad_signature": "the signature does not match the payload",
    "no_ed25519": "this browser cannot verify Ed25519 signatures",
    "bad_payload": "the signed payload is not a valid bundle",
    "bad_rollout": "the staged rollout's previous version does not match what the signed payload names",
    "wrong_site": "the bundle is for another site",
    "expired": "the bundle has expired",
    "rollback": "the bundle's version is lower than one already accepted",
}
ORDER = tuple(REASONS)


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

    def __init__(self, payload: bytes, message: bytes, candidates: list[tuple[bytes, bytes]],
                 previous: bytes | None = None):
        self.payload = payload
        self.message = message  # the bytes the signature covers
        self.candidates = candidates  # (raw pinned key, signature) pairs
        self.previous = previous  # a staged rollout's previous payload (bound by its hash in `payload`), or None


def _b64(value: object, what: str) -> bytes:
    """Strict, canonical base64: one encoding per byte string, so that no
    change to the envelope's text leaves the signed bytes unchanged."""
    if not isinstance(value, str):
        raise BundleRejected("bad_envelope", f"{what} is not a string")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleRejected("bad_envelope", f"{what} is not base64") from None
    if base64.b64encode(data).decode("ascii") != value:
        raise BundleRejected("bad_envelope", f"{what} is not canonical base64")
    return data


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def _strict_json(raw: bytes):
    """JSON as RFC 8259 says, minus what parsers disagree on: duplicate keys,
    NaN/Infinity, a byte-order mark, invalid UTF-8."""
    def no_constants(name):
        raise ValueError(f"{name} is not JSON")
    text = raw.decode("utf-8")  # strict: invalid UTF-8 raises
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=no_constants)


def open_envelope(raw: bytes, pinned_keys: list[bytes], max_size: int = MAX_BUNDLE_BYTES) -> OpenedEnvelope:
    # 1) size cap, before parsing
    if len(raw) > max_size:
        raise BundleRejected("too_large", f"{len(raw)} bytes > {max_size}")
    # 2) envelope shape
    try:
        env = _strict_json(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BundleRejected("bad_envelope", "not JSON") from None
    if not isinstance(env, dict) or set(env) - {PREVIOUS_FIELD} != {"payloadType", "payload", "signatures"}:
        raise BundleRejected("bad_envelope", f"expected exactly payloadType, payload, signatures (and {PREVIOUS_FIELD})")
    if env["payloadType"] != PAYLOAD_TYPE:
        raise BundleRejected("bad_envelope", f"payloadType is not {PAYLOAD_TYPE}")
    payload = _b64(env["payload"], "payload")
    previous = _b64(env[PREVIOUS_FIELD], PREVIOUS_FIELD) if PREVIOUS_FIELD in env else None
    sigs = env["signatures"]
    if not isinstance(sigs, list) or not sigs or len(sigs) > MAX_SIGNATURES:
        raise BundleRejected("bad_envelope", f"signatures must be a list of 1 to {MAX_SIGNATURES}")
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
        ids = ", ".join(s["keyid"][:16] for s in sigs)
        pinned = ", ".join(by_id)
        raise BundleRejected("unknown_key", f"signed by {ids}; the tag pins {pinned}")
    return OpenedEnvelope(payload, pae(PAYLOAD_TYPE, payload), candidates, previous)


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
    doc, expires = _payload(payload, site)
    _fresh(doc, expires, now)
    _no_rollback(doc, last_version)
    return doc


def _payload(payload: bytes, site: str | None, what: str = "payload", rollout: bool = True) -> tuple[dict, int | None]:
    """Checks 5 and 6: the parsed payload and its expiry (ms, or None). The
    `rollout` part (`rollout=True`: allowed, checked by `_rollout`) is a
    publication fact, not authoring: the engine's validator does not see it."""
    reason = "bad_payload" if what == "payload" else "bad_rollout"
    # 5) payload shape
    try:
        doc = _strict_json(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BundleRejected(reason, f"the {what} is not JSON") from None
    if not isinstance(doc, dict):
        raise BundleRejected(reason, f"the {what} is not an object")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleRejected(reason, f"the {what}'s version must be a positive integer")
    if not isinstance(doc.get("site"), str) or not doc["site"]:
        raise BundleRejected(reason, f"the {what}'s site must be a non-empty string")
    if not isinstance(doc.get("messages"), list):
        raise BundleRejected(reason, f"the {what}'s messages must be a list")
    if ROLLOUT_FIELD in doc and not rollout:
        raise BundleRejected(reason, f"the {what} is itself a staged rollout")
    try:
        _instant_ms(doc.get("issued_at"), "issued_at")
        expires = _instant_ms(doc["expires_at"], "expires_at") if doc.get("expires_at") is not None else None
    except BundleRejected as exc:
        raise BundleRejected(reason, exc.detail) from None
    problems = _authoring_problems({k: v for k, v in doc.items() if k != ROLLOUT_FIELD})
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise BundleRejected(reason, "; ".join(str(p) for p in problems[:3]) + more)
    # 6) site id
    if site and doc["site"] != site:
        raise BundleRejected("wrong_site", f"bundle site {doc['site']!r}, the tag's data-site is {site!r}")
    return doc, expires


def _fresh(doc: dict, expires: int | None, now: int) -> None:
    # 7) expiry
    if expires is not None and expires <= now:
        raise BundleRejected("expired", f"version {doc['version']} expired at {doc['expires_at']}")


def _no_rollback(doc: dict, last_version: int | None) -> None:
    # 8) rollback
    if last_version is not None and doc["version"] < last_version:
        raise BundleRejected("rollback", f"version {doc['version']} < {last_version} already accepted")


# -- staged rollout ----------------------------------------------------------------

ROLLOUT_FIELD = "rollout"            # in the signed payload of the new version
PREVIOUS_FIELD = "previousPayload"   # in the envelope: the previous version's payload bytes, base64
ROLLOUT_FIELDS = {"percent", "salt", "previous"}


def in_rollout(salt: str, visitor_id: str, percent: float) -> bool:
    """Whether the visitor is in the first `percent` % of visitors for this
    salt: the same draw at every percentage, so widening only adds visitors."""
    return experiments.draw(salt, visitor_id) * 100 < percent


class Rollout:
    """A staged rollout's two signed parts: `new` (the signed payload) to
    `percent` % of visitors, `previous` to the others."""

    __slots__ = ("percent", "salt", "new", "previous", "previous_expires", "part", "why")

    def __init__(self, percent, salt, new, previous, previous_expires):
        self.percent, self.salt = percent, salt
        self.new, self.previous, self.previous_expires = new, previous, previous_expires
        self.part = self.why = None  # the part chosen by `accept`, and why

    def part_for(self, visitor_id: str | None, accepted: int | None) -> tuple[str, str]:
        """("new" | "previous", why): which part runs for this visitor, given
        the highest version this browser already accepted (None: none)."""
        if accepted is not None and accepted > self.previous["version"]:
            return "new", "already_newer"  # never back to the previous version
        if not isinstance(visitor_id, str) or not experiments.VISITOR_ID.match(visitor_id):
            return "previous", "no_visitor_id"
        if in_rollout(self.salt, visitor_id, self.percent):
            return "new", "in_rollout"
        return "previous", "outside_rollout"

    def facts(self) -> dict:
        """What the page may show (status().bundle.rollout)."""
        return {"percent": self.percent, "part": self.part, "why": self.why, "new": self.new["version"],
                "previous": self.previous["version"]}


def _rollout(doc: dict, previous_bytes: bytes | None, site: str | None) -> Rollout | None:
    """Step 5 for the rollout part: None for a plain bundle."""
    spec = doc.get(ROLLOUT_FIELD)
    if spec is None:
        if previous_bytes is not None:
            raise BundleRejected("bad_rollout", f"{PREVIOUS_FIELD} beside a payload that names no rollout")
        return None
    if not isinstance(spec, dict) or set(spec) != ROLLOUT_FIELDS:
        raise BundleRejected("bad_rollout", "rollout must have exactly percent, salt, previous")
    percent, salt, named = spec["percent"], spec["salt"], spec["previous"]
    if not isinstance(percent, (int, float)) or isinstance(percent, bool) or not 0 < percent < 100:  # NaN too
        raise BundleRejected("bad_rollout", f"rollout percent {percent!r} is not above 0 and below 100")
    if not isinstance(salt, str) or not experiments.SALT.match(salt):
        raise BundleRejected("bad_rollout", "rollout salt must be 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(named, dict) or set(named) != {"version", "sha256"}:
        raise BundleRejected("bad_rollout", "rollout previous must have exactly version, sha256")
    version = named["version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < doc["version"]:
        raise BundleRejected("bad_rollout", f"the previous version {version!r} is not below {doc['version']}")
    if previous_bytes is None:
        raise BundleRejected("bad_rollout", f"the envelope has no {PREVIOUS_FIELD}")
    if not isinstance(named["sha256"], str) or hashlib.sha256(previous_bytes).hexdigest() != named["sha256"]:
        raise BundleRejected("bad_rollout", "the previous payload's SHA-256 is not the one the signed payload names")
    previous, expires = _payload(previous_bytes, site, "previous payload", rollout=False)
    if previous["version"] != version or previous["site"] != doc["site"]:
        raise BundleRejected("bad_rollout", "the previous payload's version or site is not the one named")
    return Rollout(percent, salt, doc, previous, expires)


def accept(opened: OpenedEnvelope, *, site: str | None, last_version: int | None, now: int,
           visitor: str | None = None) -> tuple[dict, Rollout | None]:
    """Checks 5-8 on an envelope whose signature (4) holds: (the payload
    that runs for `visitor`, the Rollout with the part chosen, or None). The
    payload returned has no `rollout` field: it is what the engine compiles."""
    doc, expires = _payload(opened.payload, site)
    rollout = _rollout(doc, opened.previous, site)
    _fresh(doc, expires, now)  # an expired publication is refused whole, its previous part included
    if rollout is None:
        _no_rollback(doc, last_version)
        return doc, None
    rollout.part, rollout.why = rollout.part_for(visitor, last_version)
    chosen = {k: v for k, v in doc.items() if k != ROLLOUT_FIELD} if rollout.part == "new" else rollout.previous
    if rollout.part == "previous":
        _fresh(chosen, rollout.previous_expires, now)
    _no_rollback(chosen, last_version)
    return chosen, rollout


def _authoring_problems(doc: dict) -> list:
    """The engine's own validator (bundle.py), so a payload that passes here
    compiles; imported lazily because trust checks must never depend on it
    being importable for the envelope steps."""
    try:
        from widget.runtime import bundle
    except ImportError as exc:  # fail closed: no payload is accepted unchecked
        raise BundleRejected("bad_payload", f"the payload validator could not be loaded ({exc})") from None
    try:
        return bundle.validate(doc)
    except RecursionError:
        return ["rules are nested too deeply"]
    except Exception as exc:  # noqa: BLE001 - a validator bug must not escape as a crash
        return [f"the payload could not be validated ({type(exc).__name__})"]


def verify(raw: bytes, pinned_keys: list[bytes], check_signature, *, site: str | None = None,
           last_version: int | None = None, now: int, max_size: int = MAX_BUNDLE_BYTES,
           visitor: str | None = None) -> dict:
    """All eight checks in order. `check_signature(raw_key, message, sig) -> bool`
    is the only crypto; returns the accepted payload (for a staged rollout,
    the part `visitor` gets) or raises BundleRejected."""
    return verify_publication(raw, pinned_keys, check_signature, site=site, last_version=last_version, now=now,
                              max_size=max_size, visitor=visitor)[0]


def verify_publication(raw: bytes, pinned_keys: list[bytes], check_signature, *, site: str | None = None,
                       last_version: int | None = None, now: int, max_size: int = MAX_BUNDLE_BYTES,
                       visitor: str | None = None) -> tuple[dict, Rollout | None]:
    """`verify`, returning (the accepted payload, the Rollout or None)."""
    opened = open_envelope(raw, pinned_keys, max_size)
    # 4) signature: one valid signature by a pinned key suffices (co-signing)
    if not any(check_signature(k, opened.message, s) for k, s in opened.candidates):
        raise BundleRejected("bad_signature")
    return accept(opened, site=site, last_version=last_version, now=now, visitor=visitor)


# -- trust in one browser ------------------------------------------------------

VERDICTS = ("valid", "invalid", "unsupported")  # the caller's signature check (step 4)


def _signature(opened: OpenedEnvelope, verdict: str | None, detail: str) -> None:
    """Step 4 from the caller's verdict on `opened.message` and its candidates."""
    if verdict == "valid":
        return
    if verdict == "unsupported":
        raise BundleRejected("no_ed25519", detail)
    if verdict == "invalid":
        raise BundleRejected("bad_signature")
    raise BundleRejected("bad_signature", f"no signature verdict ({verdict!r})")  # fail closed


class Keep:
    """What to do with an offered bundle that passed every check.

    `run`: it becomes the bundle this page runs (started, or swapped in for
    the running one). `store`: the page keeps its bytes as the last good
    bundle, with `version` as the new floor; `lower_floor`: the stored floor
    came from a key no longer pinned, so this version may replace a higher
    one. `kind`: "cached", "newer", "same" (the publication already running,
    or equal to the floor) or "unchanged" (the very bytes already cached).
    `rollout`: for a staged rollout, which part runs here and why
    (Rollout.facts), else None."""

    __slots__ = ("kind", "run", "store", "lower_floor", "payload", "version", "compiled", "rollout")

    def __init__(self, kind, *, run=False, store=False, lower_floor=False, payload=None, compiled=None, rollout=None):
        self.kind = kind
        self.rollout = rollout
        self.run = run
        self.store = store
        self.lower_floor = lower_floor
        self.payload = payload
        self.version = payload["version"] if payload else None
        self.compiled = compiled

    def __repr__(self):
        flags = [name for name in ("run", "store", "lower_floor") if getattr(self, name)]
        return f"Keep({self.kind!r}, version={self.version}, {', '.join(flags) or 'nothing'})"


class BundleTrust:
    """Which bundle runs in this browser, python-tuf's trusted set style: every
    rule about the cached copy, the fetched one, the rollback floor and key
    rotation lives here; the caller only fetches, stores, and checks
    signatures (`open_envelope` says what to check).

    `floor`: the highest version this browser accepted before (the page
    stores it beside the cached bundle), or None. Offer the cached bundle
    first (if any), then the fetched one; each offer returns a `Keep` or
    raises `BundleRejected` and leaves the state as it was, except that a
    cached bundle signed by a key the tag no longer pins drops the floor:
    after a key compromise and rotation, a bundle the thief signed with a huge
    version cannot lock the site owner out.

    `compile(payload)`, if given, turns a payload that will run into the
    engine's compiled bundle (kept on the `Keep`); its failure is a
    `bad_payload` rejection, before any state changes.

    `visitor`: the stable visitor id stored in this browser (None: consent
    pending, storage blocked), which a staged rollout's part is chosen by."""

    def __init__(self, keys: list[bytes], *, site: str | None = None, floor: int | None = None, compile=None,
                 visitor: str | None = None):
        self.keys = keys
        self.visitor = visitor
        self.site = site
        self.floor = floor if isinstance(floor, int) and not isinstance(floor, bool) else None
        self.floor_dropped = False
        self.compile = compile
        self.current = None  # the payload that runs (or is about to)
        self._cached_raw = None
        self._last_opened = (None, None)  # (raw, OpenedEnvelope): open() of the same bytes twice

    def open(self, raw: bytes) -> OpenedEnvelope:
        """Checks 1-3 (`open_envelope` with the pinned keys): what the caller
        verifies before offering the same bytes. The last envelope opened is
        remembered by its bytes, so offering it does not parse it again."""
        raw = bytes(raw)
        if self._last_opened[0] == raw:
            return self._last_opened[1]
        opened = open_envelope(raw, self.keys)
        self._last_opened = (raw, opened)
        return opened

    def _accept(self, raw: bytes, verdict, detail, now: int, last_version) -> tuple[dict, dict | None]:
        """(payload, rollout facts or None)."""
        opened = self.open(raw)
        _signature(opened, verdict, detail)
        payload, rollout = accept(opened, site=self.site, last_version=last_version, now=now, visitor=self.visitor)
        return payload, rollout.facts() if rollout else None

    def _compiled(self, payload: dict):
        if self.compile is None:
            return None
        try:
            return self.compile(payload)
        except BundleRejected:
            raise
        except Exception as exc:  # noqa: BLE001 - a payload the engine cannot run is a bad payload
            problems = getattr(exc, "problems", None)
            detail = "; ".join(str(p) for p in problems[:5]) if problems else f"{type(exc).__name__}: {exc}"
            raise BundleRejected("bad_payload", detail) from None

    def offer_cached(self, raw: bytes, verdict: str | None, now: int, detail: str = "") -> Keep:
        """The copy this browser kept from an earlier page: it runs at once
        unless it is below the floor, expired, or no longer trusted."""
        self._cached_raw = bytes(raw)
        try:
            payload, rollout = self._accept(raw, verdict, detail, now, self.floor)
        except BundleRejected as exc:
            if exc.reason == "unknown_key" and self.floor is not None:
                self.floor, self.floor_dropped = None, True
            raise
        compiled = self._compiled(payload)
        self.current = payload
        return Keep("cached", run=True, payload=payload, compiled=compiled, rollout=rollout)

    def offer_fetched(self, raw: bytes, verdict: str | None, now: int, detail: str = "") -> Keep:
        """The bundle endpoint's answer: newer than what runs (and the floor)
        replaces it and is kept; equal is the same publication; lower is a
        rollback."""
        if self._cached_raw is not None and bytes(raw) == self._cached_raw:
            return Keep("unchanged")  # a 304, or republished unchanged
        running = self.current["version"] if self.current else 0
        base = max(self.floor or 0, running) or None
        payload, rollout = self._accept(raw, verdict, detail, now, base)
        if base is not None and payload["version"] <= base and self.current is not None:
            return Keep("same", payload=payload, rollout=rollout)  # keep the copy that runs
        kind = "same" if base is not None and payload["version"] <= base else "newer"
        compiled = self._compiled(payload)
        self.current = payload
        return Keep(kind, run=True, store=True, lower_floor=self.floor_dropped, payload=payload, compiled=compiled,
                    rollout=rollout)

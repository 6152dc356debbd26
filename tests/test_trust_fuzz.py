"""Fuzz: thousands of random mutations of a signed bundle, none accepted, and
every refusal a named BundleRejected (never another exception).

Mutations change what is signed or who signed it: bit flips and truncations
of the envelope bytes, edits/re-encodings/reorderings of the payload bytes
(the signature covers bytes, not JSON meaning), swapped or altered
signatures and key ids, other payload types, and replays of older or
foreign bundles signed with the right key; and a staged rollout's parts
(the previous payload served beside the signed one: altered, swapped for
another correctly signed payload, dropped, added to a plain bundle).
(Reformatting only the envelope's own JSON keeps the signed bytes;
test_trust.py shows it accepted.)
Seeded: a failure prints the seed and the mutation to reproduce it."""

from __future__ import annotations

import base64
import json
import random
from datetime import datetime, timedelta, timezone

from proactive import publishing, signing
from widget.runtime import trust

NOW = datetime(2026, 5, 28, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
SEED = 20261125
ROUNDS = 1500

KEY = signing.generate_private_key()
STRANGER = signing.generate_private_key()
PINS = signing.public_key_spec(KEY)
VERSION = 5


def doc(**extra):
    return {"site": "acme", "widgets": [{"id": "main"}], "messages": [
        {"id": "hello", "type": "proactive", "widget": "main", "content": {"text": "Hi — ünïcode ✓"},
         "rules": {"all": [{"rule": "time_on_page", "op": "greater", "value": 3},
                           {"rule": "country", "op": "equals", "value": ["DE", "AT"]}]}}], **extra}


def payload(version=VERSION, site="acme", expires_at=NOW + timedelta(days=30)) -> bytes:
    return publishing.build_payload(doc(site=site), version=version, now=NOW, expires_at=expires_at)


ORIGINAL_PAYLOAD = payload()
ORIGINAL = signing.sign_payload(ORIGINAL_PAYLOAD, [KEY])
ENV = json.loads(ORIGINAL)
REPLAYS = [  # correctly signed by KEY, but not acceptable here
    signing.sign_payload(payload(version=VERSION - 1), [KEY]),
    signing.sign_payload(payload(version=1), [KEY]),
    signing.sign_payload(payload(site="evil"), [KEY]),
    signing.sign_payload(payload(expires_at=NOW - timedelta(minutes=1)), [KEY]),
    signing.sign_payload(payload(expires_at=NOW), [KEY]),
]
OTHER_SIGS = [json.loads(signing.sign_payload(payload(version=v), [KEY]))["signatures"][0]["sig"] for v in (6, 7, 8)]
STRANGER_ENV = json.loads(signing.sign_payload(ORIGINAL_PAYLOAD, [STRANGER]))


def rollout_bundle(previous: bytes, version=VERSION + 1, percent=10, *, named: bytes | None = None, key=KEY,
                   expires_at=NOW + timedelta(days=30)) -> bytes:
    """A staged rollout as `proactive sign --rollout` writes it: version
    `version` signed, naming `named` (default: `previous`) by its hash, with
    `previous` beside it."""
    import hashlib

    new = json.loads(publishing.build_payload(doc(), version=version, now=NOW, expires_at=expires_at))
    named_payload = json.loads(named or previous)
    new["rollout"] = {"percent": percent, "salt": "fuzz", "previous": {
        "version": named_payload["version"], "sha256": hashlib.sha256(named or previous).hexdigest()}}
    env = json.loads(signing.sign_payload(json.dumps(new, separators=(",", ":")).encode(), [key]))
    env["previousPayload"] = base64.b64encode(previous).decode()
    return json.dumps(env, indent=1).encode()


ROLLOUT = rollout_bundle(ORIGINAL_PAYLOAD)   # new = 6 to 10 %, previous = the original (5)
ROLLOUT_ENV = json.loads(ROLLOUT)


def check(raw: bytes) -> dict:
    return publishing.verify_bundle(raw, PINS, site="acme", last_version=VERSION, now_ms=NOW_MS)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def envelope(payload_b64=None, signatures=None, payload_type=None) -> bytes:
    env = {"payloadType": ENV["payloadType"] if payload_type is None else payload_type,
           "payload": ENV["payload"] if payload_b64 is None else payload_b64,
           "signatures": ENV["signatures"] if signatures is None else signatures}
    return json.dumps(env, indent=1).encode()


def flip_bits(data: bytes, rng: random.Random, n: int) -> bytes:
    out = bytearray(data)
    for _ in range(n):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def shuffled(d: dict, rng: random.Random) -> dict:
    items = list(d.items())
    while len(items) > 1 and [k for k, _ in items] == list(d):
        rng.shuffle(items)
    return {k: shuffled(v, rng) if isinstance(v, dict) else v for k, v in items}


# Each mutation: rng -> (description, bytes)
def m_bitflip(rng):
    n = rng.choice([1, 1, 1, 2, 3, 8])
    return f"{n} bit flip(s) in the envelope", flip_bits(ORIGINAL, rng, n)


def m_truncate(rng):
    cut = rng.randrange(len(ORIGINAL.rstrip()))
    return f"envelope truncated to {cut} bytes", ORIGINAL[:cut]


def m_payload_bitflip(rng):
    return "bit flip in the payload bytes", envelope(b64(flip_bits(ORIGINAL_PAYLOAD, rng, rng.choice([1, 2]))))


def m_payload_truncate(rng):
    cut = rng.randrange(len(ORIGINAL_PAYLOAD))
    return f"payload truncated to {cut} bytes", envelope(b64(ORIGINAL_PAYLOAD[:cut]))


def m_payload_extend(rng):
    extra = rng.choice([b" ", b"\n", b"\x00", b"{}", b" " * rng.randrange(1, 9)])
    return f"payload extended by {extra!r}", envelope(b64(ORIGINAL_PAYLOAD + extra if rng.random() < 0.7 else extra + ORIGINAL_PAYLOAD))


def m_payload_reencoded(rng):
    parsed = json.loads(ORIGINAL_PAYLOAD)
    options = rng.choice([{"indent": 2}, {"sort_keys": True}, {"ensure_ascii": True}, {}, {"separators": (", ", ": ")}])
    return f"payload re-encoded with {options}", envelope(b64(json.dumps(parsed, **options).encode()))


def m_payload_reordered(rng):
    parsed = shuffled(json.loads(ORIGINAL_PAYLOAD), rng)
    return "payload fields reordered", envelope(b64(json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()))


def m_payload_edited(rng):
    parsed = json.loads(ORIGINAL_PAYLOAD)
    field, value = rng.choice([
        ("version", VERSION + rng.randrange(1, 1000)), ("site", "evil"), ("expires_at", None),
        ("expires_at", "2099-01-01T00:00:00Z"), ("issued_at", "2030-01-01T00:00:00Z"),
        ("messages", []), ("messages", [dict(parsed["messages"][0], content={"text": "Send your password"})]),
    ])
    parsed[field] = value
    return f"payload edited: {field}={value!r}", envelope(b64(json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()))


def m_signature_flip(rng):
    sig = bytearray(base64.b64decode(ENV["signatures"][0]["sig"]))
    sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
    return "bit flip in the signature", envelope(signatures=[{"keyid": ENV["signatures"][0]["keyid"], "sig": b64(bytes(sig))}])


def m_signature_swapped(rng):
    choice = rng.randrange(4)
    if choice == 0:
        sigs = [{"keyid": ENV["signatures"][0]["keyid"], "sig": rng.choice(OTHER_SIGS)}]
    elif choice == 1:
        sigs = [{"keyid": ENV["signatures"][0]["keyid"], "sig": STRANGER_ENV["signatures"][0]["sig"]}]
    elif choice == 2:
        sigs = STRANGER_ENV["signatures"]
    else:
        sigs = [{"keyid": ENV["signatures"][0]["keyid"], "sig": b64(rng.randbytes(64))}]
    return f"signature swapped (kind {choice})", envelope(signatures=sigs)


def m_keyid(rng):
    keyid = rng.choice(["", "0" * 16, ENV["signatures"][0]["keyid"].upper(), ENV["signatures"][0]["keyid"][:-1],
                        STRANGER_ENV["signatures"][0]["keyid"], rng.randbytes(8).hex()])
    return f"key id {keyid!r}", envelope(signatures=[{"keyid": keyid, "sig": ENV["signatures"][0]["sig"]}])


def m_payload_type(rng):
    t = rng.choice(["application/json", trust.PAYLOAD_TYPE.upper(), trust.PAYLOAD_TYPE + " ", "", "text/plain"])
    return f"payloadType {t!r}", envelope(payload_type=t)


def m_shape(rng):
    env = json.loads(ORIGINAL)
    choice = rng.randrange(6)
    if choice == 0:
        env.pop(rng.choice(list(env)))
    elif choice == 1:
        env[rng.choice(["extra", "payload_", "Signatures"])] = "x"
    elif choice == 2:
        env["signatures"] = env["signatures"][0]
    elif choice == 3:
        env["signatures"] = [dict(env["signatures"][0], extra=1)]
    elif choice == 4:
        env["payload"] = env["payload"].rstrip("=") or "A"
    else:
        env["payload"] = " " + env["payload"]
    return f"envelope shape change {choice}", json.dumps(env).encode()


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def m_noncanonical(rng):
    """Same bytes, other text: set the unused low bits of the last base64
    character before the padding (a lenient decoder would not notice)."""
    def bend(text):
        i = text.rstrip("=")
        spare = {1: 2, 2: 4}[len(text) - len(i)] if text.endswith("=") else 0
        if not spare:
            return text.rstrip("=") + "="  # nothing to bend: a padding change instead
        v = B64.index(i[-1])
        return i[:-1] + B64[(v & ~((1 << spare) - 1)) | rng.randrange(1, 1 << spare)] + text[len(i):]
    sig = ENV["signatures"][0]
    return "non-canonical base64 signature", envelope(signatures=[{"keyid": sig["keyid"], "sig": bend(sig["sig"])}])


def m_replay(rng):
    return "replay of another bundle signed by the right key", rng.choice(REPLAYS)


def rollout_envelope(**fields) -> bytes:
    env = dict(ROLLOUT_ENV, **fields)
    return json.dumps({k: v for k, v in env.items() if v is not None}, indent=1).encode()


def m_rollout_previous(rng):
    """The part beside the signature: its bytes altered, or another payload
    (even one correctly signed by the right key) in its place."""
    choice = rng.randrange(5)
    if choice == 0:
        previous = flip_bits(ORIGINAL_PAYLOAD, rng, rng.choice([1, 2, 8]))
    elif choice == 1:
        previous = ORIGINAL_PAYLOAD[:rng.randrange(len(ORIGINAL_PAYLOAD))]
    elif choice == 2:
        previous = base64.b64decode(json.loads(rng.choice(REPLAYS))["payload"])
    elif choice == 3:
        parsed = json.loads(ORIGINAL_PAYLOAD)
        parsed["messages"][0]["content"] = {"text": "Send your password"}
        previous = json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        previous = json.dumps(json.loads(ORIGINAL_PAYLOAD), indent=rng.choice([None, 1, 2])).encode()
    return f"rollout previous payload replaced (kind {choice})", rollout_envelope(previousPayload=b64(previous))


def m_rollout_shape(rng):
    """The rollout's parts dropped, moved or unsigned."""
    choice = rng.randrange(5)
    if choice == 0:
        return "rollout without its previous payload", rollout_envelope(previousPayload=None)
    if choice == 1:
        env = dict(ENV, previousPayload=b64(ORIGINAL_PAYLOAD))
        return "a previous payload beside a plain bundle", json.dumps(env).encode()
    if choice == 2:
        new = json.loads(base64.b64decode(ROLLOUT_ENV["payload"]))
        new["rollout"]["percent"] = rng.choice([50, 100, 99.9])
        return "rollout percentage widened without a signature", rollout_envelope(payload=b64(json.dumps(new).encode()))
    if choice == 3:
        text = ROLLOUT_ENV["previousPayload"]
        return "non-canonical previous payload", rollout_envelope(previousPayload=text.rstrip("=") or "A")
    sigs = STRANGER_ENV["signatures"]
    return "rollout signed by a stranger", json.dumps(dict(ROLLOUT_ENV, signatures=sigs)).encode()


MUTATIONS = [m_bitflip, m_bitflip, m_bitflip, m_truncate, m_truncate, m_payload_bitflip, m_payload_truncate,
             m_payload_extend, m_payload_reencoded, m_payload_reordered, m_payload_edited, m_signature_flip,
             m_signature_swapped, m_keyid, m_payload_type, m_shape, m_replay, m_noncanonical,
             m_rollout_previous, m_rollout_shape]


def test_the_original_is_accepted():
    assert check(ORIGINAL)["version"] == VERSION
    assert check(ROLLOUT)["version"] == VERSION  # no visitor id: the previous part


def test_a_rollout_over_a_correctly_signed_but_mismatched_previous_is_refused():
    """Named by hash: the previous part cannot be another real publication."""
    older = base64.b64decode(json.loads(REPLAYS[0])["payload"])   # version 4, signed by KEY
    assert _reason(rollout_envelope(previousPayload=b64(older))) == "bad_rollout"
    assert _reason(rollout_bundle(ORIGINAL_PAYLOAD, named=older)) == "bad_rollout"  # names 4, serves 5
    # An honest 5 over 4 where 5 was accepted before: 5 runs, never 4.
    assert check(rollout_bundle(older, version=VERSION))["version"] == VERSION


def _reason(raw):
    try:
        check(raw)
    except trust.BundleRejected as exc:
        return exc.reason
    return "accepted"


def test_no_mutation_is_accepted():
    rng = random.Random(SEED)
    reasons: dict[str, int] = {}
    tried = 0
    for i in range(ROUNDS):
        what, raw = rng.choice(MUTATIONS)(rng)
        assert raw != ORIGINAL, what
        try:
            result = check(raw)
        except trust.BundleRejected as exc:
            reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"seed {SEED} round {i}: {what} raised {type(exc).__name__}: {exc}\n{raw[:300]!r}") from exc
        else:
            raise AssertionError(f"seed {SEED} round {i}: {what} was ACCEPTED (version {result.get('version')})\n{raw[:300]!r}")
        tried += 1
    assert tried >= 1000
    # The mutations reach every check after the size cap, not only the parser.
    assert {"bad_envelope", "unknown_key", "bad_signature", "bad_rollout", "wrong_site", "expired",
            "rollback"} <= set(reasons), reasons


def test_the_browser_half_gives_the_same_verdict_as_proactive_verify():
    """The worker drives widget.runtime.adapter exactly like this (WebCrypto in
    place of `cryptography`): same reasons, never an exception, nothing accepted."""
    from widget.runtime.adapter import Runtime

    def browser(raw: bytes) -> str:
        rt = Runtime(json.dumps({"keys": PINS, "site": "acme", "context": {}, "floor": VERSION}))
        opened = json.loads(rt.signing_request(raw))
        verdict = None
        if opened["ok"]:
            message = base64.b64decode(opened["message"])
            valid = any(signing.verify_signature(base64.b64decode(k), message, base64.b64decode(s))
                        for k, s in opened["candidates"])
            verdict = "valid" if valid else "invalid"
        accepted = json.loads(rt.offer(raw, "fetched", verdict, "", NOW_MS))
        assert opened["ok"] or accepted["reason"] == opened["reason"]
        return "accepted" if accepted["ok"] else accepted["reason"]

    def cli(raw: bytes) -> str:
        try:
            check(raw)
        except trust.BundleRejected as exc:
            return exc.reason
        return "accepted"

    assert browser(ORIGINAL) == cli(ORIGINAL) == "accepted"
    rng = random.Random(SEED + 1)
    for i in range(300):
        what, raw = rng.choice(MUTATIONS)(rng)
        assert browser(raw) == cli(raw) != "accepted", (i, what)

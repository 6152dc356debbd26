"""Keys and envelopes on the site owner's side (proactive/signing.py)."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from proactive import signing
from widget.runtime import trust


def test_private_key_file_round_trip_and_permissions(tmp_path):
    key = signing.generate_private_key()
    signing.write_private_key(key, tmp_path / "k")
    assert stat.S_IMODE(os.stat(tmp_path / "k").st_mode) == 0o600
    assert signing.raw_public_key(signing.load_private_key(tmp_path / "k")) == signing.raw_public_key(key)
    with pytest.raises(FileExistsError):
        signing.write_private_key(signing.generate_private_key(), tmp_path / "k")


def test_a_non_ed25519_key_file_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "ec").write_bytes(pem)
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        signing.load_private_key(tmp_path / "ec")


def test_envelope_is_dsse_over_the_exact_bytes_with_one_signature_per_key():
    a, b = signing.generate_private_key(), signing.generate_private_key()
    payload = b'{"site":"acme","version":1}'
    env = json.loads(signing.sign_payload(payload, [a, b]))
    assert set(env) == {"payloadType", "payload", "signatures"} and env["payloadType"] == trust.PAYLOAD_TYPE
    assert base64.b64decode(env["payload"]) == payload
    message = trust.pae(trust.PAYLOAD_TYPE, payload)
    for key, sig in zip((a, b), env["signatures"]):
        raw = signing.raw_public_key(key)
        assert sig["keyid"] == trust.key_id(raw)
        assert signing.verify_signature(raw, message, base64.b64decode(sig["sig"]))
        assert not signing.verify_signature(raw, message + b" ", base64.b64decode(sig["sig"]))


def test_public_key_spec_is_what_the_tag_takes():
    key = signing.generate_private_key()
    spec = signing.public_key_spec(key)
    assert spec.startswith("ed25519:") and len(spec) == len("ed25519:") + 44
    assert trust.parse_key_list(f"{spec}, {spec}") == [signing.raw_public_key(key)] * 2

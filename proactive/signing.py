"""Ed25519 keys and DSSE-style envelopes for rule bundles.

Signatures cover the exact payload bytes (through DSSE's pre-authentication
encoding), never a re-serialisation of parsed JSON."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from widget.runtime.trust import PAYLOAD_TYPE, key_id, pae, parse_key_spec

__all__ = [
    "PAYLOAD_TYPE",
    "generate_private_key",
    "load_private_key",
    "write_private_key",
    "public_key_spec",
    "sign_payload",
    "verify_signature",
]


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a PEM private key readable only by its owner; refuse to overwrite."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def raw_public_key(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_spec(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The form the script tag's data-key takes: `ed25519:BASE64`."""
    return "ed25519:" + base64.b64encode(raw_public_key(key)).decode("ascii")


def sign_payload(payload: bytes, keys: list[Ed25519PrivateKey], payload_type: str = PAYLOAD_TYPE) -> bytes:
    """Return the envelope (JSON bytes) signing `payload` with every key."""
    message = pae(payload_type, payload)
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {"keyid": key_id(raw_public_key(k)), "sig": base64.b64encode(k.sign(message)).decode("ascii")}
            for k in keys
        ],
    }
    return json.dumps(envelope, indent=1).encode("utf-8") + b"\n"


def verify_signature(raw_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_public_keys(spec: str) -> list[bytes]:
    return [parse_key_spec(part) for part in spec.split(",") if part.strip()]

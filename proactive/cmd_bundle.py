"""`proactive keygen | sign | verify | validate | schema`."""

from __future__ import annotations

import sys
from pathlib import Path

ADD_ARGUMENTS_TAKES_COMMAND = True


def add_arguments(p, command: str) -> None:
    if command == "keygen":
        p.add_argument("--out", type=Path, default=Path("proactive-signing.key"), help="private key file (created 0600)")
    elif command == "sign":
        p.add_argument("messages", type=Path)
        p.add_argument("--key", type=Path, action="append", required=True, help="private key (repeat to co-sign)")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--version", type=int, help="default: last published version + 1")
        p.add_argument("--expires", help="30d, 12h or an ISO 8601 instant")
    elif command == "verify":
        p.add_argument("bundle", type=Path)
        p.add_argument("--key", required=True, help="ed25519:BASE64[,ed25519:…] as in the script tag")
        p.add_argument("--site")
    elif command == "validate":
        p.add_argument("messages", type=Path)
    p.set_defaults(_command=command)


def run(args) -> int:
    return {"keygen": keygen, "sign": sign, "verify": verify, "validate": validate, "schema": schema}[args._command](args)


def keygen(args) -> int:
    from proactive import signing

    key = signing.generate_private_key()
    try:
        signing.write_private_key(key, args.out)
    except FileExistsError:
        print(f"proactive keygen: {args.out} exists; refusing to overwrite a key", file=sys.stderr)
        return 1
    print(signing.public_key_spec(key))
    return 0


def sign(args) -> int:
    from proactive import publishing

    envelope, version = publishing.sign_file(args.messages, args.key, args.out, version=args.version, expires=args.expires)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(envelope)
    print(f"signed {args.messages} → {args.out} (version {version})")
    return 0


def verify(args) -> int:
    from proactive import publishing
    from widget.runtime.trust import BundleRejected

    try:
        payload = publishing.verify_bundle(args.bundle.read_bytes(), args.key, site=args.site)
    except BundleRejected as exc:
        print(f"{args.bundle}: rejected: {exc}", file=sys.stderr)
        return 1
    print(f"{args.bundle}: ok (site {payload['site']}, version {payload['version']})")
    return 0


def validate(args) -> int:
    print("proactive validate: not implemented yet", file=sys.stderr)
    return 2


def schema(args) -> int:
    print("proactive schema: not implemented yet", file=sys.stderr)
    return 2

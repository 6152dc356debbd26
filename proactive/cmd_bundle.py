"""`proactive keygen | sign | pause | verify | validate | schema`: from a messages file
to a signed bundle a static host serves (docs/publishing.md).

Exit status: 0 done / valid / accepted; 1 invalid file or rejected bundle;
2 a usage problem (unreadable key, bad option)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

ADD_ARGUMENTS_TAKES_COMMAND = True


def add_arguments(p, command: str) -> None:
    if command == "keygen":
        p.add_argument("--out", type=Path, default=Path("proactive-signing.key"),
                       help="private key file to create (mode 0600), in the current folder unless a path is given")
    elif command == "sign":
        p.add_argument("messages", type=Path, help="messages file (YAML or JSON)")
        p.add_argument("--key", type=Path, action="append", required=True,
                       help="private key file; repeat to co-sign (key rotation)")
        p.add_argument("--out", type=Path, required=True, help="the bundle to write (its version is read first)")
        p.add_argument("--version", type=int, help="default: the last published version + 1")
        p.add_argument("--previous", help="the last published bundle (file or URL), when --out is a new path")
        p.add_argument("--expires", help="30d, 12h, 90m from now, or an ISO 8601 instant")
        p.add_argument("--rollout", type=_percent, metavar="PERCENT",
                       help="a staged rollout: the new version to PERCENT %% of visitors, the published one to the "
                            "others; later --rollout 50, 100 widens it (docs/publishing.md)")
    elif command == "pause":
        p.add_argument("--key", type=Path, action="append", required=True,
                       help="private key file the published bundle was signed with; repeat to co-sign")
        p.add_argument("--out", type=Path, required=True,
                       help="the published bundle: read, then replaced by its paused next version")
    elif command == "verify":
        p.add_argument("bundle", help="a bundle file, or its http(s) URL as browsers fetch it")
        p.add_argument("--key", required=True,
                       help="ed25519:BASE64[,ed25519:…] as in the script tag's data-key (or a key file)")
        p.add_argument("--site", help="the tag's data-site, when it has one")
        p.add_argument("--last-version", type=int, help="the version a returning visitor's browser already accepted")
        p.add_argument("--now", help="check expiry at this ISO 8601 instant instead of now")
        p.add_argument("--visitor", help="a visitor id (status().visitor): which part of a staged rollout it gets")
    elif command == "validate":
        p.add_argument("messages", type=Path, nargs="+", help="messages file(s), YAML or JSON")
    elif command == "schema":
        p.add_argument("--out", type=Path, help="write the schema here instead of printing it")
    p.set_defaults(_command=command)


def run(args) -> int:
    return {"keygen": keygen, "sign": sign, "pause": pause, "verify": verify, "validate": validate,
            "schema": schema}[args._command](args)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def keygen(args) -> int:
    from proactive import signing
    from widget.runtime import trust

    key = signing.generate_private_key()
    try:
        signing.write_private_key(key, args.out)
    except FileExistsError:
        _err(f"proactive keygen: {args.out} exists; refusing to overwrite a key")
        return 1
    except OSError as exc:
        _err(f"proactive keygen: cannot write {args.out} ({exc.strerror})")
        return 2
    print(signing.public_key_spec(key))
    _err(f"private key written to {args.out} (mode 0600, key id {trust.key_id(signing.raw_public_key(key))}); "
         f"keep it secret. Put the line above in the script tag's data-key.")
    return 0


def validate(args) -> int:
    from proactive import authoring

    status = 0
    for path in args.messages:
        source, problems = authoring.check_file(path)
        warnings = authoring.warnings(source) if source else []
        for p in problems + warnings:
            print(p)
        if problems:
            _err(f"{path}: {len(problems)} problem(s)")
            status = 1
        else:
            count = len(source.document.get("messages") or [])
            also = f", {len(warnings)} warning(s)" if warnings else ""
            _err(f"{path}: ok ({count} message{'s' if count != 1 else ''}{also})")
    return status


def schema(args) -> int:
    from proactive import schema as schema_mod

    text = schema_mod.dumps()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        _err(f"schema written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def sign(args) -> int:
    from proactive import authoring, publishing, signing
    from widget.runtime import trust

    source, problems = authoring.check_file(args.messages)
    for w in authoring.warnings(source) if source and not problems else []:
        print(w)
    try:
        envelope, version = publishing.sign_file(args.messages, args.key, args.out, version=args.version,
                                                 expires=args.expires, previous=args.previous, rollout=args.rollout)
    except publishing.PublishError as exc:
        for p in exc.problems:
            print(p)
        _err(f"proactive sign: {exc}")
        return 1 if exc.problems else 2
    except trust.BundleRejected as exc:  # the self-check: should not happen
        _err(f"proactive sign: the signed bundle does not verify: {exc}")
        return 1
    publishing.write_bundle(envelope, args.out)
    payload = publishing.read_payload(envelope)
    pins = ",".join(signing.public_key_spec(signing.load_private_key(k)) for k in args.key)
    expiry = f", expires {payload['expires_at']}" if payload.get("expires_at") else ""
    staged = payload.get(trust.ROLLOUT_FIELD)
    to = (f" to {staged['percent']:g} % of visitors, version {staged['previous']['version']} to the others"
          if staged else "")
    print(f"signed {args.messages} → {args.out} (site {payload['site']}, version {version}{to}{expiry})")
    _err(f"data-key for the script tag: {pins}")
    return 0


def pause(args) -> int:
    """The kill switch (docs/publishing.md, "Pausing every message")."""
    from proactive import publishing

    try:
        envelope, version, paused = publishing.pause_bundle(args.out, args.key)
    except publishing.PublishError as exc:
        _err(f"proactive pause: {exc}")
        return 1 if "not a bundle" in str(exc) else 2
    publishing.write_bundle(envelope, args.out)
    print(f"paused {paused} message(s): {args.out} is now version {version}, with no message to show; "
          f"open pages stop within their revalidation interval (data-revalidate), "
          f"resume with `proactive sign MESSAGES --key KEY --out {args.out}`")
    return 0


def verify(args) -> int:
    from proactive import publishing, signing
    from widget.runtime import trust

    try:
        spec = _key_spec(args.key, signing)
        trust.parse_key_list(spec)
    except (OSError, ValueError) as exc:
        _err(f"proactive verify: --key: {exc}")
        return 2
    now_ms = None
    if args.now:
        try:
            now_ms = int(publishing.parse_expiry(args.now, datetime.now(timezone.utc)).timestamp() * 1000)
        except ValueError:
            _err(f"proactive verify: --now {args.now!r} is not an ISO 8601 instant")
            return 2
    try:
        raw = publishing.read_bundle(args.bundle)
    except OSError as exc:
        _err(f"proactive verify: cannot read {args.bundle} ({getattr(exc, 'reason', None) or exc.strerror or exc})")
        return 2
    try:
        payload, rollout = publishing.verify_bundle(raw, spec, site=args.site, last_version=args.last_version,
                                                    now_ms=now_ms, visitor=args.visitor, rollout=True)
    except trust.BundleRejected as exc:
        print(f"{args.bundle}: rejected: {exc}")
        return 1
    note = ""
    if args.last_version is not None and payload["version"] == args.last_version:
        note = "; same version as already accepted: a browser keeps its cached copy"
    expiry = f", expires {payload['expires_at']}" if payload.get("expires_at") else ""
    print(f"{args.bundle}: ok (site {payload['site']}, version {payload['version']}, "
          f"{len(payload['messages'])} message(s){expiry}){note}")
    if rollout:
        who = f"visitor {args.visitor}" if args.visitor else "a browser without a stored visitor id"
        print(f"staged rollout: version {rollout.new['version']} to {rollout.percent:g} % of visitors, "
              f"version {rollout.previous['version']} to the others; {who} gets version {payload['version']} "
              f"({rollout.why.replace('_', ' ')})")
    return 0


def _percent(text: str) -> float:
    import argparse

    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: a percentage above 0, at most 100")
    return value


def _key_spec(value: str, signing) -> str:
    """The tag's ed25519:… text, or a file holding it or a private key."""
    if value.strip().lower().startswith("ed25519:"):
        return value
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"{value!r} is neither ed25519:BASE64 nor a key file")
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return signing.public_key_spec(signing.load_private_key(path))
    return data.decode("utf-8").strip()


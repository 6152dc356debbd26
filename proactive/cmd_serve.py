"""`proactive serve`: the reference endpoint (widget origin) and the demo site
(a second origin), as a site owner would run them side by side.

The widget origin serves the widget's static files, the bundles, the endpoint
API (/api, docs/endpoint.md) and the agent page (/agent)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("proactive.serve")

# Seconds between bundle revalidations on the pages `serve` previews.
PREVIEW_REVALIDATE_S = 10


def add_arguments(p) -> None:
    p.add_argument("--host", default="127.0.0.1", help="the widget origin's host")
    p.add_argument("--port", type=int, default=8700, help="the widget origin's port")
    p.add_argument("--site-host", default="localhost", help="the demo site's host (another origin)")
    p.add_argument("--site-port", type=int, default=8701, help="the demo site's port")
    p.add_argument("--static", type=Path, default=ROOT / "dist" / "widget",
                   help="the built widget folder served on the widget origin (`proactive build --out FOLDER`)")
    p.add_argument("--bundle", type=Path, default=None,
                   help="serve your own signed bundle unchanged instead of signing --messages: a file inside "
                        "--static (public/bundles/site.json); the banner's tag points at it (needs --key)")
    p.add_argument("--key", default=None, metavar="KEY",
                   help="with --bundle: the tag's data-key (ed25519:BASE64) or your key file; the bundle is "
                        "checked with it at start, as a browser would")
    p.add_argument("--data", type=Path, default=ROOT / ".data", help="demo keys and bundles")
    p.add_argument("--no-demo", action="store_true", help="serve only the widget origin")
    p.add_argument("--messages", type=Path, default=ROOT / "demo" / "messages.yaml",
                   help="preview your own messages file: signed at start with the local preview key "
                        "(DATA/demo-signing.key) into /bundles/demo.json (default: the demo's)")
    p.add_argument("--site", type=Path, default=ROOT / "demo" / "site",
                   help="preview your own pages on the site origin: {{PROACTIVE_TAG}} in each .html "
                        "becomes the script tag (default: the demo site)")
    p.add_argument("--db", default=os.environ.get("PROACTIVE_DB") or None, metavar="FILE|URL",
                   help="the endpoint's database: a SQLite file, or postgresql://USER@HOST/DB to share one "
                        "database between any number of processes with the same --broker (default: $PROACTIVE_DB, else "
                        "DATA/endpoint.db); data survives restarts, the schema is upgraded at start")
    p.add_argument("--broker", default=os.environ.get("PROACTIVE_BROKER") or None, metavar="URL",
                   help="redis://HOST:6379/0: live news (presence, replies) and rate limits shared by every "
                        "process on that Redis, for several processes on one PostgreSQL --db "
                        "(default: $PROACTIVE_BROKER, else this process only)")
    p.add_argument("--allow-origin", action="append", default=None, metavar="ORIGIN",
                   help="a site origin allowed to embed the widget and call the endpoint (repeat for several; "
                        "'*' allows any). Default: the demo site's origin, or '*' with --no-demo")
    p.add_argument("--geo-db", type=Path, default=None,
                   help="a MaxMind-format database (e.g. GeoLite2-City.mmdb) for visitors' country and city")
    p.add_argument("--trust-proxy", action="append", nargs="?", const="127.0.0.1", default=None, metavar="ADDR",
                   help="take the client IP from X-Forwarded-For, only from this proxy address (repeat for several; "
                        "default 127.0.0.1). Without it forwarded headers are ignored")
    p.add_argument("--public-origin", default=None, metavar="URL",
                   help="the widget origin as agents reach it; the agent API answers only there (default: any "
                        "loopback name when HOST is loopback, else http://HOST:PORT)")
    p.add_argument("--max-streams", type=int, default=None,
                   help="open visitor event streams in total (default: from the file-descriptor limit)")
    p.add_argument("--max-streams-per-address", type=int, default=256, metavar="N",
                   help="open visitor event streams from one network address (an IPv6 address by its /64)")
    p.add_argument("--test-geo", action="store_true",
                   help="honour the X-Proactive-Test-Geo header (QA only: anyone could send it)")
    p.add_argument("--bundle-key", action="append", default=None, metavar="KEY",
                   help="accept bundles signed by this key (ed25519:BASE64, repeat for several) uploaded by the studio's "
                        "Publish to PUT /api/agent/bundles/NAME: stored in DATA/bundles, served at /bundles/NAME.json")
    p.add_argument("--agent-token", default=None,
                   help="the agent page's and API's token (default: created once in DATA/agent-token); "
                        "the printed agent page URL carries it")
    p.add_argument("--keep-events-days", type=_days, default=os.environ.get("PROACTIVE_KEEP_EVENTS_DAYS") or "90",
                   metavar="DAYS", help="delete raw beacon events older than this (the stats keep counting them); "
                                        "0: keep them (default: $PROACTIVE_KEEP_EVENTS_DAYS, else 90)")
    p.add_argument("--delivery-webhook", default=None, metavar="URL",
                   help="POST each new email delivery request as JSON to this URL (your mail system)")


def _days(text: str) -> float:
    import argparse
    import math

    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not 0 <= days <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (0 to 100000)")
    return days


def prepare_demo(data: Path, messages: Path) -> tuple[Path, str]:
    """A demo signing key (created once) and the demo bundle signed with it."""
    from proactive import publishing, signing

    data.mkdir(parents=True, exist_ok=True)
    key_path = data / "demo-signing.key"
    if not key_path.exists():
        signing.write_private_key(signing.generate_private_key(), key_path)
    bundles = data / "bundles"
    bundles.mkdir(exist_ok=True)
    out = bundles / "demo.json"
    envelope, _ = publishing.sign_file(messages, [key_path], out)
    out.write_bytes(envelope)
    return bundles, signing.public_key_spec(signing.load_private_key(key_path))


def own_bundle(static: Path, bundle: Path, key: str | None) -> tuple[str, str]:
    """(URL path of the bundle on the widget origin, the tag's data-key) for
    `--bundle`: the owner's signed bundle, inside their widget folder, served
    unchanged; ValueError when a browser would not run it with that key."""
    from proactive import publishing, signing
    from proactive.cmd_bundle import _key_spec
    from widget.runtime import trust

    if not key:
        raise ValueError("--bundle needs --key: the script tag's data-key (ed25519:…) or your key file")
    try:
        rel = bundle.resolve().relative_to(static.resolve())
    except ValueError:
        raise ValueError(f"--bundle {bundle} is not inside --static {static}: put it where you host it "
                         f"({static}/bundles/site.json)") from None
    spec = _key_spec(key, signing)
    try:
        publishing.verify_bundle(bundle.read_bytes(), spec)
    except OSError as exc:
        raise ValueError(f"--bundle {bundle}: cannot read it ({exc.strerror})") from None
    except trust.BundleRejected as exc:
        raise ValueError(f"--bundle {bundle}: a browser with this key would refuse it: {exc}") from None
    return "/" + rel.as_posix(), spec


def busy_port(host: str, port: int) -> bool:
    """Whether another process listens on (host, port): checked before the
    banner, so a busy port is one line rather than a server's traceback."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # let the server report a host it cannot resolve
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def pages_without_tag(site: Path) -> list[Path]:
    """The site's .html pages in which no script tag would be put."""
    return sorted(p for p in site.rglob("*.html") if "{{PROACTIVE_TAG}}" not in p.read_text("utf-8", "replace"))

def agent_token_of(data: Path) -> str:
    """The agent token kept in DATA/agent-token (created once, readable by its owner only)."""
    import secrets

    path = data / "agent-token"
    if not path.exists():
        data.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def database_of(args) -> str | Path:
    """--db as given (a postgresql:// URL or a SQLite file), else DATA/endpoint.db."""
    if args.db and str(args.db).startswith(("postgresql://", "postgres://")):
        return str(args.db)
    return Path(args.db) if args.db else args.data / "endpoint.db"


def webhook(url: str):
    """The delivery hook that hands each request to a mail system over HTTP."""

    def deliver(request: dict) -> str:
        body = json.dumps({"type": "proactive.delivery_request", "delivery": request}).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")
        return "handed_over"

    return deliver


def run(args) -> int:
    import uvicorn

    from server_stub.app import create_site_app, create_widget_app, script_tag
    from server_stub.broker import StreamLimits
    from server_stub.server import limit_logs, uvicorn_config
    from server_stub.storage import StoreError

    for host, port, option in ((args.host, args.port, "--port"), (args.site_host, args.site_port, "--site-port")):
        if (option == "--port" or not args.no_demo) and busy_port(host, port):
            print(f"proactive serve: port {port} on {host} is in use (another `proactive serve`?); "
                  f"stop it or choose another with {option}", file=sys.stderr)
            return 1
    if not (args.static / "loader.js").exists():
        from proactive.cmd_build import run as build

        build(type("Args", (), {"out": args.static})())
    from proactive.publishing import PublishError

    widget_origin = f"http://{args.host}:{args.port}"
    for spec in args.bundle_key or []:
        from proactive import signing

        try:
            signing.parse_public_keys(spec)
        except ValueError as exc:
            print(f"proactive serve: --bundle-key {spec}: not a public key (ed25519:BASE64): {exc}", file=sys.stderr)
            return 1
    if args.bundle is not None:
        try:
            bundle_path, public_key = own_bundle(args.static, args.bundle, args.key)
        except ValueError as exc:
            print(f"proactive serve: {exc}", file=sys.stderr)
            return 1
        bundles, bundle_url = None, widget_origin + bundle_path  # served from --static as is
    else:
        try:
            bundles, public_key = prepare_demo(args.data, args.messages)
        except PublishError as exc:
            for problem in getattr(exc, "problems", None) or []:
                print(problem, file=sys.stderr)
            print(f"proactive serve: {args.messages} has problems; nothing served (run `proactive validate`)",
                  file=sys.stderr)
            return 1
        bundle_url = f"{widget_origin}/bundles/demo.json"
    if not args.site.is_dir():
        print(f"proactive serve: --site {args.site} is not a folder", file=sys.stderr)
        return 1
    if not args.no_demo:
        for page in pages_without_tag(args.site):
            print(f"proactive serve: warning: {page} has no {{{{PROACTIVE_TAG}}}}: the widget will not load there "
                  f"(put it in <head>)", file=sys.stderr)
    site_origin = f"http://{args.site_host}:{args.site_port}"
    origins = args.allow_origin or (["*"] if args.no_demo else [site_origin])
    db = database_of(args)
    agent_token = args.agent_token or agent_token_of(args.data)
    public_origin = (args.public_origin or widget_origin).rstrip("/")
    try:
        app = create_widget_app(
            args.static, bundles, allowed_origins=origins, db_path=db, geo_database=args.geo_db,
            test_geo=args.test_geo, trust_proxy=args.trust_proxy or False, agent_token=agent_token,
            # Served on loopback without --public-origin: any loopback name (127.0.0.1, localhost) will do.
            agent_origins=[public_origin] if args.public_origin or args.host not in ("127.0.0.1", "localhost", "::1")
            else None,
            on_delivery=webhook(args.delivery_webhook) if args.delivery_webhook else None,
            stream_limits=StreamLimits(total=args.max_streams, per_address=args.max_streams_per_address),
            broker_url=args.broker, keep_events_days=args.keep_events_days, bundle_keys=args.bundle_key,
        )
    except StoreError as exc:
        print(f"proactive serve: {exc}", file=sys.stderr)
        return 1
    limit_logs()
    db = app.state.endpoint.store.path  # as printed: a URL without its password

    def server(app, host, port):
        # Open event streams never finish on their own: give them 2 s at exit.
        return uvicorn.Server(uvicorn_config(app, host, port))

    servers = [server(app, args.host, args.port)]
    tag = script_tag(widget_origin, bundle_url, public_key)
    if not args.no_demo:
        # The pages served here are a preview: a bundle signed again (by
        # `proactive sign` or the studio's Publish) reaches an open tab within
        # PREVIEW_REVALIDATE_S seconds, not the default 5 minutes. The tag
        # printed for the owner's own site keeps the default.
        preview_tag = script_tag(widget_origin, bundle_url, public_key, data_revalidate=str(PREVIEW_REVALIDATE_S))
        site = create_site_app(args.site, preview_tag)
        servers.append(server(site, args.site_host, args.site_port))
        print(f"Demo site:      {site_origin}/   (open it: a proactive message appears after a few seconds)")
    agent = f"{public_origin}/agent" + ("#token=…" if args.agent_token else f"#token={agent_token}")
    print(f"Agent page:     {agent}   (go online, answer visitors, see stats)")
    print(f"Widget origin:  {widget_origin}/loader.js   (endpoint {widget_origin}/api, data {db})")
    print(f"Allowed sites:  {', '.join(origins)}")
    if args.broker:
        print(f"Broker:         {args.broker.split('@')[-1]}   (news and rate limits shared with every process on it)")
    if args.test_geo:
        print("Test geo:       X-Proactive-Test-Geo is honoured (QA only)")
    print(f"Script tag:     {tag}", flush=True)

    async def serve_all():
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(serve_all())
    return 0

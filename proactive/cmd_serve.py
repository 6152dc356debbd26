"""`proactive serve`: the reference endpoint (widget origin) and the demo site
(a second origin), as a site owner would run them side by side.

The widget origin serves the widget's static files, the bundles, the endpoint
API (/api, docs/endpoint.md) and the agent page (/agent)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("proactive.serve")


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
    p.add_argument("--db", type=Path, default=None,
                   help="the endpoint's SQLite file (default: DATA/endpoint.db); data survives restarts")
    p.add_argument("--allow-origin", action="append", default=None, metavar="ORIGIN",
                   help="a site origin allowed to embed the widget and call the endpoint (repeat for several; "
                        "'*' allows any). Default: the demo site's origin, or '*' with --no-demo")
    p.add_argument("--geo-db", type=Path, default=None,
                   help="a MaxMind-format database (e.g. GeoLite2-City.mmdb) for visitors' country and city")
    p.add_argument("--trust-proxy", action="store_true",
                   help="take the client IP from X-Forwarded-For (only behind a proxy you run)")
    p.add_argument("--test-geo", action="store_true",
                   help="honour the X-Proactive-Test-Geo header (QA only: anyone could send it)")
    p.add_argument("--agent-token", default=None,
                   help="require this token for the agent page and API (open /agent#token=TOKEN once)")
    p.add_argument("--delivery-webhook", default=None, metavar="URL",
                   help="POST each new email delivery request as JSON to this URL (your mail system)")


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
    db = args.db or (args.data / "endpoint.db")
    app = create_widget_app(
        args.static, bundles, allowed_origins=origins, db_path=db, geo_database=args.geo_db,
        test_geo=args.test_geo, trust_proxy=args.trust_proxy, agent_token=args.agent_token,
        on_delivery=webhook(args.delivery_webhook) if args.delivery_webhook else None,
    )

    def server(app, host, port):
        # Open event streams never finish on their own: give them 2 s at exit.
        return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                             timeout_graceful_shutdown=2))

    servers = [server(app, args.host, args.port)]
    tag = script_tag(widget_origin, bundle_url, public_key)
    if not args.no_demo:
        site = create_site_app(args.site, tag)
        servers.append(server(site, args.site_host, args.site_port))
        print(f"Demo site:      {site_origin}/   (open it: a proactive message appears after a few seconds)")
    agent = f"{widget_origin}/agent" + ("#token=…" if args.agent_token else "")
    print(f"Agent page:     {agent}   (go online, answer visitors, see stats)")
    print(f"Widget origin:  {widget_origin}/loader.js   (endpoint {widget_origin}/api, data {db})")
    print(f"Allowed sites:  {', '.join(origins)}")
    if args.test_geo:
        print("Test geo:       X-Proactive-Test-Geo is honoured (QA only)")
    print(f"Script tag:     {tag}", flush=True)

    async def serve_all():
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(serve_all())
    return 0

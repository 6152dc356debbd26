"""`proactive serve`: the reference endpoint (widget origin) and the demo site
(a second origin), as a site owner would run them side by side."""

from __future__ import annotations

import asyncio
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_arguments(p) -> None:
    p.add_argument("--host", default="127.0.0.1", help="the widget origin's host")
    p.add_argument("--port", type=int, default=8700, help="the widget origin's port")
    p.add_argument("--site-host", default="localhost", help="the demo site's host (another origin)")
    p.add_argument("--site-port", type=int, default=8701)
    p.add_argument("--static", type=Path, default=ROOT / "dist" / "widget")
    p.add_argument("--data", type=Path, default=ROOT / ".data", help="demo keys and bundles")
    p.add_argument("--no-demo", action="store_true", help="serve only the widget origin")


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


def run(args) -> int:
    import uvicorn

    from server_stub.app import create_site_app, create_widget_app, script_tag

    if not (args.static / "loader.js").exists():
        from proactive.cmd_build import run as build

        build(type("Args", (), {"out": args.static})())
    bundles, public_key = prepare_demo(args.data, ROOT / "demo" / "messages.yaml")
    widget_origin = f"http://{args.host}:{args.port}"
    servers = [uvicorn.Server(uvicorn.Config(create_widget_app(args.static, bundles), host=args.host, port=args.port, log_level="warning"))]
    if not args.no_demo:
        tag = script_tag(widget_origin, f"{widget_origin}/bundles/demo.json", public_key)
        site = create_site_app(ROOT / "demo" / "site", tag)
        servers.append(uvicorn.Server(uvicorn.Config(site, host=args.site_host, port=args.site_port, log_level="warning")))
        print(f"Demo site:      http://{args.site_host}:{args.site_port}/   (open it: a proactive message appears after a few seconds)")
    print(f"Widget origin:  {widget_origin}/loader.js")
    print(f"Script tag:     {script_tag(widget_origin, widget_origin + '/bundles/demo.json', public_key)}", flush=True)

    async def serve_all():
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(serve_all())
    return 0

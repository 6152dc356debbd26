"""The reference endpoint (widget origin) and the demo site (a second origin).

    create_widget_app(static_dir, bundles_dir, ...)  → the widget's origin:
        static widget files, bundles, the endpoint API (/api, docs/endpoint.md)
        and the agent page (/agent)
    create_site_app(site_dir, tag)                   → a site that embeds the tag
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from server_stub.api import Endpoint, EndpointConfig, error_response
from server_stub.broker import StreamLimits
from server_stub.geo import GeoLocator
from server_stub.static import WidgetFiles
from server_stub.storage import SqlStore, open_store

AGENT_DIR = Path(__file__).resolve().parent / "agent"
AGENT_ASSETS = {"agent.mjs": "text/javascript", "agent.css": "text/css"}
AGENT_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def create_widget_app(
    static_dir: Path,
    bundles_dir: Path | None = None,
    *,
    allowed_origins: list[str] | tuple[str, ...] | str | None = None,
    db_path: Path | str | None = None,
    store: SqlStore | None = None,
    geo_database: Path | str | None = None,
    test_geo: bool = False,
    trust_proxy: bool | list[str] | tuple[str, ...] = False,
    agent_token: str | None = None,
    agent_origins: list[str] | None = None,
    on_delivery: Callable[[dict], object] | None = None,
    rate_limits: dict | None = None,
    stream_heartbeat: float = 15.0,
    stream_limits: StreamLimits | None = None,
    broker_url: str | None = None,
    delivery_lease: float = 60.0,
    presence_ttl: float = 90.0,
    keep_events_days: float | None = None,
    bundle_keys: list[str] | None = None,
) -> Starlette:
    """The widget's origin. `allowed_origins`: the sites that may embed the
    widget and call the endpoint (default "*": any). `db_path`: the SQLite
    file or a postgresql:// URL (default: SQLite in memory, gone at exit). `agent_token`: the agent API's
    credential (default: a random one, `app.state.agent_token`); the agent
    API answers only on `agent_origins` (default: loopback names).
    `trust_proxy`: the proxy addresses whose X-Forwarded-For is honoured
    (True: loopback). `broker_url` (redis://…): live news and rate limits
    shared by every process on that Redis. `delivery_lease`: seconds a
    process holds a delivery request it hands over (one left pending longer,
    its process dead, is handed over by another). `presence_ttl`: seconds
    an agent stays online after their page last said so. `keep_events_days`:
    raw beacon events older than this are deleted (the stats keep counting
    them; None: kept). `bundle_keys` (public keys, "ed25519:BASE64"): the
    agent API's PUT /api/agent/bundles/NAME stores bundles they signed in
    `bundles_dir` (none: uploads are off). `app.state.endpoint` exposes the endpoint (store,
    broker) to tools and tests."""
    static_dir = Path(static_dir)
    if not (static_dir / "loader.js").exists():
        raise RuntimeError(f"{static_dir} has no loader.js: build the widget first (proactive build)")
    if allowed_origins is None:
        origins = ["*"]
    elif isinstance(allowed_origins, str):
        origins = [allowed_origins]
    else:
        origins = [o.rstrip("/") for o in allowed_origins]
    config = EndpointConfig(allowed_origins=origins, rate_limits=dict(rate_limits or {}), on_delivery=on_delivery,
                            stream_heartbeat=stream_heartbeat, streams=stream_limits or StreamLimits(),
                            agent_origins=[o.rstrip("/") for o in agent_origins] if agent_origins else None,
                            broker_url=broker_url, delivery_lease_ms=int(delivery_lease * 1000),
                            presence_ttl_ms=int(presence_ttl * 1000), keep_events_days=keep_events_days,
                            bundle_keys=list(bundle_keys or []) if bundles_dir is not None else [],
                            bundles_dir=str(bundles_dir) if bundles_dir is not None else None)
    if agent_token:
        config.agent_token = agent_token
    # The client address is resolved before the app (ProxyHeadersMiddleware
    # below, with --trust-proxy only), so geo uses it as it is.
    opened = store is None
    store = store or open_store(db_path)
    try:
        endpoint = Endpoint(store, GeoLocator(geo_database, test_override=test_geo), config)
    except BaseException:
        if opened:  # refused (another process serves the database): close what was opened for it
            store.close()
        raise

    async def agent_page(request: Request) -> Response:
        return FileResponse(AGENT_DIR / "index.html", media_type="text/html",
                            headers={"content-security-policy": AGENT_CSP, "cache-control": "no-cache",
                                     "x-frame-options": "DENY", "referrer-policy": "no-referrer"})

    async def agent_asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in AGENT_ASSETS:
            return JSONResponse({"error": {"code": "not_found", "message": f"no agent asset {name}"}}, status_code=404)
        return FileResponse(AGENT_DIR / name, media_type=AGENT_ASSETS[name], headers={"cache-control": "no-cache"})

    routes = [
        Route("/health", lambda request: JSONResponse({"ok": True})),
        Mount("/api/agent", app=endpoint.agent_app()),
        Mount("/api", app=endpoint.visitor_app()),
        Route("/agent", agent_page, methods=["GET"]),
        Route("/agent/{name}", agent_asset, methods=["GET"]),
    ]
    if bundles_dir is not None:
        routes.append(Mount("/bundles", app=WidgetFiles(directory=str(bundles_dir), allowed_origins=origins), name="bundles"))
    routes.append(Mount("/", app=WidgetFiles(directory=str(static_dir), allowed_origins=origins), name="static"))
    @contextlib.asynccontextmanager
    async def lifespan(app):
        await endpoint.start()
        background = asyncio.create_task(endpoint.run_background())
        yield
        background.cancel()
        await endpoint.stop()
        endpoint.geo.close()
        endpoint.close()

    middleware = [Middleware(NoNewlinePaths)]
    if trust_proxy:
        proxies = ["127.0.0.1", "::1"] if trust_proxy is True else list(trust_proxy)
        middleware.append(Middleware(ProxyHeadersMiddleware, trusted_hosts=proxies))
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.router.redirect_slashes = False  # redirects built from Host: never
    app.state.endpoint = endpoint
    app.state.agent_token = config.agent_token
    return app


class NoNewlinePaths:
    """A path with a newline (%0A) matches no route pattern, not even the
    /api mounts; it gets the API's JSON 404 instead of the static files'
    plain-text one (no file name has a newline)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "\n" in scope["path"]:
            response = error_response(404, "not_found", "no such endpoint (the path has a newline)")
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


def script_tag(widget_origin: str, bundle: str, keys: str, **extra: str) -> str:
    attrs = {"src": f"{widget_origin}/loader.js", "data-bundle": bundle, "data-key": keys}
    attrs.update({k.replace("_", "-"): v for k, v in extra.items() if v is not None})
    inner = " ".join(f'{k}="{escape(str(v))}"' for k, v in attrs.items())
    return f"<script async {inner}></script>"


def create_site_app(site_dir: Path, tag: str) -> Starlette:
    """Serves `site_dir`: every .html file has `{{PROACTIVE_TAG}}` replaced by
    the script tag; `NAME.html.headers.json` beside a page adds response
    headers (e.g. a Content-Security-Policy)."""
    site_dir = Path(site_dir).resolve()

    async def page(request: Request) -> Response:
        rel = request.path_params.get("path", "") or "index.html"
        if rel.endswith("/"):
            rel += "index.html"
        path = (site_dir / rel).resolve()
        if site_dir not in path.parents and path != site_dir:
            return Response("not found", status_code=404)
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file() and path.suffix == "":
            path = path.with_suffix(".html")
        if not path.is_file():
            return Response("not found", status_code=404)
        headers = {"cache-control": "no-cache"}
        sidecar = path.with_name(path.name + ".headers.json")
        if sidecar.is_file():
            headers.update(json.loads(sidecar.read_text()))
        if path.suffix == ".html":
            html = path.read_text(encoding="utf-8").replace("{{PROACTIVE_TAG}}", tag)
            return HTMLResponse(html, headers=headers)
        return Response(path.read_bytes(), headers=headers, media_type=_media_type(path))

    return Starlette(routes=[Route("/favicon.ico", lambda request: Response(status_code=204)), Route("/{path:path}", page)])


def _media_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"

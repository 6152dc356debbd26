"""The reference endpoint (widget origin) and the demo site (a second origin).

    create_widget_app(static_dir, bundles_dir)   → the widget's origin
    create_site_app(site_dir, tag)               → a site that embeds the tag
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from server_stub.static import WidgetFiles


def create_widget_app(static_dir: Path, bundles_dir: Path | None = None) -> Starlette:
    static_dir = Path(static_dir)
    if not (static_dir / "loader.js").exists():
        raise RuntimeError(f"{static_dir} has no loader.js: build the widget first (proactive build)")
    routes = [Route("/health", lambda request: JSONResponse({"ok": True}))]
    if bundles_dir is not None:
        routes.append(Mount("/bundles", app=WidgetFiles(directory=str(bundles_dir)), name="bundles"))
    routes.append(Mount("/", app=WidgetFiles(directory=str(static_dir)), name="static"))
    return Starlette(routes=routes)


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

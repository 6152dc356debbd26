"""Static files for the widget's origin: right MIME types, CORS for the sites
in the allow-list, precompressed variants, and caching that fits each kind of
file: immutable for content-hashed or versioned files; for `loader.js`, fresh
for a few minutes and then used while it is revalidated in the background, so
a returning visitor's browser runs its copy when this origin is unreachable
(docs/publishing.md, "Caching"); revalidated with ETag for everything else."""

from __future__ import annotations

import mimetypes
import os
import re
import stat

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

for _ext, _type in {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".tar": "application/x-tar",
    ".zip": "application/zip",
    ".json": "application/json",
}.items():
    mimetypes.add_type(_type, _ext)

IMMUTABLE = re.compile(r"^(pyodide-[0-9][^/]*/|[^/]*-[0-9a-f]{12}\.)")
LOADER = "loader.js"
# The loader: fresh for LOADER_MAX_AGE s (a widget upgrade reaches visitors
# within that), then served from the browser's cache while it revalidates in
# the background for LOADER_STALE s: Chromium and Firefox then run their
# copy even when this origin does not answer (stale-while-revalidate);
# stale-if-error says the same to CDNs and the browsers that implement it.
LOADER_MAX_AGE = 300
LOADER_STALE = 7 * 24 * 3600
# Precompressed siblings (`NAME.br`, `NAME.gz`), best first.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


def accepted_encodings(header: str | None) -> set[str]:
    """Codings the client accepts (q=0 means refused)."""
    out = set()
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if name and q > 0:
            out.add(name.strip().lower())
    return out


def cache_control(path: str) -> str:
    """The Cache-Control of a file of the widget's folder (path relative to it)."""
    if IMMUTABLE.match(path):
        return "public, max-age=31536000, immutable"
    if path == LOADER:
        return f"public, max-age={LOADER_MAX_AGE}, stale-while-revalidate={LOADER_STALE}, stale-if-error={LOADER_STALE}"
    return "no-cache"


class WidgetFiles(StaticFiles):
    """StaticFiles (ETag, If-None-Match → 304, path traversal guard) plus
    CORS, cache headers and precompressed variants (`Vary: Accept-Encoding`).

    `cors_origin` is "*" or one origin; `allowed_origins` (a list, may hold
    "*") echoes the request's Origin when it is listed."""

    def __init__(self, *args, cors_origin: str = "*", allowed_origins: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.allowed_origins = list(allowed_origins) if allowed_origins is not None else [cors_origin]
        self.cors_origin = cors_origin

    def _cors(self, request_origin: str | None) -> list[tuple[bytes, bytes]]:
        if "*" in self.allowed_origins:
            return [(b"access-control-allow-origin", b"*")]
        out = [(b"vary", b"Origin")]
        if request_origin and request_origin in self.allowed_origins:
            out.append((b"access-control-allow-origin", request_origin.encode("latin-1")))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").lstrip("/")
        caching = cache_control(path)
        cors = self._cors(Headers(scope=scope).get("origin"))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"cache-control", b"vary")]
                vary = [v for k, v in message.get("headers", []) + cors if k.lower() == b"vary"]
                headers += [(k, v) for k, v in cors if k != b"vary"]
                if vary:
                    headers.append((b"vary", b", ".join(vary)))
                headers.append((b"cross-origin-resource-policy", b"cross-origin"))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"cache-control", caching.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await super().__call__(scope, receive, send_with_headers)
        except HTTPException as exc:
            # Answer here (not in the app's handler) so that a missing file is
            # a readable 404 for the embedding site, not an opaque CORS error.
            response = PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
            await response(scope, receive, send_with_headers)

    def file_response(self, full_path, stat_result: os.stat_result, scope: Scope, status_code: int = 200) -> Response:
        request_headers = Headers(scope=scope)
        media_type = mimetypes.guess_type(str(full_path))[0] or "application/octet-stream"
        accepted = accepted_encodings(request_headers.get("accept-encoding"))
        has_variant = False
        for coding, suffix in ENCODINGS:
            variant = str(full_path) + suffix
            try:
                variant_stat = os.stat(variant)
            except OSError:
                continue
            if not stat.S_ISREG(variant_stat.st_mode):
                continue
            has_variant = True
            if coding in accepted:
                response = FileResponse(variant, status_code=status_code, stat_result=variant_stat, media_type=media_type,
                                        headers={"content-encoding": coding, "vary": "Accept-Encoding"})
                # A different representation needs a different validator.
                response.headers["etag"] = response.headers["etag"][:-1] + f'-{coding}"'
                break
        else:
            response = FileResponse(full_path, status_code=status_code, stat_result=stat_result, media_type=media_type)
            if has_variant:
                response.headers["vary"] = "Accept-Encoding"
        if self.is_not_modified(response.headers, request_headers):
            kept = ("etag", "cache-control", "vary", "content-location", "expires")
            return Response(status_code=304, headers={k: v for k, v in response.headers.items() if k in kept})
        return response

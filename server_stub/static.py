"""Static files for the widget's origin: right MIME types, CORS, and caching
that fits each kind of file (immutable for content-hashed or versioned files,
revalidated with ETag for everything else)."""

from __future__ import annotations

import mimetypes
import re

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


class WidgetFiles(StaticFiles):
    """StaticFiles (ETag, If-None-Match → 304, path traversal guard) plus
    CORS and cache headers."""

    def __init__(self, *args, cors_origin: str = "*", **kwargs):
        super().__init__(*args, **kwargs)
        self.cors_origin = cors_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").lstrip("/")
        immutable = bool(IMMUTABLE.match(path))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers.append((b"access-control-allow-origin", self.cors_origin.encode()))
                headers.append((b"cross-origin-resource-policy", b"cross-origin"))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append(
                    (b"cache-control", b"public, max-age=31536000, immutable" if immutable else b"no-cache")
                )
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)

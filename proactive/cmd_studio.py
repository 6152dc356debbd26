"""`proactive studio [MESSAGES.yaml] --key KEY [--bundle OUT.json] [--port 8702]`:
the auto messages studio, a local web page to create, edit, pause, simulate
and publish messages without writing YAML (docs/studio.md).

The server listens on 127.0.0.1 only; every URL carries a random token
(`/s/TOKEN/…`: anything else is 403) and requests from another origin are
refused (Origin, Sec-Fetch-Site and Host are checked), so neither another
local user's browser tab nor a web page can read or write the file. It reads
and writes the messages file (proactive/studio.py), validates and simulates
with the project's own validator and engine, and signs on publish with
--key: the private key never leaves this process.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import re
import secrets
import socket
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "studio_page"
PAGE_FILES = {"": ("index.html", "text/html; charset=utf-8"), "studio.js": ("studio.js", "text/javascript"),
              "preview.js": ("preview.js", "text/javascript"), "composer.js": ("composer.js", "text/javascript"),
              "settings.js": ("settings.js", "text/javascript"),
              "stats.js": ("stats.js", "text/javascript"), "conformance.js": ("conformance.js", "text/javascript"),
              "studio.css": ("studio.css", "text/css"), "studio_main.py": ("studio_main.py", "text/x-python")}
ROOT = Path(__file__).resolve().parents[1]
# The page's Python: PyScript and the same pinned Pyodide the widget uses (package-lock.json), self-hosted.
PYSCRIPT = ROOT / "node_modules" / "@pyscript" / "core" / "dist"
PYODIDE = ROOT / "node_modules" / "pyodide"
# The widget's own renderer, for the card preview: its modules as written (widget/render/, the
# shell's warn.mjs it imports) and constants.mjs generated as the build generates it.
WIDGET = ROOT / "widget"
WIDGET_FOLDERS = ("render", "shell")
PYODIDE_FILES = {"pyodide.mjs": "text/javascript", "pyodide.asm.mjs": "text/javascript",
                 "pyodide.asm.wasm": "application/wasm", "pyodide-lock.json": "application/json",
                 "python_stdlib.zip": "application/zip"}
CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data: https:; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def add_arguments(p) -> None:
    p.add_argument("messages", type=Path, nargs="?", default=Path("messages.yaml"),
                   help="the messages file to edit; created on the first save when missing")
    p.add_argument("--key", type=Path, required=True, help="the private key file Publish signs with (never sent to the page)")
    p.add_argument("--bundle", type=Path, default=None,
                   help="the signed bundle Publish writes (default: MESSAGES with the suffix .bundle.json)")
    p.add_argument("--port", type=int, default=8702, help="the studio's port on 127.0.0.1 (0: any free port)")
    p.add_argument("--endpoint", default=None, metavar="URL",
                   help="your endpoint (`proactive serve`'s origin): the list shows each message's stats of the last 7 days")
    p.add_argument("--agent-token", default=None, metavar="TOKEN",
                   help="the endpoint's agent token (stays in this process: the page never sees it)")


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args) -> int:
    from proactive import signing

    try:
        signing.load_private_key(args.key)
    except FileNotFoundError:
        _err(f"proactive studio: --key {args.key}: no such file (create one with `proactive keygen --out {args.key}`)")
        return 1
    except (OSError, ValueError, TypeError) as exc:
        _err(f"proactive studio: --key {args.key}: not an Ed25519 private key file ({_short(exc)})")
        return 1
    messages = args.messages.resolve()
    if not messages.parent.is_dir():
        _err(f"proactive studio: {args.messages}: its folder {messages.parent} does not exist")
        return 1
    bundle = (args.bundle or messages.with_suffix(".bundle.json")).resolve()
    if (args.endpoint is None) != (args.agent_token is None):
        _err("proactive studio: --endpoint and --agent-token go together (the stats need the agent token)")
        return 1
    if args.endpoint is not None and not args.endpoint.startswith(("http://", "https://")):
        _err(f"proactive studio: --endpoint {args.endpoint}: not an http(s) URL")
        return 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", args.port))
        sock.listen(128)   # connections wait in the backlog until the server runs: the printed URL works at once
    except OSError as exc:
        sock.close()
        why = "is in use (another studio?)" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        _err(f"proactive studio: port {args.port} on 127.0.0.1 {why}; choose another with --port")
        return 1
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(24)
    endpoint = Endpoint(args.endpoint, args.agent_token) if args.endpoint else None
    app = create_app(messages, args.key, bundle, token, port, endpoint=endpoint)
    print(f"studio: http://127.0.0.1:{port}/s/{token}/  (editing {args.messages}, publishing to {bundle})", flush=True)
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    return 0


def _short(exc) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _constants_module() -> str:
    """widget/runtime/constants.py's shared values as the JS module the build writes."""
    import runpy

    return runpy.run_path(str(ROOT / "build" / "build.py"))["constants_module"]()


STATS_DAYS = 7
CASES = ROOT / "tests" / "cases.json"   # the conformance cases every engine runs (widget/runtime/conformance.py)


class Endpoint:
    """The endpoint the list's stats come from: its agent API, called from
    this process with the agent token (never given to the page)."""

    def __init__(self, url: str, agent_token: str, timeout: float = 3.0):
        self.url, self.agent_token, self.timeout = url.rstrip("/"), agent_token, timeout

    def stats(self, now_ms: int) -> dict:
        """{"days": 7, "messages": {id: {shown, clicked, replied, reply_rate}}} over the last 7 days
        (GET /api/agent/stats, one day per bucket), or {"unavailable": why}."""
        import urllib.error
        import urllib.request

        since = now_ms - STATS_DAYS * 86_400_000
        request = urllib.request.Request(f"{self.url}/api/agent/stats?bucket=day&since={since}",
                                         headers={"Authorization": f"Bearer {self.agent_token}",
                                                  "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read(8_000_000))
        except urllib.error.HTTPError as exc:
            why = {401: "the agent token is not this endpoint's", 403: "the endpoint refuses this address"}
            return {"unavailable": why.get(exc.code, f"the endpoint answered HTTP {exc.code}")}
        except (OSError, ValueError) as exc:
            return {"unavailable": f"the endpoint cannot be reached ({_short(getattr(exc, 'reason', exc))})"}
        rows = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            return {"unavailable": "the endpoint's answer is not its stats"}
        out = {}
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("message"), str):
                out[row["message"]] = {k: row.get(k) for k in ("shown", "clicked", "replied", "reply_rate")}
        return {"days": STATS_DAYS, "messages": out}

    def upload(self, envelope: bytes, name: str) -> dict:
        """PUT the signed bundle to the endpoint's /api/agent/bundles/NAME:
        {"name", "version", "url"} as stored, or {"error": why}."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"{self.url}/api/agent/bundles/{name}", data=envelope, method="PUT",
                                         headers={"Authorization": f"Bearer {self.agent_token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=max(self.timeout, 10)) as response:
                body = json.loads(response.read(100_000))
                return dict(body, url=self.url + body.get("url", ""))
        except urllib.error.HTTPError as exc:
            try:
                return {"error": json.loads(exc.read(100_000))["error"]["message"]}
            except (ValueError, KeyError, TypeError):
                return {"error": f"the endpoint answered HTTP {exc.code}"}
        except (OSError, ValueError) as exc:
            return {"error": f"the endpoint cannot be reached ({_short(getattr(exc, 'reason', exc))})"}


def create_app(messages: Path, key: Path, bundle: Path, token: str, port: int, endpoint: Endpoint | None = None):
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from proactive import publishing, studio, studio_logic

    origins = {f"http://127.0.0.1:{port}", f"http://localhost:{port}"}
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    lock = asyncio.Lock()

    def refused(request: Request) -> Response | None:
        if request.headers.get("host") not in hosts:
            return Response("wrong host\n", 403)   # DNS rebinding: a page under another name
        if not secrets.compare_digest(request.path_params.get("token", ""), token):
            return Response("forbidden\n", 403)
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return Response("cross-origin request refused\n", 403)
        origin = request.headers.get("origin")
        if origin is not None and origin not in origins:
            return Response("cross-origin request refused\n", 403)
        if request.method != "GET" and (origin is None and site is None):
            return Response("a write needs the Origin header\n", 403)
        return None

    def headers() -> dict:
        return {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                # cross-origin isolated: PyScript's worker shares memory with the page (SharedArrayBuffer)
                "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
                "Cross-Origin-Resource-Policy": "same-origin"}

    def answer(body, status=200):
        return JSONResponse(body, status, headers=headers())

    async def body_of(request: Request):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def guarded(handler):
        async def endpoint(request: Request):
            no = refused(request)
            if no is not None:
                return no
            return await handler(request)
        return endpoint

    async def page(request: Request):
        name, kind = PAGE_FILES.get(request.path_params.get("file", ""), (None, None))
        if name is None:
            return Response("not found\n", 404)
        data = (PAGE / name).read_bytes()
        if name == "index.html":
            data = data.replace(b"__WHEEL__", f"py/{wheel_name}".encode())
        return Response(data, media_type=kind, headers=headers())

    def catalog_json() -> dict:
        from widget.runtime import catalog

        return {"rules": [{"id": r.id, "title": r.title, "doc": r.doc, "kind": r.kind, "value": catalog.KINDS[r.kind].value,
                           "ops": list(r.ops), "choices": list(r.choices), "example": r.example}
                          for r in catalog.RULES.values()],
                "no_value_ops": sorted(catalog.NO_VALUE_OPS), "ratings": list(catalog.RULES["rating"].choices),
                "countries": sorted({code: names.split(";")[0] for code, names in
                                     (e.split(":", 1) for e in catalog.COUNTRIES_TEXT.split("|"))}.items(),
                                    key=lambda item: item[1]),
                "languages": sorted(((code, name.title()) for name, code in catalog.LANGUAGE_NAMES.items()),
                                    key=lambda item: item[1])}

    async def state(request: Request):
        out = await run_in_threadpool(studio.read, messages)   # a big file: other requests go on meanwhile
        out.update(file=messages.name, bundle=bundle.name, catalog=catalog_json(), published=_published_version(),
                   endpoint=endpoint.url if endpoint else None)
        return answer(out)

    def _published_version():
        return publishing.last_published_version(bundle) if bundle.exists() else None

    async def validate(request: Request):
        body = await body_of(request)
        if body is None or not isinstance(body.get("document"), dict):
            return answer({"error": "expected {document}"}, 400)
        return answer({"problems": await run_in_threadpool(studio.check, body["document"])})

    async def preview_card(request: Request):
        body = await body_of(request)
        if body is None or not isinstance(body.get("document"), dict) or not isinstance(body.get("index"), int):
            return answer({"error": "expected {document, index, language}"}, 400)
        language = body.get("language") if isinstance(body.get("language"), str) else None
        variant = body.get("variant") if isinstance(body.get("variant"), str) else None
        out = await run_in_threadpool(studio_logic.preview, body["document"], body["index"], language, variant)
        return answer(out, 422 if "error" in out else 200)

    async def cases(request: Request):
        """The conformance cases file, for the page's Python to run (the studio server does not run them)."""
        if not CASES.is_file():
            return Response("not found\n", 404)
        return Response(CASES.read_bytes(), media_type="application/json", headers=headers())

    async def stats(request: Request):
        if endpoint is None:
            return answer({"unavailable": "no endpoint: start the studio with --endpoint URL --agent-token TOKEN"})
        import time

        return answer(await run_in_threadpool(endpoint.stats, int(time.time() * 1000)))

    async def simulate(request: Request):
        body = await body_of(request)
        if body is None or not isinstance(body.get("document"), dict):
            return answer({"error": "expected {document, journey}"}, 400)
        out = await run_in_threadpool(studio_logic.simulate, body["document"], body.get("journey"))
        return answer(out, 422 if "error" in out else 200)

    async def write(save_function, *args):
        """One write at a time; a file changed on disk is never overwritten."""
        async with lock:
            try:
                save_function(messages, *args)
            except studio.SaveConflict as exc:
                return answer({"error": f"{exc}: reload to see its current content (nothing was overwritten)"}, 409)
            except studio.SaveRefused as exc:
                return answer({"error": str(exc)}, 422)
            return answer(dict(studio.read(messages), saved=True))   # read under the lock: its etag is this write's

    async def save(request: Request):
        body = await body_of(request)
        if body is None or not isinstance(body.get("document"), dict) or not isinstance(body.get("etag"), str):
            return answer({"error": "expected {document, etag, origins}"}, 400)
        return await write(studio.save, body["document"], body["etag"], body.get("origins"))

    async def save_text(request: Request):
        body = await body_of(request)
        if body is None or not isinstance(body.get("text"), str) or not isinstance(body.get("etag"), str):
            return answer({"error": "expected {text, etag}"}, 400)
        return await write(studio.save_text, body["text"], body["etag"])

    def _published_payload():
        if not bundle.exists():
            return None
        try:
            envelope = json.loads(bundle.read_bytes())
            return json.loads(base64.b64decode(envelope["payload"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def preview(request: Request):
        out = studio.read(messages)
        if out["malformed"] or not out["exists"]:
            return answer({"error": "save the messages first"}, 409)
        published = _published_payload()
        return answer({"etag": out["etag"], "changes": studio.changes(published, out["document"]),
                       "problems": [p for p in out["problems"] if not p["warning"]],
                       "version": (_published_version() or 0) + 1, "published": studio.rollout_state(published)})

    async def publish(request: Request):
        body = await body_of(request)
        if body is None or not isinstance(body.get("etag"), str):
            return answer({"error": "expected {etag}"}, 400)
        rollout = body.get("rollout")
        if rollout is not None and (isinstance(rollout, bool) or not isinstance(rollout, (int, float))):
            return answer({"error": "rollout: a percentage of visitors (above 0, at most 100)"}, 400)
        rollout = None if rollout is None or rollout == 100 and not _published_rollout() else rollout
        async with lock:
            current = studio.read(messages)
            if current["etag"] != body["etag"]:
                return answer({"error": f"{messages.name} changed since the summary was made: publish again"}, 409)
            try:
                envelope, version = publishing.sign_file(messages, [key], bundle, rollout=rollout)
            except publishing.PublishError as exc:
                return answer({"error": str(exc), "problems": [str(p) for p in exc.problems]}, 422)
            bundle.parent.mkdir(parents=True, exist_ok=True)
            publishing.write_bundle(envelope, bundle)
        out = {"published": True, "version": version, "bundle": bundle.name}
        if endpoint is not None:   # the file is written either way; the endpoint stores it if it takes it
            name = re.sub(r"[^a-z0-9_-]+", "-", bundle.stem.lower()).strip("-_")[:64] or "site"
            sent = await run_in_threadpool(endpoint.upload, envelope, name)
            out.update({"upload_error": sent["error"]} if "error" in sent else {"uploaded": sent})
        state = studio.rollout_state(_published_payload())
        return answer(dict(out, rollout=state["rollout"]) if state and state.get("rollout") else out)

    def _published_rollout() -> bool:
        state = studio.rollout_state(_published_payload())
        return bool(state and state.get("rollout"))

    wheel_name, wheel = studio.page_wheel()

    async def python_wheel(request: Request):
        if request.path_params["name"] != wheel_name:
            return Response("not found\n", 404)
        return Response(wheel, media_type="application/zip", headers=headers())

    def asset(folder: Path, name: str, kind: str) -> Response:
        path = (folder / name).resolve()
        if folder.resolve() not in path.parents or not path.is_file():
            return Response("not found\n", 404)
        return Response(path.read_bytes(), media_type=kind, headers=dict(headers(), **{"Cache-Control": "private, max-age=3600"}))

    async def pyscript(request: Request):
        name = request.path_params["name"]
        kind = {"js": "text/javascript", "css": "text/css", "map": "application/json"}.get(name.rsplit(".", 1)[-1])
        return asset(PYSCRIPT, name, kind) if kind else Response("not found\n", 404)

    async def pyodide(request: Request):
        name = request.path_params["name"]
        return asset(PYODIDE, name, PYODIDE_FILES[name]) if name in PYODIDE_FILES else Response("not found\n", 404)

    async def widget_module(request: Request):
        folder, name = request.path_params.get("folder"), request.path_params["name"]
        if folder is None and name == "constants.mjs":
            return Response(_constants_module(), media_type="text/javascript", headers=headers())
        if folder not in WIDGET_FOLDERS or not name.endswith(".mjs"):
            return Response("not found\n", 404)
        return asset(WIDGET / folder, name, "text/javascript")

    routes = [
        Route("/s/{token}/py/{name:str}", guarded(python_wheel)),
        Route("/s/{token}/pyscript/{name:str}", guarded(pyscript)),
        Route("/s/{token}/pyodide/{name:str}", guarded(pyodide)),
        Route("/s/{token}/widget/{folder:str}/{name:str}", guarded(widget_module)),
        Route("/s/{token}/widget/{name:str}", guarded(widget_module)),
        Route("/s/{token}/", guarded(page)),
        Route("/s/{token}/{file:str}", guarded(page)),
        Route("/s/{token}/api/state", guarded(state)),
        Route("/s/{token}/api/validate", guarded(validate), methods=["POST"]),
        Route("/s/{token}/api/preview", guarded(preview_card), methods=["POST"]),
        Route("/s/{token}/api/stats", guarded(stats)),
        Route("/s/{token}/api/cases", guarded(cases)),
        Route("/s/{token}/api/simulate", guarded(simulate), methods=["POST"]),
        Route("/s/{token}/api/save", guarded(save), methods=["POST"]),
        Route("/s/{token}/api/save-text", guarded(save_text), methods=["POST"]),
        Route("/s/{token}/api/publish/preview", guarded(preview), methods=["POST"]),
        Route("/s/{token}/api/publish", guarded(publish), methods=["POST"]),
    ]

    async def forbidden(request, exc):
        return Response("forbidden\n", 403)

    return Starlette(routes=routes, exception_handlers={404: forbidden, 405: forbidden})

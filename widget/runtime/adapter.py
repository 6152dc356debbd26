"""The one module that meets JavaScript.

The worker (widget/worker.mjs) calls these functions with JSON text and plain
bytes and gets JSON text back, so no JS proxy outlives a call and the rest of
the runtime stays pure Python. Errors never escape as exceptions: every reply
is a JSON object with "ok"."""

from __future__ import annotations

import base64
import json
import sys
import traceback

from widget.runtime import trust

IN_PYODIDE = "_pyodide_core" in sys.modules or sys.platform == "emscripten"


def _bytes(data) -> bytes:
    """A JS Uint8Array/ArrayBuffer proxy or Python bytes → bytes."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    return data.to_bytes()  # pyodide.ffi.JsProxy of a typed array


def _reply(**fields) -> str:
    return json.dumps({"ok": True, **fields}, separators=(",", ":"), default=str)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, trust.BundleRejected):
        return json.dumps({"ok": False, "reason": exc.reason, "error": str(exc)})
    return json.dumps(
        {"ok": False, "reason": "internal", "error": f"{type(exc).__name__}: {exc}",
         "trace": traceback.format_exc(limit=6)}
    )


class Runtime:
    """One page's runtime: the accepted bundle, the engine and its record."""

    def __init__(self, config_json: str):
        config = json.loads(config_json)
        self.site = config.get("site") or None
        self.keys = trust.parse_key_list(config.get("keys", ""))
        self.context = config.get("context") or {}
        self.engine = None
        self.bundle = None
        self._opened = None
        self._staged = None  # (payload, compiled Bundle) accepted, not yet running
        self._sent = None    # the record the page was sent last

    # -- bundle -----------------------------------------------------------
    def open_envelope(self, raw) -> str:
        """Checks 1-3; returns what the caller must verify with WebCrypto."""
        try:
            opened = trust.open_envelope(_bytes(raw), self.keys)
        except Exception as exc:  # noqa: BLE001 - reported, never raised into JS
            return _failure(exc)
        self._opened = opened
        return _reply(
            message=base64.b64encode(opened.message).decode("ascii"),
            candidates=[
                [base64.b64encode(k).decode("ascii"), base64.b64encode(s).decode("ascii")]
                for k, s in opened.candidates
            ],
        )

    def accept_payload(self, last_version, now) -> str:
        """Checks 5-8 on the envelope opened last, after its signature held.
        The accepted bundle is staged: `start` runs it, or `swap` replaces a
        running engine with it; a rejection leaves what was staged before."""
        try:
            if self._opened is None:
                raise trust.BundleRejected("bad_envelope", "nothing opened")
            payload = trust.accept_payload(
                self._opened.payload, site=self.site,
                last_version=last_version if isinstance(last_version, int) else None, now=int(now),
            )
            from widget.runtime import bundle  # compiled here, once: validation errors are reported

            compiled = bundle.parse(payload)
        except Exception as exc:  # noqa: BLE001
            return _failure(_as_rejection(exc))
        finally:
            self._opened = None
        self._staged = (payload, compiled)
        from widget.runtime import content  # the widgets' appearance, for the renderer

        return _reply(site=payload["site"], version=payload["version"], widgets=content.appearance(payload))

    def swap(self, now) -> str:
        """Replace the running engine with the staged bundle, keeping the
        visitor record and this page's state (page, what is on screen, what
        was shown on this page, geo, team, identity), then evaluate at `now`
        (None: at the running engine's present)."""
        try:
            from widget.runtime.engine import Engine

            if self._staged is None:
                raise trust.BundleRejected("bad_envelope", "nothing staged")
            payload, compiled = self._staged
            self._staged = None
            old = self.engine
            if old is None:
                self.bundle = payload
                return _reply(decisions=[], record=None, next_wakeup=None, version=payload["version"])
            new = Engine(compiled, record=old.snapshot(), context=dict(old.context))
            self._sent = None
            new.adopt_page(old)
            self.engine, self.bundle = new, payload
            _settle()
            now = int(now) if isinstance(now, (int, float)) else (old.t or 0)
            result = new.step([{"type": "tick", "t": now}], now)
            return _reply(**result, version=payload["version"])
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)

    # -- evaluation ---------------------------------------------------------
    def start(self, record_json: str | None, events_json: str, now) -> str:
        try:
            from widget.runtime.engine import Engine

            record = json.loads(record_json) if record_json else None
            if self._staged is not None:
                self.bundle, compiled = self._staged
                self._staged = None
            else:
                compiled = self.bundle
            self.engine = Engine(compiled, record=record, context=self.context)
            self._sent = None
            _settle()
            return self._step(events_json, now)
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)

    def step(self, events_json: str, now) -> str:
        try:
            return self._step(events_json, now)
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)

    def _step(self, events_json: str, now) -> str:
        events = json.loads(events_json)
        result = self.engine.step(events, int(now))
        # The record goes to the page only when it changed since it was last
        # sent (the page persists it), and always after a merge with another
        # tab's record, which that tab may have written over ours.
        record = result["record"]
        if record == self._sent and not any(isinstance(e, dict) and e.get("type") in _MERGES for e in events):
            result["record"] = None
        self._sent = record
        return _reply(**result)

    def reactions(self) -> str:
        """Engine.reactions at the engine's present, for the page to answer
        its own signals at once (widget/reactions.mjs)."""
        try:
            return _reply(reactions=self.engine.reactions() if self.engine else None)
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)

    def explain(self, now) -> str:
        try:
            return _reply(explain=self.engine.explain(int(now)) if self.engine else {})
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)


def _settle() -> None:
    """In the long-lived worker, keep the compiled bundle out of the cyclic
    GC's full collections (engine.settle_memory); pointless under CPython tests."""
    if IN_PYODIDE:
        from widget.runtime.engine import settle_memory

        settle_memory()


_MERGES = frozenset({"record_sync", "chat_history"})   # events that merge a record from elsewhere

def _as_rejection(exc: BaseException) -> BaseException:
    if isinstance(exc, trust.BundleRejected):
        return exc
    problems = getattr(exc, "problems", None)
    if problems is not None:
        detail = "; ".join(str(p) for p in problems[:5])
        return trust.BundleRejected("bad_payload", detail)
    return exc

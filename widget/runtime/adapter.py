"""The one module that meets JavaScript.

The runtime host (widget/engine/host.mjs) calls these functions with JSON text and plain
bytes and gets JSON text back, so no JS proxy outlives a call and the rest of
the runtime stays pure Python. Errors never escape as exceptions: every reply
is a JSON object with "ok"."""

from __future__ import annotations

import base64
import copy
import json
import secrets
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
    """One page's runtime: trust in its bundles (trust.BundleTrust), the
    engine and its record. config: {site, keys, context, floor, visitor}
    where `floor` is the highest bundle version this browser accepted before
    and `visitor` the visitor id of the stored record (a staged rollout's
    part is chosen by it; else by the id this page would store,
    `context.visitor_id`; neither: the previous version)."""

    def __init__(self, config_json: str):
        config = json.loads(config_json)
        self.site = config.get("site") or None
        self.keys = trust.parse_key_list(config.get("keys", ""))
        self.context = config.get("context") or {}
        # This page's key in the record's per-tab counters (record.py): the
        # page sends its own; else one per runtime, so tabs still add up.
        if not isinstance(self.context.get("tab"), str) or not self.context["tab"]:
            self.context["tab"] = secrets.token_hex(6)
        self.trust = trust.BundleTrust(self.keys, site=self.site, floor=config.get("floor"), compile=self._compile,
                                       visitor=_rollout_visitor(config.get("visitor"), self.context.get("visitor_id")))
        self.engine = None
        self.bundle = None
        self._staged = None  # (payload, compiled Bundle): the trust's last `run`, not running yet
        self._sent = None    # the record the page was sent last

    # -- bundle -----------------------------------------------------------
    def signing_request(self, raw) -> str:
        """Checks 1-3; what the caller must verify with WebCrypto: the signed
        message and the (pinned key, signature) candidates. Decides nothing
        (`offer` does, from the same bytes)."""
        try:
            opened = self.trust.open(_bytes(raw))
        except Exception as exc:  # noqa: BLE001 - reported, never raised into JS
            return _failure(exc)
        return _reply(
            message=base64.b64encode(opened.message).decode("ascii"),
            candidates=[
                [base64.b64encode(k).decode("ascii"), base64.b64encode(s).decode("ascii")]
                for k, s in opened.candidates
            ],
        )

    def offer(self, raw, which: str, verdict, detail, now) -> str:
        """A bundle's bytes, `which` ("cached" | "fetched"), and the caller's
        signature verdict ("valid" | "invalid" | "unsupported" | null when
        the envelope did not open) to the trust state. Replies what to keep:
        {keep: {kind, run, store, lowerFloor}, site, version, widgets, team}; a bundle
        to `run` is staged (`start` runs it, `swap` swaps it in)."""
        try:
            offer = self.trust.offer_cached if which == "cached" else self.trust.offer_fetched
            keep = offer(_bytes(raw), verdict if isinstance(verdict, str) else None, int(now),
                         detail if isinstance(detail, str) else "")
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)
        if keep.run:
            self._staged = (keep.payload, keep.compiled)
        fields = {"kind": keep.kind, "run": keep.run, "store": keep.store, "lowerFloor": keep.lower_floor}
        if keep.payload is None:
            return _reply(keep=fields)
        from widget.runtime import content  # the widgets' appearance, for the renderer

        # `team`: whether a message depends on the team's presence (the page
        # reads it from the endpoint only then).
        team = any(isinstance(m, dict) and m.get("team", "any") != "any" for m in keep.payload.get("messages") or [])
        return _reply(keep=fields, site=keep.payload["site"], version=keep.version,
                      widgets=content.appearance(keep.payload), team=team,
                      **({"rollout": keep.rollout} if keep.rollout else {}))

    def _compile(self, payload: dict):
        from widget.runtime import bundle  # compiled here, once: validation errors are reported

        return bundle.parse(payload)

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
    def start(self, record_json: str | None, events_json: str, now, pages_json: str | None = None) -> str:
        """Run the staged bundle on the record and this page's events so far.
        `pages_json`: other pages of this visitor that never started the
        engine (widget/shell/boot.mjs), [{tab, events}], oldest first, each
        replayed by an engine of its own without messages (none could show
        there: the page would have started the engine), so the record
        advances as if they had run: those that began before this page in
        order, before it; those that began after it (other tabs, opened
        meanwhile) each on that record, merged in as another tab's record
        is (`record_sync`), so this page stays the visit's earlier one."""
        try:
            from widget.runtime import boothint
            from widget.runtime.engine import Engine

            record = json.loads(record_json) if record_json else None
            if self._staged is not None:
                self.bundle, compiled = self._staged
                self._staged = None
            else:
                compiled = self.bundle
            events = json.loads(events_json)
            pages = json.loads(pages_json) if pages_json else []
            pages = pages if isinstance(pages, list) else []
            mine = [e["t"] for e in events if isinstance(e, dict) and _is_ms(e.get("t"))]
            begins = min(mine) if mine else None
            before = [p for p in pages if begins is None or (_first(p) is not None and _first(p) <= begins)]
            after = [p for p in pages if p not in before]
            record = self._replay_pages(compiled, record, before)
            if after:
                from widget.runtime.record import merge_records

                merged = None
                for page in after:
                    merged = merge_records(merged, self._replay_pages(compiled, copy.deepcopy(record), [page]))
                events = events + [{"type": "record_sync", "t": int(now), "record": merged}]
            self.engine = Engine(compiled, record=record, context=self.context)
            self._sent = None
            _settle()
            reply = self._step(json.dumps(events), now)
            urls = [e.get("url") for e in events
                    if isinstance(e, dict) and e.get("type") == "page_view" and isinstance(e.get("url"), str)]
            payload = self.bundle if isinstance(self.bundle, dict) else {}
            warning = boothint.later_than_rules(payload.get("boot"), payload, urls)
            if warning:
                reply = _reply(**{k: v for k, v in json.loads(reply).items() if k != "ok"}, hint_warning=warning)
            return reply
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)

    def _replay_pages(self, compiled, record, pages: list):
        """Each earlier page's signals through an engine without messages:
        the record advances by the engine's own rules (page views, visits,
        presence, chat, dismissals), and nothing is shown, exposed or
        counted as an invitation (none could show there: the page would have
        started the engine; and a newer bundle's messages were not there)."""
        import dataclasses

        from widget.runtime import bundle as bundle_mod
        from widget.runtime.engine import Engine

        if not pages:
            return record
        if not isinstance(compiled, bundle_mod.Bundle):
            compiled = bundle_mod.parse(compiled)
        silent = dataclasses.replace(compiled, messages=[])
        for page in pages if isinstance(pages, list) else []:
            events = page.get("events") if isinstance(page, dict) else None
            if not isinstance(events, list) or not events:
                continue
            tab = page.get("tab") if isinstance(page.get("tab"), str) and page.get("tab") else self.context.get("tab")
            times = [e["t"] for e in events if isinstance(e, dict) and isinstance(e.get("t"), int)
                     and not isinstance(e.get("t"), bool)]
            if not times:
                continue
            try:
                past = Engine(silent, record=record, context=dict(self.context, tab=tab, claims=False))
                record = past.step(events, max(times))["record"]
            except Exception:  # noqa: BLE001 - a damaged entry is skipped, the others still count
                continue
        return record

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
        its own signals at once (widget/decisions/reactions.mjs)."""
        try:
            return _reply(reactions=self.engine.reactions() if self.engine else None)
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)

    def explain(self, now) -> str:
        try:
            return _reply(explain=self.engine.explain(int(now)) if self.engine else {})
        except Exception as exc:  # noqa: BLE001
            return _failure(exc)


def _is_ms(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _first(page):
    """The first instant of a pending page's signals, or None."""
    events = page.get("events") if isinstance(page, dict) else None
    times = [e["t"] for e in events or () if isinstance(e, dict) and _is_ms(e.get("t"))]
    return min(times) if times else None


def _rollout_visitor(stored, candidate) -> str | None:
    """The visitor id a staged rollout goes by: the stored record's, else the
    one this page creates (kept by the engine on its first event); either
    only when well formed."""
    from widget.runtime.experiments import VISITOR_ID

    for vid in (stored, candidate):
        if isinstance(vid, str) and VISITOR_ID.match(vid):
            return vid
    return None


def _settle() -> None:
    """In the long-lived worker, keep the compiled bundle out of the cyclic
    GC's full collections (engine.settle_memory); pointless under CPython tests."""
    if IN_PYODIDE:
        from widget.runtime.engine import settle_memory

        settle_memory()


_MERGES = frozenset({"record_sync", "chat_history"})   # events that merge a record from elsewhere

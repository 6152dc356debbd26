"""The runtime sends the visitor record to the page only when it changed
since it was last sent, and always after a merge with another tab's record
(adapter.Runtime._step, the worker's per-event path)."""

from __future__ import annotations

import json

from widget.runtime.adapter import Runtime
from widget.runtime.engine import Engine

NOW = 1_780_000_000_000
PAYLOAD = {"site": "acme", "widgets": [{"id": "main"}],
           "messages": [{"id": "hello", "type": "proactive", "widget": "main", "content": {"text": "Hi"},
                         "rules": [{"rule": "time_on_page", "op": "greater", "value": 3}]}]}


def started() -> tuple[Runtime, dict]:
    rt = Runtime(json.dumps({"keys": "ed25519:" + "A" * 43 + "=", "context": {}}))
    rt._staged = (PAYLOAD, Engine(PAYLOAD).bundle)
    first = json.loads(rt.start("", json.dumps([{"type": "page_view", "t": NOW, "url": "https://a.example/", "referrer": ""}]), NOW))
    return rt, first


def step(rt, events, t) -> dict:
    return json.loads(rt.step(json.dumps(events), t))


def test_record_only_when_it_changed():
    rt, first = started()
    assert first["record"]["page_views"] == 1                      # the first reply always carries it
    quiet = step(rt, [{"type": "tick", "t": NOW + 1000}], NOW + 1000)
    assert quiet["ok"] and quiet["record"] is None                  # nothing changed: nothing to persist
    shown = step(rt, [{"type": "tick", "t": NOW + 3001}], NOW + 3001)
    assert [d["message"] for d in shown["decisions"]] == ["hello"]
    assert shown["record"]["invitations_sent"] == 1                 # delivery changed it
    assert step(rt, [], NOW + 4000)["record"] is None
    view = step(rt, [{"type": "page_view", "t": NOW + 5000, "url": "https://a.example/b", "referrer": ""}], NOW + 5000)
    assert view["record"]["page_views"] == 2


def test_record_always_after_a_merge():
    rt, first = started()
    # Another tab wrote an older record: the merge leaves ours unchanged, but
    # the page must write ours back over the other tab's.
    older = dict(first["record"], page_views=0)
    merged = step(rt, [{"type": "record_sync", "t": NOW + 10, "record": older}], NOW + 10)
    assert merged["record"] == first["record"]
    assert step(rt, [{"type": "tick", "t": NOW + 20}], NOW + 20)["record"] is None

"""Business hours in a zone whose offset the tz database alone knows, under
Pyodide: Africa/Casablanca left +01 for Ramadan 2026 (+00 from 15 February
to 22 March). The browser has no tz database; the signed bundle carries the
zone's TZif file (widget/runtime/zones.py)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from conftest import shown_ids, sync, wait_ready


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def test_casablanca_business_hours_during_ramadan_under_pyodide(site, page, guard):
    name = site.publish({"site": "test", "team": {"timezone": "Africa/Casablanca", "hours": {"daily": "09:00-17:00"}},
                         "messages": [{"id": "online", "team": "online", "content": {"text": "We're here"},
                                       "rules": []}]}, "casablanca")
    envelope = json.loads((site.bundles / "casablanca.json").read_text())
    assert "Africa/Casablanca" in json.loads(base64.b64decode(envelope["payload"]))["tzdata"]["zones"]
    start = utc_ms("2026-03-02T08:30:00")   # 08:30 in Casablanca (+00); a fixed +01 would say 09:30, open
    url = site.page("<p>hours</p>", tag=site.tag(bundle=name, data_endpoint="off"))
    page.clock.install(time=start / 1000)   # Playwright's Python clock takes seconds
    page.clock.pause_at(start / 1000 + 1)
    page.goto(url)
    wait_ready(page)
    sync(page)
    assert shown_ids(page) == []
    gate = page.evaluate("proactive('explain')")["online"]["gates"]["team"]
    assert gate["current"] == "offline" and gate["next_change"] == utc_ms("2026-03-02T09:00:00")
    page.clock.run_for(utc_ms("2026-03-02T09:00:00") - page.evaluate("Date.now()"))
    sync(page)
    assert shown_ids(page) == ["online"]
    assert page.evaluate("proactive('status').shown")[-1] == {"message": "online", "t": utc_ms("2026-03-02T09:00:00")}

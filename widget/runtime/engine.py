"""The rule engine: a deterministic function of (visitor record, timestamped
events, bundle payload) -> (decisions, record, next_wakeup).

Minimal first cut: page_view, time_on_page greater, show decisions and
next_wakeup. It follows docs/architecture.md exactly; the full catalog follows.
"""

from __future__ import annotations

import copy


def _new_record() -> dict:
    return {"v": 1, "visits": 0, "page_views": 0, "invitations_sent": 0, "once": []}


class Engine:
    def __init__(self, payload: dict, record: dict | None = None, context: dict | None = None):
        self.payload = payload
        self.messages = list(payload.get("messages", []))
        self.record = copy.deepcopy(record) if record else _new_record()
        self.context = dict(context or {})
        self.page_start: int | None = None
        self.shown_this_page: set[str] = set()
        self.on_screen: str | None = None
        self.now = 0

    def _threshold(self, message: dict) -> int | None:
        rules = message.get("rules") or []
        if isinstance(rules, dict):
            rules = rules.get("all", [rules])
        for cond in rules:
            if cond.get("rule") == "time_on_page" and cond.get("op") == "greater":
                return int(round(float(cond["value"]) * 1000))
        return None

    def _holds(self, message: dict, now: int) -> bool:
        if self.page_start is None:
            return False
        threshold = self._threshold(message)
        return threshold is None or now - self.page_start > threshold

    def _evaluate(self, now: int, decisions: list) -> None:
        if self.on_screen is not None:
            return
        ordered = sorted(enumerate(self.messages), key=lambda im: (-im[1].get("priority", 0), im[0]))
        for _, message in ordered:
            mid = message["id"]
            if mid in self.shown_this_page or self._holds(message, now) is False:
                continue
            self.shown_this_page.add(mid)
            self.on_screen = mid
            self.record["invitations_sent"] += 1
            decisions.append({"action": "show", "message": mid, "t": now,
                              "content": message.get("content", {}), "priority": message.get("priority", 0)})
            return

    def _next_wakeup(self) -> int | None:
        if self.page_start is None or self.on_screen is not None:
            return None
        best = None
        for message in self.messages:
            threshold = self._threshold(message)
            if threshold is None or message["id"] in self.shown_this_page:
                continue
            at = self.page_start + threshold + 1
            if at > self.now and (best is None or at < best):
                best = at
        return best

    def step(self, events: list[dict], now: int) -> dict:
        decisions: list[dict] = []
        for event in events:
            t = int(event["t"])
            while (w := self._next_wakeup()) is not None and w <= t:
                self.now = w
                self._evaluate(w, decisions)
            self.now = t
            if event["type"] == "page_view":
                self.page_start = t
                self.shown_this_page = set()
                self.on_screen = None
                self.record["page_views"] += 1
            elif event["type"] == "dismiss" and event.get("message") == self.on_screen:
                self.on_screen = None
            self._evaluate(t, decisions)
        while (w := self._next_wakeup()) is not None and w <= now:
            self.now = w
            self._evaluate(w, decisions)
        self.now = max(self.now, now)
        return {"decisions": decisions, "record": copy.deepcopy(self.record), "next_wakeup": self._next_wakeup()}

    def explain(self, now: int) -> dict:
        return {m["id"]: {"result": self._holds(m, now), "conditions": []} for m in self.messages}

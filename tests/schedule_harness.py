"""Drivers shared by the schedule property tests: the engine driven live (as
the page drives it: events as they happen, one timer at `next_wakeup`) and a
brute force that re-evaluates at every sub-step of a fixed grid."""

from __future__ import annotations

from widget.runtime.engine import Engine


class BruteForce(Engine):
    """No schedule: it only learns about time when it is stepped."""

    def __init__(self, payload):
        super().__init__(payload, incremental=False)

    def next_wakeup(self):
        return None


def journey(draw, raw, messages, grid, extra=None) -> list:
    """Events from drawn (step, kind) pairs: a first page view at 0, then each
    kind at step × grid ms with the fields it needs (`extra(e)` adds more)."""
    from hypothesis import strategies as st

    events = [{"t": 0, "type": "page_view", "url": "https://s.example/", "referrer": ""}]
    for step, kind in sorted(raw):
        e = {"t": step * grid, "type": kind}
        if kind == "page_view":
            e.update(url="https://s.example/p", referrer="")
        elif kind == "dismiss":
            e["message"] = draw(st.sampled_from([m["id"] for m in messages]))
        elif extra is not None:
            extra(e)
        events.append(e)
    return events


def decisions(result) -> list:
    return [(d["action"], d["message"], d["t"]) for d in result["decisions"]]


def drive(engine, events, end):
    """Step `engine` as the page does, at each event and each wake-up it asks
    for, up to `end`: yields each step's result."""
    i, wake = 0, None
    while True:
        nxt = [t for t in ((events[i]["t"] if i < len(events) else None), wake) if t is not None and t <= end]
        if not nxt:
            return
        t = min(nxt)
        group = [e for e in events[i:] if e["t"] == t]
        i += len(group)
        result = engine.step(group, t)
        yield result
        wake = result["next_wakeup"]
        assert wake is None or wake > t, "a wake-up must lie in the future"


def drive_live(payload, events, end) -> list:
    """Decisions of one engine stepped at each event and each wake-up it asks for."""
    return [d for result in drive(Engine(payload), events, end) for d in decisions(result)]


def drive_brute(payload, events, end, grid, substeps) -> list:
    """Decisions of a brute force stepped at every grid point and `substeps` ms after it."""
    brute = BruteForce(payload)
    expected = []
    for g in range(0, end + 1, grid):
        for k in range(substeps):
            group = [e for e in events if e["t"] == g] if k == 0 else []
            expected += decisions(brute.step(group + [{"t": g + k, "type": "tick"}], g + k))
    return [d for d in expected if d[2] <= end]


def drive_late(payload, events, end) -> list:
    """Decisions of one engine given every event in a single late step."""
    return decisions(Engine(payload).step(events, end))

"""The agent page's numbers count visitors (issue: reply rate 200 %)."""

from __future__ import annotations

import pytest

from server_stub import storage
from server_stub.storage import Store


def events(*kinds: str, message: str = "m") -> list[dict]:
    return [{"id": str(i), "type": kind, "message": message} for i, kind in enumerate(kinds)]


@pytest.mark.parametrize("name, batches, visitors, rate", [
    ("shown once, replied twice", {"a": ("shown", "replied", "replied")},
     {"shown": 1, "clicked": 0, "dismissed": 0, "replied": 1}, 1.0),
    ("shown twice to one visitor who replied once", {"a": ("shown", "shown", "replied")},
     {"shown": 1, "clicked": 0, "dismissed": 0, "replied": 1}, 1.0),
    ("two visitors, one replied", {"a": ("shown", "replied"), "b": ("shown", "clicked", "clicked")},
     {"shown": 2, "clicked": 1, "dismissed": 0, "replied": 1}, 0.5),
    ("a reply from a visitor it was not shown to", {"a": ("shown",), "b": ("replied",)},
     {"shown": 1, "clicked": 0, "dismissed": 0, "replied": 0}, 0.0),
    ("never shown", {"b": ("replied",)}, {"shown": 0, "clicked": 0, "dismissed": 0, "replied": 0}, None),
], ids=lambda v: v if isinstance(v, str) else None)
def test_rates_count_visitors_and_never_exceed_100_percent(name, batches, visitors, rate):
    store = Store()
    for sender, kinds in batches.items():
        store.add_events(sender, "acme", events(*kinds))
    (m,) = store.stats(3_600_000)["messages"]
    assert m["visitors"] == visitors and m["reply_rate"] == rate
    # The event counts stay what they were: every showing, every reply.
    assert m["shown"] == sum(k.count("shown") for k in batches.values())
    assert m["replied"] == sum(k.count("replied") for k in batches.values())


def test_visitor_counts_follow_the_since_window(monkeypatch):
    store = Store()
    # The events are received at 1000 (the stats' tallies are kept on write:
    # the clock is set, not the stored rows).
    monkeypatch.setattr(storage, "now_ms", lambda: 1000)
    store.add_events("a", None, events("shown", "replied"))
    monkeypatch.undo()
    store.add_events("b", None, events("shown"))
    (m,) = store.stats(3_600_000, since=2000)["messages"]
    assert m["visitors"]["shown"] == 1 and m["reply_rate"] == 0.0

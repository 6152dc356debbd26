"""The agent stats are read from tallies kept on write (migration 0005), on
SQLite and PostgreSQL: whatever beacons arrive, retried, deleted or pruned,
they answer what counting the stored raw events answers (the reference
below, written from the stats' definition: docs/endpoint.md)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from endpoint_helpers import static_dir  # noqa: F401 (a fixture)
from services import fresh_schema
from test_server import SITE, Client, app, client, make_app  # noqa: F401 (fixtures)
from server_stub import storage
from server_stub.storage import KINDS, Store, migrations

BUCKETS = (60_000, 3_600_000, 86_400_000)
DAY0 = 1_764_000_000_000 // 86_400_000 * 86_400_000   # a day's first instant
TABLES = ("events", "arm_events", "event_counts", "button_counts", "visitor_marks", "visitor_counts")


@pytest.fixture
def store(backend, request):
    if backend == "sqlite":
        made = Store()
        yield made
        made.close()
        return
    from server_stub.storage_pg import PostgresStore

    url = request.getfixturevalue("postgres_url")
    made = PostgresStore(url, schema=fresh_schema(), pool_size=2)
    yield made
    made.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{made.schema}" CASCADE')


def from_raw_events(store, bucket_ms: int, since: int | None) -> dict:
    """The stats as counting the stored raw events says."""
    rows = [r for r in store._read("SELECT id, kind, message, button, received_at FROM events")
            if since is None or r["received_at"] >= since]
    out: dict[str, dict] = {}

    def entry(mid):
        return out.setdefault(mid, {"message": mid, "shown": 0, "clicked": 0, "dismissed": 0, "replied": 0,
                                    "visitors": dict.fromkeys(KINDS, 0), "reply_rate": None,
                                    "buttons": {}, "series": {}})

    marks: dict[tuple[str, str], set] = {}
    for r in rows:
        m = entry(r["message"])
        m[r["kind"]] += 1
        bucket = r["received_at"] // bucket_ms * bucket_ms
        point = m["series"].setdefault(bucket, {"t": bucket, "shown": 0, "clicked": 0, "dismissed": 0, "replied": 0})
        point[r["kind"]] += 1
        if r["kind"] == "clicked" and r["button"] is not None:
            m["buttons"][r["button"]] = m["buttons"].get(r["button"], 0) + 1
        marks.setdefault((r["message"], r["id"].split(":", 1)[0]), set()).add(r["kind"])
    for (message, _), kinds in marks.items():
        if "shown" in kinds:
            for kind in KINDS:
                out[message]["visitors"][kind] += kind in kinds
    for m in out.values():
        m["series"] = [m["series"][t] for t in sorted(m["series"])]
        if m["visitors"]["shown"]:
            m["reply_rate"] = m["visitors"]["replied"] / m["visitors"]["shown"]
    return {"bucket_ms": bucket_ms, "messages": sorted(out.values(), key=lambda m: m["message"])}


def received_at(monkeypatch, t: int) -> None:
    monkeypatch.setattr(storage, "now_ms", lambda: t)


def empty(store) -> None:
    store._tx(lambda db: [db.execute(f"DELETE FROM {table}") for table in TABLES])


# Instants around minute, hour and day boundaries, over three days.
instants = st.builds(lambda day, ms: DAY0 + day * 86_400_000 + ms, st.integers(0, 1),
                     st.sampled_from([0, 1, 59_999, 60_000, 60_001, 61_234, 3_599_999, 3_600_000, 3_600_001,
                                      3_660_000, 43_200_000, 86_399_999]))
event = st.fixed_dictionaries({
    "id": st.integers(0, 12).map(str), "type": st.sampled_from(KINDS), "message": st.sampled_from(["m1", "m2"]),
    "button": st.sampled_from([None, "yes", "no"])})
beacon = st.tuples(st.just("beacon"), instants, st.sampled_from(["a", "b", "c:x"]), st.lists(event, max_size=6))
forget = st.tuples(st.just("delete"), st.just(0), st.sampled_from(["a", "b", "c:x"]), st.just([]))
sinces = st.one_of(st.none(), st.builds(int.__add__, instants, st.integers(-1, 1)),
                   st.integers(-5, 2 * 86_400_000).map(lambda ms: DAY0 + ms))
EXAMPLES = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def apply(store, monkeypatch, operations) -> None:
    for op, t, sender, events in operations:
        if op == "beacon":
            received_at(monkeypatch, t)
            store.add_events(sender, "acme", events)
        else:
            store.delete_visitor(None, sender)


@EXAMPLES
@given(operations=st.lists(st.one_of(beacon, beacon, beacon, forget), max_size=12),
       bucket=st.sampled_from(BUCKETS), since=sinces)
def test_the_tallies_answer_what_the_raw_events_say(store, monkeypatch, operations, bucket, since):
    empty(store)
    apply(store, monkeypatch, operations)
    got, want = store.stats(bucket, since), from_raw_events(store, bucket, since)
    assert got == want, (operations, since, bucket, got, want)


@EXAMPLES
@given(operations=st.lists(beacon, min_size=1, max_size=12), cutoff=instants, bucket=st.sampled_from(BUCKETS),
       since=st.one_of(st.none(), instants.map(lambda t: t // 60_000 * 60_000), instants))
def test_pruning_raw_events_does_not_change_the_stats(store, monkeypatch, operations, cutoff, bucket, since):
    empty(store)
    apply(store, monkeypatch, operations)
    before = store.stats(bucket, since)
    old = len(store._read("SELECT id FROM events WHERE received_at < ?", (cutoff,)))
    kept = len(store._read("SELECT id FROM events")) - old
    assert store.prune_events(cutoff, chunk=3) == old
    assert len(store._read("SELECT id FROM events")) == kept
    assert not store._read("SELECT id FROM events WHERE received_at < ?", (cutoff,))
    # A window's first partial minute is read from the raw events: exact
    # when they are kept (since at or after the cutoff) or the window starts
    # on a minute.
    if since is None or since % 60_000 == 0 or since >= cutoff:
        assert store.stats(bucket, since) == before


def test_pruning_keeps_the_counts_and_visitors(store, monkeypatch):
    received_at(monkeypatch, DAY0 + 1000)
    store.add_events("a", None, [{"id": "1", "type": "shown", "message": "m"},
                                 {"id": "2", "type": "clicked", "message": "m", "button": "yes"}])
    received_at(monkeypatch, DAY0 + 2 * 86_400_000)
    store.add_events("b", None, [{"id": "1", "type": "shown", "message": "m"}])
    assert store.prune_events(DAY0 + 86_400_000) == 2
    (m,) = store.stats(86_400_000)["messages"]
    assert (m["shown"], m["clicked"], m["buttons"], m["visitors"]["shown"], m["visitors"]["clicked"]) == (
        2, 1, {"yes": 1}, 2, 1)
    assert [p["t"] for p in m["series"]] == [DAY0, DAY0 + 2 * 86_400_000]
    # A retry of a pruned event is no longer recognised, but a visitor already
    # counted is not counted twice.
    store.add_events("a", None, [{"id": "1", "type": "shown", "message": "m"}])
    (m,) = store.stats(86_400_000)["messages"]
    assert m["visitors"]["shown"] == 2


def test_the_migration_tallies_the_events_stored_before_it(store, monkeypatch):
    """A database at schema 4 with events: upgrading fills the tallies."""
    empty(store)
    for table in ("event_counts", "button_counts", "visitor_marks", "visitor_counts"):
        store._tx(lambda db, table=table: db.execute(f"DROP TABLE {table}"))
    store._tx(lambda db: db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'"))
    rows = [(f"{sender}:{i}", kind, message, "yes" if kind == "clicked" else None, DAY0 + i * 1_234_567)
            for i, (sender, kind, message) in enumerate(
                [("a", "shown", "m1"), ("a", "replied", "m1"), ("b", "shown", "m1"), ("b", "clicked", "m2"),
                 ("c:x", "shown", "m2"), ("c:x", "clicked", "m2"), ("a", "dismissed", "m1")])]
    store._tx(lambda db: db.executemany("INSERT INTO events (id, kind, message, button, received_at)"
                                        " VALUES (?, ?, ?, ?, ?)", rows))
    if store.dialect == "sqlite":
        store._db.execute("DROP INDEX events_by_time")
    else:
        store._tx(lambda db: db.execute("DROP INDEX events_by_time"))
    assert store.upgrade() == migrations(store.dialect)[-1][0]
    for bucket in BUCKETS:
        for since in (None, DAY0 + 2_000_000):
            got, want = store.stats(bucket, since), from_raw_events(store, bucket, since)
            assert got == want, (since, bucket, got, want)
    assert store.stats(3_600_000)["messages"][0]["visitors"] == {"shown": 2, "clicked": 0, "dismissed": 1, "replied": 1}


def test_the_endpoint_deletes_raw_events_past_keep_events_days(static_dir, monkeypatch):  # noqa: F811
    """`--keep-events-days 30`: a beacon received 31 days ago loses its raw
    event, one of yesterday keeps it, and the agent stats do not move."""
    app = make_app(static_dir, keep_events_days=30)
    with Client(app, raise_server_exceptions=False) as client:
        now = storage.now_ms()
        for age_days, sender in ((31, "old"), (1, "new")):
            received_at(monkeypatch, now - age_days * 86_400_000)
            batch = {"sender": sender, "events": [{"id": "1", "type": "shown", "message": "m"},
                                                  {"id": "2", "type": "replied", "message": "m"}]}
            assert client.post("/api/events", json=batch, headers={"origin": SITE}).status_code == 202
        monkeypatch.undo()
        before = client.get("/api/agent/stats?bucket=day").json()
        endpoint = app.state.endpoint
        assert client.portal.call(endpoint.prune_events) == 2
        assert [r["id"] for r in endpoint.store._read("SELECT id FROM events ORDER BY id")] == ["new:1", "new:2"]
        after = client.get("/api/agent/stats?bucket=day").json()
        assert after == before and after["messages"][0]["visitors"]["replied"] == 2
        assert client.portal.call(endpoint.prune_events) == 0


def test_a_deleted_visitor_leaves_no_tally_row_and_stops_counting(client):  # noqa: F811
    for sender in ("mine", "theirs"):
        batch = {"sender": sender, "events": [{"id": "1", "type": "shown", "message": "m"},
                                              {"id": "2", "type": "clicked", "message": "m", "button": "ok"}]}
        assert client.post("/api/events", json=batch, headers={"origin": SITE}).status_code == 202
    assert client.delete("/api/visitors/me?sender=mine", headers={"origin": SITE}).json()["deleted"]["events"] == 2
    store = client.app.state.endpoint.store
    assert [r["sender"] for r in store._read("SELECT sender FROM visitor_marks")] == ["theirs"]
    (m,) = client.get("/api/agent/stats").json()["messages"]
    assert (m["shown"], m["clicked"], m["buttons"], m["visitors"]["shown"], m["visitors"]["clicked"]) == (
        1, 1, {"ok": 1}, 1, 1)


def _bench():
    """bench/endpoint.py as a module (it is a script, not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "endpoint.py"
    spec = importlib.util.spec_from_file_location("bench_endpoint", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchs_generated_events_are_what_the_write_path_stores(store, backend, request, tmp_path):
    """bench/endpoint.py measures the stats at 10 million events loaded by
    the database server (generated rows, tallied as migration 0005 does):
    the same rows and the same stats as storing them through the write path."""
    bench = _bench()
    count, start_t, end_t = 6_040, DAY0 - 3 * 86_400_000 + 12_345, DAY0 + 4_321   # batches straddle minutes and days
    bench.load_write_path(store, count, start_t, end_t)
    if backend == "sqlite":
        location = str(tmp_path / "generated.db")
        generated = storage.open_store(tmp_path / "generated.db")
    else:
        from server_stub.storage_pg import PostgresStore

        schema = fresh_schema()
        location = f"{request.getfixturevalue('postgres_url')}?options=-csearch_path%3D{schema}"
        generated = PostgresStore(request.getfixturevalue("postgres_url"), schema=schema, pool_size=2)
        request.addfinalizer(lambda: _drop_schema(request.getfixturevalue("postgres_url"), schema))
    try:
        bench.load_fast(location, count, start_t, end_t, seconds=60)
        query = "SELECT id, kind, message, button, site, client_t, received_at FROM events ORDER BY id"
        assert generated._rows(query) == store._rows(query) and len(store._rows(query)) == count
        for table in ("event_counts", "button_counts", "visitor_marks", "visitor_counts"):
            assert sorted(generated._rows(f"SELECT * FROM {table}")) == sorted(store._rows(f"SELECT * FROM {table}"))
        for bucket in BUCKETS:
            for since in (None, end_t - 86_400_000, start_t + 1):
                assert generated.stats(bucket, since) == store.stats(bucket, since) == from_raw_events(
                    store, bucket, since)
    finally:
        generated.close()


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

"""The storage layer on both backends (tests/conftest.py runs each test with
SQLite and with PostgreSQL): versioned migrations applied at open, once,
refusing a newer schema; `proactive db`; delivery requests claimed by one
process; the beacon counts PostgreSQL's executemany reports."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from services import fresh_schema
from server_stub.storage import SchemaTooNew, Store, latest_version, migrations

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def location(backend, tmp_path, request):
    """Where a store lives: a SQLite file, or a PostgreSQL URL and schema."""
    if backend == "sqlite":
        return {"location": tmp_path / "e.db"}
    return {"location": request.getfixturevalue("postgres_url"), "schema": fresh_schema()}


def open_at(where: dict, **options):
    if isinstance(where["location"], Path):
        return Store(where["location"], **options)
    from server_stub.storage_pg import PostgresStore

    return PostgresStore(where["location"], schema=where["schema"], pool_size=2, **options)


def raw(store, sql: str, args=()):
    return store._read(sql, args)


def set_version(store, version: int) -> None:
    store._tx(lambda db: db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),)))


@pytest.mark.no_storage
def test_migrations_are_numbered_the_same_for_both_backends():
    assert [v for v, _, _ in migrations("sqlite")] == [v for v, _, _ in migrations("postgresql")] == [1, 2, 3, 4, 5]
    assert latest_version("sqlite") == latest_version("postgresql") == 5


def test_a_new_database_gets_every_migration_and_reopening_applies_none(location):
    store = open_at(location)
    try:
        assert store.schema_version == 5
        key = store.add_visitor("tok", "acme")
        store.add_visitor_message(key, "hello")
    finally:
        store.close()
    again = open_at(location)  # idempotent: nothing to apply, data kept
    try:
        assert again.schema_version == 5
        assert again.conversation_of(key)["messages"][0]["text"] == "hello"
    finally:
        again.close()


def test_an_older_database_is_upgraded_with_its_data(location):
    store = open_at(location, upgrade=False)
    try:
        assert store.schema_version == 0
        version, _, first = migrations(store.dialect)[0]
        if store.dialect == "sqlite":
            store._db.executescript(first)
            store._db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        else:
            store._tx(lambda db: (db.conn.execute(first),
                                  db.execute("INSERT INTO meta VALUES ('schema_version', '1')")))
        key = store.add_visitor("tok", None)
        store._tx(lambda db: db.execute(  # a request stored before claims existed
            "INSERT INTO deliveries (visitor_id, message, attributes, requested_at, updated_at)"
            " VALUES (?, 'm', '{}', 1, 1)", (key,)))
        assert store.upgrade() == 5
        (row,) = raw(store, "SELECT id, claimed_by, claimed_until FROM deliveries")
        assert row["claimed_by"] is None and row["claimed_until"] is None
        assert store.claim_delivery(row["id"], "me")["status"] == "pending"
    finally:
        store.close()


def test_a_newer_schema_is_refused(location):
    store = open_at(location)
    set_version(store, 99)
    store.close()
    with pytest.raises(SchemaTooNew, match="schema version 99, newer than this server knows"):
        open_at(location)


def test_proactive_db_upgrades_and_refuses_a_newer_schema(location, tmp_path):
    target = str(location["location"])
    if "schema" in location:
        target += f"?options=-csearch_path%3D{location['schema']}"
        setup = open_at(location, upgrade=False)  # makes the schema
        setup.close()

    def db(action):
        return subprocess.run([sys.executable, "-m", "proactive.cli", "db", action, "--db", target],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    status = db("status")
    assert status.returncode == 0 and "schema version 0 of 5 (5 to apply)" in status.stdout, status
    up = db("upgrade")
    assert up.returncode == 0 and "schema version 5 of 5 (up to date)" in up.stdout, up
    store = open_at(location, upgrade=False)
    set_version(store, 6)   # one newer than the files
    store.close()
    refused = db("upgrade")
    assert refused.returncode == 1 and "newer than this server knows" in refused.stderr, refused
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_processes_starting_together_apply_each_migration_once(location, backend):
    if backend == "sqlite":
        pytest.skip("one process owns a SQLite file")
    errors, stores = [], []

    def start():
        try:
            stores.append(open_at(location))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors and [s.schema_version for s in stores] == [5] * 6
    finally:
        for s in stores:
            s.close()


def test_a_delivery_request_is_claimed_by_one_caller_until_its_lease_runs_out(location):
    store = open_at(location)
    try:
        key = store.add_visitor("tok", None)
        request_, created = store.add_delivery(key, None, "m", "a@b.example", {})
        assert created
        won = []

        def claim(owner):
            if store.claim_delivery(request_["id"], owner, lease_ms=60_000) is not None:
                won.append(owner)

        threads = [threading.Thread(target=claim, args=(f"p{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1
        assert store.unclaimed_deliveries(0) == []  # held
        store._tx(lambda db: db.execute("UPDATE deliveries SET claimed_until = 1"))  # the lease ran out
        assert store.unclaimed_deliveries(0) == [request_["id"]]
        assert store.claim_delivery(request_["id"], "later") is not None
        store.set_delivery_status(request_["id"], "handed_over")
        store._tx(lambda db: db.execute("UPDATE deliveries SET claimed_until = 1"))
        assert store.claim_delivery(request_["id"], "again") is None  # no longer pending
        assert store.unclaimed_deliveries(0) == []
    finally:
        store.close()


def test_beacon_batches_count_only_new_events(location):
    store = open_at(location)
    try:
        events = [{"id": str(i), "type": "shown", "message": "m"} for i in range(5)]
        assert store.add_event_batches([("a", None, events), ("b", None, events[:2]), ("a", None, events),
                                        ("c", None, [])]) == [5, 2, 0, 0]
        assert store.add_events("a", None, events + [{"id": "9", "type": "clicked", "message": "m"}]) == 1
    finally:
        store.close()

"""The endpoint's tests run once per storage backend.

Every test in tests/test_server*.py and tests/test_endpoint_*.py runs with
`backend` = "sqlite" and again with "postgresql" (unless marked
`sqlite_only`: it is about the SQLite file itself, or `no_storage`: it
touches no database). Under "postgresql" an app
created without a database (`create_widget_app(static)`, in memory on
SQLite) gets a fresh schema in a throwaway PostgreSQL server instead, so each
app starts empty as it does on SQLite; the stores are closed and the schemas
dropped after the test.
"""

from __future__ import annotations

import itertools
import os

import pytest

from services import fresh_schema, postgres_server, redis_server

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: about the SQLite file; not run against PostgreSQL")
    config.addinivalue_line("markers", "no_storage: touches no database; run once")


def _endpoint_module(name: str) -> bool:
    base = name.rsplit(".", 1)[-1]
    return base.startswith(("test_server", "test_endpoint_"))


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and _endpoint_module(metafunc.module.__name__):
        only_sqlite = any(metafunc.definition.get_closest_marker(m) for m in ("sqlite_only", "no_storage"))
        metafunc.parametrize("backend", ("sqlite",) if only_sqlite else BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(autouse=True)
def backend(request, monkeypatch):
    """"sqlite" or "postgresql": what an app made without a database stores into."""
    name = getattr(request, "param", "sqlite")
    if name == "sqlite":
        yield name
        return
    url = request.getfixturevalue("postgres_url")
    from server_stub import app as app_module, storage
    from server_stub.storage_pg import PostgresStore

    made: list[PostgresStore] = []

    def open_store(location=None, **options):
        if location is not None:
            return storage.open_store(location, **options)
        store = PostgresStore(url, schema=fresh_schema(), pool_size=4, **options)
        made.append(store)
        return store

    monkeypatch.setattr(app_module, "open_store", open_store)
    yield name
    import psycopg

    for store in made:
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        for store in made:
            conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')

"""The endpoint's storage on PostgreSQL, shared by any number of processes.

The queries are `SqlStore`'s (server_stub/storage.py), run through a
psycopg 3 connection pool: each call takes a connection, runs in one
transaction (READ COMMITTED; the statements that could race between
processes are single upserts), and gives it back. Migrations run under a
transaction-scoped advisory lock, so processes starting together apply each
file once. `schema=` puts the tables in a schema of their own (tests give
each app a fresh one).
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

from server_stub.storage import SqlStore, StoreError, StoreLocked, check_version, migrations

MIGRATION_LOCK = 0x70726F61  # pg_advisory_xact_lock key while migrating ("proa")
SERVING_LOCK = 0x70726F62    # with the schema's hash: the advisory lock of the processes serving it ("prob")


def _text(args) -> tuple:
    """PostgreSQL text cannot hold NUL (U+0000), which JSON and SQLite can:
    it is stored as U+FFFD, the replacement character, as other text that
    cannot be kept is (docs/endpoint.md, Storage)."""
    return tuple(a.replace("\x00", "\ufffd") if isinstance(a, str) else a for a in args)


class _Placeholders:
    """A connection seen through the `?` placeholders the shared queries use."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def execute(self, query: str, args=()):
        return self.conn.execute(query.replace("?", "%s"), _text(args))

    def executemany(self, query: str, rows):
        cur = self.conn.cursor()
        cur.executemany(query.replace("?", "%s"), [_text(r) for r in rows])
        return cur


class PostgresStore(SqlStore):
    dialect = "postgresql"
    transient_errors = (psycopg.OperationalError,)  # lost connections, a pool timeout, a server shutting down
    lock_rows = " FOR UPDATE"   # a visitor's tally row, read then updated by one writer at a time

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 8, timeout: float = 5.0,
                 busy_timeout: float = 5.0, upgrade: bool = True):
        self.url, self.schema, self.threads = url, schema, pool_size
        # A statement waits `busy_timeout` seconds at most for another session's lock, then fails
        # (LockNotAvailable): a 503 storage_busy, as SQLite's busy timeout is, not a request that hangs.
        # The URL's own options (e.g. a search_path) are kept: given here, they would replace them.
        options = " ".join(filter(None, (_url_options(url), f"-c lock_timeout={max(1, int(busy_timeout * 1000))}")))
        if schema is not None:
            options += f" -c search_path={schema}"
        kwargs = {"row_factory": dict_row, "autocommit": True, "options": options}
        self._kwargs, self._serving = kwargs, None
        self.path = _without_password(url) + (f" (schema {schema})" if schema else "")
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs=kwargs, timeout=timeout, open=False,
                                    name="proactive")
        try:
            self._pool.open(wait=True, timeout=timeout)
            self.schema_version = self.upgrade() if upgrade else self._locked(lambda conn: self._version(conn))
        except (psycopg.Error, Exception) as exc:
            self._pool.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot use the database {self.path}: {str(exc).strip().splitlines()[0]}") from None

    def _locked(self, fn):
        """fn(conn) in one transaction holding the migration lock (processes
        starting together would race on CREATE ... IF NOT EXISTS)."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            if self.schema is not None:
                conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(self.schema)))
            return fn(conn)

    @staticmethod
    def _version(conn: psycopg.Connection) -> int:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row["value"]) if row else 0

    def upgrade(self) -> int:
        """Applies the migrations the database lacks, one transaction each; returns its version."""
        def step(conn) -> tuple[int, bool]:
            version = self._version(conn)
            check_version(version, self.dialect, self.path)
            for number, _, script in migrations(self.dialect):
                if number > version:
                    conn.execute(script)
                    conn.execute("INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key)"
                                 " DO UPDATE SET value = excluded.value", (str(number),))
                    return number, True
            return version, False

        while True:
            version, applied = self._locked(step)
            if not applied:
                return version

    def serve(self, shared: bool) -> None:
        """Claims the database for a serving process, on a connection of its
        own held until close(): with a shared broker (`shared`) alongside any
        number of others that have one too; without, alone, since its live
        news never leaves the process (StoreLocked otherwise). The lock is
        the schema's, so schemas of one database are claimed apart."""
        if self._serving is not None:
            return
        kind = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        try:
            conn = psycopg.connect(self.url, **self._kwargs)
            for _ in range(10):  # a process just killed: the server ends its session a moment later
                got = conn.execute(f"SELECT {kind}(%s, hashtext(coalesce(current_schema(), ''))) AS got",
                                   (SERVING_LOCK,)).fetchone()["got"]
                if got:
                    break
                time.sleep(0.1)
        except psycopg.Error as exc:
            raise StoreError(f"cannot use the database {self.path}: {str(exc).strip().splitlines()[0]}") from None
        if not got:
            conn.close()
            why = ("serves it without --broker (its live news stays in that process): give every process the "
                   "same --broker" if shared else "serves it, and without --broker (a shared Redis) this one's live "
                   "news would not reach that one's visitors: stop it, or give every process the same --broker")
            raise StoreLocked(f"another process {why} (database {self.path})")
        self._serving = conn

    def close(self) -> None:
        if self._serving is not None:
            try:  # released now: the server ends a closed session's locks a moment after the client has gone
                self._serving.execute("SELECT pg_advisory_unlock_all()")
            except psycopg.Error:
                pass
            self._serving.close()
            self._serving = None
        self._pool.close()

    def _tx(self, fn):
        with self._pool.connection() as conn, conn.transaction():
            return fn(_Placeholders(conn))

    def _read(self, query: str, args=()) -> list[dict]:
        with self._pool.connection() as conn:
            return conn.execute(query.replace("?", "%s"), _text(args)).fetchall()

    def _rows(self, query: str, args=()) -> list[tuple]:
        """As `_read`, as tuples straight from psycopg (the stats' series: no dict per row)."""
        with self._pool.connection() as conn:
            return conn.cursor(row_factory=tuple_row).execute(query.replace("?", "%s"), _text(args)).fetchall()


def _url_options(url: str) -> str:
    """The `options` the URL itself gives libpq (none when it cannot be read: the pool says why)."""
    try:
        return psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
    except psycopg.ProgrammingError:
        return ""


def _without_password(url: str) -> str:
    """The URL as printed: any password replaced by ***."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    user = info.get("user", "")
    auth = f"{user}{':***' if info.get('password') else ''}@" if user else ""
    return f"postgresql://{auth}{info.get('host', '')}{':' + str(info['port']) if info.get('port') else ''}/{info.get('dbname', '')}"

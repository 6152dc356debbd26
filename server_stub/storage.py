"""The endpoint's storage: one SQLite file in WAL mode.

What is kept, and why it is shaped so:
- visitors are stored by the SHA-256 of their token, never the token itself,
  so a copy of the database cannot be used to read anyone's conversation;
- one conversation per visitor (a reply to a proactive message starts it);
  messages from the visitor or an agent; the visitor's last rating;
- agents' presence (the team is online while any agent is);
- analytics events from the widget's beacons, de-duplicated by the event id
  the widget gives each event (beacons are retried, counts must not double);
- delivery requests for `email` auto messages, one per visitor and message.

All times are server milliseconds since the epoch. Every method is a short
transaction on one connection guarded by a lock; the endpoint calls them on
a storage thread of its own (never on the event loop), and WAL lets readers
(e.g. a second process with `sqlite3`) look while the server writes.

One process owns a database file at a time: `Store` holds an exclusive lock
on `FILE.lock` while it is open and refuses to open a file another process
holds (`StoreLocked`), since live news is published in-process and a second
server would silently split it. Several processes share one PostgreSQL
database instead (server_stub/storage_pg.py: the same queries, through
`SqlStore`; `open_store` picks the backend from a URL or a path).

The schema is built by versioned migrations (server_stub/migrations/DIALECT/
NNNN_name.sql), applied in order at open, each in its own transaction, and
recorded in `meta.schema_version`; a database at a version newer than the
files this server has is refused (`SchemaTooNew`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

KINDS = ("shown", "clicked", "dismissed", "replied")
ARM_ONLY = ("exposed", "goal")   # kinds kept only with an arm (experiments)

# Per message, its latest experiment (a new salt starts over: the exposures
# of the latest one received), and per arm the visitors exposed to it, and of
# those who were shown it, replied, and reached the goal within the window
# after their exposure (instants in the browser's clock, where the beacons
# were made).
_LATEST = """
  SELECT message, experiment, control FROM arm_events e WHERE kind = 'exposed' AND rowid = (
    SELECT rowid FROM arm_events f WHERE f.message = e.message AND f.kind = 'exposed'
    ORDER BY received_at DESC, rowid DESC LIMIT 1)"""
_ARMS_QUERY = """
WITH latest AS (""" + _LATEST + """),
exp AS (
  SELECT a.message AS message, a.arm AS arm, a.visitor AS visitor, MAX(a.experiment) AS experiment,
         MIN(COALESCE(a.client_t, a.received_at)) AS t
  FROM arm_events a JOIN latest l ON a.message = l.message AND a.experiment IS NOT DISTINCT FROM l.experiment
  WHERE a.kind = 'exposed' GROUP BY a.message, a.arm, a.visitor)
SELECT exp.message AS message, exp.arm AS arm, MAX(exp.experiment) AS experiment, COUNT(*) AS exposed,
  SUM(CASE WHEN EXISTS (SELECT 1 FROM arm_events e WHERE e.message = exp.message AND e.visitor = exp.visitor
              AND e.kind = 'shown') THEN 1 ELSE 0 END) AS shown,
  SUM(CASE WHEN EXISTS (SELECT 1 FROM arm_events e WHERE e.message = exp.message AND e.visitor = exp.visitor
              AND e.kind = 'replied') THEN 1 ELSE 0 END) AS replied,
  SUM(CASE WHEN EXISTS (SELECT 1 FROM arm_events e WHERE e.message = exp.message AND e.visitor = exp.visitor
              AND e.kind = 'goal' AND (CAST(? AS TEXT) IS NULL OR e.goal = CAST(? AS TEXT))
              AND COALESCE(e.client_t, e.received_at) BETWEEN exp.t AND exp.t + CAST(? AS BIGINT)) THEN 1 ELSE 0 END) AS goals
FROM exp GROUP BY exp.message, exp.arm"""

# Per message, distinct visitors (a beacon's sender: the part of an event id
# before its first ':') who were shown it, and who of those clicked,
# dismissed or replied to it: rates built on these never exceed 100 %.
_VISITORS_QUERY = """
WITH per AS (
  SELECT message, MAX(CASE WHEN kind = 'shown' THEN 1 ELSE 0 END) AS s,
         MAX(CASE WHEN kind = 'clicked' THEN 1 ELSE 0 END) AS c,
         MAX(CASE WHEN kind = 'dismissed' THEN 1 ELSE 0 END) AS d,
         MAX(CASE WHEN kind = 'replied' THEN 1 ELSE 0 END) AS r
  FROM events {where} GROUP BY message, {sender})
SELECT message, SUM(s) AS shown, SUM(s * c) AS clicked, SUM(s * d) AS dismissed, SUM(s * r) AS replied
FROM per GROUP BY message HAVING SUM(s) > 0"""


def _lock_exclusively(path: Path):
    """Opens `path` and takes an exclusive, non-blocking lock on it (released
    when the file is closed, or the process dies), or raises StoreLocked."""
    import fcntl

    try:
        handle = open(path, "a+")
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip()
        handle.close()
        raise StoreLocked(f"another process{f' (pid {owner})' if owner else ''} serves the database "
                          f"{str(path)[:-5]}; stop it first (one server per data folder)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def now_ms() -> int:
    return int(time.time() * 1000)


def visitor_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StoreError(Exception):
    """The database cannot be used (locked by another process, read-only, unreadable): one line says why."""


class StoreLocked(StoreError):
    pass


class SchemaTooNew(StoreError):
    pass


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, SQL) of each migration file for a dialect, in order."""
    out = []
    for path in sorted((MIGRATIONS / dialect).glob("[0-9][0-9][0-9][0-9]_*.sql")):
        out.append((int(path.name[:4]), path.stem, path.read_text("utf-8")))
    return out


def latest_version(dialect: str) -> int:
    return max((v for v, _, _ in migrations(dialect)), default=0)


def check_version(found: int, dialect: str, where: str) -> None:
    latest = latest_version(dialect)
    if found > latest:
        raise SchemaTooNew(f"the database {where} is at schema version {found}, newer than this server knows "
                           f"({latest}): run the newer proactive that wrote it, or restore a backup")


class SqlStore:
    """The queries, written once for both backends: `?` placeholders, and
    SQL that SQLite and PostgreSQL read alike (ON CONFLICT, RETURNING).
    A backend provides `_tx(fn)` (fn gets something with `execute` and
    `executemany` returning a cursor), `_read(sql, args)`, `close()`, the
    SQL of an event's sender (`sender_sql`), the exceptions that mean
    "try again later" (`transient_errors`) and how many calls may run at
    once (`threads`)."""

    sender_sql = ""
    transient_errors: tuple[type[BaseException], ...] = ()
    threads = 1
    schema_version = 0

    def _tx(self, fn):
        raise NotImplementedError

    def _read(self, sql: str, args=()) -> list:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- visitors ----------------------------------------------------------------
    def add_visitor(self, token: str, site: str | None) -> str:
        key, t = visitor_key(token), now_ms()
        self._tx(lambda db: db.execute("INSERT INTO visitors VALUES (?, ?, ?, ?)", (key, site, t, t)))
        return key

    def visitor(self, token: str) -> str | None:
        """The visitor's key for a token, or None for a token we never issued."""
        key = visitor_key(token)
        rows = self._read("SELECT id FROM visitors WHERE id = ?", (key,))
        return rows[0]["id"] if rows else None

    def visitor_data(self, visitor: str | None, sender: str | None) -> dict:
        """Everything kept about one visitor (export): the visitor row, the
        conversation with its messages, delivery requests (by the visitor's
        key) and beacon events (by the browser's beacon `sender`)."""
        out: dict = {"visitor": None, "conversation": None, "deliveries": [], "events": []}
        if visitor is not None:
            rows = self._read("SELECT site, created_at, last_seen FROM visitors WHERE id = ?", (visitor,))
            out["visitor"] = {"id": visitor[:12], **dict(rows[0])} if rows else None
            out["conversation"] = self.conversation_of(visitor)
            out["deliveries"] = [self._delivery(r) for r in self._read(
                "SELECT * FROM deliveries WHERE visitor_id = ? ORDER BY id", (visitor,))]
        if sender is not None:
            out["events"] = [{"id": r["id"][len(sender) + 1:], "type": r["kind"], "message": r["message"],
                              "button": r["button"], "site": r["site"], "t": r["client_t"],
                              "received_at": r["received_at"]} for r in self._read(
                "SELECT * FROM events WHERE substr(id, 1, ?) = ? ORDER BY received_at, id", (len(sender) + 1, sender + ":"))]
        return out

    def delete_visitor(self, visitor: str | None, sender: str | None) -> dict:
        """Deletes everything kept about one visitor (see visitor_data), in
        one transaction; returns how many rows of each kind went."""
        def tx(db):
            gone = dict.fromkeys(("visitors", "conversations", "messages", "deliveries", "events"), 0)
            if visitor is not None:
                gone["messages"] = db.execute(
                    "DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE visitor_id = ?)",
                    (visitor,)).rowcount
                gone["conversations"] = db.execute("DELETE FROM conversations WHERE visitor_id = ?", (visitor,)).rowcount
                gone["deliveries"] = db.execute("DELETE FROM deliveries WHERE visitor_id = ?", (visitor,)).rowcount
                gone["visitors"] = db.execute("DELETE FROM visitors WHERE id = ?", (visitor,)).rowcount
            if sender is not None:
                gone["events"] = db.execute("DELETE FROM events WHERE substr(id, 1, ?) = ?",
                                            (len(sender) + 1, sender + ":")).rowcount
                gone["events"] += db.execute("DELETE FROM arm_events WHERE substr(id, 1, ?) = ?",
                                             (len(sender) + 1, sender + ":")).rowcount
            return gone

        return self._tx(tx)

    # -- conversations -------------------------------------------------------------
    def conversation_of(self, visitor: str) -> dict | None:
        rows = self._read("SELECT * FROM conversations WHERE visitor_id = ?", (visitor,))
        return self._conversation(rows[0]) if rows else None

    def conversation(self, conversation_id: int) -> dict | None:
        rows = self._read("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return self._conversation(rows[0]) if rows else None

    def _conversation(self, row) -> dict:
        messages = self._read(
            "SELECT id, sender, author, text, t FROM messages WHERE conversation_id = ? ORDER BY id", (row["id"],))
        return {
            "id": row["id"], "visitor": row["visitor_id"][:12], "site": row["site"],
            "auto_message": row["auto_message"], "page_url": row["page_url"],
            "started_at": row["started_at"], "updated_at": row["updated_at"],
            "rating": row["rating"], "rating_at": row["rating_at"],
            "messages": [dict(m) for m in messages],
        }

    def add_visitor_message(self, visitor: str, text: str, *, site=None, auto_message=None, page_url=None) -> tuple[int, dict]:
        """Stores a visitor message, starting the conversation on the first one."""
        t = now_ms()

        def tx(db):
            # One statement, so that two processes starting it at once make one conversation.
            cid = db.execute(
                "INSERT INTO conversations (visitor_id, site, auto_message, page_url, started_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (visitor_id) DO UPDATE SET updated_at = excluded.updated_at"
                " RETURNING id", (visitor, site, auto_message, page_url, t, t)).fetchone()["id"]
            db.execute("UPDATE visitors SET last_seen = ? WHERE id = ?", (t, visitor))
            mid = db.execute("INSERT INTO messages (conversation_id, sender, author, text, t) VALUES (?, 'visitor', NULL, ?, ?)"
                             " RETURNING id", (cid, text, t)).fetchone()["id"]
            return cid, {"id": mid, "sender": "visitor", "author": None, "text": text, "t": t}

        return self._tx(tx)

    def add_agent_message(self, conversation_id: int, author: str, text: str) -> tuple[str, dict] | None:
        """Stores an agent reply; returns (visitor key, message) or None for an unknown conversation."""
        t = now_ms()

        def tx(db):
            row = db.execute("SELECT visitor_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE conversations SET updated_at = ?, agent_seen_at = ? WHERE id = ?", (t, t, conversation_id))
            mid = db.execute("INSERT INTO messages (conversation_id, sender, author, text, t) VALUES (?, 'agent', ?, ?, ?)"
                             " RETURNING id", (conversation_id, author, text, t)).fetchone()["id"]
            return row["visitor_id"], {"id": mid, "sender": "agent", "author": author, "text": text, "t": t}

        return self._tx(tx)

    def rate(self, visitor: str, value: str) -> dict | None:
        """Stores the visitor's rating of their conversation; None if they have none."""
        t = now_ms()

        def tx(db):
            row = db.execute("SELECT id FROM conversations WHERE visitor_id = ?", (visitor,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE conversations SET rating = ?, rating_at = ?, updated_at = ? WHERE id = ?",
                       (value, t, t, row["id"]))
            return {"conversation": row["id"], "rating": value, "rating_at": t}

        return self._tx(tx)

    def conversations(self, limit: int = 200) -> list[dict]:
        rows = self._read(
            """SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n,
                      (SELECT m.sender FROM messages m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1) AS last_sender,
                      (SELECT m.text FROM messages m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1) AS last_text
               FROM conversations c ORDER BY c.updated_at DESC, c.id DESC LIMIT ?""", (limit,))
        return [{
            "id": r["id"], "visitor": r["visitor_id"][:12], "site": r["site"], "auto_message": r["auto_message"],
            "page_url": r["page_url"], "started_at": r["started_at"], "updated_at": r["updated_at"],
            "rating": r["rating"], "messages": r["n"], "last_sender": r["last_sender"], "last_text": r["last_text"],
            "awaiting_reply": r["last_sender"] == "visitor",
        } for r in rows]

    # -- presence ------------------------------------------------------------------
    def set_agent_online(self, agent: str, online: bool, ttl_ms: int | None = None) -> bool:
        """Records an agent's presence; online with `ttl_ms`, only until then
        unless said again (a heartbeat). True when it changed."""
        t = now_ms()
        expires = t + ttl_ms if online and ttl_ms else None

        def tx(db):
            row = db.execute("SELECT online FROM agents WHERE name = ?", (agent,)).fetchone()
            db.execute(
                "INSERT INTO agents (name, online, changed_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET online = excluded.online, expires_at = excluded.expires_at,"
                " changed_at = CASE WHEN agents.online = excluded.online THEN agents.changed_at"
                " ELSE excluded.changed_at END", (agent, int(online), t, expires))
            return row is None or bool(row["online"]) != online

        return self._tx(tx)

    def expire_agents(self) -> list[str]:
        """Marks offline the agents whose heartbeat stopped; their names (one
        caller gets each, whatever the number of processes)."""
        t = now_ms()
        rows = self._tx(lambda db: db.execute(
            "UPDATE agents SET online = 0, changed_at = ?, expires_at = NULL"
            " WHERE online = 1 AND expires_at IS NOT NULL AND expires_at < ? RETURNING name", (t, t)).fetchall())
        return [r["name"] for r in rows]

    def presence(self) -> dict:
        rows = self._read("SELECT name, online, changed_at FROM agents ORDER BY name")
        online = [r["name"] for r in rows if r["online"]]
        return {"team": "online" if online else "offline", "agents_online": len(online),
                "agents": [{"name": r["name"], "online": bool(r["online"]), "changed_at": r["changed_at"]} for r in rows]}

    # -- analytics -----------------------------------------------------------------
    def add_events(self, sender: str, site: str | None, events: list[dict]) -> int:
        """Stores beacon events; returns how many were new (retries are ignored)."""
        t = now_ms()

        return self.add_event_batches([(sender, site, events)])[0]

    def add_event_batches(self, batches: list[tuple[str, str | None, list[dict]]]) -> list[int]:
        """Several beacons' events in one transaction (group commit); how many were new, per beacon."""
        t = now_ms()

        def tx(db):
            counts = []
            for sender, site, events in batches:
                counts.append(_insert_events(db, sender, site, events, t))
            return counts

        return self._tx(tx)

    def arm_counts(self, goal: str | None, window_ms: int) -> tuple[list[dict], dict[str, str], dict[str, dict]]:
        """Per message and arm, distinct visitors (_ARMS_QUERY); each
        message's control arm and each arm's expected share, as the latest
        exposures say."""
        rows = [dict(r) for r in self._read(_ARMS_QUERY, (goal, goal, window_ms))]
        controls = {r["message"]: r["control"] for r in self._read(_LATEST)}
        shares: dict[str, dict] = {}
        for r in self._read(
                "SELECT message, arm, share FROM arm_events e WHERE kind = 'exposed' AND share IS NOT NULL"
                " AND rowid = (SELECT rowid FROM arm_events f WHERE f.message = e.message AND f.arm = e.arm"
                " AND f.kind = 'exposed' AND f.share IS NOT NULL ORDER BY received_at DESC, rowid DESC LIMIT 1)"):
            shares.setdefault(r["message"], {})[r["arm"]] = r["share"]
        return rows, controls, shares

    def stats(self, bucket_ms: int, since: int | None = None) -> dict:
        """Per auto message: totals of each kind and a time series in buckets."""
        args: tuple = ()
        where = ""
        if since is not None:
            where, args = "WHERE received_at >= ?", (since,)
        totals = self._read(f"SELECT message, kind, COUNT(*) AS n FROM events {where} GROUP BY message, kind", args)
        series = self._read(
            f"SELECT message, kind, (received_at / ?) * ? AS bucket, COUNT(*) AS n FROM events {where}"
            " GROUP BY message, kind, bucket ORDER BY bucket", (bucket_ms, bucket_ms, *args))
        buttons = self._read(
            f"SELECT message, button, COUNT(*) AS n FROM events {where} {'AND' if where else 'WHERE'}"
            " kind = 'clicked' AND button IS NOT NULL GROUP BY message, button", args)
        out: dict[str, dict] = {}

        def entry(mid):
            return out.setdefault(mid, {"message": mid, "shown": 0, "clicked": 0, "dismissed": 0, "replied": 0,
                                        "visitors": dict.fromkeys(KINDS, 0), "reply_rate": None,
                                        "buttons": {}, "series": []})

        for r in totals:
            entry(r["message"])[r["kind"]] = r["n"]
        points: dict[tuple[str, int], dict] = {}
        for r in series:
            key = (r["message"], r["bucket"])
            if key not in points:
                points[key] = {"t": r["bucket"], "shown": 0, "clicked": 0, "dismissed": 0, "replied": 0}
                entry(r["message"])["series"].append(points[key])
            points[key][r["kind"]] = r["n"]
        for r in buttons:
            entry(r["message"])["buttons"][r["button"]] = r["n"]
        for r in self._read(_VISITORS_QUERY.format(where=where or "WHERE 1 = 1", sender=self.sender_sql), args):
            m = entry(r["message"])
            m["visitors"] = {k: r[k] for k in KINDS}
            m["reply_rate"] = r["replied"] / r["shown"] if r["shown"] else None
        return {"bucket_ms": bucket_ms, "messages": sorted(out.values(), key=lambda m: m["message"])}

    # -- delivery requests -----------------------------------------------------------
    def add_delivery(self, visitor: str, site: str | None, message: str, recipient: str | None,
                     attributes: dict) -> tuple[dict, bool]:
        """Stores a delivery request; returns (request, created). One per visitor and message."""
        t = now_ms()

        def tx(db):
            cur = db.execute(
                "INSERT INTO deliveries (visitor_id, site, message, recipient, attributes, requested_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (visitor, site, message, recipient, json.dumps(attributes), t, t))
            created = cur.rowcount == 1
            row = db.execute("SELECT * FROM deliveries WHERE visitor_id = ? AND message = ?", (visitor, message)).fetchone()
            return self._delivery(row), created

        return self._tx(tx)

    def set_delivery_status(self, delivery_id: int, status: str, detail: str | None = None) -> dict | None:
        t = now_ms()

        def tx(db):
            db.execute("UPDATE deliveries SET status = ?, status_detail = ?, updated_at = ? WHERE id = ?",
                       (status, detail, t, delivery_id))
            row = db.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
            return self._delivery(row) if row else None

        return self._tx(tx)

    def deliveries(self, status: str | None = None, limit: int = 500) -> list[dict]:
        if status:
            rows = self._read("SELECT * FROM deliveries WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit))
        else:
            rows = self._read("SELECT * FROM deliveries ORDER BY id DESC LIMIT ?", (limit,))
        return [self._delivery(r) for r in rows]

    def claim_delivery(self, delivery_id: int, owner: str, lease_ms: int = 60_000) -> dict | None:
        """Claims a pending request for handing over: the request if this
        caller won it (no one else holds a live claim), else None. With any
        number of processes on one database, one of them gets each."""
        t = now_ms()

        def tx(db):
            row = db.execute(
                "UPDATE deliveries SET claimed_by = ?, claimed_until = ? WHERE id = ? AND status = 'pending'"
                " AND (claimed_until IS NULL OR claimed_until < ?) RETURNING *",
                (owner, t + lease_ms, delivery_id, t)).fetchone()
            return self._delivery(row) if row else None

        return self._tx(tx)

    def unclaimed_deliveries(self, older_than_ms: int, limit: int = 50) -> list[int]:
        """Pending requests nobody holds, requested at least `older_than_ms`
        ago (their process died before handing them over)."""
        t = now_ms()
        rows = self._read("SELECT id FROM deliveries WHERE status = 'pending' AND requested_at <= ?"
                          " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?",
                          (t - older_than_ms, t, limit))
        return [r["id"] for r in rows]

    @staticmethod
    def _delivery(row) -> dict:
        return {"id": row["id"], "visitor": row["visitor_id"][:12], "site": row["site"], "message": row["message"],
                "recipient": row["recipient"], "attributes": _attributes(row["attributes"]),
                "requested_at": row["requested_at"], "status": row["status"], "status_detail": row["status_detail"],
                "updated_at": row["updated_at"]}



class Store(SqlStore):
    """SQLite storage. `path=None` keeps everything in memory (tests, throwaway).
    `busy_timeout`: seconds a write waits for another connection's lock
    before it fails (the endpoint answers 503 then)."""

    dialect = "sqlite"
    sender_sql = "substr(id, 1, instr(id, ':') - 1)"
    transient_errors = (sqlite3.OperationalError,)

    def __init__(self, path: Path | str | None = None, *, busy_timeout: float = 5.0, upgrade: bool = True):
        self.path = str(path) if path is not None else ":memory:"
        self._lock = threading.Lock()
        self._lock_file = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = _lock_exclusively(Path(str(path) + ".lock"))
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self.journal_mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self.schema_version = self.upgrade() if upgrade else self._version()
            if upgrade:  # a server must be able to write: a read-only file is refused now, not at the first visitor
                self._db.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        except sqlite3.Error as exc:
            self._unlock()
            why = "read-only" if "readonly" in str(exc).lower() else str(exc)
            raise StoreError(f"cannot use the database {self.path}: {why}") from None
        except StoreError:
            self._unlock()
            raise

    def _version(self) -> int:
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def upgrade(self) -> int:
        """Applies the migrations this database lacks; returns its version."""
        with self._lock:
            version = self._version()
            check_version(version, self.dialect, self.path)
            for number, _, sql in migrations(self.dialect):
                if number > version:
                    # One transaction per file (executescript would commit a pending one first).
                    try:
                        self._db.executescript(
                            f"BEGIN IMMEDIATE;\n{sql}\n;INSERT INTO meta VALUES ('schema_version', '{number}')"
                            " ON CONFLICT (key) DO UPDATE SET value = excluded.value;\nCOMMIT;")
                    except BaseException:
                        if self._db.in_transaction:
                            self._db.execute("ROLLBACK")
                        raise
                    version = number
            return version

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file releases the lock
            self._lock_file = None

    def _tx(self, fn):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk does), or a
                # failed COMMIT may have left the transaction open.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            return result

    def _read(self, sql: str, args=()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()


def open_store(location: str | Path | None, **options) -> SqlStore:
    """The store for a database location: a postgresql:// (or postgres://)
    URL, else a SQLite file path (None: in memory)."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from server_stub.storage_pg import PostgresStore

        return PostgresStore(location, **options)
    return Store(location, **options)

def _attributes(stored: str) -> dict:
    """Stored attributes as served. New ones are checked on the way in;
    rows written before that check are served with what JSON cannot carry
    (NaN, Infinity, lone surrogates) replaced, rather than breaking the list."""
    def clean(v):
        if isinstance(v, str):
            return v.encode("utf-8", "replace").decode("utf-8")
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {clean(k): clean(x) for k, x in v.items()}
        return v

    return clean(json.loads(stored, parse_constant=lambda name: None))


def _insert_events(db, sender: str, site: str | None, events: list[dict], t: int) -> int:
    """One beacon's events: how many were new (an id seen before is a retry).
    Events of an experiment's arm are also kept with their arm and visitor
    (SQLite and PostgreSQL alike: ON CONFLICT DO NOTHING, counted by rowcount)."""
    def armed(kinds):
        return [(f"{sender}:{e['id']}", e["type"], e["message"], e["arm"], e["visitor"], e.get("experiment"),
                 e.get("control"), e.get("share"), e.get("goal"), site, e.get("t"), t) for e in events
                if e["type"] in kinds and e.get("arm") is not None and e.get("visitor") is not None]

    def insert(query, rows) -> int:
        return max(db.executemany(query, rows).rowcount, 0) if rows else 0

    insert_armed = ("INSERT INTO arm_events (id, kind, message, arm, visitor, experiment, control, share, goal, site,"
                    " client_t, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
    new = insert("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                 [(f"{sender}:{e['id']}", e["type"], e["message"], e.get("button"), site, e.get("t"), t)
                  for e in events if e["type"] not in ARM_ONLY])
    new += insert(insert_armed, armed(ARM_ONLY))
    insert(insert_armed, armed(KINDS))   # the same events once more, with their arm
    return new

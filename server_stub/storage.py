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
from operator import itemgetter
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

KINDS = ("shown", "clicked", "dismissed", "replied")
ARM_ONLY = ("exposed", "goal")   # kinds kept only with an arm (experiments)

# Per message, its latest experiment (a new salt starts over: the exposures
# of the latest one received), and per arm the visitors exposed to it, and of
# those who were shown it, replied, and reached the goal within the window
# after their exposure (instants in the browser's clock, where the beacons
# were made).
#
# "Latest" is the exposure received last (ties: inserted last), found with
# aggregates evaluated once, never with a subquery per row: that made the
# stats cubic in the exposed visitors (400 took 80 s).
def _latest_exposure(keys: tuple[str, ...], with_share: bool = False) -> str:
    """The rowids of the latest exposure per `keys` (`with_share`: of those that carry a share)."""
    cols, on = ", ".join(keys), " AND ".join(f"b.{k} = l.{k}" for k in keys)
    share = " AND {0}share IS NOT NULL" if with_share else ""
    return f"""SELECT MAX(b.rowid) FROM arm_events b JOIN (
      SELECT {cols}, MAX(received_at) AS t FROM arm_events WHERE kind = 'exposed'{share.format("")} GROUP BY {cols}) l
      ON {on} AND b.received_at = l.t
    WHERE b.kind = 'exposed'{share.format("b.")} GROUP BY {", ".join(f"b.{k}" for k in keys)}"""


_LATEST = """
  SELECT message, experiment, control FROM arm_events WHERE rowid IN (""" + _latest_exposure(("message",)) + ")"
_LATEST_SHARES = """
  SELECT message, arm, share FROM arm_events WHERE rowid IN (""" + _latest_exposure(("message", "arm"), True) + ")"
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

# The stats are read from tallies kept on write (migration 0005): events per
# message and kind, and clicks per button, in buckets of each span; per
# message and beacon sender (the part of an event id before its first ':'),
# the last instant of each kind; per message, the distinct visitors who were
# shown it, and of those who clicked, dismissed or replied to it (rates built
# on these never exceed 100 %).
_COUNTS = ", ".join(f"SUM({k}) AS {k}" for k in KINDS)
_SERIES = ("SELECT message, start, shown, clicked, dismissed, replied FROM event_counts WHERE span = ? AND start >= ?"
           " AND shown + clicked + dismissed + replied > 0 ORDER BY start, message")
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
SPANS = (MINUTE, HOUR, DAY)
FOREVER = 2**62


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
    exceptions that mean "try again later" (`transient_errors`), how many
    calls may run at once (`threads`), and two dialect fragments
    (`lock_rows`, `by_shown`)."""

    transient_errors: tuple[type[BaseException], ...] = ()
    threads = 1
    schema_version = 0
    lock_rows = ""   # what makes a SELECT lock the rows it reads until commit (PostgreSQL: FOR UPDATE)
    by_shown = ""    # how a `since` window reads visitor_marks (SQLite would scan the table in GROUP BY order)

    def _tx(self, fn):
        raise NotImplementedError

    def _read(self, sql: str, args=()) -> list:
        raise NotImplementedError

    def _rows(self, sql: str, args=()) -> list[tuple]:
        """As `_read`, as plain tuples (faster for many rows; name every column)."""
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in self._read(sql, args)]

    def close(self) -> None:
        raise NotImplementedError

    def serve(self, shared: bool) -> None:
        """Claims the database for a serving process (`shared`: its live news
        goes through a shared broker), or raises StoreLocked. A SQLite file is
        owned by one process from the moment it is open, broker or not."""

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
                rows = db.execute("DELETE FROM events WHERE substr(id, 1, ?) = ? RETURNING message, kind, button,"
                                  " received_at", (len(sender) + 1, sender + ":")).fetchall()
                gone["events"] = len(rows)
                _forget_tallies(db, sender, [(r["message"], r["kind"], r["button"], r["received_at"]) for r in rows],
                                self.lock_rows)
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

    def messages_after(self, visitor: str, after_id: int, since_t: int, limit: int) -> list[dict]:
        """The visitor's conversation's messages with an id above `after_id`
        stored at or after `since_t`, oldest first, at most `limit` (a
        resumed event stream's replay). Ids grow in commit order within a
        conversation: both writers update its row first, which serialises them."""
        rows = self._read(
            "SELECT m.id, m.sender, m.author, m.text, m.t FROM messages m JOIN conversations c ON m.conversation_id = c.id"
            " WHERE c.visitor_id = ? AND m.id > ? AND m.t >= ? ORDER BY m.id LIMIT ?", (visitor, after_id, since_t, limit))
        return [dict(r) for r in rows]

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
            counts, fresh = [], []
            for sender, site, events in batches:
                counts.append(_insert_events(db, sender, site, events, t, fresh))
            _add_tallies(db, fresh, t, self.lock_rows)
            return counts

        return self._tx(tx)

    def arm_counts(self, goal: str | None, window_ms: int) -> tuple[list[dict], dict[str, str], dict[str, dict]]:
        """Per message and arm, distinct visitors (_ARMS_QUERY); each
        message's control arm and each arm's expected share, as the latest
        exposures say."""
        rows = [dict(r) for r in self._read(_ARMS_QUERY, (goal, goal, window_ms))]
        controls = {r["message"]: r["control"] for r in self._read(_LATEST)}
        shares: dict[str, dict] = {}
        for r in self._read(_LATEST_SHARES):
            shares.setdefault(r["message"], {})[r["arm"]] = r["share"]
        return rows, controls, shares

    def stats(self, bucket_ms: int, since: int | None = None) -> dict:
        """Per auto message: totals of each kind and a time series in
        buckets, over the events received at or after `since` (all: None),
        as counting the raw events would say, read from the tallies: the
        buckets of the series' span that start after `since`, the first
        bucket's part after `since` from finer spans, and the first minute's
        part from the raw events (`_cover`). A `since` older than the raw
        events kept (`prune_events`) counts its first minute whole."""
        if since is not None and since <= 0:
            since = None  # every event was received after the epoch
        elif since is not None:
            since = min(since, FOREVER)  # none was received this late; bucket arithmetic stays in 64 bits
        out: dict[str, dict] = {}

        def entry(mid):
            return out.setdefault(mid, {"message": mid, "shown": 0, "clicked": 0, "dismissed": 0, "replied": 0,
                                        "visitors": dict.fromkeys(KINDS, 0), "reply_rate": None,
                                        "buttons": {}, "series": []})

        # The series in bucket order: the first bucket's part after `since`
        # (from finer tallies), then the tallies of the series' span (tuples:
        # there may be tens of thousands of points).
        first = since if since is not None else 0
        head: dict[str, dict] = {}
        for span, lo, hi in _cover(first, bucket_ms):
            for message, *counts in self._rows(self._tallies("kind", span), (lo, hi)):
                point = head.setdefault(message, {"t": first // bucket_ms * bucket_ms, **dict.fromkeys(KINDS, 0)})
                for kind, n in zip(KINDS, counts):
                    point[kind] += int(n)   # PostgreSQL's SUM of BIGINT is NUMERIC
        for message, point in sorted(head.items()):
            if any(point[k] for k in KINDS):
                entry(message)["series"].append(point)
        series: dict[str, list] = {}
        for message, start, shown, clicked, dismissed, replied in self._rows(
                _SERIES, (bucket_ms, -(-first // bucket_ms) * bucket_ms)):
            points = series.get(message)
            if points is None:
                points = series[message] = entry(message)["series"]
            points.append({"t": start, "shown": shown, "clicked": clicked, "dismissed": dismissed, "replied": replied})
        for m in out.values():
            for kind in KINDS:
                m[kind] = sum(map(itemgetter(kind), m["series"]))   # 20 messages x 720 hours: summed in C
        for span, lo, hi in _cover(first, DAY) + [(DAY, -(-first // DAY) * DAY, FOREVER)]:
            for r in self._read(self._tallies("button", span), (lo, hi)):
                buttons = entry(r["message"])["buttons"]
                buttons[r["button"]] = buttons.get(r["button"], 0) + int(r["n"])
        if since is None:
            visitors = self._read("SELECT * FROM visitor_counts WHERE shown > 0")
        else:
            visitors = self._read(
                "SELECT message, COUNT(*) AS shown, SUM(CASE WHEN clicked_at >= ? THEN 1 ELSE 0 END) AS clicked,"
                " SUM(CASE WHEN dismissed_at >= ? THEN 1 ELSE 0 END) AS dismissed,"
                " SUM(CASE WHEN replied_at >= ? THEN 1 ELSE 0 END) AS replied"
                f" FROM visitor_marks{self.by_shown} WHERE shown_at >= ? GROUP BY message", (since,) * 4)
        for r in visitors:
            m = entry(r["message"])
            m["visitors"] = {k: int(r[k]) for k in KINDS}
            m["reply_rate"] = m["visitors"]["replied"] / m["visitors"]["shown"]
        for m in out.values():
            m["buttons"] = {b: n for b, n in m["buttons"].items() if n > 0}
        return {"bucket_ms": bucket_ms, "messages": sorted(out.values(), key=lambda m: m["message"])}

    @staticmethod
    def _tallies(what: str, span: int | None) -> str:
        """The query of the events per message (`what` = "kind": a count per
        kind) or clicks per message and button ("button") received in
        [?, ?): from the raw events (span None) or the tallies of a span."""
        if span is None and what == "kind":
            return ("SELECT message, " + ", ".join(f"SUM(CASE WHEN kind = '{k}' THEN 1 ELSE 0 END) AS {k}" for k in KINDS)
                    + " FROM events WHERE received_at >= ? AND received_at < ? GROUP BY message")
        if span is None:
            return ("SELECT message, button, COUNT(*) AS n FROM events WHERE received_at >= ? AND received_at < ?"
                    " AND kind = 'clicked' AND button IS NOT NULL GROUP BY message, button")
        if what == "kind":
            return f"SELECT message, {_COUNTS} FROM event_counts WHERE span = {int(span)} AND start >= ? AND start < ? GROUP BY message"
        return (f"SELECT message, button, SUM(n) AS n FROM button_counts WHERE span = {int(span)} AND start >= ?"
                " AND start < ? GROUP BY message, button HAVING SUM(n) > 0")

    def prune_events(self, before: int, chunk: int = 5000, chunks: int | None = None) -> int:
        """Deletes the raw beacon events received before `before` (`chunk`
        per transaction, so that writers wait little; at most `chunks`
        transactions, None: all); the stats' tallies keep their counts.
        Experiments' events (`arm_events`) are kept: their results are
        computed from them. How many went."""
        gone, done = 0, 0
        while chunks is None or done < chunks:
            n = max(self._tx(lambda db: db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ? LIMIT ?)",
                (before, chunk)).rowcount), 0)
            gone, done = gone + n, done + 1
            if n < chunk:
                break
        return gone

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
    by_shown = " INDEXED BY visitor_marks_by_shown"
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

    def _rows(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None   # plain tuples from sqlite3 itself
            return cursor.execute(sql, args).fetchall()


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


def _insert_events(db, sender: str, site: str | None, events: list[dict], t: int, fresh: list) -> int:
    """One beacon's events: how many were new (an id seen before is a retry);
    the new ones are appended to `fresh` as (sender, message, kind, button)
    for the tallies. Events of an experiment's arm are also kept with their
    arm and visitor (SQLite and PostgreSQL alike: ON CONFLICT DO NOTHING)."""
    def armed(kinds):
        return [(f"{sender}:{e['id']}", e["type"], e["message"], e["arm"], e["visitor"], e.get("experiment"),
                 e.get("control"), e.get("share"), e.get("goal"), site, e.get("t"), t) for e in events
                if e["type"] in kinds and e.get("arm") is not None and e.get("visitor") is not None]

    def insert(query, rows) -> int:
        return max(db.executemany(query, rows).rowcount, 0) if rows else 0

    insert_armed = ("INSERT INTO arm_events (id, kind, message, arm, visitor, experiment, control, share, goal, site,"
                    " client_t, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
    plain = {}
    for e in events:
        if e["type"] not in ARM_ONLY:
            plain.setdefault(f"{sender}:{e['id']}", e)
    new = 0
    if plain:
        rows = [(i, e["type"], e["message"], e.get("button"), site, e.get("t"), t) for i, e in plain.items()]
        stored = db.execute("INSERT INTO events VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows))
                            + " ON CONFLICT DO NOTHING RETURNING id", [v for row in rows for v in row]).fetchall()
        new = len(stored)
        for row in stored:
            e = plain[row["id"]] if row["id"] in plain else None
            if e is not None:
                fresh.append((row["id"].split(":", 1)[0], e["message"], e["type"], e.get("button")))
    new += insert(insert_armed, armed(ARM_ONLY))
    insert(insert_armed, armed(KINDS))   # the same events once more, with their arm
    return new


def _cover(since: int, span: int) -> list[tuple[int | None, int, int]]:
    """(finer span or None for the raw events, lo, hi) pieces covering
    [since, the first multiple of `span` at or after since): raw events up
    to the next minute, minute tallies up to the next hour, hour tallies up
    to the next day, each only as far as `span`."""
    pieces, lo = [], since
    for finer, coarser in zip((None,) + SPANS, SPANS):
        if coarser > span:
            break
        hi = -(-since // coarser) * coarser
        if hi > lo:
            pieces.append((finer, lo, hi))
            lo = hi
    return pieces


def _bump(db, counts: dict, buttons: dict) -> None:
    """Adds the counts to their tally rows (sorted: concurrent writers lock
    rows in one order, so they never deadlock)."""
    rows = [(*key, *n) for key, n in sorted(counts.items()) if any(n)]
    if rows:
        db.executemany("INSERT INTO event_counts VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (span, start, message)"
                       " DO UPDATE SET " + ", ".join(f"{k} = event_counts.{k} + excluded.{k}" for k in KINDS), rows)
    rows = [(*key, n) for key, n in sorted(buttons.items()) if n]
    if rows:
        db.executemany("INSERT INTO button_counts VALUES (?, ?, ?, ?, ?) ON CONFLICT (span, start, message, button)"
                       " DO UPDATE SET n = button_counts.n + excluded.n", rows)


def _bump_visitors(db, deltas: dict) -> None:
    rows = [(m, *d) for m, d in sorted(deltas.items()) if any(d)]
    if rows:
        db.executemany(
            "INSERT INTO visitor_counts VALUES (?, ?, ?, ?, ?) ON CONFLICT (message) DO UPDATE SET"
            " shown = visitor_counts.shown + excluded.shown, clicked = visitor_counts.clicked + excluded.clicked,"
            " dismissed = visitor_counts.dismissed + excluded.dismissed,"
            " replied = visitor_counts.replied + excluded.replied", rows)


def _visitor_flags(marks) -> tuple[int, ...]:
    """What one visitor adds to visitor_counts: shown, and shown and each other kind."""
    shown = marks[0] is not None
    return (int(shown),) + tuple(int(shown and m is not None) for m in marks[1:])


def _event_counts(events) -> tuple[dict, dict]:
    """Tally deltas of (message, kind, button, received_at, sign) events:
    per (span, start, message) a count per kind, per (span, start, message,
    button) the clicks."""
    counts: dict = {}
    buttons: dict = {}
    for message, kind, button, at, sign in events:
        for span in SPANS:
            start = at // span * span
            row = counts.setdefault((span, start, message), [0, 0, 0, 0])
            row[KINDS.index(kind)] += sign
            if kind == "clicked" and button is not None:
                buttons[(span, start, message, button)] = buttons.get((span, start, message, button), 0) + sign
    return counts, buttons


def _add_tallies(db, fresh: list, t: int, lock_rows: str) -> None:
    """Counts new events, received at `t`, into the tallies, in the
    transaction that stored them: per-visitor marks first (rows of one
    visitor, rarely contended), the shared counters last (held until
    commit)."""
    if not fresh:
        return
    marks: dict[tuple[str, str], set] = {}
    for sender, message, kind, _ in fresh:
        marks.setdefault((message, sender), set()).add(kind)
    deltas: dict[str, list] = {}
    for (message, sender), kinds in sorted(marks.items()):
        db.execute("INSERT INTO visitor_marks (message, sender) VALUES (?, ?) ON CONFLICT DO NOTHING", (message, sender))
        old = db.execute("SELECT shown_at, clicked_at, dismissed_at, replied_at FROM visitor_marks"
                         f" WHERE message = ? AND sender = ?{lock_rows}", (message, sender)).fetchone()
        before = tuple(old[f"{k}_at"] for k in KINDS)
        after = tuple(t if k in kinds and (b is None or b < t) else b for k, b in zip(KINDS, before))
        if after != before:
            db.execute("UPDATE visitor_marks SET shown_at = ?, clicked_at = ?, dismissed_at = ?, replied_at = ?"
                       " WHERE message = ? AND sender = ?", (*after, message, sender))
        d = deltas.setdefault(message, [0, 0, 0, 0])
        for i, (a, b) in enumerate(zip(_visitor_flags(after), _visitor_flags(before))):
            d[i] += a - b
    _bump(db, *_event_counts([(m, k, b, t, 1) for _, m, k, b in fresh]))
    _bump_visitors(db, deltas)


def _forget_tallies(db, sender: str, events: list, lock_rows: str) -> None:
    """A deleted visitor's raw events leave the tallies (those already pruned
    stay counted, anonymously), and so does their per-visitor row: the
    stats stay what counting the stored events says."""
    counts, buttons = _event_counts([(m, k, b, at, -1) for m, k, b, at in events])
    gone = db.execute("DELETE FROM visitor_marks WHERE sender = ? RETURNING message, shown_at, clicked_at,"
                      " dismissed_at, replied_at", (sender.split(":", 1)[0],)).fetchall()
    deltas = {r["message"]: [-f for f in _visitor_flags(tuple(r[f"{k}_at"] for k in KINDS))] for r in gone}
    _bump(db, counts, buttons)
    _bump_visitors(db, deltas)

"""The endpoint past one process, measured on loopback (docs/benchmarks.md, docs/deploy.md).

    .venv/bin/python bench/endpoint.py [--seconds 5] [--concurrency 200] [--streams 2000] [--events 1000000]
    .venv/bin/python bench/endpoint.py --stats-only --events 10000000 [--only sqlite|pg1]

Three layouts in one run, each started fresh: one process on SQLite; one
process on PostgreSQL + Redis; two processes on PostgreSQL + Redis
(throwaway servers from tests/services.py, in temporary folders). Each
process is the endpoint under uvicorn as `proactive serve` runs it, rate
limits and stream caps lifted so the server is measured, not its limits.
Per layout:

1. beacons: CONCURRENCY keep-alive connections (spread over the processes)
   POST one-event beacons for SECONDS seconds: beacons/s, p50, p99;
2. presence fan-out: STREAMS idle visitor streams spread over the
   processes; an agent goes online on the first process; the time until
   every stream has the news (p50 and the last one), and resident memory
   per 1,000 streams;
3. agent reply → visitor: a visitor's stream on the last process, 50
   replies posted on the first: p50 and p99 from POST to the event;
4. stats (once the processes have stopped): EVENTS beacon events stored
   through the write path over 30 days, then the agent stats query timed
   (median of 5; `--stats-only` runs this phase alone).

127.0.0.1 only, every phase bounded in time and count; prints one JSON
line per layout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

from endpoint_load import beacons, cpu_s, rss_kb  # noqa: E402
from services import free_port, postgres_server, redis_server  # noqa: E402

AGENT = "bench-agent-token"


def more_files() -> None:
    """The soft open-file limit raised to the hard one: 10,000 streams are
    10,000 sockets in the client and spread over the processes."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(port: int, data: str, db: str, broker: str) -> None:
    """A child: one endpoint process."""
    more_files()
    from server_stub.app import create_widget_app
    from server_stub.broker import StreamLimits
    from server_stub.server import limit_logs, uvicorn_config
    import uvicorn

    static = Path(data) / "widget"
    static.mkdir(parents=True, exist_ok=True)
    (static / "loader.js").write_text("")
    lifted = {name: (10**9, 10**9) for name in ("register", "message", "rating", "events_ip", "delivery")}
    app = create_widget_app(static, db_path=db if db.startswith("postgresql://") else Path(db), rate_limits=lifted,
                            agent_token=AGENT, broker_url=broker or None, stream_heartbeat=60,
                            stream_limits=StreamLimits(per_address=10**6, per_visitor=10**6))
    limit_logs()
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port)).run()


def call(port: int, method: str, path: str, body=None, token: str | None = None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


OPEN_SECONDS = 240   # opening the streams stops here; the figures then say how many opened
OPENING = 64         # streams being opened at once


async def fan_out(ports: list[int], pids: list[int], count: int) -> dict:
    """COUNT idle visitor streams spread over the processes (OPENING at a
    time, for at most OPEN_SECONDS), then an agent goes online on the first
    process: when each stream had the news."""
    before = sum(rss_kb(p) for p in pids)
    conns: list = []
    gate = asyncio.Semaphore(OPENING)

    async def open_one(i: int):
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", ports[i % len(ports)])
            writer.write(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            conns.append((reader, writer))
            await reader.readuntil(b"event: hello")   # it has its first presence (offline) and hello

    began = time.perf_counter()
    opening = [asyncio.create_task(open_one(i)) for i in range(count)]
    _, late = await asyncio.wait(opening, timeout=OPEN_SECONDS)
    for task in late:
        task.cancel()
    opened = sum(1 for task in opening if task.done() and not task.cancelled() and task.exception() is None)
    open_s = time.perf_counter() - began
    streams = [(r, w) for (r, w) in conns if not r.at_eof()]
    await asyncio.sleep(1.0)
    memory = (sum(rss_kb(p) for p in pids) - before) / 1024 / max(opened, 1) * 1000
    arrivals: list[float] = []

    async def wait(reader):
        await reader.readuntil(b'"team":"online"')
        arrivals.append(time.perf_counter())

    waiting = [asyncio.create_task(wait(r)) for r, _ in streams]
    load = os.getloadavg()[0]
    cpu = [cpu_s(p) for p in pids], time.process_time()
    t0 = time.perf_counter()
    await asyncio.to_thread(call, ports[0], "POST", "/api/agent/presence", {"agent": "Ada", "online": True}, AGENT)
    answered = time.perf_counter()
    done, pending = await asyncio.wait(waiting, timeout=30)
    # CPU time spent on the change (the endpoints' and this client's): what
    # the fan-out costs whatever else the cores do; on a core of its own a
    # process delivers to its streams in about its share of it.
    server_cpu = max(cpu_s(p) - c for p, c in zip(pids, cpu[0]))
    client_cpu = time.process_time() - cpu[1]
    for task in pending:
        task.cancel()
    for _, writer in conns:
        writer.close()
    arrivals.sort()
    return {"streams": count, "streams_opened": opened, "open_s": round(open_s, 1),
            "streams_reached": len(arrivals),
            "presence_post_ms": round((answered - t0) * 1000, 1),
            "presence_first_ms": round((arrivals[0] - t0) * 1000, 1) if arrivals else None,
            "presence_p50_ms": round((arrivals[len(arrivals) // 2] - t0) * 1000, 1) if arrivals else None,
            "presence_all_ms": round((arrivals[-1] - t0) * 1000, 1) if arrivals else None,
            "fan_out_cpu_s_busiest_process": round(server_cpu, 2), "fan_out_cpu_s_client": round(client_cpu, 2),
            "mb_per_1000_streams": round(memory, 1), "load_avg_at_fan_out": round(load, 2)}


def reply_latency(ports: list[int]) -> dict:
    import http.client

    token = call(ports[-1], "POST", "/api/visitors", {})["token"]
    cid = call(ports[-1], "POST", "/api/conversation/messages", {"text": "hi"}, token)["conversation"]
    conn = http.client.HTTPConnection("127.0.0.1", ports[-1], timeout=10)
    conn.request("GET", f"/api/stream?visitor={token}")
    resp = conn.getresponse()

    def until(marker: bytes):
        while marker not in resp.fp.readline():
            pass

    until(b"event: hello")
    lat = []
    for i in range(50):
        t = time.perf_counter()
        call(ports[0], "POST", f"/api/agent/conversations/{cid}/messages", {"text": f"r{i}"}, AGENT)
        until(f'"text":"r{i}"'.encode())
        lat.append((time.perf_counter() - t) * 1000)
    conn.close()
    lat.sort()
    return {"reply_p50_ms": round(lat[25], 1), "reply_p99_ms": round(lat[49], 1)}


PER_VISITOR, BATCH = 40, 2_000   # 40 events per visitor; 50 visitors' beacons per transaction, as the endpoint groups them
LOAD_SECONDS = 900                # the fast load stops (and the bench fails) past this
CHUNK = 1_000_000                 # events generated per statement


def load_write_path(store, count: int, start_t: int, end_t: int) -> None:
    """COUNT beacon events through the endpoint's write path (raw rows and
    tallies in one transaction, as POST /api/events does): 40 events per
    visitor, every kind for 10 of 20 messages, received over [start_t, end_t)."""
    from server_stub import storage

    real_clock = storage.now_ms
    try:
        for start in range(0, count, BATCH):
            received = start_t + (end_t - start_t) * start // count
            storage.now_ms = lambda received=received: received
            store.add_event_batches([(f"v{v}", None, [{
                "id": str(i), "type": ("shown", "clicked", "dismissed", "replied")[i % 4], "message": f"m{i // 4 % 20}",
                "button": "yes" if i % 4 == 1 else None, "t": i}
                for i in range(v * PER_VISITOR, min(count, (v + 1) * PER_VISITOR))])
                for v in range(start // PER_VISITOR, min(count, start + BATCH) // PER_VISITOR)])
    finally:
        storage.now_ms = real_clock


def generated_events(dialect: str, lo: int, hi: int, count: int, start_t: int, end_t: int) -> str:
    """One statement that stores events lo..hi-1 of the COUNT that
    `load_write_path` stores (the same ids, kinds, messages, buttons and
    instants), generated by the database server itself."""
    series = (f"generate_series({lo}::bigint, {hi - 1}) AS g(i)" if dialect == "postgresql" else
              f"(WITH RECURSIVE g(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM g WHERE i < {hi - 1}) SELECT i FROM g) g")
    return (
        "INSERT INTO events (id, kind, message, button, site, client_t, received_at)"
        f" SELECT 'v' || (i / {PER_VISITOR}) || ':' || i,"
        " CASE i % 4 WHEN 0 THEN 'shown' WHEN 1 THEN 'clicked' WHEN 2 THEN 'dismissed' ELSE 'replied' END,"
        " 'm' || (i / 4 % 20), CASE WHEN i % 4 = 1 THEN 'yes' END, NULL, i,"
        f" {start_t} + {end_t - start_t} * (i / {BATCH} * {BATCH}) / {count}"
        f" FROM {series}")


def backfill_statements(dialect: str) -> list[str]:
    """The statements with which migration 0005 tallies the events stored
    before it (the file's "Backfill" section, after its comment line)."""
    from server_stub.storage import migrations

    (sql,) = [text for version, _, text in migrations(dialect) if version == 5]
    backfill = sql[sql.index("-- Backfill"):].split("\n", 1)[1]
    return [statement.strip() for statement in backfill.split(";") if statement.strip()]


def load_fast(db: str, count: int, start_t: int, end_t: int, seconds: float = LOAD_SECONDS) -> None:
    """The events `load_write_path` stores, generated by the database server
    (CHUNK per statement), then the tallies filled the way migration 0005
    fills them for events stored before it: minutes instead of hours at
    10 million. Into a fresh database (the tallies must be empty); fails
    past SECONDS."""
    deadline = time.monotonic() + seconds
    dialect = "postgresql" if db.startswith("postgresql://") else "sqlite"
    statements = [generated_events(dialect, lo, min(count, lo + CHUNK), count, start_t, end_t)
                  for lo in range(0, count, CHUNK)] + backfill_statements(dialect)
    if dialect == "postgresql":
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("SET work_mem = '256MB'")
            conn.execute("SET maintenance_work_mem = '512MB'")
            for sql in statements:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"loading {count} events took over {seconds} s")
                conn.execute(f"SET statement_timeout = {int(left * 1000)}")
                conn.execute(sql)
            conn.execute("SET statement_timeout = 0")
            conn.execute("VACUUM ANALYZE")   # what autovacuum does after a bulk load, at once
    else:
        import sqlite3

        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("PRAGMA cache_size = -1000000")   # 1 GB: the ids' index is written out of order
            conn.set_progress_handler(lambda: time.monotonic() > deadline, 100_000)
            conn.execute("BEGIN")
            for sql in statements:
                conn.execute(sql)
            conn.execute("COMMIT")
            conn.set_progress_handler(None, 0)
            conn.execute("ANALYZE")
        except sqlite3.OperationalError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"loading {count} events took over {seconds} s") from None
            raise exc
        finally:
            conn.close()


def stats_time(db: str, count: int, days: int = 30, write_path: bool = False) -> dict:
    """Stores COUNT beacon events (40 per visitor: every kind for 10 of 20
    messages, received over DAYS days) into a fresh database — generated by
    the database server and tallied as migration 0005 does (`load_fast`),
    or with `write_path` through the endpoint's write path — then times the
    storage calls of GET /api/agent/stats (store.stats and the experiments'
    arm_counts, and the answer's JSON), median of 5: by hour (the agent
    page's default), by day, and by hour over the last 24 hours."""
    from server_stub import storage

    store = storage.open_store(db if db.startswith("postgresql://") else Path(db))
    end = storage.now_ms()
    start_t = end - days * 86_400_000
    try:
        began = time.perf_counter()
        if write_path:
            load_write_path(store, count, start_t, end)
        else:
            load_fast(db, count, start_t, end)
        load_s = time.perf_counter() - began

        def timed(bucket_ms, since=None):
            runs = []
            for _ in range(5):
                t = time.perf_counter()
                json.dumps(store.stats(bucket_ms, since))   # and the answer's JSON, as the endpoint sends it
                store.arm_counts(None, 7 * 86_400_000)
                runs.append((time.perf_counter() - t) * 1000)
            return round(statistics.median(runs), 1)

        return {"events": count, "events_days": days, "load": "write path" if write_path else "generated",
                "load_s": round(load_s, 1), "stats_ms": timed(3_600_000), "stats_day_ms": timed(86_400_000),
                "stats_last_24h_ms": timed(3_600_000, end - 86_400_000),
                "load_avg_at_stats": round(os.getloadavg()[0], 2)}
    finally:
        store.close()


def layout(name: str, processes: int, db: str, broker: str, args) -> dict:
    data = tempfile.mkdtemp(prefix="bench-endpoint-")
    ports = [free_port() for _ in range(processes)]
    children = [subprocess.Popen([sys.executable, __file__, "--serve", str(p), data, db, broker], cwd=ROOT)
                for p in ports]
    try:
        deadline = time.time() + 60
        for p, child in zip(ports, children):
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{p}/health", timeout=1).close()
                    break
                except OSError:
                    if child.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"{name}: an endpoint did not start")
                    time.sleep(0.2)
        result = {"layout": name, "processes": processes,
                  "load_avg_start": [round(x, 2) for x in os.getloadavg()]}

        async def spread():
            per = max(1, args.concurrency // processes)
            parts = await asyncio.gather(*(beacons(p, args.seconds, per) for p in ports))
            total = sum(x["requests"] for x in parts)
            return {"concurrency": per * processes, "beacons_per_s": sum(x["beacons_per_s"] for x in parts),
                    "beacon_p99_ms": max(x["p99_ms"] for x in parts), "beacon_p50_ms": max(x["p50_ms"] for x in parts),
                    "beacons": total, "non_202": sum(x["non_202"] for x in parts),
                    "non_202_why": {k: sum(x.get("non_202_why", {}).get(k, 0) for x in parts)
                                    for k in {k for x in parts for k in x.get("non_202_why", {})}}}

        if not args.stats_only:
            result.update(asyncio.run(spread()))
            result["load_avg_after_beacons"] = round(os.getloadavg()[0], 2)
            result.update(asyncio.run(fan_out(ports, [c.pid for c in children], args.streams)))
            result.update(reply_latency(ports))
            result["load_avg_after_replies"] = round(os.getloadavg()[0], 2)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(data, ignore_errors=True)
    if args.events:
        result.update(stats_time(db, args.events, write_path=args.write_path))
    return result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--streams", type=int, default=2000)
    p.add_argument("--events", type=int, default=0, help="beacon events stored before timing the stats query")
    p.add_argument("--stats-only", action="store_true", help="only the stats phase (with --events)")
    p.add_argument("--write-path", action="store_true",
                   help="store the events through the endpoint's write path (slow) instead of generating them")
    p.add_argument("--only", choices=("sqlite", "pg1", "pg2"), action="append")
    p.add_argument("--serve", nargs=4, metavar=("PORT", "DATA", "DB", "BROKER"), help=argparse.SUPPRESS)
    args = p.parse_args()
    more_files()
    if args.serve:
        port, data, db, broker = args.serve
        serve(int(port), data, db, broker)
        return 0
    args.seconds = min(args.seconds, 30.0)
    args.streams = min(args.streams, 12_000)
    args.events = min(args.events, 10_000_000)
    wanted = args.only or ["sqlite", "pg1", "pg2"]
    if "sqlite" in wanted:
        folder = tempfile.mkdtemp(prefix="bench-sqlite-")
        try:
            print(json.dumps(layout("sqlite", 1, os.path.join(folder, "endpoint.db"), "", args)), flush=True)
        finally:
            shutil.rmtree(folder)   # at 10 million events, gigabytes
    if "pg1" in wanted or "pg2" in wanted:
        with postgres_server() as pg, redis_server() as rd:
            for name, n in (("pg1", 1), ("pg2", 2)):
                if name in wanted:
                    import psycopg

                    schema = f"bench_{name}"
                    with psycopg.connect(pg, autocommit=True) as conn:
                        conn.execute(f"CREATE SCHEMA {schema}")
                    db = f"{pg}?options=-csearch_path%3D{schema}"
                    print(json.dumps(layout(f"postgresql+redis x{n}", n, db, rd, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

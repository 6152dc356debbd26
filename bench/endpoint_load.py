"""A bounded load test of the reference endpoint on loopback (docs/benchmarks.md).

    .venv/bin/python bench/endpoint_load.py [--root CHECKOUT] [--seconds 5] [--concurrency 50] [--streams 1000]

Starts the endpoint of CHECKOUT (default: this one) in a child process —
create_widget_app with a SQLite file and rate limits lifted, so the server
and not the limiter is measured, under uvicorn configured as `proactive
serve` configures it — then, from this process:

1. beacons: CONCURRENCY keep-alive connections POST /api/events (one event
   each, distinct ids) for SECONDS seconds: completed requests per second,
   the p50/p99 latency, and the server's CPU time per beacon (steadier than
   throughput on a shared machine);
2. idle streams: the server's resident memory before and after opening
   STREAMS idle /api/stream connections, per 1,000 streams.

Only 127.0.0.1, bounded in count and time. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def serve(root: str, port: int, data: str) -> None:
    """The child: the endpoint of `root` on 127.0.0.1:port."""
    sys.path.insert(0, root)
    import uvicorn

    from server_stub.app import create_widget_app

    static = Path(data) / "widget"
    static.mkdir(parents=True, exist_ok=True)
    (static / "loader.js").write_text("")
    lifted = {name: (10**9, 10**9) for name in ("register", "message", "rating", "events", "events_ip", "delivery")}
    kwargs = {}
    try:
        from server_stub.broker import StreamLimits

        kwargs["stream_limits"] = StreamLimits(per_address=10**6)  # all load comes from one address
    except ImportError:
        pass
    app = create_widget_app(static, db_path=Path(data) / "endpoint.db", rate_limits=lifted, **kwargs)
    try:
        from server_stub.server import limit_logs, uvicorn_config

        limit_logs()
        config = uvicorn_config(app, "127.0.0.1", port)
    except ImportError:  # an older checkout: uvicorn as its `proactive serve` ran it
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run()


def cpu_s(pid: int) -> float:
    """The process's user + system CPU time: unlike throughput, not much
    moved by other load on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def beacons(port: int, seconds: float, concurrency: int) -> dict:
    """One-event beacons on CONCURRENCY keep-alive connections; a non-202
    counts as an error, and a connection the server closes (a 503 sheds its
    connection) is counted and opened again."""
    latencies: list[float] = []
    errors = 0
    why: dict[str, int] = {}  # non-202 answers by status line and error code, and dropped connections
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                while time.perf_counter() < deadline:
                    i += 1
                    body = json.dumps({"sender": f"w{port}-{n}", "events": [{"id": f"{n}-{i}", "type": "shown",
                                                                             "message": "m"}]}).encode()
                    t = time.perf_counter()
                    writer.write(b"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    if head.startswith(b"HTTP/1.1 202"):
                        latencies.append(time.perf_counter() - t)
                    else:
                        errors += 1
                        code = head.split(b"\r\n", 1)[0].decode(errors="replace")
                        why[code] = why.get(code, 0) + 1
                        if b"connection: close" in head.lower():
                            break
            except (ConnectionError, asyncio.IncompleteReadError):
                errors += 1
                why["connection lost"] = why.get("connection lost", 0) + 1
            finally:
                writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"beacons_per_s": round(len(latencies) / elapsed), "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1), "requests": len(latencies),
            "non_202": errors, **({"non_202_why": why} if why else {})}


def idle_streams(port: int, pid: int, count: int) -> dict:
    time.sleep(0.5)
    before = rss_kb(pid)
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            socks.append(s)
        opened = sum(1 for s in socks if s.recv(64).startswith(b"HTTP/1.1 200"))
        time.sleep(1.0)
        after = rss_kb(pid)
    finally:
        for s in socks:
            s.close()
    return {"streams_opened": opened, "mb_per_1000_streams": round((after - before) / 1024 / opened * 1000, 1) if opened else None}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--root", default=str(HERE), help="the checkout whose endpoint is measured")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--serve", nargs=2, metavar=("PORT", "DATA"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.root, int(args.serve[0]), args.serve[1])
        return 0
    args.seconds = min(args.seconds, 30.0)  # bounded
    args.streams = min(args.streams, 5000)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="endpoint-load-")
    child = subprocess.Popen([sys.executable, __file__, "--root", args.root, "--serve", str(port), data],
                             cwd=args.root, env={**os.environ, "PYTHONPATH": args.root})
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if child.poll() is not None or time.time() > deadline:
                    raise RuntimeError("the endpoint did not start")
                time.sleep(0.1)
        result = {"root": args.root, "concurrency": args.concurrency, "seconds": args.seconds}
        cpu = cpu_s(child.pid)
        result.update(asyncio.run(beacons(port, args.seconds, args.concurrency)))
        result["server_cpu_ms_per_beacon"] = round((cpu_s(child.pid) - cpu) * 1000 / result["requests"], 2)
        result.update(idle_streams(port, child.pid, args.streams))
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`proactive serve` as an operator runs it: the agent page URL carries a
token it created, forwarded headers count only with --trust-proxy, a second
server on the same data folder is refused, a read-only database is one clear
line, and with few file descriptors the server keeps answering /health while
refusing streams past its caps (and keeps its log short)."""

from __future__ import annotations

import os
import re
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from endpoint_helpers import http_call

ROOT = Path(__file__).resolve().parents[1]
# About the SQLite data folder `proactive serve` owns; PostgreSQL + Redis
# processes are tested in tests/test_endpoint_cluster.py.
pytestmark = pytest.mark.sqlite_only


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    def __init__(self, tmp: Path, *args: str, nofile: int | None = None):
        static = tmp / "widget"
        static.mkdir(exist_ok=True)
        (static / "loader.js").write_text("/* loader */")
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.err = (tmp / f"serve-{self.port}.err").open("w+")

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "proactive.cli", "serve", "--no-demo", "--port", str(self.port),
             "--static", str(static), "--data", str(tmp / "data"), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.err, text=True, preexec_fn=limit,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_ready(self) -> str:
        lines = []
        deadline = time.time() + 30
        while True:
            line = self.proc.stdout.readline()
            assert line or self.proc.poll() is None, self.stderr()
            lines.append(line)
            if line.startswith("Script tag:"):
                break
            assert time.time() < deadline, "".join(lines)
        while True:  # printed before listening: wait until it answers
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1).close()
                return "".join(lines)
            except OSError:
                assert self.proc.poll() is None and time.time() < deadline, self.stderr()
                time.sleep(0.05)

    def call(self, method, path, body=None, headers=None, timeout=10):
        status, _, answer = http_call(self.url + path, method, body, headers, timeout)
        return status, answer

    def stderr(self) -> str:
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_serve_guards_the_agent_api_ignores_forwarded_headers_and_owns_its_data_folder(tmp_path):
    a = Serve(tmp_path)
    try:
        out = a.wait_ready()
        # The agent page URL carries the token serve created (and kept for next time).
        match = re.search(r"Agent page:\s+(\S+)/agent#token=(\S+)", out)
        assert match, out
        token = match.group(2)
        assert (tmp_path / "data" / "agent-token").read_text().strip() == token
        assert oct((tmp_path / "data" / "agent-token").stat().st_mode & 0o777) == "0o600"
        assert a.call("GET", "/api/agent/conversations")[0] == 401
        assert a.call("GET", "/api/agent/conversations", headers={"authorization": f"Bearer {token}"})[0] == 200
        localhost = {"authorization": f"Bearer {token}", "host": f"localhost:{a.port}"}
        assert a.call("GET", "/api/agent/conversations", headers=localhost)[0] == 200  # any loopback name
        rebinding = {"authorization": f"Bearer {token}", "host": "evil.example:9403", "origin": "http://evil.example:9403"}
        assert a.call("POST", "/api/agent/presence", {"agent": "x", "online": True}, rebinding)[0] == 403

        # X-Forwarded-For from 127.0.0.1 is not an address without --trust-proxy:
        # registering is limited per address (60, then one a second).
        codes = [a.call("POST", "/api/visitors", {}, {"x-forwarded-for": f"203.0.113.{i}"})[0] for i in range(62)]
        assert codes[:60] == [201] * 60 and 429 in codes[60:], codes

        # A second server on the same data folder is refused with one line.
        b = Serve(tmp_path)
        try:
            assert b.proc.wait(30) == 1
            err = b.stderr().strip()
            assert "another process" in err and "Traceback" not in err and len(err.splitlines()) == 1, err
        finally:
            b.stop()
        assert a.call("GET", "/health")[0] == 200  # the first one is unaffected
    finally:
        a.stop()
    # Once it has stopped, the folder is free again (and the token is the same).
    c = Serve(tmp_path)
    try:
        assert f"#token={token}" in c.wait_ready()
    finally:
        c.stop()


def test_trust_proxy_honours_forwarded_addresses_only_from_the_proxy(tmp_path):
    s = Serve(tmp_path, "--trust-proxy", "127.0.0.1")
    try:
        s.wait_ready()
        codes = [s.call("POST", "/api/visitors", {}, {"x-forwarded-for": f"203.0.113.{i}"})[0] for i in range(62)]
        assert codes == [201] * 62  # each forwarded address has its own budget
    finally:
        s.stop()


def test_a_read_only_database_is_one_line_and_exit_1(tmp_path):
    from server_stub.storage import Store

    db = tmp_path / "ro" / "endpoint.db"
    Store(db).close()
    for leftover in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)
    if os.geteuid() == 0:  # root writes through permissions: make the file immutable instead
        if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a file read-only for root here (chattr)")
    else:
        db.chmod(0o444)
    try:
        s = Serve(tmp_path, "--db", str(db))
        try:
            assert s.proc.wait(30) == 1
            err = s.stderr().strip()
            assert "read-only" in err or "readonly" in err or "cannot" in err, err
            assert "Traceback" not in err and len(err.splitlines()) == 1, err
        finally:
            s.stop()
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(db)], capture_output=True)


def test_with_few_file_descriptors_health_still_answers_and_the_log_stays_short(tmp_path):
    s = Serve(tmp_path, "--max-streams-per-address", "100000", nofile=256)
    held = []
    try:
        s.wait_ready()
        statuses = {}
        for _ in range(300):  # more than the process has descriptors
            try:
                sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
                sock.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                head = sock.recv(200)
            except OSError:
                head = b"error"
            status = head[9:12].decode(errors="replace") or "closed"
            statuses[status] = statuses.get(status, 0) + 1
            held.append(sock)
        assert statuses.get("200", 0) >= 16 and statuses.get("503", 0) > 0, statuses
        t = time.time()
        assert s.call("GET", "/health", timeout=5)[0] == 200
        assert time.time() - t < 2
        assert s.call("GET", "/api/presence", timeout=5)[0] == 200
    finally:
        for sock in held:
            sock.close()
        s.stop()
    assert len(s.stderr()) < 20_000, s.stderr()[-2000:]

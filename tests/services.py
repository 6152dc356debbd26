"""Throwaway PostgreSQL and Redis servers for the tests: each on a free
loopback port, in a temporary folder removed afterwards.

PostgreSQL refuses to run as root: under root the server runs as an
unprivileged system user (Debian's package makes `postgres`; created here
when missing), which owns its temporary folder.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

PG_USER = "proactive"  # the database role the tests connect as


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


def _system_user() -> str | None:
    """The unprivileged user PostgreSQL runs as when we are root (None: as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "proactive-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "proactive-pg"],
                   check=True, capture_output=True)
    return "proactive-pg"


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields the URL of a fresh PostgreSQL server's `proactive` database."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; `make test` does it)")
    user = _system_user()
    folder = tempfile.mkdtemp(prefix="proactive-pg-")
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = os.path.join(folder, "data"), free_port()
    run_as = {"user": user} if user is not None else {}
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(*cmd: str, **kw):
        return subprocess.run(cmd, check=True, capture_output=True, cwd=folder, env=env, **run_as, **kw)

    try:
        run(initdb, "-D", data, "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        run(pg_ctl, "-D", data, "-o", options, "-l", os.path.join(folder, "log"), "-w", "-t", "30", "start")
        try:
            url = f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {PG_USER}")
            yield f"postgresql://{PG_USER}@127.0.0.1:{port}/{PG_USER}"
        finally:
            run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yields the URL of a fresh redis-server (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server; `make test` does it)")
    folder, port = tempfile.mkdtemp(prefix="proactive-redis-"), free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "",
                             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


_schemas = itertools.count(1)


def fresh_schema() -> str:
    """A schema name no other app of this test run uses (PostgreSQL)."""
    return f"t{os.getpid()}_{next(_schemas)}"

"""The demo journey across two endpoint processes on one PostgreSQL and one
Redis: the widget talks to endpoint A (the test site's app), the agent page
to endpoint B (a separate `proactive serve` process, as a deployment runs
it). A proactive message, the visitor's reply, the agent's answer arriving
live on the visitor's page, and the rating seen by the agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import Site, shown_ids, simple_messages, sync
import test_endpoint
from test_endpoint import boot, chat, collect_chat, endpoint, until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from services import free_port, postgres_server, redis_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def serve_process(tmp: Path, db: str, broker: str, token: str, origin: str) -> tuple[subprocess.Popen, str]:
    """`proactive serve` in its own OS process on DB and BROKER; (process, its URL) once /health answers."""
    port = free_port()
    err = (tmp / "b.err").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "proactive.cli", "serve", "--no-demo", "--port", str(port), "--static", str(tmp),
         "--data", str(tmp / "data-b"), "--agent-token", token, "--allow-origin", origin,
         "--db", db, "--broker", broker],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            err.seek(0)
            raise AssertionError(f"endpoint B did not start: {err.read()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with postgres_server() as pg, redis_server() as rd:
        a = Site(tmp_path_factory.mktemp("cluster"), db_path=pg, broker_url=rd)
        b, b_url = serve_process(tmp_path_factory.mktemp("endpoint-b"), pg, rd, a.agent_token, a.site_origin)
        try:
            yield a, b_url, b
        finally:
            b.send_signal(signal.SIGINT)
            try:
                b.wait(10)
            except subprocess.TimeoutExpired:
                b.kill()
            a.stop()


@pytest.fixture
def site(cluster):  # the guard and page fixtures, and test_endpoint's helpers, read the site
    test_endpoint._site[:] = [cluster[0]]
    return cluster[0]


def test_widget_on_a_agent_page_on_b(cluster, site, page, guard, browser):
    a, b_origin, b = cluster
    assert b.pid != os.getpid() and b.poll() is None   # B is a process of its own
    url = a.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}),
                    "cluster")
    boot(page, a.page(tag=a.tag(bundle=url)))
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == ["hello"]
    collect_chat(page)
    assert endpoint(page, "sendMessage", "Do you ship to Graz?")["sender"] == "visitor"

    agent_context = browser.new_context()
    agent = agent_context.new_page()
    try:
        agent.goto(f"{b_origin}/agent#token={a.agent_token}")
        item = agent.locator("#conversation-list li.conversation").filter(has_text="Do you ship to Graz?")
        item.wait_for()  # live over B's stream: the message was written through A
        item.click()
        agent.fill("#reply-text", "Yes, in two days.")
        agent.click("#reply-send")
        answer = until(lambda: [m for m in chat(page) if m["sender"] == "agent"], "the agent's answer on A's stream")
        assert answer[0]["text"] == "Yes, in two days."
        endpoint(page, "rate", "great")
        agent.locator("#conversation-list li.conversation").filter(has_text="rated great").wait_for()
    finally:
        agent_context.close()

"""The demo journey across two endpoint processes' worth of apps on one
PostgreSQL and one Redis: the widget talks to endpoint A, the agent page to
endpoint B. A proactive message, the visitor's reply, the agent's answer
arriving live on the visitor's page, and the rating seen by the agent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import Site, _Server, shown_ids, simple_messages, sync
import test_endpoint
from test_endpoint import boot, chat, collect_chat, endpoint, until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from services import postgres_server, redis_server  # noqa: E402

from server_stub.app import create_widget_app  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with postgres_server() as pg, redis_server() as rd:
        a = Site(tmp_path_factory.mktemp("cluster"), db_path=pg, broker_url=rd)
        b_app = create_widget_app(a.static, a.bundles, allowed_origins=[a.site_origin], db_path=pg, broker_url=rd,
                                  agent_token=a.agent_token)
        b = _Server(b_app, "127.0.0.1", "on")
        yield a, f"http://127.0.0.1:{b.port}"
        b.stop()
        a.stop()


@pytest.fixture
def site(cluster):  # the guard and page fixtures, and test_endpoint's helpers, read the site
    test_endpoint._site[:] = [cluster[0]]
    return cluster[0]


def test_widget_on_a_agent_page_on_b(cluster, site, page, guard, browser):
    a, b_origin = cluster
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

"""Rule semantics from the seed's own examples, in the browser (issue 14)."""

from __future__ import annotations

from conftest import shown_ids, sync, wait_ready


def test_the_seeds_utm_example_matches_a_campaign_url(site, page):
    """`utm_term equals running+shoes`, the value as it appears in a URL,
    holds for ?utm_term=running+shoes; a literal plus (%2B) is another value."""
    name = site.publish({"site": "test", "messages": [
        {"id": "shoes", "content": {"text": "Running shoes?"},
         "rules": [{"rule": "utm_term", "op": "equals", "value": "running+shoes"}]}]}, "utm")
    tag = site.tag(bundle=name, data_endpoint="off")
    page.goto(site.page("<p>campaign</p>", tag=tag) + "?utm_term=running+shoes")
    wait_ready(page)
    sync(page)
    assert shown_ids(page) == ["shoes"]
    explain = page.evaluate("proactive('explain')")["shoes"]
    assert explain["conditions"][0]["observed"] == "running shoes"

    page.evaluate("localStorage.clear()")
    page.goto(site.page("<p>plus</p>", tag=tag) + "?utm_term=running%2Bshoes")
    wait_ready(page)
    sync(page)
    assert shown_ids(page) == []


def test_a_long_read_then_a_route_change_is_the_same_visit(site, page):
    """40 minutes on one page, open and shown, then a single-page app's route
    change: the visit goes on (visits stays 1, the landing page's UTM value
    and the page count carry over)."""
    name = site.publish({"site": "test", "messages": [
        {"id": "returning", "content": {"text": "Welcome back"},
         "rules": [{"rule": "visits", "op": "greater", "value": 1}]},
        {"id": "reader", "content": {"text": "Still reading?"},
         "rules": [{"rule": "page_views", "op": "equals", "value": 2},
                   {"rule": "utm_source", "op": "equals", "value": "news"}]}]}, "longread")
    start = 1_780_000_000
    page.clock.install(time=start)
    page.clock.pause_at(start + 1)
    page.goto(site.page("<p>article</p>", tag=site.tag(bundle=name, data_endpoint="off")) + "?utm_source=news")
    wait_ready(page)
    sync(page)
    assert shown_ids(page) == []
    page.clock.run_for(40 * 60 * 1000)
    page.evaluate("history.pushState({}, '', '/next-article')")
    sync(page)
    assert shown_ids(page) == ["reader"]
    assert page.evaluate("proactive('explain')")["returning"]["conditions"][0]["observed"] == 1

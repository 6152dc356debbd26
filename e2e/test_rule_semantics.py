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

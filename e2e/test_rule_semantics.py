"""Rule semantics from the seed's own examples, in the browser (issue 14)."""

from __future__ import annotations

from conftest import shown_ids, sync, wait_ready
from shell_helpers import set_visibility


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


LONG_READ = {"site": "test", "messages": [
    {"id": "returning", "content": {"text": "Welcome back"},
     "rules": [{"rule": "visits", "op": "greater", "value": 1}]},
    {"id": "reader", "content": {"text": "Still reading?"},
     "rules": [{"rule": "page_views", "op": "equals", "value": 2},
               {"rule": "utm_source", "op": "equals", "value": "news"}]}]}


def _land(site, page, name: str, body: str = "<p>article</p>") -> str:
    bundle = site.publish(LONG_READ, name)
    tag = site.tag(bundle=bundle, data_endpoint="off")
    start = 1_780_000_000
    page.clock.install(time=start)
    page.clock.pause_at(start + 1)
    page.goto(site.page(body, tag=tag) + "?utm_source=news")
    wait_ready(page)
    sync(page)
    assert shown_ids(page) == []
    return tag


def test_a_long_read_then_a_link_to_another_page_is_the_same_visit(site, page):
    """40 minutes on one page, then a link to another page (a full page
    load): the page marked the visitor present when it was left, so the next
    page is the same visit (no new visit, the landing page's UTM carried)."""
    tag = _land(site, page, "longread-link")
    nxt = site.page("<p>next article</p>", tag=tag)
    page.evaluate("(url) => { const a = document.createElement('a'); a.href = url; a.id = 'next'; a.textContent = 'next';"
                  " document.body.append(a); }", nxt)
    page.clock.run_for(40 * 60 * 1000)
    page.click("#next")
    page.wait_for_url(nxt)
    wait_ready(page)
    sync(page)
    assert shown_ids(page) == ["reader"]
    assert page.evaluate("proactive('explain')")["returning"]["conditions"][0]["observed"] == 1


def test_a_tab_hidden_for_half_an_hour_then_shown_starts_a_new_visit_at_the_next_page(site, page):
    """Hidden (the visitor went elsewhere) for 31 minutes, then shown again
    and clicked on: away from the moment it was hidden, so a new visit."""
    _land(site, page, "hidden-away")
    page.clock.run_for(60_000)
    set_visibility(page, "hidden")
    page.clock.run_for(31 * 60 * 1000)
    set_visibility(page, "visible")
    page.clock.run_for(5_000)
    page.evaluate("history.pushState({}, '', '/after-the-break')")
    sync(page)
    assert shown_ids(page) == ["returning"]
    assert page.evaluate("proactive('explain')")["returning"]["conditions"][0]["observed"] == 2


def test_a_tab_hidden_for_a_while_then_read_on_stays_in_the_visit(site, page):
    """Hidden for 20 minutes, shown again and read for 20 more: the same
    visit (present again from the moment it was shown)."""
    _land(site, page, "hidden-short")
    set_visibility(page, "hidden")
    page.clock.run_for(20 * 60 * 1000)
    set_visibility(page, "visible")
    page.clock.run_for(20 * 60 * 1000)
    page.evaluate("history.pushState({}, '', '/read-on')")
    sync(page)
    assert shown_ids(page) == ["reader"]

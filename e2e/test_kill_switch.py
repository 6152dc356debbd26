"""The kill switch reaches open pages: a page open on version N revalidates
its bundle every data-revalidate seconds (a conditional request) and, once
`proactive pause` has published N+1 with every message paused, shows none
of them — within the interval plus a fetch. Real Chromium, two origins."""

from __future__ import annotations

import time
import uuid

from conftest import shown_ids, simple_messages, sync, wait_ready
from proactive import publishing, signing
from test_endpoint import until

REVALIDATE_S = 2


def _route(page, path: str) -> None:
    page.evaluate("(p) => history.pushState({}, '', p)", path)
    sync(page)


def test_pause_stops_every_message_on_an_open_page_within_the_interval(site, context, guard, tmp_path):
    tag = uuid.uuid4().hex[:8]
    name = f"kill-{tag}"
    site.publish(simple_messages({"id": f"go-{tag}", "rules": [{"rule": "page_url", "op": "contains", "value": f"/go-{tag}"}]}),
                 name=name, version=1)
    url = site.page(tag=site.tag(site.bundle_url(name), data_revalidate=str(REVALIDATE_S)))
    control, open_page = context.new_page(), context.new_page()
    for p in (control, open_page):
        p.goto(url)
        wait_ready(p)
    _route(control, f"/go-{tag}")  # version 1 shows it
    assert shown_ids(control) == [f"go-{tag}"]

    key = tmp_path / "site.key"
    signing.write_private_key(site.key, key)
    bundle = site.bundles / f"{name}.json"
    envelope, version, paused = publishing.pause_bundle(bundle, [key])
    publishing.write_bundle(envelope, bundle)
    assert (version, paused) == (2, 1)
    paused_at = time.time()
    version_of = lambda: (open_page.evaluate("proactive('status')")["bundle"] or {}).get("version")  # noqa: E731
    until(lambda: version_of() == 2, "the paused version on the open page", REVALIDATE_S + 10, pump=open_page)
    took = time.time() - paused_at
    assert took <= REVALIDATE_S + 3, f"the paused bundle took {took:.1f} s to reach an open page"
    _route(open_page, f"/go-{tag}")  # the same route under the paused version: nothing
    assert shown_ids(open_page) == []
    assert open_page.evaluate("proactive('explain')") == {}

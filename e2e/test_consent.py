"""Consent-first mode (data-consent, docs/embedding.md "Consent") in real
Chromium, the site and the widget on two origins: before consent nothing of
the widget's is on the device (localStorage, sessionStorage, IndexedDB, cookies,
Cache Storage) and the endpoint is never asked to register a visitor or sent a
beacon, while a message still shows; after proactive('consent', true) the
record, the endpoint identity and (on the next page) the Pyodide snapshot are
there and the next page is a returning visit; after proactive('consent',
false) all of it is gone from the device and from the endpoint's database.
The same with a stub IAB TCF v2.2 API granting, then revoking, purpose 1."""

from __future__ import annotations

import uuid

from conftest import shown_ids, sync, wait_ready
from shell_helpers import observed
from test_endpoint import until

DEVICE = """async () => ({
  local: Object.keys(localStorage),
  session: Object.keys(sessionStorage),
  idb: (await indexedDB.databases()).map((d) => d.name),
  cookie: document.cookie,
  caches: await caches.keys(),
})"""
EMPTY = {"local": [], "session": [], "idb": [], "cookie": "", "caches": []}

# A site that knows its visitor's choice before the loader runs queues it.
EARLY_CONSENT = ("<script>window.proactive = window.proactive || function () {"
                 " (proactive.q = proactive.q || []).push([].slice.call(arguments)); };"
                 " proactive('consent', true);</script>")

# A stub CMP: purpose 1 from the page's ?tcf=1, changed by __tcfSet(bool)
# as a visitor's choice in the CMP's dialog is.
TCF_STUB = """<script>
(() => {
  let consent = new URLSearchParams(location.search).get('tcf') === '1';
  const listeners = new Map();
  let next = 0;
  const data = (id, status) => ({ tcString: 'stub', gdprApplies: true, eventStatus: status, listenerId: id,
                                  cmpStatus: 'loaded', purpose: { consents: { 1: consent }, legitimateInterests: {} } });
  window.__tcfapi = (command, version, callback, arg) => {
    if (command === 'addEventListener') { const id = next++; listeners.set(id, callback); callback(data(id, 'tcloaded'), true); }
    else if (command === 'removeEventListener') callback(listeners.delete(arg));
  };
  window.__tcfSet = (value) => { consent = value; for (const [id, cb] of listeners) cb(data(id, 'useractioncomplete'), true); };
})();
</script>"""


def _messages(tag: str) -> dict:
    # `hello-…` shows at once on a visit's first page, `again-…` on any later
    # page of the visit: a page without a record behind it is a first page.
    return {"site": f"consent-{tag}", "widgets": [{"id": "main"}], "messages": [
        {"id": f"hello-{tag}", "type": "proactive", "widget": "main", "content": {"text": "hello"},
         "rules": [{"rule": "page_views", "op": "equals", "value": 1}]},
        {"id": f"again-{tag}", "type": "proactive", "widget": "main", "content": {"text": "again"},
         "rules": [{"rule": "page_views", "op": "greater", "value": 1}]},
    ]}


def _shows(page, message: str) -> None:
    wait_ready(page)
    until(lambda: message in shown_ids(page), f"{message} on screen", pump=page)


def _recording(page) -> list[tuple[str, str]]:
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    return requests


def _identity_calls(requests, origin: str) -> list[tuple[str, str]]:
    """Requests that register a visitor or carry beacons, or speak for a stored identity."""
    return [(m, u) for m, u in requests if u.startswith(f"{origin}/api/") and (
        "/api/visitors" in u or "/api/events" in u or "/api/deliveries" in u or "/api/conversation" in u)]


def _rows(site, tag: str, token: str | None) -> dict:
    store = site.endpoint.store
    count = lambda sql, *args: store._read(sql, args)[0][0]  # noqa: E731
    from server_stub.storage import visitor_key

    key = visitor_key(token) if token else ""
    return {
        "events": count("SELECT COUNT(*) FROM events WHERE message LIKE ?", f"%-{tag}"),
        "visitors": count("SELECT COUNT(*) FROM visitors WHERE id = ?", key),
        "conversations": count("SELECT COUNT(*) FROM conversations WHERE visitor_id = ?", key),
    }


def test_required_consent_stores_nothing_until_given_and_erases_everything_when_withdrawn(site, page, guard):
    tag = uuid.uuid4().hex[:8]
    site.publish(_messages(tag), name=f"consent-{tag}")
    attrs = {"tag": site.tag(site.bundle_url(f"consent-{tag}"), data_consent="required", data_site=f"consent-{tag}")}
    pages = [site.page(**attrs) for _ in range(3)]
    requests = _recording(page)

    # Three page views before consent: a first visit on each, nothing kept.
    for url in pages:
        page.goto(url)
        _shows(page, f"hello-{tag}")
        assert page.evaluate("proactive('status')")["consent"] == "pending"
        page.wait_for_timeout(1500)  # the worker's idle time before it would keep a snapshot
        assert page.evaluate(DEVICE) == EMPTY
    page.goto(site.page(tag=""))  # leaving sends no beacon either
    assert page.evaluate(DEVICE) == EMPTY
    assert _identity_calls(requests, site.widget_origin) == []
    assert _rows(site, tag, None)["events"] == 0

    # Consent on a page: its memory goes to the device, beacons go out.
    page.goto(pages[0])
    _shows(page, f"hello-{tag}")
    done = page.evaluate("proactive('consent', true)")
    assert done == {"consent": True, "deleted": None}
    device = page.evaluate(DEVICE)
    assert f"proactive:v1:consent-{tag}" in device["local"] and "proactive:tab" in device["session"]
    record = page.evaluate(f"JSON.parse(localStorage.getItem('proactive:v1:consent-{tag}'))")
    assert record["visit_log"], record
    until(lambda: _rows(site, tag, None)["events"] >= 1, "the shown beacon at the endpoint", pump=page)

    # The next page (the site says yes before the loader) is a returning visit,
    # and it keeps the Pyodide snapshot.
    page.goto(site.page(head=EARLY_CONSENT, **attrs))
    _shows(page, f"again-{tag}")
    assert f"hello-{tag}" not in shown_ids(page)
    until(lambda: "proactive-snapshot" in page.evaluate(DEVICE)["idb"], "the snapshot in IndexedDB", 45, pump=page)
    # The visitor chats: the endpoint registers them.
    page.evaluate("proactive('open')")
    token = None
    page.evaluate(
        """async () => { const root = document.querySelector('proactive-widget').shadowRoot;
             const field = root.querySelector('textarea, input[type=text]'); field.value = 'hello there';
             field.dispatchEvent(new Event('input', {bubbles: true}));
             field.closest('form').requestSubmit(); }""")
    endpoint_keys = lambda: [k for k in page.evaluate(DEVICE)["local"] if k.endswith(":token")]  # noqa: E731
    token_key = until(endpoint_keys, "the visitor token on the device", pump=page)[0]
    token = page.evaluate(f"JSON.parse(localStorage.getItem({token_key!r}))")
    until(lambda: _rows(site, tag, token)["conversations"] == 1, "the conversation at the endpoint", pump=page)
    assert _rows(site, tag, token)["visitors"] == 1

    # Withdrawn: nothing of ours on the device, nothing of the visitor's at the endpoint.
    done = page.evaluate("proactive('consent', false)")
    assert done["consent"] is False and done["deleted"]["visitors"] == 1 and done["deleted"]["events"] >= 1, done
    assert page.evaluate(DEVICE) == EMPTY
    assert _rows(site, tag, token) == {"events": 0, "visitors": 0, "conversations": 0}
    assert page.evaluate("proactive('status')")["consent"] == "pending"
    page.wait_for_timeout(1500)
    assert page.evaluate(DEVICE) == EMPTY  # and the page goes on writing nothing


def test_consent_given_mid_page_merges_the_earlier_visits_record(site, page, guard):
    tag = uuid.uuid4().hex[:8]
    site.publish(_messages(tag), name=f"consent-{tag}")
    attrs = {"tag": site.tag(site.bundle_url(f"consent-{tag}"), data_consent="required", data_site=f"consent-{tag}")}
    page.goto(site.page(head=EARLY_CONSENT, **attrs))  # a first page with consent: the record is kept
    _shows(page, f"hello-{tag}")
    stored = lambda: page.evaluate(f"JSON.parse(localStorage.getItem('proactive:v1:consent-{tag}'))")  # noqa: E731
    assert stored()

    page.goto(site.page(**attrs))  # the next page runs before the site knows: a first page, in memory
    _shows(page, f"hello-{tag}")
    assert observed(page, f"again-{tag}", "page_views") == 1
    assert page.evaluate("proactive('consent', true)")["consent"] is True
    sync(page)
    # The engine merged the earlier page's record into this page's: two page views.
    assert observed(page, f"again-{tag}", "page_views") == 2
    page.goto(site.page(**attrs))  # not granted yet on this page: nothing read, a first page again
    _shows(page, f"hello-{tag}")
    assert observed(page, f"again-{tag}", "page_views") == 1
    page.goto(site.page(head=EARLY_CONSENT, **attrs))  # the merged record was kept: the third page of the visit
    _shows(page, f"again-{tag}")
    assert observed(page, f"again-{tag}", "page_views") == 3


def test_messages_none_shows_nothing_before_consent(site, page, guard):
    tag = uuid.uuid4().hex[:8]
    site.publish(_messages(tag), name=f"consent-{tag}")
    url = site.page(tag=site.tag(site.bundle_url(f"consent-{tag}"), data_consent="required", data_consent_messages="none"))
    page.goto(url)
    page.wait_for_timeout(3000)
    assert shown_ids(page) == [] and page.evaluate(DEVICE) == EMPTY
    assert page.evaluate("proactive('status')")["ready"] is False  # the engine waits for consent
    page.evaluate("proactive('consent', true)")
    _shows(page, f"hello-{tag}")


def test_tcf_purpose_one_granted_then_revoked(site, page, guard):
    tag = uuid.uuid4().hex[:8]
    site.publish(_messages(tag), name=f"consent-{tag}")
    url = site.page(head=TCF_STUB, tag=site.tag(site.bundle_url(f"consent-{tag}"), data_consent="tcf", data_site=f"consent-{tag}"))
    requests = _recording(page)

    page.goto(url)  # the CMP says no (yet)
    _shows(page, f"hello-{tag}")
    page.wait_for_timeout(1500)
    assert page.evaluate(DEVICE) == EMPTY and _identity_calls(requests, site.widget_origin) == []

    page.evaluate("__tcfSet(true)")  # the visitor accepts in the CMP's dialog
    until(lambda: f"proactive:v1:consent-{tag}" in page.evaluate(DEVICE)["local"], "the record on the device", pump=page)
    until(lambda: _rows(site, tag, None)["events"] >= 1, "the shown beacon at the endpoint", pump=page)

    page.goto(url + "?tcf=1")  # the CMP remembers the yes: a returning visit
    _shows(page, f"again-{tag}")

    page.evaluate("__tcfSet(false)")  # revoked in the CMP
    until(lambda: page.evaluate(DEVICE) == EMPTY, "the device erased", pump=page)
    until(lambda: _rows(site, tag, None)["events"] == 0, "the beacons deleted at the endpoint", pump=page)

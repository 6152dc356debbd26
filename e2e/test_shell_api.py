"""The JS API: the queue stub, a doubled snippet, open/close/identify/track,
on/off, debug, and a shutdown that leaves nothing behind."""

from __future__ import annotations

import time

from conftest import T0, shown_ids, simple_messages, sync, wait_ready
from shell_helpers import TALL, collect, events, explain, leave

STUB = "<script>window.proactive=window.proactive||function(){(proactive.q=proactive.q||[]).push(arguments)};</script>"


def install_clock(page):
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)


def test_calls_queued_by_the_stub_before_the_loader_are_replayed(site, page, guard):
    msgs = simple_messages(
        {"id": "members", "audience": "users", "priority": 5, "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
        {"id": "chatted", "rules": [{"rule": "chat_history", "op": "exists"}]},
    )
    bundle = site.publish(msgs, "queued")
    head = STUB + """<script>
      window.seen = [];
      proactive('on', 'page_view', function (e) { seen.push('page_view ' + e.url); });
      proactive('on', 'shown', function (e) { seen.push('shown ' + e.message); });
      proactive('on', 'identify', function (e) { seen.push('identify ' + JSON.stringify(e.attributes)); });
      proactive('identify', { plan: 'pro', seats: 3, nested: { no: 1 }, fn: function () {} });
      proactive('track', 'visitor_message', { text: 'hello' });
    </script>"""
    install_clock(page)
    url = site.page(head=head, tag=site.tag(bundle=bundle))
    page.goto(url)
    wait_ready(page)
    result = explain(page)
    assert result["chatted"]["rules"] is True                      # the queued track reached the engine
    assert result["members"]["gates"]["audience"]["ok"] is True    # so did identify
    page.clock.run_for(1500)
    sync(page)
    assert shown_ids(page) == ["members"]
    assert page.evaluate("seen") == [
        'identify {"plan":"pro","seats":3}',   # replayed in order, plain values only
        f"page_view {url}",                    # the signal from before the shell, for queued handlers
        "shown members",
    ]


def test_snippet_pasted_twice_starts_one_widget(site, page, guard):
    bundle = site.publish(simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}), "twice")
    snippet = STUB + site.tag(bundle=bundle)
    install_clock(page)
    page.goto(site.page(head=snippet + snippet, tag=""))
    wait_ready(page)
    page.clock.run_for(1500)
    sync(page)
    assert shown_ids(page) == ["hello"]
    assert page.evaluate("document.querySelectorAll('proactive-widget').length") == 1
    assert len(page.workers) == 1
    assert len(page.evaluate("proactive('status')")["shown"]) == 1
    assert [w for w in guard.warnings() if "more than once" in w] == [
        "[proactive] the widget's script tag is on this page more than once; only the first one runs"]


def test_open_close_identify_track_reach_the_engine_and_the_handlers(site, page, guard):
    msgs = simple_messages(
        {"id": "opened", "rules": [{"rule": "widget_opened", "op": "is_true"}]},
        {"id": "closed", "rules": [{"rule": "time_since_widget_closed", "op": "greater", "value": 5}]},
        {"id": "chatted", "rules": [{"rule": "chat_history", "op": "exists"}]},
        {"id": "rated", "rules": [{"rule": "rating", "op": "equals", "value": "great"}]},
        {"id": "waiting", "rules": [{"rule": "time_without_agent_reply", "op": "greater", "value": 60}]},
        {"id": "members", "audience": "users", "rules": [{"rule": "page_views", "op": "greater", "value": 99}]},
    )
    bundle = site.publish(msgs, "api")
    install_clock(page)
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_ready(page)
    collect(page, "open", "close", "identify", "track")
    page.evaluate("() => { window.offed = 0; window.offMe = () => offed++; proactive('on', 'open', offMe); proactive('off', 'open', offMe); }")
    rules = lambda: {k: v["rules"] for k, v in explain(page).items()}

    page.evaluate("proactive('open')")
    page.evaluate("proactive('open')")             # already open: no second event
    sync(page)
    assert rules()["opened"] is True
    page.evaluate("proactive('close')")
    page.clock.run_for(5001)
    sync(page)
    r = rules()
    assert (r["opened"], r["closed"]) == (False, True)

    page.evaluate("proactive('track', 'visitor_message', {text: 'a question'})")
    page.clock.run_for(60_001)
    sync(page)
    r = rules()
    assert (r["chatted"], r["waiting"]) == (True, True)
    page.evaluate("proactive('track', 'agent_message')")
    page.evaluate("proactive('track', 'rating', 'great')")
    page.evaluate("proactive('track', 'signed_up', {plan: 'pro'})")   # a custom event: handlers only
    page.evaluate("proactive('identify', {name: 'Ada'})")
    sync(page)
    r = rules()
    assert (r["waiting"], r["rated"]) == (False, True)
    assert explain(page)["members"]["gates"]["audience"]["ok"] is True

    page.locator('proactive-widget button[aria-label^="Open chat"]').click()   # the visitor's own click
    sync(page)
    assert rules()["opened"] is True
    page.locator('proactive-widget button[aria-label="Close chat"]').first.click()
    sync(page)
    assert rules()["opened"] is False
    assert len(events(page, "open")) == 2 and len(events(page, "close")) == 2
    assert page.evaluate("offed") == 0
    assert [e["name"] for e in events(page, "track")] == ["visitor_message", "agent_message", "rating", "signed_up"]
    assert events(page, "track")[3]["properties"] == {"plan": "pro"}
    assert events(page, "identify") == [{"attributes": {"name": "Ada"}}]


def test_debug_logs_each_decision_with_its_reasons(site, page, guard):
    msgs = simple_messages({"id": "hello", "rules": [{"rule": "time_on_page", "op": "greater", "value": 10},
                                                     {"rule": "page_views", "op": "less", "value": 5}]})
    bundle = site.publish(msgs, "debug")
    install_clock(page)
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_ready(page)
    status = page.evaluate("proactive('debug', true) || proactive('status')")
    page.clock.run_for(status["navStart"] + 10_001 - page.evaluate("Date.now()"))
    sync(page)
    assert shown_ids(page) == ["hello"]
    deadline = time.time() + 5
    lines = []
    while time.time() < deadline and not lines:
        page.evaluate("proactive('sync')")
        lines = [t for k, t in guard.console if k == "info" and t.startswith('[proactive] show "hello"')]
    assert lines, guard.console
    assert "time_on_page greater 10 → true (observed 10.001)" in lines[0], lines[0]
    assert "page_views less 5 → true (observed 1)" in lines[0], lines[0]
    snapshot = [t for k, t in guard.console if k == "info" and t.startswith('[proactive] "hello": rules_false')]
    assert snapshot and "time_on_page greater 10 → false" in snapshot[0], guard.console


AUDIT = """
(() => {
  const live = [];
  const name = (t) => (t === window ? 'window' : t === document ? 'document' : null);
  const cap = (o) => (typeof o === 'boolean' ? o : !!(o && o.capture));
  const add = EventTarget.prototype.addEventListener;
  const remove = EventTarget.prototype.removeEventListener;
  EventTarget.prototype.addEventListener = function (type, fn, opts) {
    if (name(this)) live.push([name(this), type, fn, cap(opts)]);
    return add.call(this, type, fn, opts);
  };
  EventTarget.prototype.removeEventListener = function (type, fn, opts) {
    const i = live.findIndex((l) => l[0] === name(this) && l[1] === type && l[2] === fn && l[3] === cap(opts));
    if (i >= 0) live.splice(i, 1);
    return remove.call(this, type, fn, opts);
  };
  const pending = new Set();
  const setT = window.setTimeout, clearT = window.clearTimeout, setI = window.setInterval, clearI = window.clearInterval;
  window.setTimeout = function (fn, ms, ...rest) {
    const id = setT.call(window, function () { pending.delete(id); if (typeof fn === 'function') return fn.apply(this, arguments); }, ms, ...rest);
    pending.add(id);
    return id;
  };
  window.clearTimeout = function (id) { pending.delete(id); return clearT.call(window, id); };
  window.setInterval = function (...args) { const id = setI.apply(window, args); pending.add('i' + id); return id; };
  window.clearInterval = function (id) { pending.delete('i' + id); return clearI.call(window, id); };
  Object.defineProperty(window, '__audit', { value: () => ({
    listeners: live.map((l) => l[0] + ':' + l[1]).sort(), timers: pending.size,
    pushState: Function.prototype.toString.call(history.pushState).includes('[native code]'),
    replaceState: Function.prototype.toString.call(history.replaceState).includes('[native code]'),
  }) });
})();
"""


def test_shutdown_removes_every_listener_timer_worker_and_the_element(site, page, guard):
    msgs = simple_messages(
        {"id": "first", "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
        {"id": "later", "rules": [{"rule": "time_on_page", "op": "greater", "value": 30}]},
    )
    bundle = site.publish(msgs, "shutdown")
    install_clock(page)
    page.add_init_script(AUDIT)
    page.goto(site.page(TALL, tag=site.tag(bundle=bundle)))
    wait_ready(page)
    collect(page, "exit_intent", "page_view", "shown")
    page.clock.run_for(1500)
    sync(page)
    page.locator('proactive-widget [data-message-id="first"] button[aria-label="Dismiss message"]').click()
    sync(page)
    before = page.evaluate("__audit()")
    assert before["listeners"] and before["timers"] >= 1, before      # the audit sees ours
    assert not before["pushState"] and page.evaluate("proactive('status')")["nextWakeup"]
    assert len(page.workers) == 1

    page.evaluate("proactive('shutdown')")
    after = page.evaluate("__audit()")
    assert after == {"listeners": [], "timers": 0, "pushState": True, "replaceState": True}, after
    assert page.evaluate("document.querySelector('proactive-widget')") is None
    deadline = time.time() + 5
    while page.workers and time.time() < deadline:
        page.wait_for_timeout(50)      # (worker events arrive only while the sync API waits)
    assert page.workers == []

    requests = []
    page.on("request", lambda r: requests.append(r.url))
    console_before = len(guard.console)
    page.clock.run_for(3_600_000)                       # "later" was due at 30 s
    page.evaluate("history.pushState({}, '', '/after')")
    leave(page, 300, -5)
    page.mouse.wheel(0, 300)
    page.evaluate("() => { localStorage.setItem('other', '1'); dispatchEvent(new StorageEvent('storage', {key: 'other'})); }")
    page.evaluate("proactive('open')")
    page.evaluate("proactive('track', 'visitor_message')")
    time.sleep(0.3)
    assert requests == []
    assert guard.console[console_before:] == []
    assert [e["message"] for e in events(page, "shown")] in ([], ["first"])   # (shown before or after collect)
    assert [s["message"] for s in page.evaluate("proactive('status')")["shown"]] == ["first"]
    assert events(page, "page_view") == [] and events(page, "exit_intent") == []
    assert page.evaluate("document.querySelector('proactive-widget')") is None
    assert page.evaluate("proactive('status')")["stopped"] is True
    assert page.evaluate("__audit()")["timers"] == 0

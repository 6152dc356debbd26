"""The boot hint (widget/runtime/boothint.py): a lower bound, per page, on the
time on page at which a message can show, signed into the bundle; the record
replay of pages that never started the engine (adapter.Runtime.start)."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from proactive import publishing, signing
from widget.runtime import boothint, conditions
from widget.runtime.adapter import Runtime
from widget.runtime.engine import Engine

NOW = 1_780_000_000_000
KEY = signing.generate_private_key()


def payload(messages, **extra):
    return json.loads(publishing.build_payload({"site": "acme", "messages": messages, **extra}, version=1))


def msg(mid, rules, **extra):
    return {"id": mid, "content": {"text": mid}, "rules": rules, **extra}


def test_a_time_threshold_on_a_page_gives_that_page_an_entry():
    p = payload([msg("a", [{"rule": "page_url", "op": "contains", "value": "/pricing"},
                           {"rule": "time_on_page", "op": "greater", "value": 40}])])
    assert boothint.due(p["boot"], "https://shop.example/pricing") == 40_001
    assert boothint.due(p["boot"], "https://shop.example/about") is None   # never on this page


def test_any_takes_the_earliest_and_delay_adds():
    p = payload([msg("b", {"any": [{"rule": "time_on_page", "op": "greater", "value": 100},
                                   {"rule": "page_url", "op": "equals", "value": "/x"}]}, delay=5)])
    assert boothint.due(p["boot"], "https://e.example/x") == 5000
    assert boothint.due(p["boot"], "https://e.example/y") == 105_001


def test_an_email_is_sent_when_its_rules_hold_whatever_its_delay():
    email = msg("e", [{"rule": "page_url", "op": "contains", "value": "/x"}], type="email", delay=30)
    assert boothint.due(payload([email])["boot"], "https://e.example/x") == 0
    engine = Engine(payload([email]), context={"tab": "t1", "authenticated": True})
    out = engine.step([{"type": "page_view", "t": NOW, "url": "https://e.example/x"}], NOW)
    assert [d["message"] for d in out["decisions"]] == ["e"]   # at the page view: the hint must not say later


def test_conditions_that_may_already_hold_give_zero():
    for rules in ([{"rule": "visits", "op": "greater", "value": 1}],
                  [{"rule": "time_this_visit", "op": "greater", "value": 120}],
                  [{"rule": "time_on_page", "op": "less", "value": 10}],
                  [{"rule": "time_before_exit_intent", "op": "less", "value": 10}]):
        assert boothint.due(payload([msg("m", rules)])["boot"], "https://e.example/") == 0, rules


def test_exit_intent_after_a_time_waits_for_that_time():
    p = payload([msg("m", [{"rule": "time_before_exit_intent", "op": "greater", "value": 20}])])
    assert boothint.due(p["boot"], "https://e.example/") == 20_001


def test_paused_and_no_messages_never_boot():
    assert payload([])["boot"] == {"v": 1, "at": []}
    p = payload([msg("m", [{"rule": "visits", "op": "greater", "value": 1}], enabled=False)])
    assert boothint.due(p["boot"], "https://e.example/") is None


def test_negative_url_conditions_are_page_tests_too():
    p = payload([msg("m", [{"rule": "page_url", "op": "not_contains", "value": "/checkout"},
                           {"rule": "time_on_page", "op": "greater", "value": 30}])])
    assert boothint.due(p["boot"], "https://e.example/checkout/pay") is None
    assert boothint.due(p["boot"], "https://e.example/home") == 30_001


def test_many_entries_collapse_to_one_for_any_page():
    messages = [msg(f"m{i}", [{"rule": "page_url", "op": "equals", "value": f"/p{i}"},
                              {"rule": "time_on_page", "op": "greater", "value": 10 + i}]) for i in range(100)]
    boot = payload(messages)["boot"]
    assert boot["at"] == [[10_001, None]]


def test_the_hint_is_signed_and_the_engine_accepts_the_field():
    raw = signing.sign_payload(publishing.build_payload({"site": "acme", "messages": [
        msg("m", [{"rule": "time_on_page", "op": "greater", "value": 12}])]}, version=1), [KEY])
    rt = Runtime(json.dumps({"keys": signing.public_key_spec(KEY), "site": "acme", "context": {}}))
    opened = json.loads(rt.signing_request(raw))
    ok = any(signing.verify_signature(base64.b64decode(k), base64.b64decode(opened["message"]), base64.b64decode(s))
             for k, s in opened["candidates"])
    reply = json.loads(rt.offer(raw, "fetched", "valid" if ok else "invalid", "", NOW))
    assert reply["ok"] and reply["keep"]["run"], reply
    body = json.loads(base64.b64decode(json.loads(raw)["payload"]))
    assert body["boot"] == {"v": 1, "at": [[12_001, None]]}


def runtime_with(p: dict) -> Runtime:
    raw = signing.sign_payload(json.dumps(p).encode(), [KEY])
    rt = Runtime(json.dumps({"keys": signing.public_key_spec(KEY), "site": "acme", "context": {"tab": "t1"}}))
    assert json.loads(rt.offer(raw, "fetched", "valid", "", NOW))["keep"]["run"]
    return rt


def test_the_engine_warns_when_the_signed_hint_is_later_than_its_rules():
    p = payload([msg("m", [{"rule": "time_on_page", "op": "greater", "value": 3}])])
    p["boot"] = {"v": 1, "at": [[60_000, None]]}   # signed on purpose, later than the rules
    rt = runtime_with(p)
    reply = json.loads(rt.start("", json.dumps([{"type": "page_view", "t": NOW, "url": "https://e.example/"}]), NOW))
    assert reply["ok"] and "later than its rules allow" in reply["hint_warning"], reply


def test_no_warning_for_a_hint_from_proactive_sign():
    rt = runtime_with(payload([msg("m", [{"rule": "time_on_page", "op": "greater", "value": 3}])]))
    reply = json.loads(rt.start("", json.dumps([{"type": "page_view", "t": NOW, "url": "https://e.example/"}]), NOW))
    assert reply["ok"] and "hint_warning" not in reply


def test_pages_that_never_booted_advance_the_record_as_if_they_had():
    p = payload([msg("m", [{"rule": "page_url", "op": "contains", "value": "/pricing"},
                           {"rule": "time_on_page", "op": "greater", "value": 30}])])
    pages = [
        [{"type": "page_view", "t": NOW, "url": "https://e.example/?utm_source=news"},
         {"type": "page_hide", "t": NOW + 5000}],
        [{"type": "page_view", "t": NOW + 6000, "url": "https://e.example/about"},
         {"type": "visibility", "state": "hidden", "t": NOW + 9000},
         {"type": "page_hide", "t": NOW + 9500}],
    ]
    current = [{"type": "page_view", "t": NOW + 10_000, "url": "https://e.example/pricing"}]
    # At once: one engine per page, the record carried from page to page.
    record = None
    for events in pages + [current]:
        record = Engine(p, record=record, context={"tab": "t1"}).step(events, events[-1]["t"])["record"]
    # Just in time: the first two pages never started; the third replays them.
    rt = runtime_with(p)
    late = json.loads(rt.start("", json.dumps(current), NOW + 10_000,
                               json.dumps([{"tab": "t1", "events": e} for e in pages])))
    assert late["ok"]
    assert late["record"] == record
    assert (record["visits"], record["page_views"], record["utm"]) == (1, 3, {"utm_source": "news"})


def test_a_page_opened_later_in_another_tab_is_merged_after_this_one():
    """This page (the landing page, tab t1) starts its engine after a page it
    opened in another tab (t2) waited and closed: the visit is this page's."""
    p = payload([msg("m", [{"rule": "page_url", "op": "contains", "value": "/nowhere"}])])
    mine = [{"type": "page_view", "t": NOW, "url": "https://e.example/landing?utm_source=mail"}]
    other = [{"type": "page_view", "t": NOW + 5000, "url": "https://e.example/docs"},
             {"type": "page_hide", "t": NOW + 9000}]
    at_once = Engine(p, context={"tab": "t1"}).step(mine, NOW)["record"]
    at_once = Engine(p, record=at_once, context={"tab": "t2"}).step(other, NOW + 9000)["record"]
    rt = runtime_with(p)
    late = json.loads(rt.start("", json.dumps(mine), NOW + 20_000, json.dumps([{"tab": "t2", "events": other}])))
    rec = late["record"]
    assert (rec["visits"], rec["page_views"], rec["source_url"], rec["utm"], rec["visit_start"]) == \
        (at_once["visits"], at_once["page_views"], at_once["source_url"], at_once["utm"], at_once["visit_start"]) == \
        (1, 2, "https://e.example/landing?utm_source=mail", {"utm_source": "mail"}, NOW)


def test_a_damaged_pending_page_is_skipped():
    rt = runtime_with(payload([msg("m", [{"rule": "visits", "op": "greater", "value": 5}])]))
    late = json.loads(rt.start("", json.dumps([{"type": "page_view", "t": NOW, "url": "https://e.example/"}]), NOW,
                               json.dumps([{"tab": "t0", "events": [{"type": "page_view", "t": NOW - 9000, "url": 7}]},
                                           {"tab": 5, "events": "x"}, "junk"])))
    assert late["ok"] and late["record"]["page_views"] >= 1


def test_a_replayed_page_shows_nothing_and_counts_no_invitation():
    """A page replayed with a bundle whose message (newer than that page)
    would have held there: nothing is delivered in the past."""
    p = payload([msg("m", [{"rule": "page_url", "op": "contains", "value": "/old"}])])
    rt = runtime_with(p)
    late = json.loads(rt.start("", json.dumps([{"type": "page_view", "t": NOW + 60_000, "url": "https://e.example/new"}]),
                               NOW + 60_000, json.dumps([{"tab": "t0", "events": [
                                   {"type": "page_view", "t": NOW, "url": "https://e.example/old"},
                                   {"type": "page_hide", "t": NOW + 50_000}]}])))
    assert late["ok"] and late["decisions"] == []
    assert (late["record"]["page_views"], late["record"]["invitations_sent"], late["record"]["shows"]) == (2, 0, {})


def test_a_page_view_already_counted_starts_the_page_without_counting_again():
    p = payload([msg("m", [{"rule": "time_on_page", "op": "greater", "value": 5}])])
    view = {"type": "page_view", "t": NOW, "url": "https://e.example/?utm_source=a"}
    record = Engine(p, context={"tab": "t1"}).step([view], NOW)["record"]   # replayed by another page
    engine = Engine(p, record=record, context={"tab": "t1"})
    out = engine.step([dict(view, counted=True)], NOW + 6000)
    assert out["record"]["page_views"] == 1
    assert [(d["message"], d["t"]) for d in out["decisions"] if d.get("action") == "show"] == [("m", NOW + 5001)]


# -- the bound is a lower bound: whatever the facts, a tree holds on a page no
#    earlier than the hint says ----------------------------------------------

PATHS = ["/", "/pricing", "/blog/a", "/checkout", "/x"]
LEAVES = st.one_of(
    st.builds(lambda v, op: {"rule": "time_on_page", "op": op, "value": v},
              st.integers(0, 60), st.sampled_from(["greater", "less", "equals", "is_not"])),
    st.builds(lambda v, op: {"rule": "page_url", "op": op, "value": v},
              st.sampled_from(["/pricing", "/blog/*", "/x", "/checkout", "blog"]),
              st.sampled_from(["equals", "contains", "not_contains", "is_not", "matches"])),
    st.builds(lambda v: {"rule": "visits", "op": "greater", "value": v}, st.integers(0, 3)),
    st.builds(lambda v: {"rule": "time_this_visit", "op": "greater", "value": v}, st.integers(0, 90)),
)
TREES = st.recursive(LEAVES, lambda kids: st.one_of(
    st.builds(lambda c: {"all": c}, st.lists(kids, max_size=3)),
    st.builds(lambda c: {"any": c}, st.lists(kids, max_size=3))), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(TREES, st.sampled_from(PATHS), st.integers(0, 100_000), st.integers(0, 5), st.integers(0, 200_000))
def test_a_rule_tree_never_holds_before_its_hint(tree, path, on_page, visits, in_visit):
    node = conditions.compile_rules(tree)
    url = "https://shop.example" + path
    facts = {"time_on_page": NOW - on_page, "page_url": url, "visits": visits, "time_this_visit": NOW - in_visit}
    holds, _ = node.evaluate(facts, NOW)
    hint = boothint.hint({"messages": [{"id": "m", "rules": tree}]})
    due = boothint.due(hint, url)
    if holds:
        assert due is not None and due <= on_page, (tree, url, on_page, hint)


def test_residual_tests_agree_with_the_engine_on_urls():
    tree = [{"rule": "page_url", "op": "matches", "value": "/blog/*"}]
    hint = boothint.hint({"messages": [{"id": "m", "rules": tree}]})
    for path in PATHS:
        url = "https://shop.example" + path
        node = conditions.compile_rules(tree)
        assert (boothint.due(hint, url) is not None) == node.evaluate({"page_url": url}, NOW)[0]

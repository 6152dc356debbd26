"""The URL index (conditions.UrlIndex) only narrows what a page view
re-evaluates; it never changes a result.

1. Every indexed condition that holds for a URL is among the index's
   candidates for that URL (the index may over-approximate, never miss).
2. Driven by the same page views, an engine that parks messages on URL
   conditions decides exactly what a full re-evaluation at every step
   decides (incremental=False: no watchers, no index)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from widget.runtime import conditions
from widget.runtime.engine import Engine

PATHS = ["/", "/p", "/P", "/p/", "/p/x", "/px", "/blog", "/blog/", "/blog/a", "/Blog/A/b", "/a//b", "/ß", "/ss"]
HOSTS = ["s.example", "S.Example", "s.example:443", "s.example:8080", "o.example"]
QUERIES = ["", "?a=1", "?b=2&a=1", "?A=1", "?utm_source=x"]
URL_RULES = ["page_url", "referrer_url", "source_url"]

path = st.sampled_from(PATHS)
url = st.builds(lambda scheme, host, p, q, frag: f"{scheme}{host}{p}{q}{frag}",
                st.sampled_from(["https://", "http://", "HTTPS://"]), st.sampled_from(HOSTS), path,
                st.sampled_from(QUERIES), st.sampled_from(["", "#top"]))
value = st.one_of(
    path, url,
    st.builds(lambda h, p, q: f"{h}{p}{q}", st.sampled_from(HOSTS), path, st.sampled_from(QUERIES)),
    st.builds(lambda p, q: f"{p}{q}", path, st.sampled_from(QUERIES)),
    st.sampled_from(["", " ", "x", "s.", "blog", "/b", "example/p", "a=1", "#top", "HTTPS"]))
pattern = st.one_of(
    st.builds(lambda p, tail: p.rstrip("/") + tail, path, st.sampled_from(["/*", "*", "", "/*/b", "*?a=1"])),
    st.builds(lambda h, p, tail: f"https://{h}{p}{tail}", st.sampled_from(HOSTS), path, st.sampled_from(["/*", "*", ""])),
    st.builds(lambda h, p: f"{h}{p}*", st.sampled_from(HOSTS), path),
    st.sampled_from(["*", "*/b", "*blog*", "/*", "*example*"]))
def conditions_of(value, pattern):
    return st.one_of(
        st.builds(lambda r, op, v: {"rule": r, "op": op, "value": v}, st.sampled_from(URL_RULES),
                  st.sampled_from(["equals", "contains", "not_contains", "is_not"]),
                  st.one_of(value, st.lists(value, min_size=1, max_size=3))),
        st.builds(lambda r, v: {"rule": r, "op": "matches", "value": v}, st.sampled_from(URL_RULES),
                  st.one_of(pattern, st.lists(pattern, min_size=1, max_size=2))),
        st.builds(lambda r, op: {"rule": r, "op": op}, st.sampled_from(URL_RULES), st.sampled_from(["exists", "not_exists"])))


condition = conditions_of(value, pattern)                                    # blank values too (compiled, not validated)
valid_condition = conditions_of(value.filter(str.strip), pattern.filter(str.strip))   # what a bundle accepts
other = st.sampled_from([{"rule": "page_views", "op": "greater", "value": 1},
                         {"rule": "time_on_page", "op": "greater", "value": 1}])


@settings(max_examples=300, deadline=None)
@given(st.lists(condition, min_size=1, max_size=12), st.lists(url, min_size=1, max_size=4))
def test_candidates_include_every_condition_that_holds(conds, observed):
    shared: dict = {}
    leaves = [conditions.compile_rules(c, shared) for c in conds]
    by_rule: dict = {}
    for leaf in leaves:
        by_rule.setdefault(leaf.rule, []).append(leaf)
    for rule, group in by_rule.items():
        index = conditions.UrlIndex(group)
        for raw in observed + ["", None]:
            found = index.candidates(raw)
            for leaf in index.leaves:
                if leaf.evaluate({rule: raw}, 0)[0]:
                    assert leaf in found, (leaf.op, leaf.value, raw)


@st.composite
def journeys(draw):
    n = draw(st.integers(1, 6))
    messages = []
    for i in range(n):
        rules = draw(st.lists(st.one_of(valid_condition, valid_condition, other), min_size=1, max_size=3))
        if draw(st.booleans()):
            rules = [{"any": rules}] + draw(st.lists(valid_condition, max_size=1))
        messages.append({"id": f"m{i}", "content": {}, "rules": rules, "priority": draw(st.integers(0, 2)),
                         "once_per_user": draw(st.booleans())})
    views = draw(st.lists(st.tuples(url, st.sampled_from(["", "https://ref.example/blog", "/p"])), min_size=1, max_size=8))
    return {"site": "prop", "messages": messages}, views


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journeys())
def test_parked_messages_decide_like_a_full_reevaluation(case):
    payload, views = case
    live, brute = Engine(payload), Engine(payload, incremental=False)
    t = 0
    for i, (u, ref) in enumerate(views):
        t += 500
        events = [{"t": t, "type": "page_view", "url": u, "referrer": ref}]
        if i % 2:
            events.append({"t": t, "type": "dismiss"})
        for engine_events in (events, [{"t": t + 2000, "type": "tick"}]):
            step_t = engine_events[0]["t"]
            a = live.step(engine_events, step_t)
            b = brute.step(engine_events, step_t)
            assert [(d["action"], d["message"], d["t"]) for d in a["decisions"]] == \
                   [(d["action"], d["message"], d["t"]) for d in b["decisions"]]
            assert a["record"] == b["record"]
        t += 2000

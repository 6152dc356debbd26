"""The visitor record across tabs (widget/runtime/record.py): any interleaving
of two tabs' steps, merged, gives the counts of one tab doing both in time
order; the merge is a join (commutative, associative, idempotent); an older
record loads."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from widget.runtime import record as rec_mod
from widget.runtime.engine import Engine, merge_records, new_record

T0 = 1_780_000_000_000
MIN = 60_000
URLS = ["https://s.example/", "https://s.example/pricing", "https://s.example/?utm_source=ad&utm_campaign=x",
        "https://s.example/docs?utm_medium=mail"]

# One step: (tab, ms since the step before, what happened, merge the other tab's record first?)
step = st.tuples(
    st.sampled_from("AB"),
    st.one_of(st.integers(1, 5_000), st.integers(1, 45 * MIN)),
    st.one_of(st.tuples(st.just("page_view"), st.sampled_from(URLS)),
              st.tuples(st.just("activity"), st.none()),
              st.tuples(st.just("invite"), st.none())),
    st.booleans(),
)

COUNTS = ("visits", "page_views", "invitations_sent", "visit_start", "source_url", "utm", "last_seen",
          "last_invitation")


def apply(record: dict, tab: str, what, arg, t: int):
    if what == "page_view":
        return rec_mod.page_view(record, tab, arg, t)
    if what == "activity":
        return rec_mod.seen(record, t)
    return rec_mod.invited(record, tab, t)


def run(steps, start=None):
    """The two tabs, each with its own copy, and one tab doing everything."""
    tabs = {"A": rec_mod.upgrade(start), "B": rec_mod.upgrade(start)}
    alone = rec_mod.upgrade(start)
    t = T0
    strays = 0
    for tab, dt, (what, arg), sync in steps:
        t += dt
        if sync:
            other = "B" if tab == "A" else "A"
            tabs[tab] = merge_records(tabs[tab], tabs[other])
        counted = apply(tabs[tab], tab, what, arg, t), apply(alone, "solo", what, arg, t)
        strays += what == "activity" and counted == (False, True)
    return tabs["A"], tabs["B"], alone, strays


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=30))
def test_two_tabs_count_as_one_tab_doing_both(steps):
    a, b, alone, strays = run(steps)
    # Not exact, by design: activity (a click, no page view) in a tab that
    # has not yet seen that another tab started a new visit after a 30-minute
    # pause; and more visits than the record keeps in detail.
    assume(not strays and alone["visits"] <= rec_mod.MAX_LOGGED_VISITS)
    merged = merge_records(a, b)
    assert {k: merged[k] for k in COUNTS} == {k: alone[k] for k in COUNTS}


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=20), st.lists(step, max_size=20))
def test_the_merge_is_a_join(first, second):
    a, b, _, _ = run(first)
    c, d, _, _ = run(second, start=a)
    for x, y in ((a, b), (b, c), (a, d)):
        assert merge_records(x, y) == merge_records(y, x)
        assert merge_records(x, x) == rec_mod.upgrade(x)
    assert merge_records(merge_records(a, b), c) == merge_records(a, merge_records(b, c))
    assert merge_records(merge_records(a, c), d) == merge_records(a, merge_records(c, d))


def test_two_tabs_opened_together_make_one_visit_with_both_page_views():
    a, b = new_record(), new_record()
    rec_mod.page_view(a, "A", "https://s.example/once", T0)
    rec_mod.page_view(b, "B", "https://s.example/once", T0 + 100)   # B has not seen A's record yet
    rec_mod.invited(a, "A", T0 + 1_100)
    rec_mod.invited(b, "B", T0 + 1_200)
    merged = merge_records(a, b)
    assert (merged["visits"], merged["page_views"], merged["invitations_sent"]) == (1, 2, 2)


def test_an_older_record_loads_at_its_values():
    old = {"v": 1, "visits": 4, "visit_start": T0, "last_seen": T0 + 5_000, "page_views": 3,
           "source_url": "https://s.example/", "utm": {"utm_source": "ad"}, "invitations_sent": 2,
           "last_invitation": T0 + 1_000, "once": ["x"], "chat": True}
    up = rec_mod.upgrade(old)
    assert {k: up[k] for k in ("visits", "visit_start", "page_views", "source_url", "utm", "invitations_sent", "once")} \
        == {"visits": 4, "visit_start": T0, "page_views": 3, "source_url": "https://s.example/",
            "utm": {"utm_source": "ad"}, "invitations_sent": 2, "once": ["x"]}
    rec_mod.page_view(up, "A", "https://s.example/b", T0 + 6_000)   # the same visit goes on
    assert (up["visits"], up["page_views"]) == (4, 4)
    rec_mod.page_view(up, "A", "https://s.example/", T0 + 6_000 + 31 * MIN)
    assert (up["visits"], up["page_views"]) == (5, 1)


def test_flat_values_written_without_the_detail_win():
    """An older widget (or a QA seed) changed the flat counts and kept a stale
    detail: the flat values are the record's."""
    r = new_record()
    rec_mod.page_view(r, "A", "https://s.example/", T0)
    r["page_views"], r["invitations_sent"] = 7, 3
    up = rec_mod.upgrade(r)
    assert (up["visits"], up["page_views"], up["invitations_sent"]) == (1, 7, 3)


def test_the_record_stays_bounded():
    r = new_record()
    t = T0
    for i in range(200):
        t += 31 * MIN if i % 2 else 1_000
        rec_mod.page_view(r, f"tab{i}", URLS[i % 4], t)
        rec_mod.invited(r, f"tab{i}", t)
    assert r["visits"] == 101 and len(r["visit_log"]) == rec_mod.MAX_LOGGED_VISITS
    assert len(r["tally"]["invitations_sent"]) <= rec_mod.MAX_TAB_KEYS and r["invitations_sent"] == 200


BUNDLE = {"site": "s", "version": 1, "issued_at": "2026-01-01T00:00:00Z", "widgets": [{"id": "main"}],
          "messages": [{"id": "once", "type": "proactive", "once_per_user": True, "content": {"text": "Hi"},
                        "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}]}


def tab(name, record=None):
    return Engine(BUNDLE, record=record, context={"tab": name, "claims": True})


def test_a_once_per_user_show_is_claimed_first_and_only_the_winner_shows():
    a, b = tab("A"), tab("B")
    a.step([{"type": "page_view", "t": T0, "url": "https://s.example/once", "referrer": ""}], T0)
    b.step([{"type": "page_view", "t": T0 + 100, "url": "https://s.example/once", "referrer": ""}], T0 + 100)
    ra, rb = a.step([], T0 + 1_001), b.step([], T0 + 1_101)
    assert [d["action"] for d in ra["decisions"]] == ["claim"] == [d["action"] for d in rb["decisions"]]
    assert a.reactions()["exit"]["show"] is None   # the screen is held: nothing shows ahead
    won = a.step([{"type": "claim", "message": "once", "won": True, "t": T0 + 1_010}], T0 + 1_010)
    lost = b.step([{"type": "claim", "message": "once", "won": False, "t": T0 + 1_110}], T0 + 1_110)
    assert [(d["action"], d["t"]) for d in won["decisions"]] == [("show", T0 + 1_010)]
    assert lost["decisions"] == [] and lost["record"]["once"] == ["once"]
    merged = merge_records(won["record"], lost["record"])
    assert (merged["visits"], merged["page_views"], merged["invitations_sent"]) == (1, 2, 1)
    # The loser's next page does not ask again.
    b.step([{"type": "page_view", "t": T0 + 5_000, "url": "https://s.example/b", "referrer": ""}], T0 + 5_000)
    assert b.step([], T0 + 9_000)["decisions"] == []


def test_a_claim_answered_after_the_page_changed_counts_as_the_one_show():
    a = tab("A")
    a.step([{"type": "page_view", "t": T0, "url": "https://s.example/once", "referrer": ""}], T0)
    assert a.step([], T0 + 1_001)["decisions"][0]["action"] == "claim"
    a.step([{"type": "page_view", "t": T0 + 1_002, "url": "https://s.example/b", "referrer": ""}], T0 + 1_002)
    out = a.step([{"type": "claim", "message": "once", "won": True, "t": T0 + 1_003}], T0 + 9_000)
    assert out["decisions"] == [] and out["record"]["once"] == ["once"]


def test_without_claims_a_once_show_is_immediate():
    e = Engine(BUNDLE, context={"tab": "A"})
    e.step([{"type": "page_view", "t": T0, "url": "https://s.example/once", "referrer": ""}], T0)
    assert [d["action"] for d in e.step([], T0 + 1_001)["decisions"]] == ["show"]

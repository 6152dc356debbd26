"""The persistent visitor record: its shape, its upgrade from older records,
and the merge of two records written concurrently (two tabs of the site).

A record is one JSON object in the page's localStorage, shared by every tab
of the site. Each tab runs its own engine on its own copy and writes it back;
another tab merges what it reads (`record_sync`). The merge is built so that
**any interleaving of two tabs' steps gives the counts of one tab doing both
in time order**:

- `invitations_sent` is a grow-only counter per tab (`tally`), summed;
- visits are intervals of activity (`visit_log`): each tab logs the visits it
  saw, with its page views counted under its own key (`views`, "TAB@START",
  one key per stretch of the visit one tab counted). Merging unions the
  intervals and joins those less than VISIT_GAP_MS apart, which is exactly
  how one tab doing everything would have cut the visits; page views are the
  sum over the keys of the current visit;
- once-flags union, timestamps take the latest, the rating the newest;
- the visitor id (`visitor_id`, created once by the page, experiments.py) is
  the one created first (`visitor_since`, then the smaller id): two tabs that
  each made one on a first visit agree on one after a merge; exposures to
  experiments (`exposed`, one per experiment) keep the earliest, so the arm
  a visitor was shown stays theirs whatever id wins.

The flat fields the rules read (`visits`, `visit_start`, `page_views`,
`source_url`, `utm`, `invitations_sent`) stay in the record, derived from the
above after every change, so a record stays readable by older widgets and a
record written without the detail (an older widget, a QA seed, a hand edit)
is taken at its flat values: when they disagree with the detail, the detail is
rebuilt from them (`upgrade`). The version stays 1: every change is additive.
"""

from __future__ import annotations

import copy
import json

from . import catalog, experiments, urls
from . import policy as policy_mod
from .constants import RECORD_VERSION, VISIT_GAP_MS
MAX_LOGGED_VISITS = 8   # older visits are folded into `visits_before`
MAX_TAB_KEYS = 64       # per counter; beyond, the smallest keys are folded into "_"
LEGACY = "_"            # the key for counts that came without a tab (older records, seeds)
DERIVED = ("visits", "visit_start", "page_views", "source_url", "utm", "invitations_sent")


def new_record() -> dict:
    """A fresh visitor record (JSON-able, versioned)."""
    return {"v": RECORD_VERSION, "visits": 0, "visit_start": None, "last_seen": None,
            "page_views": 0, "source_url": None, "utm": {}, "invitations_sent": 0,
            "last_invitation": None, "once": [], "chat": False, "visitor_msg_at": None,
            "agent_msg_at": None, "rating": None, "rating_at": None,
            "widget_closed_at": None, "dismissed": {}, "clicked": {}, "shows": {},
            "tally": {"invitations_sent": {}}, "visit_log": [], "visits_before": [0, None],
            "visitor_id": None, "visitor_since": None, "exposed": {}}


# -- upgrade ---------------------------------------------------------------------

def upgrade(record: dict | None) -> dict:
    """Accept a stored record (None, an older or a partial one) as a current
    record. An unreadable record starts over rather than breaking the page."""
    fresh = new_record()
    if not isinstance(record, dict) or record.get("v", RECORD_VERSION) != RECORD_VERSION:
        return fresh
    out = copy.deepcopy(record)
    for key, value in fresh.items():
        if key not in out or type(out[key]) is not type(value) and value is not None and out[key] is not None:
            out[key] = value
    out["v"] = RECORD_VERSION
    log = [v for v in out["visit_log"] if _is_visit(v)]
    before = out["visits_before"]
    if not (len(before) == 2 and _is_count(before[0]) and (before[1] is None or _is_int(before[1]))):
        before = [0, None]
    tally = out["tally"]
    invites = tally.get("invitations_sent")
    invites = {k: n for k, n in invites.items() if _is_count(n)} if isinstance(invites, dict) else {}
    out["visit_log"], out["visits_before"] = log, before
    if not (isinstance(out["visitor_id"], str) and experiments.VISITOR_ID.match(out["visitor_id"])):
        out["visitor_id"] = None
    if out["visitor_id"] is None or not _is_int(out["visitor_since"]):
        out["visitor_since"] = None
    out["exposed"] = {k: e for k, e in out["exposed"].items() if isinstance(k, str) and experiments.valid_exposure(e)}
    out["tally"] = {"invitations_sent": invites}
    flat = {key: out[key] for key in DERIVED}
    _derive(out)
    if any(out[key] != flat[key] for key in DERIVED):
        _rebuild(out, flat)
    return out


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_count(x) -> bool:
    return _is_int(x) and x >= 0


def _is_visit(v) -> bool:
    return (isinstance(v, dict) and _is_int(v.get("start")) and _is_int(v.get("last"))
            and isinstance(v.get("views"), dict) and all(_is_count(n) for n in v["views"].values())
            and isinstance(v.get("utm"), dict) and _is_int(v.get("utm_at"))
            and (v.get("source_url") is None or isinstance(v.get("source_url"), str)))


def _rebuild(rec: dict, flat: dict) -> None:
    """The detail from the flat fields (a record written without it)."""
    start = flat["visit_start"] if _is_int(flat["visit_start"]) else None
    visits = flat["visits"] if _is_count(flat["visits"]) else 0
    views = flat["page_views"] if _is_count(flat["page_views"]) else 0
    invites = flat["invitations_sent"] if _is_count(flat["invitations_sent"]) else 0
    if start is None:
        rec["visit_log"], rec["visits_before"] = [], [visits, None]
    else:
        last = rec["last_seen"] if _is_int(rec["last_seen"]) and rec["last_seen"] >= start else start
        rec["visit_log"] = [{"start": start, "last": last, "views": {f"{LEGACY}@{start}": views} if views else {},
                             "source_url": flat["source_url"] if isinstance(flat["source_url"], str) else None,
                             "utm": dict(flat["utm"]) if isinstance(flat["utm"], dict) else {}, "utm_at": start}]
        rec["visits_before"] = [max(visits - 1, 0), start - 1 if visits > 1 else None]
    rec["tally"] = {"invitations_sent": {LEGACY: invites} if invites else {}}
    _derive(rec)


def _derive(rec: dict) -> None:
    """The flat fields the rules read, from the detail."""
    log = rec["visit_log"]
    current = log[-1] if log else None
    rec["visits"] = rec["visits_before"][0] + len(log)
    rec["visit_start"] = current["start"] if current else None
    rec["page_views"] = sum(current["views"].values()) if current else 0
    rec["source_url"] = current["source_url"] if current else None
    rec["utm"] = dict(current["utm"]) if current else {}
    rec["invitations_sent"] = sum(rec["tally"]["invitations_sent"].values())


# -- one tab's changes -----------------------------------------------------------

def seen(rec: dict, t: int) -> bool:
    """Activity at t keeps the visit going, unless the visit is over (its
    last activity VISIT_GAP_MS or more ago: only a page view starts the next
    one). True when it counted."""
    log = rec["visit_log"]
    if not log:
        return False
    current = log[-1]
    if t < current["start"] or t - current["last"] >= VISIT_GAP_MS:
        return False
    current["last"] = max(current["last"], t)
    rec["last_seen"] = _max(rec["last_seen"], t)
    return True


def present(rec: dict, since: int, t: int) -> None:
    """A page of the site has been open and shown from `since` to t: the
    visitor never left, however long that was (a 40-minute read). It keeps
    the current visit going only if that visit was still going at `since`
    (a tab shown again after the visit ended does not revive it)."""
    log = rec["visit_log"]
    if not log or since - log[-1]["last"] >= VISIT_GAP_MS:
        return
    log[-1]["last"] = max(log[-1]["last"], t)
    rec["last_seen"] = _max(rec["last_seen"], t)


def page_view(rec: dict, tab: str, url: str, t: int) -> bool:
    """A page view by `tab` at t: a new visit when the last activity is
    VISIT_GAP_MS or more ago (True), else one more page view of this visit."""
    log = rec["visit_log"]
    utm = urls.utm_params(url)
    new_visit = not log or t - log[-1]["last"] >= VISIT_GAP_MS
    if new_visit:
        log.append({"start": t, "last": t, "views": {}, "source_url": url or None, "utm": utm, "utm_at": t})
        _fold(rec)
    current = log[-1]
    if utm and not new_visit:
        current["utm"], current["utm_at"] = utm, t
    views = current["views"]
    mine = [k for k in views if k.rpartition("@")[0] == tab]
    key = max(mine, key=_key_start) if mine else f"{tab}@{t}"
    views[key] = views.get(key, 0) + 1
    _cap(views)
    current["last"] = max(current["last"], t)
    rec["last_seen"] = _max(rec["last_seen"], t)
    _derive(rec)
    return new_visit


def invited(rec: dict, tab: str, t: int) -> None:
    """This tab delivered a proactive invitation at t."""
    counts = rec["tally"]["invitations_sent"]
    counts[tab] = counts.get(tab, 0) + 1
    _cap(counts)
    rec["last_invitation"] = _max(rec["last_invitation"], t)
    _derive(rec)


def _key_start(key: str) -> int:
    try:
        return int(key.rpartition("@")[2])
    except ValueError:
        return -1


def _cap(counts: dict) -> None:
    """Keep a counter's keys bounded: the smallest counts fold into LEGACY.
    (Counts folded while their tab still counts may then be counted twice by
    a merge; with MAX_TAB_KEYS tabs open at once.)"""
    if len(counts) <= MAX_TAB_KEYS:
        return
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    folded = 0
    for key, n in ordered[:len(counts) - MAX_TAB_KEYS + 1]:
        if key != LEGACY:
            folded += n
            del counts[key]
    counts[LEGACY] = counts.get(LEGACY, 0) + folded


def _fold(rec: dict) -> None:
    log = rec["visit_log"]
    while len(log) > MAX_LOGGED_VISITS:
        old = log.pop(0)
        count, until = rec["visits_before"]
        rec["visits_before"] = [count + 1, _max(until, old["last"])]


# -- merge -----------------------------------------------------------------------

def _max(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def _max_map(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _max(out.get(k), v)
    return out


def _counter_merge(a: dict, b: dict) -> dict:
    """Grow-only counters per key: the larger count of each key."""
    out = dict(a)
    for k, n in b.items():
        out[k] = max(out.get(k, 0), n)
    _cap(out)
    return out


def _visit_order(v: dict):
    return (v["start"], v["source_url"] or "", _canon(v["utm"]))


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _join(a: dict, b: dict) -> dict:
    """One visit from two that overlap or lie less than the gap apart; `a`
    starts first (its landing page is the visit's)."""
    landing = (a["utm_at"], _canon(a["utm"]), a["utm"]) if a["utm_at"] == a["start"] else None
    candidates = [(v["utm_at"], _canon(v["utm"]), v["utm"]) for v in (a, b) if v["utm"]]
    if landing is not None:
        candidates.append(landing)
    utm_at, _, utm = max(candidates) if candidates else (a["start"], "", {})
    return {"start": a["start"], "last": max(a["last"], b["last"]), "views": _counter_merge(a["views"], b["views"]),
            "source_url": a["source_url"], "utm": dict(utm), "utm_at": utm_at}


def merge_visits(a: list, b: list, folded_until) -> list:
    """The union of two visit logs, cut the way one tab would have: visits
    less than VISIT_GAP_MS apart are one visit."""
    out: list = []
    for v in sorted((v for v in a + b if folded_until is None or v["last"] > folded_until), key=_visit_order):
        if out and v["start"] - out[-1]["last"] < VISIT_GAP_MS:
            out[-1] = _join(out[-1], v)
        else:
            out.append(copy.deepcopy(v))
    return out


def merge_records(a: dict | None, b: dict | None) -> dict:
    """Merge two records written concurrently (two tabs). Commutative,
    associative and idempotent; counts add up across tabs (module docstring)."""
    a, b = upgrade(a), upgrade(b)
    out = new_record()
    for key in ("last_seen", "last_invitation", "visitor_msg_at", "agent_msg_at", "widget_closed_at"):
        out[key] = _max(a[key], b[key])
    out["once"] = sorted(set(a["once"]) | set(b["once"]))
    out["chat"] = bool(a["chat"] or b["chat"])
    out["dismissed"] = _max_map(a["dismissed"], b["dismissed"])
    out["clicked"] = _max_map(a["clicked"], b["clicked"])
    out["shows"] = policy_mod.merge_shows(a["shows"], b["shows"])
    out["visitor_id"], out["visitor_since"] = experiments.merge_visitor(
        (a["visitor_id"], a["visitor_since"]), (b["visitor_id"], b["visitor_since"]))
    out["exposed"] = experiments.merge_exposed(a["exposed"], b["exposed"])
    out["tally"] = {"invitations_sent": _counter_merge(a["tally"]["invitations_sent"], b["tally"]["invitations_sent"])}
    fa, fb = a["visits_before"], b["visits_before"]
    before = max((fa, fb), key=lambda f: (-1 if f[1] is None else f[1], f[0]))
    out["visits_before"] = list(before)
    out["visit_log"] = merge_visits(a["visit_log"], b["visit_log"], before[1])
    _fold(out)
    ra, rb = (a["rating_at"] or -1, a["rating"] or ""), (b["rating_at"] or -1, b["rating"] or "")
    newer = a if ra >= rb else b
    out["rating"], out["rating_at"] = newer["rating"], newer["rating_at"]
    _derive(out)
    return out


def chat_summary(event: dict) -> dict:
    """The endpoint's summary of the visitor's conversation (a `chat_history`
    event) as a partial record, so that merging applies the usual rules:
    `exists` ORs into `chat`, later timestamps win, the newer rating wins."""
    def instant(key):
        value = event.get(key)
        return value if _is_int(value) else None

    partial = new_record()
    partial["chat"] = event.get("exists") is True
    for key in ("visitor_msg_at", "agent_msg_at", "rating_at"):
        partial[key] = instant(key)
    rating = str(event.get("rating") or "").strip().lower()
    if rating in catalog.RULES["rating"].choices and partial["rating_at"] is not None:
        partial["rating"] = rating
    else:
        partial["rating_at"] = None
    return partial

"""The boot hint: when, at the earliest, a message of a bundle could show on
a page, so that the page starts the engine just in time (and on a page where
none can, never).

`hint(payload)` is signed into the bundle (`boot`, written by the owner's
tools: proactive/publishing.py) as

    {"v": 1, "at": [[after_ms, test], ...]}

one entry per way a message can come true: no message can be decided on a
page before `after_ms` milliseconds of time on page, and only on a page whose
URL passes `test` (a residual URL test, conditions.residual_url_test's
format, that the page evaluates exactly as widget/decisions/reactions.mjs
does; null: any page). No entry: no message can show on any page. The page
(widget/shell/boot.mjs) takes the smallest `after_ms` among the entries its
URL passes.

The bound is conservative, by the rule tree, never by the visitor's facts:
  - `time_on_page greater T` holds first at T + 1 ms, `equals v…` at min v;
    `time_before_exit_intent` likewise (an exit intent after that much time);
  - a message's `delay` adds to its rules' bound (the delay counts on the
    page: a page view drops what was pending), except an email's (the
    engine sends it as soon as its rules hold);
  - `all` takes the latest of its members, `any` the earliest;
  - every other condition (durations since other instants, counts, exit
    intent without a time, events, audience, team) gives 0: it may already
    hold when the page opens.
Only `page_url` conditions become page tests (the page knows its URL before
the engine); a test the page cannot evaluate (a URL in a form it does not
trust) counts as passed. So the hint can only make the engine start early,
never late: the engine, once running, recomputes it (`later_than_rules`) and
warns when a signed hint says later than its own rules allow.

Pure standard library (runs in Pyodide): the residual tests come from
conditions.py, the same code the engine compares URLs with."""

from __future__ import annotations

import json

from . import catalog, conditions

VERSION = 1
MAX_ENTRIES = 64          # beyond, the entries collapse into one for any page
MAX_PRODUCT = 64          # alternatives of an `all` (a product): beyond, each member collapses first
TIME_RULES = frozenset({"time_on_page", "time_before_exit_intent"})
_ANY_PAGE = None


def _leaf(tree: dict) -> list:
    rule, op = tree.get("rule"), tree.get("op")
    known = catalog.rule(rule)
    if known is None or op not in known.ops:
        return [(0, _ANY_PAGE)]
    value = tree.get("value")
    if rule in TIME_RULES:
        try:
            ms = [conditions.to_ms(v) for v in (value if isinstance(value, list) else [value])]
        except (TypeError, ValueError):
            return [(0, _ANY_PAGE)]
        if not ms or any(m < 0 for m in ms):
            return [(0, _ANY_PAGE)]
        if op == "greater":
            return [(ms[0] + 1, _ANY_PAGE)]
        if op == "equals":
            return [(min(ms), _ANY_PAGE)]
        return [(0, _ANY_PAGE)]
    if rule == "page_url" and op not in catalog.NO_VALUE_OPS:
        try:
            test = conditions.residual_url_test(conditions.Condition(rule, op, value))
        except (conditions.NotCompilable, TypeError, ValueError):
            return [(0, _ANY_PAGE)]
        return [(0, test)]
    return [(0, _ANY_PAGE)]


def _collapse(alternatives: list) -> list:
    """One entry for any page, no later than any of them (conservative)."""
    if not alternatives:
        return []
    return [(min(a for a, _ in alternatives), _ANY_PAGE)]


def _both(a, b):
    if a is _ANY_PAGE:
        return b
    if b is _ANY_PAGE:
        return a
    return {"all": (a["all"] if "all" in a else [a]) + (b["all"] if "all" in b else [b])}


def alternatives(tree) -> list:
    """[(after_ms, test)]: the ways the rule tree can first hold on a page."""
    if tree is None:
        return [(0, _ANY_PAGE)]
    if isinstance(tree, list):
        tree = {"all": tree}
    if not isinstance(tree, dict):
        return [(0, _ANY_PAGE)]
    if "all" in tree or "any" in tree:
        members = tree.get("all", tree.get("any"))
        if not isinstance(members, list):
            return [(0, _ANY_PAGE)]
        parts = [alternatives(m) for m in members]
        if "any" in tree:
            return _prune([alt for part in parts for alt in part])
        out = [(0, _ANY_PAGE)]
        for part in parts:
            if not part:
                return []          # a member that can never hold
            if len(out) * len(part) > MAX_PRODUCT:
                out, part = _collapse(out), _collapse(part)
            out = _prune([(max(a1, a2), _both(t1, t2)) for a1, t1 in out for a2, t2 in part])
        return out
    return _leaf(tree)


def _key(test) -> str:
    return json.dumps(test, sort_keys=True, separators=(",", ":"))


def _prune(alternatives: list) -> list:
    """Drop the entries another entry already covers (the same test or any
    page, no later); the earliest per test, in a stable order."""
    best: dict = {}
    for after, test in alternatives:
        k = _key(test)
        if k not in best or after < best[k][0]:
            best[k] = (after, test)
    anywhere = best.get(_key(_ANY_PAGE))
    out = [alt for k, alt in best.items() if anywhere is None or alt[1] is _ANY_PAGE or alt[0] < anywhere[0]]
    return sorted(out, key=lambda alt: (alt[0], _key(alt[1])))


def message_alternatives(message) -> list:
    if not isinstance(message, dict) or message.get("enabled") is False:
        return []      # paused: never delivered
    # The delay holds back a message that shows; an email is sent once its rules hold.
    delay = message.get("delay", 0) if message.get("type", "proactive") != "email" else 0
    try:
        delay_ms = conditions.to_ms(delay) if delay else 0
    except (TypeError, ValueError):
        delay_ms = 0
    delay_ms = max(delay_ms, 0)
    return [(after + delay_ms, test) for after, test in alternatives(message.get("rules"))]


def hint(payload: dict, *others: dict) -> dict:
    """The boot hint of a payload's messages (and of `others`, the other parts
    of a staged rollout: one hint covers every part a page may run)."""
    alts = []
    for part in (payload, *others):
        for m in (part.get("messages") or []) if isinstance(part, dict) else []:
            alts.extend(message_alternatives(m))
    alts = _prune(alts)
    if len(alts) > MAX_ENTRIES:
        alts = _collapse(alts)
    return {"v": VERSION, "at": [[after, test] for after, test in alts]}


def well_formed(value) -> bool:
    """The shape the page reads (widget/shell/boot.mjs checks the same)."""
    if not isinstance(value, dict) or value.get("v") != VERSION or not isinstance(value.get("at"), list):
        return False
    for entry in value["at"]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                and not isinstance(entry[0], bool) and entry[0] >= 0
                and (entry[1] is None or isinstance(entry[1], dict))):
            return False
    return True


def due(value: dict, url: str) -> int | None:
    """The time on page (ms) from which a message can show on `url` by this
    hint (None: never on this page)."""
    times = [after for after, test in value["at"] if test is None or _passes(test, url)]
    return min(times) if times else None


def _passes(test, url: str) -> bool:
    try:
        return conditions.residual_holds(test, url)
    except Exception:  # noqa: BLE001 - a test this version cannot read counts as passed
        return True


def later_than_rules(signed, payload: dict, urls: list) -> str | None:
    """The engine's check of a signed hint against its own rules, on the
    pages this engine has seen: a warning when the signed one starts later,
    else None. (A missing or malformed hint is the page's to say: it then
    started the engine at once, widget/shell/boot.mjs.)"""
    if not well_formed(signed):
        return None
    own = hint(payload)
    for url in urls:
        mine, theirs = due(own, url), due(signed, url)
        if mine is not None and (theirs is None or theirs > mine):
            said = "never" if theirs is None else f"after {theirs} ms"
            return (f"the bundle's signed boot hint is later than its rules allow on {url[:200]} ({said}; its rules: "
                    f"after {mine} ms): messages may show late; sign the bundle again with `proactive sign`")
    return None

"""Dry-run a messages document against a visitor journey with the same engine
the browser runs. Pure: no clock, no I/O. Used by `proactive simulate`.

Scenario (times in seconds from 0):
  {"visitor": {"id", "language", "languages", "user_agent", "platform", "country",
               "city", "authenticated", "widget"},
   "team": "online" | "offline",
   "record": {...} (optional starting visitor record),
   "events": [{"t": 0, "type": "page_view", "url": ..., "referrer": ...}, ...],
   "until": 120,
   "exit_delay": 1 (optional: the tag's data-exit-delay, seconds)}

Events the browser would never send are left out and listed in the result's
`not_sent` (`browser_filter`): an exit intent before the page's first
`exit_delay` seconds, a second one in the same page view, or one with no
page open — the rules of widget/loader.js.

`visitor.id` is the visitor's stored id: it decides each experiment's arm
(experiments.py); without it the visitor is one whose storage is blocked (the
first variant, not counted). `arms` ({message: arm}, the CLI's `--arm`)
forces arms. The result lists each exposure (`exposed`) and the arm of each
show of an experiment's message.
"""

from __future__ import annotations

from . import conditions, experiments
from . import policy as policy_mod
from .constants import EXIT_DELAY_S  # widget/loader.js: data-exit-delay's default
from .engine import Engine

EVENT_TYPES = ("page_view", "exit_intent", "widget_open", "widget_close", "visitor_message", "agent_message",
               "rating", "dismiss", "click", "team", "identify", "geo", "context", "record_sync", "chat_history",
               "visibility", "page_hide")
CONTEXT_KEYS = ("language", "languages", "user_agent", "platform", "authenticated", "widget")


def browser_filter(events: list[dict], exit_delay_ms: int) -> tuple[list[dict], list[dict]]:
    """(the events the browser would send, [{"event", "why"}] for the others),
    events sorted by time, in ms. The loader sends at most one exit intent per
    page view, none in the page's first `exit_delay_ms`."""
    kept, dropped = [], []
    page_start, exit_sent = None, False
    for event in events:
        if event["type"] == "page_view":
            page_start, exit_sent = event["t"], False
        elif event["type"] == "exit_intent":
            why = ("no page is open" if page_start is None
                   else "a second exit intent on the same page view" if exit_sent
                   else f"within {_secs(exit_delay_ms):g} s of the page view (data-exit-delay)"
                   if event["t"] < page_start + exit_delay_ms else None)
            if why is not None:
                dropped.append({"event": event, "why": why})
                continue
            exit_sent = True
        kept.append(event)
    return kept, dropped


class ScenarioInvalid(ValueError):
    pass


def _seconds(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ScenarioInvalid(f"{where}: {value!r} is not a time in seconds ≥ 0")
    return conditions.to_ms(value)


def _secs(ms: int) -> float:
    return ms / 1000


def _readable(entry: dict) -> dict:
    """An engine trace in the result's terms: seconds (`at` is added by the caller)."""
    entry = {k: v for k, v in entry.items() if k != "at"}
    if "due" in entry:
        entry["due"] = _secs(entry["due"])
    return entry


CONDITION_SCORE = {"true": 0, "false": 1, "unknown": 2}   # a known miss is closer than an unknown


def closeness(entry: dict) -> tuple:
    """How close a message not delivered came at an instant (lower: closer):
    its rules holding first, then its conditions (false beats unknown), then
    its closed gates."""
    return (0 if entry["rules"] else 1,
            sum(CONDITION_SCORE.get(c["result"], 2) for c in entry["conditions"]),
            len(entry["blocked_by"]))


def simulate(payload: dict, scenario: dict, explain: bool = False, arms: dict | None = None) -> dict:
    """Return {"shown": [{"message", "t"}], "emails": [...], "explain"?: {...}}.

    With `explain`, each message is traced at the instant that decided it: a
    delivered one from the state just before its delivery (its own show not
    yet counted); one never delivered at the instant it came closest (every
    event and wake-up is looked at, exit intents included), the earliest of
    equally close ones."""
    if not isinstance(scenario, dict):
        raise ScenarioInvalid("the scenario is not a mapping")
    visitor = scenario.get("visitor") or {}
    if not isinstance(visitor, dict):
        raise ScenarioInvalid("visitor: not a mapping")
    for where, keys, known in (("", scenario, ("visitor", "team", "record", "events", "until", "exit_delay")),
                               ("visitor.", visitor, CONTEXT_KEYS + ("country", "city", "id"))):
        unknown = [k for k in keys if k not in known]
        if unknown:  # `event:` for `events:` would simulate nothing, silently
            raise ScenarioInvalid(f"{where}{unknown[0]}: unknown key (one of {', '.join(known)})")
    context = {k: visitor[k] for k in CONTEXT_KEYS if k in visitor}
    if "id" in visitor:
        if not (isinstance(visitor["id"], str) and experiments.VISITOR_ID.match(visitor["id"])):
            raise ScenarioInvalid(f"visitor.id: {visitor['id']!r} is not a visitor id (8-64 letters, digits, '-', '_')")
        context["visitor_id"] = visitor["id"]
    if arms:
        context["arms"] = dict(arms)
    engine = Engine(payload, record=scenario.get("record"), context=context)
    for mid, arm in (arms or {}).items():
        msg = next((m for m in engine.messages if m.id == mid), None)
        if msg is None or msg.experiment is None or msg.experiment.arm(arm) is None:
            known = [a.id for a in msg.experiment.arms] if msg is not None and msg.experiment else []
            raise ScenarioInvalid(f"--arm {mid}={arm}: " + (f"no arm {arm!r} (one of {', '.join(known)})" if known
                                                            else f"{mid!r} is not a message with variants or a holdout"))
    events = []
    if "country" in visitor or "city" in visitor:
        events.append({"t": 0, "type": "geo", "country": visitor.get("country"), "city": visitor.get("city")})
    if scenario.get("team") is not None:
        events.append({"t": 0, "type": "team", "value": scenario["team"]})
    raw_events = scenario.get("events") or []
    if not isinstance(raw_events, list):
        raise ScenarioInvalid("events: not a list")
    for i, event in enumerate(raw_events):
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ScenarioInvalid(f"events[{i}]: needs a `type`")
        events.append(dict(event, t=_seconds(event.get("t", 0), f"events[{i}].t")))
        # The engine ignores events it does not know (a newer page); a
        # journey with a typo would silently simulate nothing.
        if event["type"] not in EVENT_TYPES:
            raise ScenarioInvalid(f"events[{i}].type: unknown event {event['type']!r} "
                                  f"(one of {', '.join(EVENT_TYPES)})")
        if event["type"] == "page_view" and not (isinstance(event.get("url"), str) and event["url"].strip()):
            raise ScenarioInvalid(f"events[{i}]: a page_view needs a `url`")
    events.sort(key=lambda e: e["t"])
    exit_delay = _seconds(scenario.get("exit_delay", EXIT_DELAY_S), "exit_delay")
    events, not_sent = browser_filter(events, exit_delay)
    until = _seconds(scenario["until"], "until") if "until" in scenario else (events[-1]["t"] if events else 0)

    shown, emails, exposed = [], [], []
    closest = _Closest(engine) if explain else None
    i, wake = 0, None
    while True:
        candidates = [t for t in (events[i]["t"] if i < len(events) else None, wake) if t is not None and t <= until]
        if not candidates:
            break
        t = min(candidates)
        group = []
        while i < len(events) and events[i]["t"] == t:
            group.append(events[i])
            i += 1
        result = engine.step(group, t)
        wake = result["next_wakeup"]
        for d in result["decisions"]:
            item = {"message": d["message"], "t": _secs(d["t"])}
            if "arm" in d:
                item["arm"] = d["arm"]
            if d["action"] == "exposed":
                exposed.append(item)
                continue
            (shown if d["action"] == "show" else emails).append(item)
            if explain:
                closest.delivered(d["message"], _readable(engine.decided[d["message"]]) | {"at": _secs(d["t"])})
        if explain:
            closest.look(engine.t, bool(group or result["decisions"]))
    engine.step([], until)

    out = {"shown": shown, "emails": emails}
    if exposed:
        out["exposed"] = exposed
    if not_sent:
        out["not_sent"] = [{"t": _secs(d["event"]["t"]), "type": d["event"]["type"], "why": d["why"]} for d in not_sent]
    if explain:
        closest.look(until, True)
        out["explain"] = {msg.id: closest.kept[msg.id][1] for msg in engine.messages}
    return out


def _condition_score(node, facts: dict, now: int) -> tuple[int, int | None]:
    """The conditions' part of `closeness` — the sum of CONDITION_SCORE over
    the node's trace — from the leaves' tests alone (no trace built), and
    the earliest instant after `now` at which a leaf's result may change with
    time alone (None: only events change them)."""
    children = getattr(node, "children", None)
    if children is None:
        result, nxt = node.test(facts, now)
        return CONDITION_SCORE["unknown" if result is None else "true" if result else "false"], nxt
    total, soonest = 0, None
    for child in children:
        score, nxt = _condition_score(child, facts, now)
        total += score
        if nxt is not None and nxt > now and (soonest is None or nxt < soonest):
            soonest = nxt
    return total, soonest


def _closeness_at(engine, idx: int, facts: dict, now: int, beat: tuple | None = None) -> tuple[tuple | None, int | None]:
    """(`closeness` of the message's explain entry at `now`, computed without
    building the entry; the earliest instant it may change with no event or
    decision in between: a condition's or a delivery gate's next change).
    The closeness is None when it cannot be below `beat` (its rules and
    conditions already say so: its gates are not counted)."""
    msg = engine.messages[idx]
    ok, _ = msg.node.evaluate(facts, now)
    conditions, nxt = _condition_score(msg.node, facts, now)
    gates = policy_mod.changes_at(engine.view, msg, now)
    if gates is not None and gates > now and (nxt is None or gates < nxt):
        nxt = gates
    head = (0 if ok else 1, conditions)
    if beat is not None and head > beat[:2]:
        return None, nxt
    closed = sum(1 for gate in policy_mod.GATES if gate.applies(msg) and not gate.allows(engine.view, msg, now))
    return head + (closed,), nxt


class _Closest:
    """Per message not delivered, its explain entry at the instant it came
    closest (the earliest of equally close ones). Scoring an instant builds
    no entry, and a message is scored again only when its score may have
    changed — after events or decisions (anything), or at its own next
    change with time: a journey of N instants over M messages builds about
    M entries and scores far fewer than N × M times."""

    def __init__(self, engine):
        self.engine = engine
        self.kept: dict = {}     # message id → (closeness or None when delivered, entry)
        self.valid: dict = {}    # message index → the instant its last score may change (None: not by time)

    def delivered(self, mid: str, entry: dict) -> None:
        self.kept.setdefault(mid, (None, entry))

    def look(self, t: int, changed: bool) -> None:
        """The state at `t`; `changed`: events were applied or decisions made at t."""
        engine, facts = self.engine, None
        for idx, msg in enumerate(engine.messages):
            kept = self.kept.get(msg.id)
            if kept is not None and kept[0] is None:
                continue   # delivered: traced at its instant
            if not changed and idx in self.valid and (self.valid[idx] is None or self.valid[idx] > t):
                continue   # the same score as at the last look: not closer
            facts = engine._facts_at(t) if facts is None else facts
            score, self.valid[idx] = _closeness_at(engine, idx, facts, t, kept[0] if kept is not None else None)
            if score is None or kept is not None and kept[0] <= score:
                continue   # as close before
            entry = engine._explain_entry(idx, facts, t)
            self.kept[msg.id] = (score, _readable(entry) | {"at": _secs(t)})

"""The rule engine: a deterministic function of (visitor record, timestamped
events, bundle payload) -> (decisions, record, next_wakeup).

It never reads a clock and never polls. Time is integer milliseconds since the
epoch, taken from the events and from `now` (docs/architecture.md). Between
two instants the engine reports (`next_wakeup`), nothing can change a
decision; `step` itself also runs every wake-up that falls before `now`, so a
late caller still gets each decision stamped with its exact instant.

Speed: the bundle is compiled once. At each instant the engine rebuilds the
visitor's facts (one value per rule id), diffs them against the previous
instant and re-evaluates only the messages that read a changed fact, plus
those whose time-based conditions reach a boundary (a heap of instants).
A message held false by a positive URL condition is parked on it, and a new
URL wakes only the messages whose parking condition the URL index says can
now hold (conditions.UrlIndex), not all thousand.
Delivery then only looks at the messages whose rules hold.

Delivery (docs/rules.md, "Delivery"): one shown message on screen at a time;
priority, then file order; once per page view, or once per user; a delay
arms a message that shows when due, unless the page changes first; team,
audience, widget, dates, caps, gaps and dismissals gate delivery: one table
of gates in policy.py, read through a narrow view of visitor and page.
"""

from __future__ import annotations

import copy
import gc
import heapq

from . import bundle as bundle_mod
from . import catalog, conditions, experiments, useragent
from . import content as content_mod
from . import policy as policy_mod
from . import record as record_mod
from .constants import RECORD_VERSION, VISIT_GAP_MS  # noqa: F401 - shared with the browser

PAGE_CLOCK = frozenset(("time_on_page",))   # durations that count from a page view
MAX_ROUTE_CANDIDATES = 50   # Engine.reactions: what crosses to the page after every step stays small
RULE_IDS = tuple(catalog.RULES)
ACTIVITY_EVENTS = frozenset({"page_view", "exit_intent", "widget_open", "widget_close",
                             "visitor_message", "click", "dismiss", "rating",
                             "visibility", "page_hide"})   # the visitor was there until then


def settle_memory() -> None:
    """Move everything alive now (the compiled bundle above all) out of the
    cyclic garbage collector's sight. Call once after building the Engine in a
    long-lived interpreter (the worker): with 1,000 messages, Pyodide's full
    collections otherwise pause single events for tens of milliseconds
    (docs/benchmarks.md). Objects still die normally by reference counting."""
    gc.collect()
    gc.freeze()


# -- the persistent visitor record (widget/runtime/record.py) ------------------

new_record = record_mod.new_record
upgrade_record = record_mod.upgrade
merge_records = record_mod.merge_records


def _json_copy(value):
    """A copy of JSON-like data (dicts, lists, scalars); much cheaper than deepcopy."""
    if type(value) is dict:
        return {k: _json_copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_json_copy(v) for v in value]
    return value


def _is_time(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


_max = record_mod._max


class _Window:
    """Where an answer of Engine.reactions stops holding: the earliest of the
    instants after `t0` at which something it depends on may change."""

    def __init__(self, t0: int, until: int | None):
        self.t0, self.until = t0, until

    def bound(self, at: int | None) -> None:
        if at is not None and at > self.t0 and (self.until is None or at < self.until):
            self.until = at


class _Moment:
    """The state the delivery gates and a trace read (policy.Visitor's
    fields, this page's shown and pending messages, the facts), as it was
    at instant `t`: explain traces an earlier instant from it."""

    def __init__(self, engine: "Engine", t: int):
        # The facts the engine settled on at t (its last refresh), with a memo of their own.
        self.t, self.facts = t, dict(engine.facts, **{conditions.MEMO: {}})
        self.bundle, self.team, self.authenticated = engine.bundle, engine.team, engine.authenticated
        self.context, self._once = dict(engine.context), set(engine._once)
        self.record, self.page = _json_copy(engine.record), dict(engine.page)
        self.page_shown, self.pending, self.on_screen = set(engine.page_shown), dict(engine.pending), engine.on_screen
        self.view = policy_mod.Visitor(self)


# -- the engine ----------------------------------------------------------------

class Engine:
    """See docs/architecture.md for the contract."""

    def __init__(self, payload, record: dict | None = None, context: dict | None = None,
                 incremental: bool = True):
        self.bundle = payload if isinstance(payload, bundle_mod.Bundle) else bundle_mod.parse(payload)
        self.messages = self.bundle.messages
        self.view = policy_mod.Visitor(self)   # what the delivery gates read
        # This page's traces at the instants that decided (explain's `decided`
        # and `at_exit`): a delivered message's, from the state just before
        # its delivery; and the state at this page's exit intent, from which
        # explain traces the exit-intent messages not shown then.
        self.decided: dict[str, dict] = {}
        self.exit_moment: _Moment | None = None
        self._gates_open_at: set[int] = set()  # instants next_wakeup reported for a gate opening
        self.incremental = incremental
        self.record = upgrade_record(record)
        self._once = set(self.record["once"])
        self.context: dict = {}
        self._ua = None
        self._visitor_candidate: str | None = None   # a fresh id from the page, kept when the record has none
        self._forced_arms: dict = {}                 # {message id: arm id} (simulate --arm, the QA kit)
        self._set_context(context or {})
        # This tab's key in the record's counters (record.py); a page passes
        # its own, so that two tabs' counts add up.
        self.tab = str(self.context.get("tab") or record_mod.LEGACY)
        # A once-per-user show is first claimed across tabs (the page answers
        # with a `claim` event) when the page can: context["claims"] is True.
        self.claims = self.context.get("claims") is True
        self.claiming: str | None = None    # the message waiting for its claim
        self._granted: str | None = None    # its claim was won: show it now
        self.team: str | None = None
        self.geo: dict = {"country": None, "city": None}
        self.attributes: dict = {}
        # this page (not persisted: another tab has its own page)
        self.page: dict | None = None
        self.page_shown: set[str] = set()
        self.pending: dict[int, int] = {}
        self.on_screen: str | None = None
        self.widget_open = False
        self.exit: tuple[int, int] | None = None
        # Since when this page has been open and shown without a break (None:
        # hidden or left). A visitor with it open has not left (record.present).
        self.present_since: int | None = None
        # evaluation cache
        n = len(self.messages)
        self.t: int | None = None
        self.facts: dict = {}
        self.holding: set[int] = set()
        self._next = [None] * n
        self._heap: list[tuple[int, int]] = []
        self._all_dirty = True
        self._also_dirty: set[int] = set()
        self._reset: set[int] = set()
        self._watch: list = [None] * n
        self._blocker: list = [None] * n
        self.watchers: dict[str, set[int]] = {}
        self._idx = {m.id: i for i, m in enumerate(self.messages)}
        self._order = sorted(range(n), key=lambda i: (-self.messages[i].priority, i))
        self._rank = {idx: r for r, idx in enumerate(self._order)}
        self.index: dict[str, list[int]] = {}
        for i, m in enumerate(self.messages):
            for rule_id in m.node.reads:
                self.index.setdefault(rule_id, []).append(i)
        # A message whose top-level `all` fails on a positive URL condition is
        # parked on that condition: a new URL wakes only the messages parked on
        # conditions the URL index says can hold (conditions.UrlIndex).
        url_leaves: dict[str, dict] = {}
        for m in self.messages:
            node = m.node
            if isinstance(node, conditions.All) and not isinstance(node, conditions.Any):
                for child in node.order:
                    if isinstance(child, conditions.Condition) and child.kind == "url":
                        url_leaves.setdefault(child.rule, {})[child] = None
        self._url_index = {rule: conditions.UrlIndex(leaves) for rule, leaves in url_leaves.items()}
        self._parkable = frozenset(leaf for ix in self._url_index.values() for leaf in ix.leaves)
        self._parked: dict = {}   # URL condition -> indices of the messages parked on it
        self._exit_readers = sorted(self.index.get("time_before_exit_intent", ()), key=self._rank.__getitem__)
        self._exit_read = frozenset(self._exit_readers)

    # -- public API ---------------------------------------------------------
    PAGE_STATE = ("page", "on_screen", "widget_open", "exit", "team", "geo", "attributes", "t", "present_since")

    def adopt_page(self, old: "Engine") -> None:
        """Take over this page's in-memory state from the engine of an older
        bundle (a newer bundle arrived mid-page): the page, what is on screen,
        the live team/geo/identify facts, and per-message page state by id,
        since message indices differ between bundles."""
        for name in self.PAGE_STATE:
            setattr(self, name, copy.deepcopy(getattr(old, name)))
        self.page_shown = {mid for mid in old.page_shown if mid in self._idx}
        self.decided = {mid: e for mid, e in old.decided.items() if mid in self._idx}
        self.claiming = old.claiming if old.claiming in self._idx else None
        if old.claiming is not None and self.claiming is None and self.on_screen == old.claiming:
            self.on_screen = None
        self.pending = {self._idx[old.messages[i].id]: due for i, due in old.pending.items()
                        if old.messages[i].id in self._idx}
        self._all_dirty = True

    def step(self, events: list[dict], now: int) -> dict:
        """Apply events (each with "t" ms, sorted) and advance to `now`."""
        decisions: list[dict] = []
        # An event without a usable timestamp cannot be placed in time: dropped.
        events = sorted((e for e in events or () if isinstance(e, dict) and _is_time(e.get("t"))),
                        key=lambda e: e["t"])
        now = int(now)
        if events:
            now = max(now, int(events[-1]["t"]))
        i = 0
        while i < len(events):
            t = int(events[i]["t"])
            if self.t is not None and t < self.t:
                t = self.t   # a late event is applied at the engine's present
            self._run_wakeups(t - 1, decisions)
            while i < len(events) and max(int(events[i]["t"]), t) == t:
                self._apply(events[i], t)
                i += 1
            self._settle(t, decisions)
        self._run_wakeups(now, decisions)
        if self.t is None or self.t < now:
            self.t = now
        return {"decisions": decisions, "record": self.snapshot(), "next_wakeup": self.next_wakeup()}

    def snapshot(self) -> dict:
        """The persistent record, as a JSON-able copy."""
        return _json_copy(self.record)

    def next_wakeup(self) -> int | None:
        """The earliest instant after the present at which a decision can change."""
        heap, nexts = self._heap, self._next
        while heap and nexts[heap[0][1]] != heap[0][0]:
            heapq.heappop(heap)
        best = heap[0][0] if heap else None
        present = self.t if self.t is not None else -1
        for due in self.pending.values():
            if due > present and (best is None or due < best):
                best = due
        extra = self._gate_wakeup(present)
        if extra is not None and (best is None or extra < best):
            best = extra
        return best

    def _gate_wakeup(self, t: int) -> int | None:
        """The earliest instant after t at which a held or armed message's
        closed gates open by themselves."""
        best = None
        view = self.view
        for idx in set(self.holding) | set(self.pending):
            msg = self.messages[idx]
            if msg.id in self.page_shown:
                continue
            at = policy_mod.opens_at(view, msg, t)
            if at is not None and at > t and (best is None or at < best):
                best = at
        if best is not None:
            self._gates_open_at.add(best)
        return best

    def _gates_opened(self, t: int) -> bool:
        """True at an instant _gate_wakeup reported: re-evaluate every message."""
        due = {x for x in self._gates_open_at if x <= t}
        self._gates_open_at -= due
        return bool(due)

    def reactions(self) -> dict | None:
        """What `step` would show if the page's own signals came next: an
        exit intent, or a route change of a single-page app to a URL not
        known yet. The page reads this to show such a message in the very
        event handler, with no round trip to the engine (widget/decisions/reactions.mjs).

        Each answer holds for a signal at any instant t with
        from <= t < its `until` (None: no end) when no other event comes first:
          exit:  `show`, the show decision (its content resolved) or None;
          route: for a page view of a new URL with no utm_* parameters, in
                 this visit, with `referrer` (unless None) = this page's URL
                 (else None):
                 `candidates`, the messages that could show, in the order
                 the engine picks them, each with `when`, true or a residual
                 test of the new URL (conditions.partial). The first whose
                 test holds shows. The list stops at MAX_ROUTE_CANDIDATES:
                 none holding, the page leaves the page view to the engine.
        The messages with a delay are not here: they are armed, not shown.
        tests/test_reactions.py checks this against `step`."""
        if self.t is None or self.page is None:
            return None
        t0 = self.t
        page, rec = self.page, self.record

        wake = self.next_wakeup()

        # The exit: this page's state, plus an exit intent "now". The page's
        # start rides along so a later exit's duration bounds the answer.
        exit_window, exit_show = _Window(t0, wake), None
        if self.on_screen is None:
            facts = self._facts_at(t0)
            facts["time_before_exit_intent"] = (t0, t0 - page["start"], page["start"])
            # Only messages that read the exit can show because of it: any
            # other that holds and may show would have shown at this step.
            readers = self._exit_readers
            for when, idx in self._candidates(facts, t0, None, self.page_shown, self.pending, exit_window.bound, readers):
                exit_show = self._show_decision(self.messages[idx])
                break
        # A route change: a new page in this visit (a new visit, with its new
        # source URL and counters, is left to the engine).
        route = None
        last = rec["last_seen"]
        if rec["visit_start"] is not None and last is not None and t0 - last < VISIT_GAP_MS:
            route_window = _Window(t0, wake)
            route_window.bound(last + VISIT_GAP_MS)
            facts = self._facts_at(t0)
            facts.update({"time_on_page": t0, "page_url": "", "referrer_url": page["url"] or None,
                          "page_views": rec["page_views"] + 1, "time_before_exit_intent": None})
            candidates = []
            for when, idx in self._candidates(facts, t0, "page_url", (), (), route_window.bound):
                if len(candidates) == MAX_ROUTE_CANDIDATES:
                    break   # the page asks the engine when none of these holds
                candidates.append({"when": when, "show": self._show_decision(self.messages[idx])})
            # The referrer the page must report (None: no rule reads it).
            referrer = page["url"] if "referrer_url" in self.index else None
            route = {"candidates": candidates, "until": route_window.until, "referrer": referrer}
        return {"from": t0, "exit": {"show": exit_show, "until": exit_window.until}, "route": route}

    def _candidates(self, facts: dict, t: int, unknown: str | None, shown, pending, bound, among=None):
        """The messages that would show at once, best first, each with the
        condition under which it does (True, or a residual test of the
        `unknown` fact), up to the first that shows whatever that fact is.
        Every instant at which an answer here could change goes to `bound`.
        `among`: only these messages (indices in rank order), else all."""
        messages, view = self.messages, self.view
        for idx in (self._order if among is None else among):
            msg = messages[idx]
            if not msg.shows or msg.delay_ms or msg.id in shown or idx in pending:
                continue
            if unknown is None:
                when, nxt = msg.node.evaluate(facts, t)
            else:
                # The new page starts at the signal: its time on page is 0 then.
                when, nxt = conditions.partial(msg.node, facts, t, unknown, PAGE_CLOCK)
            bound(nxt)
            if when is False:
                continue   # until its rules change (bounded above), its gates do not matter
            bound(policy_mod.changes_at(view, msg, t))
            if not policy_mod.allows(view, msg, t):
                continue
            if msg.experiment is not None and self.arm_for(msg)[0] == experiments.HOLDOUT:
                continue   # the engine records the exposure at the signal and shows the next one
            if self.claims and msg.once_per_user:
                return   # it is claimed across tabs first: the engine decides
            yield when, idx
            if when is True:
                return

    def explain(self, now: int, decisive: bool = True) -> dict:
        """Per message: whether its rules hold at `now`, each condition's
        observed value/operator/expected value/result, and every gate; and,
        on this page, the trace at the instant that decided it: `decided`
        for a delivered message (the state just before its delivery: its own
        show not yet counted), `at_exit` for a message reading the exit
        intent that did not show at the exit's instant (each with `at`).
        `decisive=False`: the live traces only (simulate looks at every instant)."""
        facts = self._facts_at(int(now))
        out = {}
        if not decisive:
            return {msg.id: self._explain_entry(idx, facts, now) for idx, msg in enumerate(self.messages)}
        moment = self.exit_moment
        for idx, msg in enumerate(self.messages):
            entry = out[msg.id] = self._explain_entry(idx, facts, now)
            if msg.id in self.decided and entry["result"] == "delivered":
                entry["decided"] = self.decided[msg.id]
            elif (moment is not None and entry["result"] != "delivered" and idx in self._exit_read
                  and msg.id not in moment.page_shown and idx not in moment.pending):
                entry["at_exit"] = dict(self._explain_entry(idx, moment.facts, moment.t, moment), at=moment.t)
        return out

    def _explain_entry(self, idx: int, facts: dict, now: int, moment: "_Moment | None" = None) -> dict:
        """A message's trace at `now`; with `moment`, as it was at that
        earlier instant (its page state and record, not the live ones)."""
        msg = self.messages[idx]
        state = moment or self
        ok, _ = msg.node.evaluate(facts, now)
        gates = policy_mod.explain(moment.view if moment else self.view, msg, now)
        blocked = [name for name, g in gates.items() if not g["ok"]]
        if msg.id in state.page_shown:
            result = "delivered"
        elif idx in state.pending:
            result = "pending"
        elif not ok:
            result = "rules_false"
        elif blocked:
            result = "blocked"
        else:
            result = "ready"
        entry = {"result": result, "rules": ok, "type": msg.type, "priority": msg.priority,
                 "conditions": msg.node.trace(facts, now), "gates": gates, "blocked_by": blocked}
        if idx in state.pending:
            entry["due"] = state.pending[idx]
        return entry

    def _trace_decision(self, idx: int, t: int) -> None:
        """Keep the trace of a message at the instant it is delivered, from
        the state just before its delivery (its own show not yet counted)."""
        entry = self._explain_entry(idx, self._facts_at(t), t)
        entry["result"], entry["at"] = "delivered", t
        self.decided[self.messages[idx].id] = entry


    # -- time ---------------------------------------------------------------
    def _run_wakeups(self, until: int, decisions: list) -> None:
        while True:
            w = self.next_wakeup()
            if w is None or w > until:
                return
            self._settle(w, decisions)

    # -- events -------------------------------------------------------------
    def _set_context(self, ctx: dict) -> None:
        self.context.update(ctx)
        candidate = self.context.get("visitor_id")
        if isinstance(candidate, str) and experiments.VISITOR_ID.match(candidate):
            self._visitor_candidate = candidate
        arms = self.context.get("arms")
        if isinstance(arms, dict):
            self._forced_arms = {k: v for k, v in arms.items() if isinstance(k, str) and isinstance(v, str)}
        ua = self.context.get("user_agent")
        self._ua = dict(useragent.parse(ua), raw=ua) if ua else None

    @property
    def authenticated(self) -> bool:
        return bool(self.context.get("authenticated"))

    def _apply(self, event: dict, t: int) -> None:
        kind = event.get("type")
        rec = self.record
        if rec["visitor_id"] is None and self._visitor_candidate is not None:
            rec["visitor_id"], rec["visitor_since"] = self._visitor_candidate, t   # created on the first visit
        if kind in ACTIVITY_EVENTS and kind != "page_view":
            if self.present_since is not None:   # shown all along until now (a page hidden at t included)
                record_mod.present(rec, self.present_since, t)
            record_mod.seen(rec, t)
        if kind == "page_view":
            self._page_view(str(event.get("url") or ""), event.get("referrer") or None, t, event.get("hidden") is not True,
                            counted=event.get("counted") is True)
        elif kind == "visibility":
            shown = event.get("state") != "hidden"
            if self.page is not None and shown != (self.present_since is not None):
                self.present_since = t if shown else None
        elif kind == "page_hide":
            self.present_since = None   # the page was left (navigation, tab closed)
        elif kind == "exit_intent":
            if self.page is not None:
                self.exit = (t, t - self.page["start"])
        elif kind == "widget_open":
            self.widget_open = True
            self.on_screen = None
        elif kind == "widget_close":
            self.widget_open = False
            rec["widget_closed_at"] = t
        elif kind == "visitor_message":
            rec["chat"] = True
            rec["visitor_msg_at"] = t
        elif kind == "agent_message":
            rec["chat"] = True
            rec["agent_msg_at"] = t
        elif kind == "rating":
            value = str(event.get("value") or "").strip().lower()
            if value in catalog.RULES["rating"].choices:
                rec["rating"], rec["rating_at"] = value, t
        elif kind == "dismiss":
            mid = event.get("message")
            if mid is None or mid == self.on_screen:
                self.on_screen = None
            if isinstance(mid, str):
                rec["dismissed"][mid] = t
        elif kind == "click":
            mid = event.get("message")
            if isinstance(mid, str):
                rec["clicked"][mid] = t
        elif kind == "team":
            value = event.get("value")
            self.team = value if value in ("online", "offline") else None
            self._all_dirty = True
        elif kind == "identify":
            self.context["authenticated"] = True
            attrs = event.get("attributes")
            if isinstance(attrs, dict):
                self.attributes.update(attrs)
            self._all_dirty = True
        elif kind == "geo":
            for key in ("country", "city"):
                if key in event:
                    self.geo[key] = event[key] or None
        elif kind == "context":
            self._set_context({k: v for k, v in event.items() if k not in ("t", "type")})
            self._all_dirty = True
        elif kind == "record_sync":
            self.record = merge_records(self.record, event.get("record"))
            self._once = set(self.record["once"])
            self._all_dirty = True
        elif kind == "claim":
            self._claim_answered(event.get("message"), event.get("won") is True)
        elif kind == "chat_history":
            self.record = merge_records(self.record, record_mod.chat_summary(event))
            self._all_dirty = True

    def _claim_answered(self, mid, won: bool) -> None:
        """The page's answer to a `claim` decision. Won: the message shows
        now. Lost: another tab has shown it; the screen is free for the next
        message. Either way the message is now shown once for this visitor
        (a claim won for a message no longer waiting, after a page change,
        counts as its one show: the other tabs have seen the claim)."""
        if not isinstance(mid, str) or mid not in self._idx:
            return
        if mid == self.claiming:
            self.claiming = None
            if self.on_screen == mid:
                self.on_screen = None
            if won and self.on_screen is None:
                self._granted = mid
                return
        self._once.add(mid)
        self.record["once"] = sorted(self._once)
        self._all_dirty = True

    def _page_view(self, url: str, referrer: str | None, t: int, shown: bool = True, counted: bool = False) -> None:
        """`counted`: the record has this page view already (the page's signals
        were replayed by another page while this one waited to start its
        engine, widget/shell/boot.mjs): only this page's state starts here."""
        if self.present_since is not None:   # this page was open and shown until now: the visitor never left
            record_mod.present(self.record, self.present_since, t)
        if not counted:
            record_mod.page_view(self.record, self.tab, url, t)
        self.present_since = t if shown else None   # (a page opened in a background tab is not shown yet)
        self.page = {"start": t, "url": url, "referrer": referrer}
        # Messages delivered or armed on the last page had their time
        # boundaries dropped; everything else is re-evaluated by what it reads.
        self._also_dirty.update(self._idx[mid] for mid in self.page_shown)
        self._also_dirty.update(self.pending)
        self.page_shown = set()
        self.pending = {}
        self.on_screen = None
        self.claiming = self._granted = None
        self.exit = None
        self.decided, self.exit_moment = {}, None

    # -- facts ---------------------------------------------------------------
    def _facts_at(self, t: int) -> dict:
        rec, page, ctx = self.record, self.page, self.context
        langs = ctx.get("languages")
        language = langs[0] if isinstance(langs, list) and langs else ctx.get("language")
        vmsg, amsg = rec["visitor_msg_at"], rec["agent_msg_at"]
        utm = rec["utm"]
        ua = self._ua
        facts = {
            conditions.MEMO: {},
            "widget_opened": self.widget_open,
            "browser_language": language or None,
            "chat_history": rec["chat"],
            "time_on_page": page["start"] if page else None,
            "city": self.geo["city"],
            "country": self.geo["country"],
            "page_url": page["url"] or None if page else None,
            "time_this_visit": rec["visit_start"],
            "page_views": rec["page_views"],
            "invitations_sent": rec["invitations_sent"],
            "visits": rec["visits"],
            "user_agent": ua,
            "platform": ctx.get("platform") or (ua["platform"] if ua else None),
            "rating": rec["rating"],
            "referrer_url": page["referrer"] if page else None,
            "source_url": rec["source_url"],
            "time_before_exit_intent": self.exit if self.exit and self.exit[0] == t else None,
            "time_without_agent_reply": vmsg if vmsg is not None and (amsg is None or amsg < vmsg) else None,
            "time_since_widget_closed": None if self.widget_open else rec["widget_closed_at"],
            "time_since_last_invitation": rec["last_invitation"],
            "utm_campaign": utm.get("utm_campaign"),
            "utm_content": utm.get("utm_content"),
            "utm_medium": utm.get("utm_medium"),
            "utm_source": utm.get("utm_source"),
            "utm_term": utm.get("utm_term"),
        }
        for name, value in self.attributes.items():   # user.NAME rules (targeted messages)
            facts[catalog.USER_PREFIX + str(name)] = content_mod.clean_value(value)
        return facts

    # -- evaluation and delivery ----------------------------------------------
    def _refresh(self, t: int) -> None:
        facts = self._facts_at(t)
        old = self.facts
        if self._all_dirty or not self.incremental or self._gates_opened(t):
            dirty = range(len(self.messages))
            self._all_dirty = False
            self._also_dirty = set()
            self._reset = None   # everything is re-evaluated from scratch
        else:
            dirty = self._also_dirty
            self._reset, self._also_dirty = set(dirty), set()
            watchers, url_index, parked = self.watchers, self._url_index, self._parked
            for rule_id in RULE_IDS:
                value = facts[rule_id]
                if value != old.get(rule_id):
                    if rule_id in watchers:
                        dirty.update(watchers[rule_id])
                    if rule_id in url_index and parked:
                        for leaf in url_index[rule_id].candidates(value):
                            hit = parked.get(leaf)
                            if hit:
                                dirty.update(hit)
            heap, nexts = self._heap, self._next
            while heap and heap[0][0] <= t:
                at, idx = heapq.heappop(heap)
                if nexts[idx] == at:
                    dirty.add(idx)
        self.facts = facts
        self.t = t
        blockers = self._blocker
        for idx in dirty:
            blocker = blockers[idx]
            if blocker is not None and self._reset is not None and idx not in self._reset:
                ok, nxt = blocker.evaluate(facts, t)   # shared leaf: usually a cached result
                if not ok and nxt is None:
                    continue   # still blocked by the same condition: nothing else to do
            self._reevaluate(idx, facts, t)
        self._reset = set()

    def _reevaluate(self, idx: int, facts: dict, t: int) -> None:
        msg = self.messages[idx]
        ok, nxt, watch, blocker = conditions.watched(msg.node, facts, t)
        self._blocker[idx] = blocker
        if blocker is not None and blocker in self._parkable:
            watch = blocker   # parked: woken through the URL index, not by every URL change
        old_watch = self._watch[idx]
        if watch is not old_watch:
            watchers = self.watchers
            if old_watch is None:
                pass
            elif type(old_watch) is frozenset:
                for rule_id in old_watch:
                    watchers[rule_id].discard(idx)
            else:
                self._parked[old_watch].discard(idx)
            if type(watch) is frozenset:
                for rule_id in watch:
                    watchers.setdefault(rule_id, set()).add(idx)
            else:
                self._parked.setdefault(watch, set()).add(idx)
            self._watch[idx] = watch
        if ok:
            self.holding.add(idx)
        else:
            self.holding.discard(idx)
        if nxt is not None and (msg.id in self.page_shown or idx in self.pending):
            nxt = None   # cannot be delivered again before an event re-evaluates it
        elif nxt is not None and not policy_mod.allows(self.view, msg, t):
            # blocked now: look again when both the rules and the gates may have changed
            opens = policy_mod.opens_at(self.view, msg, t)
            nxt = None if opens is None else max(nxt, opens)
        old = self._next[idx]
        self._next[idx] = nxt
        if nxt is not None and nxt != old:
            heapq.heappush(self._heap, (nxt, idx))

    def _settle(self, t: int, decisions: list) -> None:
        self._refresh(t)
        if self.page is None:
            return
        if self._show_phase(t, decisions):
            self._refresh(t)
        if self.on_screen is None:
            self._arm_phase(t)
        self._email_phase(t, decisions)
        if self.exit is not None and self.exit[0] == t and any(
                self.messages[idx].id not in self.page_shown and idx not in self.pending for idx in self._exit_readers):
            # Kept, not traced: explain traces from it on demand (the exit is
            # unknown at any later instant, so a later trace cannot say why).
            self.exit_moment = _Moment(self, t)

    def _triggerable(self, idx: int, t: int) -> bool:
        msg = self.messages[idx]
        return (msg.id not in self.page_shown and idx not in self.pending
                and policy_mod.allows(self.view, msg, t))

    def _show_phase(self, t: int, decisions: list) -> bool:
        if self.on_screen is not None:
            return False
        best = None
        rank = self._rank
        if self._granted is not None:
            best, self._granted = self._idx[self._granted], None
            return self._show(best, t, decisions)
        for idx, due in list(self.pending.items()):
            msg = self.messages[idx]
            if msg.once_per_user and msg.id in self._once:
                del self.pending[idx]
            elif due <= t and policy_mod.allows(self.view, msg, t) and (best is None or rank[idx] < rank[best]):
                best = idx
        for idx in self.holding:
            msg = self.messages[idx]
            if msg.delay_ms == 0 and msg.shows and (best is None or rank[idx] < rank[best]) \
                    and self._triggerable(idx, t):
                best = idx
        if best is None:
            return False
        msg = self.messages[best]
        if msg.experiment is not None and self.arm_for(msg)[0] == experiments.HOLDOUT:
            # The control group: exposed now, at the instant it would have
            # shown; nothing shows, and the `holdout` gate keeps it away from
            # now on, so the screen goes to the next message, as if this one
            # did not exist for this visitor.
            self.pending.pop(best, None)
            self._next[best] = None
            self._expose(msg, t, decisions)
            return self._show_phase(t, decisions)
        if self.claims and msg.once_per_user:
            # Ask the other tabs first: the screen is held until the page
            # answers with a `claim` event (_claim_answered).
            self.pending.pop(best, None)
            self._next[best] = None
            self.claiming = self.on_screen = msg.id
            decisions.append({"action": "claim", "message": msg.id, "t": t})
            return True
        return self._show(best, t, decisions)

    def _show(self, best: int, t: int, decisions: list) -> bool:
        msg = self.messages[best]
        self._trace_decision(best, t)
        self.pending.pop(best, None)
        self._expose(msg, t, decisions)
        self._deliver(msg, best, t)
        self.on_screen = msg.id
        if msg.type == "proactive":   # the seed's "proactive chat messages sent": not targeted ones
            record_mod.invited(self.record, self.tab, t)
        decisions.append(dict(self._show_decision(msg), t=t))
        return True

    def _show_decision(self, msg) -> dict:
        out = {"action": "show", "message": msg.id, "content": self.resolve_content(msg),
               "priority": msg.priority, "type": msg.type, "widget": msg.widget}
        if msg.experiment is not None:
            out["arm"], counted = self.arm_for(msg)
            if counted:   # beacons count it for this visitor (none: storage blocked)
                out["visitor"] = self.record["visitor_id"]
        return out

    # -- experiments (experiments.py) ----------------------------------------
    def arm_for(self, msg) -> tuple[str, bool]:
        """(the visitor's arm of the message's experiment, counted): the arm
        of an earlier exposure to it, else a forced one, else the assigned
        one; a visitor without a stored id sees the first variant, uncounted."""
        exp = msg.experiment
        seen = experiments.exposure(self.record, msg.id, exp.salt)
        if seen is not None and exp.arm(seen[0]) is not None:
            return seen[0], True
        forced = self._forced_arms.get(msg.id)
        if forced is not None and exp.arm(forced) is not None:
            return forced, True
        visitor = self.record["visitor_id"]
        if visitor is None:
            return exp.first.id, False
        return experiments.assign(exp, visitor, msg.id), True

    def _expose(self, msg, t: int, decisions: list) -> None:
        """The instant the message would be delivered: the visitor's first
        exposure to its experiment is recorded (and reported) once."""
        exp = msg.experiment
        if exp is None:
            return
        arm, counted = self.arm_for(msg)
        if counted and experiments.exposure(self.record, msg.id, exp.salt) is None:
            experiments.expose(self.record, msg.id, exp.salt, arm, t)
            decisions.append({"action": "exposed", "message": msg.id, "arm": arm, "t": t, "experiment": exp.salt,
                              "control": exp.control.id, "share": exp.share(arm), "visitor": self.record["visitor_id"]})

    def _arm_phase(self, t: int) -> None:
        for idx in self.holding:
            msg = self.messages[idx]
            if msg.delay_ms > 0 and msg.shows and self._triggerable(idx, t):
                self.pending[idx] = t + msg.delay_ms
                self._next[idx] = None

    def _email_phase(self, t: int, decisions: list) -> None:
        ready = [idx for idx in self.holding
                 if not self.messages[idx].shows and self._triggerable(idx, t)]
        for idx in sorted(ready, key=self._rank.__getitem__):
            msg = self.messages[idx]
            held_out = msg.experiment is not None and self.arm_for(msg)[0] == experiments.HOLDOUT
            self._expose(msg, t, decisions)
            if held_out:
                continue   # the control group: no e-mail; the holdout gate closes now
            self._trace_decision(idx, t)
            self._deliver(msg, idx, t)
            email = {"action": "email", "message": msg.id, "t": t, "content": self.resolve_content(msg),
                     "priority": msg.priority, "type": msg.type}
            if msg.experiment is not None:
                email["arm"] = self.arm_for(msg)[0]
            decisions.append(email)

    def resolve_content(self, msg) -> dict:
        """The content as this visitor sees it: the visitor's arm of an
        experiment, language variant chosen, placeholders filled as plain
        text (content.py)."""
        ctx = self.context
        languages = ctx.get("languages") or ([ctx["language"]] if ctx.get("language") else [])
        values = content_mod.placeholder_values(self.attributes, self.geo, self.record["utm"])
        content = msg.content
        if msg.experiment is not None:
            arm = msg.experiment.arm(self.arm_for(msg)[0])
            content = arm.content if arm is not None and arm.content is not None else msg.experiment.first.content
        return content_mod.resolve(content, languages, values)

    def _deliver(self, msg, idx: int, t: int) -> None:
        policy_mod.record_show(self.record, msg.id, t)
        self.page_shown.add(msg.id)
        self._next[idx] = None
        if msg.once_per_user and msg.id not in self._once:
            self._once.add(msg.id)
            self.record["once"] = sorted(self._once)

"""Pure condition evaluation.

A rule tree (a condition, an `all`/`any` group, or a list = all) compiles
once into nodes. Evaluating a node against the visitor's facts at instant
`now` (integer ms) gives its truth and the next instant at which that truth
can change by the passing of time alone (None: only an event can change it).

Facts are a dict keyed by rule id holding raw values:
  duration rules         -> the anchor instant (ms) the duration counts from
  time_before_exit_intent -> (exit_instant_ms, time_on_page_ms) or None
  counts                 -> int;  widget_opened, chat_history -> bool
  user_agent             -> the dict of useragent.parse (with "raw")
  everything else        -> str, or None when unknown

Unknown facts make a condition false for every operator except
`exists`/`not_exists`, which test presence itself (exists -> false,
not_exists -> true). Traces say "unknown" for such conditions.

Query-derived text (utm_*) is compared form-decoded on both sides: the
observed value as the URL's query gave it, the rule's value read the same
way, so `utm_term equals running+shoes` holds for `?utm_term=running+shoes`.

Fail closed: a rule the catalog does not know, or an operator the rule does
not allow, is refused when the tree is compiled (`NotCompilable`), whether or
not a validator ran first; no test ever stands in for one it does not know.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from . import catalog, urls, useragent

TRUE, FALSE, UNKNOWN = "true", "false", "unknown"
SECOND = 1000
MEMO = "__memo__"   # facts key of the per-instant result cache of shared leaves


def to_ms(seconds) -> int:
    """Seconds as authored (int or float) -> integer milliseconds."""
    return int(round(float(seconds) * SECOND))


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class NotCompilable(ValueError):
    """A condition the evaluator does not know how to test: an unknown rule,
    or an operator its rule does not allow."""

    def __init__(self, rule, op, why: str):
        self.rule, self.op = rule, op
        super().__init__(f"{rule} {op}: {why}")


class Node:
    reads: frozenset

    def evaluate(self, facts: dict, now: int) -> tuple[bool, int | None]:
        raise NotImplementedError

    def trace(self, facts: dict, now: int, path: tuple = ()) -> list[dict]:
        raise NotImplementedError


class All(Node):
    """True when every child holds (empty: true). Children that can change
    only on events are evaluated first, so a false one ends the evaluation
    with "no time-based change possible"."""

    word = "all"

    def __init__(self, children: list[Node]):
        self.children = children
        self.order = sorted(children, key=lambda c: not c.static)
        self.reads = frozenset().union(*(c.reads for c in children)) if children else frozenset()
        self.static = all(c.static for c in children)

    def evaluate(self, facts, now):
        soonest = None
        for child in self.order:
            ok, nxt = child.evaluate(facts, now)
            if not ok:
                # Nothing can turn this group true before this child flips.
                return False, nxt
            if nxt is not None and (soonest is None or nxt < soonest):
                soonest = nxt
        return True, soonest

    def trace(self, facts, now, path=()):
        out = []
        for i, child in enumerate(self.children):
            out.extend(child.trace(facts, now, path + (self.word, i)))
        return out


class Any(All):
    """True when some child holds (empty: false)."""

    word = "any"

    def evaluate(self, facts, now):
        soonest = None
        for child in self.order:
            ok, nxt = child.evaluate(facts, now)
            if ok:
                # Nothing can turn this group false before this child flips.
                return True, nxt
            if nxt is not None and (soonest is None or nxt < soonest):
                soonest = nxt
        return False, soonest


class Condition(Node):
    """One {rule, op, value} leaf. Its test is specialised once, at compile
    time, for the rule's kind and operator."""

    def __init__(self, rule: str, op: str, value=None):
        self.rule, self.op, self.value = rule, op, value
        known = catalog.rule(rule)   # catalog rules and user.NAME (targeted messages)
        if known is None:
            raise NotCompilable(rule, op, "unknown rule")
        if op not in known.ops:
            raise NotCompilable(rule, op, f"not an operator of {rule} ({' | '.join(known.ops)})")
        self.kind = known.kind
        self.reads = frozenset((rule,))
        self.static = self.kind != "duration"
        self.values = _as_list(value) if op not in catalog.NO_VALUE_OPS else []
        self.negative = op in catalog.NEGATIVE_OPS
        kind = self.kind
        if kind in ("duration", "exit_duration"):
            self.ms = [to_ms(v) for v in self.values]
        elif kind == "count":
            self.nums = [float(v) for v in self.values]
        elif kind == "url":
            make = {"matches": urls.matches_matcher, "contains": urls.contains_matcher,
                    "not_contains": urls.contains_matcher}.get(op, urls.equals_matcher)
            self.matchers = [make(str(v)) for v in self.values]
        elif kind == "country":
            self.codes = [catalog.country_code(str(v)) or str(v).strip().casefold() for v in self.values]
        elif kind == "language":
            self.langs = [catalog.language_code(str(v)) for v in self.values]
        elif kind in ("text", "enum"):
            # A query-derived value (utm_*) is observed form-decoded; a rule
            # value is read the same way, so the URL form (`running+shoes`,
            # `running%20shoes`) and the decoded one match; `%2B` stays a plus.
            read = unquote_plus if rule in urls.UTM_KEYS else str
            self.texts = [read(str(v)).strip().casefold() for v in self.values]
        self.test = {"duration": self._test_duration, "exit_duration": self._test_exit,
                     "bool": self._test_bool, "presence": self._test_presence,
                     "count": self._test_count}.get(kind, self._test_present)

    def key(self) -> tuple:
        """Identical conditions share one compiled leaf (and one result per instant)."""
        return (self.rule, self.op, repr(self.value))

    # -- evaluation -----------------------------------------------------
    def evaluate(self, facts, now):
        memo = facts.get(MEMO)
        if memo is not None:
            hit = memo.get(self)
            if hit is None:
                result, nxt = self.test(facts, now)
                hit = memo[self] = (result is True, nxt)
            return hit
        result, nxt = self.test(facts, now)
        return result is True, nxt

    # test(facts, now) -> (True/False, or None for unknown; next time-based change)
    def _test_duration(self, facts, now):
        anchor = facts.get(self.rule)
        if anchor is None:
            if self.rule in catalog.NEVER_IS_LONG_AGO:   # never happened: infinitely long ago
                return self.op in ("greater", "is_not"), None
            return None, None
        return self._duration(now - anchor, anchor, now)

    def _test_exit(self, facts, now):
        raw = facts.get(self.rule)
        if raw is None or raw[0] != now:
            return None, None
        # A third member, the page's start, is set only by Engine.reactions:
        # "had the exit come later", the result changes as a duration would.
        return self._duration(raw[1], raw[2] if len(raw) > 2 else None, now)

    def _test_bool(self, facts, now):
        b = bool(facts.get(self.rule))
        op = self.op
        if op == "is_true":
            return b, None
        if op == "is_false":
            return not b, None
        hit = b in [bool(v) for v in self.values]
        return (not hit if op == "is_not" else hit), None

    def _test_presence(self, facts, now):
        raw = facts.get(self.rule)
        return (bool(raw) if self.op == "exists" else not raw), None

    def _test_count(self, facts, now):
        return self._compare(facts.get(self.rule) or 0, self.nums), None

    def _test_present(self, facts, now):
        raw = facts.get(self.rule)
        present = raw is not None and raw != ""
        op = self.op
        if op == "exists":
            return present, None
        if op == "not_exists":
            return not present, None
        if not present:
            return None, None
        if self.kind == "url":
            o = urls.parse(raw)
            hit = any(m(o) for m in self.matchers)
        else:
            hit = any(self._match(raw, i) for i in range(len(self.values)))
        return (not hit if self.negative else hit), None

    def _compare(self, n, nums) -> bool:
        op = self.op
        if op == "greater":
            return n > nums[0]
        if op == "less":
            return n < nums[0]
        hit = n in nums
        return not hit if op == "is_not" else hit

    def _duration(self, elapsed: int, anchor: int | None, now: int):
        op, ms = self.op, self.ms
        if op == "greater":
            ok = elapsed > ms[0]
            nxt = None if ok or anchor is None else anchor + ms[0] + 1
            return ok, nxt
        if op == "less":
            ok = elapsed < ms[0]
            return ok, (anchor + ms[0] if ok and anchor is not None else None)
        hit = any(v <= elapsed < v + SECOND for v in ms)
        nxt = None
        if anchor is not None:
            for v in ms:
                for b in (anchor + v, anchor + v + SECOND):
                    if b > now and (nxt is None or b < nxt):
                        nxt = b
        return (not hit if op == "is_not" else hit), nxt

    def _match(self, raw, i: int) -> bool:
        kind, op = self.kind, self.op
        if kind == "user_agent":
            v = str(self.values[i])
            if op in ("contains", "not_contains"):
                return useragent.ua_contains(raw["raw"], v, raw)
            return useragent.ua_equals(raw["raw"], v, raw)
        if kind == "country":
            observed = catalog.country_code(raw) or raw.strip().casefold()
            return observed == self.codes[i]
        if kind == "language":
            observed = catalog.language_code(raw)
            want = self.langs[i]
            return observed == want or observed.startswith(want + "-")
        text = raw.strip().casefold()
        if op in ("contains", "not_contains"):
            return self.texts[i] in text
        return text == self.texts[i]

    # -- tracing --------------------------------------------------------
    def observe(self, facts: dict, now: int):
        """The observed value, human-readable (seconds as floats)."""
        raw = facts.get(self.rule)
        if self.kind == "duration":
            return None if raw is None else (now - raw) / SECOND
        if self.kind == "exit_duration":
            return None if raw is None or raw[0] != now else raw[1] / SECOND
        if self.kind == "user_agent":
            return None if raw is None else raw["raw"]
        if self.kind in ("bool", "presence"):
            return bool(raw)
        if self.kind == "count":
            return raw or 0
        return raw if raw not in (None, "") else None

    def trace(self, facts, now, path=()):
        result, _ = self.test(facts, now)
        entry = {"path": list(path), "rule": self.rule, "op": self.op,
                 "expected": self.value, "observed": self.observe(facts, now),
                 "result": UNKNOWN if result is None else (TRUE if result else FALSE)}
        if self.kind == "user_agent" and facts.get(self.rule) is not None:
            entry["observed_as"] = useragent.describe(facts[self.rule]["raw"])
        elif self.rule in catalog.NEVER_IS_LONG_AGO and facts.get(self.rule) is None:
            entry["observed_as"] = "never (infinitely long ago)"
        return [entry]


TRIGRAM = 3
PREFIX_CAP = 16


class UrlIndex:
    """The positive URL conditions (`equals`, `contains`, `matches`) of one
    rule across a bundle, indexed by what they compare, so that a page view
    finds the few that can hold without testing the thousand that cannot.

    `candidates(raw)` is a superset of the indexed leaves that hold for the
    fact `raw` (every leaf that holds is in it; the engine evaluates them).
    `contains` needles go by their first three characters (looked up at every
    position of the normalised and the raw URL), `equals` values by the exact
    text they compare with, `matches` patterns by the start of their text
    before the first `*`."""

    def __init__(self, leaves):
        self.leaves = set()
        self.short: set = set()            # needles under three characters: always candidates
        self.trigrams: dict[str, set] = {}
        self.exact: dict[tuple, dict[str, set]] = {}     # shape -> text -> leaves
        self.prefix: dict[tuple, dict[int, dict[str, set]]] = {}   # shape -> length -> prefix -> leaves
        for leaf in leaves:
            if leaf.kind != "url" or leaf.negative or leaf.op not in ("equals", "contains", "matches"):
                continue
            self.leaves.add(leaf)
            for value in leaf.values:
                value = str(value)
                if leaf.op == "contains":
                    needle = value.strip().casefold()
                    if len(needle) < TRIGRAM:
                        self.short.add(leaf)
                    else:
                        self.trigrams.setdefault(needle[:TRIGRAM], set()).add(leaf)
                elif leaf.op == "equals":
                    shape, text = urls.equals_key(value)
                    self.exact.setdefault(shape, {}).setdefault(text, set()).add(leaf)
                else:
                    shape, lit = urls.matches_key(value)
                    lit = lit[:PREFIX_CAP]
                    self.prefix.setdefault(shape, {}).setdefault(len(lit), {}).setdefault(lit, set()).add(leaf)
        self.shapes = set(self.exact) | set(self.prefix)

    def candidates(self, raw) -> set:
        if raw is None or raw == "" or not self.leaves:
            return set()   # unknown: no positive URL condition holds
        if not isinstance(raw, str):
            return set(self.leaves)   # not a URL: let evaluation say what it says
        o = urls.parse(raw)
        out = set(self.short)
        trigrams = self.trigrams
        if trigrams:
            for text in (o.full, o.raw):
                for i in range(len(text) - TRIGRAM + 1):
                    hit = trigrams.get(text[i:i + TRIGRAM])
                    if hit is not None:
                        out |= hit
        for shape in self.shapes:
            target = urls.comparable(o, shape)
            hit = self.exact.get(shape, {}).get(target)
            if hit is not None:
                out |= hit
            for length, by_prefix in self.prefix.get(shape, {}).items():
                if len(target) >= length:
                    hit = by_prefix.get(target[:length])
                    if hit is not None:
                        out |= hit
        return out


def compile_rules(tree, shared: dict | None = None) -> Node:
    """Compile a validated rule tree (see bundle.py for validation).
    `shared` interns identical conditions across the messages of a bundle."""
    if tree is None:
        return All([])
    if isinstance(tree, list):
        return All([compile_rules(c, shared) for c in tree])
    if "all" in tree:
        return All([compile_rules(c, shared) for c in tree["all"]])
    if "any" in tree:
        return Any([compile_rules(c, shared) for c in tree["any"]])
    leaf = Condition(tree["rule"], tree["op"], tree.get("value"))
    if shared is None:
        return leaf
    return shared.setdefault(leaf.key(), leaf)


# -- partial evaluation: one rule's fact not known yet ----------------------

def residual_url_test(leaf: Condition) -> dict:
    """A URL leaf as data for the page (widget/decisions/reactions.mjs) to finish: each
    value prepared here, by the same code the engine uses (urls.py), so the
    page only computes the observed URL's parts."""
    cached = leaf.__dict__.get("_residual")
    if cached is not None:
        return cached
    tests = []
    for value in leaf.values:
        value = str(value)
        if leaf.op in ("contains", "not_contains"):
            tests.append(["contains", value.strip().casefold()])
        elif leaf.op == "matches":
            shape, pattern = urls.matches_shape(value)
            tests.append(["matches", list(shape), pattern])
        else:
            shape, text = urls.equals_key(value)
            tests.append(["equals", list(shape), text])
    leaf._residual = {"url": tests, "not": leaf.negative}   # the same object every time: read-only
    return leaf._residual


def partial(node: Node, facts: dict, now: int, unknown: str,
            still: frozenset = frozenset()) -> tuple[object, int | None]:
    """Evaluate `node` with the fact `unknown` (a URL rule, present but not
    known yet): True, False, or a residual tree ({"all": [...]}, {"any":
    [...]}, or a residual_url_test leaf) that holds exactly when the node
    holds. The instant is conservative: the earliest at which a time-based
    leaf anywhere in the node can change (None: none can), leaving out the
    rules in `still`, whose durations count from the instant asked about
    (the time on a page that starts then is 0 whenever that is)."""
    if isinstance(node, Condition):
        if node.rule in still:
            return node.evaluate(facts, now)[0], None
        if node.rule != unknown:
            return node.evaluate(facts, now)
        if node.op == "exists":
            return True, None
        if node.op == "not_exists":
            return False, None
        return residual_url_test(node), None
    decisive = node.word == "any"      # the child value that decides the group
    parts = []
    for child in node.order:           # the ones only events change first
        value, nxt = partial(child, facts, now, unknown, still)
        if value is decisive and nxt is None:
            return decisive, None      # decided, and time alone cannot undo it
        parts.append((value, nxt))
    soonest = min((nxt for _, nxt in parts if nxt is not None), default=None)
    hits = [nxt for value, nxt in parts if value is decisive]
    if hits:
        # Decided by a child; it can only change when one of the deciding children does.
        return decisive, (None if None in hits else min(hits))
    rest = [value for value, _ in parts if not isinstance(value, bool)]
    if not rest:
        return not decisive, soonest
    return (rest[0] if len(rest) == 1 else {node.word: rest}), soonest


def residual_holds(when, url: str) -> bool:
    """Finish a residual of `partial` with the URL now known: the reference
    for widget/decisions/reactions.mjs, which does the same in the page (e2e checks
    that both agree)."""
    if isinstance(when, bool):
        return when
    if "all" in when:
        return all(residual_holds(w, url) for w in when["all"])
    if "any" in when:
        return any(residual_holds(w, url) for w in when["any"])
    o = urls.parse(url)
    hit = False
    for test in when["url"]:
        if test[0] == "contains":
            hit = test[1] in o.full or test[1] in o.raw
        elif test[0] == "equals":
            hit = urls.comparable(o, tuple(test[1])) == test[2]
        else:
            hit = urls.wildcard_holds(urls.comparable(o, tuple(test[1])), test[2])
        if hit:
            break
    return not hit if when["not"] else hit


def watched(node: Node, facts: dict, now: int) -> tuple[bool, int | None, frozenset, Node | None]:
    """Evaluate a message's rules and say what can change the result: when a
    top-level `all` fails on a member that only events can change (the
    blocker), nothing else matters until that member's facts change, and
    until the blocker itself holds."""
    if isinstance(node, All) and not isinstance(node, Any):
        soonest = None
        for child in node.order:
            ok, nxt = child.evaluate(facts, now)
            if not ok:
                if nxt is None:
                    return False, None, child.reads, child
                return False, nxt, node.reads, None
            if nxt is not None and (soonest is None or nxt < soonest):
                soonest = nxt
        return True, soonest, node.reads, None
    ok, nxt = node.evaluate(facts, now)
    return ok, nxt, node.reads, None


def facts_from_state(state: dict) -> tuple[dict, int]:
    """Language-neutral visitor state (the cases file) -> (facts, now).

    State keys are rule ids; durations are elapsed milliseconds; user_agent
    is the raw string; `platform` defaults to the UA's; absent = unknown."""
    now = 0
    facts: dict = {}
    for rule_id, value in state.items():
        kind = catalog.RULES[rule_id].kind if rule_id in catalog.RULES else None
        if value is None:
            continue
        if kind == "duration":
            facts[rule_id] = now - int(value)
        elif kind == "exit_duration":
            facts[rule_id] = (now, int(value))
        elif kind == "user_agent":
            facts[rule_id] = dict(useragent.parse(value), raw=value)
        else:
            facts[rule_id] = value
    if "platform" not in state and "user_agent" in facts:
        facts["platform"] = facts["user_agent"]["platform"]
    return facts, now

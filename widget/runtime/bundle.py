"""The bundle payload model: parse and validate an authoring dict.

Validation collects every problem rather than stopping at the first, each as
a Problem(path, message, expected) whose path points into the authoring
document, e.g. ("messages", 0, "rules", "all", 1, "op"); the CLI maps paths to
file:line. `parse` raises BundleInvalid(problems) or returns a Bundle whose
messages carry their compiled rule trees (compiled once, here).

Extending the format (issue 4: content, delivery policy): register a field in
MESSAGE_FIELDS with a checker; its normalised value lands in
`Message.policy[name]`, where the delivery gates (policy.GATES) read it.
`content` stays opaque: it is checked to be a mapping and passed through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import catalog, conditions, experiments, zones
from . import content as content_mod
from . import policy as policy_mod

LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*\Z")
ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")


@dataclass(frozen=True)
class Problem:
    path: tuple
    message: str
    expected: str = ""

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path) or "(document)"
        tail = f" (expected {self.expected})" if self.expected else ""
        return f"{where}: {self.message}{tail}"


class BundleInvalid(ValueError):
    """The payload does not follow the authoring format; `.problems` lists all."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s): " + "; ".join(map(str, self.problems[:5])))


@dataclass
class Message:
    id: str
    type: str
    widget: str | None
    team: str
    audience: str
    once_per_user: bool
    delay_ms: int
    priority: int
    content: dict
    rules: object
    order: int
    node: conditions.Node = None
    policy: dict = field(default_factory=dict)
    experiment: experiments.Experiment | None = None   # variants / holdout (experiments.py)

    @property
    def shows(self) -> bool:
        """Shown in the widget (proactive, targeted) rather than emailed."""
        return self.type != "email"


@dataclass
class Bundle:
    site: str
    version: int | None
    widgets: list
    messages: list
    raw: dict
    settings: policy_mod.Settings = None   # team hours, delivery settings, dates: compiled with the bundle


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Checker:
    def __init__(self):
        self.problems: list[Problem] = []

    def add(self, path, message, expected=""):
        self.problems.append(Problem(tuple(path), message, expected))


# -- message fields ----------------------------------------------------------
# name -> (checker(value, path, chk) -> normalised value, default(message_dict) -> value)

def _choice(values):
    def check(v, path, chk):
        if v not in values:
            chk.add(path, f"unknown value {v!r}", " | ".join(values))
        return v
    return check


def _check_bool(v, path, chk):
    if not isinstance(v, bool):
        chk.add(path, f"{v!r} is not true/false", "true or false")
    return bool(v)


def _check_seconds(v, path, chk):
    if not _is_number(v) or v < 0:
        chk.add(path, f"{v!r} is not a number of seconds", "a number ≥ 0")
        return 0
    return conditions.to_ms(v)


def _check_priority(v, path, chk):
    if not isinstance(v, int) or isinstance(v, bool):
        chk.add(path, f"{v!r} is not an integer", "an integer (higher wins)")
        return 0
    return v


def _check_content(v, path, chk):
    """Checked and compiled by content.py (markup, URLs, variants)."""
    return content_mod.check(v, path, chk.add)  # reports a non-mapping itself


def _check_widget(v, path, chk):
    if not isinstance(v, str):
        chk.add(path, f"{v!r} is not a widget id", "a widget id from `widgets`")
    return v


def _check_variants(v, path, chk):
    return experiments.check_variants(v, path, chk, _check_content, ID_PATTERN)


def _default_audience(m):
    return "visitors" if m.get("type", "proactive") == "proactive" else "users"


MESSAGE_FIELDS = {
    "id": (None, None),   # checked specially
    "type": (_choice(catalog.MESSAGE_TYPES), lambda m: "proactive"),
    "widget": (_check_widget, lambda m: None),
    "team": (_choice(catalog.TEAM_VALUES), lambda m: "any"),
    "audience": (_choice(catalog.AUDIENCE_VALUES), _default_audience),
    "once_per_user": (_check_bool, lambda m: m.get("type") == "email"),
    "delay": (_check_seconds, lambda m: 0),
    "priority": (_check_priority, lambda m: 0),
    "enabled": (_check_bool, lambda m: True),   # false: paused, never delivered (policy's `enabled` gate)
    "content": (_check_content, lambda m: content_mod.check({})),
    # delivery policy (policy.py); values land in Message.policy
    "caps": (policy_mod.check_caps, lambda m: {}),
    "dismissed_for": (policy_mod.check_seconds, lambda m: None),
    "start": (policy_mod.check_date, lambda m: None),
    "end": (policy_mod.check_date, lambda m: None),
    # experiments (experiments.py): values land in Message.policy, compiled into Message.experiment
    "variants": (_check_variants, lambda m: []),
    "holdout": (experiments.check_holdout, lambda m: 0),
    "experiment": (experiments.check_salt, lambda m: None),
    "rules": (None, None),  # checked specially
}
CORE_FIELDS = {"id", "type", "widget", "team", "audience", "once_per_user", "delay", "priority", "content", "rules"}
TOP_LEVEL_FIELDS = {"site", "widgets", "messages", "version", "issued_at", "expires_at", "$schema", "name", "description",
                    "team", "delivery", "tzdata", "boot"}


# -- rules --------------------------------------------------------------------

def _check_value(rule: catalog.Rule, op: str, node: dict, path: tuple, chk: _Checker):
    kind = catalog.KINDS[rule.kind]
    has_value = "value" in node and node["value"] is not None
    if op in catalog.NO_VALUE_OPS:
        if has_value:
            chk.add(path + ("value",), f"`{op}` takes no value", "no value")
        return
    if not has_value:
        chk.add(path + ("value",), f"`{rule.id} {op}` needs a value", _expected(rule, op))
        return
    value = node["value"]
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list):
        if op in ("greater", "less"):
            chk.add(path + ("value",), f"`{op}` takes one value, not a list", _expected(rule, op))
            return
        if not value:
            chk.add(path + ("value",), "empty list", _expected(rule, op))
            return
    for i, item in enumerate(items):
        ipath = path + ("value",) + ((i,) if isinstance(value, list) else ())
        if kind.value in ("seconds", "count"):
            if not _is_number(item) or item < 0:
                chk.add(ipath, f"{item!r} is not a number", _expected(rule, op))
            elif kind.value == "count" and item != int(item) and op in ("equals", "is_not"):
                chk.add(ipath, f"{item!r} is not a whole number", _expected(rule, op))
        elif kind.value == "bool":
            if not isinstance(item, bool):
                chk.add(ipath, f"{item!r} is not true/false", "true or false")
        elif kind.value == "enum":
            if not isinstance(item, str) or item.strip().casefold() not in rule.choices:
                chk.add(ipath, f"{item!r} is not allowed", " | ".join(rule.choices))
        else:
            if not isinstance(item, str) or not item.strip():
                chk.add(ipath, f"{item!r} is not a non-empty text", _expected(rule, op))
            elif rule.kind == "country" and catalog.country_code(item) is None:
                chk.add(ipath, f"unknown country {item!r}", "an ISO 3166 code or English country name")
            elif rule.kind == "language" and not LANGUAGE_TAG.match(catalog.language_code(item)):
                # `Deutsch`, `Klingon`: neither a language tag nor an English
                # name the catalog knows; it would never match anyone.
                chk.add(ipath, f"unknown language {item!r}", "a language code (de, pt-BR) or English name (German)")


def _expected(rule: catalog.Rule, op: str) -> str:
    v = catalog.KINDS[rule.kind].value
    return {"seconds": "seconds (a number ≥ 0)", "count": "a whole number ≥ 0", "bool": "true or false",
            "enum": " | ".join(rule.choices)}.get(v, "text or a list of texts")


def check_rules(tree, path: tuple, chk: _Checker) -> None:
    """Check a rule tree: a condition, {all: [...]}, {any: [...]}, or a list."""
    if isinstance(tree, list):
        for i, child in enumerate(tree):
            check_rules(child, path + (i,), chk)
        return
    if not isinstance(tree, dict):
        chk.add(path, f"{tree!r} is not a condition or group", "{rule, op, value}, {all: [...]} or {any: [...]}")
        return
    groups = [k for k in ("all", "any") if k in tree]
    if groups:
        if len(tree) != 1:
            chk.add(path, "a group has exactly one key, `all` or `any`", "{all: [...]} or {any: [...]}")
        key = groups[0]
        if not isinstance(tree[key], list):
            chk.add(path + (key,), "a group holds a list", "a list of conditions or groups")
            return
        if key == "any" and not tree[key]:
            chk.add(path + (key,), "an empty `any` can never hold", "at least one condition")
        for i, child in enumerate(tree[key]):
            check_rules(child, path + (key, i), chk)
        return
    for key in tree:
        if key not in ("rule", "op", "value"):
            chk.add(path + (key,), f"unknown key {key!r}", "rule, op, value")
    rule_id = tree.get("rule")
    rule = catalog.rule(rule_id)
    if rule is None:
        chk.add(path + ("rule",), f"unknown rule {rule_id!r}", "one of " + ", ".join(catalog.RULES))
        return
    op = tree.get("op")
    if op is None:
        chk.add(path + ("op",), f"`{rule.id}` needs an `op`", " | ".join(rule.ops))
        return
    if op not in rule.ops:
        chk.add(path + ("op",), f"operator {op!r} is not allowed for {rule.id}", " | ".join(rule.ops))
        return
    _check_value(rule, op, tree, path, chk)


def validate(payload) -> list[Problem]:
    """Every problem of an authoring dict (empty list: valid). Checks only:
    nothing is compiled (`parse` compiles, once)."""
    return _parse(payload, compile_rules=False)[1]


def parse(payload) -> Bundle:
    """Validate and compile, once: the messages' rule trees and the delivery
    settings the engine and its gates share. Raises BundleInvalid with every
    problem."""
    bundle, problems = _parse(payload)
    if problems:
        raise BundleInvalid(problems)
    return bundle


def _parse(payload, compile_rules: bool = True):
    chk = _Checker()
    if not isinstance(payload, dict):
        chk.add((), "the document is not a mapping", "site, widgets, messages")
        return None, chk.problems
    for key in payload:
        if key not in TOP_LEVEL_FIELDS:
            chk.add((key,), f"unknown field {key!r}", ", ".join(sorted(TOP_LEVEL_FIELDS)))
    if "tzdata" in payload:
        zones.check_carried(payload["tzdata"], ("tzdata",), chk)
    if "team" in payload:
        policy_mod.check_team(payload["team"], ("team",), chk, zones.carried(payload.get("tzdata")))
    if "delivery" in payload:
        policy_mod.check_delivery(payload["delivery"], ("delivery",), chk)
    site = payload.get("site")
    if not isinstance(site, str) or not site:
        chk.add(("site",), "missing or not a text", "the site id")
    version = payload.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        chk.add(("version",), f"{version!r} is not an integer", "an integer")
    widgets = payload.get("widgets", [{"id": "main"}])
    widget_ids = []
    if not isinstance(widgets, list):
        chk.add(("widgets",), "not a list", "[{id: main}, ...]")
        widgets = []
    for i, w in enumerate(widgets):
        content_mod.check_widget(w, ("widgets", i), chk.add)   # colour, position, launcher, title
        wid = w.get("id") if isinstance(w, dict) else None
        if not isinstance(wid, str) or not ID_PATTERN.match(wid):
            chk.add(("widgets", i, "id"), f"bad widget id {wid!r}", "[a-z0-9-]")
        elif wid in widget_ids:
            chk.add(("widgets", i, "id"), f"duplicate widget id {wid!r}", "unique ids")
        else:
            widget_ids.append(wid)
    raw_messages = payload.get("messages")
    if not isinstance(raw_messages, list):
        chk.add(("messages",), "missing or not a list", "a list of messages")
        raw_messages = []
    messages, seen, shared = [], {}, {}
    for i, m in enumerate(raw_messages):
        path = ("messages", i)
        if not isinstance(m, dict):
            chk.add(path, "a message is a mapping", "id, type, rules, ...")
            continue
        before = len(chk.problems)
        mid = m.get("id")
        if not isinstance(mid, str) or not ID_PATTERN.match(mid):
            chk.add(path + ("id",), f"bad message id {mid!r}", "lower-case letters, digits and '-' ([a-z0-9-])")
        elif mid in seen:
            chk.add(path + ("id",), f"duplicate message id {mid!r} (first at messages.{seen[mid]})", "unique ids")
        else:
            seen[mid] = i
        values = {}
        for key in m:
            if key not in MESSAGE_FIELDS:
                chk.add(path + (key,), f"unknown field {key!r}", ", ".join(MESSAGE_FIELDS))
        for key, (checker, default) in MESSAGE_FIELDS.items():
            if checker is None:
                continue
            values[key] = checker(m[key], path + (key,), chk) if key in m else default(m)
        if values["widget"] is not None and widget_ids and values["widget"] not in widget_ids and isinstance(values["widget"], str):
            chk.add(path + ("widget",), f"no widget {values['widget']!r}", " | ".join(widget_ids))
        policy_mod.check_dates(m, path, chk)
        if "variants" in m and "content" in m:
            chk.add(path + ("content",), "a message with variants takes its content from them", "content in each variant")
        if "rules" in m:
            check_rules(m["rules"], path + ("rules",), chk)
        elif values["type"] == "proactive":
            chk.add(path + ("rules",), "a proactive message needs rules", "a condition, a group or a list")
        if len(chk.problems) == before and compile_rules:
            messages.append(Message(
                id=mid, type=values["type"], widget=values["widget"], team=values["team"],
                audience=values["audience"], once_per_user=values["once_per_user"],
                delay_ms=values["delay"], priority=values["priority"], content=values["content"],
                rules=m.get("rules"), order=i, node=conditions.compile_rules(m.get("rules"), shared),
                policy={k: v for k, v in values.items() if k not in CORE_FIELDS},
                experiment=experiments.compile_experiment(site, mid, values["variants"], values["holdout"],
                                                          values["experiment"], values["content"])))
    if chk.problems or not compile_rules:
        return None, chk.problems
    return Bundle(site=site, version=version, widgets=widget_ids, messages=messages, raw=payload,
                  settings=policy_mod.Settings(payload)), []

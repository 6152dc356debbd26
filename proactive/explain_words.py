"""A decision of the engine in words: each condition with what it observed,
each closed gate, and why a message did not show. The QA kit's failure
messages (proactive/pytest_plugin.py), `proactive simulate --explain` and the
studio's simulation all word decisions here. Pure Python, no pytest, no
widget import at module level: the studio runs it in the page too."""

from __future__ import annotations

import json

UTM_FIELDS = ("campaign", "content", "medium", "source", "term")

# Why a condition's value is unknown, in words (the engine traces "unknown").
UNKNOWN_BECAUSE = {
    "country": "no geo", "city": "no geo",
    "referrer_url": "no referrer",
    "source_url": "no landing page",
    "page_url": "no page view", "time_on_page": "no page view",
    "time_this_visit": "no visit",
    "time_before_exit_intent": "no exit intent at this instant",
    "time_without_agent_reply": "no unanswered visitor message",
    "time_since_widget_closed": "the widget is open or was never closed",
    "time_since_last_invitation": "no invitation yet",
    "browser_language": "no browser language",
    "user_agent": "no user agent", "platform": "platform unknown",
    "rating": "no rating",
    **{f"utm_{f}": f"no utm_{f} in the landing URL" for f in UTM_FIELDS},
}


def _seconds(value: float) -> str:
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _duration(value) -> str:
    """Seconds as a test writes them: 60 -> "60 s", 0.5 -> "0.5 s"."""
    return f"{value:g} s"


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def describe_condition(c: dict) -> str:
    """`time_on_page greater 40 → false (observed 12.0 s)`."""
    head = f"{c.get('rule')} {c.get('op')}"
    if c.get("expected") is not None:
        head += f" {_value(c['expected'])}"
    result = c.get("result")
    observed = c.get("observed")
    if result == "unknown" and observed is None:
        detail = UNKNOWN_BECAUSE.get(c.get("rule"), "unknown")
    elif str(c.get("rule", "")).startswith("time_") and isinstance(observed, (int, float)) \
            and not isinstance(observed, bool):
        detail = f"observed {_seconds(observed)} s"
    elif c.get("observed_as"):
        detail = f"observed {_value(c['observed_as'])}"
    else:
        detail = f"observed {_value(observed) if observed is not None else 'nothing'}"
    return f"{head} → {result} ({detail})"


def describe_gate(name: str, gate: dict) -> str:
    """A closed delivery gate in words: the engine's own (its trace carries
    the words; an older trace's gate is worded by the same gate table)."""
    from widget.runtime import policy   # lazily: importing the plugin stays free

    return policy.describe(name, gate)


def why_not(message_id: str, entry: dict) -> str:
    """The short reason a message is not (or not yet) shown, from its explain entry."""
    result = entry.get("result")
    gates = entry.get("gates") or {}
    closed = [describe_gate(n, gates[n]) for n in entry.get("blocked_by") or [] if n in gates]
    if result == "rules_false":
        failing = [describe_condition(c) for c in entry.get("conditions") or [] if c.get("result") != "true"]
        return "; ".join(failing + closed) or "its rules do not hold"
    if result == "blocked":
        return "its rules hold, but " + "; ".join(closed)
    if result == "pending":
        return "its rules hold; it is delayed" + (f" (due at {entry['due']} ms)" if "due" in entry else "")
    if result == "ready":
        return "its rules hold and nothing blocks it, but the widget did not show it"
    if result == "delivered":
        return "the engine delivered it, but the page did not render it"
    return f"result {result}"


def decisive(entry: dict) -> tuple[dict, str | None]:
    """The trace of the instant that decided a message, and that instant in
    words (None: the live trace is the one): a delivered message's state just
    before its show (`decided`: its own show not yet counted), an exit-intent
    message not shown at the exit's instant (`at_exit`: at any later instant
    the exit is unknown). docs/rules.md, "Explaining a decision"."""
    if entry.get("result") == "delivered" and isinstance(entry.get("decided"), dict):
        return entry["decided"], "its show"
    if entry.get("result") != "delivered" and isinstance(entry.get("at_exit"), dict):
        return entry["at_exit"], "the exit intent"
    return entry, None


def describe_entry(entry: dict, indent: str = "    ") -> list[str]:
    lines = [indent + describe_condition(c) for c in entry.get("conditions") or []]
    if not lines:
        lines.append(indent + "(no conditions: always true)")
    gates = entry.get("gates") or {}
    if gates:
        lines.append(indent + "gates: " + ", ".join(
            f"{n} {'ok' if g.get('ok') else 'CLOSED'}" for n, g in gates.items()))
    return lines

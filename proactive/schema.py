"""The JSON Schema of the messages format, generated from the engine's rule
catalog (widget/runtime/catalog.py) and its field lists (bundle.py), so
editors autocomplete rule names, offer only the operators each rule allows,
and flag a wrong value type while typing. `proactive schema` prints it.

The schema is a helpful first line (draft-07, what yaml-language-server and
VS Code understand best); `proactive validate` is the authority: it runs the
engine's own validator and also checks what a schema cannot say (unknown
countries, duplicate ids, widget references, time zones).
"""

from __future__ import annotations

import json

SCHEMA_ID = "https://proactive.invalid/schema/messages.schema.json"


def _value_schema(rule, op: str) -> dict | None:
    """What `value` takes for `rule` with operator `op` (None: no value)."""
    from widget.runtime import catalog

    if op in catalog.NO_VALUE_OPS:
        return None
    kind = catalog.KINDS[rule.kind].value
    if kind == "seconds":
        one = {"type": "number", "minimum": 0, "description": "seconds"}
    elif kind == "count":
        one = {"type": "integer", "minimum": 0}
    elif kind == "bool":
        one = {"type": "boolean"}
    elif kind == "enum":
        one = {"type": "string", "enum": list(rule.choices)}
    else:
        one = {"type": "string", "minLength": 1}
    if op in ("greater", "less") or kind == "bool":
        return one
    return {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}],
            "description": "one value, or a list: any of them (is_not: none of them)"}


def _condition(rule) -> dict:
    """One rule's condition: its operators, and the value each one takes."""
    from widget.runtime import catalog

    no_value = [op for op in rule.ops if op in catalog.NO_VALUE_OPS]
    branches = []
    by_value: dict[str, list[str]] = {}
    for op in rule.ops:
        schema = _value_schema(rule, op)
        if schema is not None:
            by_value.setdefault(json.dumps(schema, sort_keys=True), []).append(op)
    for value_json, ops in by_value.items():
        branches.append({"if": {"properties": {"op": {"enum": ops}}, "required": ["op"]},
                         "then": {"properties": {"value": json.loads(value_json)}, "required": ["value"]}})
    if no_value:
        branches.append({"if": {"properties": {"op": {"enum": no_value}}, "required": ["op"]},
                         "then": {"not": {"required": ["value"]}}})
    return {
        "if": {"properties": {"rule": {"const": rule.id}}, "required": ["rule"]},
        "then": {"properties": {"op": {"enum": list(rule.ops)}}, "allOf": branches},
    }


def _rules_definitions() -> dict:
    from widget.runtime import catalog

    rule_ids = list(catalog.RULES)
    condition = {
        "type": "object",
        "title": "A condition",
        "description": "{rule, op, value}: see docs/rules.md for every rule's exact semantics.",
        "properties": {
            "rule": {
                "anyOf": [
                    {"enum": rule_ids, "markdownEnumDescriptions": [f"**{r.title}** — {r.doc}" for r in catalog.RULES.values()],
                     "enumDescriptions": [f"{r.title}: {r.doc}" for r in catalog.RULES.values()]},
                    {"type": "string", "pattern": r"^" + catalog.USER_PREFIX.replace(".", r"\.") + r"[A-Za-z0-9_-]{1,64}$",
                     "description": "user.NAME: an attribute from proactive('identify', {...}), compared as text"},
                ],
            },
            "op": {"enum": list(catalog.OPERATORS)},
            "value": {},
        },
        "required": ["rule", "op"],
        "additionalProperties": False,
        "allOf": [_condition(r) for r in catalog.RULES.values()],
        "defaultSnippets": [{"label": r.id, "description": r.title, "body": r.example} for r in catalog.RULES.values()],
    }
    group = {
        "oneOf": [
            {"type": "object", "title": "all of", "properties": {"all": {"type": "array", "items": {"$ref": "#/definitions/node"}}},
             "required": ["all"], "additionalProperties": False},
            {"type": "object", "title": "any of", "properties": {"any": {"type": "array", "items": {"$ref": "#/definitions/node"}, "minItems": 1}},
             "required": ["any"], "additionalProperties": False},
        ]
    }
    return {
        "condition": condition,
        "group": group,
        "node": {"anyOf": [{"$ref": "#/definitions/group"}, {"$ref": "#/definitions/condition"}]},
        "rules": {
            "description": "A condition, {all: [...]}, {any: [...]}, or a list (= all of them).",
            "anyOf": [{"$ref": "#/definitions/node"}, {"type": "array", "items": {"$ref": "#/definitions/node"}}],
        },
    }


# Known message fields beyond the core ones: what a schema can say about them.
_MESSAGE_FIELD_SCHEMAS = {
    "caps": {"type": "object", "description": "frequency caps",
             "properties": {k: {"type": "integer", "minimum": 1} for k in ("per_visit", "per_day", "lifetime")},
             "additionalProperties": False},
    "dismissed_for": {"type": "number", "minimum": 0, "description": "seconds before a dismissed message may show again"},
    "start": {"type": "string", "description": "first day or instant (ISO 8601) the message may show"},
    "end": {"type": "string", "description": "last day or instant (ISO 8601) the message may show"},
    "variants": {"type": "array", "minItems": 1, "description": "an experiment's arms; the message's content comes from them",
                 "items": {"type": "object", "required": ["id", "content"], "additionalProperties": False,
                           "properties": {"id": {"type": "string", "not": {"const": "holdout"}},
                                          "weight": {"type": "number", "exclusiveMinimum": 0, "default": 1,
                                                     "description": "relative to the other variants"},
                                          "content": {"$ref": "#/definitions/content"}}}},
    "holdout": {"type": "number", "minimum": 0, "maximum": 50,
                "description": "% of eligible visitors who see nothing (the control group)"},
    "experiment": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$",
                   "description": "the experiment's salt; set by `proactive sign` when absent, change it to start over"},
}


def _content() -> dict:
    button = {"type": "object", "properties": {"label": {"type": "string"}, "action": {"enum": ["chat", "url", "reply"]},
                                               "url": {"type": "string"}, "id": {"type": "string"}}}
    single = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "short text; **bold**, *italic*, [links](https://…), {{placeholder|fallback}} (docs/authoring.md)"},
            "image": {"anyOf": [{"type": "string"}, {"type": "object"}]},
            "buttons": {"type": "array", "items": button},
            "links": {"type": "array", "items": {"type": "object"}},
            "attachments": {"type": "array", "items": {"type": "object"}},
            "sender": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        },
    }
    return {"description": "the message; or per language: {en: {...}, de: {...}}",
            "anyOf": [single, {"type": "object", "additionalProperties": single}]}


def messages_schema() -> dict:
    from widget.runtime import bundle, catalog

    id_pattern = "^" + bundle.ID_PATTERN.pattern.replace(r"\Z", "") + "$"
    core = {
        "id": {"type": "string", "pattern": id_pattern, "description": "unique; lower-case letters, digits, '-'"},
        "type": {"enum": list(catalog.MESSAGE_TYPES), "default": "proactive"},
        "widget": {"type": "string", "description": "a widget id from `widgets`"},
        "team": {"enum": list(catalog.TEAM_VALUES), "default": "any", "description": "show while the team is ..."},
        "audience": {"enum": list(catalog.AUDIENCE_VALUES)},
        "once_per_user": {"type": "boolean"},
        "delay": {"type": "number", "minimum": 0, "description": "seconds between the rules holding and showing"},
        "priority": {"type": "integer", "description": "higher wins when several messages could show"},
        "enabled": {"type": "boolean", "default": True,
                    "description": "false pauses the message: never shown nor emailed (the studio's Pause)"},
        "content": _content(),
        "rules": {"$ref": "#/definitions/rules"},
    }
    properties = {}
    for name in bundle.MESSAGE_FIELDS:
        properties[name] = core.get(name) or _MESSAGE_FIELD_SCHEMAS.get(name) or {"description": f"{name} (see docs/authoring.md)"}
    message = {"type": "object", "properties": properties, "required": ["id"], "additionalProperties": False,
               "defaultSnippets": [{"label": "proactive message", "body": {
                   "id": "${1:pricing-help}", "type": "proactive", "content": {"text": "${2:Questions about plans?}"},
                   "rules": [{"rule": "time_on_page", "op": "greater", "value": 40}]}}]}
    top_known = {
        "$schema": {"type": "string"},
        "site": {"type": "string", "minLength": 1, "description": "the site id (the tag's data-site, when set, must match)"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "version": {"type": "integer", "minimum": 1, "description": "set by `proactive sign` (last published + 1)"},
        "issued_at": {"type": "string", "description": "set by `proactive sign`"},
        "expires_at": {"type": "string", "description": "set by `proactive sign --expires`"},
        "boot": {"type": "object", "description": "set by `proactive sign`: when a message can show at the earliest, per page"},
        "widgets": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string", "pattern": id_pattern}},
                                                "required": ["id"]}},
        "messages": {"type": "array", "items": {"$ref": "#/definitions/message"}},
        "team": {"type": "object", "description": "business hours: {timezone, hours: {mon-fri: '09:00-18:00'}, closed_on}",
                 "properties": {"timezone": {"type": "string"}, "hours": {"type": "object", "additionalProperties": {"type": "string"}},
                                "closed_on": {"type": "array", "items": {"type": "string"}}}},
        "delivery": {"type": "object", "description": "{min_gap, dismissed_for} in seconds",
                     "additionalProperties": {"type": "number", "minimum": 0}},
    }
    top = {name: top_known.get(name, {}) for name in sorted(bundle.TOP_LEVEL_FIELDS)}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "Proactive auto messages",
        "description": "Generated from the rule catalog by `proactive schema`; `proactive validate` is the authority.",
        "type": "object",
        "properties": top,
        "required": ["site", "messages"],
        "additionalProperties": False,
        "definitions": {"message": message, "content": _content(), **_rules_definitions()},
    }


def dumps() -> str:
    return json.dumps(messages_schema(), indent=2, ensure_ascii=False) + "\n"

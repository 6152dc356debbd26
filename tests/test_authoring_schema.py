"""The JSON Schema generated from the rule catalog agrees with the engine's
validator on every rule's example and on each rule's operator list."""

from __future__ import annotations

import pytest

from proactive import schema
from widget.runtime import bundle, catalog

jsonschema = pytest.importorskip("jsonschema")
VALIDATOR = jsonschema.Draft7Validator(schema.messages_schema())


def doc_with(condition) -> dict:
    return {"site": "acme", "widgets": [{"id": "main"}],
            "messages": [{"id": "m", "type": "proactive", "content": {"text": "hi"}, "rules": [condition]}]}


@pytest.mark.parametrize("rule_id", list(catalog.RULES))
def test_every_rule_example_is_valid_for_both(rule_id):
    doc = doc_with(catalog.RULES[rule_id].example)
    assert bundle.validate(doc) == []
    assert not list(VALIDATOR.iter_errors(doc))


@pytest.mark.parametrize("rule_id", list(catalog.RULES))
def test_an_operator_the_rule_does_not_allow_is_flagged_by_both(rule_id):
    rule = catalog.RULES[rule_id]
    op = next(o for o in catalog.OPERATORS if o not in rule.ops)
    condition = {"rule": rule_id, "op": op}
    if op not in catalog.NO_VALUE_OPS:
        condition["value"] = 1
    assert bundle.validate(doc_with(condition))
    assert list(VALIDATOR.iter_errors(doc_with(condition)))


def test_the_schema_knows_every_field_the_validator_knows():
    s = schema.messages_schema()
    assert set(s["properties"]) == set(bundle.TOP_LEVEL_FIELDS)
    assert set(s["definitions"]["message"]["properties"]) == set(bundle.MESSAGE_FIELDS)
    assert s["definitions"]["condition"]["properties"]["rule"]["anyOf"][0]["enum"] == list(catalog.RULES)


@pytest.mark.parametrize("condition", [
    {"rule": "time_on_page", "op": "greater", "value": "forty"},
    {"rule": "time_on_page", "op": "greater", "value": [1, 2]},
    {"rule": "chat_history", "op": "exists", "value": True},
    {"rule": "platform", "op": "equals", "value": "tablet"},
    {"rule": "moon_phase", "op": "equals", "value": "full"},
    {"rule": "visits", "op": "greater"},
])
def test_wrong_values_are_flagged_by_both(condition):
    assert bundle.validate(doc_with(condition))
    assert list(VALIDATOR.iter_errors(doc_with(condition)))

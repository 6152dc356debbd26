"""The studio's save (proactive/studio.py) with texts that only a flow
collection trips over: a message text written inside {…} or […] must read
back as written ("Questions about plans?", "Hello, world"), and a file's
`[{id: main}]` stays as written when it is not edited."""

from __future__ import annotations

import pytest

from proactive import studio

FILE = """\
site: acme
widgets: [{id: main}]
messages:
  - id: plans   # the one we test
    rules: [{rule: page_url, op: contains, value: pricing}]
    content: {text: "Questions about plans?"}
"""

TRICKY = ["Questions about plans?", "Hello, world", "Plans: compare them", "[beta] plans", "#1 in plans",
          "? any", "a {b} c", "- 20 %", "ok"]


def saved(tmp_path, edit, origins) -> dict:
    """FILE read by the studio, `edit`ed, saved (SaveRefused when it would not read back), read again."""
    path = tmp_path / "m.yaml"
    path.write_text(FILE)
    state = studio.read(path)
    edit(state["document"])
    studio.save(path, state["document"], state["etag"], origins)
    return studio.read(path)["document"]


@pytest.mark.parametrize("text", TRICKY)
def test_a_new_message_text_reads_back(tmp_path, text):
    doc = saved(tmp_path, lambda d: d["messages"].append({"id": "new", "rules": [], "content": {"text": text}}), [0, None])
    assert doc["messages"][1]["content"]["text"] == text


@pytest.mark.parametrize("text", TRICKY)
def test_an_edit_inside_a_flow_collection_reads_back(tmp_path, text):
    def edit(d):
        d["messages"][0]["content"]["text"] = d["messages"][0]["rules"][0]["value"] = text

    plans = saved(tmp_path, edit, [0])["messages"][0]
    assert plans["content"]["text"] == text and plans["rules"][0]["value"] == text


def test_content_moved_into_experiment_variants_reads_back(tmp_path):
    """The studio's "Add A/B variant": the message's content becomes its
    first variant's (a new node, its text without the file's quotes)."""
    path = tmp_path / "m.yaml"
    path.write_text(FILE)
    state = studio.read(path)
    doc = state["document"]
    plans = doc["messages"][0]
    plans["variants"] = [{"id": "ask", "weight": 1, "content": plans.pop("content")},
                         {"id": "hand", "weight": 1, "content": {"text": "Need a hand, choosing?"}}]
    plans["holdout"] = 10
    studio.save(path, doc, state["etag"], [0])
    assert studio.read(path)["document"] == doc
    assert path.read_text().startswith("site: acme\nwidgets: [{id: main}]\nmessages:\n  - id: plans   # the one we test\n")


def test_an_untouched_single_entry_flow_mapping_keeps_its_braces(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(FILE)
    state = studio.read(path)
    studio.save(path, state["document"], state["etag"], [0])
    assert path.read_text() == FILE

"""Experiments in the studio (docs/studio.md, "Experiments"): a plain message
becomes a two-arm A/B test with a holdout through the forms, each problem
(a weight of 0, a holdout above 50) shows under its field, the file keeps
what was not edited, the published bundle carries the arms, and a file's
variants and holdout come back into the editor and survive a save."""

from __future__ import annotations

import difflib
import json

from playwright.sync_api import expect

from proactive import authoring, publishing
from studio_helpers import StudioPage, make_key, studio, unlabeled_controls
from widget.runtime import bundle as bundle_mod

HAND_WRITTEN = """\
# Acme's auto messages.
site: acme
widgets: [{id: main}]

messages:
  - id: plans            # the one we want to test
    rules: [{rule: time_on_page, op: greater, value: 40}]
    content: {text: "Questions about plans?"}
  # Kept as written.
  - id: welcome
    rules: [{rule: visits, op: greater, value: 1}]
    content:
      text: Welcome back
"""


def row(page, mid: str):
    return page.get_by_role("row").filter(has=page.get_by_text(mid, exact=True))


def test_an_ab_test_with_a_holdout_through_the_forms(browser, tmp_path):
    messages = tmp_path / "messages.yaml"
    messages.write_text(HAND_WRITTEN)
    key, data_key = make_key(tmp_path)
    bundle = tmp_path / "bundle.json"
    with studio(messages, key, bundle) as url:
        s = StudioPage(browser, url, python=False)
        p = s.page
        row(p, "plans").get_by_role("button", name="Edit").click()
        editor = p.locator("#editor")
        editor.get_by_role("button", name="Add A/B variant").click()
        first = editor.get_by_role("group", name="A/B variant 1")
        second = editor.get_by_role("group", name="A/B variant 2")
        # the message's own wording is the first variant; the second starts empty
        expect(first.get_by_label("Message text")).to_have_value("Questions about plans?")
        expect(second.get_by_label("Variant ID")).to_have_value("b")
        first.get_by_label("Variant ID").fill("ask")
        second.get_by_label("Variant ID").fill("hand")
        second.get_by_label("Message text").fill("Need a hand choosing?")
        assert unlabeled_controls(p) == []

        # the validator's problems, under their fields
        second.get_by_label("Weight").fill("0")
        expect(second.locator(".problem")).to_contain_text("0 is not a weight")
        expect(second.get_by_label("Weight")).to_have_attribute("aria-invalid", "true")
        second.get_by_label("Weight").fill("3")
        expect(second.locator(".problem")).to_have_count(0)
        holdout = editor.get_by_label("Holdout (% who see nothing)")
        holdout.fill("60")
        expect(editor.locator(".problem")).to_contain_text("60 is not a holdout percentage")
        holdout.fill("10")
        expect(editor.locator(".problem")).to_have_count(0)
        expect(editor.locator("#experiment-shares")).to_have_text(
            "Visitors: ask 22.5 %, hand 67.5 %, holdout (sees nothing) 10 %")
        # the card preview draws the A/B variant picked (the first by default)
        card = p.locator("#preview [data-frame=desktop] proactive-widget").locator(".card")
        expect(card.locator(".text")).to_have_text("Questions about plans?")
        p.locator("#preview").get_by_label("Preview A/B variant").select_option("hand")
        expect(card.locator(".text")).to_have_text("Need a hand choosing?")
        second.get_by_label("Message text").fill("Need a hand choosing a plan?")
        expect(card.locator(".text")).to_have_text("Need a hand choosing a plan?")
        second.get_by_label("Message text").fill("Need a hand choosing?")

        p.get_by_role("button", name="Save").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
        p.get_by_role("button", name="Publish").click()
        p.get_by_role("dialog").get_by_role("button", name="Publish version 1").click()
        expect(p.get_by_role("status")).to_have_text("Published version 1 to bundle.json")
        s.close()

    # The file: the message's content became its variants; the rest as written.
    plans = authoring.Source(messages, messages.read_text()).document["messages"][0]
    assert plans["variants"] == [{"id": "ask", "weight": 1, "content": {"text": "Questions about plans?"}},
                                 {"id": "hand", "weight": 3, "content": {"text": "Need a hand choosing?"}}]
    assert plans["holdout"] == 10 and "content" not in plans
    assert messages.read_text().split("  # Kept as written.\n")[1] == HAND_WRITTEN.split("  # Kept as written.\n")[1]

    # The signed bundle: the experiment's arms and shares, its salt written in.
    envelope = bundle.read_bytes()
    publishing.verify_bundle(envelope, data_key)
    payload = publishing.read_payload(envelope)
    exp = bundle_mod.parse(payload).messages[0].experiment
    assert [(a.id, a.weight) for a in exp.arms] == [("ask", 1.0), ("hand", 3.0), ("holdout", 4 / 9)]
    assert exp.salt == payload["messages"][0]["experiment"]
    assert [round(exp.share(a), 3) for a in ("ask", "hand", "holdout")] == [0.225, 0.675, 0.1]


def test_a_files_variants_and_holdout_are_shown_and_kept(browser, tmp_path):
    messages = tmp_path / "messages.yaml"
    messages.write_text(HAND_WRITTEN.replace(
        '    content: {text: "Questions about plans?"}\n',
        "    holdout: 20          # the control group\n"
        "    experiment: plans-2026\n"
        "    variants:\n"
        '      - {id: ask, weight: 1, content: {text: "Questions about plans?"}}\n'
        "      - id: hand\n"
        "        weight: 1\n"
        "        content:\n"
        '          en: {text: "Need a hand choosing?"}\n'
        '          de: {text: "Brauchen Sie Hilfe bei der Wahl?"}\n'))
    before = messages.read_text()
    key, _ = make_key(tmp_path)
    with studio(messages, key, tmp_path / "bundle.json") as url:
        s = StudioPage(browser, url, python=False)
        p = s.page
        expect(row(p, "plans")).to_contain_text("Questions about plans?")
        row(p, "plans").get_by_role("button", name="Edit").click()
        editor = p.locator("#editor")
        expect(editor.get_by_label("Holdout (% who see nothing)")).to_have_value("20")
        expect(editor.get_by_label("Experiment name")).to_have_value("plans-2026")
        hand = editor.get_by_role("group", name="A/B variant 2")
        expect(hand.get_by_label("Variant ID")).to_have_value("hand")
        expect(hand.get_by_label("Weight")).to_have_value("1")
        german = hand.locator("fieldset.variant").filter(has_text="Language de")
        expect(german.get_by_label("Message text")).to_have_value("Brauchen Sie Hilfe bei der Wahl?")
        expect(editor.locator("#experiment-shares")).to_have_text("Visitors: ask 40 %, hand 40 %, holdout (sees nothing) 20 %")
        german.get_by_label("Message text").fill("Brauchen Sie Hilfe?")
        p.get_by_role("button", name="Save").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
        s.close()
    after = messages.read_text()
    changed = [(tag, before.splitlines()[i1:i2], after.splitlines()[j1:j2]) for tag, i1, i2, j1, j2
               in difflib.SequenceMatcher(None, before.splitlines(), after.splitlines()).get_opcodes() if tag != "equal"]
    assert changed == [("replace", ['          de: {text: "Brauchen Sie Hilfe bei der Wahl?"}'],
                        ['          de: {text: "Brauchen Sie Hilfe?"}'])], json.dumps(changed, indent=1)

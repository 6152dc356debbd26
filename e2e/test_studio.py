"""The auto messages studio as a site owner uses it (docs/studio.md): from an
empty file, create messages through the forms, see an inline error, pause
one, publish; the bundle verifies and the test site shows exactly the
active messages. And the round trip: editing one message of a hand-written
file changes only that message's lines."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect

from conftest import ROOT, shown_ids, wait_ready
from shell_helpers import explain
from studio_helpers import StudioPage, make_key, opened, studio, unlabeled_controls


def add_message(page, mid: str, text: str, *, priority: int | None = None) -> None:
    page.get_by_role("button", name="Add new auto message").click()
    editor = page.locator("#editor")
    editor.get_by_label("Message ID").fill(mid)
    editor.get_by_label("Message type").select_option(label="Proactive chat")
    editor.get_by_label("Send when team").select_option("any")
    editor.get_by_label("Send to").select_option(label="visitors")
    editor.get_by_label("Message text").fill(text)
    if priority is not None:
        editor.get_by_label("Priority", exact=True).fill(str(priority))
    editor.get_by_role("button", name="Add rule").click()
    rule = editor.get_by_role("group", name="Rule 1")
    rule.get_by_label("Rule").select_option(label="Current page URL")
    rule.get_by_label("Operator").select_option(label="contains")
    rule.get_by_label("Value").fill("/")


def row(page, mid: str):
    return page.get_by_role("row").filter(has=page.get_by_text(mid, exact=True))


def test_from_an_empty_file_to_the_site(site, browser, page, tmp_path):
    messages = tmp_path / "messages.yaml"
    key, data_key = make_key(tmp_path)
    bundle = site.bundles / "studio.json"
    with studio(messages, key, bundle) as url:
        s = StudioPage(browser, url)
        p = s.page
        expect(p.get_by_text("(new: created on the first save)")).to_be_visible()

        add_message(p, "welcome", "Hello from the studio")
        editor = p.locator("#editor")
        # from here on, validation and simulation run in the page's Python: no request to the server's
        s.wait_python()
        expect(p.get_by_text("Python: running in this page (PyScript)")).to_be_visible()
        server_calls = []
        p.on("request", lambda r: re.search(r"/api/(validate|simulate|preview)$", r.url) and server_calls.append(r.url))
        # the card preview, its content resolved by the page's Python, follows the text
        editor.get_by_label("Message text").fill("Hello from the **studio**")
        expect(preview_card(p, "desktop").locator(".text strong")).to_have_text("studio")
        assert unlabeled_controls(p) == []
        # a bad value: an inline error next to the field, within the live validation
        editor.get_by_role("button", name="Add rule").first.click()
        second = editor.get_by_role("group", name="Rule 2")
        second.get_by_label("Rule").select_option(label="Time on page")
        second.get_by_label("Operator").select_option(label="greater than")
        second.get_by_label("Value (seconds)").fill("-5")
        error = second.locator(".problem")
        expect(error).to_contain_text("-5 is not a number")
        expect(second.get_by_label("Value (seconds)")).to_have_attribute("aria-invalid", "true")
        second.get_by_label("Value (seconds)").fill("1")
        expect(error).to_have_count(0)
        editor.get_by_role("button", name="Back to the list").click()

        add_message(p, "promo", "Promo that is paused", priority=5)
        p.locator("#editor").get_by_role("button", name="Back to the list").click()
        expect(p.get_by_role("row")).to_have_count(3)   # the header and two messages
        row(p, "promo").get_by_role("button", name="Pause").click()
        expect(row(p, "promo").get_by_text("Paused", exact=True)).to_be_visible()
        expect(row(p, "welcome").get_by_text("Active", exact=True)).to_be_visible()
        assert unlabeled_controls(p) == []

        # simulate: a visitor on the home page; the paused message says why not
        p.get_by_label("Page URL").fill("https://example.com/pricing")
        p.get_by_role("button", name="Simulate", exact=True).click()
        timeline = p.get_by_label("Simulation timeline")
        expect(timeline).to_contain_text("show   welcome: page_url contains / → true")
        expect(timeline).to_contain_text("not shown  promo: closest at 0 s: its rules hold, but paused (enabled: false)")
        assert server_calls == []

        # the conformance cases file, run by the page's Python
        import json

        cases = json.loads((ROOT / "tests" / "cases.json").read_text())
        p.get_by_role("button", name="Run the conformance cases").click()
        expect(p.locator("#conformance-result")).to_have_text(
            re.compile(rf"^All {len(cases)} cases pass in this page's Python \(\d+ ms\)$"), timeout=60_000)
        wrong = [cases[0][0], cases[0][1], cases[0][2], not cases[0][3]]   # a case expecting the opposite fails
        s.context.route("**/api/cases", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                     body=json.dumps([wrong, cases[1]])))
        p.get_by_role("button", name="Run the conformance cases").click()
        expect(p.locator("#conformance-result")).to_have_text(re.compile(rf"^1 of 2 cases pass; failing: {re.escape(cases[0][0])} "))
        s.context.unroute("**/api/cases")

        p.get_by_role("button", name="Save").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
        text = messages.read_text()
        assert "enabled: false" in text and "id: welcome" in text

        p.get_by_role("button", name="Publish").click()
        dialog = p.get_by_role("dialog")
        expect(dialog).to_contain_text("Added: welcome, promo")
        expect(dialog).to_contain_text("Paused: promo")
        dialog.get_by_role("button", name="Publish version 1").click()
        expect(p.get_by_role("status")).to_have_text("Published version 1 to studio.json")
        s.close()

    verify = subprocess.run([sys.executable, "-m", "proactive.cli", "verify", str(bundle), "--key", data_key],
                            cwd=ROOT, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "version 1, 2 message(s)" in verify.stdout

    page.goto(site.page(tag=site.tag(bundle=site.bundle_url("studio"), key=data_key)))
    wait_ready(page)
    deadline = time.time() + 15
    while shown_ids(page) != ["welcome"] and time.time() < deadline:
        page.wait_for_timeout(100)
    assert shown_ids(page) == ["welcome"]
    why = explain(page)
    assert why["promo"]["blocked_by"][0] == "enabled"   # paused, though its priority is higher


HAND_WRITTEN = """\
# Acme's auto messages, written by hand.
site: acme            # the site id
widgets: [{id: main, color: "#0f766e", title: Acme}]

messages:
  # Pricing: the most important one.
  - id: pricing-help
    priority: 10          # wins over the others
    rules:
      - {rule: page_url, op: contains, value: /pricing}
      - {rule: time_on_page, op: greater, value: 40}
    content: {text: "Questions about *our plans*?"}

  # Greets everyone else.
  - id: welcome
    content:
      en: {text: 'Hi there!'}
      de: {text: Hallo!}   # German
    rules: [{rule: country, op: equals, value: ["NO", DE]}]

  - id: returning
    rules:
      - rule: visits
        op: greater
        value: 1
    content:
      text: Welcome back
"""


def test_editing_one_message_changes_only_its_lines(browser, tmp_path):
    messages = tmp_path / "messages.yaml"
    with opened(browser, tmp_path, HAND_WRITTEN) as s:
        p = s.page
        row(p, "welcome").get_by_role("button", name="Edit").click()
        german = p.locator("#editor fieldset.variant").filter(has_text="Language de")
        german.get_by_label("Message text").fill("Hallo, schön dass du da bist!")
        p.get_by_role("button", name="Save").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
        s.close()
    after = messages.read_text()
    before_lines, after_lines = HAND_WRITTEN.splitlines(), after.splitlines()
    welcome = range(before_lines.index("  - id: welcome"), before_lines.index("  - id: returning"))
    changed = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before_lines, after_lines).get_opcodes():
        if tag != "equal":
            assert set(range(i1, max(i2, i1 + 1))) <= set(welcome), (before_lines[i1:i2], after_lines[j1:j2])
            changed += after_lines[j1:j2]
    assert len(changed) == 1 and "Hallo, schön dass du da bist!" in changed[0] and "# German" in changed[0], changed
    assert len(after_lines) == len(before_lines)


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)])
def test_every_control_has_a_visible_label(browser, tmp_path, viewport):
    messages = tmp_path / "messages.yaml"
    with opened(browser, tmp_path, HAND_WRITTEN, viewport=viewport) as s:
        p = s.page
        assert unlabeled_controls(p) == []
        row(p, "pricing-help").get_by_role("button", name="Edit").click()
        editor = p.locator("#editor")
        editor.get_by_role("button", name="Add OR group").click()
        editor.get_by_role("group", name=re.compile("Any of these")).get_by_role("button", name="Add rule").click()
        editor.get_by_role("button", name="Add button").click()
        editor.get_by_role("button", name="Add language variant").click()
        for name in ("Message type", "Widget", "Send when team", "Send to", "Send only once per user",
                     "Message text", "Rule", "Operator", "Value"):
            expect(editor.get_by_label(name, exact=True).first).to_be_visible()
        assert unlabeled_controls(p) == []
        # keyboard: Tab reaches the first rule's Operator from its Rule
        editor.get_by_role("group", name="Rule 1").first.get_by_label("Rule").focus()
        p.keyboard.press("Tab")
        assert p.evaluate("() => document.activeElement.labels[0].textContent") == "Operator"
        s.close()


def test_every_rule_of_the_catalog_through_the_forms(browser, tmp_path):
    """Each of the 25 rules, its own operators, a value input of its kind;
    an OR group nested in the rules; the saved file holds exactly that."""
    import yaml

    from widget.runtime import catalog

    messages = tmp_path / "messages.yaml"
    with opened(browser, tmp_path) as s:
        p = s.page
        p.get_by_role("button", name="Add new auto message").click()
        editor = p.locator("#editor")
        editor.get_by_label("Message ID").fill("all-rules")
        editor.get_by_label("Message text").fill("Every rule")
        top = editor.get_by_role("group", name="All of these (AND), level 1")
        for n, rule in enumerate(catalog.RULES.values(), start=1):
            top.get_by_role("button", name="Add rule", exact=True).last.click()
            row = editor.get_by_role("group", name=f"Rule {n}", exact=True)
            row.get_by_label("Rule").select_option(label=rule.title)
            ops = row.get_by_label("Operator").locator("option").evaluate_all("os => os.map(o => o.value)")
            assert ops == list(rule.ops), rule.id   # each rule's own operators only
            value_kind = catalog.KINDS[rule.kind].value
            if rule.kind == "country":
                row.get_by_label("Value").select_option(label="Germany (DE)")
            elif rule.kind == "language":
                row.get_by_label("Value").select_option(label="German (de)")
            elif value_kind in ("seconds", "count"):
                row.get_by_label(re.compile("^Value")).fill("5")
            elif value_kind in ("bool", "enum", "none"):
                pass   # a select with its choices, or no value at all
            else:
                row.get_by_label("Value").fill("/pricing" if rule.kind == "url" else "x")
        top.get_by_role("button", name="Add OR group").click()
        group = editor.get_by_role("group", name="Any of these (OR), level 2")
        group.get_by_role("button", name="Add rule").click()
        group.get_by_role("group", name="Rule 1").get_by_label("Rule").select_option(label="Number of visits")
        group.get_by_role("group", name="Rule 1").get_by_label("Value").fill("2")
        expect(editor.locator(".problem:not(.warning)")).to_have_count(0)
        p.get_by_role("button", name="Save").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
        s.close()
    rules = yaml.safe_load(messages.read_text())["messages"][0]["rules"]
    assert [r["rule"] for r in rules[:-1]] == list(catalog.RULES)
    assert rules[-1] == {"any": [{"rule": "visits", "op": "greater", "value": 2}]}
    by_id = {r["rule"]: r for r in rules[:-1]}
    assert by_id["country"]["value"] == "DE" and by_id["browser_language"]["value"] == "de"
    assert by_id["time_on_page"] == {"rule": "time_on_page", "op": "greater", "value": 5}
    assert by_id["chat_history"] == {"rule": "chat_history", "op": "exists"}


def test_a_malformed_file_is_fixed_in_the_raw_text_never_rewritten(browser, tmp_path):
    messages = tmp_path / "messages.yaml"
    broken = "site: acme\nmessages:\n  - id: a\n\trules: []\n"
    with opened(browser, tmp_path, broken) as s:
        p = s.page
        expect(p.get_by_role("heading", name="messages.yaml cannot be read")).to_be_visible()
        expect(p.get_by_text(re.compile(r"^line 4, column 1: a tab character"))).to_be_visible()
        assert messages.read_text() == broken
        assert unlabeled_controls(p) == []
        p.get_by_label("Raw text").fill(broken.replace("\t", "    ") + "    content: {text: Fixed}\n")
        p.get_by_role("button", name="Save text").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
        expect(row(p, "a")).to_contain_text("Fixed")
        s.close()
    assert messages.read_text() == "site: acme\nmessages:\n  - id: a\n    rules: []\n    content: {text: Fixed}\n"


def preview_card(p, frame: str):
    """The card the widget's renderer drew in a preview frame (inside its shadow root)."""
    return p.locator(f"#preview [data-frame={frame}] proactive-widget").locator(".card")


def test_the_card_preview_is_the_widgets_renderer_per_language(browser, tmp_path):
    """The editor's preview: the widget's own renderer in its shadow root, at
    desktop and phone width, in the widget's colour, following the text as
    it is typed, one language variant at a time with the widget's own words."""
    messages = tmp_path / "messages.yaml"
    with opened(browser, tmp_path, HAND_WRITTEN) as s:
        p = s.page
        row(p, "welcome").get_by_role("button", name="Edit").click()
        for frame in ("desktop", "phone"):
            expect(preview_card(p, frame).locator(".text")).to_have_text("Hi there!")
        host = p.locator("#preview [data-frame=desktop] proactive-widget")
        assert host.evaluate("h => h.shadowRoot !== null && h.shadowRoot.adoptedStyleSheets.length >= 2")
        # the widget's colour (widgets: color #0f766e) on its launcher
        launcher = host.locator(".launcher")
        expect(launcher).to_have_css("background-color", "rgb(15, 118, 110)")
        # as the author types: bold, a link and a placeholder at its fallback, drawn by the renderer
        english = p.locator("#editor fieldset.variant").filter(has_text="Language en")
        english.get_by_label("Message text").fill("Hi **{{name|friend}}**, see [plans](https://acme.test/plans)")
        card = preview_card(p, "desktop")
        expect(card.locator(".text")).to_have_text("Hi friend, see plans")
        expect(card.locator(".text strong")).to_have_text("friend")
        expect(card.locator(".text a")).to_have_attribute("href", "https://acme.test/plans")
        english.get_by_label("Sender name").fill("Maya from Acme")
        expect(card.locator(".sender .name")).to_have_text("Maya from Acme")
        expect(card).to_have_attribute("aria-label", "Message from Maya from Acme")
        english.get_by_role("button", name="Add button").click()
        expect(card.get_by_role("button", name="Chat with us")).to_be_visible()
        # the German variant, with the widget's German words
        p.locator("#preview").get_by_label("Preview language").select_option("de")
        expect(card.locator(".text")).to_have_text("Hallo!")
        expect(card.locator("button.close")).to_have_attribute("aria-label", "Nachricht schließen")
        expect(preview_card(p, "phone").locator(".text")).to_have_text("Hallo!")
        german = p.locator("#editor fieldset.variant").filter(has_text="Language de")
        german.get_by_label("Message text").fill("Hallo, schön dass du da bist!")
        expect(preview_card(p, "phone").locator(".text")).to_have_text("Hallo, schön dass du da bist!")
        # the phone frame is 390 px wide and holds the card
        box = p.locator("#preview [data-frame=phone]").bounding_box()
        card_box = preview_card(p, "phone").bounding_box()
        assert round(box["width"]) == 390 and box["x"] <= card_box["x"] and card_box["x"] + card_box["width"] <= box["x"] + box["width"]
        assert unlabeled_controls(p) == []
        s.close()


def test_publish_to_a_share_of_visitors(browser, tmp_path):
    """The publish dialog's "Roll out to (% of visitors)": a staged rollout,
    signed as `proactive sign --rollout` signs it."""
    with opened(browser, tmp_path, HAND_WRITTEN) as s:
        bundle, data_key = s.bundle, s.data_key
        p = s.page
        p.get_by_role("button", name="Publish").click()
        dialog = p.get_by_role("dialog")
        expect(dialog).to_contain_text("The first version goes to every visitor.")
        expect(dialog.get_by_label("Roll out to (% of visitors)")).to_be_disabled()
        dialog.get_by_role("button", name="Publish version 1").click()
        expect(p.get_by_role("status")).to_have_text("Published version 1 to bundle.json")
        row(p, "returning").get_by_role("button", name="Edit").click()
        p.locator("#editor").get_by_label("Message text").fill("Welcome back, friend")
        p.get_by_role("button", name="Publish").click()
        expect(dialog).to_contain_text("Changed: returning")
        expect(dialog).to_contain_text("Now: version 1 to every visitor.")
        dialog.get_by_label("Roll out to (% of visitors)").fill("25")
        dialog.get_by_role("button", name="Publish version 2").click()
        expect(p.get_by_role("status")).to_have_text(
            "Published version 2 to 25 % of visitors (version 1 to the others) to bundle.json")
        p.get_by_role("button", name="Publish").click()
        expect(dialog).to_contain_text("Now: version 2 to 25 % of visitors, version 1 to the others.")
        dialog.get_by_role("button", name="Cancel").click()
        s.close()
    verify = subprocess.run([sys.executable, "-m", "proactive.cli", "verify", str(bundle), "--key", data_key],
                            cwd=ROOT, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "staged rollout: version 2 to 25 % of visitors, version 1 to the others" in verify.stdout


def add_item(editor, noun: str, fields: dict):
    """Add a button, link or attachment and fill its fields; its group."""
    editor.get_by_role("button", name=f"Add {noun.lower()}").click()
    group = editor.get_by_role("group", name=f"{noun} 1")
    for label, value in fields.items():
        group.get_by_label(label).fill(value)
    return group


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")


def test_the_composer_writes_sender_links_attachments_and_caps(browser, tmp_path):
    """Every content field of docs/authoring.md through the forms (sender with
    avatar, links, attachments, buttons) and the caps and cooldown; the saved
    file holds them and the preview draws them with the widget's renderer."""
    import yaml

    messages = tmp_path / "messages.yaml"
    with opened(browser, tmp_path) as s:
        p = s.page
        # the avatar's host (the studio is cross-origin isolated: an image shows when its host allows embedding)
        s.context.route("https://acme.test/**", lambda route: route.fulfill(
            status=200, content_type="image/png", body=PNG, headers={"Cross-Origin-Resource-Policy": "cross-origin"}))
        p.get_by_role("button", name="Add new auto message").click()
        editor = p.locator("#editor")
        editor.get_by_label("Message ID").fill("full")
        editor.get_by_label("Message text").fill("Prices inside")
        editor.get_by_label("Sender name").fill("Maya Lima")
        editor.get_by_label("Sender avatar URL").fill("https://acme.test/maya.png")
        link = add_item(editor, "Link", {"Link label": "Read the FAQ", "Link URL": "https://acme.test/faq"})
        add_item(editor, "Attachment", {"File name": "Price list.pdf", "File URL": "https://acme.test/prices.pdf",
                                        "Size (bytes)": "245000"})
        button = add_item(editor, "Button", {"Button label": "Compare plans"})
        button.get_by_label("Button action").select_option(label="open a link")
        button.get_by_label("Button URL").fill("https://acme.test/plans")
        editor.get_by_label("Shows per visit").fill("1")
        editor.get_by_label("Shows per day").fill("2")
        editor.get_by_label("Shows ever").fill("5")
        editor.get_by_label("Stays away after a dismissal (seconds)").fill("604800")
        # a bad link: the validator's problem next to its field
        link.get_by_label("Link URL").fill("javascript:alert(1)")
        expect(link.locator(".problem")).to_have_count(1)
        link.get_by_label("Link URL").fill("https://acme.test/faq")
        expect(editor.locator(".problem:not(.warning)")).to_have_count(0)
        card = preview_card(p, "desktop")
        expect(card.locator(".links a")).to_have_text("Read the FAQ")
        expect(card.locator(".files a")).to_have_attribute("aria-label", "Price list.pdf, 245 kB")
        expect(card.locator("img.avatar")).to_have_attribute("src", "https://acme.test/maya.png")
        p.wait_for_function("() => document.querySelector('#preview [data-frame=desktop] proactive-widget')"
                            ".shadowRoot.querySelector('img.avatar').naturalWidth === 1")
        expect(card.locator("a.btn")).to_have_attribute("href", "https://acme.test/plans")
        assert unlabeled_controls(p) == []
        p.get_by_role("button", name="Save").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
        s.close()
    message = yaml.safe_load(messages.read_text())["messages"][0]
    assert message["content"] == {
        "text": "Prices inside", "sender": {"name": "Maya Lima", "avatar": "https://acme.test/maya.png"},
        "buttons": [{"label": "Compare plans", "action": "url", "url": "https://acme.test/plans"}],
        "links": [{"label": "Read the FAQ", "url": "https://acme.test/faq"}],
        "attachments": [{"name": "Price list.pdf", "url": "https://acme.test/prices.pdf", "size": 245000}]}
    assert message["caps"] == {"per_visit": 1, "per_day": 2, "lifetime": 5} and message["dismissed_for"] == 604800


SETTINGS_FILE = """\
site: acme
team:
  timezone: Europe/Berlin
  hours: {mon-fri: "09:00-18:00"}   # kept as written
messages:
  - id: hours
    team: online
    rules: [{rule: page_url, op: contains, value: /contact}]
    content: {text: "We are here", image: "https://acme.test/team.png"}
"""


def test_site_settings_and_image_details_through_the_forms(browser, tmp_path):
    """The file-wide settings under the list (a widget's look, business hours,
    holidays, the delivery defaults) and an image's description and size: the validator's
    problems under their fields, the saved file holding them, the author's
    own keys kept."""
    import yaml

    messages = tmp_path / "messages.yaml"
    with opened(browser, tmp_path, SETTINGS_FILE) as s:
        p = s.page
        s.context.route("https://acme.test/**", lambda route: route.fulfill(
            status=200, content_type="image/png", body=PNG, headers={"Cross-Origin-Resource-Policy": "cross-origin"}))
        settings = p.locator("#site-settings")
        expect(settings.get_by_label("Time zone")).to_have_value("Europe/Berlin")
        first = settings.get_by_role("group", name="Opening hours 1")
        expect(first.get_by_label("Days")).to_have_value("mon-fri")
        settings.get_by_label("Time zone").fill("Mars/Olympus")
        expect(settings.locator("[data-path='team.timezone'] .problem")).to_have_count(1)
        settings.get_by_label("Time zone").fill("Europe/Vienna")
        settings.get_by_role("button", name="Add opening hours").click()
        second = settings.get_by_role("group", name="Opening hours 2")
        expect(second.get_by_label("Days")).to_have_value("sat")
        second.get_by_label("Hours").fill("25:00-26:00")
        expect(settings.locator(".problem:not(.warning)")).not_to_have_count(0)
        second.get_by_label("Hours").fill("10:00-14:00")
        settings.get_by_label("Closed on").fill("2026-12-24, 2026-12-25")
        settings.get_by_label("Minimum gap between invitations (seconds)").fill("120")
        settings.get_by_label("After a dismissal, stay away for (seconds)").fill("3600")
        settings.get_by_role("button", name="Add widget").click()
        widget = settings.get_by_role("group", name="Widget 1")
        expect(widget.get_by_label("Widget ID")).to_have_value("main")
        widget.get_by_label("Colour").fill("#1d4ed8")
        widget.get_by_label("Position").select_option("left")
        widget.get_by_label("Chat title").fill("Acme Support")
        expect(p.locator(".problem:not(.warning)")).to_have_count(0)
        assert unlabeled_controls(p) == []

        p.locator("tr", has_text="hours").get_by_role("button", name="Edit").click()
        editor = p.locator("#editor")
        editor.get_by_label("Image description (alt text)").fill("Our team")
        editor.get_by_label("Image width (px)").fill("320")
        editor.get_by_label("Image height (px)").fill("120")
        expect(preview_card(p, "desktop").locator("img").first).to_have_attribute("alt", "Our team")
        p.get_by_role("button", name="Save").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
    text = messages.read_text()
    doc = yaml.safe_load(text)
    assert doc["team"] == {"timezone": "Europe/Vienna", "hours": {"mon-fri": "09:00-18:00", "sat": "10:00-14:00"},
                           "closed_on": ["2026-12-24", "2026-12-25"]}
    assert doc["delivery"] == {"min_gap": 120, "dismissed_for": 3600}
    assert doc["widgets"] == [{"id": "main", "color": "#1d4ed8", "position": "left", "title": "Acme Support"}]
    assert doc["messages"][0]["content"]["image"] == {"src": "https://acme.test/team.png", "alt": "Our team",
                                                       "width": 320, "height": 120}
    assert "# kept as written" in text


JOURNEY_MESSAGES = """\
site: shop
messages:
  - id: spring
    rules: [{rule: utm_campaign, op: equals, value: spring}]
    content: {text: Spring sale}
  - id: back-again
    rules: [{rule: visits, op: greater, value: 2}, {rule: page_url, op: contains, value: /pricing}]
    content: {text: Welcome back}
  - id: after-hours
    team: offline
    rules: [{rule: time_on_page, op: greater, value: 5}]
    content: {text: Leave us a note}
  - id: unhappy
    rules: [{rule: rating, op: equals, value: poor}]
    content: {text: Sorry about that}
"""


def test_the_journey_builder_utm_returning_visitor_team_and_rating(browser, tmp_path):
    messages = tmp_path / "messages.yaml"
    with opened(browser, tmp_path, JOURNEY_MESSAGES) as s:
        p = s.page
        sim = p.locator("#simulate")
        timeline = p.get_by_label("Simulation timeline")
        sim.get_by_role("group", name="Step 1").get_by_label("Page URL").fill("https://shop.test/pricing")
        sim.get_by_role("button", name="Simulate", exact=True).click()
        expect(timeline).to_contain_text("not shown  spring: closest at 0 s: utm_campaign equals spring → unknown")
        expect(timeline).to_contain_text("not shown  back-again: closest at 0 s: visits greater 2 → false (observed 1)")
        # a campaign link, a returning visitor (two earlier visits), the team going offline, a poor rating
        sim.get_by_role("group", name="Step 1").get_by_label("UTM campaign").fill("spring")
        sim.get_by_label("Earlier visits").fill("2")
        sim.get_by_label("Team", exact=True).select_option("online")
        steps = [("Message dismissed", 1, "Dismissed message", "spring"), ("Message dismissed", 3, "Dismissed message", "back-again"),
                 ("Team online / offline", 20, "Team now", "offline"), ("Message dismissed", 25, "Dismissed message", "after-hours"),
                 ("Chat rated", 40, "Rating", "poor")]
        for n, (kind, at, label, value) in enumerate(steps, start=2):
            sim.get_by_role("button", name="Add step").click()
            step = sim.get_by_role("group", name=f"Step {n}")
            step.get_by_label("Step", exact=True).select_option(label=kind)
            step.get_by_label("At (seconds)").fill(str(at))
            control = step.get_by_label(label)
            control.fill(value) if label == "Dismissed message" else control.select_option(value)
        sim.get_by_role("button", name="Simulate", exact=True).click()
        expect(timeline).to_contain_text("0.000 s  show   spring: utm_campaign equals spring → true (observed spring)")
        expect(timeline).to_contain_text("1.000 s  show   back-again: visits greater 2 → true (observed 3)")
        expect(timeline).to_contain_text("20.000 s  show   after-hours")
        expect(timeline).to_contain_text("40.000 s  show   unhappy: rating equals poor → true (observed poor)")
        expect(timeline).not_to_contain_text("not shown")
        assert unlabeled_controls(p) == []
        s.close()


def test_the_list_shows_the_endpoints_stats_or_says_unavailable(site, browser, tmp_path):
    """`--endpoint URL --agent-token TOKEN`: shown, clicked, replied and reply
    rate of the last 7 days per message; an endpoint that is down:
    "unavailable", and editing and saving still work."""
    import json
    import urllib.request

    messages = tmp_path / "messages.yaml"
    messages.write_text("site: acme\nmessages:\n  - id: stats-a\n    rules: []\n    content: {text: A}\n"
                        "  - id: stats-b\n    rules: []\n    content: {text: B}\n")
    for sender, kinds in (("e2e-stats-1", ("shown", "replied")), ("e2e-stats-2", ("shown", "clicked"))):
        batch = {"sender": sender, "events": [{"id": str(i), "type": k, "message": "stats-a", "button": "0"}
                                              for i, k in enumerate(kinds)]}
        request = urllib.request.Request(f"{site.widget_origin}/api/events", json.dumps(batch).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Origin": site.site_origin})
        assert urllib.request.urlopen(request, timeout=10).status == 202
    with opened(browser, tmp_path, None, "--endpoint", site.widget_origin, "--agent-token", site.agent_token) as s:
        p = s.page
        expect(p.locator("#stats-note")).to_have_text("Stats of the last 7 days, from the endpoint")
        cells = lambda mid: [row(p, mid).locator(f"[data-stat={k}]").text_content()  # noqa: E731
                             for k in ("shown", "clicked", "replied", "reply_rate")]
        assert cells("stats-a") == ["2", "1", "1", "50.0 %"]
        assert cells("stats-b") == ["0", "0", "0", "—"]
        expect(p.get_by_role("columnheader", name="Reply rate (7 days)")).to_be_visible()
        # Publish uploads too: this endpoint was given no --bundle-key, so it says why it took nothing
        p.get_by_role("button", name="Publish").click()
        p.get_by_role("dialog").get_by_role("button", name="Publish version 1").click()
        expect(p.get_by_role("status")).to_have_text("Published version 1 to bundle.json; not uploaded to the endpoint: "
                                                     "this endpoint accepts no bundles (start it with --bundle-key KEY)")
        s.close()
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with opened(browser, tmp_path, None, "--endpoint", down, "--agent-token", "x" * 20) as s:
        p = s.page
        expect(p.locator("#stats-note")).to_contain_text("Stats unavailable: the endpoint cannot be reached")
        assert row(p, "stats-a").locator("[data-stat=shown]").text_content() == "unavailable"
        row(p, "stats-b").get_by_role("button", name="Pause").click()
        p.get_by_role("button", name="Save").click()
        expect(p.get_by_role("status")).to_have_text("Saved messages.yaml")
        s.close()
    assert "enabled: false" in messages.read_text()

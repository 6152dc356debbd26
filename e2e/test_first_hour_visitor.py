"""A visitor's first hour with the widget: what they see on a static host,
in a conversation with an agent, and the small things a visitor notices."""

from __future__ import annotations

import re

from conftest import shown_ids, sync
from test_endpoint import agent_api, boot, until

from playwright.sync_api import expect

QUICK = [
    {"id": "chat", "label": "Chat with us", "action": "chat"},
    {"id": "browsing", "label": "Just browsing", "action": "reply"},
    {"id": "pricing", "label": "See pricing", "action": "url", "url": "/pricing.html"},
]


def publish(site, name: str, message_id: str, **content) -> str:
    return site.publish({"site": "test", "widgets": [{"id": "main"}], "messages": [
        {"id": message_id, "type": "proactive", "widget": "main", "content": {"text": "Hello there", **content},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]}]}, name)


def show(page, site, url, message_id, **tag_attrs):
    boot(page, site.page(tag=site.tag(bundle=url, **tag_attrs)))
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == [message_id]
    return page.locator("proactive-widget")


# -- 1. a static host: no endpoint, so nothing that needs a conversation --------------------

def test_without_an_endpoint_there_is_no_reply_field_no_chat_panel_and_no_chat_buttons(site, page, guard):
    url = publish(site, "static", "fh-static", buttons=QUICK)
    widget = show(page, site, url, "fh-static", data_endpoint="off")
    card = widget.locator('[data-message-id="fh-static"]')
    expect(card).to_contain_text("Hello there")
    assert card.locator("input, textarea, form").count() == 0  # no "Write a reply…"
    assert card.locator("[data-action]").evaluate_all("bs => bs.map(b => b.dataset.action)") == ["url", "dismiss"]
    expect(card.locator('a[data-action="url"]')).to_have_attribute("href", re.compile(r"/pricing\.html$"))
    assert widget.locator(".launcher").count() == 0 or not widget.locator(".launcher").is_visible()
    page.evaluate("() => proactive('open')")
    sync(page)
    assert widget.locator(".panel").count() == 0 or not widget.locator(".panel").is_visible()
    expect(card).to_be_visible()  # the card stays where it was


# -- 2. the newest agent reply is in view, unless the visitor scrolled up --------------------

def _reply_on_the_card(widget, site, text: str) -> str:
    """The visitor replies on the card; returns the conversation's id."""
    reply = widget.get_by_label("Reply to this message")
    reply.fill(text)
    reply.press("Enter")
    found = until(lambda: [c for c in agent_api(site, "GET", "/conversations")["conversations"]
                           if c["last_text"] == text], f"the conversation of {text!r}")
    return found[0]["id"]


def _agent_says(site, cid, text):
    agent_api(site, "POST", f"/conversations/{cid}/messages", {"text": text, "author": "Maya"})


def _bottom_gap(widget) -> float:
    return widget.locator(".log").evaluate("l => l.scrollHeight - l.clientHeight - l.scrollTop")


def _covered(widget) -> bool:
    """Whether anything of the panel is drawn over the last message's bottom line."""
    return widget.locator(".log > .bubble").last.evaluate("""b => {
        const r = b.getBoundingClientRect();
        const root = b.getRootNode();
        const x = r.left + r.width / 2, y = r.bottom - 2;
        const top = root.elementFromPoint(x, y);
        return !(top && (top === b || b.contains(top)));
    }""")


def test_new_agent_replies_scroll_into_view_and_nothing_covers_the_last(site, page, guard):
    url = publish(site, "scroll", "fh-scroll")
    widget = show(page, site, url, "fh-scroll")
    cid = _reply_on_the_card(widget, site, "fh-scroll: do you ship to Oslo?")
    long = "We do. " + "Delivery takes two to four working days, tracked, with a signature on arrival. " * 4
    for n in (1, 2):
        _agent_says(site, cid, f"{n}: {long}")
        widget.locator(".bubble.agent").filter(has_text=f"{n}: We do.").wait_for(timeout=15_000)
        page.wait_for_timeout(100)  # a frame or two for layout
        assert _bottom_gap(widget) <= 2, f"not scrolled to the newest reply after reply {n}"
        assert not _covered(widget), "the last message is covered"
    # Scrolled up to read: a new reply does not move the log; a marker says there is one.
    widget.locator(".log").evaluate("l => { l.scrollTop = 0; l.dispatchEvent(new Event('scroll')); }")
    _agent_says(site, cid, f"3: {long}")
    widget.locator(".bubble.agent").filter(has_text="3: We do.").wait_for(timeout=15_000)
    page.wait_for_timeout(100)
    assert widget.locator(".log").evaluate("l => l.scrollTop") == 0
    marker = widget.get_by_role("button", name=re.compile("new message", re.I))
    expect(marker).to_be_visible()
    marker.click()
    page.wait_for_timeout(100)
    assert _bottom_gap(widget) <= 2 and not marker.is_visible()


# -- 3. polish: initials, quick replies once, thanks for a rating, times ---------------------------

def test_avatar_initials_come_from_the_senders_name(site, page, guard):
    url = publish(site, "initials", "fh-initials", sender={"name": "Maya from the demo team"})
    widget = show(page, site, url, "fh-initials")
    assert widget.locator(".card .avatar").inner_text() == "M"


def test_a_quick_reply_is_used_once(site, page, guard):
    url = publish(site, "quick", "fh-quick", buttons=QUICK[:2] + [{"id": "later", "label": "Maybe later",
                                                                    "action": "reply"}])
    widget = show(page, site, url, "fh-quick")
    widget.locator('[data-message-id="fh-quick"] [data-button="browsing"]').click()
    bubble = widget.locator('.log [data-message-id="fh-quick"]')
    bubble.wait_for()
    for button in ("browsing", "later"):
        expect(bubble.locator(f'[data-button="{button}"]')).to_be_disabled()
    expect(bubble.locator('[data-button="chat"]')).to_be_enabled()  # opening the chat is not a reply
    bubble.locator('[data-button="later"]').click(force=True)
    sync(page)
    visitor_said = widget.locator(".bubble.visitor").all_inner_texts()
    assert [t for t in visitor_said if "Just browsing" in t] and not [t for t in visitor_said if "Maybe later" in t]


def test_a_rating_is_thanked_and_messages_have_times(site, page, guard):
    url = publish(site, "rated", "fh-rated")
    widget = show(page, site, url, "fh-rated")
    cid = _reply_on_the_card(widget, site, "fh-rated: hello")
    _agent_says(site, cid, "fh-rated: hi, how can I help?")
    widget.locator(".bubble.agent").filter(has_text="how can I help").wait_for(timeout=15_000)
    widget.get_by_role("button", name="Great").click()
    expect(widget.locator(".rate")).to_contain_text("Thank you")
    stamped = widget.locator(".log .bubble").evaluate_all("""bs => bs.map(b => ({
        time: b.dataset.time, at: b.dataset.at, shown: getComputedStyle(b, "::after").content}))""")
    assert len(stamped) >= 3  # the auto message, the visitor's reply, the agent's answer
    for s in stamped:
        assert re.fullmatch(r"\d{1,2}:\d{2}(\s?[AP]M)?", s["time"]), s
        assert s["shown"] == f'"{s["time"]}"' and s["at"].endswith("Z"), s
    # The text stays the message's own (the time is drawn beside it).
    assert widget.locator(".bubble.agent").last.evaluate("b => b.textContent") == "Mayafh-rated: hi, how can I help?"

"""What a visitor sees: rich message cards, the launcher and the chat panel,
in real Chromium with real Pyodide, on desktop and mobile viewports.

Screenshots are kept under test-results/render/ (desktop and mobile, card
and panel) so a human can look at them."""

from __future__ import annotations

import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest
from conftest import ROOT, T0, shown_ids, simple_messages, sync, wait_ready

SHOTS = ROOT / "test-results" / "render"
EVENTS_HEAD = """<script>
window.proactive = window.proactive || function () { (window.proactive.q = window.proactive.q || []).push([].slice.call(arguments)); };
window.__ev = [];
["shown", "clicked", "dismissed", "replied", "open", "close"].forEach(function (n) {
  proactive("on", n, function (d) { window.__ev.push([n, d]); });
});
</script>"""


def png(width: int, height: int, pixel) -> bytes:
    """A small PNG from pixel(x, y) -> (r, g, b)."""
    raw = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def rich_bundle(site_origin: str) -> dict:
    rich_en = {
        "sender": {"name": "Maya from Acme", "avatar": f"{site_origin}/avatar.png"},
        "text": "Hi **{{name|there}}** 👋\nQuestions about *our plans*? Compare them on the [pricing page](/pricing.html).",
        "image": {"src": f"{site_origin}/hero.png", "alt": "Our three plans side by side", "width": 320, "height": 120},
        "buttons": [
            {"id": "chat", "label": "Chat with us", "action": "chat"},
            {"id": "pricing", "label": "See pricing", "action": "url", "url": "/pricing.html"},
            {"id": "browsing", "label": "Just browsing", "action": "reply"},
        ],
        "attachments": [{"name": "Price list 2026.pdf", "url": "/files/prices.pdf", "size": 245000}],
        "links": [{"label": "Read the FAQ", "url": "https://docs.example.com/faq"}],
    }
    rich_de = dict(rich_en, text="Hallo **{{name|du}}** 👋\nFragen zu *unseren Tarifen*?",
                   buttons=[{"id": "chat", "label": "Chatten", "action": "chat"}])
    return {
        "site": "test",
        "widgets": [{"id": "main", "color": "#0f766e", "title": "Acme Support"}],
        "messages": [
            {"id": "rich", "type": "proactive", "widget": "main", "content": {"en": rich_en, "de": rich_de},
             "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
        ],
    }


@pytest.fixture(scope="module")
def assets(site):
    (site.pages / "hero.png").write_bytes(
        png(320, 120, lambda x, y: (15 + x * 60 // 320, 118 + y * 80 // 120, 110 + x * 100 // 320)))
    (site.pages / "avatar.png").write_bytes(
        png(64, 64, lambda x, y: (236, 72 + y, 153) if (x - 32) ** 2 + (y - 32) ** 2 < 900 else (250, 232, 255)))
    (site.pages / "pricing.html").write_text("<!doctype html><title>pricing</title><h1>Pricing</h1>")
    return site


def boot(page, url, *, seconds: float = 2) -> dict:
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(url)
    status = wait_ready(page)
    page.clock.run_for(int(seconds * 1000))
    sync(page)
    return status


def shadow(page, js: str):
    """Evaluate `js` with `root` = the widget's shadow root."""
    return page.evaluate(f"() => {{ const root = document.querySelector('proactive-widget').shadowRoot; return ({js}); }}")


def events(page) -> list:
    return page.evaluate("() => window.__ev.map(([n, d]) => [n, d])")


def shoot(page, name: str):
    """test-results/render/NAME.png (pytest-playwright empties test-results/ at
    each session start; PROACTIVE_SHOTS=dir keeps a copy elsewhere too)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled")
    if os.environ.get("PROACTIVE_SHOTS"):
        Path(os.environ["PROACTIVE_SHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["PROACTIVE_SHOTS"]) / path.name)


PAGE_BODY = """<main style="max-width:720px;margin:40px auto;font:16px/1.6 Georgia,serif;color:#333">
<p>Acme makes the best widgets for your website. Plans start at 9 € a month.</p>
<label>Search <input id=search placeholder="Search the docs"></label>
<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.</p></main>"""


def test_rich_card_renders_every_part_safely_and_looks_right(assets, page, guard):
    site = assets
    site.publish(rich_bundle(site.site_origin), "render")
    page.set_viewport_size({"width": 1280, "height": 800})
    url = site.page(PAGE_BODY, head=EVENTS_HEAD, tag=site.tag(bundle=site.bundle_url("render")))
    boot(page, url)
    assert shown_ids(page) == ["rich"]
    card = shadow(page, """(() => { const c = root.querySelector('.card');
        return { id: c.dataset.messageId, label: c.getAttribute('aria-label'), lang: c.lang,
          strong: [...c.querySelectorAll('.text strong')].map(e => e.textContent),
          em: [...c.querySelectorAll('.text em')].map(e => e.textContent),
          brs: c.querySelectorAll('.text br').length,
          link: c.querySelector('.text a').href, linkTarget: c.querySelector('.text a').target,
          img: [c.querySelector('img.media').src, c.querySelector('img.media').alt],
          avatar: c.querySelector('img.avatar').src, sender: c.querySelector('.sender .name').textContent,
          buttons: [...c.querySelectorAll('.buttons [data-button]')].map(b => [b.tagName, b.dataset.button, b.dataset.action, b.textContent, b.getAttribute('href')]),
          file: [c.querySelector('.file').getAttribute('href'), c.querySelector('.file').textContent],
          faq: c.querySelector('.links a').href,
          live: root.querySelector('.stack').getAttribute('aria-live'),
          dismiss: c.querySelector('.close').getAttribute('aria-label') }; })()""")
    assert card["id"] == "rich" and card["lang"] == "en" and card["label"] == "Message from Maya from Acme"
    assert card["strong"] == ["there"] and card["em"] == ["our plans"] and card["brs"] == 1
    assert card["link"] == f"{site.site_origin}/pricing.html" and card["linkTarget"] == "_blank"
    assert card["img"] == [f"{site.site_origin}/hero.png", "Our three plans side by side"]
    assert card["avatar"] == f"{site.site_origin}/avatar.png" and card["sender"] == "Maya from Acme"
    assert card["buttons"] == [["BUTTON", "chat", "chat", "Chat with us", None],
                               ["A", "pricing", "url", "See pricing", f"{site.site_origin}/pricing.html"],
                               ["BUTTON", "browsing", "reply", "Just browsing", None]]
    assert card["file"][0] == f"{site.site_origin}/files/prices.pdf" and "245 kB" in card["file"][1]
    assert card["faq"] == "https://docs.example.com/faq"
    assert card["live"] == "polite" and card["dismiss"] == "Dismiss message"
    # The site owner's colour (bundle `widgets`) reaches the launcher.
    assert shadow(page, "getComputedStyle(root.querySelector('.launcher')).backgroundColor") == "rgb(15, 118, 110)"
    # No stylesheet element and no style attribute anywhere in the widget (strict CSP).
    assert shadow(page, "root.querySelectorAll('style, [style]').length") == 0
    page.wait_for_function("() => [...document.querySelector('proactive-widget').shadowRoot.querySelectorAll('img')].every(i => i.complete)")
    shoot(page, "desktop-card")

    # The panel: the card moves into the conversation; a quick reply is sent as the visitor's message.
    page.locator("proactive-widget .buttons [data-button=browsing]").click()
    panel = shadow(page, """({ open: !root.querySelector('.panel').hidden,
        expanded: root.querySelector('.launcher').getAttribute('aria-expanded'),
        auto: root.querySelector('.log .auto').dataset.messageId,
        visitor: [...root.querySelectorAll('.log .bubble.visitor')].map(b => b.textContent),
        role: root.querySelector('.log').getAttribute('role'), title: root.querySelector('.panel .title').textContent })""")
    assert panel == {"open": True, "expanded": "true", "auto": "rich", "visitor": ["Just browsing"],
                     "role": "log", "title": "Acme Support"}
    ev = events(page)
    assert ["clicked", {"message": "rich", "button": "browsing", "action": "reply", "label": "Just browsing"}] in ev
    assert ["replied", {"message": "rich", "text": "Just browsing"}] in ev
    assert ev[0] == ["shown", {"message": "rich", "t": ev[0][1]["t"]}]
    shoot(page, "desktop-panel")

    # Mobile: under 480 px the card spans the width and the panel is full screen.
    page.set_viewport_size({"width": 390, "height": 844})
    box = shadow(page, "(() => { const r = root.querySelector('.panel').getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()")
    assert box == [0, 0, 390, 844]
    shoot(page, "mobile-panel")
    page.locator("proactive-widget .panel .head .close").click()
    assert shadow(page, "root.querySelector('.panel').hidden") is True
    assert [e[0] for e in events(page)].count("close") == 1


@pytest.mark.browser_context_args(viewport={"width": 390, "height": 844}, locale="de-DE", reduced_motion="reduce")
def test_mobile_card_in_german_with_reduced_motion(assets, page, guard):
    site = assets
    site.publish(rich_bundle(site.site_origin), "render-de")
    url = site.page(PAGE_BODY, head=EVENTS_HEAD, tag=site.tag(bundle=site.bundle_url("render-de")))
    boot(page, url)
    assert shown_ids(page) == ["rich"]
    info = shadow(page, """(() => { const c = root.querySelector('.card'); const r = c.getBoundingClientRect();
        return { lang: c.lang, text: c.querySelector('.text').textContent, width: r.width, left: r.left,
                 animation: getComputedStyle(c).animationName,
                 buttons: [...c.querySelectorAll('[data-button]')].map(b => b.textContent) }; })()""")
    assert info["lang"] == "de" and info["text"].startswith("Hallo du 👋") and info["buttons"] == ["Chatten"]
    assert info["left"] == 12 and info["width"] == 390 - 24
    assert info["animation"] == "none"
    page.wait_for_function("() => [...document.querySelector('proactive-widget').shadowRoot.querySelectorAll('img')].every(i => i.complete)")
    shoot(page, "mobile-card-de")


def test_keyboard_focus_escape_and_one_message_at_a_time(assets, page, guard):
    site = assets
    bundle = {
        "site": "test", "widgets": [{"id": "main", "position": "left"}],
        "messages": [
            {"id": "low", "priority": 1, "content": {"text": "Second in line", "buttons": [{"id": "ok", "label": "OK"}]},
             "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
            {"id": "high", "priority": 5, "content": {"text": "First: **highest** priority"},
             "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
        ],
    }
    site.publish(bundle, "keys")
    url = site.page(PAGE_BODY, head=EVENTS_HEAD, tag=site.tag(bundle=site.bundle_url("keys")))
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(url)
    wait_ready(page)
    # The visitor is typing in the page's own field when the message arrives.
    page.locator("#search").click()
    page.keyboard.type("pric")
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == ["high"]   # priority first, one on screen
    assert page.evaluate("document.activeElement.id") == "search"       # focus not stolen
    page.keyboard.type("ing")
    assert page.input_value("#search") == "pricing"
    page.keyboard.press("Escape")     # Esc in the page's field is the page's, not ours
    sync(page)
    assert shown_ids(page) == ["high"]
    # Left position from the bundle.
    assert page.evaluate("getComputedStyle(document.querySelector('proactive-widget')).left") == "20px"
    # Keyboard: Tab from the page reaches the widget's controls.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Escape")     # focus on the page body: Esc dismisses
    page.clock.run_for(10)
    sync(page)
    assert shown_ids(page) == ["low"]   # the queued one re-checked its rules and shows when the screen frees
    assert [e[1]["message"] for e in events(page) if e[0] == "dismissed"] == ["high"]
    focusables = []
    page.locator("#search").focus()
    for _ in range(6):
        page.keyboard.press("Tab")
        focusables.append(page.evaluate("""() => { const r = document.querySelector('proactive-widget').shadowRoot.activeElement;
            return r ? (r.dataset.button || r.getAttribute('aria-label') || r.tagName) : document.activeElement.tagName; }"""))
    assert "ok" in focusables and "Dismiss message" in focusables and "Reply to this message" in focusables
    assert any(f.startswith("Open chat") for f in focusables)
    # Enter on a focused button clicks it.
    page.evaluate("() => document.querySelector('proactive-widget').shadowRoot.querySelector('[data-button=ok]').focus()")
    page.keyboard.press("Enter")
    sync(page)
    assert ["clicked", {"message": "low", "button": "ok", "action": "chat", "label": "OK"}] in events(page)
    assert shadow(page, "root.querySelector('.panel').hidden") is False
    assert shadow(page, "root.activeElement && root.activeElement.getAttribute('aria-label')") == "Write a message"
    page.keyboard.press("Escape")      # Esc inside the panel closes it and returns focus to the launcher
    assert shadow(page, "root.querySelector('.panel').hidden") is True
    assert shadow(page, "root.activeElement.className") == "launcher"


def test_data_attributes_override_the_bundle_and_launcher_can_be_hidden(assets, page, guard):
    site = assets
    site.publish(rich_bundle(site.site_origin), "attrs")
    url = site.page(PAGE_BODY, tag=site.tag(bundle=site.bundle_url("attrs"),
                                             data_color="#f59e0b", data_position="left", data_launcher="none"))
    boot(page, url)
    assert shown_ids(page) == ["rich"]
    got = shadow(page, """({ launcher: getComputedStyle(root.querySelector('.launcher')).display,
        accent: getComputedStyle(root.querySelector('.btn.primary')).backgroundColor,
        onAccent: getComputedStyle(root.querySelector('.btn.primary')).color })""")
    assert got == {"launcher": "none", "accent": "rgb(245, 158, 11)", "onAccent": "rgb(17, 24, 39)"}  # dark text on amber
    page.evaluate("proactive('open')")
    assert shadow(page, "root.querySelector('.panel').hidden") is False
    shoot(page, "desktop-left-amber-panel")


def test_renders_under_a_strict_content_security_policy(assets, page, guard):
    """No 'unsafe-inline' for styles: constructed stylesheets and CSSOM only."""
    site = assets
    site.publish(rich_bundle(site.site_origin), "csp-render")
    w = site.widget_origin
    csp = (f"default-src 'none'; script-src 'self' {w} 'wasm-unsafe-eval'; worker-src blob: {w}; "
           f"connect-src 'self' {w}; img-src 'self'; style-src 'self'")
    url = site.page("<p>Strict page</p><input id=q>", head='<script src="/events.js"></script>',
                    tag=site.tag(bundle=site.bundle_url("csp-render")),
                    headers={"Content-Security-Policy": csp})
    (site.pages / "events.js").write_text(EVENTS_HEAD.split(">", 1)[1].rsplit("</script>", 1)[0])
    page.set_viewport_size({"width": 1280, "height": 800})
    boot(page, url)
    assert shown_ids(page) == ["rich"]
    deadline = time.time() + 10   # images load asynchronously; wait_for_function is blocked by this CSP: poll
    while time.time() < deadline and not shadow(page, "[...root.querySelectorAll('img')].every(i => i.complete)"):
        time.sleep(0.05)
    styled = shadow(page, """({ launcher: getComputedStyle(root.querySelector('.launcher')).backgroundColor,
        radius: getComputedStyle(root.querySelector('.card')).borderTopLeftRadius,
        images: [...root.querySelectorAll('img')].map(i => i.complete && i.naturalWidth > 0) })""")
    assert styled == {"launcher": "rgb(15, 118, 110)", "radius": "16px", "images": [True, True]}
    page.locator("proactive-widget [data-button=chat]").click()
    assert shadow(page, "!root.querySelector('.panel').hidden")
    assert [e[0] for e in events(page)][:2] == ["shown", "clicked"]
    assert not [t for kind, t in guard.console if "Content Security Policy" in t or "Refused" in t]
    shoot(page, "desktop-csp-panel")


@pytest.mark.browser_context_args(locale="fr-FR")
def test_the_widgets_own_words_follow_the_browser_language(site, page, guard):
    """Message content has its own variants; the widget's chrome (labels,
    placeholders, dismiss) speaks the visitor's language too (en, de, fr, es)."""
    bundle = site.publish(simple_messages({"id": "hi", "rules": []}), "labels-fr")
    page.goto(site.page(tag=site.tag(bundle=bundle)))
    wait_ready(page)
    labels = page.evaluate("""() => { const r = document.querySelector('proactive-widget').shadowRoot;
        const card = r.querySelector('[data-message-id="hi"]');
        return { dismiss: card.querySelector('[data-action="dismiss"]').getAttribute('aria-label'),
                 reply: card.querySelector('input, textarea') && card.querySelector('input, textarea').placeholder,
                 launcher: [...r.querySelectorAll('button')].map(b => b.getAttribute('aria-label')).find(l => l && l.startsWith('Ouvrir')) }; }""")
    assert labels["dismiss"] == "Fermer le message"
    assert labels["reply"] == "Écrire une réponse…"
    assert labels["launcher"].startswith("Ouvrir le chat")
    page.locator('proactive-widget [data-message-id="hi"] [data-action="dismiss"]').click()
    sync(page)
    assert shown_ids(page) == []

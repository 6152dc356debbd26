"""No script can ride in: a corpus of XSS payloads goes through every way a
string reaches the widget — bundle content, identify attributes, the geo city and UTM
parameters (as placeholders), the page URL and the referrer, and straight
into the renderer with hostile URLs — and nothing runs.

"Ran" is detected three ways: every payload tries to set window.__pwned or to
call alert() (alert/confirm/prompt are replaced to record calls, and any
dialog is recorded too); and the widget's DOM is searched for anything that
could run: <script>, event-handler attributes, frames, objects, and links or
images with a scheme other than http(s)/mailto/tel (data:image for images)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

from conftest import T0, shown_ids, sync, wait_ready
from test_render import png

PAYLOADS = [
    '<script>window.__pwned=1</script>',
    '<img src=x onerror="window.__pwned=1">',
    '<svg onload=window.__pwned=1>',
    '"><script>window.__pwned=1</script>',
    "'><img src=x onerror=alert(1)>",
    '<iframe src="javascript:top.__pwned=1"></iframe>',
    '<body onload=alert(1)>',
    '<a href="javascript:alert(1)">x</a>',
    'javascript:alert(1)',
    '<details open ontoggle=alert(1)>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
    '{{constructor.constructor("alert(1)")()}}',
    '${alert(1)}',
    '<input autofocus onfocus=alert(1)>',
    '<video><source onerror=alert(1)>',
    '<audio src=x onerror=alert(1)>',
    '<marquee onstart=alert(1)>',
    '<object data="javascript:alert(1)">',
    '<embed src="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<style>@import "javascript:alert(1)";</style>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<form action=javascript:alert(1)><button>x</button></form>',
    '<x onclick=alert(1)>click',
    '"-alert(1)-"',
    "';alert(1)//",
    '</script><script>alert(1)</script>',
    '<scr<script>ipt>alert(1)</scr</script>ipt>',
    '&lt;script&gt;alert(1)&lt;/script&gt;',
    '&#60;img src=x onerror=alert(1)&#62;',
    '\\u003cimg src=x onerror=alert(1)\\u003e',
    '%3Cscript%3Ealert(1)%3C%2Fscript%3E',
    '<img src="x:gif" onerror="window[\'__pw\'+\'ned\']=1">',
    '<svg><script>alert(1)</script></svg>',
    '<svg><a xlink:href="javascript:alert(1)"><text x=20 y=20>x</text></a></svg>',
    '<template><img src=x onerror=alert(1)></template>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<textarea></textarea><img src=x onerror=alert(1)>',
    '<title></title><img src=x onerror=alert(1)>',
    '**<img src=x onerror=alert(1)>**',
    '*<svg/onload=alert(1)>*',
    '<<script>alert(1)//<</script>',
    '<img src=`x`onerror=alert(1)>',
    '<img/src="x"/onerror=alert(1)>',
    '<svg/onload=alert(1)>',
    '<body/onpageshow=alert(1)>',
    '\u2028<script>alert(1)</script>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<base href="javascript:alert(1)//">',
    '<img src=x onerror=eval(atob("d2luZG93Ll9fcHduZWQ9MQ=="))>',
    '<iframe srcdoc="<script>parent.__pwned=1</script>">',
    '<link rel=stylesheet href="javascript:alert(1)">',
    '<table background="javascript:alert(1)">',
    '<a href=" javascript:alert(1)">x</a>',
    '<div onpointerenter=alert(1)>hover</div>',
]
# Markup-subset links with hostile URLs: refused by validation (tests/test_content.py)
# and again by the renderer (the last test here).
HOSTILE_URLS = [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "java\nscript:alert(1)", "\x01javascript:alert(1)", "javascript&colon;alert(1)".replace("&colon;", ":"),
    "data:text/html,<script>alert(1)</script>", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)", "data:image/svg+xml,<svg onload=alert(1)>", "blob:http://x/1", "file:///etc/passwd",
    "javascript://%0aalert(1)",
]

TRAPS = """
window.__pwned = 0;
window.__dialogs = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = function () { window.__pwned = "called " + name; };
}
"""

DOM_AUDIT = """() => {
  const problems = [];
  const roots = [document];
  for (const host of document.querySelectorAll('proactive-widget')) roots.push(host.shadowRoot);
  for (const root of roots) {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      if (root !== document && ['script', 'iframe', 'object', 'embed', 'base', 'meta', 'link', 'style', 'template', 'math'].includes(tag))
        problems.push('element ' + tag);
      if (root === document && ['iframe', 'object', 'embed'].includes(tag)) problems.push('page element ' + tag);
      for (const attr of el.attributes) {
        if (/^on/i.test(attr.name)) problems.push(tag + ' has ' + attr.name);
        if (attr.name === 'style') problems.push(tag + ' has a style attribute');
      }
      if (tag === 'a' && el.hasAttribute('href') && !/^(https?|mailto|tel):$/.test(el.protocol)) problems.push('link ' + el.getAttribute('href'));
      if (tag === 'img' && !/^(https?:|data:image\\/(png|gif|jpeg|webp|avif);base64,)/i.test(el.getAttribute('src') || '')) problems.push('img ' + el.getAttribute('src'));
    }
  }
  const scripts = [...document.scripts].filter(s => !s.src.includes('/loader.js') && !s.textContent.includes('window.__pwned = 0') && !s.textContent.includes('proactive.q'));
  if (scripts.length) problems.push('new page scripts: ' + scripts.length);
  return problems;
}"""


def _assert_nothing_ran(page, dialogs):
    assert page.evaluate("window.__pwned") == 0
    assert dialogs == []
    assert page.evaluate(DOM_AUDIT) == []


def _card_text(page) -> str:
    return page.evaluate("() => document.querySelector('proactive-widget').shadowRoot.querySelector('.card .text').textContent")


def _start(page, url, *, referer=None):
    page.add_init_script(TRAPS)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.clock.install(time=T0)
    page.clock.pause_at(T0 + 1)
    page.goto(url, referer=referer)
    wait_ready(page)
    return dialogs


def test_payloads_in_content_identify_and_utm_are_text(site, page, guard):
    assert len(PAYLOADS) >= 50 and len(set(PAYLOADS)) == len(PAYLOADS)
    n = len(PAYLOADS)
    half = n // 2
    messages = [
        # 1) the bundle's own content: text, labels, names, alt text
        {"id": "content-a", "priority": 9, "content": {
            "text": "\n".join(p.replace("\\", "\\\\").replace("*", "\\*").replace("[", "\\[").replace("{", "\\{") for p in PAYLOADS[:half]),
            "sender": {"name": PAYLOADS[0][:100]},
            "image": {"src": f"{site.site_origin}/x.png", "alt": PAYLOADS[1]},
            "buttons": [{"label": p[:80], "action": "reply"} for p in PAYLOADS[2:5]],
            "links": [{"label": p[:80], "url": "https://example.com/"} for p in PAYLOADS[5:8]],
            "attachments": [{"name": p[:100], "url": "/f.pdf", "size": 1} for p in PAYLOADS[8:11]]},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
        {"id": "content-b", "priority": 8, "content": {
            "text": "\n".join(p.replace("\\", "\\\\").replace("*", "\\*").replace("[", "\\[").replace("{", "\\{") for p in PAYLOADS[half:])},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
        # 2) identify attributes as placeholders, in text and in a button label
        {"id": "identify", "priority": 7, "content": {
            "text": "\n".join("{{p%d|none}}" % i for i in range(n)),
            "buttons": [{"label": "{{p3}}", "action": "chat"}]},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 1}]},
        # 3) UTM from the page URL as a placeholder (one page view per payload)
        {"id": "utm", "priority": 1, "content": {"text": "Campaign: {{utm_campaign|none}}"},
         "rules": [{"rule": "utm_source", "op": "equals", "value": "xss"}]},
    ]
    (site.pages / "x.png").write_bytes(png(8, 8, lambda x, y: (200, 30, 30)))
    for m in messages:
        m["audience"] = "all"   # identify makes the visitor a user
    site.publish({"site": "test", "messages": messages}, "xss")
    # the page URL (query and fragment) and the referrer carry payloads too
    query = "&".join(f"q{i}={quote(p)}" for i, p in enumerate(PAYLOADS[:20]))
    url = site.page("<p>XSS corpus</p>", tag=site.tag(bundle=site.bundle_url("xss")))  # chat buttons need an endpoint
    dialogs = _start(page, f"{url}?{query}#{quote(PAYLOADS[1])}",
                     referer=f"{site.site_origin}/r?x={quote(PAYLOADS[0])}")
    for chunk in (range(0, 30), range(30, n)):   # the API takes up to 50 attributes per call
        page.evaluate("(attrs) => proactive('identify', attrs)", {f"p{i}": PAYLOADS[i] for i in chunk})
    page.clock.run_for(2000)
    sync(page)

    # 1) bundle content: one at a time, each payload literally visible as text
    assert shown_ids(page) == ["content-a"]
    text = _card_text(page)
    for p in PAYLOADS[:half]:
        assert p.replace("\u2028", "") in text.replace("\u2028", "")
    labels = page.evaluate("""() => { const c = document.querySelector('proactive-widget').shadowRoot.querySelector('.card');
        return { sender: c.querySelector('.sender .name').textContent, alt: c.querySelector('img.media').alt,
                 buttons: [...c.querySelectorAll('[data-button]')].map(b => b.textContent),
                 links: [...c.querySelectorAll('.links a')].map(a => a.textContent),
                 files: [...c.querySelectorAll('.file .fname')].map(a => a.textContent) }; }""")
    assert labels == {"sender": PAYLOADS[0], "alt": PAYLOADS[1], "buttons": PAYLOADS[2:5],
                      "links": PAYLOADS[5:8], "files": PAYLOADS[8:11]}
    _assert_nothing_ran(page, dialogs)
    page.keyboard.press("Escape")
    page.clock.run_for(10)
    sync(page)
    assert shown_ids(page) == ["content-b"]
    text = _card_text(page)
    for p in PAYLOADS[half:]:
        assert p.replace("\u2028", "") in text.replace("\u2028", "")
    _assert_nothing_ran(page, dialogs)

    # 2) identify attributes through placeholders
    page.keyboard.press("Escape")
    page.clock.run_for(10)
    sync(page)
    assert shown_ids(page) == ["identify"]
    text = _card_text(page)
    for p in PAYLOADS:
        assert p.replace("\u2028", "") in text.replace("\u2028", "")
    assert page.evaluate("() => document.querySelector('proactive-widget').shadowRoot.querySelector('[data-button]').textContent") == PAYLOADS[3]
    _assert_nothing_ran(page, dialogs)
    page.keyboard.press("Escape")
    page.clock.run_for(10)
    sync(page)

    # 3) UTM parameters: every payload as utm_campaign of a single-page-app route
    for i, p in enumerate(PAYLOADS):
        page.evaluate("(u) => history.pushState({}, '', u)", f"/spa{i}?utm_source=xss&utm_campaign={quote(p)}")
        page.clock.run_for(10)
        sync(page)
        assert shown_ids(page) == ["utm"], i
        assert _card_text(page) == "Campaign: " + p.strip().replace("\u2028", "")[:200], i
    _assert_nothing_ran(page, dialogs)


def test_a_bundle_with_a_javascript_link_is_refused_by_the_runtime(site, page, guard):
    """Signed without the CLI's validation (site.publish signs as given): the
    runtime's own validation refuses it."""
    site.publish({"site": "test", "messages": [
        {"id": "evil", "content": {"text": "[click](javascript:window.__pwned=1)"},
         "rules": [{"rule": "time_on_page", "op": "greater", "value": 0}]}]}, "evil")
    url = site.page("<p>evil bundle</p>", tag=site.tag(bundle=site.bundle_url("evil"), data_endpoint="off"))
    dialogs = _start(page, url)
    page.clock.run_for(2000)
    sync(page)
    assert shown_ids(page) == []
    assert any("javascript: URLs are not allowed" in w for w in guard.warnings()), guard.warnings()
    _assert_nothing_ran(page, dialogs)


def test_the_renderer_refuses_hostile_urls_and_renders_nodes_as_text(site, page, guard):
    """The last line of defence: a decision crafted past the engine (as if the
    runtime were bypassed) still cannot produce a script, a javascript:/data:
    link or a non-image data: source."""
    site.publish({"site": "test", "messages": [{"id": "x", "content": {"text": "x"}, "rules": [{"rule": "visits", "op": "greater", "value": 99}]}]}, "quiet")
    url = site.page("<p>renderer</p>", tag=site.tag(bundle=site.bundle_url("quiet"), data_endpoint="off"))
    dialogs = _start(page, url)
    result = page.evaluate(
        """async ([origin, payloads, urls]) => {
          const { createRenderer, safeHref } = await import(origin + '/render.mjs');
          const r = createRenderer({});
          const nodes = [];
          for (const p of payloads) nodes.push(['t', p], ['br']);
          for (const u of urls) nodes.push(['a', u, [['t', 'link ' + u]]], ['b', [['t', u]]]);
          nodes.push(['script', 'window.__pwned=1'], ['img', 'x'], ['a', 'javascript:alert(1)', [['a', 'javascript:alert(2)', [['t', 'nested']]]]]);
          r.show({ message: 'crafted', content: {
            body: nodes, text: 'x',
            image: { src: 'javascript:alert(1)', alt: payloads[0] },
            sender: { name: payloads[1], avatar: 'data:image/svg+xml,<svg onload=alert(1)>' },
            buttons: urls.map((u, i) => ({ id: 'b' + i, label: payloads[i], action: 'url', url: u })),
            links: urls.map((u) => ({ label: u, url: u })),
            attachments: urls.map((u) => ({ name: u, url: u, size_text: '1 B' })),
          } });
          const root = document.querySelectorAll('proactive-widget')[1].shadowRoot;
          const card = root.querySelector('.card');
          return { refused: urls.filter((u) => safeHref(u) !== null || safeHref(u, { image: true }) !== null),
                   text: card.querySelector('.text').textContent,
                   anchors: card.querySelectorAll('a').length, images: card.querySelectorAll('img').length,
                   buttons: card.querySelectorAll('[data-button]').length };
        }""",
        [site.widget_origin, PAYLOADS, HOSTILE_URLS],
    )
    assert result["refused"] == []
    for p in PAYLOADS:
        assert p.replace("\u2028", "") in result["text"].replace("\u2028", "")
    assert "nested" in result["text"]
    assert result == dict(result, anchors=0, images=0, buttons=0)
    _assert_nothing_ran(page, dialogs)


def test_a_hostile_geo_answer_is_text_in_the_city_placeholder(site, page, guard):
    """The city comes from the endpoint (or a CDN header behind it): here a
    hostile answer, served in place of the endpoint's /geo."""
    city = '<img src=x onerror=alert(1)>"><script>window.__pwned=1</script>{{name}}**b**'
    site.publish({"site": "test", "messages": [
        {"id": "weather", "content": {"text": "Sunny in **{{city|your city}}** today"},
         "rules": [{"rule": "city", "op": "exists"}]}]}, "geo-xss")
    page.route(f"{site.widget_origin}/api/geo*", lambda route: route.fulfill(
        status=200, headers={"access-control-allow-origin": "*", "content-type": "application/json"},
        body=json.dumps({"country": "DE", "city": city})))
    url = site.page("<p>geo</p>", tag=site.tag(bundle=site.bundle_url("geo-xss")))
    dialogs = _start(page, url)
    deadline = time.time() + 15
    while shown_ids(page) != ["weather"] and time.time() < deadline:
        time.sleep(0.05)
        sync(page)
    assert shown_ids(page) == ["weather"]
    assert _card_text(page) == f"Sunny in {city} today"
    assert page.evaluate("() => document.querySelector('proactive-widget').shadowRoot.querySelector('.card .text strong').textContent") == city
    _assert_nothing_ran(page, dialogs)

"""Message content: the markup subset, URL refusal, language variants,
placeholders and the appearance of widgets (widget/runtime/content.py)."""

from __future__ import annotations

import pytest

from widget.runtime import bundle, content
from widget.runtime.engine import Engine

# -- the markup subset --------------------------------------------------------

MARKUP = [
    ("plain text", "Hello", [["t", "Hello"]]),
    ("bold", "a **b** c", [["t", "a "], ["b", [["t", "b"]]], ["t", " c"]]),
    ("italic", "*x*", [["i", [["t", "x"]]]]),
    ("bold inside italic", "*a **b***", [["i", [["t", "a "], ["b", [["t", "b"]]]]]]),
    ("line break", "a\nb", [["t", "a"], ["br"], ["t", "b"]]),
    ("windows line break", "a\r\nb", [["t", "a"], ["br"], ["t", "b"]]),
    ("link", "[plans](https://x.example/p)", [["a", "https://x.example/p", [["t", "plans"]]]]),
    ("relative link", "see [this](/pricing)", [["t", "see "], ["a", "/pricing", [["t", "this"]]]]),
    ("link with parentheses", "[w](https://w.org/A_(b))", [["a", "https://w.org/A_(b)", [["t", "w"]]]]),
    ("bold link label", "[**go**](/x)", [["a", "/x", [["b", [["t", "go"]]]]]]),
    ("markup inside a URL is not markup", "[a](/x*y*z)", [["a", "/x*y*z", [["t", "a"]]]]),
    ("placeholder", "Hi {{name}}", [["t", "Hi "], ["var", "name", ""]]),
    ("placeholder with fallback", "Hi {{ name | there }}!", [["t", "Hi "], ["var", "name", "there"], ["t", "!"]]),
    ("placeholder in bold", "**{{city|your city}}**", [["b", [["var", "city", "your city"]]]]),
    ("unclosed bold stays text", "a ** b", [["t", "a ** b"]]),
    ("unclosed italic stays text", "5 * 3", [["t", "5 * 3"]]),
    ("escaped markers", r"\*not\* \[x\](y)", [["t", "*not* [x](y)"]]),
    ("bracket without link", "[x] (y)", [["t", "[x] (y)"]]),
    ("unterminated link", "[x](https://a", [["t", "[x](https://a"]]),
    ("HTML is text", "<b>x</b>", [["t", "<b>x</b>"]]),
    ("entities are text", "&lt;script&gt;", [["t", "&lt;script&gt;"]]),
]


@pytest.mark.parametrize("name,text,nodes", MARKUP, ids=[m[0] for m in MARKUP])
def test_markup_subset(name, text, nodes):
    problems = []
    assert content.parse_markup(text, (), lambda *a: problems.append(a)) == nodes
    assert problems == []


# -- URLs: refused at validation (and again at render, see e2e/test_xss.py) -----

REFUSED_LINKS = [
    "javascript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:alert(1)", "\tjavascript:alert(1)",
    "java\tscript:alert(1)", "java\nscript:alert(1)", "java\rscript:alert(1)", "\x00javascript:alert(1)",
    "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>", "data:image/png;base64,AAAA",
    "file:///etc/passwd", "blob:https://x/1", "livescript:x", "jar:x", "\\\\evil/x", "", "   ",
]
ACCEPTED_LINKS = ["https://x.example/", "http://x.example", "mailto:hi@x.example", "tel:+49301234",
                  "/pricing", "pricing.html", "//cdn.example/x", "#top", "?q=1"]
REFUSED_IMAGES = ["javascript:alert(1)", "data:image/svg+xml;base64,PHN2Zz4=", "data:image/svg+xml,<svg onload=alert(1)>",
                  "data:text/html;base64,PHNjcmlwdD4=", "data:image/png,notbase64", "vbscript:x", "mailto:a@b"]
ACCEPTED_IMAGES = ["https://x.example/a.gif", "/img/a.png", "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
                   "data:image/png;base64,iVBORw0KGgo="]


@pytest.mark.parametrize("url", REFUSED_LINKS)
def test_link_urls_refused(url):
    assert content.url_problem(url) is not None
    assert content.safe_url(url) is None


@pytest.mark.parametrize("url", ACCEPTED_LINKS)
def test_link_urls_accepted(url):
    assert content.url_problem(url) is None


@pytest.mark.parametrize("url", REFUSED_IMAGES)
def test_image_urls_refused(url):
    assert content.url_problem(url, image=True) is not None


@pytest.mark.parametrize("url", ACCEPTED_IMAGES)
def test_image_urls_accepted(url):
    assert content.url_problem(url, image=True) is None


BAD_CONTENT = [
    ("javascript link in text", {"text": "[x](javascript:alert(1))"}, ("text",)),
    ("javascript url button", {"text": "x", "buttons": [{"label": "Go", "action": "url", "url": "javascript:x"}]},
     ("buttons", 0, "url")),
    ("data url button", {"text": "x", "buttons": [{"label": "Go", "url": "data:text/html,x"}]}, ("buttons", 0, "url")),
    ("svg image", {"image": "data:image/svg+xml,<svg/onload=alert(1)>"}, ("image", "src")),
    ("javascript link", {"links": [{"label": "x", "url": "javascript:x"}]}, ("links", 0, "url")),
    ("javascript attachment", {"attachments": [{"name": "a.pdf", "url": "javascript:x", "size": 1}]},
     ("attachments", 0, "url")),
    ("javascript avatar", {"text": "x", "sender": {"name": "A", "avatar": "javascript:x"}}, ("sender", "avatar")),
    ("unknown button action", {"text": "x", "buttons": [{"label": "Go", "action": "eval"}]}, ("buttons", 0, "action")),
    ("chat button with url", {"text": "x", "buttons": [{"label": "Go", "action": "chat", "url": "/x"}]},
     ("buttons", 0, "url")),
    ("button without label", {"text": "x", "buttons": [{"action": "chat"}]}, ("buttons", 0, "label")),
    ("too many buttons", {"text": "x", "buttons": [{"label": str(i)} for i in range(6)]}, ("buttons",)),
    ("label too long", {"text": "x", "buttons": [{"label": "x" * 81}]}, ("buttons", 0, "label")),
    ("text too long", {"text": "x" * 2001}, ("text",)),
    ("text not a string", {"text": 5}, ("text",)),
    ("unknown field", {"text": "x", "html": "<b>x</b>"}, ("html",)),
    ("negative size", {"attachments": [{"name": "a", "url": "/a", "size": -1}]}, ("attachments", 0, "size")),
    ("bad placeholder", {"text": "{{not a name}}"}, ("text",)),
    ("bad image size", {"image": {"src": "/a.png", "width": 0}}, ("image", "width")),
    ("variant not a mapping", {"en": {"text": "x"}, "de": "Hallo"}, ("de",)),
]


@pytest.mark.parametrize("name,value,path", BAD_CONTENT, ids=[b[0] for b in BAD_CONTENT])
def test_bad_content_is_reported_at_its_path(name, value, path):
    problems = content.problems_of(value)
    assert [p[0] for p in problems][:1] == [path], problems


def test_list_fields_report_each_bad_entry_and_keep_the_good_ones():
    """buttons, links and attachments read their entries one way (content._entries)."""
    value = {"text": "x",
             "buttons": ["Go", {"label": "Chat", "colour": "red"}],
             "links": ["/faq", 5, {"label": "Plans", "url": "/plans", "x": 1}],
             "attachments": [[], {"name": "a.pdf", "url": "/a.pdf", "size": 2048}]}
    problems = content.problems_of(value)
    assert [(p[0], p[1]) for p in problems] == [
        (("buttons", 0), "a button is a mapping"), (("buttons", 1, "colour"), "unknown field 'colour'"),
        (("links", 1), "a link is a mapping"), (("links", 2, "x"), "unknown field 'x'"),
        (("attachments", 0), "an attachment is a mapping")]
    assert problems[0][2] == "{label, action: chat|url|reply, url}" and problems[4][2] == "{name, url, size}"
    out = content.check(value)["variants"][""]
    assert [(b["id"], b["action"]) for b in out["buttons"]] == [("1", "chat")]   # its index in the list
    assert [link["url"] for link in out["links"]] == ["/faq", "/plans"]
    assert [(a["name"], a["size_text"]) for a in out["attachments"]] == [("a.pdf", "2 kB")]


def test_bundle_validation_reports_content_problems_with_the_message_path():
    payload = {"site": "s", "messages": [{"id": "m", "rules": [], "content": {
        "text": "ok", "buttons": [{"label": "Go", "action": "url", "url": "javascript:alert(1)"}]}}]}
    problems = bundle.validate(payload)
    assert [p.path for p in problems] == [("messages", 0, "content", "buttons", 0, "url")]
    assert "javascript: URLs are not allowed" in problems[0].message


# -- language variants --------------------------------------------------------------

LANGS = [
    ("exact", ["de-AT"], ["en", "de", "de-at"], "de-at"),
    ("primary subtag", ["de-AT"], ["en", "de"], "de"),
    ("same primary, other region", ["de"], ["en", "de-ch"], "de-ch"),
    ("second preference", ["ja", "fr-FR"], ["en", "fr"], "fr"),
    ("fallback to en", ["ja"], ["de", "en", "fr"], "en"),
    ("fallback to the first authored", ["ja"], ["de", "fr"], "de"),
    ("no languages known", [], ["fr", "en"], "en"),
    ("case and underscore", ["PT_br"], ["en", "pt-br"], "pt-br"),
    ("single-language content", ["de"], [""], ""),
]


@pytest.mark.parametrize("name,languages,order,expected", LANGS, ids=[x[0] for x in LANGS])
def test_choose_language(name, languages, order, expected):
    assert content.choose_language(order, languages) == expected


def test_variants_are_recognised_only_when_every_key_is_a_language():
    assert content.is_variants({"en": {"text": "a"}, "de": {"text": "b"}})
    assert not content.is_variants({"text": "a"})
    assert not content.is_variants({"en": {"text": "a"}, "text": "b"})


# -- placeholders ------------------------------------------------------------------

def test_placeholders_are_filled_as_text_never_as_markup():
    compiled = content.check({"text": "Hi **{{name|there}}** from {{city|your city}} ({{utm_campaign}})",
                              "buttons": [{"label": "Hi {{name}}", "action": "chat"}]})
    hostile = "[x](javascript:alert(1)) **<img src=x onerror=alert(1)>**"
    out = content.resolve(compiled, ["en"], {"name": hostile, "city": None, "utm_campaign": "spring"})
    assert out["body"] == [["t", "Hi "], ["b", [["t", hostile]]], ["t", " from your city (spring)"]]
    assert out["buttons"][0]["label"] == "Hi " + hostile
    assert out["text"] == f"Hi {hostile} from your city (spring)"


@pytest.mark.parametrize("value,expected", [
    (None, "fb"), ("", "fb"), ("  ", "fb"), ({"a": 1}, "fb"), ([1], "fb"), (True, "true"), (3, "3"),
    ("a\x00b\x1bc", "abc"), ("x" * 500, "x" * 199 + "…"), (" Ann ", "Ann"),
])
def test_placeholder_values_are_cleaned(value, expected):
    compiled = content.check({"text": "{{v|fb}}"})
    assert content.resolve(compiled, [], {"v": value})["text"] == expected


def test_placeholder_values_come_from_identify_geo_and_utm():
    values = content.placeholder_values({"Name": "Ann", "plan": "pro", "city": "identify city"},
                                        {"city": "Berlin", "country": "DE"}, {"utm_campaign": "spring"})
    assert values["name"] == "Ann" and values["user.plan"] == "pro"
    assert values["city"] == "Berlin" and values["country"] == "DE" and values["utm_campaign"] == "spring"


def test_the_engine_resolves_content_for_the_visitor():
    payload = {"site": "s", "messages": [{"id": "m", "audience": "all", "rules": [], "content": {
        "en": {"text": "Hi {{name|there}}, from {{utm_source|nowhere}}"},
        "de": {"text": "Hallo {{name|du}}", "buttons": [{"label": "Chatten"}]}}}]}
    engine = Engine(payload, context={"languages": ["de-DE", "en"]})
    engine.step([{"t": 0, "type": "identify", "attributes": {"name": "<b>Eva</b>"}}], 0)
    result = engine.step([{"t": 1, "type": "page_view", "url": "https://s.example/?utm_source=ads", "referrer": ""}], 1)
    shown = result["decisions"][0]["content"]
    assert shown["lang"] == "de" and shown["text"] == "Hallo <b>Eva</b>"
    assert shown["buttons"] == [{"id": "0", "label": "Chatten", "action": "chat"}]
    engine = Engine(payload, context={"languages": ["en-GB"]})
    result = engine.step([{"t": 1, "type": "page_view", "url": "https://s.example/?utm_source=ads", "referrer": ""}], 1)
    assert result["decisions"][0]["content"]["text"] == "Hi there, from ads"


def test_resolve_drops_urls_that_slipped_past_validation():
    compiled = {"variants": {"": {"body": [], "image": {"src": "javascript:x", "alt": ""},
                                  "buttons": [{"id": "0", "label": [["t", "x"]], "action": "url", "url": "javascript:x"}],
                                  "links": [{"label": [["t", "x"]], "url": "data:text/html,x"}],
                                  "attachments": [{"name": "a", "url": "vbscript:x", "size": 1, "size_text": "1 B"}],
                                  "sender": {"name": "A", "avatar": "javascript:x"}}}, "order": [""]}
    out = content.resolve(compiled)
    assert out["image"] is None and out["buttons"] == [] and out["links"] == [] and out["attachments"] == []
    assert out["sender"] == {"name": "A", "avatar": None}


@pytest.mark.parametrize("size,text", [(0, "0 B"), (999, "999 B"), (1000, "1 kB"), (245000, "245 kB"),
                                       (1_250_000, "1.2 MB"), (3_000_000_000, "3 GB")])
def test_attachment_sizes(size, text):
    assert content.human_size(size) == text


# -- widget appearance --------------------------------------------------------------

def test_widget_appearance_is_validated_and_passed_on():
    payload = {"site": "s", "widgets": [{"id": "main", "color": "#0f766e", "position": "left", "launcher": "none",
                                         "title": "Acme"}], "messages": []}
    assert bundle.validate(payload) == []
    assert content.appearance(payload) == [{"id": "main", "color": "#0f766e", "position": "left",
                                            "launcher": "none", "title": "Acme"}]
    bad = {"site": "s", "widgets": [{"id": "main", "color": "red;}</style><script>", "position": "middle",
                                     "launcher": "rocket", "font": "x"}], "messages": []}
    assert sorted(p.path for p in bundle.validate(bad)) == [
        ("widgets", 0, "color"), ("widgets", 0, "font"), ("widgets", 0, "launcher"), ("widgets", 0, "position")]
    assert content.appearance(bad) == [{"id": "main"}]

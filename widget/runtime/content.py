"""Message content: the authoring model, its validation and its resolution.

A message's `content` (docs/authoring.md) is short text in a small markup
subset, an optional image or GIF, buttons, links, attachments and a sender.
It may be given once or per language (`content: {en: {...}, de: {...}}`).

`check` validates authored content and compiles it once (at bundle time)
into a plain, JSON-able tree; `resolve` turns the compiled tree into what the
renderer shows for one visitor: one language variant, placeholders filled.

Safety is structural: the markup is parsed here into typed nodes
(text, bold, italic, link, line break) and the renderer builds DOM nodes from
them with `textContent`; nothing is ever handed to an HTML parser. Placeholder
values (identify attributes, UTM parameters, the city) are inserted after
parsing, as text nodes, so a value like `**x**` or `[a](javascript:…)` stays
literal text. URLs are checked here and again by the renderer.
"""

from __future__ import annotations

import re

MAX_TEXT = 2000
MAX_LABEL = 80
MAX_NAME = 120
MAX_URL = 2048
MAX_BUTTONS = 5
MAX_LINKS = 5
MAX_ATTACHMENTS = 5
MAX_VALUE = 200           # a placeholder value is cut to this many characters

BUTTON_ACTIONS = ("chat", "url", "reply")
LINK_SCHEMES = ("http", "https", "mailto", "tel")
IMAGE_DATA = re.compile(r"data:image/(png|gif|jpeg|webp|avif);base64,[A-Za-z0-9+/=\s]+\Z", re.I)
LANGUAGE_KEY = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*\Z", re.I)
PLACEHOLDER_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*\Z", re.I)
CONTENT_FIELDS = ("text", "image", "buttons", "links", "attachments", "sender")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")   # what browsers drop or stop at while reading a scheme
SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):", re.I)


class _Problems:
    def __init__(self, add):
        self._add = add

    def __call__(self, path, message, expected=""):
        self._add(tuple(path), message, expected)


# -- URLs ----------------------------------------------------------------------

def url_scheme(url: str) -> str | None:
    """The scheme a browser would see (lower case), or None for a relative URL.

    Browsers strip leading spaces/control characters and remove tabs and
    newlines anywhere, so `" java\\tscript:"` is `javascript:`."""
    cleaned = URL_IGNORED.sub("", url)
    m = SCHEME.match(cleaned)
    return m.group(1).lower() if m else None


def url_problem(url, *, image: bool = False) -> str | None:
    """Why a URL is refused (None: acceptable). Links may be http(s), mailto,
    tel or relative; images http(s), relative or a base64 data:image (never SVG)."""
    if not isinstance(url, str) or not url.strip():
        return "not a URL"
    if len(url) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    if CONTROL.search(url.replace("\t", "").replace("\n", "").replace("\r", "")):
        return "contains control characters"
    scheme = url_scheme(url)
    if scheme is None:
        if url.strip().startswith("\\"):
            return "a URL may not start with a backslash"
        return None
    if image:
        if scheme in ("http", "https"):
            return None
        if scheme == "data" and IMAGE_DATA.match(url.strip()):
            return None
        return f"{scheme}: is not allowed for images (http, https, or data:image/png|gif|jpeg|webp;base64)"
    if scheme in LINK_SCHEMES:
        return None
    return f"{scheme}: URLs are not allowed (http, https, mailto, tel or a relative URL)"


def safe_url(url, *, image: bool = False) -> str | None:
    """The URL if acceptable, else None (used again when resolving)."""
    return url.strip() if url_problem(url, image=image) is None else None


# -- the markup subset ------------------------------------------------------------

# Compiled nodes (JSON-able lists):
#   ["t", text]  ["b", children]  ["i", children]  ["a", url, children]  ["br"]
#   ["var", name, fallback]   (resolved to ["t", value])
TOKEN = re.compile(r"\\([\\*_\[\]{}()])|\{\{\s*([^{}|]*?)\s*(?:\|\s*([^{}]*?)\s*)?\}\}|\*\*|\*|\[|\]\(|\r?\n")


def parse_markup(text: str, path=(), add=None) -> list:
    """`**bold**`, `*italic*`, `[label](url)`, line breaks, `{{name|fallback}}`,
    and `\\` to escape a markup character. Unclosed markers stay literal text;
    a link with a refused URL becomes its label (and a problem is reported)."""
    report = add or (lambda *a: None)
    root: list = []
    stack: list = [("root", root, None)]   # (kind, children, opening literal)

    def emit_text(s: str):
        if not s:
            return
        children = stack[-1][1]
        if children and children[-1][0] == "t":
            children[-1] = ["t", children[-1][1] + s]
        else:
            children.append(["t", s])

    def close_into_parent(kind, children, extra=None):
        stack.pop()
        node = [kind, children] if extra is None else [kind, extra, children]
        stack[-1][1].append(node)

    def unwind(frame):
        """An unclosed frame: its opening literal and children go to the parent."""
        kind, children, literal = frame
        stack.pop()
        emit_text(literal)
        for child in children:
            if child[0] == "t":
                emit_text(child[1])
            else:
                stack[-1][1].append(child)

    pos = 0
    for m in TOKEN.finditer(text):
        if m.start() < pos:
            continue   # inside a link URL consumed below
        emit_text(text[pos:m.start()])
        pos = m.end()
        tok = m.group(0)
        if m.group(1) is not None:
            emit_text(m.group(1))
        elif tok.startswith("{{"):
            name, fallback = m.group(2), m.group(3)
            if not PLACEHOLDER_NAME.match(name or ""):
                report(path, f"bad placeholder {tok!r}", "{{name}} or {{name|fallback}}")
                emit_text(tok)
            else:
                stack[-1][1].append(["var", name.lower(), fallback or ""])
        elif tok in ("**", "*"):
            kind = "b" if tok == "**" else "i"
            open_idx = next((i for i in range(len(stack) - 1, 0, -1) if stack[i][0] == kind), None)
            if open_idx is None:
                stack.append((kind, [], tok))
            else:
                while len(stack) - 1 > open_idx:
                    unwind(stack[-1])
                close_into_parent(kind, stack[-1][1])
        elif tok == "[":
            stack.append(("a", [], tok))
        elif tok == "](":
            open_idx = next((i for i in range(len(stack) - 1, 0, -1) if stack[i][0] == "a"), None)
            end = _link_end(text, pos)
            if open_idx is None or end is None:
                emit_text(tok)
                continue
            while len(stack) - 1 > open_idx:
                unwind(stack[-1])
            url = text[pos:end]
            pos = end + 1
            problem = url_problem(url)
            if problem:
                report(path, f"link {url[:60]!r}: {problem}", "http(s), mailto, tel or relative URLs")
                label = stack[-1][1]
                stack.pop()
                stack[-1][1].extend(label)
            else:
                close_into_parent("a", stack[-1][1], url.strip())
        else:
            stack[-1][1].append(["br"])
    emit_text(text[pos:])
    while len(stack) > 1:
        unwind(stack[-1])
    return root


def _link_end(text: str, start: int) -> int | None:
    """Index of the `)` closing a link URL (balanced parentheses, one line)."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c in "\r\n":
            return None
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return i
            depth -= 1
    return None


def plain_text(nodes: list) -> str:
    """The text a screen reader would read (markup removed)."""
    out = []
    for n in nodes:
        if n[0] == "t":
            out.append(n[1])
        elif n[0] == "br":
            out.append("\n")
        elif n[0] == "var":
            out.append(n[2])
        elif n[0] == "a":
            out.append(plain_text(n[2]))
        else:
            out.append(plain_text(n[1]))
    return "".join(out)


# -- validation ---------------------------------------------------------------------

def is_variants(value) -> bool:
    """`{en: {...}, de: {...}}`: every key a language code (not a content
    field), some value a mapping (a non-mapping variant is then reported)."""
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(k, str) and LANGUAGE_KEY.match(k) and k not in CONTENT_FIELDS
                    for k in value)
            and any(isinstance(v, dict) for v in value.values()))


def check(value, path=(), add=None) -> dict:
    """Validate authored content; returns the compiled form:
    {"variants": {lang: compiled, ...}, "order": [lang, ...]} — single-language
    content is one variant named "". Problems go to add(path, message, expected)."""
    problems: list = []
    report = _Problems(add or (lambda p, m, e="": problems.append((p, m, e))))
    path = tuple(path)
    if not isinstance(value, dict):
        report(path, "content must be a mapping", "{text: ..., buttons: [...]} or {en: {...}, de: {...}}")
        return {"variants": {"": _compile_one({}, path, report)}, "order": [""]}
    if is_variants(value):
        variants, order = {}, []
        for lang, one in value.items():
            key = lang.lower()
            if key in variants:
                report(path + (lang,), f"duplicate language {lang!r}", "each language once")
                continue
            variants[key] = _compile_one(one, path + (lang,), report)
            order.append(key)
        return {"variants": variants, "order": order}
    return {"variants": {"": _compile_one(value, path, report)}, "order": [""]}


def problems_of(value) -> list:
    """Every problem of authored content as (path, message, expected)."""
    out: list = []
    check(value, (), lambda p, m, e="": out.append((p, m, e)))
    return out


def _text(value, path, report, limit, what="text") -> str:
    if not isinstance(value, str) or not value.strip():
        report(path, f"{value!r} is not a non-empty text", what)
        return ""
    if len(value) > limit:
        report(path, f"longer than {limit} characters", f"at most {limit} characters")
    return value


def _label(value, path, report) -> list:
    """Labels and names: plain text with placeholders, no markup."""
    text = _text(value, path, report, MAX_LABEL, "a short label")
    return _placeholders_only(text, path, report)


def _placeholders_only(text: str, path, report) -> list:
    out, pos = [], 0
    for m in re.finditer(r"\{\{\s*([^{}|]*?)\s*(?:\|\s*([^{}]*?)\s*)?\}\}", text):
        if m.start() > pos:
            out.append(["t", text[pos:m.start()]])
        name = m.group(1)
        if PLACEHOLDER_NAME.match(name or ""):
            out.append(["var", name.lower(), m.group(2) or ""])
        else:
            report(path, f"bad placeholder {m.group(0)!r}", "{{name}} or {{name|fallback}}")
            out.append(["t", m.group(0)])
        pos = m.end()
    if pos < len(text):
        out.append(["t", text[pos:]])
    return out


def _url(value, path, report, *, image=False) -> str:
    problem = url_problem(value, image=image)
    if value is None:
        report(path, "missing", "an http(s) or relative URL" + (" or data:image/…;base64" if image else ", mailto: or tel:"))
        return ""
    if problem:
        report(path, f"{str(value)[:60]!r}: {problem}",
               "an http(s) or relative URL" + (" or data:image/…;base64" if image else ", mailto: or tel:"))
        return ""
    return value.strip()


def _list(value, path, report, limit, what) -> list:
    if not isinstance(value, list):
        report(path, "not a list", what)
        return []
    if len(value) > limit:
        report(path, f"more than {limit} entries", f"at most {limit}")
    return value


def _entries(value: dict, field: str, path, report, limit, what, shape, fields, *, hint=None, coerce=None):
    """Each entry of the list `value[field]` that is a mapping (its unknown
    keys, not in `fields`, reported), as (its path, the entry); `coerce` may
    first turn a short form (a plain string) into a mapping. Any other entry
    is reported: `shape` is a mapping, `hint` (default: the fields)."""
    fpath = path + (field,)
    for i, item in enumerate(_list(value[field], fpath, report, limit, what)):
        p = fpath + (i,)
        if coerce is not None:
            item = coerce(item)
        if not isinstance(item, dict):
            report(p, f"{shape} is a mapping", hint or "{" + ", ".join(fields) + "}")
            continue
        _unknown_keys(item, fields, p, report)
        yield p, item


def _unknown_keys(item: dict, allowed, path, report):
    for key in item:
        if key not in allowed:
            report(path + (key,), f"unknown field {key!r}", ", ".join(allowed))


def _compile_one(value, path, report) -> dict:
    out: dict = {"body": [], "image": None, "buttons": [], "links": [], "attachments": [], "sender": None}
    if not isinstance(value, dict):
        report(path, "content must be a mapping", "{text: ..., buttons: [...]}")
        return out
    _unknown_keys(value, CONTENT_FIELDS, path, report)
    if "text" in value:
        text = _text(value["text"], path + ("text",), report, MAX_TEXT)
        out["body"] = parse_markup(text, path + ("text",), report)
    if "image" in value:
        img = value["image"]
        ipath = path + ("image",)
        if isinstance(img, str):
            img = {"src": img}
        if not isinstance(img, dict):
            report(ipath, "not an image", "a URL or {src, alt, width, height}")
        else:
            _unknown_keys(img, ("src", "alt", "width", "height"), ipath, report)
            alt = img.get("alt", "")
            if not isinstance(alt, str):
                report(ipath + ("alt",), "not a text", "a text describing the image")
                alt = ""
            image = {"src": _url(img.get("src"), ipath + ("src",), report, image=True), "alt": alt[:MAX_NAME]}
            for dim in ("width", "height"):
                if dim in img:
                    v = img[dim]
                    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 4000:
                        report(ipath + (dim,), f"{v!r} is not a size in pixels", "a whole number 1-4000")
                    else:
                        image[dim] = v
            out["image"] = image
    if "buttons" in value:
        for p, b in _entries(value, "buttons", path, report, MAX_BUTTONS, "a list of buttons", "a button",
                             ("label", "action", "url", "id"), hint="{label, action: chat|url|reply, url}"):
            action = b.get("action", "url" if "url" in b else "chat")
            if action not in BUTTON_ACTIONS:
                report(p + ("action",), f"unknown action {action!r}", " | ".join(BUTTON_ACTIONS))
            button = {"id": str(b.get("id", p[-1])), "label": _label(b.get("label"), p + ("label",), report),
                      "action": action}
            if action == "url":
                button["url"] = _url(b.get("url"), p + ("url",), report)
            elif "url" in b:
                report(p + ("url",), f"a `{action}` button takes no url", "action: url")
            out["buttons"].append(button)
    if "links" in value:
        for p, item in _entries(value, "links", path, report, MAX_LINKS, "a list of links", "a link", ("label", "url"),
                                coerce=lambda item: {"url": item, "label": item} if isinstance(item, str) else item):
            out["links"].append({"label": _label(item.get("label", item.get("url")), p + ("label",), report),
                                 "url": _url(item.get("url"), p + ("url",), report)})
    if "attachments" in value:
        for p, item in _entries(value, "attachments", path, report, MAX_ATTACHMENTS, "a list of files",
                                "an attachment", ("name", "url", "size")):
            name = _text(item.get("name"), p + ("name",), report, MAX_NAME, "a file name")
            size = item.get("size")
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
                report(p + ("size",), f"{size!r} is not a size in bytes", "a whole number of bytes")
                size = None
            out["attachments"].append({"name": name, "url": _url(item.get("url"), p + ("url",), report),
                                       "size": size, "size_text": human_size(size)})
    if "sender" in value:
        s, spath = value["sender"], path + ("sender",)
        if isinstance(s, str):
            s = {"name": s}
        if not isinstance(s, dict):
            report(spath, "not a sender", "{name, avatar}")
        else:
            _unknown_keys(s, ("name", "avatar"), spath, report)
            sender = {"name": _text(s.get("name"), spath + ("name",), report, MAX_NAME, "a name"), "avatar": None}
            if "avatar" in s:
                sender["avatar"] = _url(s["avatar"], spath + ("avatar",), report, image=True)
            out["sender"] = sender
    return out


def human_size(size) -> str | None:
    if size is None:
        return None
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}".replace(".0 ", " ")
    return None


# -- resolution ----------------------------------------------------------------------

def choose_language(order: list, languages) -> str:
    """The variant for the visitor's languages (navigator.languages order):
    exact tag, then primary subtag (`de-AT` → `de`), then a variant of the
    same primary language (`de` → `de-ch`); failing all, `en` if present,
    else the first variant authored."""
    if order == [""]:
        return ""
    wanted = [str(x).strip().lower().replace("_", "-") for x in (languages or []) if isinstance(x, str) and x.strip()]
    for lang in wanted:
        if lang in order:
            return lang
        primary = lang.split("-")[0]
        if primary in order:
            return primary
        for key in order:
            if key.split("-")[0] == primary:
                return key
    return "en" if "en" in order else order[0]


def clean_value(value) -> str | None:
    """A placeholder value as plain text (None: unknown)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = CONTROL.sub("", str(value)).strip()
    if not text:
        return None
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


def _fill(nodes: list, values: dict) -> list:
    out: list = []

    def text(s):
        if not s:
            return
        if out and out[-1][0] == "t":
            out[-1] = ["t", out[-1][1] + s]
        else:
            out.append(["t", s])

    for n in nodes:
        kind = n[0]
        if kind == "t":
            text(n[1])
        elif kind == "var":
            value = clean_value(values.get(n[1]))
            text(value if value is not None else n[2])
        elif kind == "br":
            out.append(["br"])
        elif kind == "a":
            out.append(["a", n[1], _fill(n[2], values)])
        else:
            out.append([kind, _fill(n[1], values)])
    return out


def resolve(compiled: dict, languages=None, values: dict | None = None) -> dict:
    """What the renderer shows: one variant, placeholders filled as text.

    Returns {"lang", "text" (plain), "body" (nodes), "image", "buttons"
    [{id, label, action, url?}], "links" [{label, url}], "attachments"
    [{name, url, size, size_text}], "sender" {name, avatar}|None}."""
    values = values or {}
    variants = compiled.get("variants") or {"": {}}
    order = compiled.get("order") or list(variants)
    lang = choose_language(order, languages)
    one = variants.get(lang) or {}

    def label(nodes):
        return plain_text(_fill(nodes, values))

    body = _fill(one.get("body") or [], values)
    image = one.get("image")
    if image and not safe_url(image.get("src"), image=True):
        image = None
    out = {
        "lang": lang,
        "text": plain_text(body),
        "body": body,
        "image": dict(image) if image else None,
        "buttons": [dict(b, label=label(b["label"])) for b in one.get("buttons") or []
                    if b["action"] != "url" or safe_url(b.get("url"))],
        "links": [{"label": label(x["label"]), "url": x["url"]} for x in one.get("links") or [] if safe_url(x["url"])],
        "attachments": [dict(a) for a in one.get("attachments") or [] if safe_url(a["url"])],
        "sender": None,
    }
    sender = one.get("sender")
    if sender:
        avatar = sender.get("avatar")
        out["sender"] = {"name": sender["name"], "avatar": avatar if avatar and safe_url(avatar, image=True) else None}
    return out


def placeholder_values(attributes: dict | None, geo: dict | None, utm: dict | None, extra: dict | None = None) -> dict:
    """The values placeholders read: identify attributes by name (also as
    `user.NAME`), `city`/`country` from geo, `utm_*` from the visit. Geo and
    UTM names win over identify attributes of the same name."""
    values: dict = {}
    for key, value in (attributes or {}).items():
        if isinstance(key, str):
            values[key.lower()] = value
            values["user." + key.lower()] = value
    for key, value in (utm or {}).items():
        values[key] = value
    for key in ("city", "country"):
        if geo and geo.get(key) is not None:
            values[key] = geo[key]
    values.update(extra or {})
    return values


# -- widget appearance ------------------------------------------------------------------

HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
POSITIONS = ("right", "left")
LAUNCHERS = ("bubble", "none")
WIDGET_FIELDS = ("id", "color", "position", "launcher", "title")


def check_widget(w, path=(), add=None) -> dict:
    """A `widgets:` entry's appearance: {id, color: "#4f46e5", position:
    right|left, launcher: bubble|none, title}. Returns the appearance."""
    report = _Problems(add or (lambda *a: None))
    out = {}
    if not isinstance(w, dict):
        return out
    _unknown_keys(w, WIDGET_FIELDS, tuple(path), report)
    if "color" in w:
        if isinstance(w["color"], str) and HEX_COLOR.match(w["color"].strip()):
            out["color"] = w["color"].strip()
        else:
            report(tuple(path) + ("color",), f"{w['color']!r} is not a hex colour", "#rgb or #rrggbb")
    for key, allowed in (("position", POSITIONS), ("launcher", LAUNCHERS)):
        if key in w:
            if w[key] in allowed:
                out[key] = w[key]
            else:
                report(tuple(path) + (key,), f"unknown value {w[key]!r}", " | ".join(allowed))
    if "title" in w:
        out["title"] = _text(w["title"], tuple(path) + ("title",), report, MAX_LABEL, "a short title")
    return out


def appearance(payload) -> list:
    """Every widget's appearance, for the renderer: [{id, color, ...}]."""
    out = []
    widgets = payload.get("widgets") if isinstance(payload, dict) else None
    for w in widgets if isinstance(widgets, list) else []:
        if isinstance(w, dict) and isinstance(w.get("id"), str):
            out.append(dict(check_widget(w), id=w["id"]))
    return out

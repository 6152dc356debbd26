"""URL normalisation and comparison for the URL rules (page_url, referrer_url,
source_url).

Comparison is on normalised URLs: scheme and host lower-cased, default port
dropped, fragment dropped, trailing slash of the path dropped (the root stays
"/"), and the whole string compared case-insensitively (DESIGN.md §4: string
comparison is case-insensitive).

A rule value may be a full URL ("https://shop.example/pricing"), a URL without
scheme ("shop.example/pricing"), or a path ("/pricing"). It is compared with
the same part of the visitor's URL. A value without a query ignores the
visitor's query string; a value with one must match it (parameter order free).
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
UTM_KEYS = ("utm_campaign", "utm_content", "utm_medium", "utm_source", "utm_term")


class Url:
    """A parsed, normalised URL: the parts the rules compare."""

    __slots__ = ("scheme", "host", "path", "query", "full", "raw")

    def __init__(self, scheme: str, host: str, path: str, query: str, raw: str = ""):
        self.scheme, self.host, self.path, self.query = scheme, host, path, query
        text = host + path + ("?" + query if query else "")
        self.full = (scheme + "://" + text) if scheme else text
        self.raw = raw.strip().casefold()


_SLASHES = re.compile(r"/{2,}")   # compiled once: re's own cache is flushed by a bundle's wildcard patterns


def _norm_path(path: str) -> str:
    if not path:
        return "/"
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def _norm_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


@lru_cache(maxsize=512)
def parse(url: str) -> Url:
    """Normalise an absolute URL, a scheme-less URL or a path (cached: the
    same page URL is compared with many rule values)."""
    original = url or ""
    url = original.strip()
    if url.startswith("/") and not url.startswith("//"):
        parts = urlsplit(url)
        return Url("", "", _norm_path(parts.path).casefold(), _norm_query(parts.query).casefold(), original)
    if "://" not in url and not url.startswith("//"):
        url = "//" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and DEFAULT_PORTS.get(scheme) != str(port):
        host = f"{host}:{port}"
    return Url(scheme, host, _norm_path(parts.path).casefold(), _norm_query(parts.query).casefold(), original)


def normalize(url: str) -> str:
    """The canonical text of a URL, as the rules compare it."""
    return parse(url).full


def _comparable(observed: Url, value: Url) -> str:
    """The part of the observed URL that a value of this shape speaks about."""
    query = observed.query if value.query else ""
    tail = observed.path + ("?" + query if query else "")
    if not value.host:
        return tail
    if not value.scheme:
        return observed.host + tail
    return observed.scheme + "://" + observed.host + tail


def equals(observed: str, value: str) -> bool:
    return equals_matcher(value)(parse(observed))


def contains(observed: str, value: str) -> bool:
    """Substring test on the normalised URL (query and all) or the raw one."""
    return contains_matcher(value)(parse(observed))


def equals_matcher(value: str):
    """A test of a parsed URL against one `equals` value, prepared once."""
    v = parse(value)
    want = v.full
    return lambda o: _comparable(o, v) == want


def contains_matcher(value: str):
    needle = value.strip().casefold()
    return lambda o: needle in o.full or needle in o.raw


def _wildcard_regex(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in pattern) + r"\Z", re.S)


def matches(observed: str, pattern: str) -> bool:
    """`*` matches any run of characters. The pattern is compared with the
    same part of the URL that a value of its shape names; a pattern without a
    query ignores the visitor's query string."""
    return matches_matcher(pattern)(parse(observed))


def _pattern_shape(raw: str) -> Url:
    if raw.startswith("/") and not raw.startswith("//"):
        return Url("", "", "/", "?" if "?" in raw else "")
    if "://" in raw:
        return Url("x", "h", "/", "?" if "?" in raw else "")
    return Url("", "h", "/", "?" if "?" in raw else "")


def shape_of(value: Url) -> tuple:
    """The parts of a value `_comparable` looks at: values of one shape
    compare with the same text of the observed URL."""
    return (bool(value.scheme), bool(value.host), bool(value.query))


def comparable(observed: Url, shape: tuple) -> str:
    """`_comparable` for a value of this shape."""
    return _comparable(observed, _SHAPES[shape])


_SHAPES = {(s, h, q): Url("x" if s else "", "h" if h else "", "/", "?" if q else "")
           for s in (False, True) for h in (False, True) for q in (False, True)}


def equals_key(value: str) -> tuple[tuple, str]:
    """(shape, text): an `equals` value holds exactly when
    comparable(observed, shape) == text."""
    v = parse(value)
    return shape_of(v), v.full


def matches_key(pattern: str) -> tuple[tuple, str]:
    """(shape, literal prefix): a `matches` pattern can only hold when
    comparable(observed, shape) starts with the prefix (the pattern's text
    before its first `*`, shortened for the "/x/*" also-matches-"/x" case)."""
    raw = pattern.strip()
    p = raw.casefold()
    if p.endswith("/*"):
        p = p[:-2]
    star = p.find("*")
    return shape_of(_pattern_shape(raw)), p if star < 0 else p[:star]


def matches_shape(pattern: str) -> tuple[tuple, str]:
    """(shape, case-folded pattern) of a `matches` value, for a matcher built
    elsewhere (widget/decisions/reactions.mjs) to compare with comparable(observed, shape)."""
    raw = pattern.strip()
    return shape_of(_pattern_shape(raw)), raw.casefold()


def _wildcard_test(p: str):
    rx = _wildcard_regex(p)
    # "/blog/*" also matches "/blog" itself, since trailing slashes are dropped.
    rx_parent = _wildcard_regex(p[:-2]) if p.endswith("/*") else None
    return lambda target: rx.match(target) is not None or (rx_parent is not None and rx_parent.match(target) is not None)


def wildcard_holds(target: str, p: str) -> bool:
    """A case-folded `matches` pattern against the comparable text."""
    return _wildcard_test(p)(target)


def matches_matcher(pattern: str):
    raw = pattern.strip()
    shape = _pattern_shape(raw)
    holds = _wildcard_test(raw.casefold())
    return lambda o: holds(_comparable(o, shape))


def utm_params(url: str) -> dict:
    """The utm_* parameters of a URL (lower-case keys, original values)."""
    query = urlsplit((url or "").strip()).query
    found = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        key = key.lower()
        if key in UTM_KEYS and key not in found:
            found[key] = value
    return found

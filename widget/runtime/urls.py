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
from urllib.parse import parse_qsl, urlsplit

DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
UTM_KEYS = ("utm_campaign", "utm_content", "utm_medium", "utm_source", "utm_term")


class Url:
    """A parsed, normalised URL: the parts the rules compare."""

    __slots__ = ("scheme", "host", "path", "query", "full")

    def __init__(self, scheme: str, host: str, path: str, query: str):
        self.scheme, self.host, self.path, self.query = scheme, host, path, query
        text = host + path + ("?" + query if query else "")
        self.full = (scheme + "://" + text) if scheme else text


def _norm_path(path: str) -> str:
    if not path:
        return "/"
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def _norm_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def parse(url: str) -> Url:
    """Normalise an absolute URL, a scheme-less URL or a path."""
    url = (url or "").strip()
    if url.startswith("/") and not url.startswith("//"):
        parts = urlsplit(url)
        return Url("", "", _norm_path(parts.path).casefold(), _norm_query(parts.query).casefold())
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
    return Url(scheme, host, _norm_path(parts.path).casefold(), _norm_query(parts.query).casefold())


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
    o, v = parse(observed), parse(value)
    return _comparable(o, v) == v.full


def contains(observed: str, value: str) -> bool:
    """Substring test on the normalised URL (query and all)."""
    needle = value.strip().casefold()
    return needle in parse(observed).full or needle in observed.strip().casefold()


def _wildcard_regex(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in pattern) + r"\Z", re.S)


def matches(observed: str, pattern: str) -> bool:
    """`*` matches any run of characters. The pattern is normalised like a
    value and compared with the same part of the URL; a pattern without a
    query ignores the visitor's query string."""
    o = parse(observed)
    raw = pattern.strip()
    if raw.startswith("/") and not raw.startswith("//"):
        shape = Url("", "", "/", "?" if "?" in raw else "")
    elif "://" in raw:
        shape = Url("x", "h", "/", "?" if "?" in raw else "")
    else:
        shape = Url("", "h", "/", "?" if "?" in raw else "")
    target = _comparable(o, shape)
    p = raw.casefold()
    if "://" in p:
        scheme, rest = p.split("://", 1)
        p = scheme + "://" + rest
    rx = _wildcard_regex(p)
    if rx.match(target):
        return True
    # "/blog/*" should also match "/blog" itself once trailing slashes are gone.
    return p.endswith("/*") and _wildcard_regex(p[:-2]).match(target) is not None


def utm_params(url: str) -> dict:
    """The utm_* parameters of a URL (lower-case keys, original values)."""
    query = urlsplit((url or "").strip()).query
    found = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        key = key.lower()
        if key in UTM_KEYS and key not in found:
            found[key] = value
    return found

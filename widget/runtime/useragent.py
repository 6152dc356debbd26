"""User-agent parsing for the `user_agent` and `platform` rules.

Site owners write what they see in analytics ("Windows 10", "Chrome 76",
"iPhone", "macOS", "Firefox 128"); visitors send raw UA strings. `parse`
turns a raw string into the set of such names ("tokens") that it satisfies:
the family alone ("chrome") and the family with its major, major.minor and
full version ("chrome 76", "chrome 76.0", "chrome 76.0.3809.100").

Known limits, by the nature of UA strings: Windows 11 sends "Windows NT 10.0"
and so matches "Windows 10"; iPadOS 13+ Safari claims to be a Mac (pass
`platform` in the context to correct it); Edge, Opera and Samsung Internet are
their own families, not "Chrome" (a `contains Chrome` on the raw string still
matches them).
"""

from __future__ import annotations

import re

WINDOWS_NT = {"10.0": "10", "6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "vista", "5.2": "xp", "5.1": "xp"}

# (family, regex capturing the version); first match wins, so order matters:
# Edge/Opera/Samsung/in-app browsers also carry "Chrome/…" and "Safari/…".
BROWSERS = (
    ("edge", r"(?:Edg|Edge|EdgA|EdgiOS)/([\d.]+)"),
    ("opera", r"(?:OPR|Opera)/([\d.]+)"),
    ("samsung internet", r"SamsungBrowser/([\d.]+)"),
    ("yandex", r"YaBrowser/([\d.]+)"),
    ("firefox", r"(?:Firefox|FxiOS)/([\d.]+)"),
    ("chrome", r"(?:Chrome|CriOS)/([\d.]+)"),
    ("safari", r"Version/([\d.]+).*Safari/"),
    ("internet explorer", r"(?:MSIE |Trident/.*rv:)([\d.]+)"),
)
ALIASES = {
    "edge": ("microsoft edge",),
    "internet explorer": ("ie",),
    "macos": ("mac os", "mac os x", "os x", "mac"),
    "ios": ("iphone os",),
    "samsung internet": ("samsung browser",),
}


def _versions(family: str, version: str) -> list[str]:
    out = [family]
    if version and family == "windows":
        out.append(f"windows {version}")   # "8" and "8.1" are different products
    elif version:
        parts = version.split(".")
        for n in range(1, len(parts) + 1):
            out.append(f"{family} {'.'.join(parts[:n])}")
    return out


def parse(ua: str) -> dict:
    """Return {"os", "os_version", "browser", "browser_version", "device",
    "platform", "tokens"}; unknown parts are None."""
    ua = ua or ""
    os_name = os_version = browser = browser_version = None
    device = "desktop"

    if m := re.search(r"Windows NT ([\d.]+)", ua):
        os_name, os_version = "windows", WINDOWS_NT.get(m.group(1), m.group(1))
    elif "Windows Phone" in ua:
        os_name, device = "windows phone", "phone"
    elif m := re.search(r"(iPhone|iPad|iPod)(?:.*? OS ([\d_]+))?", ua):
        os_name, os_version = "ios", (m.group(2) or "").replace("_", ".") or None
        device = "tablet" if m.group(1) == "iPad" else "phone"
    elif m := re.search(r"Android(?: ([\d.]+))?", ua):
        os_name, os_version = "android", m.group(1)
        device = "phone" if "Mobile" in ua else "tablet"
    elif "CrOS" in ua:
        os_name = "chromeos"
    elif m := re.search(r"Mac OS X ([\d_.]+)", ua):
        os_name, os_version = "macos", m.group(1).replace("_", ".")
    elif "Macintosh" in ua:
        os_name = "macos"
    elif "Linux" in ua or "X11" in ua:
        os_name = "linux"
    if os_name not in ("android", "ios") and re.search(r"Mobi|Opera Mini|BlackBerry|IEMobile", ua):
        device = "phone"
    if re.search(r"Tablet|Kindle|Silk/", ua) and device != "phone":
        device = "tablet"

    for family, pattern in BROWSERS:
        if m := re.search(pattern, ua):
            browser, browser_version = family, m.group(1)
            break

    tokens: set[str] = set()
    if os_name:
        tokens.update(_versions(os_name, os_version or ""))
        if os_name == "macos" and os_version:
            tokens.update(_versions("mac os x", os_version))
        if os_name == "ios":
            tokens.add("iphone" if device == "phone" else "ipad")
            if "iPod" in ua:
                tokens.add("ipod")
    if browser:
        tokens.update(_versions(browser, browser_version or ""))
    for name, aliases in ALIASES.items():
        for token in list(tokens):
            if token == name or token.startswith(name + " "):
                for alias in aliases:
                    tokens.add(alias + token[len(name):])
    if os_name == "linux" and "Ubuntu" in ua:
        tokens.add("ubuntu")
    if re.search(r"bot|crawler|spider|slurp", ua, re.I):
        tokens.add("bot")
    platform = "desktop" if device == "desktop" else "mobile"
    tokens.update({device, platform})
    return {"os": os_name, "os_version": os_version, "browser": browser,
            "browser_version": browser_version, "device": device,
            "platform": platform, "tokens": frozenset(tokens)}


def describe(ua: str) -> str:
    """A short human-readable name for traces: "Chrome 76 on Windows 10"."""
    p = parse(ua)
    left = f"{p['browser'].title()} {(p['browser_version'] or '').split('.')[0]}".strip() if p["browser"] else "unknown browser"
    right = f"{p['os']} {p['os_version'] or ''}".strip() if p["os"] else "unknown OS"
    return f"{left} on {right} ({p['platform']})"


def _norm(value: str) -> str:
    return " ".join(value.casefold().replace("/", " ").split())


def ua_equals(ua: str, value: str, parsed: dict | None = None) -> bool:
    """True when the UA is what `value` names ("Windows 10", "Chrome 76"),
    or when `value` is the raw UA string itself."""
    v = _norm(value)
    tokens = (parsed or parse(ua))["tokens"]
    return v in tokens or v == _norm(ua)


def ua_contains(ua: str, value: str, parsed: dict | None = None) -> bool:
    """True when the raw UA contains `value`, or a name it satisfies does."""
    v = value.casefold().strip()
    if v in ua.casefold():
        return True
    nv = _norm(value)
    return any(nv in token for token in (parsed or parse(ua))["tokens"])

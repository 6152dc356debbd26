"""Country and city of a visitor, without calling anyone.

Sources, first answer wins:
1. the test override header `X-Proactive-Test-Geo` — only when the server was
   started with `--test-geo` (it lets a QA suite pose as a visitor from
   anywhere; in production anyone could send it, so it is off by default);
2. headers that CDNs and hosts add to each request (Cloudflare, CloudFront,
   Vercel, App Engine);
3. a local MaxMind-format database (GeoLite2-City / GeoIP2-City layout) for the
   client's IP address, when one is configured.
Anything else is unknown (None), which makes every geo rule false.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

TEST_HEADER = "x-proactive-test-geo"

# (country header, city header, provider); values that mean "unknown".
CDN_HEADERS = (
    ("cf-ipcountry", "cf-ipcity", "cloudflare"),
    ("cloudfront-viewer-country", "cloudfront-viewer-city", "cloudfront"),
    ("x-vercel-ip-country", "x-vercel-ip-city", "vercel"),
    ("x-appengine-country", "x-appengine-city", "appengine"),
)
UNKNOWN_COUNTRIES = {"", "XX", "ZZ", "T1", "A1", "A2", "O1"}


@dataclass(frozen=True)
class Geo:
    country: str | None = None
    city: str | None = None
    source: str | None = None

    def as_json(self) -> dict:
        return {"country": self.country, "city": self.city, "source": self.source}


def _header_text(raw: str) -> str:
    """Header values arrive as latin-1; CDNs send UTF-8 bytes or percent-encoding."""
    try:
        raw = raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return unquote(raw).strip()


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    code = _header_text(value).upper()
    if code in UNKNOWN_COUNTRIES or len(code) != 2 or not code.isalpha():
        return None
    return code


def _city(value: str | None) -> str | None:
    if value is None:
        return None
    city = _header_text(value)[:100]
    return city if city and city.lower() not in ("?", "unknown", "(null)") else None


def parse_test_header(value: str) -> Geo:
    """`DE`, `DE; Berlin`, or `country=DE; city=Berlin` (either part may be
    empty or missing; `unknown` alone means no geo at all)."""
    text = _header_text(value)
    if text.lower() in ("", "unknown", "none"):
        return Geo(source="test")
    parts = [p.strip() for p in text.split(";")]
    fields: dict[str, str] = {}
    for i, part in enumerate(parts):
        if "=" in part:
            k, _, v = part.partition("=")
            fields[k.strip().lower()] = v.strip()
        elif i < 2 and part:
            fields["country" if i == 0 else "city"] = part
    return Geo(_country(fields.get("country")), _city(fields.get("city")), "test")


class GeoLocator:
    def __init__(self, database: Path | str | None = None, *, test_override: bool = False, trust_proxy: bool = False):
        self.test_override = test_override
        self.trust_proxy = trust_proxy
        self.database = None
        if database is not None:
            import maxminddb

            self.database = maxminddb.open_database(str(database))

    def locate(self, headers, client_ip: str | None) -> Geo:
        if self.test_override and TEST_HEADER in headers:
            return parse_test_header(headers[TEST_HEADER])
        for country_h, city_h, provider in CDN_HEADERS:
            if country_h in headers:
                country = _country(headers.get(country_h))
                if country:
                    return Geo(country, _city(headers.get(city_h)), provider)
        if self.database is not None:
            ip = self.client_ip(headers, client_ip)
            if ip is not None:
                return self._lookup(ip)
        return Geo()

    def client_ip(self, headers, client_ip: str | None) -> str | None:
        candidate = client_ip
        if self.trust_proxy and headers.get("x-forwarded-for"):
            candidate = headers["x-forwarded-for"].split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(candidate)) if candidate else None
        except ValueError:
            return None

    def _lookup(self, ip: str) -> Geo:
        try:
            record = self.database.get(ip)
        except ValueError:
            return Geo()
        if not isinstance(record, dict):
            return Geo()
        country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
        names = (record.get("city") or {}).get("names") or {}
        city = names.get("en") or next(iter(names.values()), None)
        return Geo(_country(country), _city(city), "mmdb")

    def close(self) -> None:
        if self.database is not None:
            self.database.close()

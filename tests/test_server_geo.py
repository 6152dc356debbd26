"""Geo: CDN headers, the test override (only when enabled), and a local
MaxMind-format database — built here by a minimal MMDB writer and read by the
official `maxminddb` reader, exactly as a GeoLite2-City file would be."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.testclient import TestClient

from server_stub.app import create_widget_app
from server_stub.geo import GeoLocator, parse_test_header


# -- a minimal MMDB writer (IPv4 tree, 24-bit records) ------------------------------------

pytestmark = pytest.mark.no_storage  # geo: no database involved


def _ctrl(type_: int, size: int) -> bytes:
    if size < 29:
        head, extra = size, b""
    elif size < 285:
        head, extra = 29, bytes([size - 29])
    elif size < 65821:
        head, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        head, extra = 31, (size - 65821).to_bytes(3, "big")
    if type_ <= 7:
        return bytes([(type_ << 5) | head]) + extra
    return bytes([head, type_ - 7]) + extra


class U:
    """An unsigned integer of an explicit MMDB type (5: uint16, 6: uint32, 9: uint64)."""

    def __init__(self, type_: int, value: int):
        self.type, self.value = type_, value


def encode(value) -> bytes:
    if isinstance(value, U):
        data = value.value.to_bytes((value.value.bit_length() + 7) // 8, "big") if value.value else b""
        return _ctrl(value.type, len(data)) + data
    if isinstance(value, str):
        data = value.encode()
        return _ctrl(2, len(data)) + data
    if isinstance(value, bool):
        return _ctrl(14, int(value))
    if isinstance(value, int):
        data = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        if value < 2**16:
            return _ctrl(5, len(data)) + data
        if value < 2**32:
            return _ctrl(6, len(data)) + data
        return _ctrl(9, len(data)) + data
    if isinstance(value, dict):
        return _ctrl(7, len(value)) + b"".join(encode(k) + encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _ctrl(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(type(value))


def write_mmdb(path, networks: dict[str, dict]) -> None:
    """networks: {"81.2.69.0/24": record}. Unlisted addresses have no data."""
    data = bytearray()
    offsets = []
    for record in networks.values():
        offsets.append(len(data))
        data += encode(record)
    nodes: list[list] = [[None, None]]  # children: node index, ("data", offset) or None
    for (cidr, _), offset in zip(networks.items(), offsets):
        net = ipaddress.ip_network(cidr)
        bits = int(net.network_address)
        node = 0
        for i in range(net.prefixlen):
            bit = (bits >> (31 - i)) & 1
            if i == net.prefixlen - 1:
                nodes[node][bit] = ("data", offset)
            else:
                if not isinstance(nodes[node][bit], int):
                    nodes.append([None, None])
                    nodes[node][bit] = len(nodes) - 1
                node = nodes[node][bit]
    count = len(nodes)

    def record(child) -> int:
        if child is None:
            return count
        if isinstance(child, int):
            return child
        return count + 16 + child[1]

    tree = b"".join(record(l).to_bytes(3, "big") + record(r).to_bytes(3, "big") for l, r in nodes)
    metadata = {
        # The reader checks the metadata's types: uint32 / uint16 / uint64 as the spec says.
        "node_count": U(6, count), "record_size": U(5, 24), "ip_version": U(5, 4),
        "database_type": "Proactive-Test-City", "languages": ["en"],
        "binary_format_major_version": U(5, 2), "binary_format_minor_version": U(5, 0),
        "build_epoch": U(9, 1_780_000_000), "description": {"en": "test"},
    }
    path.write_bytes(tree + b"\0" * 16 + bytes(data) + b"\xab\xcd\xefMaxMind.com" + encode(metadata))


def city(country: str, name: str | None) -> dict:
    out = {"country": {"iso_code": country, "names": {"en": country}}}
    if name:
        out["city"] = {"names": {"en": name, "de": name + " (de)"}}
    return out


@pytest.fixture
def mmdb(tmp_path):
    path = tmp_path / "test-city.mmdb"
    write_mmdb(path, {
        "81.2.69.0/24": city("GB", "London"),
        "89.160.20.0/24": city("SE", "Linköping"),
        "2.125.160.0/19": city("GB", None),
    })
    return path


def test_the_writer_produces_a_file_the_official_reader_accepts(mmdb):
    import maxminddb

    with maxminddb.open_database(str(mmdb)) as reader:
        assert reader.get("81.2.69.142")["city"]["names"]["en"] == "London"
        assert reader.get("10.0.0.1") is None
        assert reader.metadata().node_count > 0


@pytest.mark.parametrize("ip,expected", [
    ("81.2.69.142", ("GB", "London")),
    ("89.160.20.1", ("SE", "Linköping")),
    ("2.125.161.9", ("GB", None)),        # a network with a country only
    ("10.1.2.3", (None, None)),           # private: not in the database
    ("::1", (None, None)),                # IPv6 against an IPv4 database
    ("not-an-ip", (None, None)),
])
def test_database_lookup(mmdb, ip, expected):
    geo = GeoLocator(mmdb).locate({}, ip)
    assert (geo.country, geo.city) == expected
    assert geo.source == ("mmdb" if expected[0] else None)


def test_forwarded_for_is_used_only_behind_a_trusted_proxy(mmdb):
    headers = {"x-forwarded-for": "81.2.69.142, 10.0.0.1"}
    assert GeoLocator(mmdb).locate(headers, "10.0.0.1").country is None
    assert GeoLocator(mmdb, trust_proxy=True).locate(headers, "10.0.0.1").country == "GB"


@pytest.mark.parametrize("headers,expected", [
    ({"cf-ipcountry": "DE", "cf-ipcity": "Berlin"}, ("DE", "Berlin", "cloudflare")),
    ({"cf-ipcountry": "XX"}, (None, None, None)),                       # Cloudflare: unknown
    ({"cf-ipcountry": "T1"}, (None, None, None)),                       # Cloudflare: Tor
    ({"cloudfront-viewer-country": "fr", "cloudfront-viewer-city": "Paris"}, ("FR", "Paris", "cloudfront")),
    ({"x-vercel-ip-country": "US", "x-vercel-ip-city": "San%20Francisco"}, ("US", "San Francisco", "vercel")),
    ({"x-vercel-ip-country": "AT", "x-vercel-ip-city": "Wien"}, ("AT", "Wien", "vercel")),
    ({"x-appengine-country": "ZZ"}, (None, None, None)),
    ({"x-appengine-country": "jp", "x-appengine-city": "tokyo"}, ("JP", "tokyo", "appengine")),
    ({"cf-ipcountry": "DEU"}, (None, None, None)),                      # not an alpha-2 code
    ({"cf-ipcountry": "DE", "cf-ipcity": "M\u00c3\u00bcnchen"}, ("DE", "München", "cloudflare")),  # UTF-8 bytes as latin-1
    ({}, (None, None, None)),
])
def test_cdn_headers(headers, expected):
    geo = GeoLocator().locate(headers, "203.0.113.5")
    assert (geo.country, geo.city, geo.source) == expected


def test_cdn_header_wins_over_the_database(mmdb):
    assert GeoLocator(mmdb).locate({"cf-ipcountry": "CH"}, "81.2.69.142").country == "CH"


@pytest.mark.parametrize("value,expected", [
    ("DE", ("DE", None)),
    ("de; Berlin", ("DE", "Berlin")),
    ("country=US; city=New York", ("US", "New York")),
    ("city=Paris", (None, "Paris")),
    ("unknown", (None, None)),
    ("", (None, None)),
])
def test_test_override_header_format(value, expected):
    geo = parse_test_header(value)
    assert (geo.country, geo.city, geo.source) == (*expected, "test")


def test_test_override_is_honoured_only_when_enabled(tmp_path, mmdb):
    static = tmp_path / "w"
    static.mkdir()
    (static / "loader.js").write_text("")
    header = {"x-proactive-test-geo": "BR; São Paulo".encode(), "cf-ipcountry": "DE"}  # UTF-8 bytes on the wire
    with TestClient(create_widget_app(static)) as client:
        assert client.get("/api/geo", headers=header).json()["country"] == "DE"  # ignored: CDN header answers
    with TestClient(create_widget_app(static, test_geo=True)) as client:
        assert client.get("/api/geo", headers=header).json() == {"country": "BR", "city": "São Paulo", "source": "test"}
    with TestClient(create_widget_app(static, geo_database=mmdb)) as client:
        # TestClient's client address is "testclient", not an IP: unknown, not an error.
        assert client.get("/api/geo").json() == {"country": None, "city": None, "source": None}

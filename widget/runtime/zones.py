"""Time zones for business hours, from the IANA tz database.

Pyodide ships `zoneinfo` but no tz database, so the data travels with the
bundle: when a bundle is signed (proactive/publishing.py), the TZif file of
the zone its business hours name is copied from the pinned `tzdata` package
into the signed payload (`tzdata: {version, zones: {name: base64}}`), and the
browser reads it with `zoneinfo.ZoneInfo.from_file`. Where a tz database is
installed (CPython: the `tzdata` package, else the system's), a zone the
bundle does not carry is read from it; in the browser such a zone is unknown
and the bundle is refused, never silently read as UTC (docs/decisions.md).

`Zone` is what the delivery gates need from a zone: the UTC offset at an
instant, the next instant the offset changes, and a local wall-clock time as
UTC. All instants are integer seconds; nothing reads a clock.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import zoneinfo
from datetime import datetime, timedelta, timezone

DAY = 86_400
SCAN = 7 * DAY   # offsets are sampled weekly; no zone changes twice within a week after 2000
EPOCH = datetime(1970, 1, 1)
NAME = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*\Z")
FIXED = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?\Z", re.I)
TZIF_MAGIC = b"TZif"
# datetime's range, with a day to spare: an instant outside it (a clock gone
# wrong) is read at its edge rather than raising into the engine
FIRST = int((datetime(1, 1, 2) - EPOCH).total_seconds())
LAST = int((datetime(9998, 12, 31) - EPOCH).total_seconds())


def clamp(t: int) -> int:
    return FIRST if t < FIRST else LAST if t > LAST else t


class Zone:
    """A named zone over a `datetime.tzinfo` (a ZoneInfo or a fixed offset)."""

    def __init__(self, name: str, tzinfo):
        self.name = name
        self.tzinfo = tzinfo
        self._years: dict[int, list[int]] = {}

    def offset(self, t: int) -> int:
        """UTC offset (seconds east) at UTC instant t (seconds)."""
        utc = datetime.fromtimestamp(clamp(t), timezone.utc)
        return int(utc.astimezone(self.tzinfo).utcoffset().total_seconds())

    def _transitions(self, year: int) -> list[int]:
        """The instants of `year` (UTC) at which the offset changes, found by
        sampling weekly and bisecting to the second; computed once per year."""
        found = self._years.get(year)
        if found is None:
            found = []
            start = int((datetime(year, 1, 1) - EPOCH).total_seconds())
            end = int((datetime(year + 1, 1, 1) - EPOCH).total_seconds())
            a, before = start - 1, self.offset(start - 1)
            while a < end:
                b = min(a + SCAN, end)
                after = self.offset(b)
                if after != before:
                    lo, hi = a, b            # offset(lo) == before, offset(hi) != before
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        if self.offset(mid) == before:
                            lo = mid
                        else:
                            hi = mid
                    found.append(hi)
                    a, before = hi, self.offset(hi)
                    continue
                a = b
            self._years[year] = found
        return found

    def next_transition(self, t: int) -> int | None:
        """The first instant after t (seconds) at which the offset changes,
        within the next two years (None: none by then)."""
        if isinstance(self.tzinfo, timezone):
            return None
        year = datetime.fromtimestamp(clamp(t), timezone.utc).year
        for y in range(year, min(year + 3, 9998)):
            for x in self._transitions(y):
                if x > t:
                    return x
        return None

    def to_utc(self, local: int) -> int:
        """UTC seconds of a local wall-clock time (seconds since the local
        epoch). In a gap, read with the offset before it; in an overlap, the
        first occurrence (Python's fold=0)."""
        wall = (EPOCH + timedelta(seconds=clamp(local))).replace(tzinfo=self.tzinfo)
        return local - int(wall.utcoffset().total_seconds())


def _fixed(name: str) -> Zone | None:
    if name.upper() in ("UTC", "GMT", "Z"):
        return Zone("UTC", timezone.utc)
    m = FIXED.match(name)
    if not m:
        return None
    sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return Zone(name, timezone(delta if sign == "+" else -delta))


def from_tzif(name: str, data: bytes) -> Zone | None:
    """A zone from the bytes of its TZif file (None: not a TZif file)."""
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(TZIF_MAGIC):
        return None
    try:
        return Zone(name, zoneinfo.ZoneInfo.from_file(io.BytesIO(bytes(data)), key=name))
    except (ValueError, OSError, IndexError):
        return None


def database_tzif(name: str) -> bytes | None:
    """The TZif file of an IANA zone from an installed tz database: the
    `tzdata` package (the one bundles are signed with), else the system's
    (zoneinfo.TZPATH). None where there is none (the browser)."""
    if not isinstance(name, str) or not NAME.match(name) or ".." in name:
        return None
    bases = list(zoneinfo.TZPATH)
    try:
        import tzdata   # not in the browser; where installed, the release bundles are signed with

        bases.insert(0, tzdata.__path__[0] + "/zoneinfo")
    except ImportError:
        pass
    for base in bases:
        try:
            with open(f"{base}/{name}", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if data.startswith(TZIF_MAGIC):
            return data
    return None


def database_version() -> str | None:
    """The IANA release of the `tzdata` package (None: not installed)."""
    try:
        import tzdata
    except ImportError:
        return None
    return getattr(tzdata, "IANA_VERSION", None)


def carried(tzdata) -> dict[str, bytes]:
    """The TZif files a bundle carries (`tzdata.zones`), decoded; a value
    that is not base64 is left out (and reported by `check_carried`)."""
    zones = tzdata.get("zones") if isinstance(tzdata, dict) else None
    out = {}
    for name, text in (zones or {}).items():
        try:
            out[name] = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
        except (binascii.Error, ValueError):
            out[name] = b""
    return out


def check_carried(tzdata, path, chk) -> None:
    """Validate a bundle's `tzdata: {version, zones: {name: base64 TZif}}`."""
    if not isinstance(tzdata, dict) or not isinstance(tzdata.get("zones", {}), dict):
        chk.add(path, "tzdata must be a mapping", "{version: 2026a, zones: {Europe/Berlin: <base64 TZif>}}")
        return
    for key in tzdata:
        if key not in ("version", "zones"):
            chk.add(path + (key,), f"unknown field {key!r}", "version, zones")
    for name, data in carried(tzdata).items():
        if from_tzif(name, data) is None:
            chk.add(path + ("zones", name), f"not a TZif file for {name!r}", "the base64 of a tz database file")


def lookup(name, carried_zones: dict[str, bytes] | None = None) -> Zone | None:
    """An IANA name (from the bundle's own tz data, else an installed tz
    database), "UTC", or a fixed offset ("UTC+02:00", "+0530", "GMT-3");
    None if unknown here."""
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    fixed = _fixed(name)
    if fixed is not None:
        return fixed
    data = (carried_zones or {}).get(name)
    if data is None:
        data = database_tzif(name)
    return None if data is None else from_tzif(name, data)

"""The built-in POSIX time-zone rules (widget/runtime/tzrules.py) agree with
CPython's zoneinfo for every IANA zone, at instants and at transitions,
over the years business hours will be evaluated in."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timezone

import pytest

from widget.runtime import tzrules

# Morocco's zones follow a Ramadan schedule listed transition by transition
# until 2087; their POSIX footer only describes the years after it.
EXPLICIT_ONLY = {"Africa/Casablanca", "Africa/El_Aaiun"}
ZONES = sorted(z for z in zoneinfo.available_timezones() if z in tzrules.zones() and z not in EXPLICIT_ONLY)
START = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())
END = int(datetime(2036, 1, 1, tzinfo=timezone.utc).timestamp())


def offset(zone: zoneinfo.ZoneInfo, t: int) -> int:
    return int(datetime.fromtimestamp(t, zone).utcoffset().total_seconds())


def test_the_table_covers_the_system_database():
    assert len(tzrules.zones()) >= 590
    assert len(ZONES) >= 590


@pytest.mark.parametrize("name", ZONES)
def test_offsets_match_zoneinfo(name):
    tz, zi = tzrules.lookup(name), zoneinfo.ZoneInfo(name)
    step = 5 * 86400 + 3607   # ~730 instants, drifting through every hour of the day
    for t in range(START, END, step):
        assert tz.offset(t) == offset(zi, t), (name, t)
    # every transition: the offset changes exactly there
    t = START
    while True:
        nxt = tz.next_transition(t)
        if nxt is None or nxt > END:
            break
        assert offset(zi, nxt - 1) != offset(zi, nxt), (name, nxt)
        assert tz.offset(nxt - 1) == offset(zi, nxt - 1) and tz.offset(nxt) == offset(zi, nxt), (name, nxt)
        t = nxt


@pytest.mark.parametrize("spec,offset_s", [("UTC", 0), ("UTC+02:00", 7200), ("+0530", 19800),
                                           ("GMT-3", -10800), ("CET-1CEST,M3.5.0,M10.5.0/3", 3600)])
def test_other_spellings(spec, offset_s):
    assert tzrules.lookup(spec).offset(START) == offset_s


@pytest.mark.parametrize("spec", ["Mars/Olympus", "", "UTC+15", "+25:00", None])
def test_unknown_zones(spec):
    assert tzrules.lookup(spec) is None


def test_local_time_to_utc_in_gaps_and_overlaps():
    tz = tzrules.lookup("Europe/Berlin")
    local = lambda y, m, d, h, mi: int(datetime(y, m, d, h, mi, tzinfo=timezone.utc).timestamp())
    assert tz.to_utc(local(2026, 7, 1, 9, 0)) == local(2026, 7, 1, 7, 0)
    assert tz.to_utc(local(2026, 3, 29, 2, 30)) == local(2026, 3, 29, 1, 30)    # in the spring gap: as fold=0
    assert tz.to_utc(local(2026, 10, 25, 2, 30)) == local(2026, 10, 25, 0, 30)  # first of the two 02:30s

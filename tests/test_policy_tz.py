"""Business hours' time zones (widget/runtime/zones.py) agree with CPython's
zoneinfo on the pinned `tzdata` package, for every zone the validator
accepts, over 2026-2030: offsets at instants, and every change of offset
found to the second. Each zone is read the way the browser reads it: from
the TZif file a signed bundle carries."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timezone

import pytest

from proactive import publishing
from widget.runtime import bundle, policy, zones

START = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())
END = int(datetime(2031, 1, 1, tzinfo=timezone.utc).timestamp())
DAY = 86_400


@pytest.fixture(scope="module", autouse=True)
def tzdata_package_only():
    """CPython's zoneinfo on the `tzdata` package, as bundles are signed with
    (not the system's files, which may be another release)."""
    zoneinfo.reset_tzpath(to=[])
    yield
    zoneinfo.reset_tzpath()


def wheel_zones() -> list[str]:
    zoneinfo.reset_tzpath(to=[])
    try:
        return sorted(zoneinfo.available_timezones())
    finally:
        zoneinfo.reset_tzpath()


ZONES = wheel_zones()


def offset(zone: zoneinfo.ZoneInfo, t: int) -> int:
    return int(datetime.fromtimestamp(t, zone).utcoffset().total_seconds())


def as_the_browser_reads_it(name: str) -> zones.Zone:
    """The zone from the TZif file build_payload signs into the bundle."""
    carried = zones.carried(publishing.tzdata_for({"team": {"timezone": name}}))
    assert set(carried) == {name}
    return zones.lookup(name, carried)


def test_the_validator_accepts_the_whole_database():
    assert len(ZONES) >= 590 and "Africa/Casablanca" in ZONES
    assert all(zones.lookup(name) is not None for name in ZONES)


@pytest.mark.parametrize("name", ZONES)
def test_offsets_and_changes_match_zoneinfo(name):
    ours, ref = as_the_browser_reads_it(name), zoneinfo.ZoneInfo.no_cache(name)
    for t in range(START, END, 5 * DAY + 3607):   # ~365 instants, drifting through every hour of the day
        assert ours.offset(t) == offset(ref, t), (name, t)
    # every change ours announces is one, exactly there ...
    announced, t = [], START
    while (nxt := ours.next_transition(t)) is not None and nxt < END:
        assert offset(ref, nxt - 1) != offset(ref, nxt), (name, nxt)
        announced.append(nxt)
        t = nxt
    # ... and none is missed: each day whose offset changes holds one announced
    for day in range(START, END - DAY, DAY):
        if offset(ref, day) != offset(ref, day + DAY):
            assert any(day < x <= day + DAY for x in announced), (name, day)


def test_morocco_follows_the_database_not_a_fixed_rule():
    """Africa/Casablanca left +01 for Ramadan 2026 (a POSIX rule alone
    says +01 all year): business hours follow the database."""
    doc = {"site": "s", "team": {"timezone": "Africa/Casablanca", "hours": {"daily": "09:00-17:00"}},
           "messages": [{"id": "m", "content": {"text": "x"}, "rules": []}]}
    import json
    payload = json.loads(publishing.build_payload(doc, version=1))
    hours = bundle.parse(payload).settings.hours
    ms = lambda text: int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)
    ramadan, spring = ms("2026-03-02T08:30:00"), ms("2026-04-01T08:30:00")
    assert hours.state(ramadan) == (False, ms("2026-03-02T09:00:00"))   # +00: 09:00 local = 09:00 UTC
    assert hours.state(spring)[0] is True                                  # +01: open since 08:00 UTC


def test_a_bundle_without_the_zone_is_refused_where_there_is_no_database(monkeypatch):
    """The browser has no tz database: a bundle that does not carry its zone
    is refused, never read as UTC; one that carries it is accepted."""
    doc = {"site": "s", "team": {"timezone": "Europe/Berlin", "hours": {"mon-fri": "09:00-18:00"}},
           "messages": [{"id": "m", "content": {"text": "x"}, "rules": []}]}
    tzdata = publishing.tzdata_for(doc)
    monkeypatch.setattr(zones, "database_tzif", lambda name: None)
    assert [p.path for p in bundle.validate(doc)] == [("team", "timezone")]
    assert bundle.validate({**doc, "tzdata": tzdata}) == []
    settings = policy.Settings({**doc, "tzdata": tzdata})
    assert settings.tz.offset(START) == 3600


@pytest.mark.parametrize("tzdata,path", [
    ({"zones": {"Europe/Berlin": "not base64!"}}, ("tzdata", "zones", "Europe/Berlin")),
    ({"zones": {"Europe/Berlin": "aGVsbG8="}}, ("tzdata", "zones", "Europe/Berlin")),   # "hello"
    ({"zones": [], "x": 1}, ("tzdata",)),
    ({"version": "2026a", "extra": 1}, ("tzdata", "extra")),
])
def test_bad_carried_tzdata(tzdata, path):
    doc = {"site": "s", "messages": [{"id": "m", "content": {"text": "x"}, "rules": []}], "tzdata": tzdata}
    assert [p.path for p in bundle.validate(doc)] == [path]


@pytest.mark.parametrize("spec,offset_s", [("UTC", 0), ("UTC+02:00", 7200), ("+0530", 19800),
                                           ("GMT-3", -10800), ("Etc/GMT-3", 10800)])
def test_other_spellings(spec, offset_s):
    assert zones.lookup(spec).offset(START) == offset_s


@pytest.mark.parametrize("spec", ["Mars/Olympus", "", "UTC+15", "+25:00", None, "../../etc/passwd",
                                  "Europe/../../etc/passwd", "zone.tab", "tzdata.zi"])
def test_unknown_zones(spec):
    assert zones.lookup(spec) is None


def test_local_time_to_utc_in_gaps_and_overlaps():
    tz = zones.lookup("Europe/Berlin")
    local = lambda y, m, d, h, mi: int(datetime(y, m, d, h, mi, tzinfo=timezone.utc).timestamp())
    assert tz.to_utc(local(2026, 7, 1, 9, 0)) == local(2026, 7, 1, 7, 0)
    assert tz.to_utc(local(2026, 3, 29, 2, 30)) == local(2026, 3, 29, 1, 30)    # in the spring gap: as fold=0
    assert tz.to_utc(local(2026, 10, 25, 2, 30)) == local(2026, 10, 25, 0, 30)  # first of the two 02:30s


@pytest.mark.parametrize("t", [-10**15, 10**15, 1_772_440_200_000_813])
def test_an_instant_out_of_any_calendar_does_not_raise(t):
    """A clock gone wrong (microseconds for milliseconds) is read at the
    calendar's edge, never raised into the engine."""
    tz = zones.lookup("Africa/Casablanca")
    assert isinstance(tz.offset(t), int)
    tz.next_transition(t)
    hours = policy.Settings({"team": {"timezone": "Europe/Berlin", "hours": {"daily": "09:00-17:00"}}}).hours
    assert hours.state(t * 1000)[0] in (True, False)

"""Delivery policy: the gates between "its rules hold" and "deliver it".

The engine (engine.py) decides *when rules hold*; this module decides whether
a message whose rules hold may be delivered now, and when a closed gate will
open again (so the engine can sleep until then instead of polling).

Every gate is one row of one table, `GATES` (a `Gate`: its name, whether it
allows at an instant, what it read, why it is closed in words, and when it
next changes). Everything else is derived from the table: `allows` (delivery),
`opens_at` (when a blocked message is worth another look), `changes_at` (how
long an answer of Engine.reactions holds), `explain` (traces, the QA kit's
and the debug view's wording). Gates read a `Visitor`, a narrow read-only
view of the visitor and the page, never the engine itself.

Gates, in table (and trace) order:
  enabled     `enabled: false` pauses a message: never shown nor emailed
              (listed only for a paused message)
  team        online / offline / any: live presence when the endpoint has
              answered, else the bundle's business hours (`team:` at the top
              level), else unknown, and then only `any` messages pass
  audience    visitors / users / all (`proactive('identify', ...)` = user)
  widget      the message's widget is the page's widget
  once_per_user
  holdout     a visitor exposed in an experiment's control group never gets it
  schedule    `start` / `end` dates
  caps        `caps: {per_visit, per_day, lifetime}` (per_day = rolling 24 h)
  min_gap     `delivery: {min_gap}` seconds between two shown invitations
  dismissed   a dismissed message stays away for `dismissed_for` seconds
  page, per_page, screen   this page view: a page is open, the message was
              not shown on it yet, no other message is on screen

Everything is pure and reads no clock: instants are integer ms (the engine's).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Callable

from . import experiments, zones

DAY_MS = 86_400_000
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DEFAULT_DISMISSED_FOR_MS = 24 * 3600 * 1000  # a dismissed message stays away a day unless the bundle says otherwise
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_ALIASES = {"daily": WEEKDAYS, "everyday": WEEKDAYS, "weekdays": WEEKDAYS[:5], "weekend": WEEKDAYS[5:]}
RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\Z")
CAP_KEYS = ("per_visit", "per_day", "lifetime")
TEAM_KEYS = ("timezone", "hours", "closed_on")
DELIVERY_KEYS = ("min_gap", "dismissed_for")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ms(seconds) -> int:
    return int(round(float(seconds) * 1000))


# -- business hours -------------------------------------------------------------

def _days(key: str) -> list[int] | None:
    """`mon`, `mon-fri`, `sat,sun`, `daily`, `weekdays`, `weekend` -> weekday indexes."""
    out: list[int] = []
    for part in str(key).lower().replace(" ", "").split(","):
        if part in DAY_ALIASES:
            out += [WEEKDAYS.index(d) for d in DAY_ALIASES[part]]
        elif "-" in part:
            a, _, b = part.partition("-")
            if a not in WEEKDAYS or b not in WEEKDAYS:
                return None
            i, j = WEEKDAYS.index(a), WEEKDAYS.index(b)
            out += [(i + k) % 7 for k in range((j - i) % 7 + 1)]
        elif part in WEEKDAYS:
            out.append(WEEKDAYS.index(part))
        else:
            return None
    return out


def _ranges(value) -> list[tuple[int, int]] | None:
    """"09:00-18:00", "09:00-12:00, 13:00-17:00", a list of those, or
    "closed" -> [(start_minute, end_minute)] (an end past midnight > 1440)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("closed", "")):
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    out = []
    for item in items:
        m = RANGE.match(str(item).strip())
        if not m:
            return None
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            return None
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            end += 1440          # overnight: 22:00-06:00
        out.append((start, end))
    return out


class Hours:
    """Weekly opening hours in a time zone, with closed dates."""

    def __init__(self, tz: zones.Zone, weekly: dict[int, list], closed_on: set[str]):
        self.tz = tz
        self.weekly = weekly          # weekday -> [(start_min, end_min)]
        self.closed_on = closed_on    # {"2026-12-25", ...} local dates

    def _local_day(self, day: int) -> tuple[str, int]:
        local = date.fromordinal(EPOCH_ORDINAL + day)
        return local.isoformat(), local.weekday()

    def _intervals(self, day: int):
        """Opening intervals (local seconds since the local epoch) that start on `day`."""
        iso, weekday = self._local_day(day)
        if iso in self.closed_on:
            return []
        return [(day * 86400 + a * 60, day * 86400 + b * 60) for a, b in self.weekly.get(weekday, [])]

    def state(self, t_ms: int) -> tuple[bool, int | None]:
        """(open now?, the next instant in ms at which that may change)."""
        t = zones.clamp(t_ms // 1000)   # a clock gone wrong: read at the calendar's edge
        off = self.tz.offset(t)
        local = t + off
        day = local // 86400
        is_open = any(a <= local < b for d in (day - 1, day) for a, b in self._intervals(d))
        boundaries = [x for d in range(day - 1, day + 9) for iv in self._intervals(d) for x in iv if x > local]
        nxt = min(boundaries) - off if boundaries else None
        transition = self.tz.next_transition(t)
        if transition is not None and (nxt is None or transition < nxt):
            nxt = transition
        if nxt is None:
            return is_open, None
        return is_open, max(nxt * 1000, t_ms + 1)


# -- dates ------------------------------------------------------------------------

def _parse_instant(value, tz: zones.Zone | None, end: bool) -> int | None:
    """ISO date or date-time -> ms. A date alone is that day's start (for `end`,
    the next day's start: the end date is included); a time without an offset
    is the team's local time (UTC without a team time zone)."""
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, date):
        value = value.isoformat()
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            days = d.toordinal() - EPOCH_ORDINAL + (1 if end else 0)
            local = days * 86400
            return (tz.to_utc(local) if tz else local) * 1000
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    days = dt.toordinal() - EPOCH_ORDINAL
    local = days * 86400 + dt.hour * 3600 + dt.minute * 60 + dt.second
    ms = dt.microsecond // 1000
    if dt.utcoffset() is not None:
        return (local - int(dt.utcoffset().total_seconds())) * 1000 + ms
    return (tz.to_utc(local) if tz else local) * 1000 + ms


# -- validation (called by bundle.py) ------------------------------------------------

def check_caps(v, path, chk):
    if not isinstance(v, dict):
        chk.add(path, "caps must be a mapping", "{per_visit: n, per_day: n, lifetime: n}")
        return {}
    out = {}
    for key, n in v.items():
        if key not in CAP_KEYS:
            chk.add(path + (key,), f"unknown cap {key!r}", " | ".join(CAP_KEYS))
        elif not isinstance(n, int) or isinstance(n, bool) or n < 1:
            chk.add(path + (key,), f"{n!r} is not a count", "a whole number ≥ 1")
        else:
            out[key] = n
    return out


def check_seconds(v, path, chk):
    if not _is_number(v) or v < 0:
        chk.add(path, f"{v!r} is not a number of seconds", "a number ≥ 0")
        return 0
    return _ms(v)


def check_date(v, path, chk):
    if isinstance(v, (date, datetime)):
        v = v.isoformat()
    if _parse_instant(v, None, False) is None:
        chk.add(path, f"{v!r} is not a date", "an ISO date (2026-12-24) or date-time (2026-12-24T18:00, optional offset)")
        return None
    return v


def check_team(v, path, chk, carried: dict | None = None):
    """The top-level `team: {timezone, hours, closed_on}`; `carried`: the
    TZif files the bundle carries (zones.carried)."""
    if not isinstance(v, dict):
        chk.add(path, "team must be a mapping", "{timezone: Europe/Berlin, hours: {mon-fri: '09:00-18:00'}}")
        return
    for key in v:
        if key not in TEAM_KEYS:
            chk.add(path + (key,), f"unknown field {key!r}", ", ".join(TEAM_KEYS))
    if zones.lookup(v.get("timezone", "UTC"), carried) is None:
        chk.add(path + ("timezone",), f"unknown time zone {v.get('timezone')!r}",
                "an IANA name (Europe/Berlin), UTC, or an offset (UTC+02:00)")
    hours = v.get("hours")
    if not isinstance(hours, dict) or not hours:
        chk.add(path + ("hours",), "business hours are missing", "{mon-fri: '09:00-18:00', sat: '10:00-14:00'}")
    else:
        for key, value in hours.items():
            if _days(key) is None:
                chk.add(path + ("hours", key), f"{key!r} is not a day or a range of days",
                        "mon … sun, mon-fri, sat,sun, daily, weekdays, weekend")
            if _ranges(value) is None:
                chk.add(path + ("hours", key), f"{value!r} is not opening hours", "'09:00-18:00', '09:00-12:00, 13:00-17:00' or closed")
    closed = v.get("closed_on", [])
    if not isinstance(closed, list):
        chk.add(path + ("closed_on",), "not a list", "a list of dates")
    else:
        for i, d in enumerate(closed):
            try:
                date.fromisoformat(d.isoformat() if isinstance(d, date) else str(d))
            except ValueError:
                chk.add(path + ("closed_on", i), f"{d!r} is not a date", "2026-12-25")


def check_delivery(v, path, chk):
    """The top-level `delivery: {min_gap, dismissed_for}` (seconds)."""
    if not isinstance(v, dict):
        chk.add(path, "delivery must be a mapping", "{min_gap: 60, dismissed_for: 86400}")
        return
    for key, value in v.items():
        if key not in DELIVERY_KEYS:
            chk.add(path + (key,), f"unknown field {key!r}", ", ".join(DELIVERY_KEYS))
        else:
            check_seconds(value, path + (key,), chk)


def check_dates(message: dict, path, chk):
    start, end = message.get("start"), message.get("end")
    s, e = _parse_instant(start, None, False), _parse_instant(end, None, True)
    if s is not None and e is not None and e <= s:
        chk.add(path + ("end",), "ends before it starts", "an end after the start")


# -- compiled settings -----------------------------------------------------------------

class Settings:
    """The bundle's delivery settings, compiled once."""

    def __init__(self, raw: dict):
        team = raw.get("team") if isinstance(raw.get("team"), dict) else None
        self.tz = zones.lookup(team.get("timezone", "UTC"), zones.carried(raw.get("tzdata"))) if team else None
        self.hours = None
        if team and self.tz is not None and isinstance(team.get("hours"), dict):
            weekly: dict[int, list] = {}
            for key, value in team["hours"].items():
                days, ranges = _days(key), _ranges(value)
                for d in days or []:
                    weekly[d] = list(ranges or [])   # a later key overrides an earlier one
            closed = {d.isoformat() if isinstance(d, date) else str(d) for d in team.get("closed_on", []) or []}
            self.hours = Hours(self.tz, weekly, closed)
        delivery = raw.get("delivery") if isinstance(raw.get("delivery"), dict) else {}
        self.min_gap = _ms(delivery.get("min_gap", 0))
        self.dismissed_for = _ms(delivery["dismissed_for"]) if "dismissed_for" in delivery else DEFAULT_DISMISSED_FOR_MS
        self.windows: dict[str, tuple[int | None, int | None]] = {}
        for m in raw.get("messages") or []:
            if isinstance(m, dict) and isinstance(m.get("id"), str):
                self.windows[m["id"]] = (_parse_instant(m.get("start"), self.tz, False),
                                         _parse_instant(m.get("end"), self.tz, True))


# -- the record ----------------------------------------------------------------------
# record["shows"][message_id] = [lifetime_count, [recent show instants]]

def _shows(record: dict, mid: str) -> tuple[int, list]:
    return _entry(record.get("shows"), mid)


def merge_shows(a: dict, b: dict) -> dict:
    """Two tabs' show histories: the instants' union, and a lifetime count
    that adds up what each tab showed since they last agreed. Each side lists
    every show from its oldest listed instant on (record_show drops only the
    oldest); from the later of the two oldest instants, the union is exact;
    before it, the tabs share their history, so the larger count of shows
    older than it holds. (Taking the max of the two counts, as before, lost a
    show whenever both tabs showed the message: a lifetime cap let one more
    through.) A side that lists nothing: the larger count."""
    out = {}
    for mid in set(a or {}) | set(b or {}):
        (ca, ra), (cb, rb) = _entry(a, mid), _entry(b, mid)
        ra, rb = _instants(ra), _instants(rb)
        union = sorted(set(ra) | set(rb))
        if not ra or not rb:
            out[mid] = [max(ca, cb), union]
            continue
        since = max(min(ra), min(rb))
        older = max(ca - sum(1 for x in ra if x >= since), cb - sum(1 for x in rb if x >= since))
        out[mid] = [max(older, 0) + sum(1 for x in union if x >= since), union]
    return out


def _entry(shows: dict | None, mid: str) -> tuple[int, list]:
    """A message's (lifetime count, listed instants), or (0, [])."""
    entry = (shows or {}).get(mid)
    if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list):
        return int(entry[0]), entry[1]
    return 0, []


def _instants(listed: list) -> list:
    return [x for x in listed if isinstance(x, int) and not isinstance(x, bool)]


def record_show(record: dict, mid: str, t: int) -> None:
    """A message was delivered at t: keep what the caps count (this visit's
    and the last 24 h's instants, the lifetime count)."""
    shows = record.setdefault("shows", {})
    count, recent = _shows(record, mid)
    visit_start = record.get("visit_start")
    keep = [x for x in recent if x > t - DAY_MS or (visit_start is not None and x >= visit_start)]
    shows[mid] = [count + 1, keep[-50:] + [t]]


# -- what the gates read -----------------------------------------------------------

class Visitor:
    """The narrow, read-only view of the visitor and the page that the gates
    read: nothing else of the engine. It reads the live state when asked
    (built once per engine, nothing copied); gates never write through it."""

    __slots__ = ("_engine",)

    def __init__(self, engine):
        self._engine = engine

    @property
    def settings(self) -> "Settings":
        return self._engine.bundle.settings

    @property
    def presence(self) -> str | None:
        """The team's live presence ("online"/"offline"), None when the endpoint has not said."""
        return self._engine.team

    @property
    def authenticated(self) -> bool:
        return self._engine.authenticated

    @property
    def widget(self) -> str | None:
        """The page's widget (None: any)."""
        return self._engine.context.get("widget")

    def had_once(self, mid: str) -> bool:
        """A once-per-user message this visitor already had."""
        return mid in self._engine._once

    @property
    def record(self) -> dict:
        """The persistent visitor record (read only)."""
        return self._engine.record

    @property
    def page_url(self) -> str | None:
        page = self._engine.page
        return None if page is None else page["url"]

    @property
    def has_page(self) -> bool:
        return self._engine.page is not None

    def shown_on_page(self, mid: str) -> bool:
        return mid in self._engine.page_shown

    @property
    def on_screen(self) -> str | None:
        return self._engine.on_screen


# -- the gates -----------------------------------------------------------------------

def instant_text(ms) -> str:
    """An instant (ms) as people read it in a trace: ISO 8601 UTC."""
    if not _is_number(ms):
        return "—"
    when = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _never(view, msg, t):
    """next_change of a gate that only events (not time) change."""
    return None


def _json(value) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)


@dataclass(frozen=True)
class Gate:
    """One delivery gate. `allows(view, msg, t)` decides; `detail(view, msg, t)`
    is what it decided on (JSON-able, for traces); `words(detail)` says why it
    is closed, for people; `next_change(view, msg, t)` is the earliest instant
    after t at which `allows` may answer differently with no event in between
    (None: only events change it). `page`: a gate of this page view that the
    engine's delivery phases enforce themselves (one message per page view, one
    on screen); it is listed in traces, not in `allows`. `applies(msg)`: listed
    for this message at all."""

    name: str
    allows: Callable
    detail: Callable
    words: Callable
    next_change: Callable = _never
    page: bool = False
    applies: Callable = lambda msg: True


# team: online / offline / any ----------------------------------------------------

def _team_now(view, t: int) -> tuple[str | None, int | None]:
    """(online/offline/None, next change): live presence when the endpoint
    has answered, else the bundle's business hours, else unknown."""
    presence = view.presence
    if presence in ("online", "offline"):
        return presence, None
    hours = view.settings.hours
    if hours is None:
        return None, None
    is_open, nxt = hours.state(t)
    return ("online" if is_open else "offline"), nxt


def _team_allows(view, msg, t):
    return msg.team == "any" or _team_now(view, t)[0] == msg.team


def _team_next(view, msg, t):
    return None if msg.team == "any" else _team_now(view, t)[1]


def _team_detail(view, msg, t):
    if msg.team == "any":
        return {"required": "any", "current": None}
    current, nxt = _team_now(view, t)
    by_hours = view.presence not in ("online", "offline") and view.settings.hours is not None
    return {"required": msg.team, "current": current,
            **({"source": "business hours", "next_change": nxt} if by_hours else {})}


def _team_words(d):
    source = f" ({d['source']})" if d.get("source") else ""
    return f"team must be {d.get('required')}, is {d.get('current') or 'unknown'}{source}"


# audience / widget / once per user -------------------------------------------------

def _audience_allows(view, msg, t):
    return msg.audience == "all" or (msg.audience == "users") == view.authenticated


def _audience_words(d):
    who = "a logged-in user" if d.get("authenticated") else "an anonymous visitor"
    return f"audience is {d.get('required')}, the visitor is {who}"


def _widget_allows(view, msg, t):
    widget = view.widget
    return widget is None or msg.widget is None or msg.widget == widget


def _once_allows(view, msg, t):
    return not (msg.once_per_user and view.had_once(msg.id))


def _held_out(view, msg) -> bool:
    """The visitor was exposed to the message's experiment in its control
    group (experiments.py): the message never reaches them."""
    exp = msg.experiment
    if exp is None:
        return False
    seen = experiments.exposure(view.record, msg.id, exp.salt)
    return seen is not None and seen[0] == experiments.HOLDOUT


# schedule: start / end dates -------------------------------------------------------

def _window(view, msg) -> tuple[int | None, int | None]:
    return view.settings.windows.get(msg.id, (None, None))


def _schedule_allows(view, msg, t):
    start, end = _window(view, msg)
    return (start is None or t >= start) and (end is None or t < end)


def _schedule_next(view, msg, t):
    start, end = _window(view, msg)
    if start is not None and t < start:
        return start
    return end if end is not None and t < end else None


def _schedule_detail(view, msg, t):
    start, end = _window(view, msg)
    return {"start": start, "end": end}


def _schedule_words(d):
    return f"outside its dates (from {instant_text(d.get('start'))} until {instant_text(d.get('end'))})"


# caps: per visit, per day (rolling 24 h), lifetime -----------------------------------

def _cap_counts(view, msg, t) -> tuple[int, int, int, list]:
    """(lifetime, this visit, last 24 h, the last 24 h's instants, sorted)."""
    count, recent = _shows(view.record, msg.id)
    visit_start = view.record.get("visit_start")
    this_visit = sum(1 for x in recent if visit_start is not None and x >= visit_start)
    day = sorted(x for x in recent if x > t - DAY_MS)
    return count, this_visit, len(day), day


def _caps_closed(caps: dict, lifetime: int, this_visit: int, last_day: int) -> tuple[bool, bool]:
    """(closed for good until an event, closed by the rolling day)."""
    stuck = ("lifetime" in caps and lifetime >= caps["lifetime"]) or \
            ("per_visit" in caps and this_visit >= caps["per_visit"])
    return stuck, "per_day" in caps and last_day >= caps["per_day"]


def _caps_allows(view, msg, t):
    caps = msg.policy.get("caps")
    if not caps:
        return True
    lifetime, this_visit, last_day, _ = _cap_counts(view, msg, t)
    return not any(_caps_closed(caps, lifetime, this_visit, last_day))


def _caps_next(view, msg, t):
    """Time only drops shows out of the rolling day: an open cap stays open;
    one closed by the day alone opens when enough of its shows are 24 h old."""
    caps = msg.policy.get("caps")
    if not caps:
        return None
    lifetime, this_visit, last_day, day = _cap_counts(view, msg, t)
    stuck, daily = _caps_closed(caps, lifetime, this_visit, last_day)
    if stuck or not daily:
        return None
    return day[last_day - caps["per_day"]] + DAY_MS


def _caps_detail(view, msg, t):
    lifetime, this_visit, last_day, _ = _cap_counts(view, msg, t)
    return {"caps": msg.policy.get("caps") or {}, "lifetime": lifetime, "this_visit": this_visit,
            "last_24h": last_day}


def _caps_words(d):
    return (f"frequency cap reached ({_json(d.get('caps') or {})}; shown {d.get('lifetime')} in all, "
            f"{d.get('this_visit')} this visit, {d.get('last_24h')} in 24 h)")


# min_gap: seconds between two shown invitations --------------------------------------

def _gap_opens(view, msg) -> int | None:
    last, gap = view.record.get("last_invitation"), view.settings.min_gap
    return last + gap + 1 if msg.shows and gap and last is not None else None


def _gap_allows(view, msg, t):
    opens = _gap_opens(view, msg)
    return opens is None or t >= opens


def _gap_next(view, msg, t):
    opens = _gap_opens(view, msg)
    return opens if opens is not None and t < opens else None


def _gap_detail(view, msg, t):
    return {"min_gap_ms": view.settings.min_gap, "last_invitation": view.record.get("last_invitation"),
            "opens_at": _gap_opens(view, msg)}


def _gap_words(d):
    return f"too soon after the last invitation (the gap ends at {instant_text(d.get('opens_at'))})"


# dismissed: a dismissed message stays away for `dismissed_for` -----------------------

def _dismissal(view, msg) -> tuple[int | None, int, int | None]:
    """(dismissed at, for how long, until)."""
    at = view.record.get("dismissed", {}).get(msg.id)
    length = msg.policy.get("dismissed_for")
    length = view.settings.dismissed_for if length is None else length
    return at, length, None if at is None else at + length


def _dismissed_allows(view, msg, t):
    until = _dismissal(view, msg)[2]
    return until is None or t >= until


def _dismissed_next(view, msg, t):
    until = _dismissal(view, msg)[2]
    return until if until is not None and t < until else None


def _dismissed_detail(view, msg, t):
    at, length, until = _dismissal(view, msg)
    return {"dismissed_at": at, "dismissed_for_ms": length, "until": until}


def _dismissed_words(d):
    return f"dismissed by the visitor, away until {instant_text(d.get('until'))}"


def _paused(msg) -> bool:
    return msg.policy.get("enabled") is False


GATES = (
    Gate("enabled", lambda view, msg, t: not _paused(msg),
         lambda view, msg, t: {"enabled": not _paused(msg)},
         lambda d: "paused (enabled: false): never shown nor emailed",
         applies=_paused),
    Gate("team", _team_allows, _team_detail, _team_words, _team_next),
    Gate("audience", _audience_allows,
         lambda view, msg, t: {"required": msg.audience, "authenticated": view.authenticated},
         _audience_words),
    Gate("widget", _widget_allows,
         lambda view, msg, t: {"required": msg.widget, "current": view.widget},
         lambda d: f"for widget {d.get('required')}, this is {d.get('current')}"),
    Gate("once_per_user", _once_allows,
         lambda view, msg, t: {"required": msg.once_per_user, "already_delivered": view.had_once(msg.id)},
         lambda d: "once per user, and this visitor already had it"),
    Gate("holdout", lambda view, msg, t: not _held_out(view, msg),
         lambda view, msg, t: {"held_out": _held_out(view, msg)},
         lambda d: "the visitor is in the experiment's control group (holdout)",
         applies=lambda msg: msg.experiment is not None),
    Gate("schedule", _schedule_allows, _schedule_detail, _schedule_words, _schedule_next),
    Gate("caps", _caps_allows, _caps_detail, _caps_words, _caps_next),
    Gate("min_gap", _gap_allows, _gap_detail, _gap_words, _gap_next),
    Gate("dismissed", _dismissed_allows, _dismissed_detail, _dismissed_words, _dismissed_next),
    # this page view's gates, enforced by the engine's delivery phases
    Gate("page", lambda view, msg, t: view.has_page,
         lambda view, msg, t: {"url": view.page_url},
         lambda d: "no page view yet", page=True),
    Gate("per_page", lambda view, msg, t: not view.shown_on_page(msg.id),
         lambda view, msg, t: {"shown_this_page": view.shown_on_page(msg.id)},
         lambda d: "already shown on this page", page=True),
    Gate("screen", lambda view, msg, t: view.on_screen is None or view.on_screen == msg.id,
         lambda view, msg, t: {"on_screen": view.on_screen},
         lambda d: f"another message is on screen ({d.get('on_screen')})",
         page=True, applies=lambda msg: msg.shows),
)
GATES_BY_NAME = {g.name: g for g in GATES}
DELIVERY_GATES = tuple(g for g in GATES if not g.page)


# -- derived from the table ------------------------------------------------------------

def allows(view, msg, t: int) -> bool:
    """Every delivery gate is open at t."""
    for gate in DELIVERY_GATES:
        if not gate.allows(view, msg, t):
            return False
    return True


def opens_at(view, msg, t: int) -> int | None:
    """The earliest instant after t at which every closed delivery gate may
    have opened by itself (None: none is closed, or one only an event opens)."""
    best = None
    for gate in DELIVERY_GATES:
        if gate.allows(view, msg, t):
            continue
        at = gate.next_change(view, msg, t)
        if at is None or at <= t:
            return None
        best = at if best is None or at > best else best   # all closed gates must open
    return best


def changes_at(view, msg, t: int) -> int | None:
    """The earliest instant after t at which any delivery gate may open or
    close with no event in between (None: only events change them)."""
    best = None
    for gate in DELIVERY_GATES:
        at = gate.next_change(view, msg, t)
        if at is not None and at > t and (best is None or at < best):
            best = at
    return best


def explain(view, msg, t: int) -> dict:
    """Every gate that applies to the message, in table order: what it read,
    `ok`, and for a closed one `text`, why, in words."""
    out = {}
    for gate in GATES:
        if not gate.applies(msg):
            continue
        detail = gate.detail(view, msg, t)
        ok = gate.allows(view, msg, t)
        out[gate.name] = dict(detail, ok=ok) if ok else dict(detail, ok=ok, text=gate.words(detail))
    return out


def describe(name: str, detail: dict) -> str:
    """A closed gate of an explain trace in words (a trace without `text`,
    or a gate this version does not know)."""
    if detail.get("text"):
        return detail["text"]
    gate = GATES_BY_NAME.get(name)
    if gate is not None:
        return gate.words(detail)
    details = ", ".join(f"{k} {_json(v)}" for k, v in detail.items() if k != "ok")
    return f"{name} closed" + (f" ({details})" if details else "")

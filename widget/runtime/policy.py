"""Delivery policy: the gates between "its rules hold" and "deliver it".

The engine (engine.py) decides *when rules hold*; this module decides whether
a message whose rules hold may be delivered now, and when a closed gate will
open again (so the engine can sleep until then instead of polling).

Gates, in the order `explain` lists them:
  team        online / offline / any: live presence when the endpoint has
              answered, else the bundle's business hours (`team:` at the top
              level), else unknown, and then only `any` messages pass
  audience    visitors / users / all (`proactive('identify', ...)` = user)
  widget      the message's widget is the page's widget
  once_per_user
  schedule    `start` / `end` dates
  caps        `caps: {per_visit, per_day, lifetime}` (per_day = rolling 24 h)
  min_gap     `delivery: {min_gap}` seconds between two shown invitations
  dismissed   a dismissed message stays away for `dismissed_for` seconds

Everything is pure and reads no clock: instants are integer ms (the engine's).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from . import tzrules

DAY_MS = 86_400_000
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

    def __init__(self, tz: tzrules.TimeZone, weekly: dict[int, list], closed_on: set[str]):
        self.tz = tz
        self.weekly = weekly          # weekday -> [(start_min, end_min)]
        self.closed_on = closed_on    # {"2026-12-25", ...} local dates

    def _local_day(self, day: int) -> tuple[str, int]:
        y, m, d = tzrules._civil_from_days(day)
        return f"{y:04d}-{m:02d}-{d:02d}", (day + 3) % 7   # 1970-01-01 was a Thursday (3, Monday = 0)

    def _intervals(self, day: int):
        """Opening intervals (local seconds since the local epoch) that start on `day`."""
        iso, weekday = self._local_day(day)
        if iso in self.closed_on:
            return []
        return [(day * 86400 + a * 60, day * 86400 + b * 60) for a, b in self.weekly.get(weekday, [])]

    def state(self, t_ms: int) -> tuple[bool, int | None]:
        """(open now?, the next instant in ms at which that may change)."""
        t = t_ms // 1000
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

def _parse_instant(value, tz: tzrules.TimeZone | None, end: bool) -> int | None:
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
            days = tzrules._days_from_civil(d.year, d.month, d.day) + (1 if end else 0)
            local = days * 86400
            return (tz.to_utc(local) if tz else local) * 1000
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    days = tzrules._days_from_civil(dt.year, dt.month, dt.day)
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


def check_team(v, path, chk):
    """The top-level `team: {timezone, hours, closed_on}`."""
    if not isinstance(v, dict):
        chk.add(path, "team must be a mapping", "{timezone: Europe/Berlin, hours: {mon-fri: '09:00-18:00'}}")
        return
    for key in v:
        if key not in TEAM_KEYS:
            chk.add(path + (key,), f"unknown field {key!r}", ", ".join(TEAM_KEYS))
    if tzrules.lookup(v.get("timezone", "UTC")) is None:
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
        self.tz = tzrules.lookup(team.get("timezone", "UTC")) if team else None
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

def _shows(engine, mid: str) -> tuple[int, list]:
    entry = engine.record.get("shows", {}).get(mid)
    if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list):
        return int(entry[0]), entry[1]
    return 0, []


def merge_shows(a: dict, b: dict) -> dict:
    """Two tabs' show histories: lifetime counts take the max, instants the union."""
    out = {}
    for mid in set(a or {}) | set(b or {}):
        ea, eb = (a or {}).get(mid) or [0, []], (b or {}).get(mid) or [0, []]
        out[mid] = [max(ea[0], eb[0]), sorted(set(ea[1]) | set(eb[1]))]
    return out


# -- the policy -------------------------------------------------------------------

class Delivery:
    """The engine's delivery policy (engine.Engine(policy=...)): `gates`
    explains, `allows` decides, `wakeup` says when a closed time gate opens,
    `delivered` records a delivery, `reopens` tells the engine to re-evaluate
    everything at an instant when a gate opened."""

    def __init__(self):
        self._settings: Settings | None = None
        self._for = None
        self._reported: set[int] = set()

    def settings(self, engine) -> Settings:
        raw = engine.bundle.raw
        if self._for is not raw:
            self._settings, self._for = Settings(raw), raw
        return self._settings

    # -- team -----------------------------------------------------------
    def team(self, engine, t: int) -> tuple[str | None, str | None, int | None]:
        """(online/offline/None, where it came from, next change in ms)."""
        if engine.team in ("online", "offline"):
            return engine.team, "presence", None
        hours = self.settings(engine).hours
        if hours is None:
            return None, None, None
        is_open, nxt = hours.state(t)
        return ("online" if is_open else "offline"), "hours", nxt

    # -- gates ------------------------------------------------------------
    def gates(self, engine, msg, t: int) -> list[tuple[str, bool, dict]]:
        s = self.settings(engine)
        team, source, team_next = self.team(engine, t) if msg.team != "any" else (None, None, None)
        authenticated = engine.authenticated
        widget = engine.context.get("widget")
        once_done = msg.id in engine._once
        start, end = s.windows.get(msg.id, (None, None))
        count, recent = _shows(engine, msg.id)
        caps = msg.policy.get("caps") or {}
        visit_start = engine.record.get("visit_start")
        per_visit = sum(1 for x in recent if visit_start is not None and x >= visit_start)
        per_day = sum(1 for x in recent if x > t - DAY_MS)
        last = engine.record.get("last_invitation")
        dismissed_at = engine.record.get("dismissed", {}).get(msg.id)
        dismissed_for = msg.policy.get("dismissed_for")
        dismissed_for = s.dismissed_for if dismissed_for is None else dismissed_for
        gap_open = last + s.min_gap + 1 if last is not None and s.min_gap else None
        return [
            ("team", msg.team == "any" or team == msg.team,
             {"required": msg.team, "current": team,
              **({"source": "business hours", "next_change": team_next} if source == "hours" else {})}),
            ("audience", msg.audience == "all" or (msg.audience == "users") == authenticated,
             {"required": msg.audience, "authenticated": authenticated}),
            ("widget", widget is None or msg.widget is None or msg.widget == widget,
             {"required": msg.widget, "current": widget}),
            ("once_per_user", not (msg.once_per_user and once_done),
             {"required": msg.once_per_user, "already_delivered": once_done}),
            ("schedule", (start is None or t >= start) and (end is None or t < end),
             {"start": start, "end": end}),
            ("caps", not (("lifetime" in caps and count >= caps["lifetime"])
                          or ("per_visit" in caps and per_visit >= caps["per_visit"])
                          or ("per_day" in caps and per_day >= caps["per_day"])),
             {"caps": caps, "lifetime": count, "this_visit": per_visit, "last_24h": per_day}),
            ("min_gap", not msg.shows or gap_open is None or t >= gap_open,
             {"min_gap_ms": s.min_gap, "last_invitation": last, "opens_at": gap_open}),
            ("dismissed", dismissed_at is None or t >= dismissed_at + dismissed_for,
             {"dismissed_at": dismissed_at, "dismissed_for_ms": dismissed_for,
              "until": None if dismissed_at is None else dismissed_at + dismissed_for}),
        ]

    def allows(self, engine, msg, t: int) -> bool:
        """The fast path of `gates` (same answer, no explanation)."""
        if msg.audience != "all" and (msg.audience == "users") != engine.authenticated:
            return False
        widget = engine.context.get("widget")
        if widget is not None and msg.widget is not None and msg.widget != widget:
            return False
        if msg.once_per_user and msg.id in engine._once:
            return False
        s = self.settings(engine)
        if msg.team != "any" and self.team(engine, t)[0] != msg.team:
            return False
        start, end = s.windows.get(msg.id, (None, None))
        if (start is not None and t < start) or (end is not None and t >= end):
            return False
        rec = engine.record
        last = rec.get("last_invitation")
        if msg.shows and s.min_gap and last is not None and t <= last + s.min_gap:
            return False
        dismissed_at = rec.get("dismissed", {}).get(msg.id)
        if dismissed_at is not None:
            dismissed_for = msg.policy.get("dismissed_for")
            if t < dismissed_at + (s.dismissed_for if dismissed_for is None else dismissed_for):
                return False
        if msg.policy.get("caps"):
            return next(ok for name, ok, _ in self.gates(engine, msg, t) if name == "caps")
        return True

    def _opens_at(self, engine, msg, t: int) -> int | None:
        """The earliest instant after t at which a closed time gate may open
        (None: no time gate is closed, or none will ever open)."""
        best = None
        for name, ok, detail in self.gates(engine, msg, t):
            at = None
            if ok:
                continue
            if name == "team":
                at = detail.get("next_change")
            elif name == "schedule":
                at = detail["start"] if detail["start"] is not None and t < detail["start"] else None
            elif name == "caps":
                caps = detail["caps"]
                if not ("lifetime" in caps and detail["lifetime"] >= caps["lifetime"]) and \
                        not ("per_visit" in caps and detail["this_visit"] >= caps["per_visit"]):
                    _, recent = _shows(engine, msg.id)
                    window = sorted(x for x in recent if x > t - DAY_MS)
                    k = len(window) - caps["per_day"]
                    at = window[k] + DAY_MS if k >= 0 else None
            elif name == "min_gap":
                at = detail["opens_at"]
            elif name == "dismissed":
                at = detail["until"]
            if at is None or at <= t:
                return None       # an event-driven gate, or one that never opens by itself
            best = at if best is None or at > best else best   # all closed gates must open
        return best

    def wakeup(self, engine, t: int) -> int | None:
        best = None
        candidates = set(engine.holding) | set(engine.pending)
        for idx in candidates:
            msg = engine.messages[idx]
            if msg.id in engine.page_shown:
                continue
            at = self._opens_at(engine, msg, t)
            if at is not None and at > t and (best is None or at < best):
                best = at
        if best is not None:
            self._reported.add(best)
        return best

    def retry_at(self, engine, msg, t: int, nxt: int) -> int | None:
        """Blocked now, rules changing at `nxt`: re-evaluate when both the
        gates may have opened and the rules may have changed (None: blocked
        by an event-driven gate)."""
        opens = self._opens_at(engine, msg, t)
        return None if opens is None else max(nxt, opens)

    def changes_at(self, engine, msg, t: int) -> int | None:
        """The earliest instant after t at which a time gate opens or closes:
        business hours, the message's dates, the per-day cap's window, the
        minimum gap, the dismissal cooldown (None: only events change them)."""
        s = self.settings(engine)
        rec = engine.record
        found = []
        if msg.team != "any" and engine.team not in ("online", "offline") and s.hours is not None:
            found.append(s.hours.state(t)[1])
        found.extend(s.windows.get(msg.id, (None, None)))
        last = rec.get("last_invitation")
        if msg.shows and s.min_gap and last is not None:
            found.append(last + s.min_gap + 1)
        dismissed_at = rec.get("dismissed", {}).get(msg.id)
        if dismissed_at is not None:
            dismissed_for = msg.policy.get("dismissed_for")
            found.append(dismissed_at + (s.dismissed_for if dismissed_for is None else dismissed_for))
        if "per_day" in (msg.policy.get("caps") or {}):
            found.extend(x + DAY_MS for x in _shows(engine, msg.id)[1])
        return min((x for x in found if x is not None and x > t), default=None)

    def reopens(self, engine, t: int) -> bool:
        due = {x for x in self._reported if x <= t}
        self._reported -= due
        return bool(due)

    def delivered(self, engine, msg, t: int) -> None:
        shows = engine.record.setdefault("shows", {})
        count, recent = _shows(engine, msg.id)
        visit_start = engine.record.get("visit_start")
        keep = [x for x in recent if x > t - DAY_MS or (visit_start is not None and x >= visit_start)]
        shows[msg.id] = [count + 1, keep[-50:] + [t]]

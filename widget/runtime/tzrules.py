"""IANA time zones as POSIX TZ rules, for business hours under Pyodide.

Pyodide's trimmed standard library has `zoneinfo` but no time-zone database
(tzdata is a separate package we do not ship), so `ZoneInfo("Europe/Berlin")`
fails in the browser. Business hours only need the rule in force now and in
the coming days, which is exactly the POSIX TZ string at the end of every
TZif v2+ file ("CET-1CEST,M3.5.0,M10.5.0/3"). This module carries that string
for every IANA zone (about 10 kB) and evaluates it; tests/test_policy_tz.py
checks it against CPython's zoneinfo for every zone over years of instants.

Regenerate (CPython, with a system tz database):
    python -m widget.runtime.tzrules --regenerate
"""

from __future__ import annotations

import re

TZDATA_VERSION = "2025b-0+deb12u2"
# one line per rule: "<POSIX rule> <zone> <zone> ..."
ZONES_TEXT = """\
<+00>0<+02>-2,M3.5.0/1,M10.5.0/3 Antarctica/Troll
<+01>-1 Africa/Casablanca Africa/El_Aaiun Etc/GMT-1
<+02>-2 Etc/GMT-2
<+0330>-3:30 Asia/Tehran Iran
<+03>-3 Antarctica/Syowa Asia/Aden Asia/Amman Asia/Baghdad Asia/Bahrain Asia/Damascus Asia/Istanbul Asia/Kuwait Asia/Qatar Asia/Riyadh Etc/GMT-3 Europe/Istanbul Europe/Minsk Turkey
<+0430>-4:30 Asia/Kabul
<+04>-4 Asia/Baku Asia/Dubai Asia/Muscat Asia/Tbilisi Asia/Yerevan Etc/GMT-4 Europe/Astrakhan Europe/Samara Europe/Saratov Europe/Ulyanovsk Indian/Mahe Indian/Mauritius Indian/Reunion
<+0530>-5:30 Asia/Colombo
<+0545>-5:45 Asia/Kathmandu Asia/Katmandu
<+05>-5 Antarctica/Mawson Antarctica/Vostok Asia/Almaty Asia/Aqtau Asia/Aqtobe Asia/Ashgabat Asia/Ashkhabad Asia/Atyrau Asia/Dushanbe Asia/Oral Asia/Qostanay Asia/Qyzylorda Asia/Samarkand Asia/Tashkent Asia/Yekaterinburg Etc/GMT-5 Indian/Kerguelen Indian/Maldives
<+0630>-6:30 Asia/Rangoon Asia/Yangon Indian/Cocos
<+06>-6 Asia/Bishkek Asia/Dacca Asia/Dhaka Asia/Kashgar Asia/Omsk Asia/Thimbu Asia/Thimphu Asia/Urumqi Etc/GMT-6 Indian/Chagos
<+07>-7 Antarctica/Davis Asia/Bangkok Asia/Barnaul Asia/Ho_Chi_Minh Asia/Hovd Asia/Krasnoyarsk Asia/Novokuznetsk Asia/Novosibirsk Asia/Phnom_Penh Asia/Saigon Asia/Tomsk Asia/Vientiane Etc/GMT-7 Indian/Christmas
<+0845>-8:45 Australia/Eucla
<+08>-8 Antarctica/Casey Asia/Brunei Asia/Choibalsan Asia/Irkutsk Asia/Kuala_Lumpur Asia/Kuching Asia/Singapore Asia/Ulaanbaatar Asia/Ulan_Bator Etc/GMT-8 Singapore
<+09>-9 Asia/Chita Asia/Dili Asia/Khandyga Asia/Yakutsk Etc/GMT-9 Pacific/Palau
<+1030>-10:30<+11>-11,M10.1.0,M4.1.0 Australia/LHI Australia/Lord_Howe
<+10>-10 Antarctica/DumontDUrville Asia/Ust-Nera Asia/Vladivostok Etc/GMT-10 Pacific/Chuuk Pacific/Port_Moresby Pacific/Truk Pacific/Yap
<+11>-11 Asia/Magadan Asia/Sakhalin Asia/Srednekolymsk Etc/GMT-11 Pacific/Bougainville Pacific/Efate Pacific/Guadalcanal Pacific/Kosrae Pacific/Noumea Pacific/Pohnpei Pacific/Ponape
<+11>-11<+12>,M10.1.0,M4.1.0/3 Pacific/Norfolk
<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45 NZ-CHAT Pacific/Chatham
<+12>-12 Asia/Anadyr Asia/Kamchatka Etc/GMT-12 Kwajalein Pacific/Fiji Pacific/Funafuti Pacific/Kwajalein Pacific/Majuro Pacific/Nauru Pacific/Tarawa Pacific/Wake Pacific/Wallis
<+13>-13 Etc/GMT-13 Pacific/Apia Pacific/Enderbury Pacific/Fakaofo Pacific/Kanton Pacific/Tongatapu
<+14>-14 Etc/GMT-14 Pacific/Kiritimati
<-00>0 Factory
<-01>1 Atlantic/Cape_Verde Etc/GMT+1
<-01>1<+00>,M3.5.0/0,M10.5.0/1 Atlantic/Azores
<-02>2 America/Noronha Atlantic/South_Georgia Brazil/DeNoronha Etc/GMT+2
<-02>2<-01>,M3.5.0/-1,M10.5.0/0 America/Godthab America/Nuuk America/Scoresbysund
<-03>3 America/Araguaina America/Argentina/Buenos_Aires America/Argentina/Catamarca America/Argentina/ComodRivadavia America/Argentina/Cordoba America/Argentina/Jujuy America/Argentina/La_Rioja America/Argentina/Mendoza America/Argentina/Rio_Gallegos America/Argentina/Salta America/Argentina/San_Juan America/Argentina/San_Luis America/Argentina/Tucuman America/Argentina/Ushuaia America/Asuncion America/Bahia America/Belem America/Buenos_Aires America/Catamarca America/Cayenne America/Cordoba America/Coyhaique America/Fortaleza America/Jujuy America/Maceio America/Mendoza America/Montevideo America/Paramaribo America/Punta_Arenas America/Recife America/Rosario America/Santarem America/Sao_Paulo Antarctica/Palmer Antarctica/Rothera Atlantic/Stanley Brazil/East Etc/GMT+3
<-03>3<-02>,M3.2.0,M11.1.0 America/Miquelon
<-04>4 America/Boa_Vista America/Campo_Grande America/Caracas America/Cuiaba America/Guyana America/La_Paz America/Manaus America/Porto_Velho Brazil/West Etc/GMT+4
<-04>4<-03>,M9.1.6/24,M4.1.6/24 America/Santiago Chile/Continental
<-05>5 America/Bogota America/Eirunepe America/Guayaquil America/Lima America/Porto_Acre America/Rio_Branco Brazil/Acre Etc/GMT+5
<-06>6 Etc/GMT+6 Pacific/Galapagos
<-06>6<-05>,M9.1.6/22,M4.1.6/22 Chile/EasterIsland Pacific/Easter
<-07>7 Etc/GMT+7
<-08>8 Etc/GMT+8 Pacific/Pitcairn
<-0930>9:30 Pacific/Marquesas
<-09>9 Etc/GMT+9 Pacific/Gambier
<-10>10 Etc/GMT+10 Pacific/Rarotonga Pacific/Tahiti
<-11>11 Etc/GMT+11 Pacific/Niue
<-12>12 Etc/GMT+12
ACST-9:30 Australia/Darwin Australia/North
ACST-9:30ACDT,M10.1.0,M4.1.0/3 Australia/Adelaide Australia/Broken_Hill Australia/South Australia/Yancowinna
AEST-10 Australia/Brisbane Australia/Lindeman Australia/Queensland
AEST-10AEDT,M10.1.0,M4.1.0/3 Antarctica/Macquarie Australia/ACT Australia/Canberra Australia/Currie Australia/Hobart Australia/Melbourne Australia/NSW Australia/Sydney Australia/Tasmania Australia/Victoria
AKST9AKDT,M3.2.0,M11.1.0 America/Anchorage America/Juneau America/Metlakatla America/Nome America/Sitka America/Yakutat US/Alaska
AST4 America/Anguilla America/Antigua America/Aruba America/Barbados America/Blanc-Sablon America/Curacao America/Dominica America/Grenada America/Guadeloupe America/Kralendijk America/Lower_Princes America/Marigot America/Martinique America/Montserrat America/Port_of_Spain America/Puerto_Rico America/Santo_Domingo America/St_Barthelemy America/St_Kitts America/St_Lucia America/St_Thomas America/St_Vincent America/Tortola America/Virgin
AST4ADT,M3.2.0,M11.1.0 America/Glace_Bay America/Goose_Bay America/Halifax America/Moncton America/Thule Atlantic/Bermuda Canada/Atlantic
AWST-8 Australia/Perth Australia/West
CAT-2 Africa/Blantyre Africa/Bujumbura Africa/Gaborone Africa/Harare Africa/Juba Africa/Khartoum Africa/Kigali Africa/Lubumbashi Africa/Lusaka Africa/Maputo Africa/Windhoek
CET-1 Africa/Algiers Africa/Tunis
CET-1CEST,M3.5.0,M10.5.0/3 Africa/Ceuta Arctic/Longyearbyen Atlantic/Jan_Mayen CET Europe/Amsterdam Europe/Andorra Europe/Belgrade Europe/Berlin Europe/Bratislava Europe/Brussels Europe/Budapest Europe/Busingen Europe/Copenhagen Europe/Gibraltar Europe/Ljubljana Europe/Luxembourg Europe/Madrid Europe/Malta Europe/Monaco Europe/Oslo Europe/Paris Europe/Podgorica Europe/Prague Europe/Rome Europe/San_Marino Europe/Sarajevo Europe/Skopje Europe/Stockholm Europe/Tirane Europe/Vaduz Europe/Vatican Europe/Vienna Europe/Warsaw Europe/Zagreb Europe/Zurich Poland
CST-8 Asia/Chongqing Asia/Chungking Asia/Harbin Asia/Macao Asia/Macau Asia/Shanghai Asia/Taipei PRC ROC
CST5CDT,M3.2.0/0,M11.1.0/1 America/Havana Cuba
CST6 America/Bahia_Banderas America/Belize America/Chihuahua America/Costa_Rica America/El_Salvador America/Guatemala America/Managua America/Merida America/Mexico_City America/Monterrey America/Regina America/Swift_Current America/Tegucigalpa Canada/Saskatchewan Mexico/General
CST6CDT,M3.2.0,M11.1.0 America/Chicago America/Indiana/Knox America/Indiana/Tell_City America/Knox_IN America/Matamoros America/Menominee America/North_Dakota/Beulah America/North_Dakota/Center America/North_Dakota/New_Salem America/Ojinaga America/Rainy_River America/Rankin_Inlet America/Resolute America/Winnipeg CST6CDT Canada/Central US/Central US/Indiana-Starke
ChST-10 Pacific/Guam Pacific/Saipan
EAT-3 Africa/Addis_Ababa Africa/Asmara Africa/Asmera Africa/Dar_es_Salaam Africa/Djibouti Africa/Kampala Africa/Mogadishu Africa/Nairobi Indian/Antananarivo Indian/Comoro Indian/Mayotte
EET-2 Africa/Tripoli Europe/Kaliningrad Libya
EET-2EEST,M3.4.4/50,M10.4.4/50 Asia/Gaza Asia/Hebron
EET-2EEST,M3.5.0,M10.5.0/3 Europe/Chisinau Europe/Tiraspol
EET-2EEST,M3.5.0/0,M10.5.0/0 Asia/Beirut
EET-2EEST,M3.5.0/3,M10.5.0/4 Asia/Famagusta Asia/Nicosia EET Europe/Athens Europe/Bucharest Europe/Helsinki Europe/Kiev Europe/Kyiv Europe/Mariehamn Europe/Nicosia Europe/Riga Europe/Sofia Europe/Tallinn Europe/Uzhgorod Europe/Vilnius Europe/Zaporozhye
EET-2EEST,M4.5.5/0,M10.5.4/24 Africa/Cairo Egypt
EST5 America/Atikokan America/Cancun America/Cayman America/Coral_Harbour America/Jamaica America/Panama EST Jamaica
EST5EDT,M3.2.0,M11.1.0 America/Detroit America/Fort_Wayne America/Grand_Turk America/Indiana/Indianapolis America/Indiana/Marengo America/Indiana/Petersburg America/Indiana/Vevay America/Indiana/Vincennes America/Indiana/Winamac America/Indianapolis America/Iqaluit America/Kentucky/Louisville America/Kentucky/Monticello America/Louisville America/Montreal America/Nassau America/New_York America/Nipigon America/Pangnirtung America/Port-au-Prince America/Thunder_Bay America/Toronto Canada/Eastern EST5EDT US/East-Indiana US/Eastern US/Michigan
GMT0 Africa/Abidjan Africa/Accra Africa/Bamako Africa/Banjul Africa/Bissau Africa/Conakry Africa/Dakar Africa/Freetown Africa/Lome Africa/Monrovia Africa/Nouakchott Africa/Ouagadougou Africa/Sao_Tome Africa/Timbuktu America/Danmarkshavn Atlantic/Reykjavik Atlantic/St_Helena Etc/GMT Etc/GMT+0 Etc/GMT-0 Etc/GMT0 Etc/Greenwich GMT GMT+0 GMT-0 GMT0 Greenwich Iceland
GMT0BST,M3.5.0/1,M10.5.0 Europe/Belfast Europe/Guernsey Europe/Isle_of_Man Europe/Jersey Europe/London GB GB-Eire
HKT-8 Asia/Hong_Kong Hongkong
HST10 HST Pacific/Honolulu Pacific/Johnston US/Hawaii
HST10HDT,M3.2.0,M11.1.0 America/Adak America/Atka US/Aleutian
IST-1GMT0,M10.5.0,M3.5.0/1 Eire Europe/Dublin
IST-2IDT,M3.4.4/26,M10.5.0 Asia/Jerusalem Asia/Tel_Aviv Israel
IST-5:30 Asia/Calcutta Asia/Kolkata
JST-9 Asia/Tokyo Japan
KST-9 Asia/Pyongyang Asia/Seoul ROK
MET-1MEST,M3.5.0,M10.5.0/3 MET
MSK-3 Europe/Kirov Europe/Moscow Europe/Simferopol Europe/Volgograd W-SU
MST7 America/Creston America/Dawson America/Dawson_Creek America/Fort_Nelson America/Hermosillo America/Mazatlan America/Phoenix America/Whitehorse Canada/Yukon MST Mexico/BajaSur US/Arizona
MST7MDT,M3.2.0,M11.1.0 America/Boise America/Cambridge_Bay America/Ciudad_Juarez America/Denver America/Edmonton America/Inuvik America/Shiprock America/Yellowknife Canada/Mountain MST7MDT Navajo US/Mountain
NST3:30NDT,M3.2.0,M11.1.0 America/St_Johns Canada/Newfoundland
NZST-12NZDT,M9.5.0,M4.1.0/3 Antarctica/McMurdo Antarctica/South_Pole NZ Pacific/Auckland
PKT-5 Asia/Karachi
PST-8 Asia/Manila
PST8PDT,M3.2.0,M11.1.0 America/Ensenada America/Los_Angeles America/Santa_Isabel America/Tijuana America/Vancouver Canada/Pacific Mexico/BajaNorte PST8PDT US/Pacific
SAST-2 Africa/Johannesburg Africa/Maseru Africa/Mbabane
SST11 Pacific/Midway Pacific/Pago_Pago Pacific/Samoa US/Samoa
UTC0 Etc/UCT Etc/UTC Etc/Universal Etc/Zulu UCT UTC Universal Zulu localtime
WAT-1 Africa/Bangui Africa/Brazzaville Africa/Douala Africa/Kinshasa Africa/Lagos Africa/Libreville Africa/Luanda Africa/Malabo Africa/Ndjamena Africa/Niamey Africa/Porto-Novo
WET0WEST,M3.5.0/1,M10.5.0 Atlantic/Canary Atlantic/Faeroe Atlantic/Faroe Atlantic/Madeira Europe/Lisbon Portugal WET
WIB-7 Asia/Jakarta Asia/Pontianak
WIT-9 Asia/Jayapura
WITA-8 Asia/Makassar Asia/Ujung_Pandang
"""

DAY = 86400
_ZONES: dict | None = None
_RULE = re.compile(
    r"(?P<std><[^>]+>|[A-Za-z]{3,})(?P<stdoff>[+-]?\d{1,3}(?::\d{2}){0,2})"
    r"(?:(?P<dst><[^>]+>|[A-Za-z]{3,})(?P<dstoff>[+-]?\d{1,3}(?::\d{2}){0,2})?"
    r",(?P<start>[^,/]+)(?:/(?P<stime>[+-]?\d{1,3}(?::\d{2}){0,2}))?"
    r",(?P<end>[^,/]+)(?:/(?P<etime>[+-]?\d{1,3}(?::\d{2}){0,2}))?)?\Z")
_FIXED = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?\Z", re.I)


def zones() -> dict:
    """IANA name -> POSIX rule."""
    global _ZONES
    if _ZONES is None:
        table = {}
        for line in ZONES_TEXT.splitlines():
            if line.strip():
                rule, *names = line.split(" ")
                for name in names:
                    table[name] = rule
        _ZONES = table
    return _ZONES


def _seconds(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    parts += [0] * (3 - len(parts))
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def _leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _rule_day(spec: str, year: int) -> int:
    """Days since the epoch of a POSIX date rule (Mm.w.d, Jn, n) in `year`."""
    if spec.startswith("M"):
        m, w, d = (int(x) for x in spec[1:].split("."))
        first = _days_from_civil(year, m, 1)
        weekday_first = (first + 4) % 7            # 1970-01-01 was a Thursday (4); 0 = Sunday
        day = first + (d - weekday_first) % 7 + (w - 1) * 7
        month_days = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        while day >= first + month_days:
            day -= 7
        return day
    jan1 = _days_from_civil(year, 1, 1)
    if spec.startswith("J"):
        n = int(spec[1:])                           # 1..365, Feb 29 never counted
        return jan1 + n - 1 + (1 if _leap(year) and n >= 60 else 0)
    return jan1 + int(spec)                         # 0..365, Feb 29 counted


class TimeZone:
    """A POSIX TZ rule: UTC offsets (seconds east) and transitions."""

    def __init__(self, rule: str, name: str | None = None):
        self.name = name or rule
        self.rule = rule
        m = _RULE.match(rule)
        if m is None:
            raise ValueError(f"not a POSIX TZ rule: {rule!r}")
        self.std = -_seconds(m.group("stdoff"))
        self.dst = None
        if m.group("dst"):
            self.dst = -_seconds(m.group("dstoff")) if m.group("dstoff") else self.std + 3600
            self.start, self.end = m.group("start"), m.group("end")
            self.stime = _seconds(m.group("stime")) if m.group("stime") else 7200
            self.etime = _seconds(m.group("etime")) if m.group("etime") else 7200

    def _transitions(self, year: int) -> tuple[int, int]:
        """(DST start, DST end) of `year` as UTC seconds."""
        start = _rule_day(self.start, year) * DAY + self.stime - self.std
        end = _rule_day(self.end, year) * DAY + self.etime - self.dst
        return start, end

    def _year(self, t: int) -> int:
        return _civil_from_days((t + self.std) // DAY)[0]

    def offset(self, t: int) -> int:
        """UTC offset (seconds east) at UTC instant t (seconds)."""
        if self.dst is None:
            return self.std
        start, end = self._transitions(self._year(t))
        if start < end:
            return self.dst if start <= t < end else self.std
        return self.std if end <= t < start else self.dst

    def next_transition(self, t: int) -> int | None:
        """The first instant after t (seconds) at which the offset changes."""
        if self.dst is None:
            return None
        y = self._year(t)
        candidates = [x for year in (y - 1, y, y + 1) for x in self._transitions(year) if x > t]
        return min(candidates) if candidates else None

    def to_utc(self, local: int) -> int:
        """UTC seconds of a local wall-clock time (as seconds since the local
        epoch). In a gap, read with the offset before it (like Python's fold=0);
        in an overlap, the first occurrence."""
        offsets = {self.std} if self.dst is None else {self.std, self.dst}
        valid = [local - off for off in offsets if self.offset(local - off) == off]
        if valid:
            return min(valid)
        return local - min(offsets)   # a gap opens when the offset grows: the smaller one was before it


def lookup(name: str) -> TimeZone | None:
    """An IANA name ("Europe/Berlin"), "UTC", a fixed offset ("UTC+02:00",
    "+0530") or a POSIX rule; None if unknown."""
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    rule = zones().get(name)
    if rule is not None:
        return TimeZone(rule, name)
    if name.upper() in ("UTC", "GMT", "Z"):
        return TimeZone("UTC0", "UTC")
    m = _FIXED.match(name)
    if m:
        sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes > 59:
            return None
        posix_sign = "-" if sign == "+" else "+"
        return TimeZone(f"<{sign}{hours:02d}{minutes:02d}>{posix_sign}{hours}:{minutes:02d}", name)
    try:
        return TimeZone(name)
    except ValueError:
        return None


def _regenerate() -> None:  # pragma: no cover - a maintenance tool
    import collections
    import pathlib
    import subprocess
    import zoneinfo

    by_rule = collections.defaultdict(list)
    for name in sorted(zoneinfo.available_timezones()):
        for base in zoneinfo.TZPATH:
            path = pathlib.Path(base) / name
            if path.is_file():
                by_rule[path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1].decode()].append(name)
                break
    body = "\n".join(f"{r} {' '.join(ns)}" for r, ns in sorted(by_rule.items()))
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "tzdata"], capture_output=True, text=True).stdout
    path = pathlib.Path(__file__)
    text = path.read_text()
    text = re.sub(r'ZONES_TEXT = """\\\n.*?\n"""', lambda _: f'ZONES_TEXT = """\\\n{body}\n"""', text, flags=re.S)
    text = re.sub(r'TZDATA_VERSION = ".*?"', lambda _: f'TZDATA_VERSION = "{version}"', text)
    path.write_text(text)


if __name__ == "__main__":  # pragma: no cover
    import sys

    if sys.argv[1:] == ["--regenerate"]:
        _regenerate()

"""The rule catalog: every rule of the seed article, its value kind, the
operators it allows and its documentation. bundle.py validates against it,
conditions.py evaluates by kind, docs/rules.md and the JSON Schema are
written from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import RATINGS

OPERATORS = ("equals", "is_not", "contains", "not_contains", "greater", "less",
             "exists", "not_exists", "is_true", "is_false", "matches")
NO_VALUE_OPS = frozenset({"exists", "not_exists", "is_true", "is_false"})
NEGATIVE_OPS = frozenset({"is_not", "not_contains"})
# Durations whose instant may never have happened, read as infinitely long
# ago (docs/rules.md, "Facts that do not exist yet"): never invited means
# "at least ten minutes since the last invitation" holds.
NEVER_IS_LONG_AGO = frozenset({"time_since_last_invitation"})
NUMERIC = ("greater", "less", "equals", "is_not")
TEXT = ("equals", "is_not", "contains", "not_contains", "exists", "not_exists")


@dataclass(frozen=True)
class Kind:
    name: str
    ops: tuple
    value: str           # "seconds" | "count" | "text" | "bool" | "none" | "enum"
    doc: str


KINDS = {
    "bool": Kind("bool", ("is_true", "is_false", "equals", "is_not"), "bool",
                 "true/false; `is_true`/`is_false` take no value."),
    "presence": Kind("presence", ("exists", "not_exists"), "none",
                     "exists / none; takes no value."),
    "duration": Kind("duration", NUMERIC, "seconds",
                     "seconds since an instant; changes with time."),
    "exit_duration": Kind("exit_duration", NUMERIC, "seconds",
                          "seconds; known only at the instant of an exit intent."),
    "count": Kind("count", NUMERIC, "count", "a whole number."),
    "language": Kind("language", ("equals", "is_not", "exists", "not_exists"), "text",
                     "language codes or English names; `en` matches `en-US`."),
    "text": Kind("text", TEXT, "text", "text, compared case-insensitively."),
    "country": Kind("country", ("equals", "is_not", "exists", "not_exists"), "text",
                    "ISO 3166 alpha-2 codes or English names (`DE` = `Germany`)."),
    "url": Kind("url", TEXT + ("matches",), "text",
                "a URL, a URL without scheme, or a path; `matches` takes `*` wildcards."),
    "user_agent": Kind("user_agent", ("equals", "is_not", "contains", "not_contains"), "text",
                       "names like `Windows 10`, `Chrome 76`, `iPhone`, or raw UA text."),
    "enum": Kind("enum", ("equals", "is_not", "exists", "not_exists"), "enum",
                 "one of a fixed set of values."),
}


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    title: str
    doc: str
    example: dict
    choices: tuple = ()

    @property
    def ops(self) -> tuple:
        ops = KINDS[self.kind].ops
        if self.id == "platform":
            return ("equals", "is_not")
        return ops


def _r(id, kind, title, doc, example, choices=()):
    return Rule(id, kind, title, doc, {"rule": id, **example}, tuple(choices))


RULES = {r.id: r for r in (
    _r("widget_opened", "bool", "Chat widget is opened",
       "Whether the chat widget is open right now on this page.", {"op": "is_true"}),
    _r("browser_language", "language", "Browser language",
       "The visitor's preferred language (navigator.languages[0]).", {"op": "equals", "value": ["en", "fr", "es"]}),
    _r("chat_history", "presence", "Chat history with a visitor",
       "Whether the visitor has ever had a conversation (sent or received a chat message).", {"op": "not_exists"}),
    _r("time_on_page", "duration", "Time on page",
       "Seconds since this page's navigation (an SPA route change is a new page).", {"op": "greater", "value": 40}),
    _r("city", "text", "City",
       "The visitor's city from the endpoint's geo answer; unknown offline.", {"op": "equals", "value": ["New York", "Berlin"]}),
    _r("country", "country", "Country",
       "The visitor's country from the geo answer; unknown offline.", {"op": "equals", "value": ["DE", "AT", "CH"]}),
    _r("page_url", "url", "Current page URL",
       "The URL of the current page.", {"op": "contains", "value": "/pricing"}),
    _r("time_this_visit", "duration", "Time spent this visit",
       "Seconds since the first page view of this visit. A visit continues while the visitor is "
       "active with gaps under 30 minutes.", {"op": "greater", "value": 120}),
    _r("page_views", "count", "Number of page views",
       "Page views in this visit, all pages, this one included.", {"op": "greater", "value": 3}),
    _r("invitations_sent", "count", "Number of sent proactive invitations",
       "Proactive messages shown to this visitor before now (all visits).", {"op": "less", "value": 2}),
    _r("visits", "count", "Number of visits",
       "All-time visits of this visitor, this one included.", {"op": "greater", "value": 1}),
    _r("user_agent", "user_agent", "OS / user agent",
       "The browser's user-agent string, matched by names it satisfies or as raw text.",
       {"op": "equals", "value": "Windows 10"}),
    _r("platform", "enum", "Platform",
       "desktop or mobile, from the user agent unless the page says otherwise (tablets are mobile).",
       {"op": "equals", "value": "mobile"}, ("desktop", "mobile")),
    _r("rating", "enum", "Rating",
       "The visitor's last chat rating.", {"op": "equals", "value": "poor"}, RATINGS),
    _r("referrer_url", "url", "Referrer URL",
       "The page the visitor came from (document.referrer); unknown when empty.",
       {"op": "contains", "value": "google."}),
    _r("source_url", "url", "Source URL",
       "The landing page that started this visit.", {"op": "matches", "value": "/blog/*"}),
    _r("time_before_exit_intent", "exit_duration", "Time before exit intent",
       "Time on page at the instant of an exit intent; checked only at that instant.",
       {"op": "greater", "value": 20}),
    _r("time_without_agent_reply", "duration", "Time with no reply from agent",
       "Seconds since the visitor's last message that no agent message has answered yet.",
       {"op": "greater", "value": 60}),
    _r("time_since_widget_closed", "duration", "Time since the chat widget was closed",
       "Seconds since the widget was last closed; unknown while it is open or if never closed.",
       {"op": "greater", "value": 300}),
    _r("time_since_last_invitation", "duration", "Time since the last proactive invitation",
       "Seconds since a proactive message was last shown to this visitor; never invited is "
       "infinitely long ago (`greater` holds, `less` does not).", {"op": "greater", "value": 600}),
    _r("utm_campaign", "text", "UTM campaign",
       "utm_campaign of this visit's landing URL (a later URL with UTM parameters overrides).",
       {"op": "equals", "value": "spring_sale"}),
    _r("utm_content", "text", "UTM content", "utm_content, like utm_campaign.", {"op": "equals", "value": "logolink"}),
    _r("utm_medium", "text", "UTM medium", "utm_medium, like utm_campaign.", {"op": "equals", "value": "cpc"}),
    _r("utm_source", "text", "UTM source", "utm_source, like utm_campaign.", {"op": "equals", "value": "google"}),
    _r("utm_term", "text", "UTM term", "utm_term, like utm_campaign.", {"op": "contains", "value": "shoes"}),
)}

USER_PREFIX = "user."
_USER_RULES: dict = {}


def rule(rule_id) -> Rule | None:
    """A catalog rule, or for `user.NAME` (targeted messages) the identify
    attribute NAME compared as text (policy.py, docs/authoring.md)."""
    found = RULES.get(rule_id) if isinstance(rule_id, str) else None
    if found is None and isinstance(rule_id, str) and rule_id.startswith(USER_PREFIX):
        name = rule_id[len(USER_PREFIX):]
        if name and len(name) <= 64 and name.replace("_", "a").replace("-", "a").isalnum() and name.isascii():
            found = _USER_RULES.get(rule_id)
            if found is None:
                found = _USER_RULES[rule_id] = Rule(rule_id, "text", f"User attribute {name}",
                                                    f"`{name}` from proactive('identify', {{...}}).",
                                                    {"rule": rule_id, "op": "equals", "value": "pro"})
    return found


MESSAGE_TYPES = ("proactive", "targeted", "email")
TEAM_VALUES = ("online", "offline", "any")
AUDIENCE_VALUES = ("visitors", "users", "all")

LANGUAGE_NAMES = {
    "english": "en", "french": "fr", "spanish": "es", "german": "de", "italian": "it",
    "portuguese": "pt", "dutch": "nl", "russian": "ru", "ukrainian": "uk", "polish": "pl",
    "czech": "cs", "slovak": "sk", "hungarian": "hu", "romanian": "ro", "bulgarian": "bg",
    "greek": "el", "turkish": "tr", "arabic": "ar", "hebrew": "he", "persian": "fa",
    "hindi": "hi", "bengali": "bn", "chinese": "zh", "japanese": "ja", "korean": "ko",
    "vietnamese": "vi", "thai": "th", "indonesian": "id", "malay": "ms", "swedish": "sv",
    "norwegian": "no", "danish": "da", "finnish": "fi", "estonian": "et", "latvian": "lv",
    "lithuanian": "lt", "croatian": "hr", "serbian": "sr", "slovenian": "sl", "catalan": "ca",
    "georgian": "ka", "armenian": "hy", "filipino": "fil", "swahili": "sw", "urdu": "ur",
}

COUNTRIES_TEXT = (
    'AD:Andorra;Principality of Andorra|AE:United Arab Emirates;UAE|AF:Afghanistan;Islamic '
    'Republic of Afghanistan|AG:Antigua and Barbuda|AI:Anguilla|AL:Albania;Republic of '
    'Albania|AM:Armenia;Republic of Armenia|AO:Angola;Republic of '
    'Angola|AQ:Antarctica|AR:Argentina;Argentine Republic|AS:American '
    'Samoa|AT:Austria;Republic of Austria|AU:Australia|AW:Aruba|AX:Åland '
    'Islands|AZ:Azerbaijan;Republic of Azerbaijan|BA:Bosnia and Herzegovina;Republic of '
    "Bosnia and Herzegovina|BB:Barbados|BD:Bangladesh;People's Republic of "
    'Bangladesh|BE:Belgium;Kingdom of Belgium|BF:Burkina Faso|BG:Bulgaria;Republic of '
    'Bulgaria|BH:Bahrain;Kingdom of Bahrain|BI:Burundi;Republic of Burundi|BJ:Benin;Republic '
    'of Benin|BL:Saint Barthélemy|BM:Bermuda|BN:Brunei Darussalam;Brunei|BO:Bolivia, '
    'Plurinational State of;Bolivia;Plurinational State of Bolivia|BQ:Bonaire, Sint Eustatius'
    ' and Saba|BR:Brazil;Federative Republic of Brazil|BS:Bahamas;Commonwealth of the '
    'Bahamas|BT:Bhutan;Kingdom of Bhutan|BV:Bouvet Island|BW:Botswana;Republic of '
    'Botswana|BY:Belarus;Republic of Belarus|BZ:Belize|CA:Canada|CC:Cocos (Keeling) '
    'Islands|CD:Congo, The Democratic Republic of the;DR Congo|CF:Central African '
    'Republic|CG:Congo;Republic of the Congo|CH:Switzerland;Swiss Confederation|CI:Côte '
    "d'Ivoire;Republic of Côte d'Ivoire;Ivory Coast|CK:Cook Islands|CL:Chile;Republic of "
    "Chile|CM:Cameroon;Republic of Cameroon|CN:China;People's Republic of "
    'China|CO:Colombia;Republic of Colombia|CR:Costa Rica;Republic of Costa '
    'Rica|CU:Cuba;Republic of Cuba|CV:Cabo Verde;Republic of Cabo Verde;Cape '
    'Verde|CW:Curaçao|CX:Christmas Island|CY:Cyprus;Republic of Cyprus|CZ:Czechia;Czech '
    'Republic|DE:Germany;Federal Republic of Germany|DJ:Djibouti;Republic of '
    'Djibouti|DK:Denmark;Kingdom of Denmark|DM:Dominica;Commonwealth of Dominica|DO:Dominican'
    " Republic|DZ:Algeria;People's Democratic Republic of Algeria|EC:Ecuador;Republic of "
    'Ecuador|EE:Estonia;Republic of Estonia|EG:Egypt;Arab Republic of Egypt|EH:Western '
    'Sahara|ER:Eritrea;the State of Eritrea|ES:Spain;Kingdom of Spain|ET:Ethiopia;Federal '
    'Democratic Republic of Ethiopia|FI:Finland;Republic of Finland|FJ:Fiji;Republic of '
    'Fiji|FK:Falkland Islands (Malvinas)|FM:Micronesia, Federated States of;Federated States '
    'of Micronesia;Micronesia|FO:Faroe Islands|FR:France;French Republic|GA:Gabon;Gabonese '
    'Republic|GB:United Kingdom;United Kingdom of Great Britain and Northern Ireland;UK;Great'
    ' Britain;Britain;England;Scotland;Wales|GD:Grenada|GE:Georgia|GF:French '
    'Guiana|GG:Guernsey|GH:Ghana;Republic of '
    'Ghana|GI:Gibraltar|GL:Greenland|GM:Gambia;Republic of the Gambia|GN:Guinea;Republic of '
    'Guinea|GP:Guadeloupe|GQ:Equatorial Guinea;Republic of Equatorial '
    'Guinea|GR:Greece;Hellenic Republic|GS:South Georgia and the South Sandwich '
    'Islands|GT:Guatemala;Republic of Guatemala|GU:Guam|GW:Guinea-Bissau;Republic of '
    'Guinea-Bissau|GY:Guyana;Republic of Guyana|HK:Hong Kong;Hong Kong Special Administrative'
    ' Region of China|HM:Heard Island and McDonald Islands|HN:Honduras;Republic of '
    'Honduras|HR:Croatia;Republic of Croatia|HT:Haiti;Republic of '
    'Haiti|HU:Hungary|ID:Indonesia;Republic of Indonesia|IE:Ireland|IL:Israel;State of '
    'Israel|IM:Isle of Man|IN:India;Republic of India|IO:British Indian Ocean '
    'Territory|IQ:Iraq;Republic of Iraq|IR:Iran, Islamic Republic of;Iran;Islamic Republic of'
    ' Iran|IS:Iceland;Republic of Iceland|IT:Italy;Italian '
    'Republic|JE:Jersey|JM:Jamaica|JO:Jordan;Hashemite Kingdom of '
    'Jordan|JP:Japan|KE:Kenya;Republic of Kenya|KG:Kyrgyzstan;Kyrgyz '
    'Republic|KH:Cambodia;Kingdom of Cambodia|KI:Kiribati;Republic of '
    'Kiribati|KM:Comoros;Union of the Comoros|KN:Saint Kitts and Nevis|KP:Korea, Democratic '
    "People's Republic of;North Korea;Democratic People's Republic of Korea|KR:Korea, "
    'Republic of;South Korea;Korea|KW:Kuwait;State of Kuwait|KY:Cayman '
    "Islands|KZ:Kazakhstan;Republic of Kazakhstan|LA:Lao People's Democratic "
    'Republic;Laos|LB:Lebanon;Lebanese Republic|LC:Saint Lucia|LI:Liechtenstein;Principality '
    'of Liechtenstein|LK:Sri Lanka;Democratic Socialist Republic of Sri '
    'Lanka|LR:Liberia;Republic of Liberia|LS:Lesotho;Kingdom of Lesotho|LT:Lithuania;Republic'
    ' of Lithuania|LU:Luxembourg;Grand Duchy of Luxembourg|LV:Latvia;Republic of '
    'Latvia|LY:Libya|MA:Morocco;Kingdom of Morocco|MC:Monaco;Principality of '
    'Monaco|MD:Moldova, Republic of;Moldova;Republic of Moldova|ME:Montenegro|MF:Saint Martin'
    ' (French part)|MG:Madagascar;Republic of Madagascar|MH:Marshall Islands;Republic of the '
    'Marshall Islands|MK:North Macedonia;Republic of North '
    'Macedonia;Macedonia|ML:Mali;Republic of Mali|MM:Myanmar;Republic of '
    'Myanmar|MN:Mongolia|MO:Macao;Macao Special Administrative Region of China|MP:Northern '
    'Mariana Islands;Commonwealth of the Northern Mariana '
    'Islands|MQ:Martinique|MR:Mauritania;Islamic Republic of '
    'Mauritania|MS:Montserrat|MT:Malta;Republic of Malta|MU:Mauritius;Republic of '
    'Mauritius|MV:Maldives;Republic of Maldives|MW:Malawi;Republic of Malawi|MX:Mexico;United'
    ' Mexican States|MY:Malaysia|MZ:Mozambique;Republic of Mozambique|NA:Namibia;Republic of '
    'Namibia|NC:New Caledonia|NE:Niger;Republic of the Niger|NF:Norfolk '
    'Island|NG:Nigeria;Federal Republic of Nigeria|NI:Nicaragua;Republic of '
    'Nicaragua|NL:Netherlands;Kingdom of the Netherlands;Holland|NO:Norway;Kingdom of '
    'Norway|NP:Nepal;Federal Democratic Republic of Nepal|NR:Nauru;Republic of '
    'Nauru|NU:Niue|NZ:New Zealand|OM:Oman;Sultanate of Oman|PA:Panama;Republic of '
    'Panama|PE:Peru;Republic of Peru|PF:French Polynesia|PG:Papua New Guinea;Independent '
    'State of Papua New Guinea|PH:Philippines;Republic of the Philippines|PK:Pakistan;Islamic'
    ' Republic of Pakistan|PL:Poland;Republic of Poland|PM:Saint Pierre and '
    'Miquelon|PN:Pitcairn|PR:Puerto Rico|PS:Palestine, State of;the State of '
    'Palestine;Palestine|PT:Portugal;Portuguese Republic|PW:Palau;Republic of '
    'Palau|PY:Paraguay;Republic of Paraguay|QA:Qatar;State of '
    'Qatar|RE:Réunion|RO:Romania|RS:Serbia;Republic of Serbia|RU:Russian '
    'Federation;Russia|RW:Rwanda;Rwandese Republic|SA:Saudi Arabia;Kingdom of Saudi '
    'Arabia|SB:Solomon Islands|SC:Seychelles;Republic of Seychelles|SD:Sudan;Republic of the '
    'Sudan|SE:Sweden;Kingdom of Sweden|SG:Singapore;Republic of Singapore|SH:Saint Helena, '
    'Ascension and Tristan da Cunha|SI:Slovenia;Republic of Slovenia|SJ:Svalbard and Jan '
    'Mayen|SK:Slovakia;Slovak Republic|SL:Sierra Leone;Republic of Sierra Leone|SM:San '
    'Marino;Republic of San Marino|SN:Senegal;Republic of Senegal|SO:Somalia;Federal Republic'
    ' of Somalia|SR:Suriname;Republic of Suriname|SS:South Sudan;Republic of South '
    'Sudan|ST:Sao Tome and Principe;Democratic Republic of Sao Tome and Principe|SV:El '
    'Salvador;Republic of El Salvador|SX:Sint Maarten (Dutch part)|SY:Syrian Arab '
    'Republic;Syria|SZ:Eswatini;Kingdom of Eswatini;Swaziland|TC:Turks and Caicos '
    'Islands|TD:Chad;Republic of Chad|TF:French Southern Territories|TG:Togo;Togolese '
    'Republic|TH:Thailand;Kingdom of Thailand|TJ:Tajikistan;Republic of '
    'Tajikistan|TK:Tokelau|TL:Timor-Leste;Democratic Republic of '
    'Timor-Leste|TM:Turkmenistan|TN:Tunisia;Republic of Tunisia|TO:Tonga;Kingdom of '
    'Tonga|TR:Türkiye;Republic of Türkiye;Turkey|TT:Trinidad and Tobago;Republic of Trinidad '
    'and Tobago|TV:Tuvalu|TW:Taiwan, Province of China;Taiwan|TZ:Tanzania, United Republic '
    'of;Tanzania;United Republic of Tanzania|UA:Ukraine|UG:Uganda;Republic of '
    'Uganda|UM:United States Minor Outlying Islands|US:United States;United States of '
    'America;USA;America|UY:Uruguay;Eastern Republic of Uruguay|UZ:Uzbekistan;Republic of '
    'Uzbekistan|VA:Holy See (Vatican City State);Vatican|VC:Saint Vincent and the '
    'Grenadines|VE:Venezuela, Bolivarian Republic of;Venezuela;Bolivarian Republic of '
    'Venezuela|VG:Virgin Islands, British;British Virgin Islands|VI:Virgin Islands, '
    'U.S.;Virgin Islands of the United States|VN:Viet Nam;Vietnam;Socialist Republic of Viet '
    'Nam|VU:Vanuatu;Republic of Vanuatu|WF:Wallis and Futuna|WS:Samoa;Independent State of '
    'Samoa|YE:Yemen;Republic of Yemen|YT:Mayotte|ZA:South Africa;Republic of South '
    'Africa|ZM:Zambia;Republic of Zambia|ZW:Zimbabwe;Republic of Zimbabwe'
)


def _country_index() -> dict:
    index = {}
    for entry in COUNTRIES_TEXT.split("|"):
        code, names = entry.split(":", 1)
        index[code.casefold()] = code
        for name in names.split(";"):
            index.setdefault(name.casefold(), code)
    return index


COUNTRY_CODES = _country_index()


def country_code(name: str) -> str | None:
    """ISO alpha-2 code of a country code or English name, or None."""
    return COUNTRY_CODES.get(name.strip().casefold())


def language_code(name: str) -> str:
    """`English` -> `en`; codes pass through, lower-cased with `_` as `-`."""
    v = name.strip().casefold().replace("_", "-")
    return LANGUAGE_NAMES.get(v, v)

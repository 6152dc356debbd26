"""`user_agent` names and `platform` against real UA strings."""

import pytest

from widget.runtime.useragent import parse, ua_contains, ua_equals

# (name, raw UA, names it must match, names it must not match, platform)
UAS = [
    ("Chrome 76 on Windows 10", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/76.0.3809.100 Safari/537.36", ["Windows 10", "Chrome 76", "Windows", "Chrome"], ["Windows 7", "Chrome 77", "macOS"], "desktop"),
    ("Chrome 126 on Windows 11", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", ["Windows 10", "Chrome 126"], ["Chrome 76"], "desktop"),
    ("Firefox 128 on Windows 10", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", ["Firefox 128", "Windows 10", "Firefox"], ["Chrome"], "desktop"),
    ("Firefox 115 on Windows 7", "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0", ["Windows 7", "Firefox 115"], ["Windows 10"], "desktop"),
    ("IE 11 on Windows 8.1", "Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko", ["Windows 8.1", "Internet Explorer 11", "IE 11"], ["Windows 8"], "desktop"),
    ("Chrome on Windows 8", "Mozilla/5.0 (Windows NT 6.2; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36", ["Windows 8", "Chrome 49"], ["Windows 8.1"], "desktop"),
    ("IE on Windows XP", "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)", ["Windows XP", "Internet Explorer 8"], [], "desktop"),
    ("Edge 126 on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87", ["Edge", "Edge 126", "Microsoft Edge", "Windows 10"], ["Chrome"], "desktop"),
    ("legacy Edge 18", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041", ["Edge 18"], [], "desktop"),
    ("Opera on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0", ["Opera", "Opera 110"], ["Chrome"], "desktop"),
    ("Yandex on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36", ["Yandex 24"], [], "desktop"),
    ("Safari 17 on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", ["macOS", "Mac OS X", "Safari 17", "Safari", "macOS 10.15"], ["Chrome", "iPhone"], "desktop"),
    ("Chrome on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", ["macOS", "Chrome 126", "Mac"], ["Safari"], "desktop"),
    ("Firefox 128 on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0", ["Firefox 128", "macOS"], ["Windows"], "desktop"),
    ("Safari on old macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.2 Safari/605.1.15", ["macOS 10.13", "Safari 13"], ["macOS 10.15"], "desktop"),
    ("Chrome on Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", ["Linux", "Chrome"], ["Android", "Windows"], "desktop"),
    ("Firefox on Ubuntu", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", ["Linux", "Ubuntu", "Firefox 127"], [], "desktop"),
    ("Chrome on ChromeOS", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36", ["ChromeOS", "Chrome 125"], ["Linux"], "desktop"),
    ("Safari on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", ["iPhone", "iOS", "iOS 17", "Safari 17"], ["macOS", "iPad", "Android"], "mobile"),
    ("Chrome on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", ["iPhone", "Chrome 126"], ["Safari"], "mobile"),
    ("Firefox on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15", ["iPhone", "Firefox 127", "iOS 16"], [], "mobile"),
    ("Edge on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/125.2535.60 Mobile/15E148 Safari/605.1.15", ["iPhone", "Edge 125"], [], "mobile"),
    ("old iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1", ["iOS 12", "iPhone"], ["iOS 17"], "mobile"),
    ("Safari on iPad", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", ["iPad", "iOS 16"], ["iPhone"], "mobile"),
    ("iPod touch", "Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1 Mobile/15E148 Safari/604.1", ["iPod", "iOS 12"], [], "mobile"),
    ("Chrome on Pixel", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36", ["Android", "Android 14", "Chrome 125"], ["Linux", "iPhone"], "mobile"),
    ("Samsung Internet", "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", ["Android 13", "Samsung Internet", "Samsung Internet 25"], ["Chrome"], "mobile"),
    ("Firefox on Android", "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0", ["Android", "Firefox 127"], [], "mobile"),
    ("Android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", ["Android", "Android 13", "tablet"], ["phone"], "mobile"),
    ("old Android phone", "Mozilla/5.0 (Linux; Android 8.0.0; SM-G960F Build/R16NW) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/62.0.3202.84 Mobile Safari/537.36", ["Android 8", "Android 8.0", "Chrome 62"], ["Android 14"], "mobile"),
    ("Kindle Silk", "Mozilla/5.0 (Linux; Android 9; KFMAWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/125.3.1 like Chrome/125.0.6422.165 Safari/537.36", ["Android 9"], [], "mobile"),
    ("Opera Mini", "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54", ["Opera"], [], "mobile"),
    ("Windows Phone", "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063", ["Edge 15"], [], "mobile"),
    ("Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ["bot"], ["Chrome"], "desktop"),
]


@pytest.mark.parametrize("name,ua,yes,no,platform", UAS, ids=[u[0] for u in UAS])
def test_real_user_agents(name, ua, yes, no, platform):
    parsed = parse(ua)
    for value in yes:
        assert ua_equals(ua, value), f"{name} should match {value!r}: {sorted(parsed['tokens'])}"
    for value in no:
        assert not ua_equals(ua, value), f"{name} should not match {value!r}"
    assert parsed["platform"] == platform


def test_there_are_at_least_thirty_real_strings():
    assert len(UAS) >= 30


@pytest.mark.parametrize("value,expected", [
    ("Gecko", True), ("applewebkit", True), ("Chrome 76", True), ("chrome/76", True),
    ("Windows", True), ("Firefox", False), ("76.0.3809", True),
])
def test_contains_works_on_raw_text_and_names(value, expected):
    ua = UAS[0][1]
    assert ua_contains(ua, value) is expected


def test_equals_is_case_and_space_insensitive():
    ua = UAS[0][1]
    assert ua_equals(ua, "  windows   10 ")
    assert ua_equals(ua, "CHROME 76.0")


def test_empty_ua_matches_nothing_but_parses():
    assert parse("")["tokens"] == frozenset({"desktop"})
    assert not ua_equals("", "Windows 10")

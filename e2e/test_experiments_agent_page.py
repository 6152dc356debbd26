"""The agent page's experiment figures (Auto messages → Experiments) read
against an independent computation: beacons of two experiments go to the
real endpoint over HTTP, and every figure the page shows — exposed, shown,
reply and goal rates with their 95 % Wilson intervals, the difference to
the control with its 95 % interval, the verdict, the sample-ratio-mismatch
warning and the visitors still needed — is compared with what scipy gives
for the same counts (never with the code under test)."""

from __future__ import annotations

import json
import math
import urllib.request
import uuid

from playwright.sync_api import expect
from scipy import stats

from test_endpoint import agent_page  # noqa: F401 (a fixture)


def scipy_wilson(k: int, n: int) -> tuple[float, float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return k / n, ci.low, ci.high


def scipy_newcombe(k1, n1, k2, n2) -> tuple[float, float, float]:
    (p1, l1, u1), (p2, l2, u2) = scipy_wilson(k1, n1), scipy_wilson(k2, n2)
    return p1 - p2, p1 - p2 - math.hypot(p1 - l1, u2 - p2), p1 - p2 + math.hypot(u1 - p1, p2 - l2)


def scipy_needed(p1: float, lift: float) -> int:
    """Per arm, two-sided 5 %, power 80 %, normal approximation (Fleiss, no continuity correction)."""
    p2 = p1 * (1 + lift)
    za, zb = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    mean = (p1 + p2) / 2
    n = (za * math.sqrt(2 * mean * (1 - mean)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2
    return math.ceil(n)


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def points(x: float) -> str:
    return f"{'+' if x >= 0 else '−'}{abs(100 * x):.1f}"


def rate(triple, fmt=pct) -> str:
    value, low, high = triple
    return f"{fmt(value)} ({fmt(low)} to {fmt(high)})"


# message -> arm -> (exposed, shown, replied, goals, share, control)
PLAN = {
    "verdict": {"holdout": (200, 0, 0, 20, 0.2), "ask": (400, 400, 40, 44, 0.4), "hand": (400, 400, 60, 80, 0.4)},
    "srm": {"a": (300, 300, 30, 0, 0.5), "b": (200, 200, 10, 0, 0.5)},
}
CONTROL = {"verdict": "holdout", "srm": "a"}


def send(site, events: list[dict]) -> None:
    sender = "seed" + uuid.uuid4().hex[:12]
    for start in range(0, len(events), 200):
        batch = [dict(e, id=f"{sender}:{start + i}") for i, e in enumerate(events[start:start + 200])]
        req = urllib.request.Request(f"{site.widget_origin}/api/events", method="POST",
                                     data=json.dumps({"sender": sender, "events": batch}).encode(),
                                     headers={"content-type": "text/plain;charset=UTF-8", "origin": site.site_origin})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 202 and json.loads(r.read())["new"] == len(batch)


def beacons(names: dict) -> list[dict]:
    out = []
    for key, arms in PLAN.items():
        message = names[key]
        for arm, (exposed, shown, replied, goals, share) in arms.items():
            for i in range(exposed):
                visitor = f"{key}-{arm}-{i:04d}"
                common = {"message": message, "arm": arm, "visitor": visitor}
                out.append(dict(common, type="exposed", t=1000, experiment=f"{message}-1", control=CONTROL[key], share=share))
                if i < shown:
                    out.append(dict(common, type="shown", t=1000))
                if i < replied:
                    out.append(dict(common, type="replied", t=5000))
                if i < goals:
                    out.append(dict(common, type="goal", t=60_000, goal="purchase"))
    return out


def test_every_experiment_figure_on_the_agent_page_matches_scipy(site, agent_page):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    names = {key: f"{key}-{tag}" for key in PLAN}
    send(site, beacons(names))
    page = agent_page
    page.click('[data-tab="stats"]')

    def cells(message: str, arm: str) -> dict:
        row = page.locator(f'#experiments-table tr[data-message="{message}"][data-arm="{arm}"]')
        row.wait_for()
        return {k: row.locator(f"td.{k}").inner_text() for k in ("arm", "exposed", "shown", "reply-rate", "goal-rate", "diff")}

    # A clear winner against the holdout, and an arm that cannot be told apart from it.
    message = names["verdict"]
    holdout, ask, hand = (cells(message, a) for a in ("holdout", "ask", "hand"))
    assert holdout == {"arm": "holdout (control)", "exposed": "200", "shown": "0", "reply-rate": "–",
                       "goal-rate": f"20 · {rate(scipy_wilson(20, 200))}", "diff": "control"}
    diff = scipy_newcombe(80, 400, 20, 200)
    assert diff[1] > 0   # the interval excludes zero: a verdict
    verdict = (f"hand raises the goal rate by {100 * diff[0]:.1f} points against holdout "
               f"(95 % interval {100 * diff[1]:.1f} to {100 * diff[2]:.1f})")
    assert hand == {"arm": "hand", "exposed": "400", "shown": "400", "reply-rate": rate(scipy_wilson(60, 400)),
                    "goal-rate": f"80 · {rate(scipy_wilson(80, 400))}", "diff": f"{rate(diff, points)} — {verdict}"}
    diff = scipy_newcombe(44, 400, 20, 200)
    assert diff[1] < 0 < diff[2]   # spans zero: no verdict
    assert ask == {"arm": "ask", "exposed": "400", "shown": "400", "reply-rate": rate(scipy_wilson(40, 400)),
                   "goal-rate": f"44 · {rate(scipy_wilson(44, 400))}", "diff": rate(diff, points)}
    needed = scipy_needed(20 / 200, 0.1)
    assert page.locator(f'#experiments-table tr.needed[data-message="{message}"]').inner_text() == (
        f"{message}: to detect a 10 % rise of the control's goal rate (5 %, power 80 %): "
        f"{needed} visitors per arm, {needed - 200} more")
    assert page.locator(f'#experiments-table tr.srm[data-message="{message}"]').count() == 0   # p = 1
    # another lift to detect, chosen on the page
    page.get_by_label("Visitors needed to detect a rise of").select_option(label="20 %")
    needed = scipy_needed(20 / 200, 0.2)
    expect(page.locator(f'#experiments-table tr.needed[data-message="{message}"]')).to_have_text(
        f"{message}: to detect a 20 % rise of the control's goal rate (5 %, power 80 %): "
        f"{needed} visitors per arm, {needed - 200} more")

    # 300 against 200 visitors where the weights say half and half: the assignment looks broken.
    message = names["srm"]
    p = stats.chisquare([300, 200]).pvalue
    assert p < 0.001
    assert page.locator(f'#experiments-table tr.srm[data-message="{message}"]').inner_text() == (
        f"{message}: sample ratio mismatch: the arms' visitors (a 300, b 200) do not follow their weights "
        f"(p = {p:.2g}); the assignment or the counting looks broken")
    a, b = cells(message, "a"), cells(message, "b")
    assert a["arm"] == "a (control)" and a["reply-rate"] == rate(scipy_wilson(30, 300))
    assert b["reply-rate"] == rate(scipy_wilson(10, 200)) and b["goal-rate"] == f"0 · {rate(scipy_wilson(0, 200))}"
    assert b["diff"] == rate(scipy_newcombe(0, 200, 0, 300), points)
    # the control reached no goal: no estimate of the visitors needed
    assert page.locator(f'#experiments-table tr.needed[data-message="{message}"]').count() == 0

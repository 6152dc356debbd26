"""Per-arm results of experiments (docs/endpoint.md, "Experiments"): counts
of visitors from the beacons, 95 % Wilson score intervals for each rate, and
each arm's difference to the control with Newcombe's hybrid score interval
(method 10 of Newcombe 1998, built from the two Wilson intervals).

The arithmetic is here, stdlib only; tests/test_endpoint_experiments.py checks it
against scipy and published values."""

from __future__ import annotations

import math
from statistics import NormalDist

Z95 = 1.959963984540054   # the standard normal's 97.5 % quantile


def wilson(k: int, n: int, z: float = Z95) -> dict | None:
    """{value, low, high} of k successes in n trials; None without trials."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return {"value": p, "low": max(0.0, centre - half), "high": min(1.0, centre + half)}


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> dict | None:
    """{value, low, high} of p1 - p2 (Newcombe's hybrid score interval)."""
    a, b = wilson(k1, n1, z), wilson(k2, n2, z)
    if a is None or b is None:
        return None
    d = a["value"] - b["value"]
    low = d - math.sqrt((a["value"] - a["low"]) ** 2 + (b["high"] - b["value"]) ** 2)
    high = d + math.sqrt((a["high"] - a["value"]) ** 2 + (b["value"] - b["low"]) ** 2)
    return {"value": d, "low": low, "high": high}


SRM_P = 0.001   # below: the assignment looks broken
POWER = 0.8     # the chance to detect the lift, for `visitors_needed`


def visitors_needed(p_control: float, lift: float, power: float = POWER, z: float = Z95) -> int | None:
    """Visitors per arm to detect a relative `lift` of the control's goal
    rate (two-sided 5 % test of two proportions, normal approximation
    without continuity correction, Fleiss); None when it cannot be said."""
    p1 = p_control
    p2 = p1 * (1 + lift)
    if not 0 < p1 < 1 or not 0 < p2 < 1 or p1 == p2:
        return None
    mean = (p1 + p2) / 2
    z_power = NormalDist().inv_cdf(power)
    root = z * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root * root / (p2 - p1) ** 2)


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable with `dof` degrees of freedom: the
    regularised upper incomplete gamma Q(dof/2, x/2), by its series below
    a + 1 and its continued fraction (modified Lentz) above."""
    if x <= 0:
        return 1.0
    a, y = dof / 2, x / 2
    log_front = -y + a * math.log(y) - math.lgamma(a)
    if y < a + 1:
        term = total = 1 / a
        n = 1
        while abs(term) > abs(total) * 1e-16 and n < 10_000:
            term *= y / (a + n)
            total += term
            n += 1
        return max(0.0, 1 - total * math.exp(log_front))
    tiny = 1e-300
    b = y + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-16:
            break
    return min(1.0, math.exp(log_front) * h)


def sample_ratio(observed: dict[str, int], shares: dict[str, float]) -> dict | None:
    """Chi-square of the exposed visitors per arm against the arms' shares;
    a warning in words when p < SRM_P."""
    arms = [a for a in observed if shares.get(a)]
    total_share = sum(shares[a] for a in arms)
    n = sum(observed[a] for a in arms)
    if len(arms) < 2 or n == 0 or len(arms) != len(observed):
        return None
    chi2 = sum((observed[a] - n * shares[a] / total_share) ** 2 / (n * shares[a] / total_share) for a in arms)
    p = chi2_sf(chi2, len(arms) - 1)
    warning = None
    if p < SRM_P:
        warning = (f"sample ratio mismatch: the arms' visitors ({', '.join(f'{a} {observed[a]}' for a in sorted(arms))}) "
                   f"do not follow their weights (p = {p:.2g}); the assignment or the counting looks broken")
    return {"chi2": chi2, "p": p, "warning": warning}


def _points(x: float) -> str:
    return f"{x * 100:.1f}"


def verdict(arm: str, control: str, diff: dict | None) -> str | None:
    """Plain words, only when the 95 % interval excludes zero."""
    if diff is None or diff["low"] <= 0 <= diff["high"]:
        return None
    way = "raises" if diff["value"] > 0 else "lowers"
    return (f"{arm} {way} the goal rate by {_points(abs(diff['value']))} points against {control} "
            f"(95 % interval {_points(diff['low'])} to {_points(diff['high'])})")


def experiment_results(rows: list[dict], controls: dict[str, str], shares: dict[str, dict] | None = None,
                       lift: float = 0.1) -> list[dict]:
    """rows: {message, arm, exposed, shown, replied, goals} (distinct
    visitors); controls: message -> its control arm; shares: message ->
    {arm: expected share}. One entry per message."""
    by_message: dict[str, list[dict]] = {}
    for r in rows:
        by_message.setdefault(r["message"], []).append(r)
    out = []
    for message in sorted(by_message):
        arms = sorted(by_message[message], key=lambda r: r["arm"])
        control_id = controls.get(message)
        control = next((r for r in arms if r["arm"] == control_id), None)
        entries = []
        for r in arms:
            diff = None
            if control is not None and r is not control:
                diff = newcombe(r["goals"], r["exposed"], control["goals"], control["exposed"])
            entries.append({
                "arm": r["arm"], "control": r is control, "exposed": r["exposed"], "shown": r["shown"],
                "replied": r["replied"], "goals": r["goals"],
                "reply_rate": wilson(r["replied"], r["shown"]), "goal_rate": wilson(r["goals"], r["exposed"]),
                "goal_difference": diff,
                "verdict": verdict(r["arm"], control_id, diff) if control is not None and r is not control else None,
            })
        srm = sample_ratio({r["arm"]: r["exposed"] for r in arms}, (shares or {}).get(message) or {})
        needed = None
        if control is not None and control["exposed"]:
            per_arm = visitors_needed(control["goals"] / control["exposed"], lift)
            if per_arm is not None:
                needed = {"lift": lift, "per_arm": per_arm,
                          "still": max(0, per_arm - min(r["exposed"] for r in arms))}
        out.append({"message": message, "experiment": arms[0].get("experiment"), "control": control_id, "arms": entries,
                    "srm": srm, "needed": needed})
    return out

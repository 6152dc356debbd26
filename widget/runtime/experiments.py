"""Experiments: a message's variants and holdout, and each visitor's arm.

Authoring (checked by bundle.py through MESSAGE_FIELDS):

    variants: [{id, weight, content}, ...]   weights relative, > 0; ids unique
    holdout: 10                              % of eligible visitors who see nothing (0-50)
    experiment: "plans-2026-12"              the salt; optional (below)

A message with `variants` or a `holdout` is an experiment. Its arms are its
variants (or, without variants, the message's own content as the arm
`default`) plus `holdout` when the holdout is above 0.

**The salt** makes one experiment's assignment independent of every other's.
When the author gives none, it is derived from the site, the message id, the
variant ids in order and whether there is a holdout (`derive_salt`):
`proactive sign` writes it into the signed payload, so it is carried by the
bundle and stays the same across versions while those are unchanged.
Adding, removing or renaming a variant, adding or removing the holdout, or
setting another `experiment` starts a new experiment; changing weights or
the holdout's size does not.

**Assignment** (`assign`) is a weighted rendezvous hash (an exponential
race): each arm draws u = H(salt, visitor id, message id, arm id) in (0, 1),
and the arm with the least -ln(u) / weight wins. An arm wins with exactly its
weight's share, and the arm's draw does not depend on the weights, so a
weight change moves as few visitors as possible: when one arm's weight rises
(the others' stay), only visitors moving *to* that arm move, and when it
falls only visitors *leaving* it move: the moved share is then the change of
that arm's share (the total variation between the two weight sets); a change
of several arms at once moves at most the sum of those one-arm steps.
tests/test_experiments.py measures it.

Pure and stdlib only; no clock, no randomness: the visitor id comes from the
page (created once, kept in the record).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

HOLDOUT = "holdout"          # the control arm's id: the visitor sees nothing
DEFAULT_ARM = "default"      # the arm of a message with a holdout but no variants
HOLDOUT_MAX = 50             # percent
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}\Z")
SALT = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_TWO_64 = float(1 << 64)


@dataclass(frozen=True)
class Arm:
    id: str
    weight: float
    content: dict | None     # compiled content; None for the holdout


@dataclass(frozen=True)
class Experiment:
    salt: str
    arms: tuple              # the variants (or DEFAULT_ARM), then HOLDOUT when the holdout > 0
    holdout: float

    @property
    def control(self) -> Arm:
        """The arm the others are compared with: the holdout, else the first variant."""
        return self.arms[-1] if self.holdout > 0 else self.arms[0]

    @property
    def first(self) -> Arm:
        """The arm a visitor without a stored id sees (not counted)."""
        return self.arms[0]

    def share(self, arm_id: str) -> float | None:
        """The arm's expected share of the visitors (its weight's)."""
        arm = self.arm(arm_id)
        return None if arm is None else arm.weight / sum(a.weight for a in self.arms)

    def arm(self, arm_id: str) -> Arm | None:
        for arm in self.arms:
            if arm.id == arm_id:
                return arm
        return None


def derive_salt(site: str, message_id: str, variant_ids, holdout: float) -> str:
    """The salt of an experiment without an explicit `experiment`."""
    text = "\0".join(("proactive-experiment", str(site), message_id, ",".join(variant_ids),
                      HOLDOUT if holdout > 0 else ""))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def draw(*parts: str) -> float:
    """A uniform number in (0, 1) from the hash of `parts` (a salt first):
    the one visitor hash, for experiment arms here and for a bundle's staged
    rollout (trust.in_rollout)."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / _TWO_64


def assign(experiment: Experiment, visitor_id: str, message_id: str) -> str:
    """The visitor's arm: the least -ln(u) / weight (module docstring)."""
    best, best_score = None, None
    for arm in experiment.arms:
        score = -math.log(draw(experiment.salt, visitor_id, message_id, arm.id)) / arm.weight
        if best_score is None or score < best_score:
            best, best_score = arm.id, score
    return best


# -- authoring checks (bundle.py) --------------------------------------------------

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and v not in (math.inf, -math.inf)


def check_variants(v, path, chk, check_content, id_pattern):
    """[{id, weight, content}] -> [(id, weight, compiled content)]."""
    if not isinstance(v, list) or not v:
        chk.add(path, "variants must be a non-empty list", "[{id: a, weight: 1, content: {...}}, ...]")
        return []
    out, seen = [], {}
    for i, item in enumerate(v):
        where = path + (i,)
        if not isinstance(item, dict):
            chk.add(where, "a variant is a mapping", "{id, weight, content}")
            continue
        for key in item:
            if key not in ("id", "weight", "content"):
                chk.add(where + (key,), f"unknown field {key!r}", "id, weight, content")
        vid, weight = item.get("id"), item.get("weight", 1)
        if not isinstance(vid, str) or not id_pattern.match(vid):
            chk.add(where + ("id",), f"bad variant id {vid!r}", "lower-case letters, digits and '-'")
        elif vid == HOLDOUT:
            chk.add(where + ("id",), f"{HOLDOUT!r} is the control group's id", "another id")
        elif vid in seen:
            chk.add(where + ("id",), f"duplicate variant id {vid!r} (first at {seen[vid]})", "unique ids")
        else:
            seen[vid] = i
        if not _is_number(weight) or weight <= 0:
            chk.add(where + ("weight",), f"{weight!r} is not a weight", "a number > 0 (relative to the others)")
            weight = 1
        if "content" not in item:
            chk.add(where + ("content",), "a variant needs its content", "the content model (docs/authoring.md)")
        content = check_content(item.get("content", {}), where + ("content",), chk)
        out.append((vid, float(weight), content))
    return out


def check_holdout(v, path, chk):
    if not _is_number(v) or v < 0 or v > HOLDOUT_MAX:
        chk.add(path, f"{v!r} is not a holdout percentage", f"a number from 0 to {HOLDOUT_MAX} (percent)")
        return 0
    return float(v)


def check_salt(v, path, chk):
    if not isinstance(v, str) or not SALT.match(v):
        chk.add(path, f"{v!r} is not an experiment name", "1-64 letters, digits, '.', '_' or '-'")
        return None
    return v


def compile_experiment(site, message_id, variants, holdout, salt, content) -> Experiment | None:
    """The message's experiment (None: it has neither variants nor a holdout)."""
    if not variants and not holdout:
        return None
    arms = [Arm(vid, weight, c) for vid, weight, c in variants] or [Arm(DEFAULT_ARM, 1.0, content)]
    if holdout > 0:
        total = sum(arm.weight for arm in arms)
        arms.append(Arm(HOLDOUT, total * holdout / (100 - holdout), None))
    salt = salt or derive_salt(site, message_id, [arm.id for arm in arms if arm.id != HOLDOUT], holdout)
    return Experiment(salt=salt, arms=tuple(arms), holdout=holdout)


# -- the record ---------------------------------------------------------------------
# record["visitor_id"], record["visitor_since"]: the stable random id, since when
# record["exposed"]["MESSAGE@SALT"] = [arm, t]: the first exposure to that experiment

def exposure_key(message_id: str, salt: str) -> str:
    return f"{message_id}@{salt}"


def exposure(record: dict, message_id: str, salt: str):
    """[arm, t] of the visitor's exposure to this experiment, or None."""
    return (record.get("exposed") or {}).get(exposure_key(message_id, salt))


def expose(record: dict, message_id: str, salt: str, arm: str, t: int) -> None:
    record.setdefault("exposed", {})[exposure_key(message_id, salt)] = [arm, t]


def valid_exposure(entry) -> bool:
    return (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
            and isinstance(entry[1], int) and not isinstance(entry[1], bool))


def merge_exposed(a: dict, b: dict) -> dict:
    """Two tabs' exposures: per experiment the earliest (then the least arm)
    wins; commutative, associative and idempotent."""
    out = dict(a)
    for key, entry in b.items():
        mine = out.get(key)
        if mine is None or (entry[1], entry[0]) < (mine[1], mine[0]):
            out[key] = list(entry)
    return out


def merge_visitor(a: tuple, b: tuple) -> tuple:
    """Two tabs' (visitor_id, visitor_since): the id created first wins
    (ties: the smaller id), so every tab ends with the same one."""
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    return min(a, b, key=lambda p: (p[1] if p[1] is not None else -1, p[0]))

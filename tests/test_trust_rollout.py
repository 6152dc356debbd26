"""Staged rollout: `proactive sign --rollout P` as browsers take it.

The bundles are made by the real signing path (publishing.stage, through
`sign_file`), and each visitor is a browser as the runtime host drives
trust.BundleTrust: on each page the copy kept from the last page is offered
first, then the fetched file; a kept (`store`) bundle becomes the cached
copy and its version the rollback floor. 10,000 generated visitor ids."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pytest

from proactive import publishing, signing
from widget.runtime import trust

NOW = datetime(2026, 5, 28, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
VISITORS = 10_000
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def visitor_ids(n: int, seed: int = 18) -> list[str]:
    """Ids as the page makes them (random, url-safe): experiments.VISITOR_ID."""
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(22)) for _ in range(n)]


def messages(text: str) -> dict:
    return {"site": "acme", "widgets": [{"id": "main"}], "messages": [
        {"id": "hello", "content": {"text": text}, "rules": [{"rule": "time_on_page", "op": "greater", "value": 3}]}]}


class Owner:
    """A site owner with a key, a messages file and the published bundle."""

    def __init__(self, folder):
        self.folder = folder
        self.key_path = folder / "site.key"
        self.key = signing.generate_private_key()
        signing.write_private_key(self.key, self.key_path)
        self.pins = [signing.raw_public_key(self.key)]
        self.out = folder / "site.json"

    def sign(self, text: str, rollout: float | None = None, **kw) -> bytes:
        path = self.folder / "messages.json"
        path.write_text(json.dumps(messages(text)))
        envelope, _ = publishing.sign_file(path, [self.key_path], self.out, rollout=rollout, now=NOW, **kw)
        publishing.write_bundle(envelope, self.out)
        return envelope


class Browser:
    """One visitor's browser: what the page keeps between pages."""

    verdicts: dict = {}

    def __init__(self, pins, visitor: str | None):
        self.pins, self.visitor = pins, visitor
        self.cached, self.floor = None, None

    def verdict(self, raw: bytes) -> str:
        if raw not in self.verdicts:
            opened = trust.open_envelope(raw, self.pins)
            ok = any(signing.verify_signature(k, opened.message, s) for k, s in opened.candidates)
            self.verdicts[raw] = "valid" if ok else "invalid"
        return self.verdicts[raw]

    def page_view(self, fetched: bytes) -> int:
        """The version that runs once the fetched file is judged."""
        state = trust.BundleTrust(self.pins, site="acme", floor=self.floor, visitor=self.visitor)
        if self.cached is not None:
            state.offer_cached(self.cached, self.verdict(self.cached), NOW_MS)
        keep = state.offer_fetched(fetched, self.verdict(fetched), NOW_MS)
        if keep.store and not (self.floor is not None and self.floor > keep.version):  # bundle/cache.mjs keep()
            self.cached, self.floor = fetched, keep.version
        return state.current["version"]


@pytest.fixture
def owner(tmp_path):
    return Owner(tmp_path)


STAGES = ("before", "10", "10 again", "50", "100", "10 replayed")


@pytest.fixture(scope="module")
def rollout_history(tmp_path_factory):
    """10,000 visitors' page views through one rollout: version 1 published,
    then 2 at 10 %, a page later the same file, widened to 50, then 100, and
    last the 10 % file served again (a stale copy on a CDN edge).
    {visitor: [version per stage]} and the files."""
    owner = Owner(tmp_path_factory.mktemp("rollout"))
    files = {"before": owner.sign("Old"), "10": owner.sign("New", rollout=10)}
    files["50"] = owner.sign("New", rollout=50)
    files["100"] = owner.sign("New", rollout=100)
    files["10 again"] = files["10 replayed"] = files["10"]
    browsers = [Browser(owner.pins, v) for v in visitor_ids(VISITORS)]
    history = {b.visitor: [b.page_view(files[stage]) for stage in STAGES] for b in browsers}
    return owner, files, history


def _share(history, stage) -> float:
    i = STAGES.index(stage)
    return sum(versions[i] == 2 for versions in history.values()) / len(history)


def test_rollout_10_puts_10_percent_on_the_new_version_and_each_keeps_it(rollout_history):
    owner, files, history = rollout_history
    assert {v[0] for v in history.values()} == {1}
    assert 0.09 <= _share(history, "10") <= 0.11, _share(history, "10")
    for versions in history.values():
        assert versions[1] == versions[2]   # the next page: the same version
    sample = list(history)[:1000]    # another device (or cleared cache) with the same id: the same version
    assert [Browser(owner.pins, v).page_view(files["10"]) for v in sample] == [history[v][1] for v in sample]


def test_widening_only_adds_visitors_and_never_moves_one_back(rollout_history):
    _, files, history = rollout_history
    assert [publishing.read_payload(files[p])["version"] for p in ("10", "50", "100")] == [2, 2, 2]
    assert "previousPayload" not in json.loads(files["100"])   # 100 %: a plain bundle again
    for versions in history.values():
        assert versions == sorted(versions), versions   # never back, the 10 % replay included
    assert 0.49 <= _share(history, "50") <= 0.51, _share(history, "50")
    assert _share(history, "100") == _share(history, "10 replayed") == 1.0


def test_a_visitor_outside_who_already_had_the_new_version_keeps_it(owner):
    owner.sign("Old")
    at50 = owner.sign("New", rollout=50)
    ids = visitor_ids(2000)
    inside_50 = [v for v in ids if Browser(owner.pins, v).page_view(at50) == 2]
    at10 = owner.sign("New", rollout=10)   # narrowed
    for vid in inside_50:
        b = Browser(owner.pins, vid)
        assert b.page_view(at50) == 2
        assert b.page_view(at10) == 2, "narrowing moved a visitor back"
        assert b.page_view(at10) == 2
    outside_10 = [v for v in inside_50 if not trust.in_rollout(_salt(at10), v, 10)]
    assert len(outside_10) > 500   # the case is exercised


def _salt(raw: bytes) -> str:
    return publishing.read_payload(raw)["rollout"]["salt"]


def test_without_a_stored_visitor_id_the_previous_version_runs(owner):
    owner.sign("Old")
    staged = owner.sign("New", rollout=99)
    assert Browser(owner.pins, None).page_view(staged) == 1
    assert Browser(owner.pins, "bad id!").page_view(staged) == 1   # not a well-formed id: none
    b = Browser(owner.pins, None)
    b.floor = 2   # … unless this browser already runs the new version
    assert b.page_view(staged) == 2


def test_a_fixed_candidate_goes_to_the_same_visitors_over_the_same_previous_version(owner):
    owner.sign("Old")
    bad = owner.sign("New, with a typo", rollout=10)
    fixed = owner.sign("New", rollout=10)
    assert publishing.read_payload(fixed)["version"] == 3
    assert publishing.read_payload(fixed)["rollout"]["previous"]["version"] == 1
    assert _salt(fixed) == _salt(bad)
    for vid in visitor_ids(1000):
        b = Browser(owner.pins, vid)
        got_bad = b.page_view(bad)
        assert b.page_view(fixed) == (3 if got_bad == 2 else 1)


def test_a_pause_during_a_rollout_reaches_every_visitor(owner):
    owner.sign("Old")
    staged = owner.sign("New", rollout=10)
    paused, version, count = publishing.pause_bundle(owner.out, [owner.key_path], now=NOW)
    assert (version, count) == (3, 1)
    payload = publishing.read_payload(paused)
    assert payload["messages"] == [] and "rollout" not in payload
    for vid in visitor_ids(200):
        b = Browser(owner.pins, vid)
        b.page_view(staged)
        assert b.page_view(paused) == 3


def test_the_adapter_reports_which_part_runs_and_why(owner):
    from widget.runtime.adapter import Runtime

    owner.sign("Old")
    staged = owner.sign("New", rollout=50)
    salt = _salt(staged)
    inside = next(v for v in visitor_ids(100) if trust.in_rollout(salt, v, 50))
    outside = next(v for v in visitor_ids(100) if not trust.in_rollout(salt, v, 50))
    pins = signing.public_key_spec(owner.key)
    verdict = Browser(owner.pins, None).verdict(staged)
    for config, version, why in [
        ({"visitor": inside}, 2, "in_rollout"),
        ({"visitor": outside}, 1, "outside_rollout"),
        ({"visitor": None, "context": {"visitor_id": inside}}, 2, "in_rollout"),   # the id this page creates
        ({"visitor": outside, "context": {"visitor_id": inside}}, 1, "outside_rollout"),  # the stored one wins
        ({}, 1, "no_visitor_id"),
        ({"visitor": outside, "floor": 2}, 2, "already_newer"),
    ]:
        rt = Runtime(json.dumps({"keys": pins, "site": "acme", "context": {}, **config}))
        reply = json.loads(rt.offer(staged, "fetched", verdict, "", NOW_MS))
        assert reply["ok"] and reply["version"] == version, (config, reply)
        assert reply["rollout"] == {"percent": 50, "part": "new" if version == 2 else "previous", "why": why,
                                    "new": 2, "previous": 1}


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 75, 90])
def test_in_rollout_is_a_threshold_on_one_draw(percent):
    """The share is the percentage, and a wider rollout contains a narrower one."""
    ids = visitor_ids(VISITORS, seed=percent)
    inside = {v for v in ids if trust.in_rollout("salt", v, percent)}
    assert abs(len(inside) / VISITORS - percent / 100) <= 0.01
    assert inside <= {v for v in ids if trust.in_rollout("salt", v, percent + 5)}


def test_sign_rollout_refuses_what_it_cannot_stage(owner, tmp_path):
    with pytest.raises(publishing.PublishError, match="no published bundle"):
        owner.sign("New", rollout=10)
    owner.sign("Old")
    other = signing.generate_private_key()
    other_path = tmp_path / "other.key"
    signing.write_private_key(other, other_path)
    (tmp_path / "m.json").write_text(json.dumps(messages("New")))
    with pytest.raises(publishing.PublishError, match="does not verify with these keys"):
        publishing.sign_file(tmp_path / "m.json", [other_path], owner.out, rollout=10, now=NOW)
    with pytest.raises(publishing.PublishError, match="percentage"):
        owner.sign("New", rollout=0)


def test_expiry_the_new_payloads_covers_the_file_the_previous_ones_only_its_visitors(owner):
    later = NOW_MS + 2 * 3600_000
    owner.sign("Old", expires="1h")
    staged = owner.sign("New", rollout=50)
    salt = _salt(staged)
    inside, outside = (next(v for v in visitor_ids(100) if trust.in_rollout(salt, v, 50) == side) for side in (True, False))

    def at(raw, vid, now):
        b = Browser(owner.pins, vid)
        state = trust.BundleTrust(owner.pins, site="acme", visitor=vid)
        try:
            return state.offer_fetched(raw, b.verdict(raw), now).version
        except trust.BundleRejected as exc:
            return exc.reason

    assert (at(staged, inside, later), at(staged, outside, later)) == (2, "expired")
    assert (at(staged, inside, NOW_MS), at(staged, outside, NOW_MS)) == (2, 1)
    short = owner.sign("New", rollout=50, expires="1h")   # the same rollout, the new version expiring
    assert (at(short, inside, later), at(short, outside, later)) == ("expired", "expired")


@pytest.mark.parametrize("name, edit, reason", [
    ("percent 100 is a plain bundle", lambda r: r.update(percent=100), "bad_rollout"),
    ("percent 0", lambda r: r.update(percent=0), "bad_rollout"),
    ("percent as text", lambda r: r.update(percent="10"), "bad_rollout"),
    ("a salt out of the alphabet", lambda r: r.update(salt="a b"), "bad_rollout"),
    ("an extra field", lambda r: r.update(extra=1), "bad_rollout"),
    ("the previous version above the new one", lambda r: r["previous"].update(version=3), "bad_rollout"),
    ("the previous named without its hash", lambda r: r["previous"].pop("sha256"), "bad_rollout"),
    ("another hash", lambda r: r["previous"].update(sha256="0" * 64), "bad_rollout"),
])
def test_a_rollout_part_signed_but_malformed_is_refused(owner, name, edit, reason):
    """Correctly signed (by the owner's key) yet not a valid rollout: refused by name."""
    import base64

    owner.sign("Old")
    env = json.loads(owner.sign("New", rollout=10))
    payload = json.loads(base64.b64decode(env["payload"]))
    edit(payload["rollout"])
    signed = json.loads(signing.sign_payload(json.dumps(payload).encode(), [owner.key]))
    raw = json.dumps(dict(signed, previousPayload=env["previousPayload"])).encode()
    with pytest.raises(trust.BundleRejected) as exc:
        trust.verify(raw, owner.pins, signing.verify_signature, site="acme", now=NOW_MS, visitor="visitor-0000001")
    assert exc.value.reason == reason, name


def test_no_rollout_over_an_expired_version(owner):
    owner.sign("Old", expires="1h")
    (owner.folder / "messages.json").write_text(json.dumps(messages("New")))
    later = datetime.fromtimestamp((NOW_MS + 2 * 3600_000) / 1000, timezone.utc)
    with pytest.raises(publishing.PublishError, match="has expired .* publish without --rollout"):
        publishing.sign_file(owner.folder / "messages.json", [owner.key_path], owner.out, rollout=10, now=later)

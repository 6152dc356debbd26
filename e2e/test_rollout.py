"""A staged rollout in real Chromium: two visitors (two browser contexts
whose stored records hold ids chosen inside and outside the bucket) on a
`sign --rollout 50` bundle see different versions' messages, on every page
(before consent on a `data-consent` page: the previous version); after
`--rollout 100` both see the new one, and a replay of the 50 % file gives
the old one back to neither."""

from __future__ import annotations

import json
import uuid

from conftest import shown_ids, simple_messages, sync
from proactive import publishing
from test_endpoint import boot, until
from widget.runtime import trust


def _sign(site, folder, messages: dict, rollout=None) -> bytes:
    path = folder / "messages.json"
    path.write_text(json.dumps(messages))
    out = site.bundles / f"{messages['site']}.json"
    envelope, _ = publishing.sign_file(path, [folder / "site.key"], out, rollout=rollout)
    publishing.write_bundle(envelope, out)
    return envelope


def _visitor(salt: str, inside: bool) -> str:
    return next(v for v in (f"visitor{i:024x}" for i in range(1, 5000)) if trust.in_rollout(salt, v, 50) == inside)


def _page_view(context, url: str, version: int) -> tuple[list[str], dict]:
    """A new page: once `version` runs (the cached copy first, then the
    fetched one), 3 s pass and the rule holds: what shows, and the bundle facts."""
    page = context.new_page()
    boot(page, url)
    bundle = lambda: page.evaluate("proactive('status')")["bundle"] or {}  # noqa: E731
    until(lambda: bundle().get("version") == version, f"version {version} running", 20, pump=page)
    page.clock.run_for(3000)
    sync(page)
    shown, facts = shown_ids(page), bundle()
    page.close()
    return shown, facts


def test_two_visitors_on_a_rollout_50_see_two_versions_until_it_is_widened(site, browser, guard, tmp_path):
    from proactive import signing

    signing.write_private_key(site.key, tmp_path / "site.key")
    tag = uuid.uuid4().hex[:8]
    name = f"rollout-{tag}"
    rule = [{"rule": "time_on_page", "op": "greater", "value": 2}]
    old = simple_messages({"id": f"old-{tag}", "rules": rule}, site_id=name)
    new = simple_messages({"id": f"new-{tag}", "rules": rule}, site_id=name)
    _sign(site, tmp_path, old)
    at50 = _sign(site, tmp_path, new, rollout=50)
    salt = publishing.read_payload(at50)["rollout"]["salt"]
    bundle_url = site.bundle_url(name)
    url = site.page(tag=site.tag(bundle=bundle_url))

    contexts = {}
    for who, inside in (("inside", True), ("outside", False)):
        context = browser.new_context()
        context.on("page", guard.attach)
        record = json.dumps({"v": 1, "visitor_id": _visitor(salt, inside)})
        context.add_init_script(f"""try {{ if (!localStorage.getItem({json.dumps('proactive:v1:' + bundle_url)}))
            localStorage.setItem({json.dumps('proactive:v1:' + bundle_url)}, {json.dumps(record)}); }} catch {{}}""")
        contexts[who] = context

    # --rollout 50: each sees their version's message (and the next page the same).
    shown, facts = _page_view(contexts["inside"], url, 2)
    assert shown == [f"new-{tag}"]
    assert facts["rollout"] == {"percent": 50, "part": "new", "why": "in_rollout", "new": 2, "previous": 1}
    shown, facts = _page_view(contexts["outside"], url, 1)
    assert shown == [f"old-{tag}"]
    assert facts["rollout"]["part"] == "previous" and facts["rollout"]["why"] == "outside_rollout"
    shown, facts = _page_view(contexts["inside"], url, 2)   # version 2 is now this browser's floor
    assert shown == [f"new-{tag}"] and facts["rollout"]["why"] == "already_newer"
    # The same browser on a page asking for consent first (data-consent), not
    # given yet: nothing stored may be read, no visitor id: the previous version.
    pending = site.page(tag=site.tag(bundle=bundle_url, data_consent="required"))
    shown, facts = _page_view(contexts["inside"], pending, 1)
    assert shown == [f"old-{tag}"] and facts["rollout"]["why"] == "no_visitor_id"

    # --rollout 100: the same version 2, to everyone.
    _sign(site, tmp_path, new, rollout=100)
    for who in ("inside", "outside"):
        shown, facts = _page_view(contexts[who], url, 2)
        assert shown == [f"new-{tag}"], who
        # outside: the plain file swapped in; inside: the cached copy of version 2 stays (the same version)
        assert facts.get("rollout") is None if who == "outside" else facts["rollout"]["part"] == "new"

    # The 50 % file served again (a stale CDN copy): the visitor outside the
    # bucket, who has had version 2 since, does not go back to version 1.
    (site.bundles / f"{name}.json").write_bytes(at50)
    shown, facts = _page_view(contexts["outside"], url, 2)
    assert shown == [f"new-{tag}"]
    assert facts["version"] == 2 and facts.get("rollout") is None   # its own copy of version 2 stays
    # … and the replay was taken as version 2 (the same), not refused as a rollback to 1 (warned).
    assert not [w for w in guard.warnings() if "rejected" in w], guard.warnings()
    for context in contexts.values():
        context.close()

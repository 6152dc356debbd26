"""`proactive pause`, the kill switch, on real files through main(argv): the
published bundle becomes its next version, signed, verifying as a browser
checks it, with no message left to show (the engine, run on a journey that
shows a message under the old version, shows nothing under the new one);
everything else is kept; a bundle the given key did not sign is refused and
left alone."""

from __future__ import annotations

import json

from proactive import publishing, signing
from proactive.cli import main
from widget.runtime.engine import Engine

MESSAGES = """\
site: acme
widgets: [{id: main, color: "#123456"}]
messages:
  - id: hello
    type: proactive
    widget: main
    content: {text: "Hello"}
    rules: [{rule: time_on_page, op: greater, value: 1}]
  - id: again
    type: proactive
    widget: main
    content: {text: "Again"}
    rules: [{rule: page_views, op: greater, value: 1}]
"""


def _shown(payload: dict) -> list[str]:
    engine = Engine(payload)
    out = engine.step([{"t": 0, "type": "page_view", "url": "https://acme.example/", "referrer": ""}], 0)
    out2 = engine.step([{"t": 5000, "type": "tick"}], 5000)
    return [d["message"] for d in out["decisions"] + out2["decisions"] if d["action"] == "show"]


def test_pause_signs_the_next_version_with_nothing_to_show(tmp_path, capsys):
    key, bundle = tmp_path / "site.key", tmp_path / "site.json"
    (tmp_path / "messages.yaml").write_text(MESSAGES)
    assert main(["keygen", "--out", str(key)]) == 0
    assert main(["sign", str(tmp_path / "messages.yaml"), "--key", str(key), "--out", str(bundle)]) == 0
    before = publishing.read_payload(bundle.read_bytes())
    assert _shown(before) == ["hello"]
    capsys.readouterr()

    assert main(["pause", "--key", str(key), "--out", str(bundle)]) == 0
    assert "paused 2 message(s)" in capsys.readouterr().out
    spec = signing.public_key_spec(signing.load_private_key(key))
    after = publishing.verify_bundle(bundle.read_bytes(), spec, site="acme", last_version=1)
    assert after["version"] == 2 and after["messages"] == [] and _shown(after) == []
    assert after["widgets"] == before["widgets"] and after["site"] == "acme"
    assert "hello, again" in after["description"]
    # Resuming is signing the messages again: a newer version still.
    assert main(["sign", str(tmp_path / "messages.yaml"), "--key", str(key), "--out", str(bundle)]) == 0
    assert publishing.read_payload(bundle.read_bytes())["version"] == 3


def test_pause_refuses_a_bundle_the_key_did_not_sign(tmp_path, capsys):
    mine, theirs, bundle = tmp_path / "mine.key", tmp_path / "theirs.key", tmp_path / "site.json"
    (tmp_path / "messages.yaml").write_text(MESSAGES)
    assert main(["keygen", "--out", str(mine)]) == 0 and main(["keygen", "--out", str(theirs)]) == 0
    assert main(["sign", str(tmp_path / "messages.yaml"), "--key", str(theirs), "--out", str(bundle)]) == 0
    published = bundle.read_bytes()
    capsys.readouterr()
    assert main(["pause", "--key", str(mine), "--out", str(bundle)]) == 1
    assert "not a bundle these keys signed" in capsys.readouterr().err
    assert bundle.read_bytes() == published
    assert main(["pause", "--key", str(mine), "--out", str(tmp_path / "missing.json")]) == 2
    assert json.loads(published)  # untouched, still the published envelope

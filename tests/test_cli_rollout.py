"""`proactive sign --rollout` and `proactive verify --visitor` through
main(argv), on real files: what an owner types and reads."""

from __future__ import annotations

import json

import pytest

from proactive import publishing
from proactive.cli import main
from widget.runtime import trust

MESSAGES = """\
site: acme
messages:
  - id: hello
    content: {text: "%s"}
    rules: [{rule: time_on_page, op: greater, value: 1}]
"""


def _sign(tmp_path, text, *extra):
    (tmp_path / "m.yaml").write_text(MESSAGES % text)
    return main(["sign", str(tmp_path / "m.yaml"), "--key", str(tmp_path / "k.key"),
                 "--out", str(tmp_path / "b.json"), *extra])


@pytest.fixture
def published(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "k.key")]) == 0
    pub = capsys.readouterr().out.strip()
    assert _sign(tmp_path, "Old") == 0
    capsys.readouterr()
    return pub


def test_sign_rollout_then_widen_then_finish(tmp_path, capsys, published):
    assert _sign(tmp_path, "New", "--rollout", "10") == 0
    assert "version 2 to 10 % of visitors, version 1 to the others" in capsys.readouterr().out
    assert _sign(tmp_path, "New", "--rollout", "50%") == 0
    assert "version 2 to 50 % of visitors" in capsys.readouterr().out
    salt = publishing.read_payload((tmp_path / "b.json").read_bytes())["rollout"]["salt"]
    inside = next(f"visitor{i:08d}" for i in range(999) if trust.in_rollout(salt, f"visitor{i:08d}", 50))
    assert main(["verify", str(tmp_path / "b.json"), "--key", published, "--visitor", inside]) == 0
    out = capsys.readouterr().out
    assert "ok (site acme, version 2," in out and f"visitor {inside} gets version 2 (in rollout)" in out
    assert main(["verify", str(tmp_path / "b.json"), "--key", published]) == 0
    assert "without a stored visitor id gets version 1 (no visitor id)" in capsys.readouterr().out
    assert _sign(tmp_path, "New", "--rollout", "100") == 0
    assert "(site acme, version 2)" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "b.json").read_bytes())) == {"payloadType", "payload", "signatures"}


@pytest.mark.parametrize("value", ["0", "101", "ten"])
def test_a_bad_percentage_is_a_usage_error(tmp_path, capsys, published, value):
    with pytest.raises(SystemExit) as exc:
        _sign(tmp_path, "New", "--rollout", value)
    assert exc.value.code == 2
    assert "--rollout" in capsys.readouterr().err


def test_nothing_published_nothing_to_roll_out_from(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "k.key")]) == 0
    assert _sign(tmp_path, "New", "--rollout", "10") == 2
    assert "publish a first version without --rollout" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()

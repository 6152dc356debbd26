"""`proactive keygen | validate | schema | sign | verify` on real files, through
main(argv) (and once through a real subprocess), as a site owner runs them."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from proactive import signing
from proactive.cli import main

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
site: acme
widgets: [{id: main}]
messages:
  - id: pricing-help
    type: proactive
    widget: main
    content: {text: "Questions about plans?"}
    rules:
      all:
        - {rule: time_on_page, op: greater, value: 40}
        - {rule: country, op: equals, value: [DE, "NO"]}
"""

BAD = """\
site: acme
widgets: [{id: main}]
messages:
  - id: pricing-help
    tpye: proactive
    rules:
      - {rule: time_on_page, op: bigger, value: 40}
      - {rule: country, op: equals, value: NO}
"""


def run(*argv) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def owner(tmp_path):
    """A site owner's folder: a key and a messages file."""
    code, out, _ = run("keygen", "--out", tmp_path / "site.key")
    assert code == 0
    (tmp_path / "messages.yaml").write_text(GOOD)
    return tmp_path, out.strip()


def payload_of(path: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_bytes())["payload"]))


# -- keygen ----------------------------------------------------------------------

def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_tag_key(tmp_path):
    code, out, err = run("keygen", "--out", tmp_path / "k.key")
    assert code == 0
    pin = out.strip()
    assert pin.startswith("ed25519:") and len(base64.b64decode(pin.split(":", 1)[1])) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "k.key").st_mode) == 0o600
    assert signing.public_key_spec(signing.load_private_key(tmp_path / "k.key")) == pin
    assert "key id" in err


def test_keygen_refuses_to_overwrite_a_key(tmp_path):
    assert run("keygen", "--out", tmp_path / "k.key")[0] == 0
    before = (tmp_path / "k.key").read_bytes()
    code, _, err = run("keygen", "--out", tmp_path / "k.key")
    assert code == 1 and "refusing to overwrite" in err
    assert (tmp_path / "k.key").read_bytes() == before


# -- validate / schema -------------------------------------------------------------

def test_validate_reports_every_problem_with_file_line_col(tmp_path):
    f = tmp_path / "messages.yaml"
    f.write_text(BAD)
    code, out, err = run("validate", f)
    assert code == 1 and "3 problem(s)" in err
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{f}:5:5: messages[0].tpye (message pricing-help): unknown field 'tpye'; did you mean 'type'? (expected ")
    assert lines[1].startswith(f"{f}:7:34: messages[0].rules[0].op (message pricing-help): operator 'bigger' is not allowed for time_on_page (expected greater | less")
    assert lines[2].startswith(f"{f}:8:44: messages[0].rules[1].value")
    assert 'YAML reads unquoted NO as false: write "NO"' in lines[2]


def test_validate_accepts_a_good_file_and_the_demo(owner):
    folder, _ = owner
    code, out, err = run("validate", folder / "messages.yaml", ROOT / "demo" / "messages.yaml")
    assert code == 0 and out == "" and "ok (1 message)" in err


@pytest.mark.parametrize("text, where, what", [
    ("site: acme\nmessages: [\n", ":3:1:", "a '[' or '{' is not closed"),
    ("", ":1:1:", "the file is empty"),
    ("site: acme\nsite: other\nmessages: []\n", ":2:1:", "duplicate key 'site'"),
])
def test_validate_reports_unreadable_files_with_a_place(tmp_path, text, where, what):
    f = tmp_path / "m.yaml"
    f.write_text(text)
    code, out, _ = run("validate", f)
    assert code == 1 and out.startswith(f"{f}{where}") and what in out, out


def test_validate_json_files_too(tmp_path):
    f = tmp_path / "m.json"
    f.write_text('{\n  "site": "acme",\n  "messages": [\n    {"id": "x", "rules": {"rule": "visits", "op": "greater", "value": -1}}\n  ]\n}\n')
    code, out, _ = run("validate", f)
    assert code == 1 and out.startswith(f"{f}:4:71: messages[0].rules.value (message x): -1 is not a number"), out


def test_schema_is_a_json_schema_that_agrees_with_validate(owner, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    code, out, _ = run("schema")
    schema = json.loads(out)
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    assert not list(validator.iter_errors(yaml.safe_load(GOOD)))
    assert not list(validator.iter_errors(yaml.safe_load((ROOT / "demo" / "messages.yaml").read_text())))
    assert list(validator.iter_errors(yaml.safe_load(BAD)))
    assert run("schema", "--out", tmp_path / "s.json")[0] == 0
    assert json.loads((tmp_path / "s.json").read_text()) == schema


# -- sign / verify -----------------------------------------------------------------

def test_sign_then_verify_with_the_tag_key(owner):
    folder, pin = owner
    bundle = folder / "bundles" / "acme.json"
    code, out, err = run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle)
    assert code == 0 and "version 1" in out and pin in err
    p = payload_of(bundle)
    assert p["site"] == "acme" and p["version"] == 1 and "expires_at" not in p
    assert datetime.fromisoformat(p["issued_at"].replace("Z", "+00:00")) <= datetime.now(timezone.utc)
    code, out, _ = run("verify", bundle, "--key", pin)
    assert code == 0 and "ok (site acme, version 1" in out


def test_sign_takes_the_next_version_from_the_last_published_bundle(owner):
    folder, pin = owner
    bundle = folder / "acme.json"
    for expected in (1, 2, 3):
        assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle)[0] == 0
        assert payload_of(bundle)["version"] == expected
    assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle, "--version", 10)[0] == 0
    assert payload_of(bundle)["version"] == 10
    # A new output path: the last published bundle is given with --previous.
    assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", folder / "new.json",
               "--previous", bundle)[0] == 0
    assert payload_of(folder / "new.json")["version"] == 11


@pytest.mark.parametrize("version, word", [(2, "refuse it (rollback)"), (3, "keep their copy")])
def test_sign_refuses_a_version_browsers_would_not_take(owner, version, word):
    folder, _ = owner
    bundle = folder / "acme.json"
    run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle, "--version", 3)
    before = bundle.read_bytes()
    code, _, err = run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle, "--version", version)
    assert code == 2 and word in err and bundle.read_bytes() == before


def test_sign_refuses_an_invalid_messages_file_and_writes_nothing(owner):
    folder, _ = owner
    (folder / "messages.yaml").write_text(BAD)
    code, out, err = run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", folder / "b.json")
    assert code == 1 and "nothing signed" in err and f"{folder / 'messages.yaml'}:7:34:" in out
    assert not (folder / "b.json").exists()


def test_sign_expires(owner):
    folder, pin = owner
    bundle = folder / "b.json"
    assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle, "--expires", "2h")[0] == 0
    expires = datetime.fromisoformat(payload_of(bundle)["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=119) < expires - datetime.now(timezone.utc) <= timedelta(hours=2)
    assert run("verify", bundle, "--key", pin)[0] == 0
    code, out, _ = run("verify", bundle, "--key", pin, "--now", (expires + timedelta(seconds=1)).isoformat())
    assert code == 1 and "rejected: expired" in out
    assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle, "--expires", "2001-01-01T00:00:00Z")[0] == 2
    assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle, "--expires", "soon")[0] == 2


def test_co_signing_for_key_rotation(owner):
    folder, old_pin = owner
    new_pin = run("keygen", "--out", folder / "new.key")[1].strip()
    bundle = folder / "b.json"
    assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--key", folder / "new.key", "--out", bundle)[0] == 0
    assert len(json.loads(bundle.read_bytes())["signatures"]) == 2
    for pins in (old_pin, new_pin, f"{old_pin},{new_pin}"):
        assert run("verify", bundle, "--key", pins)[0] == 0, pins
    stranger = signing.public_key_spec(signing.generate_private_key())
    code, out, _ = run("verify", bundle, "--key", stranger)
    assert code == 1 and "rejected: unknown_key" in out


def test_verify_names_each_rejection(owner):
    folder, pin = owner
    bundle = folder / "b.json"
    run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", bundle, "--version", 4)
    assert "rejected: wrong_site" in run("verify", bundle, "--key", pin, "--site", "other")[1]
    assert "rejected: rollback" in run("verify", bundle, "--key", pin, "--last-version", 5)[1]
    code, out, _ = run("verify", bundle, "--key", pin, "--last-version", 4)
    assert code == 0 and "a browser keeps its cached copy" in out
    env = json.loads(bundle.read_bytes())
    p = payload_of(bundle)
    p["messages"][0]["content"]["text"] = "Send us your password"
    env["payload"] = base64.b64encode(json.dumps(p).encode()).decode()
    bundle.write_text(json.dumps(env))
    code, out, _ = run("verify", bundle, "--key", pin)
    assert code == 1 and "rejected: bad_signature" in out
    bundle.write_bytes(b"<html>oops</html>")
    assert "rejected: bad_envelope" in run("verify", bundle, "--key", pin)[1]
    assert run("verify", bundle, "--key", "ed25519:nope")[0] == 2
    assert run("verify", folder / "missing.json", "--key", pin)[0] == 2


def test_verify_accepts_a_key_file(owner):
    folder, _ = owner
    run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", folder / "b.json")
    assert run("verify", folder / "b.json", "--key", folder / "site.key")[0] == 0


def test_the_installed_command_line(owner):
    folder, pin = owner
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "proactive.cli"]
    signed = subprocess.run(cmd + ["sign", "messages.yaml", "--key", "site.key", "--out", "b.json"], cwd=folder,
                            env=env, capture_output=True, text=True, timeout=60)
    assert signed.returncode == 0, signed.stderr
    verified = subprocess.run(cmd + ["verify", "b.json", "--key", pin], cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and "ok" in verified.stdout


def test_verify_a_published_url(owner):
    """`proactive verify https://…` checks what the host actually serves."""
    import functools
    import http.server
    import threading

    folder, pin = owner
    run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", folder / "site.json")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        code, out, _ = run("verify", f"{base}/site.json", "--key", pin)
        assert code == 0 and "ok (site acme, version 1" in out
        code, _, err = run("verify", f"{base}/missing.json", "--key", pin)
        assert code == 2 and "404" in err
        # A fresh checkout signs the next version after the one the host serves.
        assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", folder / "ci" / "site.json",
                   "--previous", f"{base}/site.json")[0] == 0
        assert payload_of(folder / "ci" / "site.json")["version"] == 2
    finally:
        server.shutdown()


def test_sign_will_not_restart_numbering_over_an_unreadable_bundle(owner):
    folder, _ = owner
    (folder / "b.json").write_text("<html>not a bundle</html>")
    code, _, err = run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", folder / "b.json")
    assert code == 2 and "pass --version" in err
    assert run("sign", folder / "messages.yaml", "--key", folder / "site.key", "--out", folder / "b.json", "--version", 9)[0] == 0
    assert payload_of(folder / "b.json")["version"] == 9

"""A site owner's first hour with the `proactive` command: each slip they made
gets an answer that says what to do (issue: the first hour of a site owner)."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_cli_bundle import GOOD, run

from proactive import signing

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path, text, name="messages.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


# -- did you mean ------------------------------------------------------------------

MISSPELT = """\
site: acme
messages:
  - id: pricing-help
    tpye: proactive
    content: {text: "Questions?"}
    rules:
      - {rule: time_on_pgae, op: greater, value: 40}
      - {rule: page_url, op: contain, value: /pricing}
"""


def test_misspelt_rule_operator_and_field_names_get_a_did_you_mean(tmp_path):
    f = _write(tmp_path, MISSPELT)
    code, out, _ = run("validate", f)
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{f}:4:5: messages[0].tpye (message pricing-help): unknown field 'tpye'; "
                               "did you mean 'type'? (expected ")
    assert lines[1].startswith(f"{f}:7:16: messages[0].rules[0].rule (message pricing-help): unknown rule "
                               "'time_on_pgae'; did you mean 'time_on_page'? (expected ")
    assert "operator 'contain' is not allowed for page_url; did you mean 'contains'? (expected" in lines[2]


def test_no_did_you_mean_when_nothing_is_close(tmp_path):
    f = _write(tmp_path, MISSPELT.replace("time_on_pgae", "zzzz"))
    _, out, _ = run("validate", f)
    assert "unknown rule 'zzzz' (expected" in out


# -- YAML syntax, in plain words ------------------------------------------------------

@pytest.mark.parametrize("text, where, words", [
    ("site: acme\nmessages:\n\t- id: a\n", ":3:1:", "a tab character: YAML indents with spaces only"),
    ("site: acme\nmessages:\n  - id: a\n      content: {text: hi}\n", ":4:14:",
     "unexpected ':': this line is indented deeper than the key above it"),
    ("site: acme\nmessages:\n  - id: a\n  content: {}\n rules: []\n", ":4:3:", "the indentation does not line up"),
    ("site: acme\nmessages:\n  - id: a\n    content: {text: \"hi}\n", ":4:21:", "a quoted text is not closed"),
    ("site: acme\nmessages: [\n", ":", "a '[' or '{' is not closed"),
], ids=["tab", "indented-too-deep", "indented-too-little", "open-quote", "open-bracket"])
def test_yaml_syntax_errors_say_what_is_wrong_in_plain_words(tmp_path, text, where, words):
    f = _write(tmp_path, text)
    code, out, _ = run("validate", f)
    assert code == 1 and out.startswith(f"{f}{where}") and words in out, out
    assert "while scanning" not in out and "while parsing" not in out and "<block" not in out


# -- placeholders ------------------------------------------------------------------------

PLACEHOLDERS = GOOD.replace('"Questions about plans?"', '"Hi {{utm_sourse|friend}}, {{name|there}} from {{city}}"')


def test_an_unknown_placeholder_is_a_warning_that_does_not_fail(tmp_path):
    f = _write(tmp_path, PLACEHOLDERS)
    code, out, err = run("validate", f)
    assert code == 0 and "ok (1 message, 1 warning(s))" in err
    assert out.startswith(f"{f}:7:21: messages[0].content.text (message pricing-help): warning: unknown placeholder "
                          "{{utm_sourse}}") and "did you mean 'utm_source'?" in out
    assert "{{name}}" not in out and "{{city}}" not in out  # an identify attribute and a built-in one
    signing.write_private_key(signing.generate_private_key(), tmp_path / "site.key")
    code, out, _ = run("sign", f, "--key", tmp_path / "site.key", "--out", tmp_path / "site.json")
    assert code == 0 and "warning: unknown placeholder {{utm_sourse}}" in out


# -- keys --------------------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path):
    _write(tmp_path, GOOD)
    code, out, _ = run("keygen", "--out", tmp_path / "site.key")
    assert code == 0
    (tmp_path / "public.txt").write_text(out)
    return tmp_path


@pytest.mark.parametrize("key, words", [
    ("PUBLIC", "that is a public key (the script tag's data-key); signing needs the private key file"),
    ("public.txt", "not a private key file (it holds a public key"),
    ("messages.yaml", "not a private key file (it looks like a messages file"),
    ("missing.key", "no such key file; create a signing key with `proactive keygen --out"),
], ids=["public-key-text", "public-key-file", "messages-file", "missing"])
def test_sign_says_which_key_it_needs(folder, key, words):
    given = (folder / "public.txt").read_text().strip() if key == "PUBLIC" else folder / key
    code, _, err = run("sign", folder / "messages.yaml", "--key", given, "--out", folder / "site.json")
    assert code == 2 and words in err, err
    assert not (folder / "site.json").exists()


# -- --help ----------------------------------------------------------------------------

def _help(*command) -> str:
    return subprocess.run([sys.executable, "-m", "proactive.cli", *command, "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def test_help_shows_every_default():
    serve = " ".join(_help("serve").split())
    assert "--port PORT the widget origin's port (default: 8700)" in serve
    assert "--site-port SITE_PORT the demo site's port (default: 8701)" in serve
    assert re.search(r"--static STATIC the built widget folder .*\(default: \S+dist/widget\)", serve)
    keygen = " ".join(_help("keygen").split())
    assert "(default: proactive-signing.key)" in keygen and "current folder" in keygen
    build = " ".join(_help("build").split())
    assert re.search(r"--out OUT the folder to write .*\(default: \S+dist/widget\)", build)


def test_every_option_of_every_command_says_what_it_is():
    import argparse
    import importlib

    from proactive import cli

    silent = []
    for name, (module_name, _) in cli.SUBCOMMANDS.items():
        parser = argparse.ArgumentParser(formatter_class=cli._HelpFormatter)
        module = importlib.import_module(module_name)
        module.add_arguments(parser, name) if cli._takes_name(module) else module.add_arguments(parser)
        silent += [f"{name} {'/'.join(a.option_strings) or a.dest}" for a in parser._actions
                   if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert silent == []


# -- proactive serve: busy ports, pages without the tag, the owner's own bundle -----------------

def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stand_in_widget(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "loader.js").write_text("/* loader */")
    return folder


def _serve(tmp_path, *args):
    static = _stand_in_widget(tmp_path / "widget")
    return subprocess.Popen([sys.executable, "-m", "proactive.cli", "serve", "--data", str(tmp_path / "data"),
                             "--static", str(static), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(url: str, proc) -> bytes:
    deadline = time.time() + 20
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2).read()
        except OSError:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.2)


@pytest.mark.parametrize("busy", ["--port", "--site-port"])
def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path, busy):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {"--port": _port(), "--site-port": _port()}
        ports[busy] = taken.getsockname()[1]
        proc = _serve(tmp_path, "--port", str(ports["--port"]), "--site-port", str(ports["--site-port"]),
                      "--site-host", "127.0.0.1")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert out == "" and err.strip() == (f"proactive serve: port {ports[busy]} on 127.0.0.1 is in use (another "
                                         f"`proactive serve`?); stop it or choose another with {busy}")


def test_serve_warns_about_pages_without_the_tag_and_serves_them(tmp_path):
    pages = tmp_path / "site"
    pages.mkdir()
    (pages / "index.html").write_text("<!doctype html><head>{{PROACTIVE_TAG}}</head><h1>Home</h1>")
    (pages / "about.html").write_text("<!doctype html><h1>About</h1>")
    port, site_port = _port(), _port()
    proc = _serve(tmp_path, "--site", str(pages), "--port", str(port), "--site-port", str(site_port))
    try:
        assert b"<h1>About</h1>" in _wait_for(f"http://localhost:{site_port}/about.html", proc)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert f"warning: {pages / 'about.html'} has no {{{{PROACTIVE_TAG}}}}" in err
    assert "index.html" not in err


def test_serve_serves_the_owners_widget_folder_and_signed_bundle_unchanged(tmp_path):
    public = _stand_in_widget(tmp_path / "public")
    _write(tmp_path, GOOD)
    code, pin, _ = run("keygen", "--out", tmp_path / "site.key")
    code, _, _ = run("sign", tmp_path / "messages.yaml", "--key", tmp_path / "site.key",
                     "--out", public / "bundles" / "site.json")
    assert code == 0
    signed = (public / "bundles" / "site.json").read_bytes()
    pages = tmp_path / "site"
    pages.mkdir()
    (pages / "index.html").write_text("<head>{{PROACTIVE_TAG}}</head>")
    port, site_port = _port(), _port()
    proc = subprocess.Popen([sys.executable, "-m", "proactive.cli", "serve", "--data", str(tmp_path / "data"),
                             "--static", str(public), "--bundle", str(public / "bundles" / "site.json"),
                             "--key", pin.strip(), "--site", str(pages), "--port", str(port),
                             "--site-port", str(site_port)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        html = _wait_for(f"http://localhost:{site_port}/", proc).decode()
        served = urllib.request.urlopen(f"http://127.0.0.1:{port}/bundles/site.json", timeout=5)
        assert served.read() == signed and served.headers["cache-control"] == "no-cache"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    attrs = (f'<script async src="http://127.0.0.1:{port}/loader.js" data-bundle="http://127.0.0.1:{port}'
             f'/bundles/site.json" data-key="{pin.strip()}"')
    # The tag printed for the owner's site; the previewed page's also revalidates every 10 s.
    assert f"Script tag:     {attrs}></script>" in out
    assert f'{attrs} data-revalidate="10"></script>' in html
    assert not (tmp_path / "data" / "demo-signing.key").exists()  # nothing re-signed


@pytest.mark.parametrize("case, words", [
    ("other-key", "a browser with this key would refuse it: unknown_key"),
    ("no-key", "--bundle needs --key"),
    ("outside", "is not inside --static"),
])
def test_serve_refuses_an_own_bundle_a_browser_would_not_run(tmp_path, case, words):
    public = _stand_in_widget(tmp_path / "public")
    _write(tmp_path, GOOD)
    run("keygen", "--out", tmp_path / "site.key")
    bundle = (tmp_path if case == "outside" else public / "bundles") / "site.json"
    assert run("sign", tmp_path / "messages.yaml", "--key", tmp_path / "site.key", "--out", bundle)[0] == 0
    other = signing.public_key_spec(signing.generate_private_key())
    key = [] if case == "no-key" else ["--key", other if case == "other-key" else str(tmp_path / "site.key")]
    proc = subprocess.run([sys.executable, "-m", "proactive.cli", "serve", "--data", str(tmp_path / "data"),
                           "--static", str(public), "--bundle", str(bundle), *key, "--port", str(_port()),
                           "--site-port", str(_port())], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and words in proc.stderr, proc.stderr


# -- one bundle layout -------------------------------------------------------------------

def test_a_rebuild_keeps_the_signed_bundles_in_the_folder(tmp_path, monkeypatch):
    from proactive import cmd_build

    public = tmp_path / "public"
    (public / "bundles").mkdir(parents=True)
    (public / "bundles" / "site.json").write_text('{"signed": true}')
    (public / "old-widget-file.mjs").write_text("//")

    def fake_build(argv):  # build/build.py's main: replaces the folder, makes an empty bundles/
        import shutil

        out = Path(argv[1])
        shutil.rmtree(out, ignore_errors=True)
        (out / "bundles").mkdir(parents=True)
        (out / "loader.js").write_text("//")
        return 0

    monkeypatch.setattr(cmd_build.runpy, "run_path", lambda path: {"main": fake_build})
    assert cmd_build.run(type("Args", (), {"out": public})()) == 0
    assert (public / "bundles" / "site.json").read_text() == '{"signed": true}'
    assert (public / "loader.js").exists() and not (public / "old-widget-file.mjs").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public"]


def test_the_build_says_where_bundles_go(tmp_path, monkeypatch, capsys):
    from proactive import cmd_build

    monkeypatch.setattr(cmd_build.runpy, "run_path", lambda path: {"main": lambda argv: 0})
    public = tmp_path / "public"
    (public / "bundles").mkdir(parents=True)
    assert cmd_build.run(type("Args", (), {"out": public})()) == 0
    assert f"next: proactive sign messages.yaml --key site.key --out {public / 'bundles' / 'site.json'}" \
        in capsys.readouterr().out
    (public / "bundles" / "site.json").write_text("{}")
    assert cmd_build.run(type("Args", (), {"out": public})()) == 0
    assert f"bundles: site.json kept in {public / 'bundles'}" in capsys.readouterr().out


def test_readme_and_publishing_use_one_layout():
    readme = (ROOT / "README.md").read_text()
    publishing = (ROOT / "docs" / "publishing.md").read_text()
    for text in (readme, publishing):
        assert "proactive build --out public" in text
        assert "--out public/bundles/site.json" in text
        assert "dist/widget/" not in text and "--out bundles/site.json" not in text


# -- make demo -----------------------------------------------------------------------------

def test_make_demo_says_what_it_does_and_takes_the_ports_given(tmp_path):
    import os
    import signal

    port, site_port = _port(), _port()
    proc = subprocess.Popen(["make", "--no-print-directory", "demo", f"PORT={port}", f"SITE_PORT={site_port}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines = []
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("Script tag:"):
                break
        assert b"<script" in _wait_for(f"http://localhost:{site_port}/", proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    out = "\n".join(lines)
    assert "==> Building the widget into dist/widget" in out and "==> Serving the demo" in out, out
    assert out.index("==> Building") < out.index("==> Serving") < out.index("Demo site:")
    assert f"Demo site:      http://localhost:{site_port}/" in out and f"http://127.0.0.1:{port}/loader.js" in out


def test_a_long_build_says_it_is_still_building(tmp_path, monkeypatch, capsys):
    from proactive import cmd_build

    def slow_build(argv):
        time.sleep(0.35)
        return 0

    monkeypatch.setattr(cmd_build, "PROGRESS_EVERY", 0.1)
    monkeypatch.setattr(cmd_build.runpy, "run_path", lambda path: {"main": slow_build})
    assert cmd_build.run(type("Args", (), {"out": tmp_path / "public"})()) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all(re.fullmatch(r"  … still building \(\d+ s\)", line) for line in lines), lines
    time.sleep(0.25)
    assert capsys.readouterr().err == ""  # and stops when the build is done


# -- rules a first-time visitor cannot meet (issue 14) -------------------------------------

def test_a_negative_condition_on_a_fact_that_may_be_unknown_is_a_warning(tmp_path):
    f = _write(tmp_path, GOOD.replace(
        "      all:\n", "      all:\n        - {rule: country, op: is_not, value: FR}\n"
                      "        - any: [{rule: rating, op: is_not, value: poor}, {rule: rating, op: not_exists}]\n"
                      "        - {rule: visits, op: equals, value: 0}\n", 1))
    code, out, err = run("validate", f)
    assert code == 0 and "2 warning(s)" in err, (out, err)
    assert "warning: `country is_not …` does not hold while the country is unknown" in out
    assert "{rule: country, op: not_exists}" in out
    assert "`visits equals 0` never holds" in out
    assert "rating" not in out   # the `any` with not_exists is what the owner meant

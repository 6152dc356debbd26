"""`proactive serve --messages FILE --site DIR`: a site owner previews their
own messages on their own pages (acceptance: serve could only show the demo)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path, *args):
    static = tmp_path / "widget"  # a stand-in widget folder: these tests are about the pages and bundle
    static.mkdir(exist_ok=True)
    (static / "loader.js").write_text("/* loader */")
    return subprocess.Popen([sys.executable, "-m", "proactive.cli", "serve", "--data", str(tmp_path / "data"),
                             "--static", str(static), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_previews_your_messages_on_your_pages(tmp_path):
    (tmp_path / "messages.yaml").write_text(
        "site: brewhaus\nmessages:\n  - id: hi\n    rules: [{rule: time_on_page, op: greater, value: 1}]\n"
        "    content: {text: Hello}\n")
    pages = tmp_path / "site"
    pages.mkdir()
    (pages / "index.html").write_text("<!doctype html><title>Brewhaus</title>{{PROACTIVE_TAG}}<h1>Brewhaus</h1>")
    port, site_port = _port(), _port()
    proc = _serve(tmp_path, "--messages", str(tmp_path / "messages.yaml"), "--site", str(pages),
                  "--port", str(port), "--site-port", str(site_port))
    try:
        deadline = time.time() + 20
        while True:
            try:
                html = urllib.request.urlopen(f"http://localhost:{site_port}/", timeout=2).read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.communicate()
                time.sleep(0.2)
        assert "<h1>Brewhaus</h1>" in html and f"http://127.0.0.1:{port}/loader.js" in html
        assert 'data-revalidate="10"' in html   # a bundle signed again reaches the open preview tab soon
        envelope = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/bundles/demo.json").read())
        import base64
        payload = json.loads(base64.b64decode(envelope["payload"]))
        assert payload["site"] == "brewhaus" and [m["id"] for m in payload["messages"]] == ["hi"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_a_messages_file_with_problems(tmp_path):
    (tmp_path / "bad.yaml").write_text("site: s\nmessages:\n  - id: a\n    rules: [{rule: time_on_pag, op: greater, value: 1}]\n"
                                       "    content: {text: hi}\n")
    proc = _serve(tmp_path, "--messages", str(tmp_path / "bad.yaml"), "--port", str(_port()),
                  "--site-port", str(_port()))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert f"{tmp_path / 'bad.yaml'}:4:" in err and "unknown rule 'time_on_pag'" in err
    assert "nothing served" in err

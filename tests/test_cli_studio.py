"""`proactive studio`: its start-up lines, its guard (token, origin, host),
save (round trip, conflicts, atomic) and publish (validation, version,
the key stays on the server). The page itself: e2e/test_studio.py."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from proactive import signing, studio
from proactive.cmd_studio import create_app

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "t" * 32
PORT = 8702
ORIGIN = f"http://127.0.0.1:{PORT}"
DOC = {"site": "acme", "widgets": [{"id": "main"}],
       "messages": [{"id": "hello", "content": {"text": "Hi"}, "rules": [{"rule": "time_on_page", "op": "greater", "value": 5}]}]}


@pytest.fixture
def files(tmp_path):
    key = tmp_path / "site.key"
    signing.write_private_key(signing.generate_private_key(), key)
    return tmp_path / "messages.yaml", key, tmp_path / "out" / "bundle.json"


@pytest.fixture
def client(files):
    messages, key, bundle = files
    app = create_app(messages, key, bundle, TOKEN, PORT)
    return TestClient(app, base_url=ORIGIN, headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"})


def api(name: str) -> str:
    return f"/s/{TOKEN}/api/{name}"


def save(client, document, etag, origins=None):
    return client.post(api("save"), json={"document": document, "etag": etag, "origins": origins})


def test_every_request_needs_the_token(client):
    assert client.get(f"/s/{TOKEN}/").status_code == 200
    for path in ("/", "/s/wrong/", f"/s/{TOKEN[:-1]}/api/state", "/api/state", f"/s/x{TOKEN}/api/state"):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/s/wrong{TOKEN}/api/save", json={}).status_code == 403


def test_other_origins_are_refused(client):
    assert client.get(api("state")).status_code == 200
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}):
        assert client.post(api("validate"), json={"document": DOC}, headers=headers).status_code == 403, headers
        assert client.get(api("state"), headers=headers).status_code == 403, headers
    # another host name pointing here (DNS rebinding) is refused too
    assert client.get(api("state"), headers={"Host": f"evil.example:{PORT}"}).status_code == 403
    # a write without any origin information (not a browser's same-origin fetch)
    bare = TestClient(client.app, base_url=ORIGIN)
    assert bare.post(api("validate"), json={"document": DOC}).status_code == 403


def test_a_missing_file_is_an_empty_studio_created_on_the_first_save(client, files):
    messages = files[0]
    state = client.get(api("state")).json()
    assert state["exists"] is False and state["document"]["messages"] == []
    assert state["etag"] == studio.EMPTY_ETAG
    r = save(client, DOC, state["etag"])
    assert r.status_code == 200, r.text
    assert messages.exists()
    assert studio.read(messages)["document"] == DOC


def test_a_file_changed_on_disk_is_not_overwritten(client, files):
    messages = files[0]
    messages.write_text("site: acme\nmessages: []\n")
    state = client.get(api("state")).json()
    messages.write_text("site: acme  # changed by hand meanwhile\nmessages: []\n")
    r = save(client, DOC, state["etag"])
    assert r.status_code == 409
    assert "changed by hand meanwhile" in messages.read_text()
    # a second tab with the old etag after a save from the first tab: refused too
    fresh = client.get(api("state")).json()
    assert save(client, DOC, fresh["etag"]).status_code == 200
    assert save(client, dict(DOC, site="other"), fresh["etag"]).status_code == 409
    assert studio.read(messages)["document"]["site"] == "acme"


def test_live_validation_reports_paths(client):
    bad = json.loads(json.dumps(DOC))
    bad["messages"][0]["rules"][0]["value"] = -5
    problems = client.post(api("validate"), json={"document": bad}).json()["problems"]
    assert [(p["path"], p["warning"]) for p in problems] == [(["messages", 0, "rules", 0, "value"], False)]
    assert "-5 is not a number" in problems[0]["message"]


def test_a_file_with_problems_saves_as_a_draft_but_never_publishes(client, files):
    messages, _, bundle = files
    bad = json.loads(json.dumps(DOC))
    bad["messages"][0]["type"] = "sms"
    assert save(client, bad, studio.EMPTY_ETAG).status_code == 200   # a draft
    preview = client.post(api("publish/preview"), json={}).json()
    assert preview["problems"]
    r = client.post(api("publish"), json={"etag": preview["etag"]})
    assert r.status_code == 422 and not bundle.exists()


def test_publish_signs_on_the_server_and_bumps_the_version(client, files):
    messages, key, bundle = files
    state = client.get(api("state")).json()
    assert "PRIVATE" not in json.dumps(state) and key.read_text() not in json.dumps(state)
    etag = save(client, DOC, state["etag"]).json()["etag"]
    preview = client.post(api("publish/preview"), json={}).json()
    assert preview["changes"]["added"] == ["hello"] and preview["version"] == 1
    r = client.post(api("publish"), json={"etag": preview["etag"]})
    assert r.json() == {"published": True, "version": 1, "bundle": "bundle.json"}
    paused = dict(DOC, messages=[dict(DOC["messages"][0], enabled=False)])
    save(client, paused, etag, [0])
    preview = client.post(api("publish/preview"), json={}).json()
    assert preview["changes"] == {"added": [], "removed": [], "changed": [], "paused": ["hello"], "activated": []}
    assert client.post(api("publish"), json={"etag": preview["etag"]}).json()["version"] == 2
    payload = json.loads(base64.b64decode(json.loads(bundle.read_bytes())["payload"]))
    assert payload["version"] == 2 and payload["messages"][0]["enabled"] is False
    pub = signing.public_key_spec(signing.load_private_key(key))
    verify = subprocess.run([sys.executable, "-m", "proactive.cli", "verify", str(bundle), "--key", pub],
                            cwd=ROOT, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_publish_refuses_a_summary_made_before_a_change(client):
    state = client.get(api("state")).json()
    save(client, DOC, state["etag"])
    preview = client.post(api("publish/preview"), json={}).json()
    save(client, dict(DOC, site="acme2"), preview["etag"], [0])
    assert client.post(api("publish"), json={"etag": preview["etag"]}).status_code == 409


def studio_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "proactive.cli", "studio", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=30)


def test_a_missing_or_wrong_key_is_one_line(tmp_path):
    r = studio_cli(tmp_path / "m.yaml", "--key", tmp_path / "nope.key")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "nope.key: no such file" in r.stderr
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not a key\n")
    r = studio_cli(tmp_path / "m.yaml", "--key", wrong)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not an Ed25519 private key" in r.stderr


def test_a_port_in_use_is_one_line(files):
    messages, key, _ = files
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = studio_cli(messages, "--key", key, "--port", port)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"proactive studio: port {port} on 127.0.0.1 is in use (another studio?); choose another with --port\n"


def test_save_keeps_comments_and_untouched_messages(tmp_path):
    path = tmp_path / "m.yaml"
    text = ("# top comment\nsite: acme  # id\nmessages:\n  - id: a   # first\n    rules: [{rule: visits, op: greater, value: 1}]\n"
            "    content: {text: A}\n  - id: b\n    rules: []\n    content: {text: 'B'}\n")
    path.write_text(text)
    state = studio.read(path)
    doc = state["document"]
    doc["messages"][1]["enabled"] = False
    doc["messages"].append({"id": "c", "rules": [{"rule": "country", "op": "equals", "value": "NO"}],
                            "content": {"text": "yes"}})
    studio.save(path, doc, state["etag"], [0, 1, None])
    after = path.read_text()
    assert after.startswith(text[:text.index("  - id: b")])   # the top and message a: byte for byte
    assert "enabled: false" in after
    assert studio.read(path)["document"]["messages"][2]["rules"][0]["value"] == "NO"   # quoted: YAML 1.1 reads NO as false
    # deleting the first message keeps the others as written
    state = studio.read(path)
    doc = state["document"]
    del doc["messages"][0]
    studio.save(path, doc, state["etag"], [1, 2])
    assert [m["id"] for m in studio.read(path)["document"]["messages"]] == ["b", "c"]
    assert "content: {text: 'B'}" in path.read_text()


def test_a_malformed_file_is_reported_with_lines_and_never_rewritten(client, files):
    messages = files[0]
    messages.write_text("site: acme\nmessages:\n  - id: a\n\tcontent: x\n")
    state = client.get(api("state")).json()
    assert state["malformed"] and state["document"] is None
    assert state["problems"][0]["line"] == 4 and "tab" in state["problems"][0]["message"]
    assert save(client, DOC, "whatever").status_code == 409


def test_the_page_wheel_is_self_contained(tmp_path):
    """The wheel the page installs into Pyodide runs with the standard library
    alone (no site-packages: no C YAML, no ruamel, no cryptography), and
    validates and simulates like the server."""
    import zipfile

    name, data = studio.page_wheel()
    assert name.endswith("-py3-none-any.whl")
    (tmp_path / name).write_bytes(data)
    with zipfile.ZipFile(tmp_path / name) as z:
        assert not [n for n in z.namelist() if n.endswith(".so")]
        z.extractall(tmp_path / "site")
    doc = json.dumps(dict(DOC, messages=[dict(DOC["messages"][0], enabled=False)]))
    script = ("import json, sys; sys.path.insert(0, '.'); from proactive import studio_logic as s; "
              "assert 'ruamel' not in sys.modules and 'cryptography' not in sys.modules; "
              f"print(s.simulate_json({doc!r}, json.dumps({{'events': [{{'t': 0, 'type': 'page_view', "
              "'url': 'https://a.example/'}], 'until': 30})))")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd=tmp_path / "site", capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["result"]["shown"] == [] and "paused (enabled: false)" in out["timeline"]
    assert out == json.loads(json.dumps(studio_logic_simulate(json.loads(doc))))


def studio_logic_simulate(document):
    from proactive import studio_logic

    return studio_logic.simulate(document, {"events": [{"t": 0, "type": "page_view", "url": "https://a.example/"}],
                                            "until": 30})


def test_the_raw_text_is_saved_as_typed_unless_the_file_changed(client, files):
    messages = files[0]
    messages.write_text("site: a\n\tbroken\n")
    state = client.get(api("state")).json()
    r = client.post(api("save-text"), json={"text": "site: a\nmessages: []\n", "etag": state["etag"]})
    assert r.status_code == 200 and r.json()["malformed"] is False
    assert messages.read_text() == "site: a\nmessages: []\n"
    r = client.post(api("save-text"), json={"text": "site: b\n", "etag": state["etag"]})
    assert r.status_code == 409 and messages.read_text() == "site: a\nmessages: []\n"


def test_a_duplicate_is_inserted_below_its_original_and_the_rest_stays(tmp_path):
    path = tmp_path / "m.yaml"
    text = ("site: acme\nmessages:\n  - id: a   # first\n    rules: []\n  # the second\n  - id: b\n    rules: []\n")
    path.write_text(text)
    state = studio.read(path)
    doc = state["document"]
    doc["messages"].insert(1, {"id": "a-copy", "rules": []})
    studio.save(path, doc, state["etag"], [0, None, 1])
    after = path.read_text()
    assert [m["id"] for m in studio.read(path)["document"]["messages"]] == ["a", "a-copy", "b"]
    assert "  - id: a   # first\n" in after and "  - id: b\n    rules: []\n" in after and "# the second" in after


def test_publish_with_a_rollout_percentage_stages_it_as_sign_does(client, files):
    """Publish's share of visitors is `proactive sign --rollout`: the new
    version to that share, the published one to the others, in one signed
    file `proactive verify` reads; widening keeps the version; 100 ends it."""
    messages, key, bundle = files
    pub = signing.public_key_spec(signing.load_private_key(key))
    etag = save(client, DOC, client.get(api("state")).json()["etag"]).json()["etag"]
    preview = client.post(api("publish/preview"), json={}).json()
    assert preview["published"] is None
    # nothing published yet: a rollout has nothing to roll out from
    r = client.post(api("publish"), json={"etag": preview["etag"], "rollout": 25})
    assert r.status_code == 422 and "no published bundle" in r.json()["error"] and not bundle.exists()
    assert client.post(api("publish"), json={"etag": preview["etag"], "rollout": 100}).json()["version"] == 1
    changed = dict(DOC, messages=[dict(DOC["messages"][0], content={"text": "Hello there"})])
    save(client, changed, etag, [0])
    preview = client.post(api("publish/preview"), json={}).json()
    assert preview["published"] == {"version": 1} and preview["changes"]["changed"] == ["hello"]
    r = client.post(api("publish"), json={"etag": preview["etag"], "rollout": 25}).json()
    assert r["version"] == 2 and r["rollout"] == {"percent": 25, "previous": 1}

    def verify(visitor):
        out = subprocess.run([sys.executable, "-m", "proactive.cli", "verify", str(bundle), "--key", pub,
                              "--visitor", visitor], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    assert "staged rollout: version 2 to 25 % of visitors, version 1 to the others" in verify("v-1")
    preview = client.post(api("publish/preview"), json={}).json()
    assert preview["published"] == {"version": 2, "rollout": {"percent": 25, "previous": 1}}
    r = client.post(api("publish"), json={"etag": preview["etag"], "rollout": 60}).json()
    assert r["version"] == 2 and r["rollout"] == {"percent": 60, "previous": 1}   # widened, same version
    r = client.post(api("publish"), json={"etag": preview["etag"], "rollout": 100}).json()
    assert r == {"published": True, "version": 2, "bundle": "bundle.json"}   # the rollout ends: everyone gets 2
    assert "staged rollout" not in verify("v-1")
    for bad in ("25", True, 0, 101):
        r = client.post(api("publish"), json={"etag": preview["etag"], "rollout": bad})
        assert r.status_code in (400, 422), bad


@contextlib.contextmanager
def serving(tmp_path, *extra):
    """A real `proactive serve` (no demo) with a known agent token and `extra`
    arguments: yields (its URL, the token)."""
    import time
    import urllib.request

    static = tmp_path / "widget"
    static.mkdir()
    (static / "loader.js").write_text("/* loader */")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "agent-" + "k" * 30
    proc = subprocess.Popen([sys.executable, "-m", "proactive.cli", "serve", "--no-demo", "--port", str(port),
                             "--data", str(tmp_path / "data"), "--static", str(static), "--agent-token", token, *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/loader.js", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.communicate()
                time.sleep(0.2)
        yield url, token
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def endpoint_server(tmp_path):
    with serving(tmp_path) as (url, token):
        yield url, token


def test_the_list_shows_each_messages_stats_from_a_real_endpoint(files, endpoint_server):
    """--endpoint and --agent-token: GET /api/stats answers each message's
    shown, clicked, replied and reply rate of the last 7 days from the
    endpoint's agent API (the token stays in the studio process); a wrong
    token or an endpoint that is down: "unavailable", and the rest works."""
    from endpoint_helpers import http_call

    from proactive.cmd_studio import Endpoint

    url, agent_token = endpoint_server
    for sender, kinds in (("visitor-a", ("shown", "clicked", "replied")), ("visitor-b", ("shown",)),
                          ("visitor-c", ("shown", "replied"))):
        batch = {"sender": sender, "events": [{"id": str(i), "type": k, "message": "hello", **({"button": "0"} if k == "clicked" else {})}
                                              for i, k in enumerate(kinds)]}
        status, _, body = http_call(f"{url}/api/events", "POST", batch, {"Content-Type": "application/json", "Origin": "http://shop.test"})
        assert status == 202, body
    messages, key, bundle = files

    def studio_client(endpoint):
        app = create_app(messages, key, bundle, TOKEN, PORT, endpoint=endpoint)
        return TestClient(app, base_url=ORIGIN, headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"})

    client = studio_client(Endpoint(url, agent_token))
    state = client.get(api("state")).json()
    assert state["endpoint"] == url and agent_token not in json.dumps(state)
    stats = client.get(api("stats")).json()
    assert stats == {"days": 7, "messages": {"hello": {"shown": 3, "clicked": 1, "replied": 2, "reply_rate": 2 / 3}}}
    wrong = studio_client(Endpoint(url, "not-the-token")).get(api("stats")).json()
    assert wrong == {"unavailable": "the agent token is not this endpoint's"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    client = studio_client(Endpoint(down, agent_token, timeout=1))
    assert client.get(api("stats")).json()["unavailable"].startswith("the endpoint cannot be reached")
    assert save(client, DOC, client.get(api("state")).json()["etag"]).status_code == 200   # editing still works
    assert client.get(f"/s/{'x' * 32}/api/stats").status_code == 403


def test_endpoint_and_agent_token_go_together(files):
    messages, key, _ = files
    r = studio_cli(messages, "--key", key, "--endpoint", "http://127.0.0.1:1", "--port", "0")
    assert r.returncode == 1 and r.stderr.strip() == \
        "proactive studio: --endpoint and --agent-token go together (the stats need the agent token)"


def test_publish_uploads_to_an_endpoint_that_accepts_the_key(files, tmp_path):
    """With --endpoint, Publish also PUTs the signed bundle to the endpoint's
    agent API; a real `proactive serve --bundle-key` stores it (served at
    /bundles/NAME.json, byte for byte) only when its key signed it and a
    browser would take it: another key's bundle, an older version or no
    agent token are refused, and the file is written either way."""
    import urllib.request

    from endpoint_helpers import http_call

    from proactive.cmd_studio import Endpoint

    messages, key, bundle = files
    public = signing.public_key_spec(signing.load_private_key(key))
    with serving(tmp_path, "--bundle-key", public) as (url, token):
        app = create_app(messages, key, bundle, TOKEN, PORT, endpoint=Endpoint(url, token))
        client = TestClient(app, base_url=ORIGIN, headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"})
        save(client, DOC, client.get(api("state")).json()["etag"])
        preview = client.post(api("publish/preview"), json={}).json()
        r = client.post(api("publish"), json={"etag": preview["etag"]}).json()
        assert r["uploaded"] == {"name": "bundle", "version": 1, "url": f"{url}/bundles/bundle.json"}, r
        served = urllib.request.urlopen(f"{url}/bundles/bundle.json", timeout=5).read()
        assert served == bundle.read_bytes()
        # the endpoint checks as a browser does: another key, an older version, no token
        other = tmp_path / "other.key"
        signing.write_private_key(signing.generate_private_key(), other)
        from proactive import publishing

        stranger, _ = publishing.sign_file(messages, [other], tmp_path / "none.json")
        agent = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, _, body = http_call(f"{url}/api/agent/bundles/bundle", "PUT", json.loads(stranger), agent)
        assert status == 422 and body["error"]["code"] == "bundle_rejected", body
        older, _ = publishing.sign_file(messages, [key], tmp_path / "none.json", version=1)
        client.post(api("publish"), json={"etag": preview["etag"]})   # version 2 stored
        status, _, body = http_call(f"{url}/api/agent/bundles/bundle", "PUT", json.loads(older), agent)
        assert status in (409, 422), body
        status, _, _ = http_call(f"{url}/api/agent/bundles/bundle", "PUT", json.loads(older), {"Content-Type": "application/json"})
        assert status == 401
        assert json.loads(urllib.request.urlopen(f"{url}/bundles/bundle.json", timeout=5).read()) == json.loads(bundle.read_bytes())
    # an endpoint that is down: the file is published, the upload says why not
    app = create_app(messages, key, bundle, TOKEN, PORT, endpoint=Endpoint(url, token, timeout=1))
    client = TestClient(app, base_url=ORIGIN, headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"})
    preview = client.post(api("publish/preview"), json={}).json()
    r = client.post(api("publish"), json={"etag": preview["etag"]}).json()
    assert r["version"] == 3 and r["upload_error"].startswith("the endpoint cannot be reached")

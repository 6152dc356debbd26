"""Shared by the endpoint's tests: a stand-in widget folder, and one HTTP
call that returns (status, headers, JSON body) whatever the status."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest


@pytest.fixture
def static_dir(tmp_path) -> Path:
    d = tmp_path / "widget"
    d.mkdir()
    (d / "loader.js").write_text("/* loader */")
    return d


def http_call(url: str, method: str, body=None, headers: dict | None = None, timeout: float = 10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")

"""A visitor's self-service (GET and DELETE /api/visitors/me): the export
holds everything kept about the visitor, and after the deletion the
database file itself has no row of theirs left (read with sqlite3), while
another visitor's data stays."""

from __future__ import annotations

import sqlite3

from endpoint_helpers import static_dir  # noqa: F401 (a fixture)
from test_server import SITE, Client, app, auth, client, make_app, register, say  # noqa: F401 (fixtures)
from server_stub.storage import visitor_key


def _activity(client, token: str, sender: str) -> None:
    assert say(client, token, "Hello?", auto_message="welcome").status_code == 201
    assert client.post("/api/conversation/rating", json={"value": "great"}, headers=auth(token)).status_code == 200
    assert client.post("/api/deliveries", json={"message": "mail", "email": "a@b.example"}, headers=auth(token)).status_code == 202
    batch = {"sender": sender, "events": [{"id": "e1", "type": "shown", "message": "welcome"},
                                          {"id": "e2", "type": "clicked", "message": "welcome", "button": "yes"}]}
    assert client.post("/api/events", json=batch, headers={"origin": SITE}).status_code == 202


def _rows(db, token: str, sender: str) -> dict:
    key = visitor_key(token)
    with sqlite3.connect(db) as con:
        one = lambda sql, *args: con.execute(sql, args).fetchone()[0]  # noqa: E731
        return {
            "visitors": one("SELECT COUNT(*) FROM visitors WHERE id = ?", key),
            "conversations": one("SELECT COUNT(*) FROM conversations WHERE visitor_id = ?", key),
            "messages": one("SELECT COUNT(*) FROM messages m JOIN conversations c ON m.conversation_id = c.id"
                            " WHERE c.visitor_id = ?", key),
            "deliveries": one("SELECT COUNT(*) FROM deliveries WHERE visitor_id = ?", key),
            "events": one("SELECT COUNT(*) FROM events WHERE id LIKE ? || ':%'", sender),
        }


def test_export_then_delete_leaves_no_row_of_the_visitor(static_dir, tmp_path):  # noqa: F811
    db = tmp_path / "endpoint.db"
    with Client(make_app(static_dir, db_path=db), raise_server_exceptions=False) as client:
        mine, other = register(client), register(client)
        _activity(client, mine, "sender-mine")
        _activity(client, other, "sender-other")
        assert _rows(db, mine, "sender-mine") == {"visitors": 1, "conversations": 1, "messages": 1, "deliveries": 1, "events": 2}

        data = client.get("/api/visitors/me?sender=sender-mine", headers=auth(mine)).json()
        assert data["visitor"]["site"] == "acme"
        assert [m["text"] for m in data["conversation"]["messages"]] == ["Hello?"]
        assert data["conversation"]["rating"] == "great"
        assert [d["message"] for d in data["deliveries"]] == ["mail"]
        assert sorted((e["id"], e["type"]) for e in data["events"]) == [("e1", "shown"), ("e2", "clicked")]

        r = client.delete("/api/visitors/me?sender=sender-mine", headers=auth(mine))
        assert r.status_code == 200, r.text
        assert r.json()["deleted"] == {"visitors": 1, "conversations": 1, "messages": 1, "deliveries": 1, "events": 2}
        assert _rows(db, mine, "sender-mine") == dict.fromkeys(("visitors", "conversations", "messages", "deliveries", "events"), 0)
        assert _rows(db, other, "sender-other") == {"visitors": 1, "conversations": 1, "messages": 1, "deliveries": 1, "events": 2}
        # The token is gone with the visitor; the agent's list no longer has the conversation.
        assert client.get("/api/conversation", headers=auth(mine)).status_code == 401
        assert len(client.get("/api/agent/conversations").json()["conversations"]) == 1
        # Per-message stats count only the other visitor now.
        stats = {m["message"]: m for m in client.get("/api/agent/stats").json()["messages"]}
        assert stats["welcome"]["shown"] == 1


def test_sender_only_deletes_beacon_events_and_is_idempotent(client):
    batch = {"sender": "lonely", "events": [{"id": "e1", "type": "shown", "message": "m"}]}
    assert client.post("/api/events", json=batch, headers={"origin": SITE}).status_code == 202
    first = client.delete("/api/visitors/me?sender=lonely", headers={"origin": SITE})
    assert first.status_code == 200 and first.json()["deleted"]["events"] == 1
    again = client.delete("/api/visitors/me?sender=lonely", headers={"origin": SITE})
    assert again.status_code == 200 and again.json()["deleted"]["events"] == 0
    # A sender's ids are matched as a prefix up to its ':' (no LIKE wildcards).
    assert client.post("/api/events", json={"sender": "a_b", "events": [{"id": "x", "type": "shown", "message": "m"}]},
                       headers={"origin": SITE}).status_code == 202
    assert client.delete("/api/visitors/me?sender=a%25", headers={"origin": SITE}).json()["deleted"]["events"] == 0
    assert client.delete("/api/visitors/me?sender=a_", headers={"origin": SITE}).json()["deleted"]["events"] == 0


def test_self_service_refusals(client):
    assert client.delete("/api/visitors/me", headers={"origin": SITE}).json()["error"]["code"] == "missing_token"
    assert client.get("/api/visitors/me", headers={"authorization": "Bearer nope"}).status_code == 401
    assert client.delete("/api/visitors/me?sender=%20", headers={"origin": SITE}).status_code == 422
    assert client.delete("/api/visitors/me?sender=x", headers={"origin": "http://evil.example"}).status_code == 403
    preflight = client.options("/api/visitors/me", headers={"origin": SITE, "access-control-request-method": "DELETE"})
    assert preflight.status_code == 200 and "DELETE" in preflight.headers["access-control-allow-methods"]

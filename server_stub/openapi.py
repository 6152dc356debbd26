"""The endpoint's OpenAPI 3.1 document. docs/openapi.json is this, written by
`python -m server_stub.openapi > docs/openapi.json`; tests check that it lists
exactly the app's routes and that the file is up to date."""

from __future__ import annotations

import json
import sys

from widget.runtime.constants import RATINGS

VERSION = "1.0.0"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "") -> dict:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def _body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {400: "malformed JSON or request", 401: "missing or unknown token", 403: "origin not allowed",
            404: "unknown id", 405: "method not allowed", 409: "conflict", 413: "body too large",
            422: "missing or invalid field", 429: "rate limited (see Retry-After)"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": _ref("Error")}}} for c in codes}


VISITOR_AUTH = [{"visitorToken": []}]
AGENT_AUTH = [{"agentToken": []}, {}]
WRITE_ERRORS = (400, 403, 413, 422, 429)

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string", "examples": ["malformed_json", "missing_field", "rate_limited"]},
                       "message": {"type": "string"}, "field": {"type": "string"}, "limit": {"type": "integer"}}}}},
    "Geo": {"type": "object", "properties": {
        "country": {"type": ["string", "null"], "description": "ISO 3166-1 alpha-2, upper case"},
        "city": {"type": ["string", "null"]},
        "source": {"type": ["string", "null"], "enum": ["test", "cloudflare", "cloudfront", "vercel", "appengine", "mmdb", None]}}},
    "Presence": {"type": "object", "properties": {"team": {"enum": ["online", "offline"]}, "agents_online": {"type": "integer"}}},
    "Message": {"type": "object", "required": ["id", "sender", "text", "t"], "properties": {
        "id": {"type": "integer"}, "sender": {"enum": ["visitor", "agent"]}, "author": {"type": ["string", "null"]},
        "text": {"type": "string"}, "t": {"type": "integer", "description": "server ms since the epoch"}}},
    "Conversation": {"type": "object", "properties": {
        "id": {"type": "integer"}, "started_at": {"type": "integer"}, "auto_message": {"type": ["string", "null"]},
        "rating": {"type": ["string", "null"], "enum": [*RATINGS, None]}, "rating_at": {"type": ["integer", "null"]},
        "messages": {"type": "array", "items": _ref("Message")}}},
    "BeaconEvent": {"type": "object", "required": ["id", "type", "message"], "properties": {
        "id": {"type": "string", "maxLength": 128, "description": "unique per sender; repeats are ignored"},
        "type": {"enum": ["shown", "clicked", "dismissed", "replied"]},
        "message": {"type": "string", "maxLength": 128}, "t": {"type": "integer"},
        "button": {"type": ["string", "integer"]}}},
    "Delivery": {"type": "object", "properties": {
        "id": {"type": "integer"}, "message": {"type": "string"}, "status": {"enum": ["pending", "handed_over", "sent", "failed"]},
        "requested_at": {"type": "integer"}}},
    "DeliveryFull": {"type": "object", "properties": {
        "id": {"type": "integer"}, "visitor": {"type": "string"}, "site": {"type": ["string", "null"]},
        "message": {"type": "string"}, "recipient": {"type": ["string", "null"]}, "attributes": {"type": "object"},
        "requested_at": {"type": "integer"}, "status": {"enum": ["pending", "handed_over", "sent", "failed"]},
        "status_detail": {"type": ["string", "null"]}, "updated_at": {"type": "integer"}}},
    "ConversationSummary": {"type": "object", "properties": {
        "id": {"type": "integer"}, "visitor": {"type": "string"}, "site": {"type": ["string", "null"]},
        "auto_message": {"type": ["string", "null"]}, "page_url": {"type": ["string", "null"]},
        "started_at": {"type": "integer"}, "updated_at": {"type": "integer"}, "rating": {"type": ["string", "null"]},
        "messages": {"type": "integer"}, "last_sender": {"type": ["string", "null"]}, "last_text": {"type": ["string", "null"]},
        "awaiting_reply": {"type": "boolean"}}},
    "MessageStats": {"type": "object", "properties": {
        "message": {"type": "string"}, "shown": {"type": "integer"}, "clicked": {"type": "integer"},
        "dismissed": {"type": "integer"}, "replied": {"type": "integer"},
        "visitors": {"type": "object", "description": "distinct visitors shown the message, and of those who "
                     "clicked, dismissed, replied", "properties": {
                         "shown": {"type": "integer"}, "clicked": {"type": "integer"},
                         "dismissed": {"type": "integer"}, "replied": {"type": "integer"}}},
        "reply_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                       "description": "visitors.replied / visitors.shown; null when never shown"},
        "buttons": {"type": "object", "additionalProperties": {"type": "integer"}},
        "series": {"type": "array", "items": {"type": "object", "properties": {
            "t": {"type": "integer"}, "shown": {"type": "integer"}, "clicked": {"type": "integer"},
            "dismissed": {"type": "integer"}, "replied": {"type": "integer"}}}}}},
    "AgentPresence": {"type": "object", "properties": {
        "team": {"enum": ["online", "offline"]}, "agents_online": {"type": "integer"},
        "agents": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "online": {"type": "boolean"}, "changed_at": {"type": "integer"}}}}}},
}

SSE = {"description": "text/event-stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}


def document() -> dict:
    str_field = lambda n, **kw: {"type": "string", "maxLength": n, **kw}  # noqa: E731
    paths = {
        "/api/visitors": {"post": {
            "summary": "Register a visitor: returns an unguessable token (store it; send it as a Bearer token)",
            "requestBody": _body({"type": "object", "properties": {"site": str_field(128)}}, required=False),
            "responses": {"201": _json({"type": "object", "properties": {"token": {"type": "string"}, "visitor": {"type": "string"}}}),
                          **_errors(*WRITE_ERRORS)}}},
        "/api/geo": {"get": {
            "summary": "Country and city of the caller (CDN headers, a MaxMind database, or the test override)",
            "parameters": [{"name": "X-Proactive-Test-Geo", "in": "header", "required": False, "schema": {"type": "string"},
                            "description": "`DE`, `DE; Berlin` or `country=DE; city=Berlin`; honoured only with --test-geo"}],
            "responses": {"200": _json(_ref("Geo"))}}},
        "/api/presence": {"get": {"summary": "Team online/offline", "responses": {"200": _json(_ref("Presence"))}}},
        "/api/conversation": {"get": {
            "summary": "The caller's own conversation (null before the first message)", "security": VISITOR_AUTH,
            "responses": {"200": _json({"type": "object", "properties": {
                "conversation": {"oneOf": [_ref("Conversation"), {"type": "null"}]},
                "now": {"type": "integer", "description": "server clock, to convert message times"}}}), **_errors(401)}}},
        "/api/conversation/messages": {"post": {
            "summary": "Send a visitor message (the first one starts the conversation)", "security": VISITOR_AUTH,
            "requestBody": _body({"type": "object", "required": ["text"], "properties": {
                "text": str_field(2000, minLength=1), "auto_message": str_field(128, description="the auto message replied to"),
                "site": str_field(128), "page_url": str_field(2048)}}),
            "responses": {"201": _json({"type": "object", "properties": {
                "conversation": {"type": "integer"}, "message": _ref("Message"), "now": {"type": "integer"}}}),
                **_errors(401, *WRITE_ERRORS)}}},
        "/api/conversation/rating": {"post": {
            "summary": "Rate the conversation", "security": VISITOR_AUTH,
            "requestBody": _body({"type": "object", "required": ["value"], "properties": {"value": {"enum": list(RATINGS)}}}),
            "responses": {"200": _json({"type": "object", "properties": {
                "conversation": {"type": "integer"}, "rating": {"type": "string"}, "rating_at": {"type": "integer"}, "now": {"type": "integer"}}}),
                **_errors(401, 409, *WRITE_ERRORS)}}},
        "/api/events": {"post": {
            "summary": "A batch of analytics events (sendBeacon: any Content-Type; retries are de-duplicated by id)",
            "requestBody": _body({"type": "object", "required": ["sender", "events"], "properties": {
                "sender": str_field(128, description="a random id of the browser"), "site": str_field(128),
                "events": {"type": "array", "maxItems": 200, "items": _ref("BeaconEvent")}}}),
            "responses": {"202": _json({"type": "object", "properties": {"accepted": {"type": "integer"}, "new": {"type": "integer"}}}),
                          **_errors(*WRITE_ERRORS)}}},
        "/api/deliveries": {"post": {
            "summary": "Request delivery of an `email` auto message (stored; handed to the site's mail system)",
            "security": VISITOR_AUTH,
            "requestBody": _body({"type": "object", "required": ["message"], "properties": {
                "message": str_field(128), "site": str_field(128), "email": str_field(254),
                "attributes": {"type": "object", "description": "from proactive('identify', …); `email` is the recipient"}}}),
            "responses": {"202": _json({"type": "object", "properties": {"delivery": _ref("Delivery"), "created": {"const": True}}}),
                          "200": _json({"type": "object", "properties": {"delivery": _ref("Delivery"), "created": {"const": False}}},
                                       "already requested"),
                          **_errors(401, *WRITE_ERRORS)}}},
        "/api/stream": {"get": {
            "summary": "Server-sent events: `presence` {team, agents_online}, `hello` {now}; with ?visitor=TOKEN also "
                       "`message` (Message) and `rating` for that visitor",
            "parameters": [{"name": "visitor", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": SSE, **_errors(401)}}},
        "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
        "/api/agent/conversations": {"get": {
            "summary": "Conversations, most recent first", "security": AGENT_AUTH,
            "responses": {"200": _json({"type": "object", "properties": {
                "conversations": {"type": "array", "items": _ref("ConversationSummary")}}}), **_errors(401)}}},
        "/api/agent/conversations/{id}": {"get": {
            "summary": "One conversation with its messages", "security": AGENT_AUTH,
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": _json({"type": "object"}), **_errors(401, 404)}}},
        "/api/agent/conversations/{id}/messages": {"post": {
            "summary": "Reply as an agent (the visitor sees it live)", "security": AGENT_AUTH,
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "requestBody": _body({"type": "object", "required": ["text"], "properties": {
                "text": str_field(2000, minLength=1), "author": str_field(80)}}),
            "responses": {"201": _json({"type": "object", "properties": {"message": _ref("Message")}}),
                          **_errors(401, 404, 400, 403, 413, 422)}}},
        "/api/agent/presence": {
            "get": {"summary": "Team and agents' presence", "security": AGENT_AUTH,
                    "responses": {"200": _json(_ref("AgentPresence")), **_errors(401)}},
            "post": {"summary": "Set an agent online or offline (the team is online while any agent is)",
                     "security": AGENT_AUTH,
                     "requestBody": _body({"type": "object", "required": ["agent", "online"], "properties": {
                         "agent": str_field(80), "online": {"type": "boolean"}}}),
                     "responses": {"200": _json(_ref("AgentPresence")), **_errors(401, 400, 403, 413, 422)}}},
        "/api/agent/stats": {"get": {
            "summary": "Per auto message: shown, clicked, dismissed, replied, and a series over time", "security": AGENT_AUTH,
            "parameters": [{"name": "bucket", "in": "query", "schema": {"enum": ["minute", "hour", "day"], "default": "hour"}},
                           {"name": "since", "in": "query", "schema": {"type": "integer"}}],
            "responses": {"200": _json({"type": "object", "properties": {
                "bucket": {"type": "string"}, "bucket_ms": {"type": "integer"},
                "messages": {"type": "array", "items": _ref("MessageStats")}}}), **_errors(401, 422)}}},
        "/api/agent/deliveries": {"get": {
            "summary": "Delivery requests (the pull side of the delivery hook)", "security": AGENT_AUTH,
            "parameters": [{"name": "status", "in": "query", "schema": {"enum": ["pending", "handed_over", "sent", "failed"]}}],
            "responses": {"200": _json({"type": "object", "properties": {
                "deliveries": {"type": "array", "items": _ref("DeliveryFull")}}}), **_errors(401, 422)}}},
        "/api/agent/deliveries/{id}": {"post": {
            "summary": "Record what the mail system did with a request", "security": AGENT_AUTH,
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "requestBody": _body({"type": "object", "required": ["status"], "properties": {
                "status": {"enum": ["pending", "handed_over", "sent", "failed"]}, "detail": str_field(500)}}),
            "responses": {"200": _json({"type": "object", "properties": {"delivery": _ref("DeliveryFull")}}),
                          **_errors(401, 404, 400, 403, 413, 422)}}},
        "/api/agent/stream": {"get": {
            "summary": "Server-sent events for the agent page: `presence`, `conversation`, `stats`, `delivery`, `hello`",
            "security": AGENT_AUTH,
            "parameters": [{"name": "token", "in": "query", "required": False, "schema": {"type": "string"},
                            "description": "the agent token (EventSource cannot send headers)"}],
            "responses": {"200": SSE, **_errors(401)}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Proactive reference endpoint", "version": VERSION,
                 "description": "The HTTP contract between the Proactive widget and a backend. See docs/endpoint.md."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "visitorToken": {"type": "http", "scheme": "bearer", "description": "the token from POST /api/visitors"},
                "agentToken": {"type": "http", "scheme": "bearer", "description": "only when the server has --agent-token"},
            },
        },
    }


def main() -> int:
    sys.stdout.write(json.dumps(document(), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

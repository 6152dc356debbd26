"""The endpoint's OpenAPI 3.1 document. docs/openapi.json is this, written by
`python -m server_stub.openapi > docs/openapi.json`; tests check that it lists
exactly the app's routes and that the file is up to date."""

from __future__ import annotations

import json
import sys

from widget.runtime.constants import RATINGS

VERSION = "1.2.0"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "") -> dict:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def _body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
NONBLANK = "[^\t\n\v\f\r ]"  # at least one character that is not ASCII white space
EMAIL = "^[^\t\n\v\f\r ]*@[^\t\n\v\f\r ]*$"
RETRY_AFTER = {"Retry-After": {"required": True, "description": "seconds to wait before trying again",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
ERROR_TEXT = {400: "malformed JSON or request", 401: "missing or unknown token", 403: "origin or host not allowed",
              404: "unknown id", 408: "the body did not arrive in time", 409: "conflict", 413: "body too large",
              422: "missing or invalid field", 429: "rate limited (see Retry-After)",
              503: "the database is busy, full or read-only, or too many streams are open (see Retry-After)"}


def _errors(*codes: int) -> dict:
    out = {}
    for c in codes:
        out[str(c)] = {"description": ERROR_TEXT[c], "content": {"application/json": {"schema": _ref("Error")}}}
        if c in (429, 503):
            out[str(c)]["headers"] = RETRY_AFTER
    return out


def _str(n: int, **kw) -> dict:
    """A required string: not blank (the server strips ASCII white space)."""
    return {"type": "string", "maxLength": n, "pattern": NONBLANK, **kw}


def _opt(n: int, **kw) -> dict:
    """An optional string: may be absent, null or empty."""
    return {"type": ["string", "null"], "maxLength": n, **kw}


def _id(name: str = "id") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": INT64}


VISITOR_AUTH = [{"visitorToken": []}]
AGENT_AUTH = [{"agentToken": []}]
SELF_AUTH = [{"visitorToken": []}, {}]  # the token, or only ?sender=, or both
SENDER = {"name": "sender", "in": "query", "required": False, "schema": _str(128),
          "description": "the browser's beacon sender id (the `sender` of POST /api/events): its events"}
WRITE_ERRORS = (400, 403, 408, 413, 422, 429, 503)
AGENT_WRITE_ERRORS = (400, 401, 403, 404, 408, 413, 422, 503)
JSON_NOTE = ("Bodies are JSON objects of at most 16 KB (64 KB for /api/events), nested at most 16 deep, with "
             "no lone surrogates and integers within 64 bits; anything else is a 400 or 422.")

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string", "examples": ["malformed_json", "missing_field", "rate_limited",
                                                               "storage_busy", "too_many_streams"]},
                       "message": {"type": "string"}, "field": {"type": "string"}, "limit": {"type": "integer"}}}}},
    "Geo": {"type": "object", "required": ["country", "city", "source"], "properties": {
        "country": {"type": ["string", "null"], "description": "ISO 3166-1 alpha-2, upper case"},
        "city": {"type": ["string", "null"]},
        "source": {"enum": ["test", "cloudflare", "cloudfront", "vercel", "appengine", "mmdb", None]}}},
    "Presence": {"type": "object", "required": ["team", "agents_online"], "properties": {
        "team": {"enum": ["online", "offline"]}, "agents_online": {"type": "integer"}}},
    "Message": {"type": "object", "required": ["id", "sender", "author", "text", "t"], "properties": {
        "id": {"type": "integer"}, "sender": {"enum": ["visitor", "agent"]}, "author": {"type": ["string", "null"]},
        "text": {"type": "string"}, "t": {"type": "integer", "description": "server ms since the epoch"}}},
    "Conversation": {"type": "object", "required": ["id", "started_at", "auto_message", "rating", "rating_at", "messages"],
                     "properties": {
        "id": {"type": "integer"}, "started_at": {"type": "integer"}, "auto_message": {"type": ["string", "null"]},
        "rating": {"enum": [*RATINGS, None]}, "rating_at": {"type": ["integer", "null"]},
        "messages": {"type": "array", "items": _ref("Message")}}},
    "ConversationFull": {"type": "object", "required": ["id", "visitor", "started_at", "updated_at", "messages"],
                         "properties": {
        "id": {"type": "integer"}, "visitor": {"type": "string"}, "site": {"type": ["string", "null"]},
        "auto_message": {"type": ["string", "null"]}, "page_url": {"type": ["string", "null"]},
        "started_at": {"type": "integer"}, "updated_at": {"type": "integer"},
        "rating": {"enum": [*RATINGS, None]}, "rating_at": {"type": ["integer", "null"]},
        "messages": {"type": "array", "items": _ref("Message")}}},
    "BeaconEvent": {"type": "object", "required": ["id", "type", "message"], "properties": {
        "id": _str(128, description="unique per sender; repeats are ignored"),
        "type": {"enum": ["shown", "clicked", "dismissed", "replied", "exposed", "goal"],
                 "description": "`exposed` and `goal` need `arm` and `visitor` (experiments); `goal` also `goal`"},
        "message": _str(128), "t": {**INT64, "type": ["integer", "null"], "description": "the browser's ms since the epoch"},
        "arm": {**_str(128), "type": ["string", "null"], "description": "the experiment's arm (a variant id, or holdout)"},
        "visitor": {**_str(128), "type": ["string", "null"], "description": "the visitor id stored in the visitor record"},
        "control": {**_str(128), "type": ["string", "null"], "description": "on `exposed`: the arm the others are compared with"},
        "goal": {**_str(128), "type": ["string", "null"], "description": "on `goal`: its name, proactive('goal', name)"},
        "experiment": {**_str(128), "type": ["string", "null"],
                       "description": "on `exposed`: the experiment (its salt); the stats read a message's latest"},
        "share": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                  "description": "on `exposed`: the arm's expected share of visitors (its weight's)"},
        "button": {"anyOf": [{"type": "string"}, INT64, {"type": "null"}],
                   "description": "the button's label or index (kept to 128 characters)"}},
        "allOf": [
            {"if": {"required": ["type"], "properties": {"type": {"enum": ["exposed", "goal"]}}},
             "then": {"required": ["arm", "visitor"], "properties": {"arm": _str(128), "visitor": _str(128)}}},
            {"if": {"required": ["type"], "properties": {"type": {"const": "goal"}}},
             "then": {"required": ["goal"], "properties": {"goal": _str(128)}}}]},
    "Delivery": {"type": "object", "required": ["id", "message", "status", "requested_at"], "properties": {
        "id": {"type": "integer"}, "message": {"type": "string"}, "status": {"enum": ["pending", "handed_over", "sent", "failed"]},
        "requested_at": {"type": "integer"}}},
    "DeliveryFull": {"type": "object", "required": ["id", "visitor", "message", "attributes", "requested_at", "status"],
                     "properties": {
        "id": {"type": "integer"}, "visitor": {"type": "string"}, "site": {"type": ["string", "null"]},
        "message": {"type": "string"}, "recipient": {"type": ["string", "null"]}, "attributes": {"type": "object"},
        "requested_at": {"type": "integer"}, "status": {"enum": ["pending", "handed_over", "sent", "failed"]},
        "status_detail": {"type": ["string", "null"]}, "updated_at": {"type": "integer"}}},
    "VisitorData": {"type": "object", "required": ["visitor", "conversation", "deliveries", "events", "now"], "properties": {
        "visitor": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["id", "created_at", "last_seen"], "properties": {
            "id": {"type": "string"}, "site": {"type": ["string", "null"]}, "created_at": {"type": "integer"},
            "last_seen": {"type": "integer"}}}]},
        "conversation": {"oneOf": [_ref("ConversationFull"), {"type": "null"}]},
        "deliveries": {"type": "array", "items": _ref("DeliveryFull")},
        "events": {"type": "array", "items": {"type": "object", "required": ["id", "type", "message", "received_at"],
                                              "properties": {
            "id": {"type": "string"}, "type": {"enum": ["shown", "clicked", "dismissed", "replied"]},
            "message": {"type": "string"}, "button": {"type": ["string", "null"]}, "site": {"type": ["string", "null"]},
            "t": {"type": ["integer", "null"]}, "received_at": {"type": "integer"}}}},
        "now": {"type": "integer"}}},
    "ConversationSummary": {"type": "object", "required": ["id", "visitor", "messages", "awaiting_reply"], "properties": {
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
    "Interval": {"type": ["object", "null"], "required": ["value", "low", "high"],
                 "description": "a rate (or a difference of rates) and its 95 % interval; null without visitors",
                 "properties": {"value": {"type": "number"}, "low": {"type": "number"}, "high": {"type": "number"}}},
    "ExperimentStats": {"type": "object", "required": ["message", "experiment", "control", "arms", "srm", "needed"],
                        "properties": {
        "message": {"type": "string"},
        "experiment": {"type": ["string", "null"], "description": "the message's latest experiment (its salt)"},
        "needed": {"type": ["object", "null"], "required": ["lift", "per_arm", "still"],
                   "description": "visitors per arm to detect `lift` (relative) of the control's goal rate at 5 % and "
                                  "80 % power, and how many more the smallest arm still needs; null while the "
                                  "control's goal rate is 0 or 1",
                   "properties": {"lift": {"type": "number"}, "per_arm": {"type": "integer"},
                                  "still": {"type": "integer", "minimum": 0}}},
        "srm": {"type": ["object", "null"], "required": ["chi2", "p", "warning"],
                "description": "sample-ratio check: exposed visitors per arm against the arms' shares (chi-square); "
                               "null without shares for two arms or more",
                "properties": {"chi2": {"type": "number"}, "p": {"type": "number", "minimum": 0, "maximum": 1},
                               "warning": {"type": ["string", "null"], "description": "when p < 0.001"}}},
        "control": {"type": ["string", "null"], "description": "the holdout, else the first variant"},
        "arms": {"type": "array", "items": {"type": "object", "required": [
            "arm", "control", "exposed", "shown", "replied", "goals", "reply_rate", "goal_rate", "goal_difference", "verdict"],
            "properties": {
                "arm": {"type": "string"}, "control": {"type": "boolean"},
                "exposed": {"type": "integer", "description": "distinct visitors exposed to this arm"},
                "shown": {"type": "integer", "description": "of those, shown the message"},
                "replied": {"type": "integer", "description": "of those, replied to it"},
                "goals": {"type": "integer", "description": "of the exposed, reached the goal within the window"},
                "reply_rate": {**_ref("Interval"), "description": "replied / shown, Wilson 95 % interval"},
                "goal_rate": {**_ref("Interval"), "description": "goals / exposed, Wilson 95 % interval"},
                "goal_difference": {**_ref("Interval"),
                                    "description": "goal rate minus the control's, Newcombe 95 % interval; null for the control"},
                "verdict": {"type": ["string", "null"], "description": "in plain words, when the interval excludes zero"}}}}}},
    "AgentPresence": {"type": "object", "required": ["team", "agents_online", "agents"], "properties": {
        "team": {"enum": ["online", "offline"]}, "agents_online": {"type": "integer"},
        "agents": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "online": {"type": "boolean"}, "changed_at": {"type": "integer"}}}}}},
}


def _sse(events: dict[str, str]) -> dict:
    """An event stream, described event by event: each is `event: NAME` and
    `data: JSON` (the schema of which the data column names), plus a
    `retry:` line first and `: keep-alive` comments."""
    return {"description": "text/event-stream: " + ", ".join(f"`{k}` ({v})" for k, v in events.items()),
            "content": {"text/event-stream": {"schema": {
                "type": "object", "required": ["data"], "properties": {
                    "event": {"enum": list(events)}, "data": {"type": "string", "contentMediaType": "application/json"},
                    "id": {"type": "string"}, "retry": {"type": "integer"}}}}}}


def document() -> dict:
    paths = {
        "/api/visitors": {"post": {
            "summary": "Register a visitor: returns an unguessable token (store it; send it as a Bearer token)",
            "requestBody": _body({"type": "object", "properties": {"site": _opt(128)}}, required=False),
            "responses": {"201": _json({"type": "object", "required": ["token", "visitor"], "properties": {
                "token": {"type": "string"}, "visitor": {"type": "string"}}}), **_errors(*WRITE_ERRORS)}}},
        "/api/visitors/me": {
            "get": {
                "summary": "Export everything kept about the caller: the visitor, the conversation, delivery requests "
                           "(by the token) and beacon events (by ?sender=)",
                "security": SELF_AUTH, "parameters": [SENDER],
                "responses": {"200": _json(_ref("VisitorData")), **_errors(401, 422, 429, 503)}},
            "delete": {
                "summary": "Delete everything kept about the caller (the same data as the export); idempotent for a sender",
                "security": SELF_AUTH, "parameters": [SENDER],
                "responses": {"200": _json({"type": "object", "required": ["deleted"], "properties": {"deleted": {
                    "type": "object", "description": "rows deleted, per kind",
                    "required": ["visitors", "conversations", "messages", "deliveries", "events"],
                    "properties": {k: {"type": "integer", "minimum": 0} for k in
                                   ("visitors", "conversations", "messages", "deliveries", "events")}}}}),
                              **_errors(401, 403, 422, 429, 503)}}},
        "/api/geo": {"get": {
            "summary": "Country and city of the caller (CDN headers, a MaxMind database, or the test override)",
            "parameters": [{"name": "X-Proactive-Test-Geo", "in": "header", "required": False, "schema": {"type": "string"},
                            "description": "`DE`, `DE; Berlin` or `country=DE; city=Berlin`; honoured only with --test-geo"}],
            "responses": {"200": _json(_ref("Geo"))}}},
        "/api/presence": {"get": {
            "summary": "Team online/offline: cacheable (ETag, a few seconds' max-age; safe behind a CDN)",
            "parameters": [{"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                            "description": "an ETag this endpoint gave: 304 while presence is unchanged"}],
            "responses": {"200": _json(_ref("Presence")), "304": {"description": "Unchanged since that ETag"},
                          **_errors(503)}}},
        "/api/conversation": {"get": {
            "summary": "The caller's own conversation (null before the first message)", "security": VISITOR_AUTH,
            "responses": {"200": _json({"type": "object", "required": ["conversation", "now"], "properties": {
                "conversation": {"oneOf": [_ref("Conversation"), {"type": "null"}]},
                "now": {"type": "integer", "description": "server clock, to convert message times"}}}), **_errors(401, 503)}}},
        "/api/conversation/messages": {"post": {
            "summary": "Send a visitor message (the first one starts the conversation)", "security": VISITOR_AUTH,
            "description": JSON_NOTE,
            "requestBody": _body({"type": "object", "required": ["text"], "properties": {
                "text": _str(2000), "auto_message": _opt(128, description="the auto message replied to"),
                "site": _opt(128), "page_url": _opt(2048)}}),
            "responses": {"201": _json({"type": "object", "required": ["conversation", "message", "now"], "properties": {
                "conversation": {"type": "integer"}, "message": _ref("Message"), "now": {"type": "integer"}}}),
                **_errors(401, *WRITE_ERRORS)}}},
        "/api/conversation/rating": {"post": {
            "summary": "Rate the conversation", "security": VISITOR_AUTH,
            "requestBody": _body({"type": "object", "required": ["value"], "properties": {"value": {"enum": list(RATINGS)}}}),
            "responses": {"200": _json({"type": "object", "required": ["conversation", "rating", "rating_at", "now"], "properties": {
                "conversation": {"type": "integer"}, "rating": {"enum": list(RATINGS)},
                "rating_at": {"type": "integer"}, "now": {"type": "integer"}}}),
                **_errors(401, 409, *WRITE_ERRORS)}}},
        "/api/events": {"post": {
            "summary": "A batch of analytics events (sendBeacon: any Content-Type; retries are de-duplicated by id)",
            "description": JSON_NOTE + " Rate-limited per client address.",
            "requestBody": _body({"type": "object", "required": ["sender", "events"], "properties": {
                "sender": _str(128, description="a random id of the browser"), "site": _opt(128),
                "events": {"type": "array", "maxItems": 200, "items": _ref("BeaconEvent")}}}),
            "responses": {"202": _json({"type": "object", "required": ["accepted", "new"], "properties": {
                "accepted": {"type": "integer"}, "new": {"type": "integer"}}}), **_errors(*WRITE_ERRORS)}}},
        "/api/deliveries": {"post": {
            "summary": "Request delivery of an `email` auto message (stored; handed to the site's mail system)",
            "description": JSON_NOTE + " `attributes` is at most 4096 bytes as JSON.",
            "security": VISITOR_AUTH,
            "requestBody": _body({"type": "object", "required": ["message"], "properties": {
                "message": _str(128), "site": _opt(128), "email": _opt(254, pattern=EMAIL),
                "attributes": {"type": ["object", "null"], "maxProperties": 64,
                               "description": "from proactive('identify', …); `email` is the recipient. At most 4096 bytes as "
                                              "JSON, nested at most 16 deep, finite numbers, valid Unicode"}}}),
            "responses": {"202": _json({"type": "object", "required": ["delivery", "created"], "properties": {
                "delivery": _ref("Delivery"), "created": {"const": True}}}),
                          "200": _json({"type": "object", "required": ["delivery", "created"], "properties": {
                              "delivery": _ref("Delivery"), "created": {"const": False}}}, "already requested"),
                          **_errors(401, *WRITE_ERRORS)}}},
        "/api/stream": {"get": {
            "summary": "Server-sent events: `presence` {team, agents_online}, `hello` {now}; with ?visitor=TOKEN also "
                       "`message` (Message) and `rating` for that visitor. Capped per visitor, per address and in total. "
                       "A `message` event's `id` is the message's; with Last-Event-ID (or ?last_event_id=) the visitor's "
                       "messages stored after it (the last hour's, at most 100) come first, then live ones, each once",
            "parameters": [{"name": "visitor", "in": "query", "required": False, "schema": {"type": "string"}},
                           {"name": "last_event_id", "in": "query", "required": False,
                            "schema": {"type": "string"},
                            "description": "the last message id the client has (a new EventSource cannot send the "
                                           "header); anything but a plain id replays nothing"},
                           {"name": "Last-Event-ID", "in": "header", "required": False,
                            "schema": {"type": "string"},
                            "description": "sent by EventSource when it reconnects; wins over ?last_event_id="}],
            "responses": {"200": _sse({"presence": "Presence", "hello": "{now}", "message": "Message",
                                       "rating": "{rating, rating_at}"}), **_errors(401, 503)}}},
        "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
        "/api/agent/conversations": {"get": {
            "summary": "Conversations, most recent first", "security": AGENT_AUTH,
            "responses": {"200": _json({"type": "object", "required": ["conversations"], "properties": {
                "conversations": {"type": "array", "items": _ref("ConversationSummary")}}}), **_errors(401, 403, 503)}}},
        "/api/agent/conversations/{id}": {"get": {
            "summary": "One conversation with its messages", "security": AGENT_AUTH, "parameters": [_id()],
            "responses": {"200": _json({"type": "object", "required": ["conversation"], "properties": {
                "conversation": _ref("ConversationFull")}}), **_errors(401, 403, 404, 503)}}},
        "/api/agent/conversations/{id}/messages": {"post": {
            "summary": "Reply as an agent (the visitor sees it live)", "security": AGENT_AUTH, "parameters": [_id()],
            "requestBody": _body({"type": "object", "required": ["text"], "properties": {
                "text": _str(2000), "author": _opt(80)}}),
            "responses": {"201": _json({"type": "object", "required": ["message"], "properties": {"message": _ref("Message")}}),
                          **_errors(*AGENT_WRITE_ERRORS)}}},
        "/api/agent/presence": {
            "get": {"summary": "Team and agents' presence", "security": AGENT_AUTH,
                    "responses": {"200": _json(_ref("AgentPresence")), **_errors(401, 403, 503)}},
            "post": {"summary": "Set an agent online or offline (the team is online while any agent is)",
                     "security": AGENT_AUTH,
                     "requestBody": _body({"type": "object", "required": ["agent", "online"], "properties": {
                         "agent": _str(80), "online": {"type": "boolean"}}}),
                     "responses": {"200": _json(_ref("AgentPresence")), **_errors(400, 401, 403, 408, 413, 422, 503)}}},
        "/api/agent/stats": {"get": {
            "summary": "Per auto message: shown, clicked, dismissed, replied, and a series over time", "security": AGENT_AUTH,
            "parameters": [{"name": "bucket", "in": "query", "schema": {"enum": ["minute", "hour", "day"], "default": "hour"}},
                           {"name": "since", "in": "query", "schema": {**INT64, "description": "ms since the epoch"}},
                           {"name": "goal", "in": "query", "schema": {"type": "string", "maxLength": 128,
                                                                      "description": "count this goal only (default: any)"}},
                           {"name": "goal_window", "in": "query", "schema": {
                               "type": "integer", "minimum": 0, "maximum": 31622400, "default": 604800,
                               "description": "seconds after an exposure within which a goal counts for its arm"}},
                           {"name": "lift", "in": "query", "schema": {
                               "type": "number", "minimum": 0.001, "maximum": 10, "default": 0.1,
                               "description": "the relative rise of the control's goal rate to plan for (0.1: 10 %)"}}],
            "responses": {"200": _json({"type": "object", "required": [
                "bucket", "bucket_ms", "messages", "goal", "goal_window", "lift", "experiments"], "properties": {
                "bucket": {"enum": ["minute", "hour", "day"]}, "bucket_ms": {"type": "integer"},
                "messages": {"type": "array", "items": _ref("MessageStats")},
                "goal": {"type": ["string", "null"]}, "goal_window": {"type": "integer"}, "lift": {"type": "number"},
                "experiments": {"type": "array", "items": _ref("ExperimentStats")}}}), **_errors(401, 403, 422, 503)}}},
        "/api/agent/bundles/{name}": {"put": {
            "summary": "Store a signed bundle as /bundles/{name}.json (signed by a --bundle-key; never signed here)",
            "security": AGENT_AUTH,
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}}],
            "requestBody": _body({"type": "object", "description": "the signed bundle file (an envelope)"}),
            "responses": {"200": _json({"type": "object", "required": ["name", "version", "url"], "properties": {
                "name": {"type": "string"}, "version": {"type": "integer"}, "url": {"type": "string"}}}),
                **_errors(*AGENT_WRITE_ERRORS, 409)}}},
        "/api/agent/deliveries": {"get": {
            "summary": "Delivery requests (the pull side of the delivery hook)", "security": AGENT_AUTH,
            "parameters": [{"name": "status", "in": "query", "schema": {"enum": ["pending", "handed_over", "sent", "failed"]}}],
            "responses": {"200": _json({"type": "object", "required": ["deliveries"], "properties": {
                "deliveries": {"type": "array", "items": _ref("DeliveryFull")}}}), **_errors(401, 403, 422, 503)}}},
        "/api/agent/deliveries/{id}": {"post": {
            "summary": "Record what the mail system did with a request", "security": AGENT_AUTH, "parameters": [_id()],
            "requestBody": _body({"type": "object", "required": ["status"], "properties": {
                "status": {"enum": ["pending", "handed_over", "sent", "failed"]}, "detail": _opt(500)}}),
            "responses": {"200": _json({"type": "object", "required": ["delivery"], "properties": {"delivery": _ref("DeliveryFull")}}),
                          **_errors(*AGENT_WRITE_ERRORS)}}},
        "/api/agent/stream": {"get": {
            "summary": "Server-sent events for the agent page: `presence`, `conversation`, `stats`, `delivery`, `hello`",
            "security": [{"agentToken": []}, {"agentTokenQuery": []}],
            "responses": {"200": _sse({"presence": "AgentPresence", "hello": "{now}", "conversation": "{conversation, message | rating}",
                                       "stats": "{new_events}", "delivery": "DeliveryFull"}), **_errors(401, 403, 503)}}},
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
                "agentToken": {"type": "http", "scheme": "bearer",
                               "description": "the server's agent token (`proactive serve` prints the agent page URL with it)"},
                "agentTokenQuery": {"type": "apiKey", "in": "query", "name": "token",
                                    "description": "the agent token, for EventSource (which cannot send headers)"},
            },
        },
    }


def main() -> int:
    sys.stdout.write(json.dumps(document(), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

-- The schema as first shipped (a database made before migrations existed is at version 1).
CREATE TABLE IF NOT EXISTS visitors (
  id TEXT PRIMARY KEY,              -- sha256(token) hex
  site TEXT, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  visitor_id TEXT NOT NULL UNIQUE REFERENCES visitors(id),
  site TEXT, auto_message TEXT, page_url TEXT,
  started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  rating TEXT, rating_at INTEGER, agent_seen_at INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  sender TEXT NOT NULL CHECK (sender IN ('visitor', 'agent')),
  author TEXT, text TEXT NOT NULL, t INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
CREATE TABLE IF NOT EXISTS agents (
  name TEXT PRIMARY KEY, online INTEGER NOT NULL, changed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY,              -- the widget's event id, scoped by sender
  kind TEXT NOT NULL CHECK (kind IN ('shown', 'clicked', 'dismissed', 'replied')),
  message TEXT NOT NULL, button TEXT, site TEXT,
  client_t INTEGER, received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_message ON events(message, kind, received_at);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  visitor_id TEXT NOT NULL, site TEXT, message TEXT NOT NULL,
  recipient TEXT, attributes TEXT NOT NULL, requested_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', status_detail TEXT, updated_at INTEGER NOT NULL,
  UNIQUE (visitor_id, message)
);

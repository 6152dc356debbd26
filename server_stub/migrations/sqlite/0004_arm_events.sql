-- Experiments (issue 17): beacons with an arm and a visitor id; the latest
-- exposure of a message is found by insertion order (rowid).
CREATE TABLE arm_events (
  id TEXT PRIMARY KEY,              -- the widget's event id, scoped by sender (retries are ignored)
  kind TEXT NOT NULL CHECK (kind IN ('exposed', 'shown', 'clicked', 'dismissed', 'replied', 'goal')),
  message TEXT NOT NULL, arm TEXT NOT NULL, visitor TEXT NOT NULL, experiment TEXT, control TEXT, share REAL,
  goal TEXT, site TEXT,
  client_t INTEGER, received_at INTEGER NOT NULL
);
CREATE INDEX arm_events_by_visitor ON arm_events(message, visitor, kind);

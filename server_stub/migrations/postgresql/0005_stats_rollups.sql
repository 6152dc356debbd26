-- As SQLite's 0005. Stats that stay fast (issue 20): the agent stats are read from tallies
-- kept on write, in the transaction that stores the raw events, so that
-- raw events can be pruned (`--keep-events-days`) without changing them.
-- event_counts / button_counts: events of each kind per message (clicks per
-- button) in minute, hour and day buckets (`span` in ms, `start` = the
-- bucket's first instant). visitor_marks: per message and beacon sender
-- (the part of an event id before its first ':'), the last instant of each
-- kind, for the distinct-visitor counts of a `since` window; visitor_counts:
-- the same counts over all time (reply rate = replied / shown visitors).
CREATE TABLE event_counts (
  span BIGINT NOT NULL, start BIGINT NOT NULL, message TEXT NOT NULL,
  shown BIGINT NOT NULL, clicked BIGINT NOT NULL, dismissed BIGINT NOT NULL, replied BIGINT NOT NULL,
  PRIMARY KEY (span, start, message)
);
CREATE TABLE button_counts (
  span BIGINT NOT NULL, start BIGINT NOT NULL, message TEXT NOT NULL, button TEXT NOT NULL,
  n BIGINT NOT NULL, PRIMARY KEY (span, start, message, button)
);
CREATE TABLE visitor_marks (
  message TEXT NOT NULL, sender TEXT NOT NULL,
  shown_at BIGINT, clicked_at BIGINT, dismissed_at BIGINT, replied_at BIGINT,
  PRIMARY KEY (message, sender)
);
-- A `since` window's visitors: a range of this index, read without the table.
CREATE INDEX visitor_marks_by_shown ON visitor_marks(shown_at, message, clicked_at, dismissed_at, replied_at);
CREATE TABLE visitor_counts (
  message TEXT PRIMARY KEY, shown INTEGER NOT NULL, clicked INTEGER NOT NULL,
  dismissed INTEGER NOT NULL, replied INTEGER NOT NULL
);
-- Raw events are read by time now (pruning, the first minute of a window).
DROP INDEX IF EXISTS events_by_message;
CREATE INDEX events_by_time ON events(received_at);

-- Backfill from the events stored so far.
INSERT INTO event_counts
  SELECT s.span, (e.received_at / s.span) * s.span, e.message,
         SUM(CASE WHEN e.kind = 'shown' THEN 1 ELSE 0 END), SUM(CASE WHEN e.kind = 'clicked' THEN 1 ELSE 0 END),
         SUM(CASE WHEN e.kind = 'dismissed' THEN 1 ELSE 0 END), SUM(CASE WHEN e.kind = 'replied' THEN 1 ELSE 0 END)
  FROM events e, (SELECT 60000 AS span UNION ALL SELECT 3600000 UNION ALL SELECT 86400000) s
  GROUP BY 1, 2, 3;
INSERT INTO button_counts
  SELECT s.span, (e.received_at / s.span) * s.span, e.message, e.button, COUNT(*)
  FROM events e, (SELECT 60000 AS span UNION ALL SELECT 3600000 UNION ALL SELECT 86400000) s
  WHERE e.kind = 'clicked' AND e.button IS NOT NULL
  GROUP BY 1, 2, 3, 4;
INSERT INTO visitor_marks
  SELECT message, split_part(id, ':', 1),
         MAX(CASE WHEN kind = 'shown' THEN received_at END), MAX(CASE WHEN kind = 'clicked' THEN received_at END),
         MAX(CASE WHEN kind = 'dismissed' THEN received_at END), MAX(CASE WHEN kind = 'replied' THEN received_at END)
  FROM events GROUP BY 1, 2;
INSERT INTO visitor_counts
  SELECT message, COUNT(*), COUNT(clicked_at), COUNT(dismissed_at), COUNT(replied_at)
  FROM visitor_marks WHERE shown_at IS NOT NULL GROUP BY message;

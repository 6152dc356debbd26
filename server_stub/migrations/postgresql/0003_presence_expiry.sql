-- An agent is online until expires_at unless their page says so again (a
-- heartbeat); a vanished agent goes offline by itself.
ALTER TABLE agents ADD COLUMN expires_at BIGINT;

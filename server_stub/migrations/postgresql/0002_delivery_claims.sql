-- A delivery request is claimed by one process before it is handed to the
-- webhook (claimed_until: a lease; a request whose lease ran out while still
-- pending, e.g. its process died, may be claimed again by another).
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE deliveries ADD COLUMN claimed_until BIGINT;
CREATE INDEX deliveries_pending ON deliveries(status, requested_at);

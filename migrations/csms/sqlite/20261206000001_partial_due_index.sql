-- Only secrets pending deletion are ever looked up by deletion time (the
-- purge task's `state = 'PENDING_DELETE' AND scheduled_delete_ms <= now`),
-- yet every secret had an entry here: one index write more on each create
-- and each state change (issue #16). The partial index holds the pending
-- ones only and serves the same query.
DROP INDEX secrets_due_idx;
CREATE INDEX secrets_due_idx ON secrets (scheduled_delete_ms) WHERE state = 'PENDING_DELETE';

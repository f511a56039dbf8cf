-- The audit log's time index is dropped, as in SQLite (see its migration 0005): a prune finds the first event
-- recorded at or after its cut-off by walking the log in sequence order, and nothing else reads by time.
DROP INDEX IF EXISTS audit_log_recorded_at;

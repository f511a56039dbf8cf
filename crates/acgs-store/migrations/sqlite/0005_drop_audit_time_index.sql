-- The audit log's time index is dropped: its only reader was a prune, which looks for the first event (in log
-- order) recorded at or after its cut-off, and finds it by walking the log from its start in sequence order, as
-- it walks those events anyway to remove their bodies. Keeping the index cost every commit a page of its own
-- (1.35 of 8.6 pages per commit in `scripts/wal-frames.py`, see docs/performance.md).
DROP INDEX audit_log_recorded_at;

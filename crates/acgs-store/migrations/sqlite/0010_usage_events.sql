-- Usage the counters of the constitution read (docs/entities.md#counters): one row per allowed decision and
-- counter key, kept for the counter's window.
CREATE TABLE usage_events (
    key    TEXT    NOT NULL,
    at_us  INTEGER NOT NULL,
    amount INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_events_key_time ON usage_events (key, at_us);

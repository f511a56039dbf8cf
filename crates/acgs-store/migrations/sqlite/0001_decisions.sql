-- The durable decision log. `seq` is the gap-free audit sequence number assigned by the single writer.
CREATE TABLE decisions (
    seq                  INTEGER PRIMARY KEY,
    decision_id          TEXT    NOT NULL UNIQUE,
    recorded_at_us       INTEGER NOT NULL,
    principal_type       TEXT    NOT NULL,
    principal_id         TEXT    NOT NULL,
    action               TEXT    NOT NULL,
    resource_type        TEXT    NOT NULL,
    resource_id          TEXT    NOT NULL,
    outcome              TEXT    NOT NULL CHECK (outcome IN ('allow', 'deny', 'escalate')),
    effective_outcome    TEXT    NOT NULL CHECK (effective_outcome IN ('allow', 'deny', 'escalate')),
    shadow               INTEGER NOT NULL CHECK (shadow IN (0, 1)),
    constitutional_hash  TEXT    NOT NULL,
    constitution_version TEXT    NOT NULL,
    evaluated_in_us      INTEGER NOT NULL,
    body                 TEXT    NOT NULL
) STRICT;

CREATE INDEX decisions_recorded_at ON decisions (recorded_at_us);
CREATE INDEX decisions_principal ON decisions (principal_type, principal_id, seq);
CREATE INDEX decisions_outcome ON decisions (outcome, seq);

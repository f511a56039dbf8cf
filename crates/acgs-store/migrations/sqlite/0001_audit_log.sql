-- The tamper-evident audit log: one row per event, `seq` = leaf index + 1, gap-free, assigned by the single
-- writer. `event` is the leaf data (canonical JSON); a prune sets it to NULL and keeps `leaf_hash`.
CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL,
    recorded_at_us INTEGER NOT NULL,
    leaf_hash      BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
    event          TEXT
) STRICT;

CREATE INDEX audit_log_recorded_at ON audit_log (recorded_at_us);

-- Every complete, aligned subtree above the leaves: node (level, idx) covers leaves idx*2^level ..
-- (idx+1)*2^level - 1. Proofs read at most 2*log2(size) of them.
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- Signed tree heads (C2SP checkpoint notes). Every checkpoint is kept.
CREATE TABLE audit_checkpoints (
    tree_size    INTEGER PRIMARY KEY,
    root         BLOB    NOT NULL CHECK (length(root) = 32),
    signed_at_us INTEGER NOT NULL,
    note         TEXT    NOT NULL
) STRICT;

-- The decision index: the queryable fields of each decision event (the full event is in audit_log).
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
    evaluated_in_us      INTEGER NOT NULL
) STRICT;

CREATE INDEX decisions_recorded_at ON decisions (recorded_at_us);
CREATE INDEX decisions_principal ON decisions (principal_type, principal_id, seq);
CREATE INDEX decisions_outcome ON decisions (outcome, seq);

-- The tamper-evident audit log: one row per event, `seq` = leaf index + 1, gap-free, assigned under an
-- advisory lock. `event` is the leaf data (canonical JSON); a prune sets it to NULL and keeps `leaf_hash`.
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    kind           TEXT   NOT NULL,
    recorded_at_us BIGINT NOT NULL,
    leaf_hash      BYTEA  NOT NULL CHECK (length(leaf_hash) = 32),
    event          TEXT
);

CREATE INDEX audit_log_recorded_at ON audit_log (recorded_at_us);

-- Every complete, aligned subtree above the leaves: node (level, idx) covers leaves idx*2^level ..
-- (idx+1)*2^level - 1. Proofs read at most 2*log2(size) of them.
CREATE TABLE audit_nodes (
    level SMALLINT NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   BIGINT   NOT NULL,
    hash  BYTEA    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Signed tree heads (C2SP checkpoint notes). Every checkpoint is kept.
CREATE TABLE audit_checkpoints (
    tree_size    BIGINT PRIMARY KEY,
    root         BYTEA  NOT NULL CHECK (length(root) = 32),
    signed_at_us BIGINT NOT NULL,
    note         TEXT   NOT NULL
);

-- The decision index: the queryable fields of each decision event (the full event is in audit_log).
CREATE TABLE decisions (
    seq                  BIGINT  PRIMARY KEY,
    decision_id          TEXT    NOT NULL UNIQUE,
    recorded_at_us       BIGINT  NOT NULL,
    principal_type       TEXT    NOT NULL,
    principal_id         TEXT    NOT NULL,
    action               TEXT    NOT NULL,
    resource_type        TEXT    NOT NULL,
    resource_id          TEXT    NOT NULL,
    outcome              TEXT    NOT NULL CHECK (outcome IN ('allow', 'deny', 'escalate')),
    effective_outcome    TEXT    NOT NULL CHECK (effective_outcome IN ('allow', 'deny', 'escalate')),
    shadow               BOOLEAN NOT NULL,
    constitutional_hash  TEXT    NOT NULL,
    constitution_version TEXT    NOT NULL,
    evaluated_in_us      BIGINT  NOT NULL
);

CREATE INDEX decisions_recorded_at ON decisions (recorded_at_us);
CREATE INDEX decisions_principal ON decisions (principal_type, principal_id, seq);
CREATE INDEX decisions_outcome ON decisions (outcome, seq);

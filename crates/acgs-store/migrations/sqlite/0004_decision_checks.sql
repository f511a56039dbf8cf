-- The decision index's outcome checks as comparisons instead of `IN` lists. SQLite evaluates a constant `IN` list
-- of more than two values through a temporary b-tree it builds for every row inserted; two such checks cost the
-- group-commit writer about as many instructions per decision as the index row itself (callgrind, see
-- docs/performance.md). SQLite cannot change a table's checks in place, so the table is rebuilt with the same
-- columns, rows and indexes.
CREATE TABLE decisions_rebuilt (
    seq                  INTEGER PRIMARY KEY,
    decision_id          TEXT    NOT NULL UNIQUE,
    recorded_at_us       INTEGER NOT NULL,
    principal_type       TEXT    NOT NULL,
    principal_id         TEXT    NOT NULL,
    action               TEXT    NOT NULL,
    resource_type        TEXT    NOT NULL,
    resource_id          TEXT    NOT NULL,
    outcome              TEXT    NOT NULL
        CHECK (outcome = 'allow' OR outcome = 'deny' OR outcome = 'escalate'),
    effective_outcome    TEXT    NOT NULL
        CHECK (effective_outcome = 'allow' OR effective_outcome = 'deny' OR effective_outcome = 'escalate'),
    shadow               INTEGER NOT NULL CHECK (shadow IN (0, 1)),
    constitutional_hash  TEXT    NOT NULL,
    constitution_version TEXT    NOT NULL,
    evaluated_in_us      INTEGER NOT NULL
) STRICT;

INSERT INTO decisions_rebuilt SELECT seq, decision_id, recorded_at_us, principal_type, principal_id, action,
    resource_type, resource_id, outcome, effective_outcome, shadow, constitutional_hash, constitution_version,
    evaluated_in_us FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions_rebuilt RENAME TO decisions;

CREATE INDEX decisions_recorded_at ON decisions (recorded_at_us);
CREATE INDEX decisions_principal ON decisions (principal_type, principal_id, seq);
CREATE INDEX decisions_outcome ON decisions (outcome, seq);

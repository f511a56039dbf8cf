-- How far the derived data reaches: every event up to `through_seq` has its decision-index row and the tree
-- nodes it completes. The group-commit writer writes both a few milliseconds after the events themselves;
-- whatever is missing after a crash is derived again from `audit_log` when the store opens.
CREATE TABLE audit_derived (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    through_seq INTEGER NOT NULL
) STRICT;

INSERT INTO audit_derived (id, through_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log;

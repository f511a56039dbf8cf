-- Governed objects (amendments, appeals, the emergency halt, ...) as the governance service keeps them: each a
-- JSON body (stored verbatim) with a kind, an id, a state and a revision that every change raises by one. A
-- change is written only if the stored revision is still the one it was made from, in the same transaction as
-- its audit events (and, when it puts a constitution in force, its `constitution_versions` row).
CREATE TABLE governance_records (
    kind          TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    revision      INTEGER NOT NULL CHECK (revision >= 1),
    state         TEXT    NOT NULL,
    created_at_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT;
-- Listing a kind newest first, in one state or in all.
CREATE INDEX governance_records_by_state ON governance_records (kind, state, created_at_us, id);
CREATE INDEX governance_records_by_time ON governance_records (kind, created_at_us, id);

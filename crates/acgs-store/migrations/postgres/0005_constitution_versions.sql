-- Every constitution the server has run, in the order they were put in force: the full source (TOML), its
-- canonical hash and version label, and when and why it was activated. The highest `number` is in force.
CREATE TABLE constitution_versions (
    number           BIGINT PRIMARY KEY,
    hash             TEXT   NOT NULL,
    version_label    TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    source_name      TEXT   NOT NULL,
    source           TEXT   NOT NULL,
    activated_at_us  BIGINT NOT NULL,
    activated_by     TEXT   NOT NULL,
    reason           TEXT   NOT NULL
);

-- Tree nodes are keyed by when an append-only tree completes them, instead of by (level, idx). Node (level, idx)
-- is completed by the append of leaf (idx + 1) * 2^level - 1, together with the nodes below it on that leaf's
-- path, so `position = ((idx + 1) << level) * 64 + level` grows with every append. New nodes now land on the
-- table's right edge: a commit writes the last page or two, where keying by (level, idx) touched one page per
-- level scattered through the file (about 20 pages per checkpoint pass at 5,000 decisions/s, see
-- docs/performance.md). Level and index are recovered from the position (lowest six bits: level).
CREATE TABLE audit_nodes_by_position (
    position INTEGER PRIMARY KEY CHECK (position > 0 AND (position & 63) > 0),
    hash     BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

INSERT INTO audit_nodes_by_position (position, hash)
    SELECT ((idx + 1) << level) * 64 + level, hash FROM audit_nodes ORDER BY 1;

DROP TABLE audit_nodes;
ALTER TABLE audit_nodes_by_position RENAME TO audit_nodes;

//! Where SQLite keeps the tree nodes above the leaves: their keys in `audit_nodes`, and reading stored nodes
//! back (point lookups on the writing connection, one query on a reading one).

use acgs_audit::{NodeId, NodeMap};
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::SqliteConnection;

use crate::StoreError;
use crate::tree::node_map;

/// A tree node's index as stored.
pub(crate) fn node_index(index: u64) -> Result<i64, StoreError> {
    i64::try_from(index).map_err(|_| StoreError::Corrupt(format!("tree node index {index} out of range")))
}

/// The key of node `id` (level >= 1) in `audit_nodes`: `((index + 1) << level) * 64 + level`. An append-only
/// tree completes node (level, index) with leaf `(index + 1) * 2^level - 1`, after the nodes below it on that
/// leaf's path, so positions grow with every append and new nodes are written at the table's right edge
/// (migration 0006 says why).
pub(crate) fn node_position(id: NodeId) -> Result<i64, StoreError> {
    let level = u32::from(id.level);
    id.index
        .checked_add(1)
        // The shifted value, then six bits for the level, must fit in an i64.
        .filter(|completed_by| (1..64).contains(&level) && completed_by.leading_zeros() >= level + 7)
        .and_then(|completed_by| i64::try_from((completed_by << level) << 6 | u64::from(level)).ok())
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "tree node (level {}, index {}) is beyond the largest tree stored",
                id.level, id.index
            ))
        })
}

/// The stored nodes among `ids` (level 0 from the leaf hashes); at most 64 point lookups.
pub(crate) fn stored_nodes(conn: &Connection, ids: &[NodeId]) -> Result<NodeMap, StoreError> {
    let mut leaf = conn.prepare_cached("SELECT leaf_hash FROM audit_log WHERE seq = ?1")?;
    let mut node = conn.prepare_cached("SELECT hash FROM audit_nodes WHERE position = ?1")?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let index = node_index(id.index)?;
        let hash: Option<Vec<u8>> = if id.level == 0 {
            leaf.query_row(params![index + 1], |row| row.get(0)).optional()?
        } else {
            node.query_row(params![node_position(*id)?], |row| row.get(0))
                .optional()?
        };
        if let Some(hash) = hash {
            rows.push((i64::from(id.level), index, hash));
        }
    }
    node_map(rows)
}

/// Stored tree nodes named by a JSON array of `[level, idx, position]` (level 0 from the leaf hashes; `position`
/// is the node's key in `audit_nodes`, see [`node_position`]).
const SELECT_NODES: &str = "SELECT 0 AS level, a.seq - 1 AS idx, a.leaf_hash AS hash \
     FROM json_each(?1) j JOIN audit_log a ON a.seq = (j.value ->> 1) + 1 WHERE j.value ->> 0 = 0 \
     UNION ALL SELECT j.value ->> 0, j.value ->> 1, n.hash \
     FROM json_each(?1) j JOIN audit_nodes n ON n.position = j.value ->> 2 WHERE j.value ->> 0 > 0";

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Encode(e.to_string()))
}

/// The stored nodes among `ids`.
pub(crate) async fn select_nodes(conn: &mut SqliteConnection, ids: &[NodeId]) -> Result<NodeMap, StoreError> {
    let wanted = ids
        .iter()
        .map(|&id| Ok((id.level, id.index, if id.level == 0 { 0 } else { node_position(id)? })))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let wanted = to_json(&wanted)?;
    let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(SELECT_NODES).bind(wanted).fetch_all(conn).await?;
    node_map(rows)
}

#[cfg(test)]
mod tests {
    use acgs_audit::Frontier;

    use super::*;

    /// An append-only tree completes its nodes in the order of their positions, so new nodes always go to the
    /// right edge of `audit_nodes`; a node whose position would not fit an i64 is refused, not wrapped.
    #[test]
    fn node_positions_grow_in_the_order_appends_complete_the_nodes() {
        let mut frontier = Frontier::default();
        let mut last = 0;
        for leaf in 0..5000u64 {
            frontier.push(acgs_audit::leaf_hash(&leaf.to_be_bytes()), |id, _| {
                if id.level > 0 {
                    let position = node_position(id).unwrap();
                    assert!(position > last, "node {id:?} at {position}, after {last}");
                    last = position;
                }
            });
        }
        let node = |level, index| node_position(NodeId { level, index });
        assert_eq!(node(2, 2).unwrap(), ((2 + 1) << 2) * 64 + 2);
        assert!(node(1, (1 << 56) - 2).is_ok());
        assert!(node(1, (1 << 56) - 1).is_err());
        assert!(node(40, 1 << 17).is_err());
        assert!(node(0, 0).is_err(), "leaves are not stored in audit_nodes");
    }
}

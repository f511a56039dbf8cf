//! The Merkle tree as both backends store it, read back: stored bytes as hashes, node rows as a [`NodeMap`],
//! and the right edge (frontier) of a stored tree.

use acgs_audit::{Frontier, Hash, NodeId, NodeMap, SubtreeSource as _};

use crate::StoreError;

/// 32 stored bytes as a hash.
pub(crate) fn hash_from(bytes: &[u8], what: &str) -> Result<Hash, StoreError> {
    Hash::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

/// Node rows `(level, idx, hash)` as a map.
pub(crate) fn node_map(rows: Vec<(i64, i64, Vec<u8>)>) -> Result<NodeMap, StoreError> {
    let mut nodes = Vec::with_capacity(rows.len());
    for (level, index, hash) in rows {
        let id = NodeId {
            level: u8::try_from(level).map_err(|_| StoreError::Corrupt(format!("node level {level}")))?,
            index: u64::try_from(index).map_err(|_| StoreError::Corrupt(format!("node index {index}")))?,
        };
        nodes.push((id, hash_from(&hash, "a tree node")?));
    }
    Ok(NodeMap::new(nodes))
}

/// The frontier of the stored tree of `size` leaves, whose nodes `ids` were fetched into `stored`.
pub(crate) fn frontier_from(size: i64, ids: &[NodeId], stored: &NodeMap) -> Result<Frontier, StoreError> {
    let hashes = ids
        .iter()
        .map(|id| stored.subtree_root(id.index << id.level, (id.index + 1) << id.level))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Frontier::from_hashes(size as u64, &hashes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

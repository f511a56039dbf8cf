//! The tree as it is kept in storage: complete, aligned subtrees named by [`NodeId`], the right edge of a
//! growing tree ([`Frontier`]) that turns appended leaves into new stored nodes, and [`NodeMap`], which answers
//! proofs from a handful of stored nodes.
//!
//! A proof over a tree of any size needs at most `2·log2(size)` complete subtrees. [`nodes_needed`] runs a
//! computation once without hashes to learn which ones, so storage can fetch exactly those in one query; the
//! computation then runs again over a [`NodeMap`] of the fetched nodes.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use crate::proof::ProofError;
use crate::rfc6962::{Hash, SubtreeSource, empty_root, node_hash, split_point};

/// A complete subtree of `2^level` leaves, aligned: it covers leaves `index << level .. (index + 1) << level`.
/// Level 0 nodes are leaf hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u8,
    /// Position within the level.
    pub index: u64,
}

impl NodeId {
    /// The node covering exactly `start..end`, if that range is a complete aligned subtree.
    fn covering(start: u64, end: u64) -> Option<Self> {
        let n = end - start;
        (n.is_power_of_two() && start.is_multiple_of(n)).then(|| Self {
            level: n.trailing_zeros() as u8,
            index: start >> n.trailing_zeros(),
        })
    }
}

/// Split `start..end` the way RFC 6962 does until every piece is a complete aligned subtree, and combine.
fn combine(start: u64, end: u64, node: &mut dyn FnMut(NodeId) -> Result<Hash, ProofError>) -> Result<Hash, ProofError> {
    if let Some(id) = NodeId::covering(start, end) {
        return node(id);
    }
    let k = split_point(end - start);
    let left = combine(start, start + k, node)?;
    let right = combine(start + k, end, node)?;
    Ok(node_hash(&left, &right))
}

/// Complete subtrees by id. Answers any range by combining them; a missing interior node is computed from its
/// children when those are present.
#[derive(Debug, Clone, Default)]
pub struct NodeMap {
    nodes: HashMap<NodeId, Hash>,
}

impl NodeMap {
    /// A map of the given nodes.
    pub fn new(nodes: impl IntoIterator<Item = (NodeId, Hash)>) -> Self {
        Self {
            nodes: nodes.into_iter().collect(),
        }
    }

    fn node(&self, id: NodeId) -> Result<Hash, ProofError> {
        if let Some(hash) = self.nodes.get(&id) {
            return Ok(*hash);
        }
        if id.level == 0 {
            return Err(ProofError::MissingNode {
                level: 0,
                index: id.index,
            });
        }
        let child = |index| NodeId {
            level: id.level - 1,
            index,
        };
        let left = self.node(child(id.index * 2)).map_err(|_| ProofError::MissingNode {
            level: id.level,
            index: id.index,
        })?;
        let right = self
            .node(child(id.index * 2 + 1))
            .map_err(|_| ProofError::MissingNode {
                level: id.level,
                index: id.index,
            })?;
        Ok(node_hash(&left, &right))
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        if size == 0 {
            return Ok(empty_root());
        }
        self.subtree_root(0, size)
    }
}

impl SubtreeSource for NodeMap {
    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        combine(start, end, &mut |id| self.node(id))
    }
}

/// Records which complete subtrees a computation asks for, answering with placeholder hashes.
#[derive(Debug, Default)]
struct NodeRecorder {
    asked: RefCell<BTreeSet<NodeId>>,
}

impl SubtreeSource for NodeRecorder {
    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        combine(start, end, &mut |id| {
            self.asked.borrow_mut().insert(id);
            Ok([0; 32])
        })
    }
}

/// The complete subtrees that `computation` reads. Proof construction does not branch on hash values, so
/// running it over the returned nodes (in a [`NodeMap`]) gives the real result.
pub fn nodes_needed<T>(computation: impl FnOnce(&dyn SubtreeSource) -> Result<T, ProofError>) -> Vec<NodeId> {
    let recorder = NodeRecorder::default();
    // Errors here are argument errors (e.g. an index outside the tree); the caller's second run reports them.
    let _ = computation(&recorder);
    recorder.asked.into_inner().into_iter().collect()
}

/// The right edge of a tree: the complete subtrees, largest first, whose concatenation is the whole tree (one
/// per set bit of the size). Enough to append leaves and to compute the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<(NodeId, Hash)>,
}

impl Frontier {
    /// Which nodes make up the frontier of a tree of `size` leaves, largest first.
    pub fn ids(size: u64) -> Vec<NodeId> {
        let mut ids = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1 << level) != 0 {
                ids.push(NodeId {
                    level,
                    index: start >> level,
                });
                start += 1 << level;
            }
        }
        ids
    }

    /// The frontier of a tree of `size` leaves from its nodes' hashes, in the order of [`Frontier::ids`].
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Result<Self, ProofError> {
        let ids = Self::ids(size);
        if let Some(missing) = ids.get(hashes.len()) {
            return Err(ProofError::MissingNode {
                level: missing.level,
                index: missing.index,
            });
        }
        Ok(Self {
            size,
            nodes: ids.into_iter().zip(hashes.iter().copied()).collect(),
        })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf. `new_node` is called for the leaf (level 0) and for every complete subtree the leaf
    /// completes, in order of increasing level.
    pub fn push(&mut self, leaf: Hash, mut new_node: impl FnMut(NodeId, &Hash)) {
        let id = NodeId {
            level: 0,
            index: self.size,
        };
        new_node(id, &leaf);
        self.nodes.push((id, leaf));
        self.size += 1;
        while let [.., (left_id, left), (right_id, right)] = self.nodes[..] {
            if left_id.level != right_id.level {
                break;
            }
            let merged = (
                NodeId {
                    level: left_id.level + 1,
                    index: left_id.index / 2,
                },
                node_hash(&left, &right),
            );
            new_node(merged.0, &merged.1);
            self.nodes.truncate(self.nodes.len() - 2);
            self.nodes.push(merged);
        }
    }

    /// The root of the tree (the empty tree's root when there are no leaves).
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some((_, last)) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |right, (_, left)| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{consistency_proof, inclusion_proof, leaf_hash};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Every stored node a frontier emits while the tree grows to `n` leaves.
    fn stored(n: u64) -> (Frontier, HashMap<NodeId, Hash>) {
        let mut frontier = Frontier::default();
        let mut nodes = HashMap::new();
        for leaf in leaves(n) {
            frontier.push(leaf, |id, h| {
                nodes.insert(id, *h);
            });
        }
        (frontier, nodes)
    }

    #[test]
    fn frontier_root_and_nodes_match_the_in_memory_tree() {
        for n in 0..70u64 {
            let all = leaves(n);
            let (frontier, nodes) = stored(n);
            assert_eq!(frontier.root(), crate::rfc6962::root_recursive(&all), "size {n}");
            assert_eq!(frontier.size(), n);
            // One node per complete aligned subtree.
            let expected: u64 = (0..64).map(|l| n >> l).sum();
            assert_eq!(nodes.len() as u64, expected, "size {n}");
            let ids = Frontier::ids(n);
            let hashes: Vec<Hash> = ids.iter().map(|id| nodes[id]).collect();
            assert_eq!(Frontier::from_hashes(n, &hashes).unwrap(), frontier);
        }
    }

    #[test]
    fn proofs_from_needed_stored_nodes_equal_proofs_from_leaves() {
        let n = 37;
        let all = leaves(n);
        let (_, nodes) = stored(n);
        for size in 1..=n {
            for index in 0..size {
                let needed = nodes_needed(|s| inclusion_proof(s, index, size));
                assert!(needed.len() <= 2 * 64);
                let map = NodeMap::new(needed.iter().map(|id| (*id, nodes[id])));
                assert_eq!(
                    inclusion_proof(&map, index, size).unwrap(),
                    inclusion_proof(&all[..], index, size).unwrap()
                );
            }
            for from in 0..=size {
                let needed = nodes_needed(|s| consistency_proof(s, from, size));
                let map = NodeMap::new(needed.iter().map(|id| (*id, nodes[id])));
                assert_eq!(
                    consistency_proof(&map, from, size).unwrap(),
                    consistency_proof(&all[..], from, size).unwrap()
                );
            }
            let needed = nodes_needed(|s| s.subtree_root(0, size));
            let map = NodeMap::new(needed.iter().map(|id| (*id, nodes[id])));
            assert_eq!(
                map.root(size).unwrap(),
                crate::rfc6962::root_recursive(&all[..size as usize])
            );
        }
    }

    #[test]
    fn missing_nodes_are_errors_not_panics() {
        let map = NodeMap::new([]);
        assert_eq!(map.root(3), Err(ProofError::MissingNode { level: 1, index: 0 }));
        assert_eq!(
            inclusion_proof(&leaves(2)[..], 0, 4),
            Err(ProofError::MissingNode { level: 0, index: 2 })
        );
        assert!(Frontier::from_hashes(3, &[[0; 32]]).is_err());
    }
}

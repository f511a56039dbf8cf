//! RFC 6962 §2.1 hashing: `leaf = SHA-256(0x00 || data)`, `node = SHA-256(0x01 || left || right)`, and the
//! Merkle tree hash (MTH) of a list of leaves, where a tree of `n > 1` leaves splits at the largest power of
//! two smaller than `n`.

use sha2::{Digest, Sha256};

use crate::proof::ProofError;

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// Hash of a leaf's data: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Where subtree roots come from: the leaves in memory, or nodes kept in storage.
pub trait SubtreeSource {
    /// The Merkle tree hash of leaves `start..end` (`start < end`), or [`ProofError::MissingNode`] when the
    /// source does not hold what it takes to compute it.
    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, ProofError>;
}

impl SubtreeSource for [Hash] {
    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        let n = end - start;
        if n == 1 {
            return self
                .get(start as usize)
                .copied()
                .ok_or(ProofError::MissingNode { level: 0, index: start });
        }
        let k = split_point(n);
        Ok(node_hash(
            &self.subtree_root(start, start + k)?,
            &self.subtree_root(start + k, end)?,
        ))
    }
}

/// The root of a tree whose leaf hashes are `leaves` (the empty tree's root for no leaves).
pub fn root(leaves: &[Hash]) -> Hash {
    let mut frontier = crate::Frontier::default();
    for leaf in leaves {
        frontier.push(*leaf, |_, _| {});
    }
    frontier.root()
}

/// The root computed by the RFC's recursive definition (tests compare the frontier against it).
#[cfg(test)]
pub(crate) fn root_recursive(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        empty_root()
    } else {
        leaves.subtree_root(0, leaves.len() as u64).unwrap_or_default()
    }
}

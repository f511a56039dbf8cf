//! Inclusion proofs (RFC 6962 §2.1.1 `PATH`) and consistency proofs (§2.1.2 `PROOF`), and their verification
//! as specified by RFC 9162 §2.1.3.2 and §2.1.4.2.

use crate::rfc6962::{Hash, SubtreeSource, node_hash, split_point};

/// Why a proof could not be produced or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// The sizes do not describe an older and a newer tree.
    #[error("cannot prove consistency from size {from} to size {to}")]
    InvalidSizes {
        /// Older tree size.
        from: u64,
        /// Newer tree size.
        to: u64,
    },
    /// A tree size larger than the log (a proof for a tree that does not exist yet).
    #[error("tree size {size} is beyond the log, which holds {log_size} entries")]
    SizeBeyondLog {
        /// The requested tree size.
        size: u64,
        /// The log's size.
        log_size: u64,
    },
    /// The proof has the wrong number of hashes for the sizes.
    #[error("proof has the wrong length")]
    WrongLength,
    /// The proof does not lead to the expected root(s).
    #[error("proof does not match the root")]
    RootMismatch,
    /// A node the computation needs is not available (e.g. a stored leaf hash is missing).
    #[error("tree node at level {level}, index {index} is missing")]
    MissingNode {
        /// Height of the node above the leaves.
        level: u8,
        /// Position of the node within its level.
        index: u64,
    },
}

/// Audit path for leaf `index` in the tree of the first `size` leaves of `source`.
pub fn inclusion_proof<S: SubtreeSource + ?Sized>(source: &S, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(source, index, 0, size, &mut proof)?;
    Ok(proof)
}

/// `PATH(m, D[start:end])`, appended bottom-up to `out`.
fn path<S: SubtreeSource + ?Sized>(
    source: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(source, m, start, start + k, out)?;
        out.push(source.subtree_root(start + k, end)?);
    } else {
        path(source, m - k, start + k, end, out)?;
        out.push(source.subtree_root(start, start + k)?);
    }
    Ok(())
}

/// Consistency proof between the trees of the first `from` and the first `to` leaves of `source`.
/// Empty when `from == to` or `from == 0` (every tree extends the empty tree).
pub fn consistency_proof<S: SubtreeSource + ?Sized>(source: &S, from: u64, to: u64) -> Result<Vec<Hash>, ProofError> {
    if from > to {
        return Err(ProofError::InvalidSizes { from, to });
    }
    let mut proof = Vec::new();
    if from > 0 && from < to {
        subproof(source, from, 0, to, true, &mut proof)?;
    }
    Ok(proof)
}

/// `SUBPROOF(m, D[start:end], b)`, appended bottom-up to `out`.
fn subproof<S: SubtreeSource + ?Sized>(
    source: &S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(source.subtree_root(start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(source, m, start, start + k, whole, out)?;
        out.push(source.subtree_root(start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, out)?;
        out.push(source.subtree_root(start, start + k)?);
    }
    Ok(())
}

/// Verify that `leaf` is leaf `index` of the tree of `size` leaves with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verify that the tree of `to` leaves with root `to_root` extends the tree of `from` leaves with root
/// `from_root` (RFC 9162 §2.1.4.2). Trees of equal size are consistent when their roots are equal (and the proof
/// is empty); every tree extends the empty tree (empty proof).
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::InvalidSizes { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if from_root == to_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if from == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // When `from` is a power of two, the old root is itself the first node of the path.
    let with_old_root;
    let proof: &[Hash] = if from.is_power_of_two() {
        with_old_root = std::iter::once(*from_root)
            .chain(proof.iter().copied())
            .collect::<Vec<_>>();
        &with_old_root
    } else {
        proof
    };
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (proof[0], proof[0]);
    for c in &proof[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *from_root || sr != *to_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

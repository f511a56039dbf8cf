//! The Merkle tree of ACGS's tamper-evident audit log, as specified by RFC 6962 and RFC 9162: leaf and node
//! hashing, tree heads, inclusion and consistency proofs with their verification, and signed checkpoints in the
//! C2SP signed-note format.
//!
//! Pure and synchronous. Subtree roots come from a [`SubtreeSource`] so the same proof code runs over leaves in
//! memory and, later, over nodes kept in storage.
//!
//! ```
//! use acgs_audit::{leaf_hash, root, inclusion_proof, verify_inclusion};
//! let leaves: Vec<_> = [b"a".as_slice(), b"b", b"c"].iter().map(|d| leaf_hash(d)).collect();
//! let head = root(&leaves[..]);
//! let proof = inclusion_proof(&leaves[..], 1, 3).expect("index and size are valid");
//! assert!(verify_inclusion(&leaves[1], 1, 3, &proof, &head).is_ok());
//! ```
#![deny(missing_docs)]

mod checkpoint;
mod proof;
mod rfc6962;

pub use checkpoint::{Checkpoint, CheckpointError, key_hash, verifier_key};
pub use proof::{ProofError, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
pub use rfc6962::{Hash, SubtreeSource, empty_root, leaf_hash, node_hash, root};

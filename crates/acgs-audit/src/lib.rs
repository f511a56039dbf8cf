//! Integrity primitives of ACGS's tamper-evident audit log: RFC 6962 / RFC 9162 Merkle hashing, inclusion and
//! consistency proofs, the tree as kept in storage (complete subtrees and the growing right edge), signed
//! checkpoints in the C2SP signed-note format, the log key, decision receipts, the log verifier, the typed
//! events the log holds (`event`), and the canonical JSON that events (and constitutions) are hashed in.
//!
//! Pure and synchronous: storage fetches the nodes a computation needs ([`nodes_needed`]) and runs it over a
//! [`NodeMap`]; the same proof code runs over leaves in memory.
//!
//! ```
//! use acgs_audit::{leaf_hash, root, inclusion_proof, verify_inclusion};
//! let leaves: Vec<_> = [b"a".as_slice(), b"b", b"c"].iter().map(|d| leaf_hash(d)).collect();
//! let head = root(&leaves[..]);
//! let proof = inclusion_proof(&leaves[..], 1, 3).expect("index and size are valid");
//! assert!(verify_inclusion(&leaves[1], 1, 3, &proof, &head).is_ok());
//! ```
#![deny(missing_docs)]

mod canonical;
mod checkpoint;
pub mod event;
mod key;
mod proof;
mod receipt;
mod rfc6962;
mod tree;
mod verify;

pub use canonical::{CanonicalJsonError, canonical_json, to_canonical_json, write_canonical_json, write_json_string};
pub use checkpoint::{Checkpoint, CheckpointError, key_hash, verifier_key};
pub use event::{AuditEvent, LoggedEvent, leaf_json};
pub use key::{KeyError, LogKey, VerifierKey};
pub use proof::{ProofError, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
pub use receipt::{RECEIPT_FORMAT, Receipt, ReceiptError, VerifiedReceipt, encode_hashes};
pub use rfc6962::{Hash, SubtreeSource, empty_root, leaf_hash, node_hash, root};
pub use tree::{Frontier, NodeId, NodeMap, nodes_needed};
pub use verify::{LogVerifier, VerifyFailure, VerifyReport};

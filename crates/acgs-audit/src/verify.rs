//! Recomputing a log from its entries: [`LogVerifier`] takes every entry in sequence order and every stored
//! checkpoint, rebuilds the tree, and stops at the first sequence number where the record was rewritten,
//! removed, reordered or no longer matches a signed checkpoint.

use std::collections::VecDeque;

use serde::Deserialize;

use crate::key::VerifierKey;
use crate::rfc6962::{Hash, leaf_hash};
use crate::tree::Frontier;

/// The first problem found, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    /// An entry is missing: the next stored entry has a later sequence number.
    #[error("entry {expected} is missing (the next stored entry is {found})")]
    Missing {
        /// The sequence number that should come next.
        expected: u64,
        /// The one found instead.
        found: u64,
    },
    /// Entries are out of order or duplicated.
    #[error("entry {expected} is out of order (found {found} where {expected} belongs)")]
    OutOfOrder {
        /// The sequence number that should come next.
        expected: u64,
        /// The one found instead.
        found: u64,
    },
    /// The event's bytes do not hash to the stored leaf hash: the event was changed.
    #[error("entry {seq} was modified: its event does not hash to its leaf hash")]
    Modified {
        /// Sequence number.
        seq: u64,
    },
    /// The event claims a different sequence number: it was moved.
    #[error("entry {seq} holds the event of entry {claimed}")]
    Moved {
        /// Where it is stored.
        seq: u64,
        /// Where the event says it belongs.
        claimed: u64,
    },
    /// The event is not an audit event.
    #[error("entry {seq} is malformed: {reason}")]
    Malformed {
        /// Sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The event body is gone but no prune record covers it.
    #[error("entry {seq} has no event and no prune record covers it")]
    Removed {
        /// Sequence number.
        seq: u64,
    },
    /// A checkpoint's signature does not verify.
    #[error("checkpoint at size {size} is not validly signed: {reason}")]
    BadSignature {
        /// Checkpoint tree size.
        size: u64,
        /// Why.
        reason: String,
    },
    /// The recomputed root differs from a signed checkpoint: an entry since the previous checkpoint was
    /// rewritten together with its leaf hash.
    #[error("checkpoint at size {size} does not match the entries: one of entries {from}..={size} was rewritten")]
    RootMismatch {
        /// First entry that may have been rewritten.
        from: u64,
        /// Checkpoint tree size (last entry that may have been rewritten).
        size: u64,
    },
    /// A stored checkpoint's root (the copy kept next to the note, which readers are shown) is not the root its
    /// signed note holds: the stored root was changed.
    #[error("checkpoint at size {size}: its stored root does not match its signed root")]
    StoredRootMismatch {
        /// Checkpoint tree size.
        size: u64,
    },
    /// A checkpoint covers entries that are no longer stored: the log was truncated.
    #[error("entries {first_missing}..={size} are missing: a checkpoint signed {size} entries")]
    Truncated {
        /// First missing sequence number.
        first_missing: u64,
        /// Checkpoint tree size.
        size: u64,
    },
}

impl VerifyFailure {
    /// The first sequence number (or checkpoint size) the failure concerns.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Missing { expected, .. } | Self::OutOfOrder { expected, .. } => *expected,
            Self::Modified { seq } | Self::Moved { seq, .. } | Self::Malformed { seq, .. } | Self::Removed { seq } => {
                *seq
            }
            Self::BadSignature { size, .. } | Self::StoredRootMismatch { size } => *size,
            Self::RootMismatch { from, .. } => *from,
            Self::Truncated { first_missing, .. } => *first_missing,
        }
    }
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Entries whose event was pruned (leaf hash kept).
    pub pruned: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Root of the whole recomputed tree.
    pub root: Hash,
}

/// The fields of an event the verifier reads (of any kind, also one a later build added).
#[derive(Deserialize)]
struct EventHead {
    seq: u64,
    kind: String,
    #[serde(default)]
    pruned: Option<PrunedRange>,
}

#[derive(Deserialize)]
struct PrunedRange {
    through_seq: u64,
}

/// Rebuilds a log entry by entry; see the module docs.
#[derive(Debug)]
pub struct LogVerifier {
    key: VerifierKey,
    frontier: Frontier,
    /// Checkpoints not yet reached, by ascending size.
    pending: VecDeque<(u64, String)>,
    /// Size of the last checkpoint that matched.
    last_good: u64,
    checkpoints: u64,
    /// Entries without an event (they must form a prefix).
    pruned: u64,
    /// Highest sequence number a prune record covers.
    pruned_through: u64,
}

impl LogVerifier {
    /// A verifier for a log signed by `key`.
    pub fn new(key: VerifierKey) -> Self {
        Self {
            key,
            frontier: Frontier::default(),
            pending: VecDeque::new(),
            last_good: 0,
            checkpoints: 0,
            pruned: 0,
            pruned_through: 0,
        }
    }

    /// Add a stored checkpoint (its stored size and signed note). Give checkpoints in ascending size, each
    /// before the entry that completes its size.
    pub fn add_checkpoint(&mut self, size: u64, note: String) {
        self.pending.push_back((size, note));
    }

    /// Number of entries taken so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Take the next entry: its stored sequence number, leaf hash and event (`None` when pruned).
    pub fn entry(&mut self, seq: u64, stored_leaf: &Hash, event: Option<&str>) -> Result<(), VerifyFailure> {
        self.check_checkpoints()?;
        let expected = self.frontier.size() + 1;
        if seq > expected {
            return Err(VerifyFailure::Missing { expected, found: seq });
        }
        if seq < expected {
            return Err(VerifyFailure::OutOfOrder { expected, found: seq });
        }
        match event {
            Some(event) => {
                if leaf_hash(event.as_bytes()) != *stored_leaf {
                    return Err(VerifyFailure::Modified { seq });
                }
                let head: EventHead = serde_json::from_str(event).map_err(|e| VerifyFailure::Malformed {
                    seq,
                    reason: e.to_string(),
                })?;
                if head.seq != seq {
                    return Err(VerifyFailure::Moved { seq, claimed: head.seq });
                }
                if head.kind == crate::event::kind::PRUNED
                    && let Some(range) = head.pruned
                {
                    self.pruned_through = self.pruned_through.max(range.through_seq.min(seq));
                }
            }
            None => {
                if self.pruned + 1 != seq {
                    return Err(VerifyFailure::Removed { seq });
                }
                self.pruned += 1;
            }
        }
        self.frontier.push(*stored_leaf, |_, _| {});
        self.check_checkpoints()
    }

    /// Check checkpoints whose size has been reached.
    fn check_checkpoints(&mut self) -> Result<(), VerifyFailure> {
        while let Some((size, note)) = self.pending.front() {
            let size = *size;
            if size > self.frontier.size() {
                break;
            }
            let checkpoint = self
                .key
                .verify_checkpoint(note)
                .map_err(|e| VerifyFailure::BadSignature {
                    size,
                    reason: e.to_string(),
                })?;
            if checkpoint.size != size {
                return Err(VerifyFailure::BadSignature {
                    size,
                    reason: format!("the note is for size {}", checkpoint.size),
                });
            }
            if checkpoint.root != self.frontier.root() {
                return Err(VerifyFailure::RootMismatch {
                    from: self.last_good + 1,
                    size,
                });
            }
            self.last_good = size;
            self.checkpoints += 1;
            self.pending.pop_front();
        }
        Ok(())
    }

    /// All entries were given: check what remains and report.
    pub fn finish(mut self) -> Result<VerifyReport, VerifyFailure> {
        self.check_checkpoints()?;
        if let Some((size, note)) = self.pending.front() {
            if let Err(e) = self.key.verify_checkpoint(note) {
                return Err(VerifyFailure::BadSignature {
                    size: *size,
                    reason: e.to_string(),
                });
            }
            return Err(VerifyFailure::Truncated {
                first_missing: self.frontier.size() + 1,
                size: *size,
            });
        }
        if self.pruned > self.pruned_through {
            return Err(VerifyFailure::Removed {
                seq: self.pruned_through + 1,
            });
        }
        Ok(VerifyReport {
            entries: self.frontier.size(),
            pruned: self.pruned,
            checkpoints: self.checkpoints,
            root: self.frontier.root(),
        })
    }
}

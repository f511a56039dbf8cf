//! Decision receipts: one audit event with everything a third party needs to check, offline and without the
//! server, that the event is in the log the server signed: the event's exact bytes, its sequence number, an
//! inclusion proof and a signed checkpoint.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::key::VerifierKey;
use crate::proof::{ProofError, verify_inclusion};
use crate::rfc6962::{Hash, leaf_hash};

/// The receipt format this crate writes and reads.
pub const RECEIPT_FORMAT: &str = "acgs-receipt/v1";

/// A receipt as served by `GET /v1/decisions/{id}/receipt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`RECEIPT_FORMAT`].
    pub format: String,
    /// The event's audit sequence number; its leaf index is `seq - 1`.
    pub seq: u64,
    /// The leaf data: the event's canonical JSON, byte for byte.
    pub event: String,
    /// Size of the tree the proof and checkpoint are for.
    pub tree_size: u64,
    /// Inclusion proof (RFC 9162 audit path), base64 hashes, bottom-up.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) for `tree_size`.
    pub checkpoint: String,
}

/// Why a receipt does not verify.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Not a receipt of a format this verifier knows.
    #[error("not an {RECEIPT_FORMAT} receipt: {0}")]
    Format(String),
    /// The checkpoint is not signed by the given key.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint is for a different tree size than the proof.
    #[error("checkpoint is for tree size {checkpoint}, the proof for {proof}")]
    SizeMismatch {
        /// Size in the checkpoint.
        checkpoint: u64,
        /// Size the receipt claims.
        proof: u64,
    },
    /// The inclusion proof does not lead from the event to the signed root.
    #[error("inclusion proof: {0}")]
    Proof(#[from] ProofError),
    /// The event is not the JSON event for this sequence number.
    #[error("event: {0}")]
    Event(String),
}

/// What a valid receipt establishes.
#[derive(Debug, Clone)]
pub struct VerifiedReceipt {
    /// The signed tree head the event is included in.
    pub checkpoint: Checkpoint,
    /// The event, parsed.
    pub event: serde_json::Value,
}

impl Receipt {
    /// Check the receipt against the log's public key.
    pub fn verify(&self, key: &VerifierKey) -> Result<VerifiedReceipt, ReceiptError> {
        if self.format != RECEIPT_FORMAT {
            return Err(ReceiptError::Format(format!("format is `{}`", self.format)));
        }
        let checkpoint = key.verify_checkpoint(&self.checkpoint)?;
        if checkpoint.size != self.tree_size {
            return Err(ReceiptError::SizeMismatch {
                checkpoint: checkpoint.size,
                proof: self.tree_size,
            });
        }
        let index = self
            .seq
            .checked_sub(1)
            .ok_or_else(|| ReceiptError::Format("seq starts at 1".into()))?;
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| {
                BASE64
                    .decode(h)
                    .ok()
                    .and_then(|b| Hash::try_from(b.as_slice()).ok())
                    .ok_or_else(|| ReceiptError::Format(format!("proof hash `{h}` is not a base64 32-byte hash")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        verify_inclusion(
            &leaf_hash(self.event.as_bytes()),
            index,
            self.tree_size,
            &proof,
            &checkpoint.root,
        )?;
        let event: serde_json::Value =
            serde_json::from_str(&self.event).map_err(|e| ReceiptError::Event(format!("not JSON: {e}")))?;
        if event.get("seq").and_then(serde_json::Value::as_u64) != Some(self.seq) {
            return Err(ReceiptError::Event(format!("does not carry seq {}", self.seq)));
        }
        Ok(VerifiedReceipt { checkpoint, event })
    }
}

/// Encode proof hashes for a receipt or an API response.
pub fn encode_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| BASE64.encode(h)).collect()
}

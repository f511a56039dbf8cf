//! What the decision log stores: one record per decision, and the filters for reading it back.

use serde::{Deserialize, Serialize};

/// One decision as recorded in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Audit sequence number: gap-free, starting at 1, assigned when the record is committed.
    pub seq: i64,
    /// Unique decision id (UUID v7) returned to the caller.
    pub decision_id: String,
    /// When the decision was made, in microseconds since the Unix epoch.
    pub recorded_at_us: i64,
    /// Principal entity type.
    pub principal_type: String,
    /// Principal entity id.
    pub principal_id: String,
    /// Action id.
    pub action: String,
    /// Resource entity type.
    pub resource_type: String,
    /// Resource entity id.
    pub resource_id: String,
    /// What the constitution decided: `allow`, `deny` or `escalate`.
    pub outcome: String,
    /// What the caller was told to do (differs from `outcome` in shadow mode).
    pub effective_outcome: String,
    /// Whether the server was in shadow mode.
    pub shadow: bool,
    /// Full constitutional hash in force (64 hex digits).
    pub constitutional_hash: String,
    /// Version label of the constitution in force.
    pub constitution_version: String,
    /// Engine evaluation time in microseconds.
    pub evaluated_in_us: i64,
    /// Canonical JSON text (see `acgs_audit::canonical_json`): the request (content redacted to its hash and
    /// length), reasons, detections, errors and explanation. Empty when the event was pruned.
    pub body: String,
}

/// A signed tree head as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    /// Number of leaves the checkpoint covers.
    pub tree_size: i64,
    /// Root over those leaves.
    pub root: acgs_audit::Hash,
    /// When it was signed (µs since the Unix epoch).
    pub signed_at_us: i64,
    /// The signed note (C2SP checkpoint format).
    pub note: String,
}

/// What a prune did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneOutcome {
    /// Events with sequence numbers up to this one no longer have a body.
    pub through_seq: i64,
    /// Event bodies removed by this prune.
    pub events_pruned: i64,
    /// Sequence number of the `audit.pruned` record this prune appended.
    pub record_seq: i64,
}

/// Filters for listing decisions, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionQuery {
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only this principal type.
    pub principal_type: Option<String>,
    /// Only this principal id.
    pub principal_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only decisions with `seq` below this (cursor for paging backwards).
    pub before_seq: Option<i64>,
    /// Only decisions recorded at or after this time (µs since epoch).
    pub since_us: Option<i64>,
    /// At most this many (capped at [`MAX_LIST_LIMIT`]).
    pub limit: Option<u32>,
}

/// Largest page a list query returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Default page size.
pub const DEFAULT_LIST_LIMIT: u32 = 50;

impl DecisionQuery {
    /// The effective limit.
    pub fn effective_limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(DEFAULT_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT))
    }
}

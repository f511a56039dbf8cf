//! Events: every state change is logged with `sol_log_data` (a `Program data:` line of base64 fields in the
//! transaction's logs), first field the event's name, then its fields in fixed-width little-endian form. An
//! indexer can rebuild the governance's history from these alone.

use solana_program_log::log_data;

/// Event names (the first field).
pub mod names {
    /// governance, creator, constitution hash, version
    pub const INITIALIZED: &[u8] = b"qg.initialized";
    /// governance, member, weight (u32), roles (u8)
    pub const MEMBER_SET: &[u8] = b"qg.member_set";
    /// governance, members (u32), total weight (u64)
    pub const SETUP_FINISHED: &[u8] = b"qg.setup_finished";
    /// governance, proposal id, proposer, kind (u8), payload
    pub const PROPOSED: &[u8] = b"qg.proposed";
    /// proposal, voter, choice (u8), weight (u32)
    pub const VOTED: &[u8] = b"qg.voted";
    /// proposal, state (u8), yes, no, abstain (u64 each), executable at (i64)
    pub const FINALIZED: &[u8] = b"qg.finalized";
    /// proposal, kind (u8), payload
    pub const EXECUTED: &[u8] = b"qg.executed";
    /// proposal
    pub const CANCELLED: &[u8] = b"qg.cancelled";
    /// governance, approver, motion kind (u8), payload, approvals so far (u8)
    pub const MOTION_APPROVED: &[u8] = b"qg.motion_approved";
    /// governance, reason hash
    pub const HALTED: &[u8] = b"qg.halted";
    /// governance
    pub const RESUMED: &[u8] = b"qg.resumed";
    /// proposal
    pub const VETOED: &[u8] = b"qg.vetoed";
    /// governance, hash of the proposed emergency set
    pub const TRANSFER_PROPOSED: &[u8] = b"qg.transfer_proposed";
    /// governance, hash of the accepted emergency set
    pub const TRANSFER_ACCEPTED: &[u8] = b"qg.transfer_accepted";
    /// governance, appeal, decision hash, appellant
    pub const APPEAL_SUBMITTED: &[u8] = b"qg.appeal_submitted";
    /// appeal, reviewer, ruling (u8), ruling hash
    pub const APPEAL_RULED: &[u8] = b"qg.appeal_ruled";
    /// governance, tree size (u64), root, checkpoint time (i64)
    pub const ANCHORED: &[u8] = b"qg.anchored";
}

/// Log an event: its name and fields.
pub fn emit(fields: &[&[u8]]) {
    log_data(fields);
}

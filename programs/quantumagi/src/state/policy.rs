//! Whether one policy is active under a governance.

use super::{AccountKind, AccountLayout, Key, Reader, Writer};
use crate::error::QgError;

/// Whether one policy (by the hash of its text) is active under this governance. PDA
/// `["policy", governance, policy hash]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Policy {
    /// Bump of its address.
    pub bump: u8,
    /// Active.
    pub active: bool,
    /// The governance.
    pub governance: Key,
    /// SHA-256 of the policy's text.
    pub policy_hash: Key,
    /// When it last changed.
    pub changed_at: i64,
    /// The proposal that last changed it.
    pub proposal_id: u64,
}

impl AccountLayout for Policy {
    const KIND: AccountKind = AccountKind::Policy;
    const LEN: usize = 2 + 2 + 32 + 32 + 8 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            active: r.bool()?,
            governance: r.key()?,
            policy_hash: r.key()?,
            changed_at: r.i64()?,
            proposal_id: r.u64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.bool(self.active)?;
        w.put(&self.governance)?;
        w.put(&self.policy_hash)?;
        w.i64(self.changed_at)?;
        w.u64(self.proposal_id)
    }
}

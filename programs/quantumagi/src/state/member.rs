//! A council member's register entry and the role bits it carries.

use super::{AccountKind, AccountLayout, Key, Reader, Writer};
use crate::error::QgError;

/// Member roles (bits).
pub mod roles {
    /// Votes on proposals.
    pub const VOTER: u8 = 1;
    /// Makes proposals.
    pub const PROPOSER: u8 = 2;
    /// Rules on appeals.
    pub const REVIEWER: u8 = 4;
    /// Every role bit.
    pub const ALL: u8 = VOTER | PROPOSER | REVIEWER;
}

/// A council member's register entry: the only source of a vote's weight. PDA
/// `["member", governance, key]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Member {
    /// Bump of its address.
    pub bump: u8,
    /// Active (removed members stay, inactive, so their history is kept).
    pub active: bool,
    /// Role bits ([`roles`]).
    pub roles: u8,
    /// Voting weight (1–[`MAX_WEIGHT`](super::MAX_WEIGHT) while active).
    pub weight: u32,
    /// The governance.
    pub governance: Key,
    /// The member's key.
    pub key: Key,
    /// When the member was (last) added; proposals made before then are not theirs to vote on.
    pub added_at: i64,
}

impl AccountLayout for Member {
    const KIND: AccountKind = AccountKind::Member;
    const LEN: usize = 2 + 3 + 4 + 32 + 32 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            active: r.bool()?,
            roles: r.u8()?,
            weight: r.u32()?,
            governance: r.key()?,
            key: r.key()?,
            added_at: r.i64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.bool(self.active)?;
        w.u8(self.roles)?;
        w.u32(self.weight)?;
        w.put(&self.governance)?;
        w.put(&self.key)?;
        w.i64(self.added_at)
    }
}

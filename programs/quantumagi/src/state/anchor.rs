//! The latest anchored checkpoint of the off-chain audit log.

use super::{AccountKind, AccountLayout, Key, Reader, Writer};
use crate::error::QgError;

/// The latest anchored checkpoint of the off-chain audit log. PDA `["anchor", governance]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Anchor {
    /// Bump of its address.
    pub bump: u8,
    /// The governance.
    pub governance: Key,
    /// The log's tree size at the checkpoint (never decreases).
    pub tree_size: u64,
    /// The log's Merkle root at that size.
    pub root: Key,
    /// The checkpoint's own time (unix seconds, as signed off-chain).
    pub checkpoint_time: i64,
    /// When it was anchored (chain clock).
    pub anchored_at: i64,
    /// How many anchors were made.
    pub anchors: u64,
}

impl AccountLayout for Anchor {
    const KIND: AccountKind = AccountKind::Anchor;
    const LEN: usize = 2 + 1 + 32 + 8 + 32 + 8 + 8 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            governance: r.key()?,
            tree_size: r.u64()?,
            root: r.key()?,
            checkpoint_time: r.i64()?,
            anchored_at: r.i64()?,
            anchors: r.u64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.put(&self.governance)?;
        w.u64(self.tree_size)?;
        w.put(&self.root)?;
        w.i64(self.checkpoint_time)?;
        w.i64(self.anchored_at)?;
        w.u64(self.anchors)
    }
}

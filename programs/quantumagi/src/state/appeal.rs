//! An appeal of one ACGS decision and its ruling.

use super::{AccountKind, AccountLayout, Key, Reader, Writer};
use crate::error::QgError;

/// Where an appeal is.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum AppealStatus {
    /// Waiting for a reviewer.
    Pending = 1,
    /// The decision stands.
    Upheld = 2,
    /// The decision is overturned.
    Overturned = 3,
}

impl AppealStatus {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            1 => Self::Pending,
            2 => Self::Upheld,
            3 => Self::Overturned,
            _ => return Err(QgError::WrongAccountData),
        })
    }
}

/// An appeal of one ACGS decision (one per decision). PDA `["appeal", governance, decision hash]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Appeal {
    /// Bump of its address.
    pub bump: u8,
    /// Where it is.
    pub status: AppealStatus,
    /// The governance.
    pub governance: Key,
    /// SHA-256 of the appealed decision's id.
    pub decision_hash: Key,
    /// Who appealed.
    pub appellant: Key,
    /// SHA-256 of the appellant's statement.
    pub reason_hash: Key,
    /// When.
    pub submitted_at: i64,
    /// Who ruled (zero until then).
    pub reviewer: Key,
    /// SHA-256 of the ruling's text (zero until then).
    pub ruling_hash: Key,
    /// When it was ruled on (0 until then).
    pub ruled_at: i64,
}

impl AccountLayout for Appeal {
    const KIND: AccountKind = AccountKind::Appeal;
    const LEN: usize = 2 + 2 + 32 * 4 + 8 + 32 + 32 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            status: AppealStatus::from_u8(r.u8()?)?,
            governance: r.key()?,
            decision_hash: r.key()?,
            appellant: r.key()?,
            reason_hash: r.key()?,
            submitted_at: r.i64()?,
            reviewer: r.key()?,
            ruling_hash: r.key()?,
            ruled_at: r.i64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.u8(self.status as u8)?;
        w.put(&self.governance)?;
        w.put(&self.decision_hash)?;
        w.put(&self.appellant)?;
        w.put(&self.reason_hash)?;
        w.i64(self.submitted_at)?;
        w.put(&self.reviewer)?;
        w.put(&self.ruling_hash)?;
        w.i64(self.ruled_at)
    }
}

//! The program's accounts: their exact byte layouts (little-endian, fixed size), how each is read and written,
//! and the seeds of their program-derived addresses. Every account starts with a kind tag and a layout
//! version, so an account of one kind can never be read as another.
//!
//! This module holds what all accounts share: the limits, the address seeds, the kind tag and the
//! [`AccountLayout`] trait. Each account's layout is in a module of its own, written with the [`Reader`] and
//! [`Writer`] of `codec`, and re-exported here.

use crate::error::QgError;

mod anchor;
mod appeal;
mod codec;
mod governance;
mod member;
mod policy;
mod proposal;

pub use anchor::Anchor;
pub use appeal::{Appeal, AppealStatus};
pub use codec::{Reader, Writer};
pub use governance::{Governance, KeySet, Motion, MotionKind, Params};
pub use member::{Member, roles};
pub use policy::Policy;
pub use proposal::{Choice, Proposal, ProposalKind, ProposalState, VoteRecord};

/// A 32-byte public key or hash.
pub type Key = [u8; 32];

/// The most keys in an emergency set.
pub const MAX_EMERGENCY_KEYS: usize = 7;
/// The most council members.
pub const MAX_MEMBERS: u32 = 64;
/// The largest voting weight of one member.
pub const MAX_WEIGHT: u32 = 1_000_000;
/// Layout version of every account this program writes.
pub const LAYOUT_VERSION: u8 = 1;
/// Bytes of a proposal's payload.
pub const PAYLOAD_LEN: usize = 64;

/// Seed prefixes of the program-derived addresses.
pub mod seeds {
    /// `["governance", creator]`
    pub const GOVERNANCE: &[u8] = b"governance";
    /// `["member", governance, member key]`
    pub const MEMBER: &[u8] = b"member";
    /// `["proposal", governance, id (u64 little-endian)]`
    pub const PROPOSAL: &[u8] = b"proposal";
    /// `["vote", proposal, member key]`
    pub const VOTE: &[u8] = b"vote";
    /// `["appeal", governance, decision hash]`
    pub const APPEAL: &[u8] = b"appeal";
    /// `["anchor", governance]`
    pub const ANCHOR: &[u8] = b"anchor";
    /// `["policy", governance, policy hash]`
    pub const POLICY: &[u8] = b"policy";
}

/// The kind tag in every account's first byte.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum AccountKind {
    /// [`Governance`]
    Governance = 1,
    /// [`Member`]
    Member = 2,
    /// [`Proposal`]
    Proposal = 3,
    /// [`VoteRecord`]
    Vote = 4,
    /// [`Appeal`]
    Appeal = 5,
    /// [`Anchor`]
    Anchor = 6,
    /// [`Policy`]
    Policy = 7,
}

/// An account kind with a fixed layout.
pub trait AccountLayout: Sized {
    /// Its kind tag.
    const KIND: AccountKind;
    /// Its exact size in bytes, header included.
    const LEN: usize;
    /// Read the fields after the header.
    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError>;
    /// Write the fields after the header.
    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError>;

    /// Decode a whole account (size, kind tag and version checked).
    fn decode(data: &[u8]) -> Result<Self, QgError> {
        if data.len() != Self::LEN {
            return Err(QgError::WrongAccountData);
        }
        let mut r = Reader::new(data);
        if r.u8()? != Self::KIND as u8 || r.u8()? != LAYOUT_VERSION {
            return Err(QgError::WrongAccountData);
        }
        let value = Self::read_fields(&mut r)?;
        if !r.is_done() {
            return Err(QgError::WrongAccountData);
        }
        Ok(value)
    }

    /// Encode into a whole account's data (exactly [`AccountLayout::LEN`] bytes).
    fn encode(&self, data: &mut [u8]) -> Result<(), QgError> {
        if data.len() != Self::LEN {
            return Err(QgError::WrongAccountData);
        }
        let mut w = Writer::new(data);
        w.u8(Self::KIND as u8)?;
        w.u8(LAYOUT_VERSION)?;
        self.write_fields(&mut w)?;
        if w.len() != Self::LEN {
            return Err(QgError::WrongAccountData);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        [b; 32]
    }

    #[test]
    fn every_account_has_its_documented_size() {
        assert_eq!(Governance::LEN, 691);
        assert_eq!(Member::LEN, 81);
        assert_eq!(Proposal::LEN, 213);
        assert_eq!(VoteRecord::LEN, 80);
        assert_eq!(Appeal::LEN, 212);
        assert_eq!(Anchor::LEN, 99);
        assert_eq!(Policy::LEN, 84);
    }

    #[test]
    fn one_kind_is_never_read_as_another() {
        let m = Member {
            bump: 1,
            active: true,
            roles: roles::ALL,
            weight: 10,
            governance: key(1),
            key: key(2),
            added_at: 5,
        };
        let mut buf = [0u8; Member::LEN];
        m.encode(&mut buf).unwrap();
        assert_eq!(Member::decode(&buf).unwrap(), m);
        // Same size, other kind tag; wrong version; wrong size; a flag that is not 0 or 1.
        let mut other = buf;
        other[0] = AccountKind::Vote as u8;
        assert_eq!(Member::decode(&other), Err(QgError::WrongAccountData));
        let mut other = buf;
        other[1] = 2;
        assert_eq!(Member::decode(&other), Err(QgError::WrongAccountData));
        assert_eq!(Member::decode(&buf[..80]), Err(QgError::WrongAccountData));
        let mut other = buf;
        other[3] = 2;
        assert_eq!(Member::decode(&other), Err(QgError::WrongAccountData));
        // Encoding into a buffer of the wrong size is refused, not truncated.
        assert_eq!(m.encode(&mut [0u8; 90]), Err(QgError::WrongAccountData));
    }
}

//! A proposal with its tally, and one member's vote on it.

use super::{AccountKind, AccountLayout, Key, PAYLOAD_LEN, Reader, Writer};
use crate::error::QgError;

/// What a proposal changes.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum ProposalKind {
    /// Payload: new constitution hash (32), new version (u64).
    UpdateConstitution = 1,
    /// Payload: policy hash (32), active (1 byte: 1 activate, 0 deactivate).
    SetPolicy = 2,
    /// Payload: [`Params`](super::Params).
    SetParams = 3,
    /// Payload: member key (32), weight (u32; 0 removes), roles (1 byte).
    SetMember = 4,
    /// Payload: the new anchor authority's key (32).
    SetAnchorAuthority = 5,
}

impl ProposalKind {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            1 => Self::UpdateConstitution,
            2 => Self::SetPolicy,
            3 => Self::SetParams,
            4 => Self::SetMember,
            5 => Self::SetAnchorAuthority,
            _ => return Err(QgError::InvalidInstruction),
        })
    }
}

/// Where a proposal is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum ProposalState {
    /// Open for votes.
    Voting = 1,
    /// Passed; executable once the timelock expires.
    Succeeded = 2,
    /// Did not pass.
    Defeated = 3,
    /// Applied.
    Executed = 4,
    /// Withdrawn by its proposer.
    Cancelled = 5,
    /// Stopped by the emergency set.
    Vetoed = 6,
}

impl ProposalState {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            1 => Self::Voting,
            2 => Self::Succeeded,
            3 => Self::Defeated,
            4 => Self::Executed,
            5 => Self::Cancelled,
            6 => Self::Vetoed,
            _ => return Err(QgError::WrongAccountData),
        })
    }
}

/// A proposal with its tally. The voting rules and the council's weight are copied in when it is made, so
/// later changes cannot move its goalposts. PDA `["proposal", governance, id]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Proposal {
    /// Bump of its address.
    pub bump: u8,
    /// Its state.
    pub state: ProposalState,
    /// What it changes.
    pub kind: ProposalKind,
    /// Its number within the governance.
    pub id: u64,
    /// The governance.
    pub governance: Key,
    /// Who proposed it.
    pub proposer: Key,
    /// What exactly it changes ([`ProposalKind`] says how to read it; unused bytes are zero).
    pub payload: [u8; PAYLOAD_LEN],
    /// When it was made.
    pub created_at: i64,
    /// When voting closes.
    pub voting_ends_at: i64,
    /// When it may be executed (set when it passes).
    pub executable_at: i64,
    /// Weight voting yes.
    pub yes: u64,
    /// Weight voting no.
    pub no: u64,
    /// Weight abstaining (counts towards quorum only).
    pub abstain: u64,
    /// Number of votes.
    pub voters: u32,
    /// The council's total weight when it was made.
    pub weight_snapshot: u64,
    /// The approval threshold when it was made.
    pub threshold_bps: u16,
    /// The quorum when it was made.
    pub quorum_bps: u16,
    /// The timelock when it was made.
    pub timelock_s: i64,
}

impl AccountLayout for Proposal {
    const KIND: AccountKind = AccountKind::Proposal;
    const LEN: usize = 2 + 3 + 8 + 32 + 32 + PAYLOAD_LEN + 8 * 3 + 8 * 3 + 4 + 8 + 2 + 2 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        let bump = r.u8()?;
        let state = ProposalState::from_u8(r.u8()?)?;
        let kind = ProposalKind::from_u8(r.u8()?).map_err(|_| QgError::WrongAccountData)?;
        let id = r.u64()?;
        let governance = r.key()?;
        let proposer = r.key()?;
        let mut payload = [0u8; PAYLOAD_LEN];
        payload.copy_from_slice(r.take(PAYLOAD_LEN)?);
        Ok(Self {
            bump,
            state,
            kind,
            id,
            governance,
            proposer,
            payload,
            created_at: r.i64()?,
            voting_ends_at: r.i64()?,
            executable_at: r.i64()?,
            yes: r.u64()?,
            no: r.u64()?,
            abstain: r.u64()?,
            voters: r.u32()?,
            weight_snapshot: r.u64()?,
            threshold_bps: r.u16()?,
            quorum_bps: r.u16()?,
            timelock_s: r.i64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.u8(self.state as u8)?;
        w.u8(self.kind as u8)?;
        w.u64(self.id)?;
        w.put(&self.governance)?;
        w.put(&self.proposer)?;
        w.put(&self.payload)?;
        w.i64(self.created_at)?;
        w.i64(self.voting_ends_at)?;
        w.i64(self.executable_at)?;
        w.u64(self.yes)?;
        w.u64(self.no)?;
        w.u64(self.abstain)?;
        w.u32(self.voters)?;
        w.u64(self.weight_snapshot)?;
        w.u16(self.threshold_bps)?;
        w.u16(self.quorum_bps)?;
        w.i64(self.timelock_s)
    }
}

/// A vote's choice.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum Choice {
    /// Against.
    No = 0,
    /// For.
    Yes = 1,
    /// Present, neither for nor against.
    Abstain = 2,
}

impl Choice {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            0 => Self::No,
            1 => Self::Yes,
            2 => Self::Abstain,
            _ => return Err(QgError::InvalidInstruction),
        })
    }
}

/// One member's vote on one proposal; its existence is what stops a second vote. PDA
/// `["vote", proposal, member key]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct VoteRecord {
    /// Bump of its address.
    pub bump: u8,
    /// The choice.
    pub choice: Choice,
    /// The weight counted, from the member register.
    pub weight: u32,
    /// The proposal.
    pub proposal: Key,
    /// The voter.
    pub voter: Key,
    /// When.
    pub cast_at: i64,
}

impl AccountLayout for VoteRecord {
    const KIND: AccountKind = AccountKind::Vote;
    const LEN: usize = 2 + 2 + 4 + 32 + 32 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            choice: Choice::from_u8(r.u8()?).map_err(|_| QgError::WrongAccountData)?,
            weight: r.u32()?,
            proposal: r.key()?,
            voter: r.key()?,
            cast_at: r.i64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.u8(self.choice as u8)?;
        w.u32(self.weight)?;
        w.put(&self.proposal)?;
        w.put(&self.voter)?;
        w.i64(self.cast_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        [b; 32]
    }

    #[test]
    fn a_proposal_round_trips() {
        let p = Proposal {
            bump: 1,
            state: ProposalState::Succeeded,
            kind: ProposalKind::SetMember,
            id: 12,
            governance: key(1),
            proposer: key(2),
            payload: [3; PAYLOAD_LEN],
            created_at: 10,
            voting_ends_at: 20,
            executable_at: 30,
            yes: 5,
            no: 1,
            abstain: 2,
            voters: 3,
            weight_snapshot: 10,
            threshold_bps: 5001,
            quorum_bps: 2500,
            timelock_s: 7,
        };
        let mut buf = [0u8; Proposal::LEN];
        p.encode(&mut buf).unwrap();
        assert_eq!(Proposal::decode(&buf).unwrap(), p);
    }
}

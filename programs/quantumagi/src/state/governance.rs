//! The governance account and the values it holds: the emergency key set, the voting rules and the open
//! emergency motion.

use super::{AccountKind, AccountLayout, Key, MAX_EMERGENCY_KEYS, Reader, Writer};
use crate::error::QgError;

/// An M-of-N set of keys (the emergency set).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct KeySet {
    /// Approvals needed (M).
    pub threshold: u8,
    /// Keys in use (N); the rest of `keys` is zero.
    pub count: u8,
    /// The keys.
    pub keys: [Key; MAX_EMERGENCY_KEYS],
}

impl KeySet {
    /// Encoded size.
    pub const LEN: usize = 2 + 32 * MAX_EMERGENCY_KEYS;

    /// An empty set.
    pub const EMPTY: KeySet = KeySet {
        threshold: 0,
        count: 0,
        keys: [[0; 32]; MAX_EMERGENCY_KEYS],
    };

    /// Valid: 1 ≤ M ≤ N ≤ 7, distinct non-zero keys, unused slots zero.
    pub fn validate(&self) -> Result<(), QgError> {
        let n = usize::from(self.count);
        if self.threshold == 0 || self.threshold > self.count || n > MAX_EMERGENCY_KEYS {
            return Err(QgError::InvalidInstruction);
        }
        for (i, key) in self.keys.iter().enumerate() {
            let zero = key.iter().all(|b| *b == 0);
            if (i < n) == zero {
                return Err(QgError::InvalidInstruction);
            }
            if i < n && self.keys.iter().take(i).any(|other| other == key) {
                return Err(QgError::InvalidInstruction);
            }
        }
        Ok(())
    }

    /// The position of `key` in the set.
    pub fn index_of(&self, key: &Key) -> Option<usize> {
        self.keys.iter().take(usize::from(self.count)).position(|k| k == key)
    }

    /// Read from instruction or account data.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, QgError> {
        let threshold = r.u8()?;
        let count = r.u8()?;
        let mut keys = [[0u8; 32]; MAX_EMERGENCY_KEYS];
        for key in keys.iter_mut() {
            *key = r.key()?;
        }
        Ok(Self { threshold, count, keys })
    }

    /// Write into instruction or account data.
    pub fn write(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.threshold)?;
        w.u8(self.count)?;
        for key in &self.keys {
            w.put(key)?;
        }
        Ok(())
    }

    /// The set's canonical bytes (what a transfer motion's payload hashes).
    pub fn to_bytes(&self) -> Result<[u8; KeySet::LEN], QgError> {
        let mut out = [0u8; KeySet::LEN];
        self.write(&mut Writer::new(&mut out))?;
        Ok(out)
    }
}

/// The voting rules a governance applies to new proposals.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Params {
    /// Share of the yes+no weight that must be yes, in basis points (1–10000).
    pub approval_threshold_bps: u16,
    /// Share of the council's weight that must take part (yes, no or abstain), in basis points (1–10000).
    pub quorum_bps: u16,
    /// How long a proposal is open for votes, in seconds (≥ 1).
    pub voting_period_s: i64,
    /// Delay between a proposal passing and its execution, in seconds (≥ 0).
    pub timelock_s: i64,
}

impl Params {
    /// Encoded size.
    pub const LEN: usize = 2 + 2 + 8 + 8;

    /// Within range.
    pub fn validate(&self) -> Result<(), QgError> {
        let bps = |v: u16| (1..=10_000).contains(&v);
        if !bps(self.approval_threshold_bps)
            || !bps(self.quorum_bps)
            || self.voting_period_s < 1
            || self.timelock_s < 0
            // At most a year each, so that times never overflow.
            || self.voting_period_s > 366 * 86_400
            || self.timelock_s > 366 * 86_400
        {
            return Err(QgError::InvalidInstruction);
        }
        Ok(())
    }

    /// Read.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            approval_threshold_bps: r.u16()?,
            quorum_bps: r.u16()?,
            voting_period_s: r.i64()?,
            timelock_s: r.i64()?,
        })
    }

    /// Write.
    pub fn write(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u16(self.approval_threshold_bps)?;
        w.u16(self.quorum_bps)?;
        w.i64(self.voting_period_s)?;
        w.i64(self.timelock_s)
    }
}

/// What an emergency motion does once enough of the emergency set approved it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum MotionKind {
    /// No motion is open.
    None = 0,
    /// Halt the governance (payload: the reason's hash).
    Halt = 1,
    /// Resume after a halt (payload: zero).
    Resume = 2,
    /// Veto a proposal that has not been executed (payload: the proposal's address).
    Veto = 3,
    /// Hand the emergency authority to a new set (payload: SHA-256 of the new set's bytes); the new set must
    /// accept before it takes over.
    TransferAuthority = 4,
}

impl MotionKind {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            0 => Self::None,
            1 => Self::Halt,
            2 => Self::Resume,
            3 => Self::Veto,
            4 => Self::TransferAuthority,
            _ => return Err(QgError::InvalidInstruction),
        })
    }
}

/// The emergency motion being approved, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Motion {
    /// What it does.
    pub kind: MotionKind,
    /// What it applies to.
    pub payload: Key,
    /// Which members of the emergency set approved (bit i = key i).
    pub approvals: u8,
    /// When it was opened (unix seconds).
    pub opened_at: i64,
}

impl Motion {
    /// No motion.
    pub const NONE: Motion = Motion {
        kind: MotionKind::None,
        payload: [0; 32],
        approvals: 0,
        opened_at: 0,
    };
}

/// The governance of one organisation: its constitution, council totals, voting rules, emergency set and
/// halt state. PDA `["governance", creator]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Governance {
    /// Bump of its address.
    pub bump: u8,
    /// While true the creator may add the initial council; false forever after `finish_setup`.
    pub setup_open: bool,
    /// Halted: no proposal may be made or executed.
    pub halted: bool,
    /// Who created it (part of its address).
    pub creator: Key,
    /// SHA-256 of the active constitution's canonical form (the ACGS constitutional hash).
    pub constitution_hash: Key,
    /// Its version number.
    pub constitution_version: u64,
    /// Voting rules for new proposals.
    pub params: Params,
    /// The id the next proposal gets.
    pub next_proposal_id: u64,
    /// Active council members.
    pub member_count: u32,
    /// Their total weight.
    pub total_weight: u64,
    /// The emergency set (halt, resume, veto, authority transfer).
    pub emergency: KeySet,
    /// Hash of the reason given for the current halt.
    pub halt_reason: Key,
    /// When the current halt began (0 when not halted).
    pub halted_since: i64,
    /// The open emergency motion.
    pub motion: Motion,
    /// A new emergency set approved by the current one, waiting for its acceptance (count 0: none).
    pub pending_emergency: KeySet,
    /// The key that may anchor audit-log checkpoints.
    pub anchor_authority: Key,
    /// Appeals submitted so far.
    pub appeals: u64,
}

impl AccountLayout for Governance {
    const KIND: AccountKind = AccountKind::Governance;
    const LEN: usize =
        2 + 3 + 32 + 32 + 8 + Params::LEN + 8 + 4 + 8 + KeySet::LEN + 32 + 8 + (1 + 32 + 1 + 8) + KeySet::LEN + 32 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            setup_open: r.bool()?,
            halted: r.bool()?,
            creator: r.key()?,
            constitution_hash: r.key()?,
            constitution_version: r.u64()?,
            params: Params::read(r)?,
            next_proposal_id: r.u64()?,
            member_count: r.u32()?,
            total_weight: r.u64()?,
            emergency: KeySet::read(r)?,
            halt_reason: r.key()?,
            halted_since: r.i64()?,
            motion: Motion {
                kind: MotionKind::from_u8(r.u8()?).map_err(|_| QgError::WrongAccountData)?,
                payload: r.key()?,
                approvals: r.u8()?,
                opened_at: r.i64()?,
            },
            pending_emergency: KeySet::read(r)?,
            anchor_authority: r.key()?,
            appeals: r.u64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.bool(self.setup_open)?;
        w.bool(self.halted)?;
        w.put(&self.creator)?;
        w.put(&self.constitution_hash)?;
        w.u64(self.constitution_version)?;
        self.params.write(w)?;
        w.u64(self.next_proposal_id)?;
        w.u32(self.member_count)?;
        w.u64(self.total_weight)?;
        self.emergency.write(w)?;
        w.put(&self.halt_reason)?;
        w.i64(self.halted_since)?;
        w.u8(self.motion.kind as u8)?;
        w.put(&self.motion.payload)?;
        w.u8(self.motion.approvals)?;
        w.i64(self.motion.opened_at)?;
        self.pending_emergency.write(w)?;
        w.put(&self.anchor_authority)?;
        w.u64(self.appeals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        [b; 32]
    }

    fn governance() -> Governance {
        let mut emergency = KeySet::EMPTY;
        emergency.threshold = 2;
        emergency.count = 3;
        emergency.keys[0] = key(1);
        emergency.keys[1] = key(2);
        emergency.keys[2] = key(3);
        Governance {
            bump: 254,
            setup_open: true,
            halted: false,
            creator: key(9),
            constitution_hash: key(7),
            constitution_version: 3,
            params: Params {
                approval_threshold_bps: 6000,
                quorum_bps: 5000,
                voting_period_s: 3600,
                timelock_s: 60,
            },
            next_proposal_id: 1,
            member_count: 2,
            total_weight: 30,
            emergency,
            halt_reason: [0; 32],
            halted_since: 0,
            motion: Motion {
                kind: MotionKind::Halt,
                payload: key(5),
                approvals: 0b101,
                opened_at: 1_700_000_000,
            },
            pending_emergency: KeySet::EMPTY,
            anchor_authority: key(8),
            appeals: 4,
        }
    }

    #[test]
    fn a_governance_round_trips() {
        let g = governance();
        let mut buf = [0u8; Governance::LEN];
        g.encode(&mut buf).unwrap();
        assert_eq!(Governance::decode(&buf).unwrap(), g);
    }

    #[test]
    fn key_sets_must_be_well_formed() {
        let g = governance();
        assert!(g.emergency.validate().is_ok());
        assert_eq!(g.emergency.index_of(&key(3)), Some(2));
        assert_eq!(g.emergency.index_of(&key(4)), None);
        let mut bad = g.emergency;
        bad.threshold = 4;
        assert!(bad.validate().is_err(), "M > N");
        let mut bad = g.emergency;
        bad.threshold = 0;
        assert!(bad.validate().is_err(), "M = 0");
        let mut bad = g.emergency;
        bad.keys[2] = key(1);
        assert!(bad.validate().is_err(), "duplicate key");
        let mut bad = g.emergency;
        bad.keys[5] = key(6);
        assert!(bad.validate().is_err(), "a key beyond N");
        let mut bad = g.emergency;
        bad.keys[1] = [0; 32];
        assert!(bad.validate().is_err(), "a zero key within N");
    }

    #[test]
    fn params_are_range_checked() {
        let ok = governance().params;
        assert!(ok.validate().is_ok());
        for bad in [
            Params {
                approval_threshold_bps: 0,
                ..ok
            },
            Params {
                quorum_bps: 10_001,
                ..ok
            },
            Params {
                voting_period_s: 0,
                ..ok
            },
            Params { timelock_s: -1, ..ok },
            Params {
                timelock_s: 400 * 86_400,
                ..ok
            },
        ] {
            assert_eq!(bad.validate(), Err(QgError::InvalidInstruction));
        }
    }
}

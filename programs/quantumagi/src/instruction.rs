//! The program's instructions: each one's data (a tag byte, then fixed-width little-endian fields) and the
//! accounts it takes, in order. Clients encode with [`Instruction::encode`]; the program decodes with
//! [`Instruction::decode`]; a test holds them inverse.
//!
//! Accounts (`s` signer, `w` writable). `clock` is the Clock sysvar, `rent` the Rent sysvar, `system` the
//! System program. Accounts marked *new* are created by the instruction, paid by the first signer.
//!
//! | tag | instruction | accounts |
//! |---|---|---|
//! | 0 | `Initialize` | creator (s, w), governance (w, new), system, rent |
//! | 1 | `AddMember` (setup) | creator (s, w), governance (w), member (w, new), system, rent, clock |
//! | 2 | `FinishSetup` | creator (s), governance (w) |
//! | 3 | `Propose` | proposer (s, w), governance (w), proposer's member, proposal (w, new), system, rent, clock |
//! | 4 | `Vote` | voter (s, w), governance, voter's member, proposal (w), vote record (w, new), system, rent, clock |
//! | 5 | `Finalize` | governance, proposal (w), clock |
//! | 6 | `Execute` | executor (s, w), governance (w), proposal (w), target (w), system, rent, clock |
//! | 7 | `Cancel` | proposer (s), governance, proposal (w) |
//! | 8 | `EmergencyApprove` | emergency member (s), governance (w), clock, [proposal (w) for a veto] |
//! | 9 | `AcceptAuthority` | governance (w), then the new set's signers (s) |
//! | 10 | `SubmitAppeal` | appellant (s, w), governance (w), appeal (w, new), system, rent, clock |
//! | 11 | `RuleAppeal` | reviewer (s), governance, reviewer's member, appeal (w), clock |
//! | 12 | `AnchorCheckpoint` | anchor authority (s, w), governance, anchor (w, new on first use), system, rent, clock |
//!
//! `Execute`'s target is the account the proposal changes: the policy record (`SetPolicy`), the member
//! record (`SetMember`), or the governance again for the other kinds.

use crate::error::QgError;
use crate::state::{Key, KeySet, PAYLOAD_LEN, Params, Reader, Writer};

/// An instruction with its arguments.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub enum Instruction {
    /// Create a governance with its first constitution, voting rules, emergency set and anchor authority.
    /// The creator then adds the initial council and finishes the setup.
    Initialize {
        /// The constitution's hash.
        constitution_hash: Key,
        /// Its version.
        constitution_version: u64,
        /// Voting rules.
        params: Params,
        /// The emergency set (M-of-N).
        emergency: KeySet,
        /// Who may anchor audit-log checkpoints.
        anchor_authority: Key,
    },
    /// While the setup is open: register a council member.
    AddMember {
        /// The member's key.
        key: Key,
        /// Voting weight (1–1,000,000).
        weight: u32,
        /// Role bits.
        roles: u8,
    },
    /// Close the setup: from now on the council changes only through proposals.
    FinishSetup,
    /// Propose a change.
    Propose {
        /// What kind of change ([`crate::state::ProposalKind`]).
        kind: u8,
        /// Its payload.
        payload: [u8; PAYLOAD_LEN],
    },
    /// Vote (0 no, 1 yes, 2 abstain) with the weight the member register gives.
    Vote {
        /// The choice.
        choice: u8,
    },
    /// Close the vote once it is decided or its period is over.
    Finalize,
    /// Apply a passed proposal after its timelock.
    Execute,
    /// Withdraw one's own proposal while it is being voted on.
    Cancel,
    /// Approve an emergency motion (halt, resume, veto, authority transfer); it takes effect at M approvals.
    EmergencyApprove {
        /// [`crate::state::MotionKind`].
        kind: u8,
        /// Halt: the reason's hash; veto: the proposal's address; resume: zero; transfer: ignored (the hash of
        /// `new_set` is used).
        payload: Key,
        /// Transfer only: the new emergency set (otherwise empty).
        new_set: KeySet,
    },
    /// The pending new emergency set accepts: M of its keys sign.
    AcceptAuthority,
    /// Appeal an ACGS decision.
    SubmitAppeal {
        /// SHA-256 of the decision's id.
        decision_hash: Key,
        /// SHA-256 of the appellant's statement.
        reason_hash: Key,
    },
    /// Rule on an appeal (2 upheld, 3 overturned).
    RuleAppeal {
        /// The ruling.
        ruling: u8,
        /// SHA-256 of the ruling's text.
        ruling_hash: Key,
    },
    /// Anchor a signed checkpoint of the ACGS audit log.
    AnchorCheckpoint {
        /// The log's tree size.
        tree_size: u64,
        /// Its Merkle root.
        root: Key,
        /// The checkpoint's time (unix seconds).
        checkpoint_time: i64,
    },
}

/// The longest instruction data (`Initialize`).
pub const MAX_DATA_LEN: usize = 1 + 32 + 8 + Params::LEN + KeySet::LEN + 32;

impl Instruction {
    /// Decode instruction data; anything malformed or with trailing bytes is refused.
    pub fn decode(data: &[u8]) -> Result<Self, QgError> {
        let mut r = Reader::new(data);
        let bad = |_| QgError::InvalidInstruction;
        let tag = r.u8().map_err(bad)?;
        let ix = match tag {
            0 => Self::Initialize {
                constitution_hash: r.key().map_err(bad)?,
                constitution_version: r.u64().map_err(bad)?,
                params: Params::read(&mut r).map_err(bad)?,
                emergency: KeySet::read(&mut r).map_err(bad)?,
                anchor_authority: r.key().map_err(bad)?,
            },
            1 => Self::AddMember {
                key: r.key().map_err(bad)?,
                weight: r.u32().map_err(bad)?,
                roles: r.u8().map_err(bad)?,
            },
            2 => Self::FinishSetup,
            3 => {
                let kind = r.u8().map_err(bad)?;
                let mut payload = [0u8; PAYLOAD_LEN];
                payload.copy_from_slice(r.take(PAYLOAD_LEN).map_err(bad)?);
                Self::Propose { kind, payload }
            }
            4 => Self::Vote {
                choice: r.u8().map_err(bad)?,
            },
            5 => Self::Finalize,
            6 => Self::Execute,
            7 => Self::Cancel,
            8 => Self::EmergencyApprove {
                kind: r.u8().map_err(bad)?,
                payload: r.key().map_err(bad)?,
                new_set: KeySet::read(&mut r).map_err(bad)?,
            },
            9 => Self::AcceptAuthority,
            10 => Self::SubmitAppeal {
                decision_hash: r.key().map_err(bad)?,
                reason_hash: r.key().map_err(bad)?,
            },
            11 => Self::RuleAppeal {
                ruling: r.u8().map_err(bad)?,
                ruling_hash: r.key().map_err(bad)?,
            },
            12 => Self::AnchorCheckpoint {
                tree_size: r.u64().map_err(bad)?,
                root: r.key().map_err(bad)?,
                checkpoint_time: r.i64().map_err(bad)?,
            },
            _ => return Err(QgError::InvalidInstruction),
        };
        if !r.is_done() {
            return Err(QgError::InvalidInstruction);
        }
        Ok(ix)
    }

    /// Encode into `out`; returns the number of bytes written.
    pub fn encode(&self, out: &mut [u8; MAX_DATA_LEN]) -> Result<usize, QgError> {
        let mut w = Writer::new(out);
        match self {
            Self::Initialize {
                constitution_hash,
                constitution_version,
                params,
                emergency,
                anchor_authority,
            } => {
                w.u8(0)?;
                w.put(constitution_hash)?;
                w.u64(*constitution_version)?;
                params.write(&mut w)?;
                emergency.write(&mut w)?;
                w.put(anchor_authority)?;
            }
            Self::AddMember { key, weight, roles } => {
                w.u8(1)?;
                w.put(key)?;
                w.u32(*weight)?;
                w.u8(*roles)?;
            }
            Self::FinishSetup => w.u8(2)?,
            Self::Propose { kind, payload } => {
                w.u8(3)?;
                w.u8(*kind)?;
                w.put(payload)?;
            }
            Self::Vote { choice } => {
                w.u8(4)?;
                w.u8(*choice)?;
            }
            Self::Finalize => w.u8(5)?,
            Self::Execute => w.u8(6)?,
            Self::Cancel => w.u8(7)?,
            Self::EmergencyApprove { kind, payload, new_set } => {
                w.u8(8)?;
                w.u8(*kind)?;
                w.put(payload)?;
                new_set.write(&mut w)?;
            }
            Self::AcceptAuthority => w.u8(9)?,
            Self::SubmitAppeal {
                decision_hash,
                reason_hash,
            } => {
                w.u8(10)?;
                w.put(decision_hash)?;
                w.put(reason_hash)?;
            }
            Self::RuleAppeal { ruling, ruling_hash } => {
                w.u8(11)?;
                w.u8(*ruling)?;
                w.put(ruling_hash)?;
            }
            Self::AnchorCheckpoint {
                tree_size,
                root,
                checkpoint_time,
            } => {
                w.u8(12)?;
                w.u64(*tree_size)?;
                w.put(root)?;
                w.i64(*checkpoint_time)?;
            }
        }
        Ok(w.len())
    }
}

/// Proposal payloads, written by clients and read by `Execute`.
pub mod payload {
    use super::*;

    /// `UpdateConstitution`: the new hash and version.
    pub fn update_constitution(hash: &Key, version: u64) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[..32].copy_from_slice(hash);
        out[32..40].copy_from_slice(&version.to_le_bytes());
        out
    }

    /// `SetPolicy`: the policy's hash and whether it becomes active.
    pub fn set_policy(policy_hash: &Key, active: bool) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[..32].copy_from_slice(policy_hash);
        out[32] = u8::from(active);
        out
    }

    /// `SetParams`: the new voting rules.
    pub fn set_params(params: &Params) -> Result<[u8; PAYLOAD_LEN], QgError> {
        let mut out = [0u8; PAYLOAD_LEN];
        params.write(&mut Writer::new(&mut out))?;
        Ok(out)
    }

    /// `SetMember`: the member's key, weight (0 removes) and roles.
    pub fn set_member(key: &Key, weight: u32, roles: u8) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[..32].copy_from_slice(key);
        out[32..36].copy_from_slice(&weight.to_le_bytes());
        out[36] = roles;
        out
    }

    /// `SetAnchorAuthority`: the new key.
    pub fn set_anchor_authority(key: &Key) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[..32].copy_from_slice(key);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_decode_are_inverse_and_strict() {
        let mut set = KeySet::EMPTY;
        set.threshold = 1;
        set.count = 1;
        set.keys[0] = [4; 32];
        let params = Params {
            approval_threshold_bps: 6000,
            quorum_bps: 4000,
            voting_period_s: 86_400,
            timelock_s: 3600,
        };
        let all = [
            Instruction::Initialize {
                constitution_hash: [1; 32],
                constitution_version: 2,
                params,
                emergency: set,
                anchor_authority: [3; 32],
            },
            Instruction::AddMember {
                key: [5; 32],
                weight: 10,
                roles: 3,
            },
            Instruction::FinishSetup,
            Instruction::Propose {
                kind: 1,
                payload: payload::update_constitution(&[6; 32], 3),
            },
            Instruction::Vote { choice: 1 },
            Instruction::Finalize,
            Instruction::Execute,
            Instruction::Cancel,
            Instruction::EmergencyApprove {
                kind: 1,
                payload: [7; 32],
                new_set: KeySet::EMPTY,
            },
            Instruction::AcceptAuthority,
            Instruction::SubmitAppeal {
                decision_hash: [8; 32],
                reason_hash: [9; 32],
            },
            Instruction::RuleAppeal {
                ruling: 2,
                ruling_hash: [10; 32],
            },
            Instruction::AnchorCheckpoint {
                tree_size: 99,
                root: [11; 32],
                checkpoint_time: 1_800_000_000,
            },
        ];
        for ix in all {
            let mut buf = [0u8; MAX_DATA_LEN];
            let n = ix.encode(&mut buf).unwrap();
            assert_eq!(Instruction::decode(&buf[..n]), Ok(ix));
            // One byte short or one byte extra is malformed.
            if n > 1 {
                assert_eq!(Instruction::decode(&buf[..n - 1]), Err(QgError::InvalidInstruction));
            }
            let mut longer = std::vec::Vec::from(&buf[..n]);
            longer.push(0);
            assert_eq!(Instruction::decode(&longer), Err(QgError::InvalidInstruction));
        }
        assert_eq!(Instruction::decode(&[]), Err(QgError::InvalidInstruction));
        assert_eq!(Instruction::decode(&[13]), Err(QgError::InvalidInstruction));
    }
}

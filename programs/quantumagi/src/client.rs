//! Building the program's instructions off chain (host builds only): the account lists in the order the
//! program reads them, with every program-derived address computed here, and the instruction data. `acgs chain`
//! sends these over JSON-RPC; the SVM tests send the very same ones.

use std::vec;
use std::vec::Vec;

use pinocchio::Address;

use crate::error::QgError;
use crate::instruction::{Instruction, MAX_DATA_LEN};
use crate::state::{Key, KeySet, PAYLOAD_LEN, Params, ProposalKind, Reader, seeds};

/// The System program's address.
pub const SYSTEM_PROGRAM: Key = [0; 32];
/// The Clock sysvar's address.
pub const CLOCK_SYSVAR: Key = pinocchio::sysvars::clock::CLOCK_ID.to_bytes();
/// The Rent sysvar's address.
pub const RENT_SYSVAR: Key = pinocchio::sysvars::rent::RENT_ID.to_bytes();

/// An account an instruction uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountMeta {
    /// Its address.
    pub pubkey: Key,
    /// Must sign the transaction.
    pub is_signer: bool,
    /// Is written.
    pub is_writable: bool,
}

impl AccountMeta {
    fn readonly(pubkey: Key) -> Self {
        Self {
            pubkey,
            is_signer: false,
            is_writable: false,
        }
    }
    fn writable(pubkey: Key) -> Self {
        Self {
            pubkey,
            is_signer: false,
            is_writable: true,
        }
    }
    fn signer(pubkey: Key) -> Self {
        Self {
            pubkey,
            is_signer: true,
            is_writable: false,
        }
    }
    fn payer(pubkey: Key) -> Self {
        Self {
            pubkey,
            is_signer: true,
            is_writable: true,
        }
    }
}

/// One instruction for the program, ready to put in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInstruction {
    /// The program.
    pub program_id: Key,
    /// Its accounts, in order.
    pub accounts: Vec<AccountMeta>,
    /// Its data.
    pub data: Vec<u8>,
}

/// The program-derived address of `seeds` and its bump.
pub fn pda(program_id: &Key, seeds: &[&[u8]]) -> (Key, u8) {
    let (address, bump) = Address::find_program_address(seeds, &Address::new_from_array(*program_id));
    (address.to_bytes(), bump)
}

/// The governance created by `creator`.
pub fn governance_address(program_id: &Key, creator: &Key) -> Key {
    pda(program_id, &[seeds::GOVERNANCE, creator]).0
}

fn encode(ix: &Instruction) -> Result<Vec<u8>, QgError> {
    let mut buf = [0u8; MAX_DATA_LEN];
    let n = ix.encode(&mut buf)?;
    Ok(buf.get(..n).ok_or(QgError::InvalidInstruction)?.to_vec())
}

/// `Initialize`'s arguments.
#[derive(Debug, Clone, Copy)]
pub struct InitializeArgs {
    /// The constitution's hash.
    pub constitution_hash: Key,
    /// Its version.
    pub constitution_version: u64,
    /// Voting rules.
    pub params: Params,
    /// The emergency set.
    pub emergency: KeySet,
    /// Who may anchor audit-log checkpoints.
    pub anchor_authority: Key,
}

/// Instructions for one governance of one deployment of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GovernanceClient {
    /// The program's address.
    pub program_id: Key,
    /// The governance account's address.
    pub governance: Key,
}

impl GovernanceClient {
    /// The governance `creator` creates (or created) under `program_id`.
    pub fn new(program_id: Key, creator: &Key) -> Self {
        Self {
            program_id,
            governance: governance_address(&program_id, creator),
        }
    }

    fn ix(&self, accounts: Vec<AccountMeta>, instruction: &Instruction) -> Result<ClientInstruction, QgError> {
        Ok(ClientInstruction {
            program_id: self.program_id,
            accounts,
            data: encode(instruction)?,
        })
    }

    /// A council member's register entry.
    pub fn member_address(&self, member: &Key) -> Key {
        pda(&self.program_id, &[seeds::MEMBER, &self.governance, member]).0
    }

    /// Proposal `id`.
    pub fn proposal_address(&self, id: u64) -> Key {
        pda(
            &self.program_id,
            &[seeds::PROPOSAL, &self.governance, &id.to_le_bytes()],
        )
        .0
    }

    /// `voter`'s vote on proposal `id`.
    pub fn vote_address(&self, id: u64, voter: &Key) -> Key {
        pda(&self.program_id, &[seeds::VOTE, &self.proposal_address(id), voter]).0
    }

    /// The appeal of the decision with this hash.
    pub fn appeal_address(&self, decision_hash: &Key) -> Key {
        pda(&self.program_id, &[seeds::APPEAL, &self.governance, decision_hash]).0
    }

    /// The audit-log anchor.
    pub fn anchor_address(&self) -> Key {
        pda(&self.program_id, &[seeds::ANCHOR, &self.governance]).0
    }

    /// The record of the policy with this hash.
    pub fn policy_address(&self, policy_hash: &Key) -> Key {
        pda(&self.program_id, &[seeds::POLICY, &self.governance, policy_hash]).0
    }

    /// `Initialize`, signed and paid by the creator.
    pub fn initialize(&self, creator: &Key, args: &InitializeArgs) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::payer(*creator),
                AccountMeta::writable(self.governance),
                AccountMeta::readonly(SYSTEM_PROGRAM),
                AccountMeta::readonly(RENT_SYSVAR),
            ],
            &Instruction::Initialize {
                constitution_hash: args.constitution_hash,
                constitution_version: args.constitution_version,
                params: args.params,
                emergency: args.emergency,
                anchor_authority: args.anchor_authority,
            },
        )
    }

    /// `AddMember` (setup only), by the creator.
    pub fn add_member(
        &self,
        creator: &Key,
        member: &Key,
        weight: u32,
        roles: u8,
    ) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::payer(*creator),
                AccountMeta::writable(self.governance),
                AccountMeta::writable(self.member_address(member)),
                AccountMeta::readonly(SYSTEM_PROGRAM),
                AccountMeta::readonly(RENT_SYSVAR),
                AccountMeta::readonly(CLOCK_SYSVAR),
            ],
            &Instruction::AddMember {
                key: *member,
                weight,
                roles,
            },
        )
    }

    /// `FinishSetup`, by the creator.
    pub fn finish_setup(&self, creator: &Key) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![AccountMeta::signer(*creator), AccountMeta::writable(self.governance)],
            &Instruction::FinishSetup,
        )
    }

    /// `Propose` as proposal `id` (the governance's `next_proposal_id`).
    pub fn propose(
        &self,
        proposer: &Key,
        id: u64,
        kind: ProposalKind,
        payload: &[u8; PAYLOAD_LEN],
    ) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::payer(*proposer),
                AccountMeta::writable(self.governance),
                AccountMeta::readonly(self.member_address(proposer)),
                AccountMeta::writable(self.proposal_address(id)),
                AccountMeta::readonly(SYSTEM_PROGRAM),
                AccountMeta::readonly(RENT_SYSVAR),
                AccountMeta::readonly(CLOCK_SYSVAR),
            ],
            &Instruction::Propose {
                kind: kind as u8,
                payload: *payload,
            },
        )
    }

    /// `Vote` on proposal `id` (0 no, 1 yes, 2 abstain).
    pub fn vote(&self, voter: &Key, id: u64, choice: u8) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::payer(*voter),
                AccountMeta::readonly(self.governance),
                AccountMeta::readonly(self.member_address(voter)),
                AccountMeta::writable(self.proposal_address(id)),
                AccountMeta::writable(self.vote_address(id, voter)),
                AccountMeta::readonly(SYSTEM_PROGRAM),
                AccountMeta::readonly(RENT_SYSVAR),
                AccountMeta::readonly(CLOCK_SYSVAR),
            ],
            &Instruction::Vote { choice },
        )
    }

    /// `Finalize` proposal `id` (anyone may).
    pub fn finalize(&self, id: u64) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::readonly(self.governance),
                AccountMeta::writable(self.proposal_address(id)),
                AccountMeta::readonly(CLOCK_SYSVAR),
            ],
            &Instruction::Finalize,
        )
    }

    /// The account `Execute` changes for a proposal of `kind` with `payload`.
    pub fn execute_target(&self, kind: ProposalKind, payload: &[u8; PAYLOAD_LEN]) -> Result<Key, QgError> {
        let mut r = Reader::new(payload);
        Ok(match kind {
            ProposalKind::SetPolicy => self.policy_address(&r.key()?),
            ProposalKind::SetMember => self.member_address(&r.key()?),
            ProposalKind::UpdateConstitution | ProposalKind::SetParams | ProposalKind::SetAnchorAuthority => {
                self.governance
            }
        })
    }

    /// `Execute` proposal `id` of `kind` with `payload` (anyone may; the executor pays for new records).
    pub fn execute(
        &self,
        executor: &Key,
        id: u64,
        kind: ProposalKind,
        payload: &[u8; PAYLOAD_LEN],
    ) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::payer(*executor),
                AccountMeta::writable(self.governance),
                AccountMeta::writable(self.proposal_address(id)),
                AccountMeta::writable(self.execute_target(kind, payload)?),
                AccountMeta::readonly(SYSTEM_PROGRAM),
                AccountMeta::readonly(RENT_SYSVAR),
                AccountMeta::readonly(CLOCK_SYSVAR),
            ],
            &Instruction::Execute,
        )
    }

    /// `Cancel` proposal `id`, by its proposer.
    pub fn cancel(&self, proposer: &Key, id: u64) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::signer(*proposer),
                AccountMeta::readonly(self.governance),
                AccountMeta::writable(self.proposal_address(id)),
            ],
            &Instruction::Cancel,
        )
    }

    fn emergency(
        &self,
        member: &Key,
        kind: u8,
        payload: Key,
        new_set: KeySet,
        extra: Option<AccountMeta>,
    ) -> Result<ClientInstruction, QgError> {
        let mut accounts = vec![
            AccountMeta::signer(*member),
            AccountMeta::writable(self.governance),
            AccountMeta::readonly(CLOCK_SYSVAR),
        ];
        accounts.extend(extra);
        self.ix(accounts, &Instruction::EmergencyApprove { kind, payload, new_set })
    }

    /// An emergency member's approval to halt, for the reason with this hash.
    pub fn approve_halt(&self, member: &Key, reason_hash: &Key) -> Result<ClientInstruction, QgError> {
        self.emergency(member, 1, *reason_hash, KeySet::EMPTY, None)
    }

    /// An emergency member's approval to resume.
    pub fn approve_resume(&self, member: &Key) -> Result<ClientInstruction, QgError> {
        self.emergency(member, 2, [0; 32], KeySet::EMPTY, None)
    }

    /// An emergency member's approval to veto proposal `id`.
    pub fn approve_veto(&self, member: &Key, id: u64) -> Result<ClientInstruction, QgError> {
        let proposal = self.proposal_address(id);
        self.emergency(
            member,
            3,
            proposal,
            KeySet::EMPTY,
            Some(AccountMeta::writable(proposal)),
        )
    }

    /// An emergency member's approval to hand the emergency authority to `new_set`.
    pub fn approve_transfer(&self, member: &Key, new_set: &KeySet) -> Result<ClientInstruction, QgError> {
        self.emergency(member, 4, [0; 32], *new_set, None)
    }

    /// `AcceptAuthority`, signed by keys of the pending set.
    pub fn accept_authority(&self, signers: &[Key]) -> Result<ClientInstruction, QgError> {
        let mut accounts = vec![AccountMeta::writable(self.governance)];
        accounts.extend(signers.iter().map(|k| AccountMeta::signer(*k)));
        self.ix(accounts, &Instruction::AcceptAuthority)
    }

    /// `SubmitAppeal` of the decision with this hash.
    pub fn submit_appeal(
        &self,
        appellant: &Key,
        decision_hash: &Key,
        reason_hash: &Key,
    ) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::payer(*appellant),
                AccountMeta::writable(self.governance),
                AccountMeta::writable(self.appeal_address(decision_hash)),
                AccountMeta::readonly(SYSTEM_PROGRAM),
                AccountMeta::readonly(RENT_SYSVAR),
                AccountMeta::readonly(CLOCK_SYSVAR),
            ],
            &Instruction::SubmitAppeal {
                decision_hash: *decision_hash,
                reason_hash: *reason_hash,
            },
        )
    }

    /// `RuleAppeal` on the appeal of the decision with this hash (2 upheld, 3 overturned).
    pub fn rule_appeal(
        &self,
        reviewer: &Key,
        decision_hash: &Key,
        ruling: u8,
        ruling_hash: &Key,
    ) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::signer(*reviewer),
                AccountMeta::readonly(self.governance),
                AccountMeta::readonly(self.member_address(reviewer)),
                AccountMeta::writable(self.appeal_address(decision_hash)),
                AccountMeta::readonly(CLOCK_SYSVAR),
            ],
            &Instruction::RuleAppeal {
                ruling,
                ruling_hash: *ruling_hash,
            },
        )
    }

    /// `AnchorCheckpoint`, by the anchor authority.
    pub fn anchor_checkpoint(
        &self,
        authority: &Key,
        tree_size: u64,
        root: &Key,
        checkpoint_time: i64,
    ) -> Result<ClientInstruction, QgError> {
        self.ix(
            vec![
                AccountMeta::payer(*authority),
                AccountMeta::readonly(self.governance),
                AccountMeta::writable(self.anchor_address()),
                AccountMeta::readonly(SYSTEM_PROGRAM),
                AccountMeta::readonly(RENT_SYSVAR),
                AccountMeta::readonly(CLOCK_SYSVAR),
            ],
            &Instruction::AnchorCheckpoint {
                tree_size,
                root: *root,
                checkpoint_time,
            },
        )
    }
}

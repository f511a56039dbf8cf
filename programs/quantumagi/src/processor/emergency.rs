//! The emergency set's powers, each needing M of its N members: halt (fail closed: no proposal is made or
//! executed), resume, veto of a proposal not yet executed, and the two-step transfer of the emergency
//! authority to a new set, which takes over only when M of the new keys accept.

use pinocchio::ProgramResult;

use super::Ctx;
use crate::accounts::{AccountIter, key_of, load, now, store};
use crate::error::QgError;
use crate::events::{emit, names};
use crate::rules;
use crate::state::{Governance, Key, KeySet, Motion, MotionKind, Proposal, ProposalState};

#[inline(never)]
pub(crate) fn approve(ctx: &Ctx<'_>, kind: u8, payload: &Key, new_set: &KeySet) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let approver = it.signer()?;
    let governance = it.writable()?;
    let clock = it.account()?;
    let mut gov: Governance = load(governance, ctx.program_id)?;
    let governance_key = key_of(governance);
    let kind = MotionKind::from_u8(kind)?;
    let t = now(clock)?;
    // What the motion applies to, checked before anyone's approval counts.
    let mut vetoed: Option<(&pinocchio::AccountView, Proposal)> = None;
    let motion_payload = match kind {
        MotionKind::None => return Err(QgError::InvalidInstruction.into()),
        MotionKind::Halt => {
            if gov.halted {
                return Err(QgError::Halted.into());
            }
            if *payload == [0; 32] {
                return Err(QgError::InvalidInstruction.into());
            }
            *payload
        }
        MotionKind::Resume => {
            if !gov.halted {
                return Err(QgError::NotHalted.into());
            }
            if *payload != [0; 32] {
                return Err(QgError::InvalidInstruction.into());
            }
            [0; 32]
        }
        MotionKind::Veto => {
            let account = it.writable()?;
            let proposal: Proposal = load(account, ctx.program_id)?;
            if proposal.governance != governance_key || key_of(account) != *payload {
                return Err(QgError::AccountMismatch.into());
            }
            if !matches!(proposal.state, ProposalState::Voting | ProposalState::Succeeded) {
                return Err(QgError::WrongProposalState.into());
            }
            vetoed = Some((account, proposal));
            *payload
        }
        MotionKind::TransferAuthority => {
            new_set.validate()?;
            solana_sha256_hasher::hashv(&[&new_set.to_bytes()?]).to_bytes()
        }
    };
    if kind != MotionKind::TransferAuthority && *new_set != KeySet::EMPTY {
        return Err(QgError::InvalidInstruction.into());
    }
    let approver_key = key_of(approver);
    let emergency = gov.emergency;
    let approval = rules::Approval {
        approver: approver_key,
        kind,
        payload: motion_payload,
        now: t,
    };
    let reached = rules::approve_motion(&mut gov.motion, &emergency, &approval)?;
    let approvals = if reached {
        emergency.threshold
    } else {
        gov.motion.approvals.count_ones() as u8
    };
    emit(&[
        names::MOTION_APPROVED,
        &governance_key,
        &approver_key,
        &[kind as u8],
        &motion_payload,
        &[approvals],
    ]);
    if reached {
        match kind {
            MotionKind::Halt => {
                gov.halted = true;
                gov.halt_reason = motion_payload;
                gov.halted_since = t;
                emit(&[names::HALTED, &governance_key, &motion_payload]);
            }
            MotionKind::Resume => {
                gov.halted = false;
                gov.halt_reason = [0; 32];
                gov.halted_since = 0;
                emit(&[names::RESUMED, &governance_key]);
            }
            MotionKind::Veto => {
                let (account, mut proposal) = vetoed.ok_or(QgError::WrongAccount)?;
                proposal.state = ProposalState::Vetoed;
                store(account, ctx.program_id, &proposal)?;
                emit(&[names::VETOED, &key_of(account)]);
            }
            MotionKind::TransferAuthority => {
                gov.pending_emergency = *new_set;
                emit(&[names::TRANSFER_PROPOSED, &governance_key, &motion_payload]);
            }
            MotionKind::None => return Err(QgError::InvalidInstruction.into()),
        }
    }
    store(governance, ctx.program_id, &gov)
}

#[inline(never)]
pub(crate) fn accept_authority(ctx: &Ctx<'_>) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let governance = it.writable()?;
    let mut gov: Governance = load(governance, ctx.program_id)?;
    let pending = gov.pending_emergency;
    if pending.count == 0 {
        return Err(QgError::NoPendingTransfer.into());
    }
    let signers = it
        .rest()
        .iter()
        .filter(|a| a.is_signer())
        .map(|a| a.address().as_array());
    if rules::distinct_signers(&pending, signers) < u32::from(pending.threshold) {
        return Err(QgError::NotEnoughSigners.into());
    }
    let set_hash = solana_sha256_hasher::hashv(&[&pending.to_bytes()?]).to_bytes();
    gov.emergency = pending;
    gov.pending_emergency = KeySet::EMPTY;
    // Approvals counted by the old set's positions mean nothing to the new one.
    gov.motion = Motion::NONE;
    store(governance, ctx.program_id, &gov)?;
    emit(&[names::TRANSFER_ACCEPTED, &key_of(governance), &set_hash]);
    Ok(())
}

//! Creating a governance and its initial council: `Initialize`, `AddMember` (only while the setup is open,
//! only by the creator) and `FinishSetup`, after which the council changes only through proposals.

use pinocchio::ProgramResult;

use super::Ctx;
use crate::accounts::{AccountIter, NewAccount, create_program_account, key_of, load, now, store};
use crate::error::QgError;
use crate::events::{emit, names};
use crate::state::{
    AccountLayout, Governance, Key, KeySet, MAX_MEMBERS, MAX_WEIGHT, Member, Motion, Params, roles, seeds,
};

/// `Initialize`'s arguments.
pub(crate) struct InitArgs {
    pub constitution_hash: Key,
    pub constitution_version: u64,
    pub params: Params,
    pub emergency: KeySet,
    pub anchor_authority: Key,
}

#[inline(never)]
pub(crate) fn initialize(ctx: &Ctx<'_>, args: &InitArgs) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let creator = it.payer()?;
    let governance = it.writable()?;
    let system = it.account()?;
    let rent = it.account()?;
    args.params.validate()?;
    args.emergency.validate()?;
    if args.anchor_authority == [0; 32] || args.constitution_hash == [0; 32] {
        return Err(QgError::InvalidInstruction.into());
    }
    let creator_key = key_of(creator);
    let bump = create_program_account(
        &NewAccount {
            payer: creator,
            account: governance,
            rent,
            system,
            space: Governance::LEN,
        },
        &[seeds::GOVERNANCE, &creator_key],
        ctx.program_id,
    )?;
    let state = Governance {
        bump,
        setup_open: true,
        halted: false,
        creator: creator_key,
        constitution_hash: args.constitution_hash,
        constitution_version: args.constitution_version,
        params: args.params,
        next_proposal_id: 1,
        member_count: 0,
        total_weight: 0,
        emergency: args.emergency,
        halt_reason: [0; 32],
        halted_since: 0,
        motion: Motion::NONE,
        pending_emergency: KeySet::EMPTY,
        anchor_authority: args.anchor_authority,
        appeals: 0,
    };
    store(governance, ctx.program_id, &state)?;
    emit(&[
        names::INITIALIZED,
        &key_of(governance),
        &creator_key,
        &args.constitution_hash,
        &args.constitution_version.to_le_bytes(),
    ]);
    Ok(())
}

/// Valid roles and weight for an active member.
#[inline(never)]
pub(crate) fn check_member_terms(weight: u32, member_roles: u8) -> Result<(), QgError> {
    if weight == 0 || weight > MAX_WEIGHT {
        return Err(QgError::CouncilLimit);
    }
    if member_roles == 0 || member_roles & !roles::ALL != 0 {
        return Err(QgError::InvalidInstruction);
    }
    Ok(())
}

#[inline(never)]
pub(crate) fn add_member(ctx: &Ctx<'_>, key: &Key, weight: u32, member_roles: u8) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let creator = it.payer()?;
    let governance = it.writable()?;
    let member = it.writable()?;
    let system = it.account()?;
    let rent = it.account()?;
    let clock = it.account()?;
    let mut gov: Governance = load(governance, ctx.program_id)?;
    if gov.creator != key_of(creator) {
        return Err(QgError::Unauthorized.into());
    }
    if !gov.setup_open {
        return Err(QgError::SetupClosed.into());
    }
    check_member_terms(weight, member_roles)?;
    if *key == [0; 32] {
        return Err(QgError::InvalidInstruction.into());
    }
    if gov.member_count >= MAX_MEMBERS {
        return Err(QgError::CouncilLimit.into());
    }
    if member.owned_by(ctx.program_id) {
        return Err(QgError::AlreadyExists.into());
    }
    let governance_key = key_of(governance);
    let bump = create_program_account(
        &NewAccount {
            payer: creator,
            account: member,
            rent,
            system,
            space: Member::LEN,
        },
        &[seeds::MEMBER, &governance_key, key],
        ctx.program_id,
    )?;
    let record = Member {
        bump,
        active: true,
        roles: member_roles,
        weight,
        governance: governance_key,
        key: *key,
        added_at: now(clock)?,
    };
    store(member, ctx.program_id, &record)?;
    gov.member_count = gov.member_count.checked_add(1).ok_or(QgError::Overflow)?;
    gov.total_weight = crate::rules::add(gov.total_weight, u64::from(weight))?;
    store(governance, ctx.program_id, &gov)?;
    emit(&[
        names::MEMBER_SET,
        &governance_key,
        key,
        &weight.to_le_bytes(),
        &[member_roles],
    ]);
    Ok(())
}

#[inline(never)]
pub(crate) fn finish_setup(ctx: &Ctx<'_>) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let creator = it.signer()?;
    let governance = it.writable()?;
    let mut gov: Governance = load(governance, ctx.program_id)?;
    if gov.creator != key_of(creator) {
        return Err(QgError::Unauthorized.into());
    }
    if !gov.setup_open {
        return Err(QgError::SetupClosed.into());
    }
    if gov.member_count == 0 || gov.total_weight == 0 {
        return Err(QgError::CouncilLimit.into());
    }
    gov.setup_open = false;
    store(governance, ctx.program_id, &gov)?;
    emit(&[
        names::SETUP_FINISHED,
        &key_of(governance),
        &gov.member_count.to_le_bytes(),
        &gov.total_weight.to_le_bytes(),
    ]);
    Ok(())
}

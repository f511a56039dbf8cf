//! Records kept on chain for the off-chain system: appeals of ACGS decisions (submitted by anyone, ruled on
//! by council members with the reviewer role, never by the appellant) and anchors of the ACGS audit log's
//! signed checkpoints (by the anchor authority; the anchored tree never shrinks).

use pinocchio::ProgramResult;

use super::Ctx;
use crate::accounts::{AccountIter, NewAccount, create_program_account, key_of, load, now, store};
use crate::error::QgError;
use crate::events::{emit, names};
use crate::rules;
use crate::state::{AccountLayout, Anchor, Appeal, AppealStatus, Governance, Key, Member, roles, seeds};

#[inline(never)]
pub(crate) fn submit_appeal(ctx: &Ctx<'_>, decision_hash: &Key, reason_hash: &Key) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let appellant = it.payer()?;
    let governance = it.writable()?;
    let appeal = it.writable()?;
    let system = it.account()?;
    let rent = it.account()?;
    let clock = it.account()?;
    let mut gov: Governance = load(governance, ctx.program_id)?;
    if *decision_hash == [0; 32] || *reason_hash == [0; 32] {
        return Err(QgError::InvalidInstruction.into());
    }
    if appeal.owned_by(ctx.program_id) {
        return Err(QgError::AlreadyExists.into());
    }
    let governance_key = key_of(governance);
    let bump = create_program_account(
        &NewAccount {
            payer: appellant,
            account: appeal,
            rent,
            system,
            space: Appeal::LEN,
        },
        &[seeds::APPEAL, &governance_key, decision_hash],
        ctx.program_id,
    )?;
    let appellant_key = key_of(appellant);
    let record = Appeal {
        bump,
        status: AppealStatus::Pending,
        governance: governance_key,
        decision_hash: *decision_hash,
        appellant: appellant_key,
        reason_hash: *reason_hash,
        submitted_at: now(clock)?,
        reviewer: [0; 32],
        ruling_hash: [0; 32],
        ruled_at: 0,
    };
    store(appeal, ctx.program_id, &record)?;
    gov.appeals = rules::add(gov.appeals, 1)?;
    store(governance, ctx.program_id, &gov)?;
    emit(&[
        names::APPEAL_SUBMITTED,
        &governance_key,
        &key_of(appeal),
        decision_hash,
        &appellant_key,
    ]);
    Ok(())
}

#[inline(never)]
pub(crate) fn rule_appeal(ctx: &Ctx<'_>, ruling: u8, ruling_hash: &Key) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let reviewer = it.signer()?;
    let governance = it.account()?;
    let member = it.account()?;
    let appeal = it.writable()?;
    let clock = it.account()?;
    let _gov: Governance = load(governance, ctx.program_id)?;
    let governance_key = key_of(governance);
    let reviewer_key = key_of(reviewer);
    let registered: Member = load(member, ctx.program_id)?;
    if registered.governance != governance_key || registered.key != reviewer_key {
        return Err(QgError::AccountMismatch.into());
    }
    if !registered.active || registered.roles & roles::REVIEWER == 0 {
        return Err(QgError::NotCouncilMember.into());
    }
    let mut record: Appeal = load(appeal, ctx.program_id)?;
    if record.governance != governance_key {
        return Err(QgError::AccountMismatch.into());
    }
    if record.status != AppealStatus::Pending {
        return Err(QgError::AppealClosed.into());
    }
    if record.appellant == reviewer_key {
        // Nobody rules on their own appeal.
        return Err(QgError::Unauthorized.into());
    }
    let status = match ruling {
        2 => AppealStatus::Upheld,
        3 => AppealStatus::Overturned,
        _ => return Err(QgError::InvalidInstruction.into()),
    };
    if *ruling_hash == [0; 32] {
        return Err(QgError::InvalidInstruction.into());
    }
    record.status = status;
    record.reviewer = reviewer_key;
    record.ruling_hash = *ruling_hash;
    record.ruled_at = now(clock)?;
    store(appeal, ctx.program_id, &record)?;
    emit(&[
        names::APPEAL_RULED,
        &key_of(appeal),
        &reviewer_key,
        &[ruling],
        ruling_hash,
    ]);
    Ok(())
}

#[inline(never)]
pub(crate) fn anchor_checkpoint(ctx: &Ctx<'_>, tree_size: u64, root: &Key, checkpoint_time: i64) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let authority = it.payer()?;
    let governance = it.account()?;
    let anchor = it.writable()?;
    let system = it.account()?;
    let rent = it.account()?;
    let clock = it.account()?;
    let gov: Governance = load(governance, ctx.program_id)?;
    if key_of(authority) != gov.anchor_authority {
        return Err(QgError::Unauthorized.into());
    }
    if tree_size == 0 || *root == [0; 32] {
        return Err(QgError::InvalidInstruction.into());
    }
    let governance_key = key_of(governance);
    let t = now(clock)?;
    let record = if anchor.owned_by(ctx.program_id) {
        let mut current: Anchor = load(anchor, ctx.program_id)?;
        if current.governance != governance_key {
            return Err(QgError::AccountMismatch.into());
        }
        rules::check_anchor(&current, tree_size, root)?;
        current.tree_size = tree_size;
        current.root = *root;
        current.checkpoint_time = checkpoint_time;
        current.anchored_at = t;
        current.anchors = rules::add(current.anchors, 1)?;
        current
    } else {
        let bump = create_program_account(
            &NewAccount {
                payer: authority,
                account: anchor,
                rent,
                system,
                space: Anchor::LEN,
            },
            &[seeds::ANCHOR, &governance_key],
            ctx.program_id,
        )?;
        Anchor {
            bump,
            governance: governance_key,
            tree_size,
            root: *root,
            checkpoint_time,
            anchored_at: t,
            anchors: 1,
        }
    };
    store(anchor, ctx.program_id, &record)?;
    emit(&[
        names::ANCHORED,
        &governance_key,
        &tree_size.to_le_bytes(),
        root,
        &checkpoint_time.to_le_bytes(),
    ]);
    Ok(())
}

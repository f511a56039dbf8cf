//! The amendment process: `Propose` (council members with the proposer role), `Vote` (weight from the member
//! register, one vote per member), `Finalize` (quorum and threshold, early when decided), `Execute` (after the
//! timelock, not while halted) and `Cancel` (by the proposer while voting).

use pinocchio::error::ProgramError;
use pinocchio::{AccountView, ProgramResult};

use super::Ctx;
use super::setup::check_member_terms;
use crate::accounts::{AccountIter, NewAccount, create_program_account, key_of, load, now, store};
use crate::error::QgError;
use crate::events::{emit, names};
use crate::rules;
use crate::state::{
    AccountLayout, Choice, Governance, Key, MAX_MEMBERS, Member, PAYLOAD_LEN, Params, Policy, Proposal, ProposalKind,
    ProposalState, Reader, VoteRecord, roles, seeds,
};

/// A proposal's payload, read and checked for its kind (unused bytes must be zero).
enum Change {
    Constitution { hash: Key, version: u64 },
    Policy { hash: Key, active: bool },
    Params(Params),
    Member { key: Key, weight: u32, roles: u8 },
    AnchorAuthority(Key),
}

fn read_change(kind: ProposalKind, payload: &[u8; PAYLOAD_LEN]) -> Result<Change, QgError> {
    let bad = |_| QgError::InvalidInstruction;
    let mut r = Reader::new(payload);
    let change = match kind {
        ProposalKind::UpdateConstitution => {
            let hash = r.key().map_err(bad)?;
            let version = r.u64().map_err(bad)?;
            if hash == [0; 32] {
                return Err(QgError::InvalidInstruction);
            }
            Change::Constitution { hash, version }
        }
        ProposalKind::SetPolicy => {
            let hash = r.key().map_err(bad)?;
            let active = r.bool().map_err(bad)?;
            if hash == [0; 32] {
                return Err(QgError::InvalidInstruction);
            }
            Change::Policy { hash, active }
        }
        ProposalKind::SetParams => {
            let params = Params::read(&mut r).map_err(bad)?;
            params.validate()?;
            Change::Params(params)
        }
        ProposalKind::SetMember => {
            let key = r.key().map_err(bad)?;
            let weight = r.u32().map_err(bad)?;
            let member_roles = r.u8().map_err(bad)?;
            if key == [0; 32] {
                return Err(QgError::InvalidInstruction);
            }
            if weight > 0 {
                check_member_terms(weight, member_roles)?;
            } else if member_roles != 0 {
                return Err(QgError::InvalidInstruction);
            }
            Change::Member {
                key,
                weight,
                roles: member_roles,
            }
        }
        ProposalKind::SetAnchorAuthority => {
            let key = r.key().map_err(bad)?;
            if key == [0; 32] {
                return Err(QgError::InvalidInstruction);
            }
            Change::AnchorAuthority(key)
        }
    };
    let rest = r.take(PAYLOAD_LEN - consumed(kind)).map_err(bad)?;
    if rest.iter().any(|b| *b != 0) {
        return Err(QgError::InvalidInstruction);
    }
    Ok(change)
}

/// Payload bytes each kind uses.
fn consumed(kind: ProposalKind) -> usize {
    match kind {
        ProposalKind::UpdateConstitution => 40,
        ProposalKind::SetPolicy => 33,
        ProposalKind::SetParams => Params::LEN,
        ProposalKind::SetMember => 37,
        ProposalKind::SetAnchorAuthority => 32,
    }
}

/// Who must be an active council member with a role.
struct MemberCheck<'a> {
    /// The member record passed in.
    account: &'a AccountView,
    /// The governance.
    governance: Key,
    /// The signer it must belong to.
    signer: Key,
    /// The role bit it must hold.
    role: u8,
}

/// The member record of the signer in the governance, active and holding the role.
fn council_member(ctx: &Ctx<'_>, check: &MemberCheck<'_>) -> Result<Member, ProgramError> {
    let member: Member = load(check.account, ctx.program_id)?;
    if member.governance != check.governance || member.key != check.signer {
        return Err(QgError::AccountMismatch.into());
    }
    if !member.active || member.roles & check.role == 0 {
        return Err(QgError::NotCouncilMember.into());
    }
    Ok(member)
}

/// The proposal, checked to belong to the governance.
fn proposal_of(account: &AccountView, ctx: &Ctx<'_>, governance: &Key) -> Result<Proposal, ProgramError> {
    let proposal: Proposal = load(account, ctx.program_id)?;
    if proposal.governance != *governance {
        return Err(QgError::AccountMismatch.into());
    }
    Ok(proposal)
}

#[inline(never)]
pub(crate) fn propose(ctx: &Ctx<'_>, kind: u8, payload: &[u8; PAYLOAD_LEN]) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let proposer = it.payer()?;
    let governance = it.writable()?;
    let member = it.account()?;
    let proposal = it.writable()?;
    let system = it.account()?;
    let rent = it.account()?;
    let clock = it.account()?;
    let mut gov: Governance = load(governance, ctx.program_id)?;
    if gov.setup_open {
        return Err(QgError::SetupOpen.into());
    }
    if gov.halted {
        return Err(QgError::Halted.into());
    }
    let governance_key = key_of(governance);
    let proposer_key = key_of(proposer);
    council_member(
        ctx,
        &MemberCheck {
            account: member,
            governance: governance_key,
            signer: proposer_key,
            role: roles::PROPOSER,
        },
    )?;
    let kind = ProposalKind::from_u8(kind)?;
    read_change(kind, payload)?;
    let id = gov.next_proposal_id;
    let id_seed = id.to_le_bytes();
    let bump = create_program_account(
        &NewAccount {
            payer: proposer,
            account: proposal,
            rent,
            system,
            space: Proposal::LEN,
        },
        &[seeds::PROPOSAL, &governance_key, &id_seed],
        ctx.program_id,
    )?;
    let t = now(clock)?;
    let record = Proposal {
        bump,
        state: ProposalState::Voting,
        kind,
        id,
        governance: governance_key,
        proposer: proposer_key,
        payload: *payload,
        created_at: t,
        voting_ends_at: rules::later(t, gov.params.voting_period_s)?,
        executable_at: 0,
        yes: 0,
        no: 0,
        abstain: 0,
        voters: 0,
        weight_snapshot: gov.total_weight,
        threshold_bps: gov.params.approval_threshold_bps,
        quorum_bps: gov.params.quorum_bps,
        timelock_s: gov.params.timelock_s,
    };
    store(proposal, ctx.program_id, &record)?;
    gov.next_proposal_id = rules::add(id, 1)?;
    store(governance, ctx.program_id, &gov)?;
    emit(&[
        names::PROPOSED,
        &governance_key,
        &id_seed,
        &proposer_key,
        &[kind as u8],
        payload,
    ]);
    Ok(())
}

#[inline(never)]
pub(crate) fn vote(ctx: &Ctx<'_>, choice: u8) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let voter = it.payer()?;
    let governance = it.account()?;
    let member = it.account()?;
    let proposal = it.writable()?;
    let vote = it.writable()?;
    let system = it.account()?;
    let rent = it.account()?;
    let clock = it.account()?;
    let _gov: Governance = load(governance, ctx.program_id)?;
    let governance_key = key_of(governance);
    let voter_key = key_of(voter);
    let mut p = proposal_of(proposal, ctx, &governance_key)?;
    let registered = council_member(
        ctx,
        &MemberCheck {
            account: member,
            governance: governance_key,
            signer: voter_key,
            role: roles::VOTER,
        },
    )?;
    let choice = Choice::from_u8(choice)?;
    let t = now(clock)?;
    if p.state != ProposalState::Voting {
        return Err(QgError::WrongProposalState.into());
    }
    if t >= p.voting_ends_at {
        return Err(QgError::VotingClosed.into());
    }
    if registered.added_at > p.created_at {
        return Err(QgError::MemberTooNew.into());
    }
    if vote.owned_by(ctx.program_id) {
        return Err(QgError::AlreadyVoted.into());
    }
    let proposal_key = key_of(proposal);
    let bump = create_program_account(
        &NewAccount {
            payer: voter,
            account: vote,
            rent,
            system,
            space: VoteRecord::LEN,
        },
        &[seeds::VOTE, &proposal_key, &voter_key],
        ctx.program_id,
    )?;
    // The weight is the register's, never the caller's.
    rules::count_vote(&mut p, choice, u64::from(registered.weight))?;
    store(proposal, ctx.program_id, &p)?;
    let record = VoteRecord {
        bump,
        choice,
        weight: registered.weight,
        proposal: proposal_key,
        voter: voter_key,
        cast_at: t,
    };
    store(vote, ctx.program_id, &record)?;
    emit(&[
        names::VOTED,
        &proposal_key,
        &voter_key,
        &[choice as u8],
        &registered.weight.to_le_bytes(),
    ]);
    Ok(())
}

#[inline(never)]
pub(crate) fn finalize(ctx: &Ctx<'_>) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let governance = it.account()?;
    let proposal = it.writable()?;
    let clock = it.account()?;
    let _gov: Governance = load(governance, ctx.program_id)?;
    let mut p = proposal_of(proposal, ctx, &key_of(governance))?;
    rules::finalize(&mut p, now(clock)?)?;
    store(proposal, ctx.program_id, &p)?;
    emit(&[
        names::FINALIZED,
        &key_of(proposal),
        &[p.state as u8],
        &p.yes.to_le_bytes(),
        &p.no.to_le_bytes(),
        &p.abstain.to_le_bytes(),
        &p.executable_at.to_le_bytes(),
    ]);
    Ok(())
}

/// The accounts `Execute` needs to apply a change.
struct ExecAccounts<'a> {
    executor: &'a AccountView,
    governance: &'a AccountView,
    target: &'a AccountView,
    system: &'a AccountView,
    rent: &'a AccountView,
}

#[inline(never)]
pub(crate) fn execute(ctx: &Ctx<'_>) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let executor = it.payer()?;
    let governance = it.writable()?;
    let proposal = it.writable()?;
    let target = it.writable()?;
    let system = it.account()?;
    let rent = it.account()?;
    let clock = it.account()?;
    let mut gov: Governance = load(governance, ctx.program_id)?;
    if gov.halted {
        return Err(QgError::Halted.into());
    }
    let governance_key = key_of(governance);
    let mut p = proposal_of(proposal, ctx, &governance_key)?;
    let t = now(clock)?;
    rules::check_executable(&p, t)?;
    let accounts = ExecAccounts {
        executor,
        governance,
        target,
        system,
        rent,
    };
    match read_change(p.kind, &p.payload)? {
        Change::Constitution { hash, version } => {
            require_target_is_governance(&accounts)?;
            if version <= gov.constitution_version {
                return Err(QgError::VersionNotIncreasing.into());
            }
            gov.constitution_hash = hash;
            gov.constitution_version = version;
        }
        Change::Params(params) => {
            require_target_is_governance(&accounts)?;
            gov.params = params;
        }
        Change::AnchorAuthority(key) => {
            require_target_is_governance(&accounts)?;
            gov.anchor_authority = key;
        }
        Change::Policy { hash, active } => {
            set_policy(
                ctx,
                &accounts,
                &PolicyChange {
                    hash,
                    active,
                    id: p.id,
                    t,
                },
            )?;
        }
        Change::Member {
            key,
            weight,
            roles: member_roles,
        } => {
            let change = MemberChange {
                key,
                weight,
                roles: member_roles,
                t,
            };
            set_member(ctx, &accounts, &mut gov, &change)?;
        }
    }
    p.state = ProposalState::Executed;
    store(proposal, ctx.program_id, &p)?;
    store(governance, ctx.program_id, &gov)?;
    emit(&[names::EXECUTED, &key_of(proposal), &[p.kind as u8], &p.payload]);
    Ok(())
}

fn require_target_is_governance(accounts: &ExecAccounts<'_>) -> Result<(), ProgramError> {
    if accounts.target.address() != accounts.governance.address() {
        return Err(QgError::WrongAccount.into());
    }
    Ok(())
}

struct PolicyChange {
    hash: Key,
    active: bool,
    id: u64,
    t: i64,
}

fn set_policy(ctx: &Ctx<'_>, accounts: &ExecAccounts<'_>, change: &PolicyChange) -> ProgramResult {
    let governance_key = key_of(accounts.governance);
    let record = if accounts.target.owned_by(ctx.program_id) {
        let mut policy: Policy = load(accounts.target, ctx.program_id)?;
        if policy.governance != governance_key || policy.policy_hash != change.hash {
            return Err(QgError::AccountMismatch.into());
        }
        policy.active = change.active;
        policy.changed_at = change.t;
        policy.proposal_id = change.id;
        policy
    } else {
        let bump = create_program_account(
            &NewAccount {
                payer: accounts.executor,
                account: accounts.target,
                rent: accounts.rent,
                system: accounts.system,
                space: Policy::LEN,
            },
            &[seeds::POLICY, &governance_key, &change.hash],
            ctx.program_id,
        )?;
        Policy {
            bump,
            active: change.active,
            governance: governance_key,
            policy_hash: change.hash,
            changed_at: change.t,
            proposal_id: change.id,
        }
    };
    store(accounts.target, ctx.program_id, &record)
}

struct MemberChange {
    key: Key,
    weight: u32,
    roles: u8,
    t: i64,
}

fn set_member(
    ctx: &Ctx<'_>,
    accounts: &ExecAccounts<'_>,
    gov: &mut Governance,
    change: &MemberChange,
) -> ProgramResult {
    let governance_key = key_of(accounts.governance);
    let mut total = gov.total_weight;
    let mut count = gov.member_count;
    let record = if accounts.target.owned_by(ctx.program_id) {
        let mut member: Member = load(accounts.target, ctx.program_id)?;
        if member.governance != governance_key || member.key != change.key {
            return Err(QgError::AccountMismatch.into());
        }
        if member.active {
            total = total.checked_sub(u64::from(member.weight)).ok_or(QgError::Overflow)?;
            count = count.checked_sub(1).ok_or(QgError::Overflow)?;
        }
        member.active = change.weight > 0;
        member.weight = change.weight;
        member.roles = change.roles;
        // Changed terms count from now: no voting on proposals made before the change.
        member.added_at = change.t;
        member
    } else {
        if change.weight == 0 {
            return Err(QgError::InvalidInstruction.into());
        }
        let bump = create_program_account(
            &NewAccount {
                payer: accounts.executor,
                account: accounts.target,
                rent: accounts.rent,
                system: accounts.system,
                space: Member::LEN,
            },
            &[seeds::MEMBER, &governance_key, &change.key],
            ctx.program_id,
        )?;
        Member {
            bump,
            active: true,
            roles: change.roles,
            weight: change.weight,
            governance: governance_key,
            key: change.key,
            added_at: change.t,
        }
    };
    if record.active {
        total = rules::add(total, u64::from(record.weight))?;
        count = count.checked_add(1).ok_or(QgError::Overflow)?;
    }
    if count > MAX_MEMBERS {
        return Err(QgError::CouncilLimit.into());
    }
    if total == 0 {
        // The council may not vote itself out of existence.
        return Err(QgError::CouncilLimit.into());
    }
    gov.total_weight = total;
    gov.member_count = count;
    store(accounts.target, ctx.program_id, &record)?;
    emit(&[
        names::MEMBER_SET,
        &governance_key,
        &change.key,
        &change.weight.to_le_bytes(),
        &[change.roles],
    ]);
    Ok(())
}

#[inline(never)]
pub(crate) fn cancel(ctx: &Ctx<'_>) -> ProgramResult {
    let mut it = AccountIter::new(ctx.accounts);
    let proposer = it.signer()?;
    let governance = it.account()?;
    let proposal = it.writable()?;
    let _gov: Governance = load(governance, ctx.program_id)?;
    let mut p = proposal_of(proposal, ctx, &key_of(governance))?;
    if p.proposer != key_of(proposer) {
        return Err(QgError::Unauthorized.into());
    }
    if p.state != ProposalState::Voting {
        return Err(QgError::WrongProposalState.into());
    }
    p.state = ProposalState::Cancelled;
    store(proposal, ctx.program_id, &p)?;
    emit(&[names::CANCELLED, &key_of(proposal)]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruction::payload;

    #[test]
    fn payloads_are_checked_for_their_kind() {
        let ok = read_change(
            ProposalKind::UpdateConstitution,
            &payload::update_constitution(&[1; 32], 2),
        );
        assert!(matches!(ok, Ok(Change::Constitution { version: 2, .. })));
        // Zero hash, stray bytes after the fields, an out-of-range flag.
        assert!(
            read_change(
                ProposalKind::UpdateConstitution,
                &payload::update_constitution(&[0; 32], 2)
            )
            .is_err()
        );
        let mut stray = payload::set_policy(&[1; 32], true);
        stray[50] = 1;
        assert!(read_change(ProposalKind::SetPolicy, &stray).is_err());
        let mut flag = payload::set_policy(&[1; 32], true);
        flag[32] = 2;
        assert!(read_change(ProposalKind::SetPolicy, &flag).is_err());
        // Members: removal has no roles; weights within limits.
        assert!(read_change(ProposalKind::SetMember, &payload::set_member(&[1; 32], 0, 0)).is_ok());
        assert!(read_change(ProposalKind::SetMember, &payload::set_member(&[1; 32], 0, 1)).is_err());
        assert!(read_change(ProposalKind::SetMember, &payload::set_member(&[1; 32], 2_000_000, 1)).is_err());
        assert!(read_change(ProposalKind::SetMember, &payload::set_member(&[1; 32], 5, 8)).is_err());
        let bad_params = Params {
            approval_threshold_bps: 0,
            quorum_bps: 1,
            voting_period_s: 1,
            timelock_s: 0,
        };
        let encoded = payload::set_params(&bad_params).unwrap();
        assert!(read_change(ProposalKind::SetParams, &encoded).is_err());
        assert!(
            read_change(
                ProposalKind::SetAnchorAuthority,
                &payload::set_anchor_authority(&[0; 32])
            )
            .is_err()
        );
    }
}

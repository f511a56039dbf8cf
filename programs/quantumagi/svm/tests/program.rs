//! The Quantumagi program in a real SVM: every instruction's success and failure paths, with signed
//! transactions against the SBF binary that scripts/build-sbf.sh builds.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// LiteSVM's result type carries the whole failed transaction's metadata; it is what the tests inspect.
#![allow(clippy::result_large_err)]

mod common;

use common::{Bench, CONSTITUTION_V1, START, address, event_names, instruction_error, key, ok, refused};
use quantumagi_program::error::QgError;
use quantumagi_program::instruction::payload;
use quantumagi_program::state::{
    AccountLayout, Anchor, Appeal, AppealStatus, Choice, Governance, KeySet, Member, Params, Policy, Proposal,
    ProposalKind, ProposalState, VoteRecord, roles,
};
use solana_account::Account;
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;

const NEW_HASH: [u8; 32] = [0xc2; 32];

/// Propose an update of the constitution to `NEW_HASH` v2 by council member `by`; returns its id.
fn propose_update(b: &mut Bench, by: usize) -> u64 {
    let id = b.governance().next_proposal_id;
    let proposer = key(&b.council[by]);
    let ix = b
        .gov
        .propose(
            &proposer,
            id,
            ProposalKind::UpdateConstitution,
            &payload::update_constitution(&NEW_HASH, 2),
        )
        .unwrap();
    let signer = b.council[by].insecure_clone();
    ok(b.send(&ix, &[&signer]));
    id
}

fn vote(
    b: &mut Bench,
    who: usize,
    id: u64,
    choice: Choice,
) -> Result<litesvm::types::TransactionMetadata, litesvm::types::FailedTransactionMetadata> {
    let voter = b.council[who].insecure_clone();
    let ix = b.gov.vote(&key(&voter), id, choice as u8).unwrap();
    b.send(&ix, &[&voter])
}

fn finalize(
    b: &mut Bench,
    id: u64,
) -> Result<litesvm::types::TransactionMetadata, litesvm::types::FailedTransactionMetadata> {
    let ix = b.gov.finalize(id).unwrap();
    let payer = b.outsider.insecure_clone();
    b.send(&ix, &[&payer])
}

fn execute(
    b: &mut Bench,
    id: u64,
    kind: ProposalKind,
    payload: &[u8; 64],
) -> Result<litesvm::types::TransactionMetadata, litesvm::types::FailedTransactionMetadata> {
    let executor = b.outsider.insecure_clone();
    let ix = b.gov.execute(&key(&executor), id, kind, payload).unwrap();
    b.send(&ix, &[&executor])
}

fn emergency(b: &Bench, i: usize) -> Keypair {
    b.emergency[i].insecure_clone()
}

fn council(b: &Bench, i: usize) -> Keypair {
    b.council[i].insecure_clone()
}

/// Pass proposal `id` (yes from 50 + 30 of 100) and wait out the timelock.
fn pass(b: &mut Bench, id: u64) {
    ok(vote(b, 0, id, Choice::Yes));
    ok(vote(b, 1, id, Choice::Yes));
    ok(finalize(b, id));
    b.advance(600);
}

#[test]
fn initialize_and_the_initial_council() {
    let mut b = Bench::empty();
    // Bad parameters are refused and nothing is created.
    let mut args = b.init_args();
    args.params.quorum_bps = 0;
    let ix = b.gov.initialize(&key(&b.creator), &args).unwrap();
    let creator = b.creator.insecure_clone();
    refused(b.send(&ix, &[&creator]), QgError::InvalidInstruction);
    let mut args = b.init_args();
    args.emergency.threshold = 4;
    let ix = b.gov.initialize(&key(&b.creator), &args).unwrap();
    refused(b.send(&ix, &[&creator]), QgError::InvalidInstruction);
    assert!(!b.exists(&b.gov.governance));
    // Another creator's governance address is not this creator's to create.
    let mut ix = b.gov.initialize(&key(&b.creator), &b.init_args()).unwrap();
    ix.accounts[1].pubkey = quantumagi_program::client::governance_address(&b.program_id, &key(&b.outsider));
    refused(b.send(&ix, &[&creator]), QgError::WrongPda);

    let meta = ok(b.initialize());
    assert_eq!(event_names(&meta), ["qg.initialized"]);
    let g = b.governance();
    assert_eq!(g.constitution_hash, CONSTITUTION_V1);
    assert_eq!(g.constitution_version, 1);
    assert!(g.setup_open && !g.halted);
    assert_eq!(g.emergency, b.emergency_set());
    let account = b.svm.get_account(&address(&b.gov.governance)).unwrap();
    assert_eq!(account.data.len(), <Governance as AccountLayout>::LEN);
    assert!(account.lamports >= b.svm.minimum_balance_for_rent_exemption(account.data.len()));
    // A second initialisation finds the account taken.
    assert!(b.initialize().is_err());

    // Only the creator adds members, only during setup, each once.
    let member = key(&b.council[0]);
    let outsider = b.outsider.insecure_clone();
    let mut ix = b.gov.add_member(&key(&outsider), &member, 10, roles::ALL).unwrap();
    ix.accounts[0].pubkey = key(&outsider);
    refused(b.send(&ix, &[&outsider]), QgError::Unauthorized);
    let ix = b.gov.add_member(&key(&creator), &member, 10, roles::ALL).unwrap();
    ok(b.send(&ix, &[&creator]));
    refused(b.send(&ix, &[&creator]), QgError::AlreadyExists);
    let ix = b
        .gov
        .add_member(&key(&creator), &key(&b.council[1]), 2_000_000, roles::ALL)
        .unwrap();
    refused(b.send(&ix, &[&creator]), QgError::CouncilLimit);
    // No proposals during setup.
    let ix = b
        .gov
        .propose(
            &member,
            1,
            ProposalKind::UpdateConstitution,
            &payload::update_constitution(&NEW_HASH, 2),
        )
        .unwrap();
    let first = council(&b, 0);
    refused(b.send(&ix, &[&first]), QgError::SetupOpen);
    let ix = b.gov.finish_setup(&key(&creator)).unwrap();
    ok(b.send(&ix, &[&creator]));
    let ix = b
        .gov
        .add_member(&key(&creator), &key(&b.council[1]), 10, roles::ALL)
        .unwrap();
    refused(b.send(&ix, &[&creator]), QgError::SetupClosed);
    let g = b.governance();
    assert_eq!((g.member_count, g.total_weight, g.setup_open), (1, 10, false));
    let m: Member = b.read(&b.gov.member_address(&member));
    assert_eq!((m.weight, m.roles, m.active, m.added_at), (10, roles::ALL, true, START));
}

#[test]
fn a_constitution_amendment_from_proposal_to_execution() {
    let mut b = Bench::ready();
    let id = propose_update(&mut b, 2);
    let p: Proposal = b.read(&b.gov.proposal_address(id));
    assert_eq!(
        (p.state, p.weight_snapshot, p.voting_ends_at),
        (ProposalState::Voting, 100, START + 3600)
    );
    // 50 yes: 50 outstanding could still defeat it.
    ok(vote(&mut b, 0, id, Choice::Yes));
    refused(finalize(&mut b, id), QgError::VotingOpen);
    // 80 yes of 100: decided before the period ends.
    let meta = ok(vote(&mut b, 1, id, Choice::Yes));
    assert_eq!(event_names(&meta), ["qg.voted"]);
    let v: VoteRecord = b.read(&b.gov.vote_address(id, &key(&b.council[1])));
    assert_eq!(
        (v.weight, v.choice),
        (30, Choice::Yes),
        "the weight comes from the register"
    );
    let meta = ok(finalize(&mut b, id));
    assert_eq!(event_names(&meta), ["qg.finalized"]);
    let p: Proposal = b.read(&b.gov.proposal_address(id));
    assert_eq!(
        (p.state, p.yes, p.executable_at),
        (ProposalState::Succeeded, 80, START + 600)
    );
    let update = payload::update_constitution(&NEW_HASH, 2);
    refused(
        execute(&mut b, id, ProposalKind::UpdateConstitution, &update),
        QgError::TimelockActive,
    );
    b.advance(600);
    let meta = ok(execute(&mut b, id, ProposalKind::UpdateConstitution, &update));
    assert_eq!(event_names(&meta), ["qg.executed"]);
    let g = b.governance();
    assert_eq!((g.constitution_hash, g.constitution_version), (NEW_HASH, 2));
    refused(
        execute(&mut b, id, ProposalKind::UpdateConstitution, &update),
        QgError::WrongProposalState,
    );
    // The same version again can pass a vote but not be executed.
    let id = propose_update(&mut b, 0);
    pass(&mut b, id);
    refused(
        execute(&mut b, id, ProposalKind::UpdateConstitution, &update),
        QgError::VersionNotIncreasing,
    );
}

#[test]
fn votes_are_the_registers_one_per_member_within_the_period() {
    let mut b = Bench::ready();
    let id = propose_update(&mut b, 0);
    // Someone outside the council has no member record: there is nothing of the program's to vote with.
    let outsider = b.outsider.insecure_clone();
    let ix = b.gov.vote(&key(&outsider), id, 1).unwrap();
    refused(b.send(&ix, &[&outsider]), QgError::WrongOwner);
    // …nor with a member's record: it names another key.
    let mut ix = b.gov.vote(&key(&outsider), id, 1).unwrap();
    ix.accounts[2].pubkey = b.gov.member_address(&key(&b.council[0]));
    refused(b.send(&ix, &[&outsider]), QgError::AccountMismatch);
    // A member's vote needs the member's signature.
    let mut ix = common::to_instruction(&b.gov.vote(&key(&b.council[0]), id, 1).unwrap());
    ix.accounts[0].is_signer = false;
    ix.accounts[0].pubkey = address(&key(&b.council[0]));
    let payer = b.outsider.insecure_clone();
    let result = b.send_raw(ix, &[&payer]);
    assert_eq!(
        instruction_error(&result),
        Some(InstructionError::MissingRequiredSignature)
    );
    // Double vote.
    ok(vote(&mut b, 2, id, Choice::No));
    refused(vote(&mut b, 2, id, Choice::Yes), QgError::AlreadyVoted);
    // A bad choice byte.
    let voter = council(&b, 1);
    let ix = b.gov.vote(&key(&voter), id, 3).unwrap();
    refused(b.send(&ix, &[&voter]), QgError::InvalidInstruction);
    // After the period.
    b.advance(3600);
    refused(vote(&mut b, 1, id, Choice::Yes), QgError::VotingClosed);
    // 20 no of 100: no quorum: defeated.
    ok(finalize(&mut b, id));
    let p: Proposal = b.read(&b.gov.proposal_address(id));
    assert_eq!((p.state, p.no, p.voters), (ProposalState::Defeated, 20, 1));
    refused(finalize(&mut b, id), QgError::WrongProposalState);
}

#[test]
fn council_policies_parameters_and_anchor_authority_change_only_by_proposal() {
    let mut b = Bench::ready();
    // A policy activated by hash.
    let policy_hash = [0x77; 32];
    let set_policy = payload::set_policy(&policy_hash, true);
    let id = b.governance().next_proposal_id;
    let proposer = council(&b, 0);
    let ix = b
        .gov
        .propose(&key(&proposer), id, ProposalKind::SetPolicy, &set_policy)
        .unwrap();
    ok(b.send(&ix, &[&proposer]));
    pass(&mut b, id);
    ok(execute(&mut b, id, ProposalKind::SetPolicy, &set_policy));
    let p: Policy = b.read(&b.gov.policy_address(&policy_hash));
    assert!(p.active);
    assert_eq!(p.proposal_id, id);

    // A new member joins with weight 100; proposals made before that are not theirs to vote on.
    let newcomer = Keypair::new();
    b.svm.airdrop(&newcomer.pubkey(), 1_000_000_000).unwrap();
    let older = propose_update(&mut b, 0);
    let add = payload::set_member(&key(&newcomer), 100, roles::VOTER);
    let id = b.governance().next_proposal_id;
    let ix = b
        .gov
        .propose(&key(&proposer), id, ProposalKind::SetMember, &add)
        .unwrap();
    ok(b.send(&ix, &[&proposer]));
    pass(&mut b, id);
    // The target must be the member's own record.
    let mut ix = b
        .gov
        .execute(&key(&b.outsider), id, ProposalKind::SetMember, &add)
        .unwrap();
    ix.accounts[3].pubkey = b.gov.member_address(&key(&b.outsider));
    let executor = b.outsider.insecure_clone();
    refused(b.send(&ix, &[&executor]), QgError::WrongPda);
    ok(execute(&mut b, id, ProposalKind::SetMember, &add));
    let g = b.governance();
    assert_eq!((g.member_count, g.total_weight), (4, 200));
    let ix = b.gov.vote(&key(&newcomer), older, 1).unwrap();
    refused(b.send(&ix, &[&newcomer]), QgError::MemberTooNew);
    // The voter role alone may vote but not propose.
    let ix = b
        .gov
        .propose(
            &key(&newcomer),
            b.governance().next_proposal_id,
            ProposalKind::UpdateConstitution,
            &payload::update_constitution(&NEW_HASH, 2),
        )
        .unwrap();
    refused(b.send(&ix, &[&newcomer]), QgError::NotCouncilMember);

    // Removing a member (weight 0) takes their weight out of the totals; they can vote no more.
    let remove = payload::set_member(&key(&b.council[2]), 0, 0);
    let id = b.governance().next_proposal_id;
    let ix = b
        .gov
        .propose(&key(&proposer), id, ProposalKind::SetMember, &remove)
        .unwrap();
    ok(b.send(&ix, &[&proposer]));
    // 200 weight now: 50 + 30 + 100 yes.
    ok(vote(&mut b, 0, id, Choice::Yes));
    ok(vote(&mut b, 1, id, Choice::Yes));
    let ix = b.gov.vote(&key(&newcomer), id, 1).unwrap();
    ok(b.send(&ix, &[&newcomer]));
    ok(finalize(&mut b, id));
    b.advance(600);
    ok(execute(&mut b, id, ProposalKind::SetMember, &remove));
    let g = b.governance();
    assert_eq!((g.member_count, g.total_weight), (3, 180));
    let removed: Member = b.read(&b.gov.member_address(&key(&b.council[2])));
    assert!(!removed.active);
    let later = propose_update(&mut b, 0);
    refused(vote(&mut b, 2, later, Choice::Yes), QgError::NotCouncilMember);

    // New voting rules apply to proposals made afterwards.
    let params = Params {
        approval_threshold_bps: 7500,
        quorum_bps: 2000,
        voting_period_s: 60,
        timelock_s: 0,
    };
    let set_params = payload::set_params(&params).unwrap();
    let id = b.governance().next_proposal_id;
    let ix = b
        .gov
        .propose(&key(&proposer), id, ProposalKind::SetParams, &set_params)
        .unwrap();
    ok(b.send(&ix, &[&proposer]));
    ok(vote(&mut b, 0, id, Choice::Yes));
    ok(vote(&mut b, 1, id, Choice::Yes));
    let ix = b.gov.vote(&key(&newcomer), id, 1).unwrap();
    ok(b.send(&ix, &[&newcomer]));
    ok(finalize(&mut b, id));
    b.advance(600);
    ok(execute(&mut b, id, ProposalKind::SetParams, &set_params));
    assert_eq!(b.governance().params, params);

    // A new anchor authority.
    let new_anchor = Keypair::new();
    let set_anchor = payload::set_anchor_authority(&key(&new_anchor));
    let id = b.governance().next_proposal_id;
    let ix = b
        .gov
        .propose(&key(&proposer), id, ProposalKind::SetAnchorAuthority, &set_anchor)
        .unwrap();
    ok(b.send(&ix, &[&proposer]));
    let p: Proposal = b.read(&b.gov.proposal_address(id));
    assert_eq!(
        (p.threshold_bps, p.timelock_s, p.voting_ends_at - p.created_at),
        (7500, 0, 60)
    );
    ok(vote(&mut b, 0, id, Choice::Yes));
    ok(vote(&mut b, 1, id, Choice::Yes));
    let ix = b.gov.vote(&key(&newcomer), id, 1).unwrap();
    ok(b.send(&ix, &[&newcomer]));
    ok(finalize(&mut b, id));
    ok(execute(&mut b, id, ProposalKind::SetAnchorAuthority, &set_anchor));
    assert_eq!(b.governance().anchor_authority, key(&new_anchor));

    // A malformed payload is refused at proposal time.
    let mut bad = payload::set_policy(&policy_hash, true);
    bad[40] = 9;
    let ix = b
        .gov
        .propose(
            &key(&proposer),
            b.governance().next_proposal_id,
            ProposalKind::SetPolicy,
            &bad,
        )
        .unwrap();
    refused(b.send(&ix, &[&proposer]), QgError::InvalidInstruction);
}

#[test]
fn cancel_is_the_proposers_alone() {
    let mut b = Bench::ready();
    let id = propose_update(&mut b, 0);
    let other = council(&b, 1);
    let ix = b.gov.cancel(&key(&other), id).unwrap();
    refused(b.send(&ix, &[&other]), QgError::Unauthorized);
    let proposer = council(&b, 0);
    let ix = b.gov.cancel(&key(&proposer), id).unwrap();
    let meta = ok(b.send(&ix, &[&proposer]));
    assert_eq!(event_names(&meta), ["qg.cancelled"]);
    refused(vote(&mut b, 1, id, Choice::Yes), QgError::WrongProposalState);
}

#[test]
fn emergency_halt_needs_m_of_n_and_blocks_proposals_and_execution() {
    let mut b = Bench::ready();
    let id = propose_update(&mut b, 0);
    pass(&mut b, id);
    let reason = [0xee; 32];
    // Outside the emergency set.
    let outsider = b.outsider.insecure_clone();
    let ix = b.gov.approve_halt(&key(&outsider), &reason).unwrap();
    refused(b.send(&ix, &[&outsider]), QgError::Unauthorized);
    // M - 1 = 1 approval: not halted.
    let first = emergency(&b, 0);
    let ix = b.gov.approve_halt(&key(&first), &reason).unwrap();
    let meta = ok(b.send(&ix, &[&first]));
    assert_eq!(event_names(&meta), ["qg.motion_approved"]);
    assert!(!b.governance().halted);
    refused(b.send(&ix, &[&first]), QgError::AlreadyApproved);
    // M = 2: halted.
    let second = emergency(&b, 2);
    let ix = b.gov.approve_halt(&key(&second), &reason).unwrap();
    let meta = ok(b.send(&ix, &[&second]));
    assert_eq!(event_names(&meta), ["qg.motion_approved", "qg.halted"]);
    let g = b.governance();
    assert!(g.halted);
    assert_eq!((g.halt_reason, g.halted_since), (reason, b.now()));
    // Halted: no execution, no new proposals; a second halt is refused.
    let update = payload::update_constitution(&NEW_HASH, 2);
    refused(
        execute(&mut b, id, ProposalKind::UpdateConstitution, &update),
        QgError::Halted,
    );
    let proposer = council(&b, 1);
    let ix = b
        .gov
        .propose(&key(&proposer), id + 1, ProposalKind::UpdateConstitution, &update)
        .unwrap();
    refused(b.send(&ix, &[&proposer]), QgError::Halted);
    let ix = b.gov.approve_halt(&key(&first), &reason).unwrap();
    refused(b.send(&ix, &[&first]), QgError::Halted);
    // Resume: also M of N.
    let ix = b.gov.approve_resume(&key(&first)).unwrap();
    ok(b.send(&ix, &[&first]));
    assert!(b.governance().halted);
    let third = emergency(&b, 1);
    let ix = b.gov.approve_resume(&key(&third)).unwrap();
    let meta = ok(b.send(&ix, &[&third]));
    assert_eq!(event_names(&meta), ["qg.motion_approved", "qg.resumed"]);
    assert!(!b.governance().halted);
    let ix = b.gov.approve_resume(&key(&first)).unwrap();
    refused(b.send(&ix, &[&first]), QgError::NotHalted);
    ok(execute(&mut b, id, ProposalKind::UpdateConstitution, &update));
}

#[test]
fn a_veto_stops_a_passed_proposal_in_its_timelock() {
    let mut b = Bench::ready();
    let id = propose_update(&mut b, 0);
    ok(vote(&mut b, 0, id, Choice::Yes));
    ok(vote(&mut b, 1, id, Choice::Yes));
    ok(finalize(&mut b, id));
    let a = emergency(&b, 0);
    let c = emergency(&b, 1);
    ok(b.send(&b.gov.approve_veto(&key(&a), id).unwrap(), &[&a]));
    // A motion for something else waits until this one is done or expired.
    let ix = b.gov.approve_halt(&key(&c), &[1; 32]).unwrap();
    refused(b.send(&ix, &[&c]), QgError::MotionInProgress);
    let meta = ok(b.send(&b.gov.approve_veto(&key(&c), id).unwrap(), &[&c]));
    assert_eq!(event_names(&meta), ["qg.motion_approved", "qg.vetoed"]);
    let p: Proposal = b.read(&b.gov.proposal_address(id));
    assert_eq!(p.state, ProposalState::Vetoed);
    b.advance(600);
    refused(
        execute(
            &mut b,
            id,
            ProposalKind::UpdateConstitution,
            &payload::update_constitution(&NEW_HASH, 2),
        ),
        QgError::WrongProposalState,
    );
    // Executed or vetoed proposals cannot be vetoed.
    let ix = b.gov.approve_veto(&key(&a), id).unwrap();
    refused(b.send(&ix, &[&a]), QgError::WrongProposalState);
    // The veto's payload must name the proposal passed in.
    let other = propose_update(&mut b, 1);
    let mut ix = b.gov.approve_veto(&key(&a), other).unwrap();
    ix.accounts[3].pubkey = b.gov.proposal_address(id);
    refused(b.send(&ix, &[&a]), QgError::AccountMismatch);
}

#[test]
fn emergency_authority_moves_only_when_the_new_set_accepts() {
    let mut b = Bench::ready();
    let new_keys: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
    for k in &new_keys {
        b.svm.airdrop(&k.pubkey(), 1_000_000_000).unwrap();
    }
    let mut new_set = KeySet::EMPTY;
    new_set.threshold = 2;
    new_set.count = 3;
    for (i, k) in new_keys.iter().enumerate() {
        new_set.keys[i] = key(k);
    }
    // An invalid new set is refused outright.
    let mut bad = new_set;
    bad.threshold = 0;
    let a = emergency(&b, 0);
    let ix = b.gov.approve_transfer(&key(&a), &bad).unwrap();
    refused(b.send(&ix, &[&a]), QgError::InvalidInstruction);
    // Approved by M of the current set: pending, not in force.
    ok(b.send(&b.gov.approve_transfer(&key(&a), &new_set).unwrap(), &[&a]));
    let c = emergency(&b, 1);
    let meta = ok(b.send(&b.gov.approve_transfer(&key(&c), &new_set).unwrap(), &[&c]));
    assert_eq!(event_names(&meta), ["qg.motion_approved", "qg.transfer_proposed"]);
    let g = b.governance();
    assert_eq!(g.pending_emergency, new_set);
    assert_eq!(
        g.emergency,
        b.emergency_set(),
        "the old set stays in force until acceptance"
    );
    // Not accepted: the new keys cannot act yet; the old ones still can.
    let n0 = new_keys[0].insecure_clone();
    let ix = b.gov.approve_halt(&key(&n0), &[5; 32]).unwrap();
    refused(b.send(&ix, &[&n0]), QgError::Unauthorized);
    // Acceptance with M - 1 of the new keys (plus an outsider) fails.
    let outsider = b.outsider.insecure_clone();
    let ix = b.gov.accept_authority(&[key(&n0), key(&outsider)]).unwrap();
    refused(b.send(&ix, &[&n0, &outsider]), QgError::NotEnoughSigners);
    // The same new key listed twice counts once.
    let ix = b.gov.accept_authority(&[key(&n0), key(&n0)]).unwrap();
    refused(b.send(&ix, &[&n0]), QgError::NotEnoughSigners);
    // M of the new keys: the authority moves.
    let n2 = new_keys[2].insecure_clone();
    let ix = b.gov.accept_authority(&[key(&n0), key(&n2)]).unwrap();
    let meta = ok(b.send(&ix, &[&n0, &n2]));
    assert_eq!(event_names(&meta), ["qg.transfer_accepted"]);
    let g = b.governance();
    assert_eq!((g.emergency, g.pending_emergency), (new_set, KeySet::EMPTY));
    // Old keys are out, new keys halt.
    let ix = b.gov.approve_halt(&key(&a), &[5; 32]).unwrap();
    refused(b.send(&ix, &[&a]), QgError::Unauthorized);
    ok(b.send(&b.gov.approve_halt(&key(&n0), &[5; 32]).unwrap(), &[&n0]));
    ok(b.send(&b.gov.approve_halt(&key(&n2), &[5; 32]).unwrap(), &[&n2]));
    assert!(b.governance().halted);
    // Nothing pending any more.
    let ix = b.gov.accept_authority(&[key(&n0), key(&n2)]).unwrap();
    refused(b.send(&ix, &[&n0, &n2]), QgError::NoPendingTransfer);
}

#[test]
fn appeals_are_ruled_by_reviewers_once() {
    let mut b = Bench::ready();
    let decision = [0xd1; 32];
    let appellant = b.outsider.insecure_clone();
    let ix = b.gov.submit_appeal(&key(&appellant), &decision, &[0xa1; 32]).unwrap();
    let meta = ok(b.send(&ix, &[&appellant]));
    assert_eq!(event_names(&meta), ["qg.appeal_submitted"]);
    refused(b.send(&ix, &[&appellant]), QgError::AlreadyExists);
    assert_eq!(b.governance().appeals, 1);
    // A non-member, and a member without the reviewer role, cannot rule.
    let ix = b.gov.rule_appeal(&key(&appellant), &decision, 2, &[0xb1; 32]).unwrap();
    refused(b.send(&ix, &[&appellant]), QgError::WrongOwner);
    // A voter-only member, added by proposal.
    let voter_only = Keypair::new();
    let add = payload::set_member(&key(&voter_only), 5, roles::VOTER);
    let id = b.governance().next_proposal_id;
    let proposer = council(&b, 0);
    ok(b.send(
        &b.gov
            .propose(&key(&proposer), id, ProposalKind::SetMember, &add)
            .unwrap(),
        &[&proposer],
    ));
    pass(&mut b, id);
    ok(execute(&mut b, id, ProposalKind::SetMember, &add));
    b.svm.airdrop(&voter_only.pubkey(), 1_000_000_000).unwrap();
    let ix = b.gov.rule_appeal(&key(&voter_only), &decision, 2, &[0xb1; 32]).unwrap();
    refused(b.send(&ix, &[&voter_only]), QgError::NotCouncilMember);
    // A bad ruling byte.
    let reviewer = council(&b, 1);
    let ix = b.gov.rule_appeal(&key(&reviewer), &decision, 7, &[0xb1; 32]).unwrap();
    refused(b.send(&ix, &[&reviewer]), QgError::InvalidInstruction);
    let ix = b.gov.rule_appeal(&key(&reviewer), &decision, 3, &[0xb1; 32]).unwrap();
    let meta = ok(b.send(&ix, &[&reviewer]));
    assert_eq!(event_names(&meta), ["qg.appeal_ruled"]);
    let a: Appeal = b.read(&b.gov.appeal_address(&decision));
    assert_eq!(
        (a.status, a.reviewer, a.appellant),
        (AppealStatus::Overturned, key(&reviewer), key(&appellant))
    );
    let other = council(&b, 2);
    let ix = b.gov.rule_appeal(&key(&other), &decision, 2, &[0xb2; 32]).unwrap();
    refused(b.send(&ix, &[&other]), QgError::AppealClosed);
    // A reviewer never rules on their own appeal.
    let own = [0xd2; 32];
    ok(b.send(
        &b.gov.submit_appeal(&key(&other), &own, &[0xa2; 32]).unwrap(),
        &[&other],
    ));
    let ix = b.gov.rule_appeal(&key(&other), &own, 2, &[0xb3; 32]).unwrap();
    refused(b.send(&ix, &[&other]), QgError::Unauthorized);
}

#[test]
fn audit_log_anchors_never_go_back() {
    let mut b = Bench::ready();
    let outsider = b.outsider.insecure_clone();
    let mut ix = b.gov.anchor_checkpoint(&key(&outsider), 10, &[1; 32], START).unwrap();
    ix.accounts[0].pubkey = key(&outsider);
    refused(b.send(&ix, &[&outsider]), QgError::Unauthorized);
    let authority = b.anchor.insecure_clone();
    let anchor = |b: &mut Bench, size: u64, root: u8| {
        let ix = b
            .gov
            .anchor_checkpoint(&key(&authority), size, &[root; 32], START)
            .unwrap();
        b.send(&ix, &[&authority])
    };
    let meta = ok(anchor(&mut b, 10, 1));
    assert_eq!(event_names(&meta), ["qg.anchored"]);
    refused(anchor(&mut b, 9, 2), QgError::AnchorRegression);
    refused(anchor(&mut b, 10, 2), QgError::AnchorRegression);
    ok(anchor(&mut b, 10, 1));
    ok(anchor(&mut b, 25, 3));
    refused(anchor(&mut b, 0, 3), QgError::InvalidInstruction);
    let a: Anchor = b.read(&b.gov.anchor_address());
    assert_eq!((a.tree_size, a.root, a.anchors), (25, [3; 32], 3));
}

#[test]
fn substituted_accounts_are_refused() {
    let mut b = Bench::ready();
    let id = propose_update(&mut b, 0);
    let voter = council(&b, 1);
    // A copy of the governance owned by another program.
    let real = b.svm.get_account(&address(&b.gov.governance)).unwrap();
    let fake = Keypair::new();
    b.svm
        .set_account(
            fake.pubkey(),
            Account {
                lamports: real.lamports,
                data: real.data.clone(),
                owner: solana_address::Address::new_from_array([9; 32]),
                executable: false,
                rent_epoch: 0,
            },
        )
        .unwrap();
    let mut ix = b.gov.vote(&key(&voter), id, 1).unwrap();
    ix.accounts[1].pubkey = key(&fake);
    refused(b.send(&ix, &[&voter]), QgError::WrongOwner);
    // A program account of another kind where a proposal belongs.
    let mut ix = b.gov.vote(&key(&voter), id, 1).unwrap();
    ix.accounts[3].pubkey = b.gov.member_address(&key(&b.council[0]));
    refused(b.send(&ix, &[&voter]), QgError::WrongAccountData);
    // A proposal record from a second governance in the same VM.
    let creator2 = Keypair::new();
    b.svm.airdrop(&creator2.pubkey(), 10_000_000_000).unwrap();
    let gov2 = quantumagi_program::client::GovernanceClient::new(b.program_id, &key(&creator2));
    ok(b.send(&gov2.initialize(&key(&creator2), &b.init_args()).unwrap(), &[&creator2]));
    ok(b.send(
        &gov2.add_member(&key(&creator2), &key(&voter), 10, roles::ALL).unwrap(),
        &[&creator2],
    ));
    ok(b.send(&gov2.finish_setup(&key(&creator2)).unwrap(), &[&creator2]));
    ok(b.send(
        &gov2
            .propose(
                &key(&voter),
                1,
                ProposalKind::UpdateConstitution,
                &payload::update_constitution(&NEW_HASH, 2),
            )
            .unwrap(),
        &[&voter],
    ));
    let mut ix = b.gov.vote(&key(&voter), id, 1).unwrap();
    ix.accounts[3].pubkey = gov2.proposal_address(1);
    refused(b.send(&ix, &[&voter]), QgError::AccountMismatch);
    // The member record of the second governance used in the first.
    let mut ix = b.gov.vote(&key(&voter), id, 1).unwrap();
    ix.accounts[2].pubkey = gov2.member_address(&key(&voter));
    refused(b.send(&ix, &[&voter]), QgError::AccountMismatch);
    // A vote record at an address that is not its PDA.
    let mut ix = b.gov.vote(&key(&voter), id, 1).unwrap();
    ix.accounts[4].pubkey = key(&Keypair::new());
    refused(b.send(&ix, &[&voter]), QgError::WrongPda);
    // Wrong sysvars and system program.
    let mut ix = b.gov.vote(&key(&voter), id, 1).unwrap();
    ix.accounts[7].pubkey = quantumagi_program::client::RENT_SYSVAR;
    refused(b.send(&ix, &[&voter]), QgError::WrongAccount);
    let mut ix = b.gov.vote(&key(&voter), id, 1).unwrap();
    ix.accounts[5].pubkey = b.program_id;
    refused(b.send(&ix, &[&voter]), QgError::WrongAccount);
    // A proposal at the wrong PDA (an id that is not the next one).
    let proposer = council(&b, 0);
    let next = b.governance().next_proposal_id;
    let ix = b
        .gov
        .propose(
            &key(&proposer),
            next + 5,
            ProposalKind::UpdateConstitution,
            &payload::update_constitution(&NEW_HASH, 2),
        )
        .unwrap();
    refused(b.send(&ix, &[&proposer]), QgError::WrongPda);
    // Malformed instruction data.
    let mut ix = b.gov.finalize(id).unwrap();
    ix.data.push(0);
    let payer = b.outsider.insecure_clone();
    refused(b.send(&ix, &[&payer]), QgError::InvalidInstruction);
    // Too few accounts.
    let mut ix = b.gov.finalize(id).unwrap();
    ix.accounts.truncate(2);
    let result = b.send(&ix, &[&payer]);
    #[allow(
        deprecated,
        reason = "the runtime still reports this variant for pinocchio's NotEnoughAccountKeys"
    )]
    let expected = InstructionError::NotEnoughAccountKeys;
    assert_eq!(instruction_error(&result), Some(expected));
    // Still nothing counted.
    let p: Proposal = b.read(&b.gov.proposal_address(id));
    assert_eq!((p.yes, p.voters), (0, 0));
}

#[test]
fn a_prefunded_address_does_not_block_creation() {
    let mut b = Bench::ready();
    // Someone sends lamports to the next proposal's address before it is created.
    let id = b.governance().next_proposal_id;
    let target = b.gov.proposal_address(id);
    let griefer = b.outsider.insecure_clone();
    let transfer = solana_instruction::Instruction {
        program_id: solana_address::Address::default(),
        accounts: vec![
            solana_instruction::AccountMeta::new(griefer.pubkey(), true),
            solana_instruction::AccountMeta::new(address(&target), false),
        ],
        data: {
            let mut d = vec![2, 0, 0, 0];
            d.extend_from_slice(&1_000_000u64.to_le_bytes());
            d
        },
    };
    ok(b.send_raw(transfer, &[&griefer]));
    assert_eq!(propose_update(&mut b, 0), id);
    let p: Proposal = b.read(&target);
    assert_eq!(p.state, ProposalState::Voting);
    let account = b.svm.get_account(&address(&target)).unwrap();
    assert!(account.lamports >= b.svm.minimum_balance_for_rent_exemption(account.data.len()));
}

/// The cost of each instruction in compute units and of each account in rent-exempt lamports, printed as
/// the table in docs/quantumagi.md (`cargo test --test program cost_report -- --nocapture`), with the limits
/// the deployment relies on asserted: every instruction far inside the default 200,000-unit budget and every
/// governance action under 0.01 SOL.
#[test]
fn cost_report() {
    const SOL: u64 = 1_000_000_000;
    let mut b = Bench::empty();
    let mut rows: Vec<(&str, u64, u64)> = Vec::new();
    let measure = |name: &'static str, meta: litesvm::types::TransactionMetadata, rent: u64, rows: &mut Vec<_>| {
        rows.push((name, meta.compute_units_consumed, rent));
    };
    let rent = |b: &Bench, len: usize| b.svm.minimum_balance_for_rent_exemption(len);
    let meta = ok(b.initialize());
    measure(
        "Initialize",
        meta,
        rent(&b, <Governance as AccountLayout>::LEN),
        &mut rows,
    );
    let creator = b.creator.insecure_clone();
    for (i, weight) in [50, 30, 20].into_iter().enumerate() {
        let ix = b
            .gov
            .add_member(&key(&creator), &key(&b.council[i]), weight, roles::ALL)
            .unwrap();
        let meta = ok(b.send(&ix, &[&creator]));
        if i == 0 {
            measure("AddMember", meta, rent(&b, <Member as AccountLayout>::LEN), &mut rows);
        }
    }
    let meta = ok(b.send(&b.gov.finish_setup(&key(&creator)).unwrap(), &[&creator]));
    measure("FinishSetup", meta, 0, &mut rows);
    let proposer = council(&b, 0);
    let update = payload::update_constitution(&NEW_HASH, 2);
    let ix = b
        .gov
        .propose(&key(&proposer), 1, ProposalKind::UpdateConstitution, &update)
        .unwrap();
    let meta = ok(b.send(&ix, &[&proposer]));
    measure("Propose", meta, rent(&b, <Proposal as AccountLayout>::LEN), &mut rows);
    let meta = ok(vote(&mut b, 0, 1, Choice::Yes));
    measure("Vote", meta, rent(&b, <VoteRecord as AccountLayout>::LEN), &mut rows);
    ok(vote(&mut b, 1, 1, Choice::Yes));
    let meta = ok(finalize(&mut b, 1));
    measure("Finalize", meta, 0, &mut rows);
    b.advance(600);
    let meta = ok(execute(&mut b, 1, ProposalKind::UpdateConstitution, &update));
    measure("Execute (constitution)", meta, 0, &mut rows);
    let policy = payload::set_policy(&[0x77; 32], true);
    ok(b.send(
        &b.gov
            .propose(&key(&proposer), 2, ProposalKind::SetPolicy, &policy)
            .unwrap(),
        &[&proposer],
    ));
    pass(&mut b, 2);
    let meta = ok(execute(&mut b, 2, ProposalKind::SetPolicy, &policy));
    measure(
        "Execute (new policy record)",
        meta,
        rent(&b, <Policy as AccountLayout>::LEN),
        &mut rows,
    );
    let id = propose_update(&mut b, 1);
    let meta = ok(b.send(&b.gov.cancel(&key(&council(&b, 1)), id).unwrap(), &[&council(&b, 1)]));
    measure("Cancel", meta, 0, &mut rows);
    let (e0, e1) = (emergency(&b, 0), emergency(&b, 1));
    let meta = ok(b.send(&b.gov.approve_halt(&key(&e0), &[1; 32]).unwrap(), &[&e0]));
    measure("EmergencyApprove (halt, 1st)", meta, 0, &mut rows);
    let meta = ok(b.send(&b.gov.approve_halt(&key(&e1), &[1; 32]).unwrap(), &[&e1]));
    measure("EmergencyApprove (halt, M-th)", meta, 0, &mut rows);
    ok(b.send(&b.gov.approve_resume(&key(&e0)).unwrap(), &[&e0]));
    ok(b.send(&b.gov.approve_resume(&key(&e1)).unwrap(), &[&e1]));
    let new_set = b.emergency_set();
    ok(b.send(&b.gov.approve_transfer(&key(&e0), &new_set).unwrap(), &[&e0]));
    let meta = ok(b.send(&b.gov.approve_transfer(&key(&e1), &new_set).unwrap(), &[&e1]));
    measure("EmergencyApprove (transfer, M-th)", meta, 0, &mut rows);
    let ix = b.gov.accept_authority(&[key(&e0), key(&e1)]).unwrap();
    let meta = ok(b.send(&ix, &[&e0, &e1]));
    measure("AcceptAuthority", meta, 0, &mut rows);
    let appellant = b.outsider.insecure_clone();
    let ix = b.gov.submit_appeal(&key(&appellant), &[0xd1; 32], &[0xa1; 32]).unwrap();
    let meta = ok(b.send(&ix, &[&appellant]));
    measure(
        "SubmitAppeal",
        meta,
        rent(&b, <Appeal as AccountLayout>::LEN),
        &mut rows,
    );
    let reviewer = council(&b, 1);
    let ix = b.gov.rule_appeal(&key(&reviewer), &[0xd1; 32], 2, &[0xb1; 32]).unwrap();
    let meta = ok(b.send(&ix, &[&reviewer]));
    measure("RuleAppeal", meta, 0, &mut rows);
    let authority = b.anchor.insecure_clone();
    let ix = b.gov.anchor_checkpoint(&key(&authority), 10, &[1; 32], START).unwrap();
    let meta = ok(b.send(&ix, &[&authority]));
    measure(
        "AnchorCheckpoint (first)",
        meta,
        rent(&b, <Anchor as AccountLayout>::LEN),
        &mut rows,
    );
    let ix = b.gov.anchor_checkpoint(&key(&authority), 20, &[2; 32], START).unwrap();
    let meta = ok(b.send(&ix, &[&authority]));
    measure("AnchorCheckpoint (next)", meta, 0, &mut rows);

    let size = std::fs::metadata(common::program_path()).unwrap().len();
    println!("program binary: {size} bytes");
    println!("| instruction | compute units | new account's rent (lamports) | SOL |");
    println!("|---|---|---|---|");
    for (name, cu, lamports) in &rows {
        println!("| {name} | {cu} | {lamports} | {:.6} |", *lamports as f64 / SOL as f64);
        assert!(*cu < 100_000, "{name} used {cu} compute units");
        // Each action's cost: its new account's rent plus the 5,000-lamport signature fee per signer.
        assert!(lamports + 10_000 < SOL / 100, "{name} costs {lamports} lamports");
    }
    assert!(size < 200 * 1024, "program is {size} bytes");
}

//! The governance rules as pure functions over the account state, so they are tested on the host as well as
//! executed on chain: tallies, quorum and approval, when a vote is decided, the timelock, emergency motions
//! and the audit-log anchor's monotonicity.
//!
//! Arithmetic never wraps: multiplications take factors bounded to 32 bits (this backend cannot lower the
//! 128-bit multiply of an overflow test), every addition is checked.

use crate::error::QgError;
use crate::state::{Anchor, Choice, Key, KeySet, Motion, MotionKind, Proposal, ProposalState};

/// How long an emergency motion stays open for approvals.
pub const MOTION_TTL_S: i64 = 24 * 3600;

/// `a * b` for factors that fit in 32 bits (weights, their sums and basis points all do), or
/// [`QgError::Overflow`]. Bounding the factors, rather than testing the product, keeps the multiplication a
/// plain 64-bit one: the SBF backend cannot lower the 128-bit multiply an overflow test compiles to.
#[inline(always)]
pub fn mul(a: u64, b: u64) -> Result<u64, QgError> {
    let a = u32::try_from(a).map_err(|_| QgError::Overflow)?;
    let b = u32::try_from(b).map_err(|_| QgError::Overflow)?;
    Ok(u64::from(a).wrapping_mul(u64::from(b)))
}

/// `a + b`, or [`QgError::Overflow`].
#[inline(always)]
pub fn add(a: u64, b: u64) -> Result<u64, QgError> {
    a.checked_add(b).ok_or(QgError::Overflow)
}

/// `t + secs`, or [`QgError::Overflow`].
#[inline(always)]
pub fn later(t: i64, secs: i64) -> Result<i64, QgError> {
    t.checked_add(secs).ok_or(QgError::Overflow)
}

/// Whether `part` is at least `bps` basis points of `whole`.
#[inline(always)]
fn at_least(part: u64, whole: u64, bps: u16) -> Result<bool, QgError> {
    Ok(mul(part, 10_000)? >= mul(whole, u64::from(bps))?)
}

/// Quorum: yes, no and abstain together reach the quorum share of the council's weight at proposal time.
#[inline(always)]
pub fn quorum_reached(p: &Proposal) -> Result<bool, QgError> {
    let turnout = add(add(p.yes, p.no)?, p.abstain)?;
    at_least(turnout, p.weight_snapshot, p.quorum_bps)
}

/// Approval: yes reaches the threshold share of yes + no (abstentions do not count); nothing cast is no
/// approval.
#[inline(always)]
pub fn approved(yes: u64, no: u64, threshold_bps: u16) -> Result<bool, QgError> {
    let cast = add(yes, no)?;
    Ok(cast > 0 && at_least(yes, cast, threshold_bps)?)
}

/// Count a vote of `weight` for `choice`.
pub fn count_vote(p: &mut Proposal, choice: Choice, weight: u64) -> Result<(), QgError> {
    match choice {
        Choice::Yes => p.yes = add(p.yes, weight)?,
        Choice::No => p.no = add(p.no, weight)?,
        Choice::Abstain => p.abstain = add(p.abstain, weight)?,
    }
    p.voters = p.voters.checked_add(1).ok_or(QgError::Overflow)?;
    Ok(())
}

/// The outcome of a vote at `now`: `Some(true)` passed, `Some(false)` failed, `None` still open. After the
/// voting period the tally decides; before it, only when the votes not yet cast can no longer change the
/// result (every outstanding vote going either way).
pub fn outcome(p: &Proposal, now: i64) -> Result<Option<bool>, QgError> {
    if now >= p.voting_ends_at {
        return Ok(Some(quorum_reached(p)? && approved(p.yes, p.no, p.threshold_bps)?));
    }
    let cast = add(add(p.yes, p.no)?, p.abstain)?;
    let outstanding = p.weight_snapshot.saturating_sub(cast);
    // Passes whatever is still cast: quorum is already there and all outstanding weight voting no keeps it
    // approved.
    if quorum_reached(p)? && approved(p.yes, add(p.no, outstanding)?, p.threshold_bps)? {
        return Ok(Some(true));
    }
    // Fails whatever is still cast: even all outstanding weight voting yes would not approve it.
    if !approved(add(p.yes, outstanding)?, p.no, p.threshold_bps)? {
        return Ok(Some(false));
    }
    Ok(None)
}

/// Close the vote at `now`: [`ProposalState::Succeeded`] with its execution time (now + the timelock copied
/// in at proposal time), or [`ProposalState::Defeated`].
pub fn finalize(p: &mut Proposal, now: i64) -> Result<(), QgError> {
    if p.state != ProposalState::Voting {
        return Err(QgError::WrongProposalState);
    }
    match outcome(p, now)? {
        None => Err(QgError::VotingOpen),
        Some(true) => {
            p.state = ProposalState::Succeeded;
            p.executable_at = later(now, p.timelock_s)?;
            Ok(())
        }
        Some(false) => {
            p.state = ProposalState::Defeated;
            Ok(())
        }
    }
}

/// May the proposal be executed at `now`?
pub fn check_executable(p: &Proposal, now: i64) -> Result<(), QgError> {
    if p.state != ProposalState::Succeeded {
        return Err(QgError::WrongProposalState);
    }
    if now < p.executable_at {
        return Err(QgError::TimelockActive);
    }
    Ok(())
}

/// One member's approval of an emergency motion.
pub struct Approval {
    /// Who approves.
    pub approver: Key,
    /// Of what.
    pub kind: MotionKind,
    /// Applied to what.
    pub payload: Key,
    /// When.
    pub now: i64,
}

/// Record an approval of the motion. A motion expires [`MOTION_TTL_S`] after it was opened; while one is
/// open, approvals of anything else are refused. Returns whether the approvals now reach the set's threshold,
/// in which case the motion is closed (reset) and the caller carries it out.
pub fn approve_motion(motion: &mut Motion, set: &KeySet, approval: &Approval) -> Result<bool, QgError> {
    let Approval {
        approver,
        kind,
        payload,
        now,
    } = approval;
    let (kind, now) = (*kind, *now);
    if kind == MotionKind::None {
        return Err(QgError::InvalidInstruction);
    }
    let index = set.index_of(approver).ok_or(QgError::Unauthorized)?;
    if motion.kind != MotionKind::None && now >= later(motion.opened_at, MOTION_TTL_S)? {
        *motion = Motion::NONE;
    }
    if motion.kind == MotionKind::None {
        *motion = Motion {
            kind,
            payload: *payload,
            approvals: 0,
            opened_at: now,
        };
    } else if motion.kind != kind || motion.payload != *payload {
        return Err(QgError::MotionInProgress);
    }
    let bit = 1u8 << index;
    if motion.approvals & bit != 0 {
        return Err(QgError::AlreadyApproved);
    }
    motion.approvals |= bit;
    if motion.approvals.count_ones() >= u32::from(set.threshold) {
        *motion = Motion::NONE;
        return Ok(true);
    }
    Ok(false)
}

/// How many distinct keys of `set` are among `signers`.
pub fn distinct_signers<'a>(set: &KeySet, signers: impl Iterator<Item = &'a Key>) -> u32 {
    let mut seen = 0u8;
    for key in signers {
        if let Some(i) = set.index_of(key) {
            seen |= 1u8 << i;
        }
    }
    seen.count_ones()
}

/// Accept a new checkpoint for the anchor: the tree never shrinks, and the same size keeps the same root.
pub fn check_anchor(current: &Anchor, tree_size: u64, root: &Key) -> Result<(), QgError> {
    if tree_size < current.tree_size || (tree_size == current.tree_size && root != &current.root) {
        return Err(QgError::AnchorRegression);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MAX_EMERGENCY_KEYS, PAYLOAD_LEN, ProposalKind};

    fn proposal(snapshot: u64, threshold_bps: u16, quorum_bps: u16) -> Proposal {
        Proposal {
            bump: 255,
            state: ProposalState::Voting,
            kind: ProposalKind::UpdateConstitution,
            id: 1,
            governance: [1; 32],
            proposer: [2; 32],
            payload: [0; PAYLOAD_LEN],
            created_at: 1000,
            voting_ends_at: 2000,
            executable_at: 0,
            yes: 0,
            no: 0,
            abstain: 0,
            voters: 0,
            weight_snapshot: snapshot,
            threshold_bps,
            quorum_bps,
            timelock_s: 600,
        }
    }

    #[test]
    fn multiplication_overflow_is_an_error_not_a_wrap() {
        assert_eq!(mul(0, 7), Ok(0));
        assert_eq!(
            mul(u64::from(u32::MAX), u64::from(u32::MAX)),
            Ok(18_446_744_065_119_617_025)
        );
        assert_eq!(mul(1 << 32, 1), Err(QgError::Overflow));
        assert_eq!(mul(1, 1 << 32), Err(QgError::Overflow));
        assert_eq!(add(u64::MAX, 1), Err(QgError::Overflow));
        assert_eq!(later(i64::MAX, 1), Err(QgError::Overflow));
    }

    #[test]
    fn after_the_period_quorum_and_threshold_decide() {
        // 100 weight, 60 % approval, 50 % quorum.
        let mut p = proposal(100, 6000, 5000);
        count_vote(&mut p, Choice::Yes, 30).unwrap();
        count_vote(&mut p, Choice::No, 10).unwrap();
        // 40 % turnout: no quorum, although 75 % approve.
        assert_eq!(outcome(&p, 2000), Ok(Some(false)));
        count_vote(&mut p, Choice::Abstain, 10).unwrap();
        // 50 % turnout with the abstention: quorum; 30/(30+10) = 75 % ≥ 60 %.
        assert_eq!(outcome(&p, 2000), Ok(Some(true)));
        count_vote(&mut p, Choice::No, 10).unwrap();
        // 30/(30+20) = 60 %: exactly the threshold passes.
        assert_eq!(outcome(&p, 2000), Ok(Some(true)));
        count_vote(&mut p, Choice::No, 1).unwrap();
        assert_eq!(outcome(&p, 2000), Ok(Some(false)));
        assert_eq!(p.voters, 5);
        // Only abstentions: no approval.
        let mut p = proposal(10, 5000, 1000);
        count_vote(&mut p, Choice::Abstain, 10).unwrap();
        assert_eq!(outcome(&p, 2000), Ok(Some(false)));
    }

    #[test]
    fn early_decisions_only_when_the_rest_cannot_change_them() {
        let mut p = proposal(100, 6000, 5000);
        count_vote(&mut p, Choice::Yes, 55).unwrap();
        // 55 yes, 45 outstanding: all no would give 55/100 < 60 %: open.
        assert_eq!(outcome(&p, 1500), Ok(None));
        count_vote(&mut p, Choice::Yes, 6).unwrap();
        // 61 yes, 39 outstanding: 61 % even if all the rest vote no: passed early.
        assert_eq!(outcome(&p, 1500), Ok(Some(true)));

        let mut p = proposal(100, 6000, 5000);
        count_vote(&mut p, Choice::No, 40).unwrap();
        // 60 outstanding could still reach 60/100: open.
        assert_eq!(outcome(&p, 1500), Ok(None));
        count_vote(&mut p, Choice::No, 1).unwrap();
        // 59 at most against 41: cannot pass: failed early.
        assert_eq!(outcome(&p, 1500), Ok(Some(false)));
    }

    #[test]
    fn finalize_sets_the_timelock_and_refuses_open_or_closed_votes() {
        let mut p = proposal(10, 5001, 5000);
        assert_eq!(finalize(&mut p, 1500), Err(QgError::VotingOpen));
        count_vote(&mut p, Choice::Yes, 6).unwrap();
        finalize(&mut p, 1500).unwrap();
        assert_eq!(p.state, ProposalState::Succeeded);
        assert_eq!(p.executable_at, 2100);
        assert_eq!(finalize(&mut p, 1600), Err(QgError::WrongProposalState));
        assert_eq!(check_executable(&p, 2099), Err(QgError::TimelockActive));
        assert_eq!(check_executable(&p, 2100), Ok(()));
        p.state = ProposalState::Vetoed;
        assert_eq!(check_executable(&p, 3000), Err(QgError::WrongProposalState));
    }

    fn set(m: u8, n: u8) -> KeySet {
        let mut s = KeySet::EMPTY;
        s.threshold = m;
        s.count = n;
        for i in 0..usize::from(n).min(MAX_EMERGENCY_KEYS) {
            s.keys[i] = [i as u8 + 1; 32];
        }
        s
    }

    #[test]
    fn a_motion_needs_m_distinct_members_of_the_set() {
        let s = set(2, 3);
        let mut m = Motion::NONE;
        let reason = [9; 32];
        assert_eq!(
            approve_motion(
                &mut m,
                &s,
                &Approval {
                    approver: [7; 32],
                    kind: MotionKind::Halt,
                    payload: reason,
                    now: 10
                }
            ),
            Err(QgError::Unauthorized)
        );
        assert_eq!(
            approve_motion(
                &mut m,
                &s,
                &Approval {
                    approver: [1; 32],
                    kind: MotionKind::Halt,
                    payload: reason,
                    now: 10
                }
            ),
            Ok(false)
        );
        assert_eq!(
            approve_motion(
                &mut m,
                &s,
                &Approval {
                    approver: [1; 32],
                    kind: MotionKind::Halt,
                    payload: reason,
                    now: 11
                }
            ),
            Err(QgError::AlreadyApproved)
        );
        // Another action, or the same action for another reason, waits for this motion.
        assert_eq!(
            approve_motion(
                &mut m,
                &s,
                &Approval {
                    approver: [2; 32],
                    kind: MotionKind::Resume,
                    payload: [0; 32],
                    now: 12
                }
            ),
            Err(QgError::MotionInProgress)
        );
        assert_eq!(
            approve_motion(
                &mut m,
                &s,
                &Approval {
                    approver: [2; 32],
                    kind: MotionKind::Halt,
                    payload: [8; 32],
                    now: 12
                }
            ),
            Err(QgError::MotionInProgress)
        );
        assert_eq!(
            approve_motion(
                &mut m,
                &s,
                &Approval {
                    approver: [3; 32],
                    kind: MotionKind::Halt,
                    payload: reason,
                    now: 13
                }
            ),
            Ok(true)
        );
        assert_eq!(m, Motion::NONE, "carried out and closed");
    }

    #[test]
    fn a_motion_expires() {
        let s = set(2, 3);
        let mut m = Motion::NONE;
        assert_eq!(
            approve_motion(
                &mut m,
                &s,
                &Approval {
                    approver: [1; 32],
                    kind: MotionKind::Halt,
                    payload: [9; 32],
                    now: 10
                }
            ),
            Ok(false)
        );
        // A day later the stale approval is gone: another motion may open, and needs its own M approvals.
        let later_t = 10 + MOTION_TTL_S;
        assert_eq!(
            approve_motion(
                &mut m,
                &s,
                &Approval {
                    approver: [2; 32],
                    kind: MotionKind::Veto,
                    payload: [4; 32],
                    now: later_t
                }
            ),
            Ok(false)
        );
        assert_eq!(m.kind, MotionKind::Veto);
        assert_eq!(m.approvals.count_ones(), 1);
    }

    #[test]
    fn signers_are_counted_once_and_only_from_the_set() {
        let s = set(2, 3);
        let keys = [[1u8; 32], [1; 32], [9; 32], [3; 32]];
        assert_eq!(distinct_signers(&s, keys.iter()), 2);
        assert_eq!(distinct_signers(&s, [[9u8; 32]].iter()), 0);
    }

    #[test]
    fn the_anchor_never_goes_back() {
        let a = Anchor {
            bump: 1,
            governance: [1; 32],
            tree_size: 10,
            root: [5; 32],
            checkpoint_time: 0,
            anchored_at: 0,
            anchors: 1,
        };
        assert_eq!(check_anchor(&a, 9, &[5; 32]), Err(QgError::AnchorRegression));
        assert_eq!(check_anchor(&a, 10, &[6; 32]), Err(QgError::AnchorRegression));
        assert_eq!(check_anchor(&a, 10, &[5; 32]), Ok(()));
        assert_eq!(check_anchor(&a, 11, &[6; 32]), Ok(()));
    }
}

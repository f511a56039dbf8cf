//! The emergency halt: M-1 approvals do not halt, M do; resume needs M again; one motion at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acgs_engine::governance::{AuthoritySet, CouncilSeat, Governance};
use acgs_governance::{EmergencyAction, EmergencyState, GovernanceError};

fn rules() -> Governance {
    Governance {
        voting_period_secs: 3600,
        quorum_bps: 5000,
        approval_threshold_bps: 6000,
        governance_threshold_bps: 7500,
        timelock_secs: 0,
        grace_period_secs: 3600,
        early_close: true,
        approval_window_secs: 60,
        council: vec![CouncilSeat {
            user: "c".into(),
            weight: 1,
        }],
        guardians: AuthoritySet {
            threshold: 1,
            members: vec!["g".into()],
        },
        emergency: AuthoritySet {
            threshold: 2,
            members: vec!["ed".into(), "eve".into(), "ezra".into()],
        },
        appeal_reviewers: vec![],
        appeal_ruling_period_secs: 0,
    }
}

#[test]
fn halt_with_m_approvals_and_resume_with_m_again() {
    let mut s = EmergencyState::default();
    let steps = s
        .approve(EmergencyAction::Halt, "ed", "prompt injection wave", &rules(), 1)
        .unwrap();
    assert_eq!(steps.len(), 1);
    assert!(!s.halted, "1 of 2");
    let steps = s
        .approve(EmergencyAction::Halt, "eve", "confirmed", &rules(), 2)
        .unwrap();
    assert_eq!(steps[1].action, "emergency.halted");
    assert!(s.halted);
    assert_eq!(s.reason, "prompt injection wave");
    assert_eq!(s.since_us, Some(2));
    assert_eq!(s.decided_by, ["ed", "eve"]);
    assert!(matches!(
        s.approve(EmergencyAction::Halt, "ezra", "x", &rules(), 3),
        Err(GovernanceError::Conflict(_))
    ));
    s.approve(EmergencyAction::Resume, "ezra", "fixed", &rules(), 10)
        .unwrap();
    assert!(s.halted, "1 of 2 to resume");
    let steps = s.approve(EmergencyAction::Resume, "ed", "fixed", &rules(), 11).unwrap();
    assert_eq!(steps[1].action, "emergency.resumed");
    assert!(!s.halted);
}

#[test]
fn strangers_repeats_and_a_competing_motion_are_refused() {
    let mut s = EmergencyState::default();
    assert!(matches!(
        s.approve(EmergencyAction::Halt, "mallory", "x", &rules(), 1),
        Err(GovernanceError::NotAuthorized(_))
    ));
    assert!(matches!(
        s.approve(EmergencyAction::Resume, "ed", "x", &rules(), 1),
        Err(GovernanceError::Conflict(_))
    ));
    assert!(matches!(
        s.approve(EmergencyAction::Halt, "ed", " ", &rules(), 1),
        Err(GovernanceError::Invalid(_))
    ));
    s.approve(EmergencyAction::Halt, "ed", "x", &rules(), 1).unwrap();
    assert!(matches!(
        s.approve(EmergencyAction::Halt, "ed", "x", &rules(), 2),
        Err(GovernanceError::Conflict(_))
    ));
    assert_eq!(
        s.pending.as_ref().unwrap().motion.approvals.len(),
        1,
        "a refused approval changes nothing"
    );
}

#[test]
fn approvals_lapse_after_the_window() {
    let mut s = EmergencyState::default();
    s.approve(EmergencyAction::Halt, "ed", "x", &rules(), 0).unwrap();
    s.approve(EmergencyAction::Halt, "eve", "y", &rules(), 60_000_000)
        .unwrap();
    assert!(!s.halted, "the first approval lapsed after 60 s");
    s.approve(EmergencyAction::Halt, "ed", "x", &rules(), 61_000_000)
        .unwrap();
    assert!(s.halted);
}

//! Authority transfers (proposal by M of the current set, acceptance by M of each new set, lapse, stale, the
//! rewritten constitution) and appeals (standing aside: filing, ruling, expiry, the test case a ruling proposes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acgs_engine::governance::{AuthoritySet, Governance};
use acgs_engine::{Constitution, Outcome};
use acgs_governance::GovernanceError;
use acgs_governance::amendment::VersionRef;
use acgs_governance::appeal::{Appeal, AppealState, AppealedDecision, RulingKind, with_test_case};
use acgs_governance::transfer::{Transfer, TransferState, TransferTarget, with_authorities};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/constitution.toml");
const HOUR: i64 = 3_600_000_000;

fn example() -> (String, Governance) {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let rules = Constitution::compile("example", &text)
        .unwrap()
        .governance()
        .unwrap()
        .clone();
    (text, rules)
}

fn target() -> TransferTarget {
    TransferTarget {
        emergency: Some(AuthoritySet {
            threshold: 2,
            members: vec!["ann".into(), "ben".into(), "sre-on-call".into()],
        }),
        appeal_reviewers: Some(vec!["rita".into(), "raj".into(), "rosa".into()]),
        ..Default::default()
    }
}

fn proposed(now: i64) -> (Transfer, Governance) {
    let (text, rules) = example();
    let source = with_authorities(&text, &target()).unwrap();
    let (t, steps) = Transfer::propose(
        "t-1".into(),
        "sre-on-call",
        "rota change",
        target(),
        (
            VersionRef {
                number: 1,
                hash: "h".into(),
            },
            source,
            "h2".into(),
        ),
        &rules,
        now,
    )
    .unwrap();
    assert_eq!(steps[0].action, "transfer.proposed");
    (t, rules)
}

#[test]
fn the_rewritten_constitution_changes_only_the_authorities() {
    let (text, _) = example();
    let rewritten = with_authorities(&text, &target()).unwrap();
    let c = Constitution::from_toml("rewritten", &rewritten).unwrap();
    let g = c.governance().unwrap();
    assert_eq!(g.emergency.members, ["ann", "ben", "sre-on-call"]);
    assert_eq!(g.appeal_reviewers, ["raj", "rita", "rosa"]);
    let original = Constitution::compile("example", &text).unwrap();
    assert_eq!(g.guardians, original.governance().unwrap().guardians, "untouched");
    assert_eq!(c.policies().count(), original.policies().count());
    assert!(
        rewritten.contains("# any 2 of these 3 halt every agent action"),
        "comments kept"
    );
}

#[test]
fn a_transfer_needs_m_of_the_current_set_then_m_of_each_new_set() {
    let (mut t, rules) = proposed(0);
    assert_eq!(t.state, TransferState::Proposed, "1 of 2 current members");
    assert!(matches!(t.accept("ann", 2, 1), Err(GovernanceError::Conflict(_))));
    assert!(matches!(
        t.approve("ann", "x", &rules, 1),
        Err(GovernanceError::NotAuthorized(_))
    ));
    t.approve("security-on-call", "agreed", &rules, 2).unwrap();
    assert_eq!(t.state, TransferState::Accepting);
    assert!(matches!(
        t.accept("mallory", 2, 3),
        Err(GovernanceError::NotAuthorized(_))
    ));
    t.accept("ann", 2, 3).unwrap();
    let steps = t.accept("ben", 2, 4).unwrap();
    assert_eq!(
        t.state,
        TransferState::Accepting,
        "the new reviewers have not accepted: {steps:?}"
    );
    assert!(
        steps[0].detail["still_needed"][0]
            .as_str()
            .unwrap()
            .starts_with("appeal_reviewers 0/2")
    );
    assert!(matches!(t.accept("ben", 2, 5), Err(GovernanceError::Conflict(_))));
    t.accept("rita", 2, 5).unwrap();
    let steps = t.accept("rosa", 2, 6).unwrap();
    assert_eq!(t.state, TransferState::Completed);
    assert_eq!(steps.last().unwrap().action, "transfer.completed");
    assert_eq!(t.completed_as_version, Some(2));
    let note = t.history_note();
    assert!(
        note.contains("proposed by security-on-call, sre-on-call") && note.contains("accepted by ann, ben, rita, rosa")
    );
}

#[test]
fn a_transfer_lapses_or_goes_stale_and_then_changes_nothing() {
    let (mut t, rules) = proposed(0);
    t.approve("security-on-call", "agreed", &rules, HOUR).unwrap();
    assert!(t.settle(1, 2 * HOUR).is_empty());
    let steps = t.settle(1, 26 * HOUR);
    assert_eq!(steps[0].action, "transfer.lapsed");
    assert!(matches!(
        t.accept("ann", 2, 26 * HOUR),
        Err(GovernanceError::Conflict(_))
    ));
    let (mut s, _) = proposed(0);
    assert_eq!(s.settle(2, 1)[0].action, "transfer.stale");
    assert_eq!(s.state, TransferState::Stale);
}

#[test]
fn a_transfer_must_name_a_new_authority() {
    let (text, rules) = example();
    let err = Transfer::propose(
        "t".into(),
        "sre-on-call",
        "nothing",
        TransferTarget::default(),
        (
            VersionRef {
                number: 1,
                hash: "h".into(),
            },
            text,
            "h".into(),
        ),
        &rules,
        0,
    )
    .unwrap_err();
    assert!(matches!(err, GovernanceError::Invalid(_)));
}

fn filed() -> (Appeal, Governance) {
    let (text, rules) = example();
    let doc: acgs_engine::ConstitutionDocument = toml::from_str(&text).unwrap();
    let case = doc.tests.iter().find(|t| t.expect == Outcome::Deny).unwrap();
    let decision = AppealedDecision {
        decision_id: "d-1".into(),
        seq: 7,
        outcome: Outcome::Deny,
        constitutional_hash: "h".into(),
        request: serde_json::to_value(&case.request).unwrap(),
    };
    let (appeal, step) = Appeal::file("ap-1".into(), "api_key:acgs_x", "wrongly denied", decision, &rules, 0).unwrap();
    assert_eq!(step.action, "appeal.filed");
    (appeal, rules)
}

#[test]
fn reviewers_rule_once_before_the_deadline() {
    let (mut a, rules) = filed();
    assert_eq!(a.deadline_us, 5 * 24 * HOUR);
    assert!(matches!(
        a.rule("chief-risk-officer", RulingKind::Uphold, "x", None, &rules, 1),
        Err(GovernanceError::NotAuthorized(_))
    ));
    assert!(matches!(
        a.rule(
            "internal-audit",
            RulingKind::Overturn,
            "x",
            Some(Outcome::Deny),
            &rules,
            1
        ),
        Err(GovernanceError::Invalid(_))
    ));
    a.rule(
        "internal-audit",
        RulingKind::Overturn,
        "should pass",
        Some(Outcome::Allow),
        &rules,
        1,
    )
    .unwrap();
    assert_eq!(a.state, AppealState::Overturned);
    assert!(matches!(
        a.rule("ethics-board-chair", RulingKind::Uphold, "x", None, &rules, 2),
        Err(GovernanceError::Conflict(_))
    ));
    let (mut late, rules) = filed();
    assert_eq!(late.settle(5 * 24 * HOUR)[0].action, "appeal.expired");
    assert!(
        late.rule("internal-audit", RulingKind::Uphold, "x", None, &rules, 5 * 24 * HOUR)
            .is_err()
    );
}

#[test]
fn an_overturn_proposes_the_request_as_a_test_case_the_constitution_then_fails() {
    let (mut a, rules) = filed();
    a.rule(
        "internal-audit",
        RulingKind::Overturn,
        "should pass",
        Some(Outcome::Allow),
        &rules,
        1,
    )
    .unwrap();
    let case = a.test_case().unwrap();
    assert_eq!(case.expect, Outcome::Allow);
    let (text, _) = example();
    let amended = with_test_case(&text, &case).unwrap();
    let c = Constitution::compile("amended", &amended).unwrap();
    assert_eq!(
        c.tests().len(),
        Constitution::compile("example", &text).unwrap().tests().len() + 1
    );
    let report = c.run_tests(&acgs_engine::Detectors::new());
    let failing: Vec<&str> = report
        .results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        failing,
        [case.name.as_str()],
        "only the new case fails until the policies change"
    );
}

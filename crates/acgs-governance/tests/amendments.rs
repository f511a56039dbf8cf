//! The amendment state machine walked through every state and every illegal step, with time passed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acgs_engine::Constitution;
use acgs_governance::amendment::{Amendment, AmendmentState, DraftRequest, VersionRef};
use acgs_governance::{Choice, GovernanceError, run_gate};

const HOUR: i64 = 3_600_000_000;

fn constitution_text(max_trust: u32, council: &[(&str, u32)], threshold: &str) -> String {
    let seats: String = council
        .iter()
        .map(|(u, w)| format!("[[governance.council]]\nuser = \"{u}\"\nweight = {w}\n\n"))
        .collect();
    format!(
        r#"
[constitution]
name = "Governed"
version = "1.{max_trust}.0"

[schema]
cedar = '''
entity Agent {{ trust_level: Long }};
entity Tool;
action invoke_tool appliesTo {{ principal: [Agent], resource: [Tool] }};
'''

[[principles]]
id = "P-1"
title = "Trusted agents only"
text = "Only agents trusted enough may invoke tools."
category = "security"
priority = 1
severity = "high"

[[policies]]
id = "trusted-invoke"
principle = "P-1"
cedar = '''
permit (principal, action == Action::"invoke_tool", resource) when {{ principal.trust_level >= {max_trust} }};
'''

[[tests]]
name = "trusted agent invokes"
expect = "allow"
request = {{ principal = {{ type = "Agent", id = "a", attributes = {{ trust_level = 9 }} }}, action = "invoke_tool", resource = {{ type = "Tool", id = "t" }} }}

[governance]
voting_period = "72h"
quorum = "50%"
approval_threshold = "{threshold}"
governance_threshold = "75%"
timelock = "24h"
grace_period = "7d"
approval_window = "24h"

{seats}
[governance.guardians]
threshold = 2
members = ["gina", "gus", "gwen"]

[governance.emergency]
threshold = 2
members = ["ed", "eve"]
"#
    )
}

fn council() -> Vec<(&'static str, u32)> {
    vec![("alice", 3), ("bob", 2), ("carol", 2), ("dan", 0), ("erin", 3)]
}

fn compile(text: &str) -> Constitution {
    Constitution::compile("test", text).unwrap()
}

struct World {
    active: Constitution,
    amendment: Amendment,
}

fn drafted(candidate_text: &str) -> World {
    let active = compile(&constitution_text(3, &council(), "60%"));
    let candidate = compile(candidate_text);
    let (amendment, step) = Amendment::draft(
        DraftRequest {
            id: "am-1".into(),
            title: "Raise the trust bar".into(),
            rationale: "Incidents with low-trust agents".into(),
            proposer: "alice".into(),
            source: candidate_text.into(),
            restores_version: None,
        },
        VersionRef {
            number: 1,
            hash: active.hash().to_hex(),
        },
        &active,
        &candidate,
        0,
    )
    .unwrap();
    assert_eq!(step.action, "amendment.drafted");
    assert_eq!(amendment.state, AmendmentState::Draft);
    World { active, amendment }
}

fn opened() -> World {
    let mut w = drafted(&constitution_text(5, &council(), "60%"));
    let rules = w.active.governance().unwrap().clone();
    let (gate, _) = run_gate("open", "am-1", &w.amendment.source.clone(), &w.active, &[], 1);
    assert!(gate.passed, "{}", gate.failures());
    let steps = w.amendment.open("alice", &rules, gate, HOUR).unwrap();
    assert_eq!(
        steps.iter().map(|s| s.action.as_str()).collect::<Vec<_>>(),
        ["amendment.gate_passed", "amendment.opened"]
    );
    assert_eq!(w.amendment.state, AmendmentState::Voting);
    w
}

fn queued() -> World {
    let mut w = opened();
    let steps = w.amendment.vote("alice", Choice::For, "", 2 * HOUR).unwrap();
    assert_eq!(steps.len(), 1, "3 for, 7 outstanding: not decided");
    let steps = w.amendment.vote("erin", Choice::For, "", 3 * HOUR).unwrap();
    // 6 of 10 for; the 4 outstanding against would leave exactly 60%: decided early.
    assert!(steps.iter().any(|s| s.action == "amendment.queued"), "{steps:?}");
    assert_eq!(w.amendment.state, AmendmentState::Queued);
    w
}

fn conflict<T: std::fmt::Debug>(r: Result<T, GovernanceError>) -> String {
    match r {
        Err(GovernanceError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn draft_vote_timelock_execute() {
    let mut w = queued();
    let a = &mut w.amendment;
    assert_eq!(a.executable_at_us, Some(3 * HOUR + 24 * HOUR));
    assert!(conflict(a.check_executable(26 * HOUR)).contains("timelock"));
    let (gate, _) = run_gate("execute", "am-1", &a.source.clone(), &w.active, &[], 27 * HOUR);
    let steps = a.execute("bob", gate, 2, 27 * HOUR).unwrap();
    assert_eq!(steps.last().unwrap().action, "amendment.executed");
    assert_eq!(a.state, AmendmentState::Executed);
    assert_eq!(a.executed_as_version, Some(2));
    let states: Vec<AmendmentState> = a.history.iter().map(|t| t.to).collect();
    assert_eq!(
        states,
        [
            AmendmentState::Draft,
            AmendmentState::Voting,
            AmendmentState::Succeeded,
            AmendmentState::Queued,
            AmendmentState::Executed
        ]
    );
    assert!(a.history.iter().all(|t| !t.actor.is_empty()));
}

#[test]
fn a_vote_is_weighted_from_the_register_and_a_changed_vote_replaces_the_old() {
    let mut w = opened();
    let a = &mut w.amendment;
    a.vote("alice", Choice::Against, "not yet", 2 * HOUR).unwrap();
    let steps = a.vote("alice", Choice::For, "convinced", 3 * HOUR).unwrap();
    assert_eq!(steps[0].detail["replaced"], "against");
    let ballot = a.ballot.as_ref().unwrap();
    assert_eq!((ballot.tally.for_weight, ballot.tally.against_weight), (3, 0));
    assert_eq!(ballot.votes["alice"].weight, 3);
    // A member with weight 0 may vote; it counts nothing.
    a.vote("dan", Choice::Against, "", 3 * HOUR).unwrap();
    assert_eq!(a.ballot.as_ref().unwrap().tally.against_weight, 0);
    match a.vote("mallory", Choice::For, "", 3 * HOUR) {
        Err(GovernanceError::NotAuthorized(m)) => assert!(m.contains("no seat"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_period_ending_closes_the_vote_by_the_tally() {
    let mut w = opened();
    let a = &mut w.amendment;
    a.vote("alice", Choice::For, "", 2 * HOUR).unwrap();
    a.vote("bob", Choice::Against, "", 2 * HOUR).unwrap();
    assert!(a.settle(10 * HOUR).is_empty(), "still open");
    assert!(conflict(a.vote("carol", Choice::For, "", 73 * HOUR)).contains("closed"));
    let steps = a.settle(80 * HOUR);
    // Turnout 5 of 10 = quorum; 3 of 5 = 60%: passes at the end of the period (73 h after the opening at 1 h).
    assert_eq!(steps[0].action, "amendment.succeeded");
    assert_eq!(a.state, AmendmentState::Queued);
    assert_eq!(
        a.history.last().unwrap().at_us,
        73 * HOUR,
        "closed at the deadline, not when noticed"
    );
}

#[test]
fn without_quorum_or_with_abstentions_only_the_vote_is_defeated() {
    let mut w = opened();
    w.amendment.vote("bob", Choice::For, "", 2 * HOUR).unwrap();
    w.amendment.settle(74 * HOUR);
    assert_eq!(w.amendment.state, AmendmentState::Defeated, "2 of 10 is below quorum");
    let mut w = opened();
    for m in ["alice", "bob", "carol"] {
        w.amendment.vote(m, Choice::Abstain, "", 2 * HOUR).unwrap();
    }
    w.amendment.settle(74 * HOUR);
    assert_eq!(
        w.amendment.state,
        AmendmentState::Defeated,
        "abstentions approve nothing"
    );
}

#[test]
fn early_defeat_when_the_rest_could_not_pass_it() {
    let mut w = opened();
    w.amendment.vote("alice", Choice::Against, "", 2 * HOUR).unwrap();
    let steps = w.amendment.vote("erin", Choice::Against, "", 2 * HOUR).unwrap();
    assert_eq!(steps.last().unwrap().action, "amendment.defeated");
}

#[test]
fn a_governance_change_needs_the_higher_threshold() {
    // Same policies, a changed council: 7 of 10 for is 70%, enough for 60% but not for 75%.
    let changed = constitution_text(
        3,
        &[("alice", 3), ("bob", 2), ("carol", 2), ("dan", 1), ("erin", 3)],
        "60%",
    );
    let mut w = drafted(&changed);
    assert!(w.amendment.changes_governance);
    let rules = w.active.governance().unwrap().clone();
    let (gate, _) = run_gate("open", "am-1", &changed, &w.active, &[], 1);
    w.amendment.open("alice", &rules, gate, 0).unwrap();
    assert_eq!(w.amendment.ballot.as_ref().unwrap().rules.threshold_bps, 7500);
    w.amendment.vote("alice", Choice::For, "", 1).unwrap();
    w.amendment.vote("bob", Choice::For, "", 1).unwrap();
    w.amendment.vote("carol", Choice::For, "", 1).unwrap();
    w.amendment.vote("erin", Choice::Against, "", 1).unwrap();
    w.amendment.settle(80 * HOUR);
    assert_eq!(w.amendment.state, AmendmentState::Defeated);
}

#[test]
fn a_failing_gate_keeps_the_draft_and_its_report() {
    let failing = constitution_text(3, &council(), "60%").replace("expect = \"allow\"", "expect = \"deny\"");
    let mut w = drafted(&failing);
    let rules = w.active.governance().unwrap().clone();
    let (gate, compiled) = run_gate("open", "am-1", &failing, &w.active, &[], 1);
    assert!(!gate.passed && compiled.is_none());
    assert!(gate.failures().contains("trusted agent invokes"), "{}", gate.failures());
    let steps = w.amendment.open("alice", &rules, gate, 5).unwrap();
    assert_eq!(steps[0].action, "amendment.gate_failed");
    assert_eq!(w.amendment.state, AmendmentState::Draft);
    assert_eq!(w.amendment.gate_reports.len(), 1);
}

#[test]
fn guardians_veto_with_m_approvals_not_m_minus_one() {
    let mut w = opened();
    let rules = w.active.governance().unwrap().clone();
    let steps = w.amendment.veto("gina", "unsafe", &rules, 2 * HOUR).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(w.amendment.state, AmendmentState::Voting, "1 of 2 guardians");
    assert!(conflict(w.amendment.veto("gina", "again", &rules, 2 * HOUR)).contains("already approved"));
    assert!(matches!(
        w.amendment.veto("alice", "not a guardian", &rules, 2 * HOUR),
        Err(GovernanceError::NotAuthorized(_))
    ));
    w.amendment.veto("gwen", "agreed", &rules, 3 * HOUR).unwrap();
    assert_eq!(w.amendment.state, AmendmentState::Vetoed);
    // Queued amendments can be vetoed too.
    let mut q = queued();
    q.amendment.veto("gina", "x", &rules, 4 * HOUR).unwrap();
    q.amendment.veto("gus", "y", &rules, 5 * HOUR).unwrap();
    assert_eq!(q.amendment.state, AmendmentState::Vetoed);
}

#[test]
fn a_queued_amendment_expires_after_its_grace_period() {
    let mut w = queued();
    let expires = w.amendment.expires_at_us.unwrap();
    assert_eq!(expires, 3 * HOUR + 24 * HOUR + 7 * 24 * HOUR);
    assert!(w.amendment.settle(expires - 1).is_empty());
    let steps = w.amendment.settle(expires);
    assert_eq!(steps[0].action, "amendment.expired");
    assert!(conflict(w.amendment.check_executable(expires)).contains("expired"));
}

#[test]
fn only_the_proposer_cancels_and_only_before_the_vote_ends() {
    let mut w = opened();
    assert!(matches!(
        w.amendment.cancel("bob", "", 2 * HOUR),
        Err(GovernanceError::NotAuthorized(_))
    ));
    w.amendment.cancel("alice", "withdrawn", 2 * HOUR).unwrap();
    assert_eq!(w.amendment.state, AmendmentState::Cancelled);
    let mut q = queued();
    assert!(conflict(q.amendment.cancel("alice", "", 4 * HOUR)).contains("draft or voting"));
}

#[test]
fn every_step_outside_its_states_is_refused() {
    let rules = drafted(&constitution_text(5, &council(), "60%"))
        .active
        .governance()
        .unwrap()
        .clone();
    let active = compile(&constitution_text(3, &council(), "60%"));
    let source = constitution_text(5, &council(), "60%");
    let base = VersionRef {
        number: 1,
        hash: active.hash().to_hex(),
    };
    for state in AmendmentState::ALL {
        let mut a = drafted(&source).amendment;
        a.state = state;
        let (gate, _) = run_gate("open", "x", &source, &active, &[], 0);
        let open = a.clone().open("alice", &rules, gate.clone(), 0);
        assert_eq!(open.is_ok(), state == AmendmentState::Draft, "open from {state}");
        let vote = a.clone().vote("alice", Choice::For, "", 0);
        assert!(vote.is_err(), "vote from {state} without a ballot");
        let veto = a.clone().veto("gina", "r", &rules, 0);
        assert_eq!(
            veto.is_ok(),
            matches!(state, AmendmentState::Voting | AmendmentState::Queued),
            "veto from {state}"
        );
        let cancel = a.clone().cancel("alice", "", 0);
        assert_eq!(
            cancel.is_ok(),
            matches!(state, AmendmentState::Draft | AmendmentState::Voting),
            "cancel from {state}"
        );
        let execute = a.clone().execute("alice", gate.clone(), 2, 0);
        assert!(execute.is_err(), "execute from {state} without a timelock");
        let stale = a.clone().mark_stale("clock", &base, 0);
        assert_eq!(stale.is_some(), state.is_open(), "stale from {state}");
        for result in [open.err(), vote.err(), veto.err(), cancel.err(), execute.err()]
            .into_iter()
            .flatten()
        {
            if let GovernanceError::Conflict(m) = result {
                assert!(
                    m.contains(&format!("is {state}")) || m.contains("ballot") || m.contains("timelock"),
                    "{m}"
                );
            }
        }
    }
}

#[test]
fn an_amendment_that_changes_nothing_is_not_drafted() {
    let text = constitution_text(3, &council(), "60%");
    let active = compile(&text);
    let err = Amendment::draft(
        DraftRequest {
            id: "x".into(),
            title: "t".into(),
            rationale: "r".into(),
            proposer: "alice".into(),
            source: text.clone(),
            restores_version: None,
        },
        VersionRef {
            number: 1,
            hash: active.hash().to_hex(),
        },
        &active,
        &compile(&text),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, GovernanceError::Invalid(m) if m.contains("nothing to amend")));
}

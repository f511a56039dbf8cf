//! Deliberately broken constitutions, each found with a counterexample that the decision engine reproduces when
//! sent as a `POST /v1/decisions` body; and the correct one proved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use acgs_engine::Outcome;
use acgs_verify::{CheckKind, Verdict, no_progress};
use common::{PAYMENTS, compile, edit, replays, result, verifier, verify};

#[test]
fn the_correct_constitution_is_proved() {
    let report = verify(PAYMENTS);
    for inv in ["INV-1", "INV-2", "INV-3", "INV-4", "INV-5"] {
        let r = result(&report, CheckKind::Invariant, inv);
        assert_eq!(r.verdict, Verdict::Holds, "{r:?}");
    }
    assert!(report.passed, "{:?}", report.blocking_lines());
    assert_eq!(report.blocking, 0);
    // Every action can pass something; each witness replays.
    for action in ["Action::\"respond\"", "Action::\"transfer_funds\""] {
        let r = result(&report, CheckKind::ActionReachable, action);
        assert_eq!(r.verdict, Verdict::Holds);
        replays(r.example.as_ref().unwrap(), &compile(PAYMENTS));
    }
    let transfer = result(&report, CheckKind::ActionReachable, "Action::\"transfer_funds\"");
    assert_eq!(transfer.detail, "can allow: yes; can escalate: yes");
}

#[test]
fn a_permit_that_violates_an_invariant_is_caught_with_a_request_the_engine_allows() {
    // The suspension rule was narrowed to transfers: `agents-respond` now lets suspended agents answer.
    let text = edit(
        PAYMENTS,
        "forbid (principal, action, resource)\nwhen { principal.suspended };",
        "forbid (principal, action == Action::\"transfer_funds\", resource)\nwhen { principal.suspended };",
    );
    let report = verify(&text);
    let r = result(&report, CheckKind::Invariant, "INV-1");
    assert_eq!(r.verdict, Verdict::Violated, "{r:?}");
    let example = r.example.as_ref().unwrap();
    assert_eq!(replays(example, &compile(&text)), Outcome::Allow);
    assert_eq!(example.policies, ["agents-respond"]);
    assert_eq!(example.request.principal.attributes["suspended"], true);
    assert!(!report.passed);
    // The fixed constitution denies the same request.
    let fixed =
        acgs_engine::decide_fixture(&compile(PAYMENTS), &acgs_engine::Detectors::new(), &example.request).unwrap();
    assert_eq!(fixed.outcome, Outcome::Deny);
}

#[test]
fn an_off_by_one_threshold_is_caught_at_the_boundary() {
    let text = edit(
        PAYMENTS,
        "context.amount_cents < 1000000",
        "context.amount_cents <= 1000000",
    );
    let report = verify(&text);
    let r = result(&report, CheckKind::Invariant, "INV-2");
    assert_eq!(r.verdict, Verdict::Violated, "{r:?}");
    let example = r.example.as_ref().unwrap();
    // The only amount the mistake lets through is the boundary itself.
    assert_eq!(example.request.context["amount_cents"], 1_000_000);
    assert_eq!(replays(example, &compile(&text)), Outcome::Escalate);
}

#[test]
fn a_policy_that_can_fail_to_evaluate_is_caught_with_a_request_that_makes_it_fail() {
    let text = edit(
        PAYMENTS,
        "context.amount_cents > 0 &&",
        "context.amount_cents * 100 > 0 &&",
    );
    let report = verify(&text);
    let r = result(&report, CheckKind::NeverErrors, "payers-transfer");
    assert_eq!(r.verdict, Verdict::Violated, "{r:?}");
    let example = r.example.as_ref().unwrap();
    assert_eq!(replays(example, &compile(&text)), Outcome::Deny);
    assert!(example.policies.contains(&"payers-transfer".to_owned()));
    let amount = example.request.context["amount_cents"].as_i64().unwrap();
    assert!(amount.checked_mul(100).is_none(), "{amount} * 100 overflows");
    assert_eq!(
        result(&report, CheckKind::Invariant, "INV-5").verdict,
        Verdict::Violated
    );
    assert!(!report.passed);
}

#[test]
fn a_permit_shadowed_by_a_forbid_is_dead() {
    let text = format!(
        "{PAYMENTS}\n[[policies]]\nid = \"agents-share-credentials\"\nprinciple = \"P-3\"\ncedar = '''\n\
         permit (principal, action == Action::\"respond\", resource) when {{ context.detections.secrets }};\n'''\n"
    );
    let report = verify(&text);
    let r = result(&report, CheckKind::PermitTakesEffect, "agents-share-credentials");
    assert_eq!(r.verdict, Verdict::Violated, "{r:?}");
    let example = r.example.as_ref().unwrap();
    // A request it applies to (content with a credential), denied by the forbid.
    assert_eq!(replays(example, &compile(&text)), Outcome::Deny);
    assert!(example.policies.contains(&"no-secrets-in-answers".to_owned()));
    assert!(example.request.content.is_some());
    assert!(!report.passed, "dead permits block by default");
}

#[test]
fn a_redundant_policy_is_reported_as_a_warning() {
    let text = format!(
        "{PAYMENTS}\n[[policies]]\nid = \"frozen-accounts-again\"\nprinciple = \"P-2\"\ncedar = '''\n\
         forbid (principal, action == Action::\"transfer_funds\", resource) when {{ resource.frozen }};\n'''\n"
    );
    let report = verify(&text);
    let r = result(&report, CheckKind::PolicyNeeded, "frozen-accounts-again");
    assert_eq!(r.verdict, Verdict::Violated, "{r:?}");
    assert!(r.warns() && !r.blocks());
    let example = r.example.as_ref().unwrap();
    assert_eq!(replays(example, &compile(&text)), Outcome::Deny);
    assert!(
        report.passed,
        "redundancy warns by default: {:?}",
        report.blocking_lines()
    );
    // Not redundant in the original.
    let original = verify(PAYMENTS);
    assert_eq!(
        result(&original, CheckKind::PolicyNeeded, "frozen-accounts-send-nothing").verdict,
        Verdict::Holds
    );
}

#[test]
fn the_constitution_can_make_redundancy_block() {
    let text = format!(
        "{PAYMENTS}\n[verification]\nredundant_policies = \"block\"\n\n[[policies]]\nid = \"frozen-accounts-again\"\n\
         principle = \"P-2\"\ncedar = '''\n\
         forbid (principal, action == Action::\"transfer_funds\", resource) when {{ resource.frozen }};\n'''\n"
    );
    let report = verify(&text);
    assert!(!report.passed);
    assert!(result(&report, CheckKind::PolicyNeeded, "frozen-accounts-again").blocks());
}

#[test]
fn an_amendment_that_widens_what_an_agent_may_do_is_shown_with_a_request_only_it_allows() {
    let widened = edit(
        PAYMENTS,
        "permit (principal in Role::\"payer\", action == Action::\"transfer_funds\", resource)",
        "permit (principal, action == Action::\"transfer_funds\", resource)",
    );
    let (old, new) = (compile(PAYMENTS), compile(&widened));
    let report = verifier().compare_blocking(&old, &new, &no_progress).unwrap();
    assert!(!report.equivalent);
    let transfer = report
        .actions
        .iter()
        .find(|a| a.action == "Action::\"transfer_funds\"")
        .unwrap();
    assert_eq!(transfer.status, "changed");
    let allow = transfer.outcomes.iter().find(|o| o.outcome == "allow").unwrap();
    assert_eq!(allow.verdict, Verdict::Violated);
    assert!(allow.only_old.is_none(), "nothing is taken away");
    let example = allow.only_new.as_ref().unwrap();
    assert_eq!(replays(example, &new), Outcome::Allow);
    assert_eq!(example.old_outcome, Some(Outcome::Deny));
    let old_decision = acgs_engine::decide_fixture(&old, &acgs_engine::Detectors::new(), &example.request).unwrap();
    assert_eq!(old_decision.outcome, Outcome::Deny);
    // The principal is not a payer: that is what widened.
    assert!(!example.request.principal.parents.iter().any(|p| p.id == "payer"));
    let respond = report
        .actions
        .iter()
        .find(|a| a.action == "Action::\"respond\"")
        .unwrap();
    assert_eq!(respond.status, "unchanged");
}

#[test]
fn an_amendment_that_only_rewrites_a_condition_is_equivalent() {
    let rewritten = edit(
        PAYMENTS,
        "context.amount_cents < 1000000",
        "context.amount_cents <= 999999",
    );
    let report = verifier()
        .compare_blocking(&compile(PAYMENTS), &compile(&rewritten), &no_progress)
        .unwrap();
    assert!(report.equivalent, "{report:#?}");
}

#[test]
fn implies_compares_two_principles_policies() {
    let with = |from: &str, to: &str| {
        format!(
            "{PAYMENTS}\n[[invariants]]\nid = \"INV-9\"\nprinciple = \"{from}\"\ndescription = \"d\"\n\
             kind = \"implies\"\nimplies = \"{to}\"\n"
        )
    };
    // P-1 (a forbid only) allows nothing on its own: whatever it allows, anything allows.
    let report = verify(&with("P-1", "P-2"));
    assert_eq!(result(&report, CheckKind::Invariant, "INV-9").verdict, Verdict::Holds);
    // P-2's permit lets payers transfer; P-3's policies allow no transfer at all.
    let text = with("P-2", "P-3");
    let report = verify(&text);
    let r = result(&report, CheckKind::Invariant, "INV-9");
    assert_eq!(r.verdict, Verdict::Violated, "{r:?}");
    let example = r.example.as_ref().unwrap();
    assert_eq!(example.request.action, "transfer_funds");
    // The request is one P-2's policies allow on their own: a payer, an amount below the escalation threshold, an
    // account that is not frozen. (Under the whole constitution P-1 may still deny it; the engine agrees with the
    // example either way.)
    replays(example, &compile(&text));
    let amount = example.request.context["amount_cents"].as_i64().unwrap();
    assert!((1..100_000).contains(&amount), "{amount}");
    assert!(example.request.principal.parents.iter().any(|p| p.id == "payer"));
    assert_eq!(example.request.resource.attributes["frozen"], false);
}

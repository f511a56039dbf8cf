//! The example constitution (`examples/constitution.toml`) is proved: every invariant holds and nothing blocks;
//! and each invariant has a mutation test: a one-line change to one policy that must make its proof fail, with a
//! counterexample the engine reproduces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use acgs_engine::Outcome;
use acgs_verify::{CheckKind, Scope, Verdict, no_progress};
use common::{compile, replays, result, verifier};

const EXAMPLE: &str = include_str!("../../../examples/constitution.toml");

#[test]
fn the_example_constitution_is_proved() {
    let report = verifier().verify_blocking(&compile(EXAMPLE), &no_progress).unwrap();
    let invariants: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.check == CheckKind::Invariant)
        .collect();
    assert_eq!(invariants.len(), 8);
    for inv in invariants {
        assert_eq!(inv.verdict, Verdict::Holds, "{inv:?}");
    }
    assert!(report.passed, "{:#?}", report.blocking_lines());
    // Every policy is proved never to fail to evaluate.
    let errors = report.checks.iter().filter(|c| c.check == CheckKind::NeverErrors);
    assert!(errors.clone().count() >= 58);
    assert!(errors.clone().all(|c| c.verdict == Verdict::Holds));
    // A second run on the same constitution is answered from the cache.
    let v = verifier();
    let first = v.verify_blocking(&compile(EXAMPLE), &no_progress).unwrap();
    let again = v.verify_blocking(&compile(EXAMPLE), &no_progress).unwrap();
    assert!(first.checks.iter().all(|c| !c.cached));
    assert!(again.checks.iter().all(|c| c.cached));
    assert_eq!(
        first
            .checks
            .iter()
            .map(|c| (c.check, &c.subject, c.verdict))
            .collect::<Vec<_>>(),
        again
            .checks
            .iter()
            .map(|c| (c.check, &c.subject, c.verdict))
            .collect::<Vec<_>>()
    );
}

/// One mutation: in policy `policy`, replace `old` (on one line) with `new`; invariant `invariant` must fail.
struct Mutation {
    invariant: &'static str,
    policy: &'static str,
    old: &'static str,
    new: &'static str,
}

const MUTATIONS: &[Mutation] = &[
    Mutation {
        invariant: "INV-001",
        policy: "kill-switch-halts-all-actions",
        old: "forbid (principal, action, resource)",
        new: "forbid (principal, action in Action::\"side_effects\", resource)",
    },
    Mutation {
        invariant: "INV-002",
        policy: "suspended-agents-are-halted",
        old: "forbid (principal, action, resource)",
        new: "forbid (principal, action in Action::\"side_effects\", resource)",
    },
    Mutation {
        invariant: "INV-003",
        policy: "secrets-never-in-outputs",
        old: "action in [Action::\"respond\", Action::\"send_message\"]",
        new: "action == Action::\"respond\"",
    },
    Mutation {
        invariant: "INV-004",
        policy: "injected-content-never-reaches-tools",
        old: "when { context.detections.prompt_injection };",
        new: "when { context.detections.prompt_injection && context.detections.pii };",
    },
    Mutation {
        invariant: "INV-005",
        policy: "no-self-modification-of-governance",
        old: "when { resource.governance };",
        new: "when { resource.governance && principal.risk_score > 50 };",
    },
    Mutation {
        invariant: "INV-006",
        policy: "restricted-data-never-exported",
        old: "resource.classification == \"restricted\"",
        new: "resource.classification == \"secret\"",
    },
    Mutation {
        invariant: "INV-007",
        policy: "transfer-hard-cap",
        old: "context.amount_cents > 100000000",
        new: "context.amount_cents > 100000001",
    },
    Mutation {
        invariant: "INV-008",
        policy: "any-agent-reads-public-data",
        old: "when { resource.classification == \"public\" };",
        new: "when { resource.classification == \"public\" && principal.trust_level > 1 };",
    },
];

/// The example with `m` applied to the first occurrence of `m.old` after the policy's id.
fn mutate(m: &Mutation) -> String {
    let at = EXAMPLE
        .find(&format!("id = \"{}\"", m.policy))
        .unwrap_or_else(|| panic!("policy {}", m.policy));
    let offset = EXAMPLE[at..]
        .find(m.old)
        .unwrap_or_else(|| panic!("`{}` in {}", m.old, m.policy))
        + at;
    let next_policy = EXAMPLE[at + 1..]
        .find("[[policies]]")
        .map_or(EXAMPLE.len(), |i| i + at + 1);
    assert!(offset < next_policy, "`{}` is not in policy {}", m.old, m.policy);
    assert!(!m.old.contains('\n') && !m.new.contains('\n'), "one-line changes");
    format!("{}{}{}", &EXAMPLE[..offset], m.new, &EXAMPLE[offset + m.old.len()..])
}

#[test]
fn every_invariant_of_the_example_fails_under_its_mutation() {
    let v = verifier();
    for m in MUTATIONS {
        let mutated = compile(&mutate(m));
        let report = v
            .verify_scope_blocking(&mutated, Scope::Invariants, &no_progress)
            .unwrap();
        let r = result(&report, CheckKind::Invariant, m.invariant);
        assert_eq!(r.verdict, Verdict::Violated, "{}: {r:?}", m.invariant);
        let example = r.example.as_ref().unwrap();
        let outcome = replays(example, &mutated);
        if m.invariant == "INV-008" {
            assert_ne!(outcome, Outcome::Allow);
        } else {
            assert_ne!(outcome, Outcome::Deny, "{}", m.invariant);
        }
        // The unmutated example decides the same request as the invariant demands.
        let original =
            acgs_engine::decide_fixture(&compile(EXAMPLE), &acgs_engine::Detectors::new(), &example.request).unwrap();
        let expected = if m.invariant == "INV-008" {
            Outcome::Allow
        } else {
            Outcome::Deny
        };
        assert_eq!(original.outcome, expected, "{}", m.invariant);
        // Only that invariant (or ones about the same requests) broke; the report does not pass.
        assert!(!report.passed);
    }
}

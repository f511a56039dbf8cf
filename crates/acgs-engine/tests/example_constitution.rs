//! The shipped example constitution loads, validates and passes all of its own test cases.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acgs_engine::{Constitution, Outcome};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/constitution.toml");

#[test]
fn example_constitution_passes_its_own_tests() {
    let constitution = match Constitution::compile_file(EXAMPLE) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let report = constitution.run_tests(&acgs_engine::Detectors::new());
    println!("{report}");
    assert_eq!(report.failed(), 0, "{report}");
}

#[test]
fn example_constitution_meets_the_coverage_bar() {
    let constitution = Constitution::load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let principles: Vec<_> = constitution.principles().collect();
    assert!(principles.len() >= 10, "{} principles", principles.len());
    assert!(constitution.policies().count() >= 30);
    assert!(constitution.tests().len() >= 40);
    // Every principle is exercised by at least one test naming one of its policies.
    for p in &principles {
        let covered = constitution.tests().iter().any(|t| {
            t.expect_policies.as_ref().is_some_and(|ids| {
                ids.iter().any(|id| {
                    constitution
                        .policies()
                        .any(|pol| &pol.id == id && pol.principle_id == p.id)
                })
            })
        });
        assert!(covered, "principle {} has no test naming one of its policies", p.id);
    }
    // All three outcomes are exercised.
    for outcome in [Outcome::Allow, Outcome::Deny, Outcome::Escalate] {
        assert!(
            constitution.tests().iter().any(|t| t.expect == outcome),
            "no {outcome} test"
        );
    }
}

#[test]
fn role_hierarchies_are_closed_transitively_and_cycles_refused() {
    let engine = acgs_engine::Engine::new(std::sync::Arc::new(
        Constitution::load(EXAMPLE).unwrap_or_else(|e| panic!("{e}")),
    ));
    let request = |roles: &str| -> acgs_engine::DecisionRequest {
        serde_json::from_str(&format!(
            r#"{{"principal": {{"type": "Agent", "id": "a", "parents": [{{"type": "Role", "id": "junior"}}],
                "attributes": {{"trust_level": 3, "risk_score": 10, "suspended": false}}}},
              "action": "invoke_tool", "resource": {{"type": "Tool", "id": "web-search",
                "attributes": {{"risk_tier": 1, "external": true}}}},
              "entities": [{roles}]}}"#
        ))
        .unwrap()
    };
    // The agent and its roles are registry entities: here the request's facts stand for the registry's.
    let decide = |request: &acgs_engine::DecisionRequest| {
        acgs_engine::decide_fixture(engine.constitution(), engine.detectors(), request)
    };
    // junior -> staff -> tool-user: the grandparent role grants the tool.
    let chain = r#"{"type": "Role", "id": "junior", "parents": [{"type": "Role", "id": "staff"}]},
                   {"type": "Role", "id": "staff", "parents": [{"type": "Role", "id": "tool-user"}]}"#;
    assert_eq!(decide(&request(chain)).unwrap().outcome, Outcome::Allow);
    // Without the middle link the grant does not reach.
    let broken = r#"{"type": "Role", "id": "junior", "parents": [{"type": "Role", "id": "staff"}]}"#;
    assert_eq!(decide(&request(broken)).unwrap().outcome, Outcome::Deny);
    let cycle = r#"{"type": "Role", "id": "junior", "parents": [{"type": "Role", "id": "staff"}]},
                   {"type": "Role", "id": "staff", "parents": [{"type": "Role", "id": "junior"}]}"#;
    match decide(&request(cycle)) {
        Err(acgs_engine::RequestError::Entities(m)) => assert!(m.contains("cycle"), "{m}"),
        other => panic!("a role cycle must be refused, got {other:?}"),
    }
}

#[test]
fn example_constitution_is_governed() {
    let constitution = Constitution::load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let g = constitution.governance().expect("a [governance] section");
    assert!(g.governance_threshold_bps > g.approval_threshold_bps);
    assert!(g.council.len() >= 3 && g.guardians.threshold >= 2 && g.emergency.threshold >= 2);
    assert!(!g.appeal_reviewers.is_empty());
}

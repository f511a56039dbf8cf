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

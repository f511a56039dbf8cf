//! Shared helpers of the verifier's tests: the fixture, one-line edits of it, a verifier on the installed cvc5,
//! and the round trip of a counterexample through the decision engine as a `POST /v1/decisions` body.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use acgs_engine::{Constitution, DecisionRequest, Detectors, Outcome};
use acgs_verify::{CheckKind, CheckResult, Example, SolverConfig, VerificationReport, Verifier, no_progress};

pub const PAYMENTS: &str = include_str!("../fixtures/payments.toml");

/// The verifier on the solver the README's test command installs (Debian's cvc5, the pinned release).
pub fn verifier() -> Verifier {
    Verifier::new(SolverConfig::from_env()).expect("cvc5 (Debian package `cvc5`) is installed and pinned")
}

/// `text` with `old` replaced by `new` exactly once (the one-line change a test makes).
pub fn edit(text: &str, old: &str, new: &str) -> String {
    assert_eq!(text.matches(old).count(), 1, "`{old}` must occur once");
    text.replacen(old, new, 1)
}

/// Compile without running the file's test cases (a broken constitution may fail them).
pub fn compile(text: &str) -> Arc<Constitution> {
    Arc::new(Constitution::compile("test.toml", text).unwrap_or_else(|e| panic!("{e}")))
}

pub fn verify(text: &str) -> VerificationReport {
    verifier().verify_blocking(&compile(text), &no_progress).unwrap()
}

pub fn result<'r>(report: &'r VerificationReport, kind: CheckKind, subject: &str) -> &'r CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.check == kind && c.subject == subject)
        .unwrap_or_else(|| panic!("no {kind:?} result for {subject}: {report:#?}"))
}

/// Send the example's request as JSON (the body `POST /v1/decisions` takes) to the engine with `constitution`,
/// and check it gets the outcome the example reports; returns the outcome.
pub fn replays(example: &Example, constitution: &Constitution) -> Outcome {
    let body = serde_json::to_string(&example.request).unwrap();
    let request: DecisionRequest = serde_json::from_str(&body).unwrap();
    let decision = acgs_engine::decide_fixture(constitution, &Detectors::new(), &request)
        .unwrap_or_else(|e| panic!("the engine refuses the counterexample {body}: {e}"));
    assert_eq!(decision.outcome, example.outcome, "{body}");
    assert_eq!(decision.policy_ids(), example.policies, "{body}");
    decision.outcome
}

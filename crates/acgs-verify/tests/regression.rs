//! The solver regression suite: the verdict of every check on the fixture and on its broken variants, recorded
//! with the pinned cvc5 (`tests/fixtures/payments.verdicts`). A solver or symcc upgrade that flips any verdict
//! (sat/unsat/unknown, or where a counterexample lands) fails here before it can change what the gate accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use acgs_verify::{SolverConfig, VerificationReport, Verifier};
use common::{PAYMENTS, edit, verify};

fn lines(name: &str, report: &VerificationReport) -> Vec<String> {
    report
        .checks
        .iter()
        .map(|c| {
            let mut line = format!("{name} {} {} {:?}", c.check.as_str(), c.subject, c.verdict);
            if let Some(ex) = &c.example {
                line.push_str(&format!(" -> {:?}", ex.outcome));
            }
            line
        })
        .collect()
}

#[test]
fn verdicts_match_the_recorded_ones() {
    let variants = [
        ("fixture", PAYMENTS.to_owned()),
        (
            "off-by-one",
            edit(
                PAYMENTS,
                "context.amount_cents < 1000000",
                "context.amount_cents <= 1000000",
            ),
        ),
        (
            "overflow",
            edit(
                PAYMENTS,
                "context.amount_cents > 0 &&",
                "context.amount_cents * 100 > 0 &&",
            ),
        ),
    ];
    let mut got = Vec::new();
    for (name, text) in &variants {
        got.extend(lines(name, &verify(text)));
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/payments.verdicts");
    if std::env::var_os("ACGS_RECORD_VERDICTS").is_some() {
        std::fs::write(path, got.join("\n") + "\n").unwrap();
    }
    let recorded: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        got,
        recorded,
        "verdicts changed (solver {:?})",
        Verifier::new(SolverConfig::from_env()).map(|v| v.solver()).ok()
    );
}

#[test]
fn a_missing_solver_is_an_error_naming_the_package() {
    let config = SolverConfig {
        path: "/nonexistent/bin/cvc5".into(),
        ..SolverConfig::default()
    };
    let err = Verifier::new(config).unwrap_err().to_string();
    assert!(err.contains("Debian package `cvc5`"), "{err}");
    assert!(err.contains("/nonexistent/bin/cvc5"), "{err}");
}

#[test]
fn a_solver_other_than_the_pinned_release_is_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("acgs-cvc5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("cvc5");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'This is cvc5 version 1.3.1 [git tag 1.3.1]'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = SolverConfig {
        path: script.clone(),
        ..SolverConfig::default()
    };
    let err = Verifier::new(config.clone()).unwrap_err().to_string();
    assert!(
        err.contains("cvc5 1.3.1 is installed") && err.contains("pinned to cvc5 1.0.3"),
        "{err}"
    );
    let allowed = Verifier::new(SolverConfig {
        allow_any_version: true,
        ..config
    })
    .unwrap();
    assert_eq!(allowed.solver(), "cvc5 1.3.1");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_query_out_of_time_is_unknown_and_blocks_never_holds() {
    let mut config = SolverConfig::from_env();
    config.query_timeout = std::time::Duration::from_millis(1);
    let verifier = Verifier::new(config).unwrap();
    let example = common::compile(include_str!("../../../examples/constitution.toml"));
    let report = verifier.verify_blocking(&example, &acgs_verify::no_progress).unwrap();
    let unknown: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.verdict == acgs_verify::Verdict::Unknown)
        .collect();
    assert!(!unknown.is_empty(), "1 ms per query leaves some queries undecided");
    assert!(
        unknown
            .iter()
            .all(|c| c.detail.contains("unknown") || c.detail.contains("no answer"))
    );
    assert!(!report.passed, "an unknown where a proof is required blocks");
    // With time enough, the same constitution is proved.
    let full = common::verifier()
        .verify_blocking(&example, &acgs_verify::no_progress)
        .unwrap();
    assert!(full.passed);
}

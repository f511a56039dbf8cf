//! `acgs verify` and `acgs constitution validate --prove`: the proofs on the command line, their exit status, JSON
//! output, change analysis, and the error when the solver is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use common::{ACGS, EXAMPLE};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../acgs-verify/tests/fixtures/payments.toml"
);

fn acgs(args: &[&str]) -> Output {
    Command::new(ACGS).args(args).output().expect("acgs runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn a_verified_constitution_exits_zero_and_a_violated_invariant_exits_one_with_its_request() {
    let o = acgs(&["verify", FIXTURE]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains(": verified (0 blocking"),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stdout).contains("holds     INV-2"));

    let dir = tempfile::tempdir().unwrap();
    let fixture = std::fs::read_to_string(FIXTURE).unwrap();
    let broken = fixture.replace("context.amount_cents < 1000000", "context.amount_cents <= 1000000");
    let file = write(&dir, "broken.toml", &broken);
    let o = acgs(&["verify", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(out.contains("NOT verified (1 blocking"), "{out}");
    assert!(out.contains("VIOLATED  INV-2 [blocks]"), "{out}");
    assert!(out.contains("\"amount_cents\":1000000"), "{out}");

    // JSON: the counterexample is a decision request the in-process decider accepts and escalates.
    let o = acgs(&["verify", &file, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let inv = report["verification"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == "INV-2")
        .unwrap()
        .clone();
    assert_eq!(inv["verdict"], "violated");
    let request = write(&dir, "request.json", &inv["example"]["request"].to_string());
    let o = acgs(&["decide", "--constitution", &file, "--request", &format!("@{request}")]);
    assert!(
        text(&o.stdout).contains("escalate"),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

#[test]
fn against_prints_what_an_amendment_changes() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::fs::read_to_string(FIXTURE).unwrap();
    let widened = fixture.replace(
        "permit (principal in Role::\"payer\", action == Action::\"transfer_funds\", resource)",
        "permit (principal, action == Action::\"transfer_funds\", resource)",
    );
    let file = write(&dir, "widened.toml", &widened);
    let o = acgs(&["verify", &file, "--against", FIXTURE]);
    let out = text(&o.stdout);
    assert!(out.contains("change: NOT equivalent"), "{out}");
    assert!(out.contains("changed    Action::\"transfer_funds\""), "{out}");
    assert!(
        out.contains("only the new version gives `allow`: new Allow, old Deny"),
        "{out}"
    );
    assert!(out.contains("unchanged  Action::\"respond\""), "{out}");
}

#[test]
fn validate_prove_runs_the_proofs_after_validation() {
    let o = acgs(&["constitution", "validate", "--prove", EXAMPLE]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("valid ("), "{out}");
    assert!(out.contains("invariant (8 of 8 hold)"), "{out}");
}

#[test]
fn a_missing_solver_is_a_clear_error_naming_the_package() {
    let o = Command::new(ACGS)
        .args(["verify", FIXTURE])
        .env("ACGS_CVC5", "/nonexistent/cvc5")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("install the Debian package `cvc5`"), "{err}");
}

#[test]
fn validate_prints_the_validator_s_warnings_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::fs::read_to_string(FIXTURE).unwrap();
    let body = format!(
        "{fixture}\n[[policies]]\nid = \"answers-about-accounts\"\nprinciple = \"P-3\"\ncedar = '''\n\
         permit (principal, action == Action::\"respond\", resource is Account);\n'''\n"
    );
    let file = write(&dir, "warned.toml", &body);
    let o = acgs(&["constitution", "validate", &file]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    let line = body[..body.find("resource is Account").unwrap()].matches('\n').count() + 1;
    assert!(
        out.contains(&format!("warning: line {line}: policy `answers-about-accounts`")),
        "{out}"
    );
}

//! Every kind of invalid constitution is refused with a message naming the file, line and subject.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use acgs_engine::{Constitution, LoadError, ProblemKind};

fn problems(text: &str) -> Vec<acgs_engine::Problem> {
    match Constitution::compile("bad.toml", text) {
        Ok(_) => panic!("expected the constitution to be refused"),
        Err(e) => {
            assert!(e.to_string().contains("bad.toml"), "error names the file: {e}");
            e.problems().to_vec()
        }
    }
}

fn expect_problem(text: &str, kind: ProblemKind, needle: &str) -> acgs_engine::Problem {
    let found = problems(text);
    found
        .iter()
        .find(|p| p.kind == kind && p.to_string().contains(needle))
        .cloned()
        .unwrap_or_else(|| panic!("no {kind:?} problem containing {needle:?} in {found:#?}"))
}

fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).expect("needle present")].matches('\n').count() + 1
}

#[test]
fn the_fixture_is_valid() {
    let c = Constitution::from_toml("ok.toml", fixtures::SMALL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.principles().count(), 3);
    assert_eq!(c.policies().count(), 8);
    assert_eq!(c.invariants().len(), 1);
}

#[test]
fn toml_syntax_errors_give_the_line() {
    let text = fixtures::SMALL.replace("priority = 2", "priority = = 2");
    let p = expect_problem(&text, ProblemKind::Syntax, "");
    assert_eq!(p.line, Some(line_of(&text, "priority = = 2")));
}

#[test]
fn unknown_fields_and_wrong_types_are_refused() {
    let text = fixtures::SMALL.replace("category = \"financial\"", "category = \"financial\"\nweight = 3");
    expect_problem(&text, ProblemKind::Syntax, "weight");
    let text = fixtures::SMALL.replace("priority = 2", "priority = \"high\"");
    expect_problem(&text, ProblemKind::Syntax, "");
    let text = fixtures::SMALL.replace("severity = \"high\"", "severity = \"extreme\"");
    expect_problem(&text, ProblemKind::Syntax, "extreme");
}

#[test]
fn duplicate_ids_are_refused() {
    let text = fixtures::SMALL.replace("id = \"P-3\"", "id = \"P-2\"");
    expect_problem(&text, ProblemKind::DuplicateId, "principle `P-2`");
    let text = fixtures::SMALL.replace("id = \"transfer-hard-cap\"", "id = \"finance-transfers\"");
    let p = expect_problem(&text, ProblemKind::DuplicateId, "policy `finance-transfers`");
    assert!(p.line.is_some());
    let text = fixtures::SMALL.replace(
        "name = \"agent without role is denied by default\"",
        "name = \"tool user invokes low-risk tool\"",
    );
    expect_problem(
        &text,
        ProblemKind::DuplicateId,
        "test `tool user invokes low-risk tool`",
    );
    let text = format!(
        "{}\n[[invariants]]\nid = \"INV-1\"\nprinciple = \"P-1\"\ndescription = \"x\"\nkind = \"never_allowed\"\nmatching = 'permit (principal, action, resource);'\n",
        fixtures::SMALL
    );
    expect_problem(&text, ProblemKind::DuplicateId, "invariant `INV-1`");
}

#[test]
fn malformed_ids_are_refused() {
    let text = fixtures::SMALL.replace("id = \"finance-transfers\"", "id = \"finance transfers!\"");
    expect_problem(&text, ProblemKind::InvalidId, "finance transfers!");
}

#[test]
fn a_policy_must_name_an_existing_principle() {
    let text = fixtures::SMALL.replacen("principle = \"P-2\"", "principle = \"P-9\"", 1);
    let p = expect_problem(&text, ProblemKind::UnknownPrinciple, "`P-9`");
    assert!(p.subject.contains("finance-transfers"), "{p}");
    assert_eq!(p.line, Some(line_of(&text, "id = \"finance-transfers\"")));
}

#[test]
fn schema_errors_are_refused() {
    let text = fixtures::SMALL.replace("entity Account;", "entity Account {");
    let p = expect_problem(&text, ProblemKind::Schema, "");
    assert!(p.line.is_some());
}

#[test]
fn cedar_parse_errors_point_at_the_policy_line() {
    let text = fixtures::SMALL.replace(
        "when { context.amount_cents > 100000000 };\n'''\n\n[[policies]]\nid = \"approver",
        "when { context.amount_cents > > 100000000 };\n'''\n\n[[policies]]\nid = \"approver",
    );
    let p = expect_problem(&text, ProblemKind::PolicyParse, "policy `transfer-hard-cap`");
    assert_eq!(p.line, Some(line_of(&text, "context.amount_cents > > 100000000")));
}

#[test]
fn exactly_one_policy_per_entry() {
    let text = fixtures::SMALL.replace(
        "permit (principal in Role::\"finance\", action == Action::\"transfer_funds\", resource);",
        "permit (principal in Role::\"finance\", action == Action::\"transfer_funds\", resource);\npermit (principal, action, resource);",
    );
    expect_problem(&text, ProblemKind::PolicyParse, "policy `finance-transfers`");
}

#[test]
fn strict_schema_validation_errors_name_the_policy_and_line() {
    // Unknown attribute.
    let text = fixtures::SMALL.replace(
        "resource.risk_tier <= principal.trust_level",
        "resource.risk_tier <= principal.trust",
    );
    let p = expect_problem(&text, ProblemKind::PolicyValidation, "policy `tool-users-invoke`");
    assert_eq!(p.line, Some(line_of(&text, "resource.risk_tier <= principal.trust")));
    // Optional attribute used without `has` (strict mode).
    let text = fixtures::SMALL.replace(
        "context has approver && context.approver.suspended",
        "context.approver.suspended",
    );
    expect_problem(&text, ProblemKind::PolicyValidation, "policy `approver-must-be-active`");
    // Type error.
    let text = fixtures::SMALL.replace("context.amount_cents >= 1000000", "context.amount_cents >= \"1000000\"");
    expect_problem(
        &text,
        ProblemKind::PolicyValidation,
        "policy `large-transfer-escalates`",
    );
    // Unknown action.
    let text = fixtures::SMALL.replace(
        "action == Action::\"respond\", resource);",
        "action == Action::\"reply\", resource);",
    );
    expect_problem(&text, ProblemKind::PolicyValidation, "policy `responses-allowed`");
}

#[test]
fn escalate_is_only_for_forbid() {
    let text = fixtures::SMALL.replace(
        "permit (principal in Role::\"finance\"",
        "@escalate\npermit (principal in Role::\"finance\"",
    );
    expect_problem(&text, ProblemKind::EscalateOnPermit, "policy `finance-transfers`");
}

#[test]
fn invariants_must_be_valid_permits() {
    let text = fixtures::SMALL.replace(
        "permit (principal, action == Action::\"transfer_funds\", resource) when { context.amount_cents > 100000000 };",
        "forbid (principal, action == Action::\"transfer_funds\", resource) when { context.amount_cents > 100000000 };",
    );
    expect_problem(&text, ProblemKind::Invariant, "invariant `INV-1`");
    let text = fixtures::SMALL.replace(
        "when { context.amount_cents > 100000000 };\n'''\n\n[[tests]]",
        "when { context.amount > 100000000 };\n'''\n\n[[tests]]",
    );
    expect_problem(&text, ProblemKind::Invariant, "invariant `INV-1`");
    let text = fixtures::SMALL.replace(
        "principle = \"P-2\"\ndescription = \"Transfers above",
        "principle = \"P-7\"\ndescription = \"Transfers above",
    );
    expect_problem(&text, ProblemKind::UnknownPrinciple, "invariant `INV-1`");
}

#[test]
fn detections_must_have_the_engine_type() {
    let text = fixtures::SMALL.replace("prompt_injection: Bool };", "prompt_injection: Long };");
    expect_problem(&text, ProblemKind::Detections, "detections");
}

#[test]
fn test_cases_must_use_declared_actions() {
    let text = fixtures::SMALL.replacen("action = \"invoke_tool\"", "action = \"launch_rocket\"", 1);
    expect_problem(&text, ProblemKind::TestCase, "launch_rocket");
}

#[test]
fn empty_constitutions_are_refused() {
    let text = "[constitution]\nname = \"x\"\nversion = \"1\"\n[schema]\ncedar = 'entity A;'\n";
    let found = problems(text);
    assert_eq!(
        found.iter().filter(|p| p.kind == ProblemKind::Empty).count(),
        2,
        "{found:?}"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = fixtures::SMALL
        .replacen("principle = \"P-2\"", "principle = \"P-9\"", 1)
        .replace("id = \"P-3\"", "id = \"P-2\"");
    let found = problems(&text);
    assert!(found.iter().any(|p| p.kind == ProblemKind::UnknownPrinciple));
    assert!(found.iter().any(|p| p.kind == ProblemKind::DuplicateId));
}

#[test]
fn failing_test_cases_refuse_the_constitution() {
    let text = fixtures::SMALL.replacen("expect = \"allow\"", "expect = \"deny\"", 1);
    // It compiles...
    let compiled = Constitution::compile("t.toml", &text).unwrap();
    let report = compiled.run_tests(&acgs_engine::Detectors::new());
    assert_eq!((report.passed(), report.failed()), (1, 1));
    assert!(
        report
            .to_string()
            .contains("FAIL tool user invokes low-risk tool: expected deny"),
        "{report}"
    );
    // ...but is refused for use.
    match Constitution::from_toml("t.toml", &text) {
        Err(LoadError::TestsFailed { report, .. }) => assert_eq!(report.failed(), 1),
        other => panic!("expected TestsFailed, got {other:?}"),
    }
    // Wrong expected policies also fail.
    let text = fixtures::SMALL.replace(
        "expect_policies = [\"tool-users-invoke\"]",
        "expect_policies = [\"finance-transfers\"]",
    );
    assert!(matches!(
        Constitution::from_toml("t.toml", &text),
        Err(LoadError::TestsFailed { .. })
    ));
}

#[test]
fn unreadable_files_are_io_errors() {
    let err = Constitution::load("/nonexistent/constitution.toml").unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/constitution.toml"));
}

#[test]
fn an_invalid_governance_section_is_reported_with_its_line() {
    let text = format!(
        "{}\n[governance]\nvoting_period = \"soon\"\nquorum = \"50%\"\napproval_threshold = \"60%\"\n\
         governance_threshold = \"75%\"\ntimelock = \"0s\"\ngrace_period = \"7d\"\n\n\
         [[governance.council]]\nuser = \"alice\"\nweight = 1\n\n\
         [governance.guardians]\nthreshold = 3\nmembers = [\"g1\", \"g2\"]\n\n\
         [governance.emergency]\nthreshold = 1\nmembers = [\"e1\"]\n",
        fixtures::SMALL
    );
    let p = expect_problem(&text, ProblemKind::Governance, "`soon` is not a duration");
    assert_eq!(p.subject, "governance.voting_period");
    let line = p.line.expect("a line");
    assert_eq!(text.lines().nth(line - 1), Some("[governance]"));
    expect_problem(
        &text,
        ProblemKind::Governance,
        "threshold 3 must be between 1 and the number of members (2)",
    );
}

#[test]
fn validation_errors_come_once_each_and_in_the_same_order_every_time() {
    // Cedar's validator reports an unknown attribute once per occurrence and in an order that changes from run
    // to run; the constitution's problems are listed once each, by line, identically on every load.
    let text = fixtures::SMALL.replace(
        "when { resource.risk_tier <= principal.trust_level };",
        "when { resource.nope <= principal.gone && principal.gone > 1 && resource.nope < 9 };",
    );
    assert_ne!(text, fixtures::SMALL);
    let first = problems(&text);
    let shown: Vec<String> = first.iter().map(ToString::to_string).collect();
    let mut unique = shown.clone();
    unique.dedup();
    assert_eq!(shown, unique, "a problem listed twice: {shown:#?}");
    assert!(
        shown.iter().any(|p| p.contains("`nope`")) && shown.iter().any(|p| p.contains("`gone`")),
        "{shown:#?}"
    );
    for _ in 0..20 {
        assert_eq!(problems(&text), first, "the order changed between identical loads");
    }
}

#[test]
fn invariant_kinds_take_the_fields_they_need() {
    let add = |extra: &str| {
        format!(
            "{}\n[[invariants]]\nid = \"INV-9\"\nprinciple = \"P-1\"\ndescription = \"d\"\n{extra}\n",
            fixtures::SMALL
        )
    };
    // never_errors and implies are about every request: no `matching`.
    let ok = add("kind = \"never_errors\"");
    assert_eq!(Constitution::compile("ok.toml", &ok).unwrap().invariants().len(), 2);
    let ok = add("kind = \"implies\"\nimplies = \"P-2\"");
    let c = Constitution::compile("ok.toml", &ok).unwrap();
    assert_eq!(c.invariants()[1].implies.as_deref(), Some("P-2"));
    expect_problem(
        &add("kind = \"never_allowed\""),
        ProblemKind::Invariant,
        "`never_allowed` needs `matching`",
    );
    expect_problem(
        &add("kind = \"implies\""),
        ProblemKind::Invariant,
        "`implies` needs `implies =",
    );
    expect_problem(
        &add("kind = \"implies\"\nimplies = \"P-9\""),
        ProblemKind::UnknownPrinciple,
        "implies principle `P-9`",
    );
    expect_problem(
        &add("kind = \"never_errors\"\nmatching = 'permit (principal, action, resource);'"),
        ProblemKind::Invariant,
        "takes no `matching`",
    );
    expect_problem(
        &add("kind = \"always_allowed\"\nimplies = \"P-2\"\nmatching = 'permit (principal, action, resource);'"),
        ProblemKind::Invariant,
        "belongs to invariants of kind `implies`",
    );
}

#[test]
fn the_new_invariant_fields_leave_existing_hashes_alone_and_are_hashed_when_present() {
    let before = Constitution::compile("a.toml", fixtures::SMALL).unwrap().hash();
    let with = format!(
        "{}\n[[invariants]]\nid = \"INV-9\"\nprinciple = \"P-1\"\ndescription = \"d\"\nkind = \"implies\"\nimplies = \"P-2\"\n",
        fixtures::SMALL
    );
    let other = with.replace("implies = \"P-2\"", "implies = \"P-3\"");
    let (a, b) = (
        Constitution::compile("b.toml", &with).unwrap().hash(),
        Constitution::compile("c.toml", &other).unwrap().hash(),
    );
    assert_ne!(before, a);
    assert_ne!(a, b);
    let verification = format!("{}\n[verification]\ndead_permits = \"warn\"\n", fixtures::SMALL);
    assert_ne!(Constitution::compile("d.toml", &verification).unwrap().hash(), before);
    expect_problem(
        &format!("{}\n[verification]\ndead_permits = \"maybe\"\n", fixtures::SMALL),
        ProblemKind::Syntax,
        "maybe",
    );
}

#[test]
fn validator_warnings_are_reported_with_their_line() {
    // `respond` applies to Tools only: a policy on respond about Accounts can never apply. Cedar 4.14 warns.
    let text = format!(
        "{}\n[[policies]]\nid = \"never-applies\"\nprinciple = \"P-3\"\ncedar = '''\n\
         permit (principal, action == Action::\"respond\", resource is Account);\n'''\n",
        fixtures::SMALL
    );
    let c = Constitution::compile("w.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let warnings = c.warnings();
    assert!(!warnings.is_empty(), "a warning for `never-applies`");
    let w = &warnings[0];
    assert_eq!(w.subject, "policy `never-applies`");
    assert_eq!(
        w.line,
        Some(line_of(
            &text,
            "permit (principal, action == Action::\"respond\", resource is Account)"
        ))
    );
    // Same input, same warnings, once each.
    let again = Constitution::compile("w.toml", &text).unwrap();
    assert_eq!(again.warnings(), warnings);
    let mut deduped = warnings.to_vec();
    deduped.dedup();
    assert_eq!(deduped.len(), warnings.len());
    assert!(
        Constitution::compile("ok.toml", fixtures::SMALL)
            .unwrap()
            .warnings()
            .is_empty()
    );
}

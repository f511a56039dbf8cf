//! A generated 500-policy constitution (ten actions, fifty policies each) gets every check, and finishes; the time
//! is printed (`cargo test --release -p acgs-verify --test scale -- --nocapture`; docs/performance.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write;

use acgs_verify::{CheckKind, Verdict, no_progress};
use common::{compile, verifier};

fn generated(policies: usize) -> String {
    let mut text = String::from(
        "[constitution]\nname = \"generated\"\nversion = \"1\"\n\n[schema]\ncedar = '''\n\
         entity Agent = { level: Long };\nentity Item = { tier: Long };\n",
    );
    for a in 0..10 {
        writeln!(
            text,
            "action act{a} appliesTo {{ principal: Agent, resource: Item, context: {{ n: Long }} }};"
        )
        .unwrap();
    }
    text.push_str("'''\n\n[[principles]]\nid = \"P-1\"\ntitle = \"t\"\ntext = \"t\"\ncategory = \"c\"\npriority = 1\nseverity = \"low\"\n");
    for i in 0..policies {
        let action = i % 10;
        let cedar = if i % 7 == 3 {
            format!("forbid (principal, action == Action::\"act{action}\", resource) when {{ context.n == {i} }};")
        } else {
            format!(
                "permit (principal, action == Action::\"act{action}\", resource) when {{ principal.level >= {} && resource.tier == {i} }};",
                i % 7
            )
        };
        write!(
            text,
            "\n[[policies]]\nid = \"p{i:03}\"\nprinciple = \"P-1\"\ncedar = '''\n{cedar}\n'''\n"
        )
        .unwrap();
    }
    text
}

#[test]
fn a_500_policy_constitution_is_fully_checked() {
    let constitution = compile(&generated(500));
    let started = std::time::Instant::now();
    let report = verifier().verify_blocking(&constitution, &no_progress).unwrap();
    let took = started.elapsed();
    eprintln!(
        "500 policies: {} checks in {:.1} s ({} blocking, {} warnings)",
        report.checks.len(),
        took.as_secs_f64(),
        report.blocking,
        report.warnings
    );
    assert_eq!(
        report
            .checks
            .iter()
            .filter(|c| c.check == CheckKind::NeverErrors)
            .count(),
        500
    );
    assert!(
        report.checks.iter().all(|c| c.verdict == Verdict::Holds),
        "{:?}",
        report.blocking_lines()
    );
    assert!(report.passed);
}

//! The constitutional hash is computed from canonical content: stable for the same content, different
//! for any change of content, indifferent to formatting and entry order.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use acgs_engine::{CANONICAL_FORM_TAG, Constitution};

fn hash_of(text: &str) -> String {
    Constitution::compile("test.toml", text)
        .unwrap_or_else(|e| panic!("{e}"))
        .hash()
        .to_hex()
}

#[test]
fn same_content_gives_the_same_hash() {
    let a = Constitution::compile("a.toml", fixtures::SMALL).unwrap();
    let b = Constitution::compile("b.toml", fixtures::SMALL).unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.hash().to_hex().len(), 64);
    assert_eq!(a.hash().short(), a.hash().to_hex()[..16]);
    assert!(a.canonical_form().starts_with(&format!("{CANONICAL_FORM_TAG}\n{{")));
}

#[test]
fn the_hash_is_sha256_of_the_canonical_form() {
    use sha2::{Digest, Sha256};
    let c = Constitution::compile("a.toml", fixtures::SMALL).unwrap();
    let digest = hex::encode(Sha256::digest(c.canonical_form().as_bytes()));
    assert_eq!(c.hash().to_hex(), digest);
}

#[test]
fn formatting_comments_and_order_do_not_change_the_hash() {
    let base = hash_of(fixtures::SMALL);
    // TOML comments and blank lines.
    let commented = fixtures::SMALL.replace("[[principles]]", "# a comment\n\n[[principles]]");
    assert_eq!(hash_of(&commented), base);
    // Trailing whitespace inside Cedar text and CRLF line endings.
    let spaced = fixtures::SMALL.replace(
        "when { resource.risk_tier <= principal.trust_level };",
        "when { resource.risk_tier <= principal.trust_level };   ",
    );
    assert_eq!(hash_of(&spaced), base);
    let crlf = fixtures::SMALL.replace('\n', "\r\n");
    assert_eq!(hash_of(&crlf), base);
    // Reordering principles.
    let p1_start = fixtures::SMALL.find("[[principles]]").unwrap();
    let p3_start = fixtures::SMALL.rfind("[[principles]]").unwrap();
    let policies_start = fixtures::SMALL.find("[[policies]]").unwrap();
    let reordered = format!(
        "{}{}{}{}",
        &fixtures::SMALL[..p1_start],
        &fixtures::SMALL[p3_start..policies_start],
        &fixtures::SMALL[p1_start..p3_start],
        &fixtures::SMALL[policies_start..]
    );
    assert_ne!(reordered, fixtures::SMALL);
    assert_eq!(hash_of(&reordered), base);
}

#[test]
fn any_change_of_content_changes_the_hash() {
    let base = hash_of(fixtures::SMALL);
    let changes = [
        ("version = \"0.1.0\"", "version = \"0.1.1\""),
        (
            "Agents use only the tools their role grants.",
            "Agents use only the tools their roles grant.",
        ),
        ("severity = \"high\"", "severity = \"medium\""),
        ("priority = 2", "priority = 3"),
        (
            "resource.risk_tier <= principal.trust_level",
            "resource.risk_tier < principal.trust_level",
        ),
        ("context.amount_cents >= 1000000", "context.amount_cents >= 1000001"),
        ("entity Account;", "entity Account { frozen?: Bool };"),
        (
            "Transfers above the hard cap are never allowed.",
            "Transfers above the cap are never allowed.",
        ),
        (
            "name = \"tool user invokes low-risk tool\"",
            "name = \"tool user invokes a low-risk tool\"",
        ),
        (
            "description = \"Tool users may invoke tools up to their trust level.\"",
            "description = \"Tool users may invoke tools.\"",
        ),
    ];
    let mut seen = std::collections::HashSet::from([base.clone()]);
    for (from, to) in changes {
        assert!(fixtures::SMALL.contains(from), "fixture lacks {from}");
        let changed = hash_of(&fixtures::SMALL.replacen(from, to, 1));
        assert!(
            seen.insert(changed),
            "changing {from:?} to {to:?} did not give a new hash"
        );
    }
}

#[test]
fn hash_matches_full_and_short_forms_only() {
    let c = Constitution::compile("a.toml", fixtures::SMALL).unwrap();
    let h = c.hash();
    assert!(h.matches(&h.to_hex()));
    assert!(h.matches(&h.short()));
    assert!(h.matches(&h.short().to_uppercase()));
    assert!(!h.matches(&h.to_hex()[..15]));
    assert!(!h.matches("0000000000000000"));
    assert!(!h.matches(""));
}

const GOVERNANCE: &str = r#"
[governance]
voting_period = "72h"
quorum = "50%"
approval_threshold = "60%"
governance_threshold = "75%"
timelock = "24h"
grace_period = "7d"

[[governance.council]]
user = "alice"
weight = 2

[[governance.council]]
user = "bob"
weight = 1

[governance.guardians]
threshold = 1
members = ["gina", "gus"]

[governance.emergency]
threshold = 2
members = ["ed", "eve"]
"#;

#[test]
fn a_constitution_without_governance_keeps_the_hash_it_had_before_the_section_existed() {
    let c = Constitution::compile("a.toml", fixtures::SMALL).unwrap();
    assert!(!c.canonical_form().contains("governance"));
    assert!(c.governance().is_none());
}

#[test]
fn the_governance_section_is_hashed_by_meaning() {
    let without = hash_of(fixtures::SMALL);
    let with = format!("{}{GOVERNANCE}", fixtures::SMALL);
    let governed = hash_of(&with);
    assert_ne!(without, governed, "the section is part of the content");
    // The same rules written differently: days for hours, members and seats in another order.
    let rewritten = with
        .replace("\"72h\"", "\"3d\"")
        .replace("[\"gina\", \"gus\"]", "[\"gus\", \"gina\"]")
        .replace(
            "user = \"alice\"\nweight = 2\n\n[[governance.council]]\nuser = \"bob\"\nweight = 1",
            "user = \"bob\"\nweight = 1\n\n[[governance.council]]\nuser = \"alice\"\nweight = 2",
        );
    assert_ne!(rewritten, with);
    assert_eq!(hash_of(&rewritten), governed);
    // Any change of meaning changes it.
    for changed in [
        with.replace("\"60%\"", "\"61%\""),
        with.replace("weight = 1", "weight = 2"),
        with.replace("threshold = 2", "threshold = 1"),
        with.replace("\"24h\"", "\"25h\""),
    ] {
        assert_ne!(hash_of(&changed), governed);
    }
}
